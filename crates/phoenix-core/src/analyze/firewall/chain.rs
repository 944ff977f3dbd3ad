//! The chains pve-firewall's iptables back end generates, as data: for one direction of one
//! guest NIC, or of the host, the ordered steps a new IPv4 or IPv6 connection meets (built-in
//! rules, the user's rules with macros expanded and addresses resolved, then the policy), and
//! the rules it leaves out with the reason. The evaluator walks these steps and the lab
//! compiles them to nftables, so both apply one reading of the files.
//!
//! Follows pve-firewall `src/PVE/Firewall.pm`: `compile_iptables_filter` (which guests get
//! chains), `ruleset_create_vm_chain` and `ruleset_generate_vm_rules` (a guest NIC's chains),
//! `enable_host_firewall` (the host's), `ruleset_add_group_rule` and `generate_group_rules`
//! (security groups, built from cluster.fw alone), `ruleset_add_chain_policy` and
//! `$pve_std_chains_conf` (policies through PVEFW-Drop and PVEFW-Reject; see [`super::builtin`]).
//! What it leaves out, because no connection phoenix judges can meet it: conntrack (verdicts
//! are for a connection's first packet; RELATED/ESTABLISHED accepts and the INVALID drop do
//! not decide it), the MAC filter (a guest's packets carry its own MAC), NDP and router
//! advertisements (IPv6 link traffic), logging and the IPS queue.
//! Must not match packets (that is `matching`) or print anything.

use super::builtin;
use super::state::{rule_errors, FirewallState, FwSource, Nic};
use crate::pve_fw::addr;
use crate::pve_fw::rule::{format_line, Rule};
use ipnet::IpNet;
use phoenix_model::model::{GuestId, PortSet};
use std::net::{IpAddr, Ipv4Addr};

/// A chain's direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dir {
    In,
    Out,
}

impl Dir {
    pub fn word(self) -> &'static str {
        match self {
            Dir::In => "IN",
            Dir::Out => "OUT",
        }
    }

    fn rule_type(self) -> &'static str {
        match self {
            Dir::In => "in",
            Dir::Out => "out",
        }
    }
}

/// What a matching step does with the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Accept,
    Drop,
    /// `PVEFW-reject`: a TCP reset or an ICMP error (ICMP and broadcasts are dropped instead).
    Reject,
}

/// One address block of a set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Block {
    Net(IpNet),
    Range(IpAddr, IpAddr),
}

impl Block {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match self {
            Block::Net(net) => net.contains(&ip),
            Block::Range(a, b) => a.is_ipv4() == ip.is_ipv4() && *a <= ip && ip <= *b,
        }
    }

    pub fn is_ipv4(&self) -> bool {
        match self {
            Block::Net(net) => net.addr().is_ipv4(),
            Block::Range(a, _) => a.is_ipv4(),
        }
    }
}

/// pve-firewall's spelling: a network, or a range `a-b`.
impl std::fmt::Display for Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Block::Net(net) => write!(f, "{net}"),
            Block::Range(a, b) => write!(f, "{a}-{b}"),
        }
    }
}

/// The addresses a source or destination match selects: in `include` and not in `exclude`
/// (an ipset's `!` entries), or the opposite when `negated` (the ipfilter's `! --match-set`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddrSet {
    pub include: Vec<Block>,
    pub exclude: Vec<Block>,
    pub negated: bool,
}

impl AddrSet {
    pub fn of(blocks: Vec<Block>) -> AddrSet {
        AddrSet { include: blocks, ..AddrSet::default() }
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let inside = self.include.iter().any(|b| b.contains(ip)) && !self.exclude.iter().any(|b| b.contains(ip));
        inside != self.negated
    }
}

/// An ICMP type match: a type, optionally one code (iptables' `--icmp-type` names), or any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpMatch {
    Any,
    Type(u8, Option<u8>),
}

