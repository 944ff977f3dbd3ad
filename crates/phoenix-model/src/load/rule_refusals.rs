//! What Proxmox VE's API refuses in a rule that phoenix would otherwise render: the checks of
//! pve-firewall's `verify_rule` (`src/PVE/Firewall.pm`) with the address and port parsers it
//! calls (`parse_address_list`, `parse_port_name_number_or_range`) and the macro expansion's
//! conflict check (`$apply_macro`). Each is reported as PHX-FW-010 at the offending value; a
//! refused rule is not rendered. A mis-cased macro is accepted and rewritten to its canonical
//! spelling, as `verify_rule` rewrites it.

use crate::model::{AddrEntry, AddrSpec, PortSet, Proto, Scope, Verdict};
use crate::pve::{fw_names, macros};
use crate::source::Span;
use ipnet::IpNet;

/// A refusal: where, what, and how to fix it.
pub struct Refusal {
    pub span: Option<Span>,
    pub message: String,
    pub help: String,
}

fn refusal(span: Option<Span>, message: impl Into<String>, help: impl Into<String>) -> Refusal {
    Refusal { span, message: message.into(), help: help.into() }
}

/// The parts of a rule the checks look at.
pub struct Parts<'r> {
    pub scope: &'r Scope,
    pub verdict: &'r Verdict,
    pub iface: Option<(&'r str, Option<Span>)>,
    pub macro_name: Option<(&'r str, Option<Span>)>,
    pub proto: Option<&'r Proto>,
    pub proto_span: Option<Span>,
    pub ports: [(&'static str, Option<&'r PortSet>, Option<Span>); 2],
    pub addresses: [(&'static str, Option<&'r AddrSpec>, Option<Span>); 2],
    /// Whether a protocol, port, address or log level is written (a GROUP rule keeps none).
    pub match_options: bool,
}

/// The macro's canonical spelling, when pve-firewall knows it.
pub fn canonical_macro(name: &str) -> Option<&'static str> {
    macros::find(name).map(|m| m.name)
}

pub fn check(parts: &Parts<'_>) -> Vec<Refusal> {
    let mut out = Vec::new();
    let group_scope = matches!(parts.scope, Scope::Group(_));
    if group_scope && matches!(parts.verdict, Verdict::Group(_)) {
        out.push(refusal(
            None,
            "a security group cannot include another group (pve-firewall: invalid rule type 'group' for rule_env 'group')",
            "inline the other group's rules",
        ));
    }
    if matches!(parts.verdict, Verdict::Group(_)) && parts.match_options {
        out.push(refusal(
            None,
            "a GROUP rule takes only an interface and a comment: pve-firewall drops its protocol, ports, addresses and log level",
            "put those conditions on the group's own rules",
        ));
    }
    if let Some((iface, span)) = parts.iface {
        match parts.scope {
            Scope::Group(_) => out.push(refusal(
                span,
                "a security group rule cannot name an interface (pve-firewall: parameter -i not allowed)",
                "put the interface on the GROUP rule in the guest that uses the group",
            )),
            Scope::Guest(_) if !fw_names::is_nic_key(iface) => out.push(refusal(
                span,
                format!("guest rule interface `{iface}` is not a NIC key netN"),
                "use the guest's NIC key, e.g. net0",
            )),
            _ if !fw_names::iface_valid(iface) => {
                out.push(refusal(span, format!("invalid network interface name `{iface}`"), "a letter, then letters, digits or `_`"))
            }
            _ => {}
        }
    }
    if let Some((name, span)) = parts.macro_name {
        if macros::find(name).is_none() {
            out.push(refusal(
                span,
                format!("pve-firewall has no macro `{name}`"),
                "use one of its macros (`phoenix explain PHX-FW-010`) or write proto and dport",
            ));
        }
    }
    for (field, ports, span) in parts.ports {
        let Some(ports) = ports else { continue };
        let count: usize = ports.0.iter().map(|(a, b)| if a == b { 1 } else { 2 }).sum();
        if count > 15 {
            out.push(refusal(
                span,
                format!("{field} lists {count} ports; pve-firewall takes at most 15 (a range counts two)"),
                "split the rule",
            ));
        }
        if parts.proto.is_none() && parts.macro_name.is_some() {
            out.push(refusal(
                parts.proto_span.or(span),
                format!("a {field} with a macro needs a protocol: pve-firewall checks the protocol before it applies the macro"),
                "add \"proto\" (the macro's own), or drop the port",
            ));
        }
    }
    // The IP version the rule's protocol and literal addresses give it (verify_rule's
    // `ipversion`): true for IPv4.
    let mut version = parts.proto.and_then(|p| match p.name.as_str() {
        "icmp" => Some(true),
        "icmpv6" | "ipv6-icmp" => Some(false),
        _ => None,
    });
    for (field, spec, span) in parts.addresses {
        let Some(spec) = spec else { continue };
        if let Some(problem) = address_problem(spec, &mut version) {
            out.push(refusal(
                span,
                format!("{field} {}: {problem}", spec.to_pve()),
                "write one reference, or a list of addresses and networks",
            ));
        }
    }
    if let (Some((name, span)), None) = (parts.macro_name, out.iter().find(|r| r.message.contains("has no macro"))) {
        out.extend(macro_conflict(name, span, parts, version == Some(false)));
    }
    out
}

