//! The Proxmox firewall compiled to nftables for the lab, one ruleset per network namespace,
//! with the semantics the evaluator implements (analyze::firewall): a guest's `input` chain is
//! its IN rules (security groups inlined) then its `policy_in`, its `output` chain its OUT
//! rules then `policy_out`, and both exist only when the cluster firewall is enabled, the
//! guest's `.fw` enables it and its NIC has `firewall=1`; the host's chains are host.fw rules,
//! then cluster.fw rules, then the cluster policy. Each chain first accepts loopback and
//! established or related packets (conntrack, as Proxmox's `ct-in`/`pre-vm` chains do).
//! A rule whose address cannot be resolved, or whose macro phoenix does not know, matches
//! nothing, as in the evaluator. Pure text out.

use crate::analyze::firewall::matching::{alias, ipset, MACROS};
use crate::analyze::firewall::{FirewallState, FwSource};
use crate::pve_fw::{Direction, FwRule};
use phoenix_model::model::{AddrEntry, AddrSpec, GuestId, PortSet, Proto};
use std::fmt::Write;

/// Which namespace a ruleset is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Node {
    Host,
    Guest(GuestId),
}

/// The interface the lab gives a guest (Proxmox's `-i net0`) and the host (its bridge).
pub const GUEST_IFACE: &str = "net0";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Dir {
    In,
    Out,
}

/// The elements of an address match: positive elements and negated ones (ipset `!` entries).
/// `None` when nothing can match (an unresolved alias or ipset).
fn elements(value: &str, guest: Option<&FwSource>, cluster: &FwSource) -> Option<(Vec<String>, Vec<String>)> {
    let spec = AddrSpec::parse(value).ok()?;
    let (mut positive, mut negative) = (Vec::new(), Vec::new());
    for entry in &spec.0 {
        match entry {
            AddrEntry::Net(net) if net.addr().is_ipv4() => positive.push(net.to_string()),
            AddrEntry::Net(_) => {}
            AddrEntry::Range(a, b) => positive.push(format!("{a}-{b}")),
            AddrEntry::Alias { scope, name } => {
                positive.extend(alias(name, scope.as_deref(), guest, cluster).filter(|n| n.addr().is_ipv4()).map(|n| n.to_string()))
            }
            AddrEntry::IpSet { scope, name } => {
                let Some(set) = ipset(name, scope.as_deref(), guest, cluster) else { continue };
                for e in &set.entries {
                    if e.cidr.contains(':') {
                        continue;
                    }
                    if e.negated {
                        negative.push(e.cidr.clone());
                    } else {
                        positive.push(e.cidr.clone());
                    }
                }
            }
        }
    }
    (!positive.is_empty()).then_some((positive, negative))
}

fn set(items: &[String]) -> String {
    format!("{{ {} }}", items.join(", "))
}

fn ports(set: &PortSet) -> String {
    let items: Vec<String> = set.0.iter().map(|(a, b)| if a == b { a.to_string() } else { format!("{a}-{b}") }).collect();
    format!("{{ {} }}", items.join(", "))
}

/// The nft verdict of a Proxmox action. REJECT answers TCP with a reset and anything else with
/// ICMP port unreachable, as pve-firewall's PVEFW-reject chain does.
fn verdict(action: &str) -> &'static str {
    match action {
        "ACCEPT" => "accept",
        "REJECT" => "meta l4proto tcp reject with tcp reset; reject",
        _ => "drop",
    }
}

/// One nft line per verdict part: `...; reject` after a TCP reset becomes two rules.
fn with_verdict(head: &str, action: &str) -> Vec<String> {
    verdict(action).split("; ").map(|v| format!("{head}{v}")).collect()
}

