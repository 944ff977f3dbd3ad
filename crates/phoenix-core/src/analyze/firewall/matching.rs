//! Does one rule line match one packet? Addresses with aliases and ipsets resolved by scope
//! (`dc/`, `guest/`, and unscoped names looked up in the guest first, then the datacenter),
//! ports, protocols, interfaces and pve-firewall's common macros.

use super::state::FwSource;
use crate::pve_fw::{FwIpSet, FwRule};
use ipnet::IpNet;
use phoenix_model::model::{AddrEntry, AddrSpec, PortSet, Proto};
use std::net::IpAddr;

/// Protocol and ports of the macros phoenix understands (pve-firewall's macro list, subset).
pub(crate) const MACROS: &[(&str, &[(u8, u16)])] = &[
    ("SSH", &[(6, 22)]),
    ("HTTP", &[(6, 80)]),
    ("HTTPS", &[(6, 443)]),
    ("Web", &[(6, 80), (6, 443)]),
    ("DNS", &[(6, 53), (17, 53)]),
    ("NTP", &[(17, 123)]),
    ("SMTP", &[(6, 25)]),
    ("NFS", &[(6, 2049), (17, 2049), (6, 111), (17, 111)]),
    ("SMB", &[(6, 445), (6, 139), (17, 137), (17, 138)]),
];

/// One packet of a flow, from the rule's point of view.
pub struct Probe<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: u8,
    pub dport: Option<u16>,
    /// The interface the chain sees (net0 for guests, the bridge for the host).
    pub iface: &'a str,
}

/// Addresses of an alias, looked up in the guest's file, then the cluster's.
pub(crate) fn alias(name: &str, scope: Option<&str>, guest: Option<&FwSource>, cluster: &FwSource) -> Option<IpNet> {
    let find = |source: &FwSource| {
        source
            .file
            .aliases
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
            .and_then(|a| a.cidr.parse::<IpNet>().ok().or_else(|| a.cidr.parse::<IpAddr>().ok().map(IpNet::from)))
    };
    match scope {
        Some("dc") => find(cluster),
        Some("guest") => guest.and_then(find),
        _ => guest.and_then(find).or_else(|| find(cluster)),
    }
}

/// An ipset by name, looked up as aliases are.
pub(crate) fn ipset<'s>(name: &str, scope: Option<&str>, guest: Option<&'s FwSource>, cluster: &'s FwSource) -> Option<&'s FwIpSet> {
    let find = |source: &'s FwSource| source.file.ipsets.iter().find(|s| s.name.eq_ignore_ascii_case(name));
    match scope {
        Some("dc") => find(cluster),
        Some("guest") => guest.and_then(find),
        _ => guest.and_then(find).or_else(|| find(cluster)),
    }
}

fn in_ipset(ip: IpAddr, name: &str, scope: Option<&str>, guest: Option<&FwSource>, cluster: &FwSource) -> bool {
    let Some(set) = ipset(name, scope, guest, cluster) else { return false };
    let parse = |cidr: &str| cidr.parse::<IpNet>().ok().or_else(|| cidr.parse::<IpAddr>().ok().map(IpNet::from));
    let hit = |negated: bool| set.entries.iter().filter(|e| e.negated == negated).filter_map(|e| parse(&e.cidr)).any(|n| n.contains(&ip));
    hit(false) && !hit(true)
}

fn address_matches(value: &str, ip: IpAddr, guest: Option<&FwSource>, cluster: &FwSource) -> bool {
    let Ok(spec) = AddrSpec::parse(value) else { return false };
    spec.0.iter().any(|entry| match entry {
        AddrEntry::Net(net) => net.contains(&ip),
        AddrEntry::Range(a, b) => matches!(ip, IpAddr::V4(v4) if *a <= v4 && v4 <= *b),
        AddrEntry::Alias { scope, name } => alias(name, scope.as_deref(), guest, cluster).is_some_and(|n| n.contains(&ip)),
        AddrEntry::IpSet { scope, name } => in_ipset(ip, name, scope.as_deref(), guest, cluster),
    })
}

/// Whether `rule` (already known to be of the right direction and enabled) matches `probe`.
pub fn matches(rule: &FwRule, probe: &Probe<'_>, guest: Option<&FwSource>, cluster: &FwSource) -> bool {
    if let Some(iface) = rule.option("i") {
        if iface != probe.iface {
            return false;
        }
    }
    if let Some(source) = rule.option("source") {
        if !address_matches(source, probe.src, guest, cluster) {
            return false;
        }
    }
    if let Some(dest) = rule.option("dest") {
        if !address_matches(dest, probe.dst, guest, cluster) {
            return false;
        }
    }
    // A source port is chosen by the client; phoenix cannot know it, so such rules never match.
    if rule.option("sport").is_some() {
        return false;
    }
    let macro_name = rule.verdict.macro_name();
    if let Some(name) = macro_name {
        let Some((_, services)) = MACROS.iter().find(|(m, _)| m.eq_ignore_ascii_case(name)) else { return false };
        return services.iter().any(|&(proto, port)| proto == probe.proto && probe.dport == Some(port));
    }
    if let Some(proto) = rule.option("p") {
        match Proto::parse(proto) {
            Ok(p) if p.number == probe.proto => {}
            _ => return false,
        }
    }
    if let Some(dport) = rule.option("dport") {
        match (PortSet::parse(dport), probe.dport) {
            (Ok(set), Some(port)) if set.contains(port) => {}
            _ => return false,
        }
    }
    true
}