/// `$apply_macro`: a protocol or port the rule sets that a macro rule sets otherwise.
fn macro_conflict(name: &str, span: Option<Span>, parts: &Parts<'_>, ipv6: bool) -> Option<Refusal> {
    let known = macros::find(name)?;
    // An IPv4-bound rule skips an IPv6-only macro; IPv6 rules use its IPv6 expansion.
    if known.ipv6_only && !ipv6 {
        return None;
    }
    let rules = if ipv6 { known.ipv6_rules.unwrap_or(known.rules) } else { known.rules };
    let dport = parts.ports[0].1.map(PortSet::to_pve);
    let sport = parts.ports[1].1.map(PortSet::to_pve);
    for template in rules {
        let proto_differs = parts.proto.is_some_and(|p| p.name != template.proto && p.number.to_string() != template.proto);
        let differs = |own: &Option<String>, theirs: Option<&str>| matches!((own, theirs), (Some(own), Some(theirs)) if own != theirs);
        if proto_differs || differs(&dport, template.dport) || differs(&sport, template.sport) {
            let theirs = format!("{} {}", template.proto, template.dport.unwrap_or_default()).trim().to_string();
            return Some(refusal(
                span,
                format!("macro {} already sets {theirs}; the rule's own protocol or port contradicts it", known.name),
                "drop the rule's proto and ports, or the macro",
            ));
        }
    }
    None
}

/// `parse_address_list`'s refusals: references alone, no range in a list, one IP version
/// (across source and dest too), no host bits below the prefix (Net::IP).
fn address_problem(spec: &AddrSpec, version: &mut Option<bool>) -> Option<String> {
    let entries = &spec.0;
    if entries.len() > 1 && entries.iter().any(|e| matches!(e, AddrEntry::Alias { .. } | AddrEntry::IpSet { .. })) {
        return Some("an alias or ipset must stand alone".into());
    }
    if entries.len() > 1 && entries.iter().any(|e| matches!(e, AddrEntry::Range(..))) {
        return Some("a range cannot be part of a list".into());
    }
    for entry in entries {
        let (v4, net) = match entry {
            AddrEntry::Net(net) => (matches!(net, IpNet::V4(_)), Some(net)),
            AddrEntry::Range(..) => (true, None),
            _ => continue,
        };
        if version.is_some_and(|known| known != v4) {
            return Some("mixes IPv4 and IPv6 (within the rule: its addresses and protocol)".into());
        }
        *version = Some(v4);
        if let Some(net) = net.filter(|n| n.trunc() != **n) {
            return Some(format!("{net} has host bits below its prefix (Proxmox refuses it; write {} or {})", net.trunc(), net.addr()));
        }
    }
    None
}