/// What a step matches; `None` fields match anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cond {
    /// The interface (iptables `-i` in an IN chain, `-o` in an OUT chain; host chains only).
    pub iface: Option<String>,
    pub src: Option<AddrSet>,
    pub dst: Option<AddrSet>,
    pub proto: Option<u8>,
    pub dport: Option<PortSet>,
    pub sport: Option<PortSet>,
    pub icmp: Option<IcmpMatch>,
    /// `-m addrtype --dst-type BROADCAST|MULTICAST|ANYCAST` or `-d 224.0.0.0/4` (PVEFW-DropBroadcast).
    pub dst_broadcast: bool,
}

/// Where a step comes from, for the trace and the verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A rule line of a `.fw` file (a security group's rules cite cluster.fw).
    Rule { path: String, line: usize, text: String },
    /// A rule pve-firewall itself adds: the chain or set, the Perl function, what it does.
    Builtin { chain: String, function: &'static str, text: String },
    /// The chain's policy (its final catch-all rule).
    Policy { path: String, option: String, action: String },
}

impl Origin {
    pub fn describe(&self) -> String {
        match self {
            Origin::Rule { path, line, text } => format!("{path}:{line}: {text}"),
            Origin::Builtin { chain, function, text } => format!("[{chain}, {function}] {text}"),
            Origin::Policy { path, option, action } => format!("{path} {option}: {action}"),
        }
    }
}

/// One step of a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A rule that can decide: the first one that matches does.
    Match { origin: Origin, cond: Cond, effect: Effect },
    /// A rule pve-firewall leaves out of this chain, and why.
    Skip { origin: Origin, reason: String },
    /// A remark for the trace (a group entered, a set consulted).
    Note(String),
}

/// A chain of steps, or why no chain filters this traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    /// e.g. "OUT of LXC 102 (traefik), net0" or "IN of the host".
    pub name: String,
    pub steps: Vec<Step>,
    /// When no step matches: the traffic passes unfiltered, for this reason (a chain with a
    /// policy always ends in a matching step).
    pub unfiltered: Option<String>,
}

/// The IP version of a chain (pve-firewall builds each chain once per version).
pub type Version = u8;

/// Whether the cluster firewall is on (`parse_clusterfw_option`: `enable: N` above 1 is a time
/// stamp, on only until 60 s after it; unknown time counts as long after).
pub fn cluster_enabled(state: &FirewallState) -> Result<(), String> {
    let path = &state.cluster.path;
    match state.cluster.option("enable").map(|v| v.parse::<i64>()) {
        Some(Ok(1)) => Ok(()),
        Some(Ok(stamp)) if stamp > 1 => match state.now {
            Some(now) if now - stamp <= 60 => Ok(()),
            Some(_) => Err(format!(
                "the cluster firewall is disabled ({path} enable: {stamp} is a time stamp; parse_clusterfw_option keeps it on only for 60 s after it)"
            )),
            None => Err(format!(
                "the cluster firewall is disabled ({path} enable: {stamp} is a time stamp, on for 60 s after it (parse_clusterfw_option); no clock was given, so it counts as long past)"
            )),
        },
        Some(_) => Err(format!("the cluster firewall is disabled ({path} enable: {})", state.cluster.option("enable").unwrap_or_default())),
        None => Err(format!("the cluster firewall is disabled ({path} enable: 0 (default))")),
    }
}

/// Where names in a rule are resolved: the file's own aliases and ipsets, then the cluster's.
#[derive(Clone, Copy)]
pub struct Scope<'s> {
    pub local: Option<&'s FwSource>,
    pub cluster: &'s FwSource,
    /// The node's network (the `management` ipset's implicit entry).
    pub local_network: Option<IpNet>,
}

impl<'s> Scope<'s> {
    /// `resolve_alias`: `dc/` the cluster's, `guest/` the file's own, else the file's then the cluster's.
    fn alias(&self, reference: &str) -> Option<Block> {
        let (scope, name) = scoped(reference);
        let find = |source: &FwSource| source.conf.aliases.get(&name.to_ascii_lowercase()).and_then(|a| block(&a.cidr));
        match scope {
            Some("dc") => find(self.cluster),
            Some("guest") => self.local.and_then(find),
            _ => self.local.and_then(find).or_else(|| find(self.cluster)),
        }
    }

