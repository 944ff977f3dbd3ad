//! Walking one new connection through the chains it meets, step by step: the source's OUT
//! chain (its NIC's, or the host's), then the destination's IN chain, each built as
//! pve-firewall builds it ([`super::chain`]).

use super::chain::{guest_chain, host_chain, Chain, Dir, Effect, Origin, Step};
use super::matching::{matches, Probe};
use super::state::FirewallState;
use phoenix_model::model::{GuestId, Model};
use serde::Serialize;
use std::net::IpAddr;

/// One end of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "id")]
pub enum Endpoint {
    /// The Proxmox node itself (the first node of a cluster).
    Host,
    /// Another node of the cluster, by its index in `Host::nodes` (1 and up).
    Node(u8),
    Guest(GuestId),
    /// A system outside the node (a client, the router, a resolver).
    Outside(IpAddr),
}

impl Endpoint {
    /// The endpoint's address, when it has one.
    pub fn ip(self, model: &Model) -> Option<IpAddr> {
        match self {
            Endpoint::Host => model.host.ip().map(IpAddr::V4),
            Endpoint::Node(index) => model.host.nodes.get(usize::from(index))?.address.as_ref().map(|a| IpAddr::V4(a.value)),
            Endpoint::Guest(id) => model.guests.get(&id).and_then(|g| g.address()).map(IpAddr::V4),
            Endpoint::Outside(ip) => Some(ip),
        }
    }
}

/// The connection's first packet: protocol number, destination port, and what else can be known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Packet {
    pub proto: u8,
    pub dport: Option<u16>,
    /// The source port, when the flow fixes it (DHCP); usually chosen by the client and unknown.
    pub sport: Option<u16>,
    /// ICMP type and code.
    pub icmp: Option<(u8, u8)>,
}

impl Packet {
    /// A packet of protocol `proto` to `port`.
    pub fn to(proto: u8, port: u16) -> Packet {
        Packet { proto, dport: Some(port), ..Packet::default() }
    }
}

/// What decided a chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "by")]
pub enum Decision {
    /// A rule matched: where it is written and what it says.
    Rule { path: String, line: usize, text: String },
    /// A rule pve-firewall adds itself matched: its chain, the Perl function and what it does.
    Builtin { chain: String, function: String, text: String },
    /// No rule matched; the chain's policy applied.
    Policy { path: String, option: String, action: String },
    /// The chain does not filter this traffic at all.
    NotInForce { reason: String },
}

impl Decision {
    /// One line of evidence: the rule with file and line, the policy, or why nothing filters.
    pub fn describe(&self) -> String {
        match self {
            Decision::Rule { path, line, text } => format!("{path}:{line}: {text}"),
            Decision::Builtin { chain, function, text } => format!("pve-firewall's own rule ({chain}, {function}): {text}"),
            Decision::Policy { path, option, action } => format!("no rule matches; {path} {option}: {action}"),
            Decision::NotInForce { reason } => format!("not filtered: {reason}"),
        }
    }

