//! The rules pve-firewall adds on its own, as chain steps (IPv4; pve-firewall
//! `src/PVE/Firewall.pm`, iptables back end):
//! - `ruleset_chain_add_input_filters`: the cluster's `blacklist` ipset dropped and the smurf
//!   filter, at the head of the host's IN chain and of PVEFW-FWBR-IN (traffic into guests);
//! - `enable_host_firewall`: IGMP accepted, then after the user rules the management ports
//!   (tcp 8006, 5900:5999, 3128, 22, 60000:60050) from the `management` ipset (its cluster.fw
//!   entries plus the node's local network, `compile_ipsets`) and, outbound, tcp 8006, 22,
//!   5900:5999, 3128 to the local network;
//! - `ruleset_create_vm_chain`: DHCP accepted (unless `dhcp: 0`) and, outbound, the ipfilter
//!   (`ipfilter: 1` or an `ipfilter-netN` ipset; a container's `ip=` joins the set);
//! - `ruleset_add_chain_policy` with `$pve_std_chains_conf`: a DROP or REJECT policy first
//!   runs PVEFW-Drop or PVEFW-Reject (broadcasts dropped, ICMP fragmentation-needed and
//!   time-exceeded accepted, SMB and NetBIOS ports dropped or rejected, UPnP and DNS replies
//!   dropped), then drops or goes to PVEFW-reject.
//! - `enable_host_firewall`, with a corosync.conf: udp 5404:5405 from each peer to the node's
//!   address on the same link and back, and to multicast with `transport: udp`
//!   ([`super::corosync`]).
//! The tcp flag filters and the non-SYN drop never meet a connection's first packet. Must not match.

use super::chain::{AddrSet, Block, Cond, Dir, Effect, IcmpMatch, Origin, Scope, Step};
use super::state::{FirewallState, FwSource, Nic};
use ipnet::IpNet;
use phoenix_model::model::{GuestId, GuestKind, PortSet};
use phoenix_model::pve::{MANAGEMENT_PORTS_IN as MANAGEMENT_IN, MANAGEMENT_PORTS_OUT as MANAGEMENT_OUT};

const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMP: u8 = 1;

fn builtin(chain: &str, function: &'static str, text: impl Into<String>) -> Origin {
    Origin::Builtin { chain: chain.to_string(), function, text: text.into() }
}

fn ports(ranges: &[(u16, u16)]) -> PortSet {
    PortSet(ranges.to_vec())
}

fn describe(set: &AddrSet) -> String {
    let items: Vec<String> = set.include.iter().map(Block::to_string).collect();
    if items.is_empty() {
        "empty".into()
    } else {
        items.join(", ")
    }
}

/// The blacklist and smurf filters (`ruleset_chain_add_input_filters`), with host.fw's options.
pub fn input_filters(state: &FirewallState, scope: &Scope<'_>, chain: &str) -> Vec<Step> {
    let mut steps = Vec::new();
    if state.cluster.conf.ipsets.contains_key("blacklist") {
        let set = scope.ipset("dc/blacklist").unwrap_or_default();
        let text = format!("-source +blacklist DROP (the blacklist ipset: {})", describe(&set));
        let origin = builtin(chain, "ruleset_chain_add_input_filters", text);
        steps.push(Step::Match { origin, cond: Cond { src: Some(set), ..Cond::default() }, effect: Effect::Drop });
    }
    if state.host.option("nosmurfs") != Some("0") {
        let origin = builtin("PVEFW-smurfs", "ruleset_chain_add_input_filters", "-source 224.0.0.0/4 DROP (smurfs)");
        let multicast = AddrSet::of(vec![Block::Net("224.0.0.0/4".parse().expect("a network"))]);
        steps.push(Step::Match { origin, cond: Cond { src: Some(multicast), ..Cond::default() }, effect: Effect::Drop });
    }
    steps
}

/// What the host's chain holds before the user rules.
pub fn host_head(state: &FirewallState, dir: Dir, scope: &Scope<'_>) -> Vec<Step> {
    let chain = format!("PVEFW-HOST-{}", dir.word());
    let mut steps = if dir == Dir::In { input_filters(state, scope, &chain) } else { Vec::new() };
    let igmp = builtin(&chain, "enable_host_firewall", "-p igmp ACCEPT");
    steps.push(Step::Match { origin: igmp, cond: Cond { proto: Some(2), ..Cond::default() }, effect: Effect::Accept });
    steps
}