    /// The entries of ipset `reference` (`+name`, `+dc/name`, `+guest/name`), as
    /// `generate_ipset_chains` fills it: aliases resolved (an unknown one drops only its entry),
    /// entries with errors left out, `!` entries excluded. `management` also holds the node's
    /// network (`compile_ipsets`).
    pub fn ipset(&self, reference: &str) -> Option<AddrSet> {
        let (scope, name) = scoped(reference);
        let in_file = |source: &'s FwSource| source.conf.ipsets.get(name).map(|entries| (source, entries));
        let (owner, entries) = match scope {
            Some("dc") => in_file(self.cluster),
            Some("guest") => self.local.and_then(in_file),
            _ => self.local.and_then(in_file).or_else(|| in_file(self.cluster)),
        }?;
        // A cluster ipset resolves its aliases in the cluster alone; a guest's in the guest, then the cluster.
        let own = Scope { local: (!std::ptr::eq(owner, self.cluster)).then_some(owner), ..*self };
        let mut set = AddrSet::default();
        for entry in entries.iter().filter(|e| e.errors.is_empty()) {
            let Some(found) = block(&entry.cidr).or_else(|| own.alias(&entry.cidr)) else { continue };
            if entry.nomatch {
                set.exclude.push(found);
            } else {
                set.include.push(found);
            }
        }
        if std::ptr::eq(owner, self.cluster) && name == "management" {
            set.include.extend(self.local_network.map(Block::Net));
        }
        Some(set)
    }

    /// A rule's `-source`/`-dest`: a literal list, an alias or an ipset (`ipt_gen_src_or_dst_match`).
    fn addresses(&self, value: &str) -> Option<AddrSet> {
        if let Some(set) = value.strip_prefix('+') {
            return self.ipset(set);
        }
        if let Some(list) = value.split(',').map(block).collect::<Option<Vec<_>>>() {
            return Some(AddrSet::of(list));
        }
        self.alias(value).map(|found| AddrSet::of(vec![found]))
    }
}

fn scoped(reference: &str) -> (Option<&str>, &str) {
    match reference.split_once('/') {
        Some((scope @ ("dc" | "guest" | "sdn"), name)) => (Some(scope), name),
        _ => (None, reference),
    }
}

/// An address, network or range as pve-firewall writes them.
pub fn block(text: &str) -> Option<Block> {
    if let Some((a, b)) = text.split_once('-') {
        if let (Ok(a), Ok(b)) = (a.trim().parse::<IpAddr>(), b.trim().parse::<IpAddr>()) {
            return Some(Block::Range(a, b));
        }
    }
    text.parse::<IpNet>().ok().map(|n| Block::Net(n.trunc())).or_else(|| text.parse::<IpAddr>().ok().map(|ip| Block::Net(IpNet::from(ip))))
}

/// A port list (`80,443`, `8000:8010`, service names), as iptables' `--dport` reads it.
fn ports(text: &str) -> Option<PortSet> {
    let mut ranges = Vec::new();
    for item in text.split(',').filter(|i| !i.is_empty()) {
        let number = |p: &str| p.parse::<u16>().ok().or_else(|| addr::service_port(p));
        ranges.push(match item.split_once(':') {
            Some((a, b)) => (number(a)?, number(b)?),
            None => (number(item)?, number(item)?),
        });
    }
    Some(PortSet(ranges))
}

/// What a rule line builds into: the file it is in, its line, and where its names resolve.
pub struct RuleSite<'s> {
    pub source: &'s FwSource,
    pub line: usize,
    pub scope: Scope<'s>,
    /// The `-i` a host GROUP rule puts on the jump into its group.
    pub group_iface: Option<String>,
}

