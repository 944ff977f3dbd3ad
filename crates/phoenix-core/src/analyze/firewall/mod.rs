//! The Proxmox VE firewall, evaluated as pve-firewall and proxmox-firewall apply it (DESIGN.md):
//! - guest traffic passes the source guest's OUT chain, then the destination guest's IN chain;
//!   a guest chain applies only when the cluster is enabled, the guest's `.fw` enables it and
//!   the NIC has `firewall=1`; its own rules (and security groups it includes) decide, first
//!   match, then its policy; cluster rules never filter guest traffic;
//! - host traffic passes host.fw rules, then cluster.fw rules, then the cluster policy.
//!
//! A hop that passes only because a chain is not in force is reported as unprotected, never as
//! allowed by a rule. Evaluation works on parsed `.fw` files, so rendered and deployed
//! configurations are judged the same way, and every verdict cites file, line and rule text.

mod evaluate;
pub(crate) mod matching;
mod state;

pub use evaluate::{evaluate, trace, ChainVerdict, Decision, Endpoint, FirewallVerdict, Packet};
pub use state::{nic_has_firewall, FirewallState, FwSource, StateError};

use phoenix_model::model::Model;

/// Reads an endpoint as users write it: `host`, a guest id, or an IP address (a guest's or the
/// host's address names that endpoint; any other address is outside the node).
pub fn parse_endpoint(model: &Model, text: &str) -> Result<Endpoint, String> {
    if text.eq_ignore_ascii_case("host") {
        return Ok(Endpoint::Host);
    }
    if let Ok(id) = text.parse::<u32>() {
        return if model.guests.contains_key(&id) { Ok(Endpoint::Guest(id)) } else { Err(format!("guest {id} is not defined")) };
    }
    let ip: std::net::IpAddr = text.parse().map_err(|_| format!("`{text}` is not `host`, a guest id or an IP address"))?;
    Ok(match model.address_index().guest(ip) {
        Some(guest) => Endpoint::Guest(guest.id),
        None if model.host.ip().map(std::net::IpAddr::V4) == Some(ip) => Endpoint::Host,
        None => Endpoint::Outside(ip),
    })
}

/// Reads `443`, `443/tcp`, `53/udp` or `icmp`.
pub fn parse_packet(text: &str) -> Result<Packet, String> {
    if text.eq_ignore_ascii_case("icmp") {
        return Ok(Packet { proto: 1, dport: None });
    }
    let (port, proto) = text.split_once('/').unwrap_or((text, "tcp"));
    let proto = match proto.to_ascii_lowercase().as_str() {
        "tcp" => 6,
        "udp" => 17,
        other => return Err(format!("protocol `{other}` is not tcp or udp")),
    };
    let port = port.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| format!("`{port}` is not a port"))?;
    Ok(Packet { proto, dport: Some(port) })
}

/// `phoenix assess --trace`: one connection judged rule by rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Traced {
    /// What was judged, every rule looked at, and the outcome word last.
    pub text: String,
    pub passes: bool,
}

/// Traces SRC to DST on PORT as users write them (see [`parse_endpoint`], [`parse_packet`]);
/// every argument that cannot be read is reported.
pub fn trace_connection(state: &FirewallState, model: &Model, src: &str, dst: &str, port: &str) -> Result<Traced, Vec<String>> {
    let (src, dst, packet) = match (parse_endpoint(model, src), parse_endpoint(model, dst), parse_packet(port)) {
        (Ok(s), Ok(d), Ok(p)) => (s, d, p),
        (s, d, p) => return Err([s.err(), d.err(), p.err()].into_iter().flatten().collect()),
    };
    let (verdict, lines) = trace(state, model, src, dst, packet);
    let mut text = format!("Judged: {}\n", state.origin);
    for line in lines {
        text.push_str(&line);
        text.push('\n');
    }
    let outcome = match (verdict.passes, verdict.unprotected) {
        (false, _) => "BLOCKED",
        (true, true) => "PASSES, UNPROTECTED",
        (true, false) => "PASSES",
    };
    text.push_str(outcome);
    text.push('\n');
    Ok(Traced { text, passes: verdict.passes })
}