/// The `management` ipset: cluster.fw's own entries and the node's local network.
fn management(scope: &Scope<'_>) -> (AddrSet, String) {
    // Scope::ipset adds the local network to a declared set; an undeclared one holds only it.
    let set = scope.ipset("dc/management").unwrap_or_else(|| AddrSet::of(scope.local_network.map(Block::Net).into_iter().collect()));
    let origin = match (scope.local_network, scope.cluster.conf.ipsets.contains_key("management")) {
        (Some(net), true) => format!("the node's local network {net} and cluster.fw [IPSET management]"),
        (Some(net), false) => format!("the node's local network {net}"),
        (None, true) => "cluster.fw [IPSET management]; the node's local network is unknown".into(),
        (None, false) => "the node's local network is unknown".into(),
    };
    (set, origin)
}

/// What the host's chain holds after the user rules and before the policy.
pub fn host_tail(state: &FirewallState, dir: Dir, scope: &Scope<'_>) -> Vec<Step> {
    let chain = format!("PVEFW-HOST-{}", dir.word());
    let mut steps = management_steps(&chain, dir, scope);
    steps.extend(corosync_steps(state, &chain, dir));
    steps
}

/// Corosync's accepts, per link and peer, and multicast with the udp transport.
fn corosync_steps(state: &FirewallState, chain: &str, dir: Dir) -> Vec<Step> {
    let Some(corosync) = &state.corosync else { return Vec::new() };
    let corosync_ports = || Some(ports(&[(5404, 5405)]));
    let mut steps = Vec::new();
    if corosync.multicast {
        let origin = builtin(chain, "enable_host_firewall", "multicast -p udp -dport 5404:5405 ACCEPT (corosync, transport udp)");
        let cond = Cond { dst_broadcast: true, proto: Some(UDP), dport: corosync_ports(), ..Cond::default() };
        steps.push(Step::Match { origin, cond, effect: Effect::Accept });
    }
    for (local, peer) in &corosync.links {
        let (src, dst) = if dir == Dir::In { (*peer, *local) } else { (*local, *peer) };
        let text = format!("-source {src} -dest {dst} -p udp -dport 5404:5405 ACCEPT (corosync link)");
        let host = |ip: std::net::IpAddr| Some(AddrSet::of(vec![Block::Net(IpNet::from(ip))]));
        let cond = Cond { src: host(src), dst: host(dst), proto: Some(UDP), dport: corosync_ports(), ..Cond::default() };
        steps.push(Step::Match { origin: builtin(chain, "enable_host_firewall", text), cond, effect: Effect::Accept });
    }
    steps
}

/// The management accepts (`enable_host_firewall`).
fn management_steps(chain: &str, dir: Dir, scope: &Scope<'_>) -> Vec<Step> {
    match dir {
        Dir::In => {
            let (set, why) = management(scope);
            let text =
                format!("-p tcp -dport 8006,5900:5999,3128,22,60000:60050 ACCEPT from the management ipset: {} ({why})", describe(&set));
            let cond = Cond { src: Some(set), proto: Some(TCP), dport: Some(ports(MANAGEMENT_IN)), ..Cond::default() };
            vec![Step::Match { origin: builtin(chain, "enable_host_firewall", text), cond, effect: Effect::Accept }]
        }
        Dir::Out => {
            let Some(net) = scope.local_network else {
                return vec![Step::Note("    the node's local network is unknown, so no management ports are accepted outbound".into())];
            };
            let text = format!("-dest {net} -p tcp -dport 8006,22,5900:5999,3128 ACCEPT (the node's local network)");
            let dst = AddrSet::of(vec![Block::Net(net)]);
            let cond = Cond { dst: Some(dst), proto: Some(TCP), dport: Some(ports(MANAGEMENT_OUT)), ..Cond::default() };
            vec![Step::Match { origin: builtin(chain, "enable_host_firewall", text), cond, effect: Effect::Accept }]
        }
    }
}