/// The nft rule lines for one `.fw` rule (a macro can give several); empty when it cannot match.
fn compile_rule(rule: &FwRule, dir: Dir, guest: Option<&FwSource>, cluster: &FwSource) -> Vec<String> {
    let mut head = String::new();
    if let Some(iface) = rule.option("i") {
        let _ = write!(head, "{} \"{iface}\" ", if dir == Dir::In { "iifname" } else { "oifname" });
    }
    for (key, field) in [("source", "saddr"), ("dest", "daddr")] {
        if let Some(value) = rule.option(key) {
            let Some((positive, negative)) = elements(value, guest, cluster) else { return Vec::new() };
            let _ = write!(head, "ip {field} {} ", set(&positive));
            if !negative.is_empty() {
                let _ = write!(head, "ip {field} != {} ", set(&negative));
            }
        }
    }
    let sport = match rule.option("sport").map(PortSet::parse) {
        Some(Ok(set)) => format!("th sport {} ", ports(&set)),
        Some(Err(_)) => return Vec::new(),
        None => String::new(),
    };
    // pve-firewall skips a rule whose action verify_rule rejects; so does the lab.
    let Some(action) = rule.verdict.action().map(|a| a.as_pve()) else { return Vec::new() };
    let macro_name = rule.verdict.macro_name();
    if let Some(name) = macro_name {
        let Some((_, services)) = MACROS.iter().find(|(m, _)| m.eq_ignore_ascii_case(name)) else { return Vec::new() };
        return services
            .iter()
            .flat_map(|(proto, port)| with_verdict(&format!("{head}meta l4proto {proto} {sport}th dport {port} "), action))
            .collect();
    }
    let mut line = head;
    let proto = match rule.option("p").map(Proto::parse) {
        Some(Ok(proto)) => Some(proto.number),
        Some(Err(_)) => return Vec::new(),
        None => None,
    };
    if let Some(number) = proto {
        let _ = write!(line, "meta l4proto {number} ");
    }
    line.push_str(&sport);
    match rule.option("dport").map(PortSet::parse) {
        Some(Ok(set)) if matches!(proto, Some(6 | 17 | 132 | 33)) => {
            let _ = write!(line, "th dport {} ", ports(&set));
        }
        // Without a protocol the evaluator matches the port for any protocol that has ports.
        Some(Ok(set)) if proto.is_none() => {
            let _ = write!(line, "meta l4proto {{ 6, 17, 33, 132 }} th dport {} ", ports(&set));
        }
        Some(_) => return Vec::new(),
        None => {}
    }
    with_verdict(&line, action)
}

/// The rules of one chain, groups inlined with the referencing guest's scope.
fn chain_rules(rules: &[FwRule], dir: Dir, guest: Option<&FwSource>, state: &FirewallState, out: &mut Vec<String>) {
    let direction = if dir == Dir::In { Direction::In } else { Direction::Out };
    for rule in rules.iter().filter(|r| r.enabled) {
        if let Some(name) = rule.group() {
            if let Some(group) = state.cluster.file.groups.iter().find(|g| g.name.eq_ignore_ascii_case(name)) {
                chain_rules(&group.rules, dir, guest, state, out);
            }
        } else if rule.direction == direction {
            out.extend(compile_rule(rule, dir, guest, &state.cluster));
        }
    }
}

fn policy(source: &FwSource, dir: Dir) -> Vec<String> {
    let (key, default) = if dir == Dir::In { ("policy_in", "DROP") } else { ("policy_out", "ACCEPT") };
    with_verdict("", source.option(key).unwrap_or(default))
}

/// Whether `node`'s chains are in force (the evaluator's conditions).
pub fn in_force(state: &FirewallState, node: Node) -> bool {
    if state.cluster.option("enable") != Some("1") {
        return false;
    }
    match node {
        Node::Host => state.host.option("enable") != Some("0"),
        Node::Guest(id) => {
            state.guests.get(&id).is_some_and(|g| g.present && g.option("enable") == Some("1"))
                && state.nic_firewall.get(&id).copied().unwrap_or(false)
        }
    }
}

/// The nft ruleset (a complete `nft -f` input) for `node`'s namespace.
pub fn ruleset(state: &FirewallState, node: Node) -> String {
    let mut out = String::from("flush ruleset\ntable inet phoenix {\n");
    for (dir, hook) in [(Dir::In, "input"), (Dir::Out, "output")] {
        let _ = writeln!(out, "  chain {hook} {{\n    type filter hook {hook} priority filter; policy accept;");
        let _ = writeln!(
            out,
            "    {} \"lo\" accept\n    ct state established,related accept",
            if dir == Dir::In { "iifname" } else { "oifname" }
        );
        if in_force(state, node) {
            let mut rules = Vec::new();
            match node {
                Node::Host => {
                    chain_rules(&state.host.file.rules, dir, None, state, &mut rules);
                    chain_rules(&state.cluster.file.rules, dir, None, state, &mut rules);
                    rules.extend(policy(&state.cluster, dir));
                }
                Node::Guest(id) => {
                    let source = &state.guests[&id];
                    chain_rules(&source.file.rules, dir, Some(source), state, &mut rules);
                    rules.extend(policy(source, dir));
                }
            }
            for rule in rules {
                let _ = writeln!(out, "    {rule}");
            }
        }
        out.push_str("  }\n");
    }
    out.push_str("}\n");
    out
}
