//! Declared flows (`flows` in phoenix_hypervisor_config.json): both ends must name something.

use crate::diag::Diagnostic;
use crate::model::Model;

fn names_something(model: &Model, end: &str) -> bool {
    end.eq_ignore_ascii_case("host")
        || model.host.node(end).is_some()
        || end.parse::<u32>().map(|id| model.guests.contains_key(&id)).unwrap_or(false)
        || (end.parse::<u32>().is_err() && end.parse::<std::net::IpAddr>().is_ok())
}

pub fn check(model: &Model) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for flow in &model.flows {
        for (side, end) in [("from", &flow.from), ("to", &flow.to)] {
            if !names_something(model, end) {
                out.push(
                    Diagnostic::at(
                        "PHX-FLOW-001",
                        flow.span,
                        format!("flow \"{}\": {side} `{end}` is not `host`, a node, a defined guest id or an IP address", flow.title),
                    )
                    .help("write \"host\", a node's name (`proxmox.nodes`), a guest id from the guest files, or an IP address"),
                );
            }
        }
    }
    out
}
