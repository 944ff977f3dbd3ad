//! The Proxmox VE firewall, evaluated as pve-firewall's iptables back end applies it
//! (pve-firewall `src/PVE/Firewall.pm`; DESIGN.md):
//! - guest traffic passes the source NIC's OUT chain, then the destination NIC's IN chain; a
//!   NIC's chains exist only when the cluster is enabled and the NIC has `firewall=1`, and hold
//!   the guest's rules only when its `.fw` enables it; each `netN` has its own;
//! - host traffic passes the host's chain: built-in filters, host.fw rules, cluster.fw rules,
//!   the management and local-network accepts, then the cluster policy;
//! - rules `verify_rule` finds errors in, and lines the parser drops, decide nothing; they are
//!   reported ([`FirewallState::skipped`]) and shown in traces with the reason.
//!
//! A hop that passes only because a chain is not in force is reported as unprotected, never as
//! allowed by a rule. Evaluation works on parsed `.fw` files, so rendered and deployed
//! configurations are judged the same way, and every verdict cites file and line, or the
//! built-in rule and the Perl function it follows.

mod builtin;
pub mod chain;
pub mod corosync;
mod evaluate;
pub(crate) mod matching;
mod state;

pub use evaluate::{evaluate, evaluate_between, trace, ChainVerdict, Decision, Endpoint, FirewallVerdict, Packet};
pub use state::{FirewallState, FwSource, GuestNet, Nic, Skipped};

use phoenix_model::model::Model;
use std::net::IpAddr;

/// Reads an endpoint as users write it: `host`, a guest id or an IP address (a guest's or the
/// host's address names that endpoint; any other address is outside the node).
pub fn parse_endpoint(model: &Model, text: &str) -> Result<Endpoint, String> {
    if text.eq_ignore_ascii_case("host") {
        return Ok(Endpoint::Host);
    }
    if let Some(index) = model.host.nodes.iter().position(|n| n.name == text) {
        return Ok(node_endpoint(index));
    }
    if let Ok(id) = text.parse::<u32>() {
        return if model.guests.contains_key(&id) { Ok(Endpoint::Guest(id)) } else { Err(format!("guest {id} is not defined")) };
    }
    let ip: IpAddr = text.parse().map_err(|_| format!("`{text}` is not `host`, a guest id or an IP address"))?;
    Ok(match model.address_index().guest(ip) {
        Some(guest) => Endpoint::Guest(guest.id),
        None if model.host.ip().map(IpAddr::V4) == Some(ip) => Endpoint::Host,
        None => match model.host.nodes.iter().position(|n| n.address.as_ref().is_some_and(|a| IpAddr::V4(a.value) == ip)) {
            Some(index) => node_endpoint(index),
            None => Endpoint::Outside(ip),
        },
    })
}

/// The first node is `Host`; the others are `Node(index)`.
fn node_endpoint(index: usize) -> Endpoint {
    match index {
        0 => Endpoint::Host,
        _ => Endpoint::Node(index as u8),
    }
}

/// Like [`parse_endpoint`], with the address the endpoint uses: an address on any NIC of a
/// guest (as the judged files configure its NICs) names that guest and that NIC.
pub fn parse_endpoint_at(state: &FirewallState, model: &Model, text: &str) -> Result<(Endpoint, IpAddr), String> {
    let endpoint = parse_endpoint(model, text)?;
    let given: Option<IpAddr> = text.parse().ok();
    let endpoint = match (endpoint, given) {
        (Endpoint::Outside(ip), _) => state
            .nets
            .iter()
            .find(|(_, net)| net.nics.iter().any(|n| n.ip.is_some_and(|a| IpAddr::V4(a.addr()) == ip)))
            .map_or(endpoint, |(id, _)| Endpoint::Guest(*id)),
        (other, _) => other,
    };
    let ip = given.or_else(|| endpoint.ip(model)).ok_or_else(|| format!("`{text}` has no address in the configuration"))?;
    Ok((endpoint, ip))
}

/// Reads `443`, `443/tcp`, `53/udp`, `icmp` (an echo request) or `icmp/<type>`.
pub fn parse_packet(text: &str) -> Result<Packet, String> {
    let lower = text.to_ascii_lowercase();
    if let Some(rest) = lower.strip_prefix("icmp") {
        let name = rest.strip_prefix('/').unwrap_or(if rest.is_empty() { "echo-request" } else { rest });
        let (ty, code) = crate::pve_fw::addr::icmp_type(name).ok_or_else(|| format!("`{name}` is not an ICMP type iptables knows"))?;
        return Ok(Packet { proto: 1, icmp: Some((ty, code.unwrap_or(0))), ..Packet::default() });
    }
    let (port, proto) = text.split_once('/').unwrap_or((text, "tcp"));
    let proto = match proto.to_ascii_lowercase().as_str() {
        "tcp" => 6,
        "udp" => 17,
        other => return Err(format!("protocol `{other}` is not tcp, udp or icmp")),
    };
    let port = port.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| format!("`{port}` is not a port"))?;
    Ok(Packet::to(proto, port))
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
    let (src, dst, packet) = match (parse_endpoint_at(state, model, src), parse_endpoint_at(state, model, dst), parse_packet(port)) {
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
