//! The Proxmox firewall compiled to nftables for the lab, one ruleset per network namespace,
//! from the very chains the evaluator walks ([`crate::analyze::firewall::chain`]): a guest's
//! `input` hook is its NIC's IN chain, its `output` hook the OUT chain, and the host's hooks
//! are the host's chains, each step one or more nft rules in order, built-in rules and
//! policies included. Each hook first accepts loopback and established or related packets
//! (conntrack, as pve-firewall's `ruleset_chain_add_conn_filters` does). A step that can match
//! nothing (an empty set) is left out; a chain that is not in force has no rules. IPv4 only,
//! as the lab is. Pure text out.

use crate::analyze::firewall::chain::{guest_chain, host_chain, AddrSet, Block, Chain, Cond, Dir, Effect, IcmpMatch, Step};
use crate::analyze::firewall::FirewallState;
use phoenix_model::model::{GuestId, PortSet};
use std::fmt::Write;

/// Which namespace a ruleset is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Node<'n> {
    Host,
    /// A guest, with its NICs in the lab (interface, address): each interface gets the chains
    /// of the Proxmox NIC holding that address, as pve-firewall gives every NIC its own
    /// (`tap<vmid>i<n>`/`veth<vmid>i<n>` chains in `ruleset_generate_vm_rules`).
    Guest(GuestId, &'n [(String, std::net::IpAddr)]),
}

/// The IPv4 blocks, as nft writes them (the same spelling as pve-firewall's).
fn blocks(items: &[Block]) -> Vec<String> {
    items.iter().filter(|b| b.is_ipv4()).map(Block::to_string).collect()
}

fn set(items: &[String]) -> String {
    format!("{{ {} }}", items.join(", "))
}

fn ports(set: &PortSet) -> String {
    let items: Vec<String> = set.0.iter().map(|(a, b)| if a == b { a.to_string() } else { format!("{a}-{b}") }).collect();
    format!("{{ {} }}", items.join(", "))
}

/// The alternatives an address match compiles to (any one matching is a match); none when
/// nothing can match.
fn address(field: &str, addresses: &AddrSet) -> Vec<String> {
    let (include, exclude) = (blocks(&addresses.include), blocks(&addresses.exclude));
    if addresses.negated {
        // ! (in include and not in exclude) = not in include, or in exclude.
        let mut alternatives = vec![if include.is_empty() { String::new() } else { format!("ip {field} != {} ", set(&include)) }];
        if !exclude.is_empty() {
            alternatives.push(format!("ip {field} {} ", set(&exclude)));
        }
        return alternatives;
    }
    if include.is_empty() {
        return Vec::new();
    }
    let except = if exclude.is_empty() { String::new() } else { format!("ip {field} != {} ", set(&exclude)) };
    vec![format!("ip {field} {} {except}", set(&include))]
}

/// The nft verdict lines of an effect. REJECT is PVEFW-reject: broadcasts and multicast sources
/// dropped, a TCP reset, ICMP dropped, UDP port unreachable, anything else host prohibited.
fn verdicts(effect: Effect) -> &'static [&'static str] {
    match effect {
        Effect::Accept => &["accept"],
        Effect::Drop => &["drop"],
        Effect::Reject => &[
            "ip daddr { 224.0.0.0/4, 255.255.255.255 } drop",
            "ip saddr 224.0.0.0/4 drop",
            "meta l4proto tcp reject with tcp reset",
            "meta l4proto icmp drop",
            "meta l4proto udp reject",
            "reject with icmp type host-prohibited",
        ],
    }
}

