//! Rules that cannot mean what they say, though Proxmox VE takes them: a guest rule on an
//! interface the guest does not have (it never matches), a rule that only restates its list's
//! policy (removing it changes nothing), and a host or cluster rule that accepts the host's
//! own management ports from any source. Duplicates and shadowing are `firewall`'s.

use crate::diag::Diagnostic;
use crate::model::*;
use crate::pve::MANAGEMENT_PORTS_IN;
use std::net::IpAddr;

const TCP: u8 = 6;

pub fn check(model: &Model) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for guest in model.guests.values() {
        out.extend(missing_interfaces(guest));
        out.extend(restated_policies(&format!("rules of {}", guest.label()), &guest.firewall.rules, &[], &guest.firewall));
    }
    let cluster = &model.firewall.cluster;
    let policies = GuestFirewall { policy_in: cluster.policy_in, policy_out: cluster.policy_out, ..GuestFirewall::default() };
    // host.fw is evaluated before cluster.fw, so every cluster rule comes after the host's.
    out.extend(restated_policies("host rules", &model.firewall.host_rules, &model.firewall.cluster_rules, &policies));
    out.extend(restated_policies("cluster rules", &model.firewall.cluster_rules, &[], &policies));
    for (scope, rules) in [("cluster", &model.firewall.cluster_rules), ("host", &model.firewall.host_rules)] {
        out.extend(rules.iter().filter_map(|rule| open_management(model, scope, rule)));
    }
    out
}

fn describe(rule: &Rule) -> String {
    rule.comment.clone().map_or_else(|| format!("rule {}", rule.position + 1), |c| format!("rule {} (\"{c}\")", rule.position + 1))
}

/// PHX-FW-012: `iface netN` where the guest has no such NIC (other names are PHX-FW-010's).
fn missing_interfaces(guest: &Guest) -> Vec<Diagnostic> {
    let keys: Vec<String> = guest.nics.iter().map(Nic::key).collect();
    guest
        .firewall
        .rules
        .iter()
        .filter(|rule| rule.in_force())
        .filter_map(|rule| {
            let iface = rule.iface.as_deref()?;
            (crate::pve::fw_names::is_nic_key(iface) && !keys.iter().any(|k| k == iface)).then(|| {
                Diagnostic::at(
                    "PHX-FW-012",
                    rule.span,
                    format!(
                        "{} of {} names interface {iface}, which the guest does not have, so it never matches",
                        describe(rule),
                        guest.label()
                    ),
                )
                .help(format!("the guest's interfaces are {}", if keys.is_empty() { "none".to_string() } else { keys.join(", ") }))
            })
        })
        .collect()
}

fn policy(policies: &GuestFirewall, direction: Direction) -> Action {
    match direction {
        Direction::In => policies.policy_in,
        Direction::Out => policies.policy_out,
    }
}

/// PHX-FW-013: a rule whose action is its direction's policy, with no later rule of that
/// direction deciding otherwise: without it every packet meets the same verdict.
fn restated_policies(list: &str, rules: &[Rule], later_lists: &[Rule], policies: &GuestFirewall) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        let Verdict::Action(action) = rule.verdict else { continue };
        let logs = rule.log.as_deref().is_some_and(|level| level != "nolog");
        if !rule.in_force() || logs || action != policy(policies, rule.direction) {
            continue;
        }
        let mut after = rules[i + 1..].iter().chain(later_lists);
        if after.any(|later| later.in_force() && later.direction == rule.direction && later.verdict != rule.verdict) {
            continue;
        }
        out.push(
            Diagnostic::at(
                "PHX-FW-013",
                rule.span,
                format!(
                    "in the {list}, {} says {}, as the {} policy does, and no later rule decides otherwise: it changes nothing",
                    describe(rule),
                    action.as_pve(),
                    rule.direction.as_pve()
                ),
            )
            .help("remove it, or change the policy if the rule was meant to be the exception"),
        );
    }
    out
}

/// PHX-FW-014: an IN ACCEPT of the host's management ports (pve-firewall opens them only to
/// the `management` ipset) to any source.
fn open_management(model: &Model, scope: &str, rule: &Rule) -> Option<Diagnostic> {
    if !rule.in_force() || rule.direction != Direction::In || rule.verdict != Verdict::Action(Action::Accept) || rule.macro_name.is_some() {
        return None;
    }
    if !rule.from_anywhere() || rule.proto.as_ref().is_some_and(|p| p.number != TCP) {
        return None;
    }
    let host = model.host.ip().map(IpAddr::V4);
    let to_host = rule.dest.as_ref().is_none_or(|d| host.is_some_and(|h| d.literal_nets().any(|n| n.contains(&h))));
    let opened: Vec<String> = MANAGEMENT_PORTS_IN
        .iter()
        .filter(|&&(a, b)| rule.dport.as_ref().is_none_or(|set| (a..=b).any(|p| set.contains(p))))
        .map(|&(a, b)| if a == b { a.to_string() } else { format!("{a}:{b}") })
        .collect();
    if !to_host || opened.is_empty() {
        return None;
    }
    Some(
        Diagnostic::at(
            "PHX-FW-014",
            rule.spans.source.unwrap_or(rule.span),
            format!(
                "{scope} {} accepts tcp {} of the Proxmox host from any source; pve-firewall itself opens them only to the management ipset",
                describe(rule),
                opened.join(",")
            ),
        )
        .help("give the rule a source (the LAN, or an ipset of admin machines)"),
    )
}