/// The steps of one rule whose type and action decide (`in`/`out` with ACCEPT, DROP or REJECT):
/// one per rule of its macro (`$apply_macro`), or one.
pub fn decide_steps(rule: &Rule, site: &RuleSite<'_>, version: Version, host: bool) -> Vec<Step> {
    let origin = Origin::Rule { path: site.source.path.clone(), line: site.line, text: format_line(rule, true) };
    let effect = match rule.get("action") {
        Some("ACCEPT") => Effect::Accept,
        Some("DROP") => Effect::Drop,
        _ => Effect::Reject,
    };
    let mut base =
        Cond { iface: if host { rule.get("iface").map(str::to_string).or(site.group_iface.clone()) } else { None }, ..Cond::default() };
    for (key, slot) in [("source", &mut base.src), ("dest", &mut base.dst)] {
        if let Some(value) = rule.get(key).filter(|v| !v.is_empty()) {
            match site.scope.addresses(value) {
                Some(set) => *slot = Some(set),
                None => {
                    return vec![Step::Skip { origin, reason: format!("{key} `{value}` cannot be resolved; the rule matches nothing") }]
                }
            }
        }
    }
    let specs: Vec<(Option<&str>, Option<&str>, Option<&str>)> = match rule.get("macro").and_then(phoenix_model::pve::macros::find) {
        Some(known) => {
            let rules = if version == 6 { known.ipv6_rules.unwrap_or(known.rules) } else { known.rules };
            if known.ipv6_only && version != 6 {
                return vec![Step::Skip { origin, reason: format!("macro {} exists for IPv6 only", known.name) }];
            }
            // `$apply_macro`: each template rule, with the rule's own parameters where the
            // template sets none (a different value is refused earlier by verify_rule).
            let own = |key: &str| rule.get(key).filter(|v| !v.is_empty());
            rules.iter().map(|m| (Some(m.proto), m.dport.or(own("dport")), m.sport.or(own("sport")))).collect()
        }
        None => vec![(rule.get("proto"), rule.get("dport"), rule.get("sport"))],
    };
    let mut steps = Vec::new();
    for (proto, dport, sport) in specs {
        let mut cond = base.clone();
        match spec_cond(&mut cond, proto.filter(|p| !p.is_empty()), dport.filter(|d| !d.is_empty()), sport.filter(|s| !s.is_empty()), rule)
        {
            Ok(()) => steps.push(Step::Match { origin: origin.clone(), cond, effect }),
            Err(reason) => return vec![Step::Skip { origin, reason }],
        }
    }
    steps
}

/// Protocol, ports and ICMP type into `cond` (`ipt_rule_to_cmds`: for ICMP the destination
/// port carries the ICMP type, "we re-use dport to store --icmp-type").
fn spec_cond(cond: &mut Cond, proto: Option<&str>, dport: Option<&str>, sport: Option<&str>, rule: &Rule) -> Result<(), String> {
    let Some(proto) = proto else { return Ok(()) };
    let number = addr::protocol_number(proto).ok_or_else(|| format!("protocol `{proto}` is not in /etc/protocols"))?;
    cond.proto = Some(number);
    let icmp_type = rule.get("icmp-type").filter(|t| !t.is_empty());
    if number == 1 || number == 58 {
        let name = dport.or(icmp_type);
        cond.icmp = match name {
            None => None,
            Some("any") => Some(IcmpMatch::Any),
            Some(name) if number == 1 => {
                let (ty, code) = addr::icmp_type(name).ok_or_else(|| format!("invalid icmp-type '{name}' ($is_valid_icmp_type)"))?;
                Some(IcmpMatch::Type(ty, code))
            }
            // IPv6 ICMP types only matter to IPv6 chains, which phoenix judges by protocol alone.
            Some(_) => Some(IcmpMatch::Any),
        };
        return Ok(());
    }
    if let Some(dport) = dport {
        cond.dport = Some(ports(dport).ok_or_else(|| format!("dport `{dport}` cannot be read"))?);
    }
    if let Some(sport) = sport {
        cond.sport = Some(ports(sport).ok_or_else(|| format!("sport `{sport}` cannot be read"))?);
    }
    Ok(())
}

