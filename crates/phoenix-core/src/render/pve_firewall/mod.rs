//! The Proxmox VE firewall: `cluster.fw`, the node's `host.fw`, one `<vmid>.fw` per guest, and
//! the `firewall=1` NIC setting each guest with an enabled firewall needs. Split by scope, as
//! pve-firewall splits its configuration. Must not decide what traffic passes: the analyzer does.

mod cluster;
mod guest;
mod host;

pub use guest::nics_before_firewall;

use super::Rendered;
use crate::pve_fw::{self, FwRule};
use phoenix_model::model::{Direction, Model, Rule, Verdict};

/// Validation on the node compiles the whole ruleset; the daemon picks changes up by itself.
pub const VALIDATE: &str = "pve-firewall compile";

pub fn render(model: &Model, out: &mut Rendered) {
    cluster::render(model, out);
    host::render(model, out);
    guest::render(model, out);
}

/// A model rule as a pve-firewall rule line. Malformed rules are not rendered (validate reported them).
pub fn rule_line(rule: &Rule) -> Option<FwRule> {
    if rule.malformed {
        return None;
    }
    let (direction, verdict) = match &rule.verdict {
        Verdict::Group(name) => (pve_fw::Direction::Group, pve_fw::Verdict::Group(name.clone())),
        Verdict::Action(action) => {
            let direction = match rule.direction {
                Direction::In => pve_fw::Direction::In,
                Direction::Out => pve_fw::Direction::Out,
            };
            (direction, pve_fw::Verdict::Action { macro_name: rule.macro_name.clone(), action: *action })
        }
    };
    let mut options = Vec::new();
    let mut push = |key: &str, value: Option<String>| {
        if let Some(value) = value {
            options.push((key.to_string(), value));
        }
    };
    push("i", rule.iface.clone());
    push("source", rule.source.as_ref().map(|s| s.to_pve()));
    push("dest", rule.dest.as_ref().map(|d| d.to_pve()));
    push("p", rule.proto.as_ref().map(|p| p.name.clone()));
    push("dport", rule.dport.as_ref().map(|p| p.to_pve()));
    push("sport", rule.sport.as_ref().map(|p| p.to_pve()));
    push("log", rule.log.clone());
    // A `#` would start the comment early: pve-firewall has no escape for it.
    let comment = rule.comment.as_ref().map(|c| c.replace('#', "").replace('\n', " ").trim().to_string()).filter(|c| !c.is_empty());
    Some(FwRule { enabled: rule.enabled, direction, verdict, options, comment })
}

pub fn rule_lines(rules: &[Rule]) -> Vec<FwRule> {
    rules.iter().filter_map(rule_line).collect()
}

fn flag(on: bool) -> String {
    if on { "1" } else { "0" }.to_string()
}