/// DHCP and the ipfilter at the head of a guest NIC's chain (`ruleset_create_vm_chain`).
pub fn guest_head(state: &FirewallState, id: GuestId, source: &FwSource, nic: &Nic, dir: Dir, scope: &Scope<'_>) -> Vec<Step> {
    let chain = format!("{}-{dir}", nic.key, dir = dir.word());
    let mut steps = Vec::new();
    if source.option("dhcp") != Some("0") {
        let (sport, dport) = if dir == Dir::Out { (68, 67) } else { (67, 68) };
        let text = format!("-p udp -sport {sport} -dport {dport} ACCEPT (DHCP; the dhcp option is on unless 0)");
        let cond =
            Cond { proto: Some(UDP), sport: Some(ports(&[(sport, sport)])), dport: Some(ports(&[(dport, dport)])), ..Cond::default() };
        steps.push(Step::Match { origin: builtin(&chain, "ruleset_create_vm_chain", text), cond, effect: Effect::Accept });
    }
    if dir == Dir::Out {
        let name = format!("ipfilter-{}", nic.key);
        if source.option("ipfilter") == Some("1") || source.conf.ipsets.contains_key(&name) {
            let mut set = scope.ipset(&format!("guest/{name}")).unwrap_or_default();
            let is_ct = state.nets.get(&id).is_some_and(|n| n.kind == GuestKind::Lxc);
            if is_ct {
                set.include.extend(nic.ip.map(|ip| Block::Net(IpNet::from(std::net::IpAddr::V4(ip.addr())))));
            }
            let filled = if is_ct { "its entries and the container's ip=" } else { "its entries" };
            let text = format!("-source ! +{name} DROP (the ipfilter, {filled}: {})", describe(&set));
            set.negated = true;
            let cond = Cond { src: Some(set), ..Cond::default() };
            steps.push(Step::Match { origin: builtin(&chain, "ruleset_create_vm_chain", text), cond, effect: Effect::Drop });
        }
    }
    steps
}

/// The policy of `source`'s chain in `dir` (`ruleset_add_chain_policy`): DROP in and ACCEPT
/// out unless set; DROP and REJECT go through PVEFW-Drop or PVEFW-Reject first.
pub fn policy(source: &FwSource, dir: Dir) -> Vec<Step> {
    let (option, default) = match dir {
        Dir::In => ("policy_in", "DROP"),
        Dir::Out => ("policy_out", "ACCEPT"),
    };
    let action = source.option(option).unwrap_or(default).to_string();
    let (effect, std_chain) = match action.as_str() {
        "ACCEPT" => (Effect::Accept, None),
        "REJECT" => (Effect::Reject, Some("PVEFW-Reject")),
        _ => (Effect::Drop, Some("PVEFW-Drop")),
    };
    let mut steps = std_chain.map(|chain| std_steps(chain, effect)).unwrap_or_default();
    let origin = Origin::Policy { path: source.path.clone(), option: option.to_string(), action };
    steps.push(Step::Match { origin, cond: Cond::default(), effect });
    steps
}

/// PVEFW-Drop or PVEFW-Reject (`$pve_std_chains_conf`, IPv4): `effect` is what the SMB and
/// NetBIOS rules do (DROP, or PVEFW-reject in PVEFW-Reject).
fn std_steps(chain: &str, effect: Effect) -> Vec<Step> {
    let origin = |text: &str| builtin(chain, "ruleset_add_chain_policy", text.to_string());
    let udp = |dports: &[(u16, u16)]| Cond { proto: Some(UDP), dport: Some(ports(dports)), ..Cond::default() };
    let icmp = |ty: u8, code: Option<u8>| Cond { proto: Some(ICMP), icmp: Some(IcmpMatch::Type(ty, code)), ..Cond::default() };
    let smb = if effect == Effect::Reject { "PVEFW-reject" } else { "DROP" };
    vec![
        Step::Match {
            origin: origin("PVEFW-DropBroadcast: broadcast and multicast destinations DROP"),
            cond: Cond { dst_broadcast: true, ..Cond::default() },
            effect: Effect::Drop,
        },
        Step::Match { origin: origin("-p icmp -icmp-type fragmentation-needed ACCEPT"), cond: icmp(3, Some(4)), effect: Effect::Accept },
        Step::Match { origin: origin("-p icmp -icmp-type time-exceeded ACCEPT"), cond: icmp(11, None), effect: Effect::Accept },
        Step::Match { origin: origin(&format!("-p udp -dport 135,445 {smb}")), cond: udp(&[(135, 135), (445, 445)]), effect },
        Step::Match { origin: origin(&format!("-p udp -dport 137:139 {smb}")), cond: udp(&[(137, 139)]), effect },
        Step::Match {
            origin: origin(&format!("-p udp -sport 137 -dport 1024:65535 {smb}")),
            cond: Cond { sport: Some(ports(&[(137, 137)])), ..udp(&[(1024, 65535)]) },
            effect,
        },
        Step::Match {
            origin: origin(&format!("-p tcp -dport 135,139,445 {smb}")),
            cond: Cond { proto: Some(TCP), dport: Some(ports(&[(135, 135), (139, 139), (445, 445)])), ..Cond::default() },
            effect,
        },
        Step::Match { origin: origin("-p udp -dport 1900 DROP (UPnP)"), cond: udp(&[(1900, 1900)]), effect: Effect::Drop },
        Step::Match {
            origin: origin("-p udp -sport 53 DROP (DNS replies)"),
            cond: Cond { proto: Some(UDP), sport: Some(ports(&[(53, 53)])), ..Cond::default() },
            effect: Effect::Drop,
        },
    ]
}