/// The nft rules of one step's condition and effect.
fn compile(cond: &Cond, effect: Effect, dir: Dir) -> Vec<String> {
    let mut head = String::new();
    if let Some(iface) = &cond.iface {
        let _ = write!(head, "{} \"{}\" ", keyword(dir), iface.replace('+', "*"));
    }
    if cond.dst_broadcast {
        head.push_str("ip daddr { 224.0.0.0/4, 255.255.255.255 } ");
    }
    let mut alternatives = vec![head];
    for (field, addresses) in [("saddr", &cond.src), ("daddr", &cond.dst)] {
        if let Some(addresses) = addresses {
            let parts = address(field, addresses);
            alternatives = alternatives.iter().flat_map(|a| parts.iter().map(move |p| format!("{a}{p}"))).collect();
        }
    }
    let mut tail = String::new();
    if let Some(proto) = cond.proto {
        let _ = write!(tail, "meta l4proto {proto} ");
    }
    if let Some(set) = &cond.sport {
        let _ = write!(tail, "th sport {} ", ports(set));
    }
    if let Some(set) = &cond.dport {
        let _ = write!(tail, "th dport {} ", ports(set));
    }
    if let Some(IcmpMatch::Type(ty, code)) = cond.icmp {
        let _ = write!(tail, "icmp type {ty} ");
        if let Some(code) = code {
            let _ = write!(tail, "icmp code {code} ");
        }
    }
    let tail = &tail;
    alternatives.iter().flat_map(|a| verdicts(effect).iter().map(move |v| format!("{a}{tail}{v}"))).collect()
}

fn chain_rules(chain: &Chain, dir: Dir) -> Vec<String> {
    chain
        .steps
        .iter()
        .flat_map(|step| match step {
            Step::Match { cond, effect, .. } => compile(cond, *effect, dir),
            Step::Skip { .. } | Step::Note(_) => Vec::new(),
        })
        .collect()
}

/// The chain of a guest's NIC holding `ip`.
fn nic_chain(state: &FirewallState, id: GuestId, ip: std::net::IpAddr, dir: Dir) -> Chain {
    let nic = state.nets.get(&id).and_then(|n| n.nic_for(ip));
    guest_chain(state, id, &format!("guest {id}"), nic, dir, 4)
}

fn keyword(dir: Dir) -> &'static str {
    if dir == Dir::In {
        "iifname"
    } else {
        "oifname"
    }
}

/// The nft ruleset (a complete `nft -f` input) for `node`'s namespace. A guest with one NIC
/// has its chain in the hooks; one with more has a chain per interface, which the hooks jump to
/// by interface name (a NIC without the firewall flag gets an empty chain: nothing filters it).
pub fn ruleset(state: &FirewallState, node: Node) -> String {
    let mut out = String::from("flush ruleset\ntable inet phoenix {\n");
    let chain = |out: &mut String, head: &str, rules: Vec<String>| {
        let _ = writeln!(out, "  chain {head}");
        for rule in rules {
            let _ = writeln!(out, "    {rule}");
        }
        out.push_str("  }\n");
    };
    if let Node::Guest(id, nics @ [_, _, ..]) = node {
        for (dir, hook) in [(Dir::In, "input"), (Dir::Out, "output")] {
            for (iface, ip) in nics {
                chain(&mut out, &format!("{hook}_{iface} {{"), chain_rules(&nic_chain(state, id, *ip, dir), dir));
            }
        }
    }
    for (dir, hook) in [(Dir::In, "input"), (Dir::Out, "output")] {
        let mut rules = vec![format!("{} \"lo\" accept", keyword(dir)), "ct state established,related accept".to_string()];
        rules.extend(match node {
            Node::Host => chain_rules(&host_chain(state, dir, 4), dir),
            Node::Guest(id, [(_, ip)]) => chain_rules(&nic_chain(state, id, *ip, dir), dir),
            Node::Guest(_, nics) => nics.iter().map(|(iface, _)| format!("{} \"{iface}\" jump {hook}_{iface}", keyword(dir))).collect(),
        });
        chain(&mut out, &format!("{hook} {{\n    type filter hook {hook} priority filter; policy accept;"), rules);
    }
    out.push_str("}\n");
    out
}
