//! Walking one new connection through the chains it meets, rule by rule.

use super::matching::{matches, Probe};
use super::state::{FirewallState, FwSource};
use crate::pve_fw::FwRule;
use crate::pve_fw::{Action, Direction};
use phoenix_model::model::{GuestId, Model};
use serde::Serialize;
use std::net::IpAddr;

/// One end of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "id")]
pub enum Endpoint {
    /// The Proxmox node itself.
    Host,
    Guest(GuestId),
    /// A system outside the node (a client, the router, a resolver).
    Outside(IpAddr),
}

impl Endpoint {
    /// The endpoint's address, when it has one.
    pub fn ip(self, model: &Model) -> Option<IpAddr> {
        match self {
            Endpoint::Host => model.host.ip().map(IpAddr::V4),
            Endpoint::Guest(id) => model.guests.get(&id).and_then(|g| g.address()).map(IpAddr::V4),
            Endpoint::Outside(ip) => Some(ip),
        }
    }
}

/// The connection's first packet: protocol number and destination port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet {
    pub proto: u8,
    pub dport: Option<u16>,
}

/// What decided a chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "by")]
pub enum Decision {
    /// A rule matched: where it is written and what it says.
    Rule { path: String, line: usize, text: String },
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
            Decision::Policy { path, option, action } => format!("no rule matches; {path} {option}: {action}"),
            Decision::NotInForce { reason } => format!("not filtered: {reason}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainVerdict {
    /// e.g. "OUT of LXC 102 (traefik)" or "IN of the host".
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

#[derive(Clone, Copy, PartialEq, Eq)]
enum Dir {
    In,
    Out,
}

impl Dir {
    /// The rules of this chain's direction.
    fn rule_direction(self) -> Direction {
        match self {
            Dir::In => Direction::In,
            Dir::Out => Direction::Out,
        }
    }

    fn word(self) -> &'static str {
        match self {
            Dir::In => "IN",
            Dir::Out => "OUT",
        }
    }
}

/// Runs `rules` (with their line numbers) of one file; groups are looked up in cluster.fw.
/// Collects the rule-by-rule story when tracing; `None` costs nothing.
type Trace<'t> = Option<&'t mut Vec<String>>;

fn note(trace: &mut Trace<'_>, line: impl FnOnce() -> String) {
    if let Some(lines) = trace {
        lines.push(line());
    }
}

#[allow(clippy::too_many_arguments)]
fn first_match(
    source: &FwSource,
    rules: &[FwRule],
    lines: &[usize],
    dir: Dir,
    probe: &Probe<'_>,
    guest: Option<&FwSource>,
    state: &FirewallState,
    trace: &mut Trace<'_>,
) -> Option<(Decision, bool)> {
    for (rule, line) in rules.iter().zip(lines) {
        if !rule.enabled {
            note(trace, || format!("    {}:{line}: {} -- disabled", source.path, rule.to_line()));
            continue;
        }
        if let Some(name) = rule.group() {
            let Some(index) = state.cluster.file.groups.iter().position(|g| g.name.eq_ignore_ascii_case(name)) else {
                note(trace, || format!("    {}:{line}: {} -- no such security group", source.path, rule.to_line()));
                continue;
            };
            note(trace, || format!("    {}:{line}: {} -- entering group {name}", source.path, rule.to_line()));
            let group = &state.cluster.file.groups[index];
            if let Some(found) =
                first_match(&state.cluster, &group.rules, &state.cluster.lines.groups[index], dir, probe, guest, state, trace)
            {
                return Some(found);
            }
            continue;
        }
        if rule.direction != dir.rule_direction() {
            note(trace, || format!("    {}:{line}: {} -- other direction", source.path, rule.to_line()));
            continue;
        }
        let Some(action) = rule.verdict.action() else {
            note(trace, || {
                format!("    {}:{line}: {} -- not an action pve-firewall accepts; it skips the rule", source.path, rule.to_line())
            });
            continue;
        };
        if !matches(rule, probe, guest, &state.cluster) {
            note(trace, || format!("    {}:{line}: {} -- no match", source.path, rule.to_line()));
            continue;
        }
        note(trace, || format!("    {}:{line}: {} -- MATCH", source.path, rule.to_line()));
        return Some((Decision::Rule { path: source.path.clone(), line: *line, text: rule.to_line() }, action == Action::Accept));
    }
    None
}

fn policy(source: &FwSource, dir: Dir, default: &str) -> (Decision, bool) {
    let option = match dir {
        Dir::In => "policy_in",
        Dir::Out => "policy_out",
    };
    let action = source.option(option).unwrap_or(default).to_string();
    let passes = action == "ACCEPT";
    (Decision::Policy { path: source.path.clone(), option: option.to_string(), action }, passes)
}

fn not_in_force(chain: String, reason: String) -> ChainVerdict {
    ChainVerdict { chain, decision: Decision::NotInForce { reason }, passes: true }
}

/// Without `enable: 1` in cluster.fw no chain filters anything; `consequence` says what that means here.
fn cluster_disabled(state: &FirewallState, chain: &str, consequence: &str) -> Option<ChainVerdict> {
    (state.cluster.option("enable") != Some("1")).then(|| {
        let enable = state.cluster.option("enable").unwrap_or("0 (default)");
        not_in_force(chain.to_string(), format!("the cluster firewall is disabled{consequence} ({} enable: {enable})", state.cluster.path))
    })
}

fn host_chain(state: &FirewallState, dir: Dir, probe: &Probe<'_>, trace: &mut Trace<'_>) -> ChainVerdict {
    let chain = format!("{} of the host", dir.word());
    if let Some(verdict) = cluster_disabled(state, &chain, "") {
        return verdict;
    }
    if state.host.option("enable") == Some("0") {
        return not_in_force(chain, format!("the host firewall is disabled ({} enable: 0)", state.host.path));
    }
    // host.fw rules are evaluated before cluster.fw rules, then the cluster policy.
    let found = first_match(&state.host, &state.host.file.rules, &state.host.lines.rules, dir, probe, None, state, trace)
        .or_else(|| first_match(&state.cluster, &state.cluster.file.rules, &state.cluster.lines.rules, dir, probe, None, state, trace));
    let (decision, passes) = found.unwrap_or_else(|| policy(&state.cluster, dir, if dir == Dir::In { "DROP" } else { "ACCEPT" }));
    ChainVerdict { chain, decision, passes }
}

fn guest_chain(state: &FirewallState, model: &Model, id: GuestId, dir: Dir, probe: &Probe<'_>, trace: &mut Trace<'_>) -> ChainVerdict {
    let label = model.guests.get(&id).map_or(format!("guest {id}"), |g| g.label());
    let chain = format!("{} of {label}", dir.word());
    if let Some(verdict) = cluster_disabled(state, &chain, ", so no guest firewall applies") {
        return verdict;
    }
    let Some(source) = state.guests.get(&id).filter(|s| s.present) else {
        return not_in_force(chain, format!("{} does not exist, so the guest firewall is disabled", phoenix_model::paths::guest_fw(id)));
    };
    if source.option("enable") != Some("1") {
        return not_in_force(
            chain,
            format!("the guest firewall is disabled ({} enable: {})", source.path, source.option("enable").unwrap_or("0 (default)")),
        );
    }
    if !state.nic_firewall.get(&id).copied().unwrap_or(false) {
        return not_in_force(chain, format!("{label}'s NIC net0 lacks firewall=1, so Proxmox filters none of its traffic"));
    }
    let found = first_match(source, &source.file.rules, &source.lines.rules, dir, probe, Some(source), state, trace);
    let (decision, passes) = found.unwrap_or_else(|| policy(source, dir, if dir == Dir::In { "DROP" } else { "ACCEPT" }));
    ChainVerdict { chain, decision, passes }
}

/// Evaluates a new connection from `src` to `dst`.
pub fn evaluate(state: &FirewallState, model: &Model, src: Endpoint, dst: Endpoint, packet: Packet) -> FirewallVerdict {
    run(state, model, src, dst, packet, &mut None)
}

/// Evaluates like [`evaluate`] and tells, chain by chain, every rule considered and why it
/// matched or not (`phoenix assess --trace`).
pub fn trace(state: &FirewallState, model: &Model, src: Endpoint, dst: Endpoint, packet: Packet) -> (FirewallVerdict, Vec<String>) {
    let mut lines = Vec::new();
    let verdict = run(state, model, src, dst, packet, &mut Some(&mut lines));
    (verdict, lines)
}

fn run(state: &FirewallState, model: &Model, src: Endpoint, dst: Endpoint, packet: Packet, trace: &mut Trace<'_>) -> FirewallVerdict {
    let (Some(src_ip), Some(dst_ip)) = (src.ip(model), dst.ip(model)) else {
        return FirewallVerdict { chains: Vec::new(), passes: false, unprotected: false };
    };
    if src == dst && !matches!(src, Endpoint::Outside(_)) {
        // A connection to one's own address goes over loopback and never reaches a Proxmox
        // firewall chain (those sit on the bridge port and the host's external interfaces).
        let label = match src {
            Endpoint::Guest(id) => model.guests.get(&id).map_or(format!("guest {id}"), |g| g.label()),
            _ => "the host".to_string(),
        };
        let reason = format!("the connection stays inside {label} (loopback)");
        note(trace, || format!("  => not filtered: {reason}"));
        let chain = ChainVerdict { chain: format!("inside {label}"), decision: Decision::NotInForce { reason }, passes: true };
        return FirewallVerdict { chains: vec![chain], passes: true, unprotected: false };
    }
    let mut chains = Vec::new();
    let probe = |iface: &'static str| Probe { src: src_ip, dst: dst_ip, proto: packet.proto, dport: packet.dport, iface };
    let bridge: &str = &state.host_bridge;
    for (endpoint, dir) in [(src, Dir::Out), (dst, Dir::In)] {
        let before = trace.as_ref().map_or(0, |t| t.len());
        let chain = match endpoint {
            Endpoint::Host => host_chain(state, dir, &Probe { iface: bridge, ..probe("") }, trace),
            Endpoint::Guest(id) => guest_chain(state, model, id, dir, &probe("net0"), trace),
            Endpoint::Outside(_) => continue,
        };
        if let Some(lines) = trace.as_deref_mut() {
            lines.insert(before, format!("{}:", chain.chain));
            let outcome = match &chain.decision {
                Decision::Rule { .. } => format!("  => {} by the matching rule", if chain.passes { "ACCEPT" } else { "DROP/REJECT" }),
                Decision::Policy { path, option, action } => format!("  => no rule matched: {path} {option}: {action}"),
                Decision::NotInForce { reason } => format!("  => not filtered: {reason}"),
            };
            lines.push(outcome);
        }
        chains.push(chain);
    }
    let passes = chains.iter().all(|c| c.passes);
    let unprotected = passes && chains.iter().any(|c| matches!(c.decision, Decision::NotInForce { .. }));
    FirewallVerdict { chains, passes, unprotected }
}