    fn of(origin: &Origin) -> Decision {
        match origin.clone() {
            Origin::Rule { path, line, text } => Decision::Rule { path, line, text },
            Origin::Builtin { chain, function, text } => Decision::Builtin { chain, function: function.to_string(), text },
            Origin::Policy { path, option, action } => Decision::Policy { path, option, action },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainVerdict {
    /// e.g. "OUT of LXC 102 (traefik), net0" or "IN of the host".
    pub chain: String,
    pub decision: Decision,
    pub passes: bool,
}

/// The verdict for one connection: every chain it meets, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FirewallVerdict {
    pub chains: Vec<ChainVerdict>,
    pub passes: bool,
    /// Passes only because some chain on the way is not in force.
    pub unprotected: bool,
}

/// Collects the rule-by-rule story when tracing; `None` costs nothing.
type Trace<'t> = Option<&'t mut Vec<String>>;

fn note(trace: &mut Trace<'_>, line: impl FnOnce() -> String) {
    if let Some(lines) = trace {
        lines.push(line());
    }
}

/// Walks `chain`'s steps: the first matching one decides.
fn walk(chain: &Chain, probe: &Probe<'_>, trace: &mut Trace<'_>) -> ChainVerdict {
    for step in &chain.steps {
        match step {
            Step::Note(text) => note(trace, || text.clone()),
            Step::Skip { origin, reason } => note(trace, || format!("    {} -- {reason}", origin.describe())),
            Step::Match { origin, cond, effect } => {
                if !matches(cond, probe) {
                    if !matches!(origin, Origin::Policy { .. }) {
                        note(trace, || format!("    {} -- no match", origin.describe()));
                    }
                    continue;
                }
                if !matches!(origin, Origin::Policy { .. }) {
                    note(trace, || format!("    {} -- MATCH", origin.describe()));
                }
                return ChainVerdict { chain: chain.name.clone(), decision: Decision::of(origin), passes: *effect == Effect::Accept };
            }
        }
    }
    let reason = chain.unfiltered.clone().unwrap_or_else(|| "no rule decides".into());
    ChainVerdict { chain: chain.name.clone(), decision: Decision::NotInForce { reason }, passes: true }
}

fn label(model: &Model, id: GuestId) -> String {
    model.guests.get(&id).map_or(format!("guest {id}"), |g| g.label())
}

/// The bridge a guest's NIC for `ip` is on (where its traffic enters and leaves the host).
fn bridge_of(state: &FirewallState, endpoint: Endpoint, ip: IpAddr) -> Option<&str> {
    let Endpoint::Guest(id) = endpoint else { return None };
    state.nets.get(&id)?.nic_for(ip)?.bridge.as_deref()
}

/// Evaluates a new connection from `src` to `dst`.
pub fn evaluate(state: &FirewallState, model: &Model, src: Endpoint, dst: Endpoint, packet: Packet) -> FirewallVerdict {
    match (src.ip(model), dst.ip(model)) {
        (Some(s), Some(d)) => evaluate_between(state, model, (src, s), (dst, d), packet),
        _ => FirewallVerdict { chains: Vec::new(), passes: false, unprotected: false },
    }
}

/// Evaluates like [`evaluate`], each end with the address it uses (which picks a guest's NIC):
/// a connection to a guest's second NIC meets that NIC's chains.
pub fn evaluate_between(
    state: &FirewallState,
    model: &Model,
    src: (Endpoint, IpAddr),
    dst: (Endpoint, IpAddr),
    packet: Packet,
) -> FirewallVerdict {
    run(state, model, src, dst, packet, &mut None)
}

/// Evaluates like [`evaluate`] and tells, chain by chain, every rule considered and why it
/// matched or not (`phoenix assess --trace`). Each end comes with the address it uses, which
/// picks the guest's NIC.
pub fn trace(
    state: &FirewallState,
    model: &Model,
    src: (Endpoint, IpAddr),
    dst: (Endpoint, IpAddr),
    packet: Packet,
) -> (FirewallVerdict, Vec<String>) {
    let mut lines = Vec::new();
    let verdict = run(state, model, src, dst, packet, &mut Some(&mut lines));
    (verdict, lines)
}

fn run(
    state: &FirewallState,
    model: &Model,
    (src, src_ip): (Endpoint, IpAddr),
    (dst, dst_ip): (Endpoint, IpAddr),
    packet: Packet,
    trace: &mut Trace<'_>,
) -> FirewallVerdict {
    if src == dst && !matches!(src, Endpoint::Outside(_)) {
        // A connection to one's own address goes over loopback and never reaches a Proxmox
        // firewall chain (those sit on the bridge port and the host's external interfaces).
        let label = match src {
            Endpoint::Guest(id) => label(model, id),
            _ => "the host".to_string(),
        };
        let reason = format!("the connection stays inside {label} (loopback)");
        note(trace, || format!("  => not filtered: {reason}"));
        let chain = ChainVerdict { chain: format!("inside {label}"), decision: Decision::NotInForce { reason }, passes: true };
        return FirewallVerdict { chains: vec![chain], passes: true, unprotected: false };
    }
    let version = if src_ip.is_ipv4() { 4 } else { 6 };
    let mut chains = Vec::new();
    for (endpoint, dir) in [(src, Dir::Out), (dst, Dir::In)] {
        let (own_ip, peer, peer_ip) = if dir == Dir::Out { (src_ip, dst, dst_ip) } else { (dst_ip, src, src_ip) };
        // The host sees a packet on the bridge of the guest NIC it comes from or goes to.
        let iface = bridge_of(state, peer, peer_ip).unwrap_or(&state.host_bridge);
        let probe =
            Probe { src: src_ip, dst: dst_ip, proto: packet.proto, dport: packet.dport, sport: packet.sport, icmp: packet.icmp, iface };
        let chain = match endpoint {
            Endpoint::Host | Endpoint::Node(_) => {
                // Host traffic is judged at the node it concerns, by that node's host.fw.
                let at = state.for_endpoint(endpoint);
                at.chains.get((None, String::new(), dir, version), || host_chain(at, dir, version))
            }
            Endpoint::Guest(id) => {
                let nic = state.nets.get(&id).and_then(|n| n.nic_for(own_ip));
                let key = (Some(id), nic.map_or(String::new(), |n| n.key.clone()), dir, version);
                state.chains.get(key, || guest_chain(state, id, &label(model, id), nic, dir, version))
            }
            Endpoint::Outside(_) => continue,
        };
        let before = trace.as_ref().map_or(0, |t| t.len());
        let verdict = walk(&chain, &probe, trace);
        if let Some(lines) = trace.as_deref_mut() {
            lines.insert(before, format!("{}:", verdict.chain));
            let outcome = match &verdict.decision {
                Decision::Rule { .. } | Decision::Builtin { .. } => {
                    format!("  => {} by the matching rule", if verdict.passes { "ACCEPT" } else { "DROP/REJECT" })
                }
                Decision::Policy { path, option, action } => format!("  => no rule matched: {path} {option}: {action}"),
                Decision::NotInForce { reason } => format!("  => not filtered: {reason}"),
            };
            lines.push(outcome);
        }
        chains.push(verdict);
    }
    let passes = chains.iter().all(|c| c.passes);
    let unprotected = passes && chains.iter().any(|c| matches!(c.decision, Decision::NotInForce { .. }));
    FirewallVerdict { chains, passes, unprotected }
}