/// The user rules of `rules` (with their lines) for one chain, groups inlined.
/// `nic` is the guest NIC the chain is for (`next if $rule->{iface} && $rule->{iface} ne $netid`).
#[allow(clippy::too_many_arguments)]
pub fn user_rules(
    state: &FirewallState,
    source: &FwSource,
    rules: &[Rule],
    lines: &[usize],
    scope: Scope<'_>,
    dir: Dir,
    version: Version,
    nic: Option<&str>,
    function: &'static str,
    out: &mut Vec<Step>,
) {
    for (index, rule) in rules.iter().enumerate() {
        let line = lines.get(index).copied().unwrap_or_default();
        let origin = || Origin::Rule { path: source.path.clone(), line, text: format_line(rule, true) };
        let skip = |reason: String| Step::Skip { origin: origin(), reason };
        let kind = rule.get("type").unwrap_or_default();
        if let (Some(nic), Some(iface)) = (nic, rule.get("iface").filter(|i| !i.is_empty())) {
            if iface != nic {
                out.push(skip(format!("-i {iface}: {function} puts it on {iface}'s chain only")));
                continue;
            }
        }
        if rule.get("enable") != Some("1") {
            out.push(skip("disabled".into()));
            continue;
        }
        if !rule.errors.is_empty() {
            out.push(skip(format!("pve-firewall skips it ({function}: `next if $rule->{{errors}}`): {}", rule_errors(rule))));
            continue;
        }
        if rule.get("ipversion").and_then(|v| v.parse::<u8>().ok()).is_some_and(|v| v != version) {
            out.push(skip(format!("an IPv{} rule; this chain is IPv{version}", if version == 4 { 6 } else { 4 })));
            continue;
        }
        match kind {
            "group" => {
                let name = rule.get("action").unwrap_or_default();
                // Group chains hold the group's rules with the cluster's names (generate_group_rules).
                let Some(group) = state.cluster.conf.groups.get(name) else {
                    out.push(skip(format!(
                        "no such security group '{name}' (group names are lower case; the jump goes to an empty chain)"
                    )));
                    continue;
                };
                out.push(Step::Note(format!("    {} -- entering group {name}", origin().describe())));
                let group_lines = state.cluster.lines.groups.get(name).map(Vec::as_slice).unwrap_or_default();
                let group_scope = Scope { local: None, ..scope };
                let iface = if nic.is_none() { rule.get("iface").map(str::to_string) } else { None };
                let before = out.len();
                user_rules(state, &state.cluster, group, group_lines, group_scope, dir, version, None, "generate_group_rules", out);
                if let Some(iface) = iface {
                    // The host's jump into the group carries `-i` (enable_host_firewall's `iface_in`).
                    for step in &mut out[before..] {
                        if let Step::Match { cond, .. } = step {
                            cond.iface.get_or_insert_with(|| iface.clone());
                        }
                    }
                }
            }
            "forward" => {
                out.push(skip("a FORWARD rule: the iptables back end compiles none (only proxmox-firewall's nftables does)".into()))
            }
            kind if kind == dir.rule_type() => {
                let site = RuleSite { source, line, scope, group_iface: None };
                out.extend(decide_steps(rule, &site, version, nic.is_none()));
            }
            _ => out.push(skip("other direction".into())),
        }
    }
}

/// The chain of the host in `dir` (`enable_host_firewall`).
pub fn host_chain(state: &FirewallState, dir: Dir, version: Version) -> Chain {
    // A peer's state is read from its own host.fw (`/etc/pve/nodes/<node>/host.fw`).
    let name = match state.peer_name() {
        Some(node) => format!("{} of node {node}", dir.word()),
        None => format!("{} of the host", dir.word()),
    };
    if let Err(reason) = cluster_enabled(state) {
        return Chain { name, steps: Vec::new(), unfiltered: Some(reason) };
    }
    if state.host.option("enable") == Some("0") {
        let reason = format!("the host firewall is disabled ({} enable: 0)", state.host.path);
        return Chain { name, steps: Vec::new(), unfiltered: Some(reason) };
    }
    let scope = Scope { local: None, cluster: &state.cluster, local_network: local_network(state) };
    let mut steps = backend_note(state);
    steps.extend(builtin::host_head(state, dir, &scope));
    let host_scope = Scope { local: Some(&state.host), ..scope };
    for (source, scope) in [(&state.host, host_scope), (&state.cluster, scope)] {
        user_rules(state, source, &source.conf.rules, &source.lines.rules, scope, dir, version, None, "enable_host_firewall", &mut steps);
    }
    steps.extend(builtin::host_tail(state, dir, &scope));
    steps.extend(builtin::policy(&state.cluster, dir));
    Chain { name, steps, unfiltered: None }
}

