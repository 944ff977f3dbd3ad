//! Does one chain step match one packet? The step's conditions are already resolved
//! ([`super::chain`]): what is left is comparing addresses, protocol, ports, ICMP type and
//! interface, as iptables compares them.

use super::chain::{is_broadcast, Cond, IcmpMatch};
use std::net::IpAddr;

/// The first packet of a connection, from a chain's point of view.
pub struct Probe<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: u8,
    pub dport: Option<u16>,
    /// Chosen by the client; unknown for most flows, and then rules on it never match.
    pub sport: Option<u16>,
    /// ICMP type and code.
    pub icmp: Option<(u8, u8)>,
    /// The host's interface the packet comes in on (IN) or leaves by (OUT).
    pub iface: &'a str,
}

/// Whether `cond` matches `probe`.
pub fn matches(cond: &Cond, probe: &Probe<'_>) -> bool {
    if cond.iface.as_deref().is_some_and(|iface| !iface_matches(iface, probe.iface)) {
        return false;
    }
    if cond.src.as_ref().is_some_and(|set| !set.contains(probe.src)) || cond.dst.as_ref().is_some_and(|set| !set.contains(probe.dst)) {
        return false;
    }
    if cond.proto.is_some_and(|p| p != probe.proto) {
        return false;
    }
    let port = |set: &Option<phoenix_model::model::PortSet>, port: Option<u16>| match set {
        None => true,
        Some(set) => port.is_some_and(|p| set.contains(p)),
    };
    if !port(&cond.dport, probe.dport) || !port(&cond.sport, probe.sport) {
        return false;
    }
    if let Some(icmp) = cond.icmp {
        let Some((ty, code)) = probe.icmp else { return false };
        if let IcmpMatch::Type(want, want_code) = icmp {
            if want != ty || want_code.is_some_and(|c| c != code) {
                return false;
            }
        }
    }
    !cond.dst_broadcast || is_broadcast(probe.dst)
}

/// iptables' `-i`: a trailing `+` matches every interface with that prefix.
fn iface_matches(pattern: &str, iface: &str) -> bool {
    match pattern.strip_suffix('+') {
        Some(prefix) => iface.starts_with(prefix),
        None => pattern == iface,
    }
}