/// The chain of one guest NIC in `dir` (`ruleset_create_vm_chain`, `ruleset_generate_vm_rules`).
pub fn guest_chain(state: &FirewallState, id: GuestId, label: &str, nic: Option<&Nic>, dir: Dir, version: Version) -> Chain {
    let nic_key = nic.map_or("net0", |n| n.key.as_str());
    let name = format!("{} of {label}, {nic_key}", dir.word());
    let unfiltered = |reason: String, steps: Vec<Step>| Chain { name: name.clone(), steps, unfiltered: Some(reason) };
    if let Err(reason) = cluster_enabled(state) {
        return unfiltered(format!("{reason}, so no guest firewall applies"), Vec::new());
    }
    if !nic.is_some_and(|n| n.firewall) {
        return unfiltered(format!("{label}'s NIC {nic_key} lacks firewall=1, so Proxmox filters none of its traffic"), Vec::new());
    }
    let scope = Scope { local: None, cluster: &state.cluster, local_network: local_network(state) };
    // PVEFW-FWBR-IN filters everything bridged into a firewalled NIC, enabled guest or not.
    let mut steps = backend_note(state);
    if dir == Dir::In {
        steps.extend(builtin::input_filters(state, &scope, "PVEFW-FWBR-IN"));
    }
    let Some(source) = state.guests.get(&id).filter(|s| s.present) else {
        let reason = format!("{} does not exist, so the guest firewall is disabled", phoenix_model::paths::guest_fw(id));
        return unfiltered(reason, steps);
    };
    if source.option("enable") != Some("1") {
        let reason =
            format!("the guest firewall is disabled ({} enable: {})", source.path, source.option("enable").unwrap_or("0 (default)"));
        return unfiltered(reason, steps);
    }
    let scope = Scope { local: Some(source), ..scope };
    steps.extend(builtin::guest_head(state, id, source, nic.expect("checked above"), dir, &scope));
    user_rules(
        state,
        source,
        &source.conf.rules,
        &source.lines.rules,
        scope,
        dir,
        version,
        Some(nic_key),
        "ruleset_generate_vm_rules",
        &mut steps,
    );
    steps.extend(builtin::policy(source, dir));
    Chain { name, steps, unfiltered: None }
}

/// With host.fw `nftables: 1` the node runs proxmox-firewall instead (`is_enabled_and_not_nftables`
/// removes the iptables chains); phoenix still judges with the iptables back end, and says so.
fn backend_note(state: &FirewallState) -> Vec<Step> {
    if state.host.option("nftables") != Some("1") {
        return Vec::new();
    }
    let text = format!(
        "    note: {} nftables: 1 selects proxmox-firewall's nftables rules; phoenix judges as pve-firewall's iptables back end does",
        state.host.path
    );
    vec![Step::Note(text)]
}

/// The node's network: cluster.fw's `local_network` alias, else the network of its address.
pub fn local_network(state: &FirewallState) -> Option<IpNet> {
    state
        .cluster
        .conf
        .aliases
        .get("local_network")
        .and_then(|a| block(&a.cidr))
        .and_then(|b| match b {
            Block::Net(net) => Some(net),
            Block::Range(..) => None,
        })
        .or(state.node_network)
}

/// Whether `ip` is a broadcast or multicast destination (PVEFW-DropBroadcast).
pub fn is_broadcast(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_multicast() || v4 == Ipv4Addr::BROADCAST,
        IpAddr::V6(v6) => v6.is_multicast(),
    }
}
