//! The firewall evaluator: verdicts on the bundled example and the reference, and a property
//! test against a naive reference implementation on random rule sets and flows.

use phoenix_core::analyze::firewall::{evaluate, Decision, Endpoint, FirewallState, GuestNet, Nic, Packet};
use phoenix_core::render::render_all;
use phoenix_testkit::{example_config, example_source, MemorySource};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMP: u8 = 1;

fn tcp(port: u16) -> Packet {
    Packet::to(TCP, port)
}

/// LXC guests with one NIC each, `net0` with the given firewall flag.
fn nets(flags: &[(u32, bool)]) -> BTreeMap<u32, GuestNet> {
    let nic = |firewall: bool| Nic { key: "net0".into(), firewall, bridge: Some("vmbr0".into()), ip: None };
    flags.iter().map(|(id, flag)| (*id, GuestNet { kind: phoenix_model::model::GuestKind::Lxc, nics: vec![nic(*flag)] })).collect()
}

fn example() -> (phoenix_model::Model, FirewallState) {
    let checked = phoenix_model::check(&example_config(), &example_source());
    let model = checked.model.unwrap();
    let state = FirewallState::from_rendered(&render_all(&model), &model);
    (model, state)
}

#[test]
fn the_example_allows_its_flows_by_rule_and_cites_the_rule() {
    let (model, state) = example();
    let verdict = evaluate(&state, &model, Endpoint::Guest(102), Endpoint::Guest(1001), tcp(9443));
    assert!(verdict.passes && !verdict.unprotected, "{verdict:#?}");
    assert!(matches!(&verdict.chains[0].decision, Decision::Policy { action, .. } if action == "ACCEPT"));
    match &verdict.chains[1].decision {
        Decision::Rule { path, line, text } => {
            assert_eq!(path, "/etc/pve/firewall/1001.fw");
            assert_eq!(*line, 9);
            assert!(text.starts_with("IN ACCEPT -source 10.0.0.12 -p tcp -dport 9443"));
        }
        other => panic!("{other:?}"),
    }
}

/// Issue 16: LXC 102's second NIC (net1 on the internal bridge) has chains of its own. A rule
/// keyed `-i net1` admits the host there; the same connection to its net0 address is refused;
/// the lab compiles each NIC's chain and jumps to it by interface name.
#[test]
fn a_second_nic_is_judged_by_its_own_chain_and_compiled_so_for_the_lab() {
    use phoenix_core::analyze::firewall::evaluate_between;
    use phoenix_core::lab::nft::{ruleset, Node};
    let (model, state) = example();
    let ip = |text: &str| -> IpAddr { text.parse().unwrap() };
    let internal =
        evaluate_between(&state, &model, (Endpoint::Host, ip("10.100.0.1")), (Endpoint::Guest(102), ip("10.100.0.12")), tcp(443));
    assert!(internal.passes, "{internal:#?}");
    assert!(internal.chains[1].chain.ends_with("net1"), "{:?}", internal.chains[1].chain);
    assert!(
        matches!(&internal.chains[1].decision, Decision::Rule { text, .. } if text.starts_with("IN ACCEPT -i net1 -source 10.100.0.1"))
    );
    let main = evaluate_between(&state, &model, (Endpoint::Host, ip("10.0.0.13")), (Endpoint::Guest(102), ip("10.0.0.12")), tcp(443));
    assert!(!main.passes, "{main:#?}");
    let nics = [("net0".to_string(), ip("10.0.0.12")), ("net1".to_string(), ip("10.100.0.12"))];
    let text = ruleset(&state, Node::Guest(102, &nics));
    let chain = |name: &str| {
        let start = text.find(&format!("chain {name} {{")).unwrap_or_else(|| panic!("chain {name} in\n{text}"));
        text[start..start + text[start..].find("\n  }").unwrap()].to_string()
    };
    let admits = |line: &str| line.contains("ip saddr { 10.100.0.1/32 }") && line.contains("th dport { 443 }") && line.ends_with("accept");
    assert!(chain("input_net1").lines().any(admits), "{text}");
    assert!(!chain("input_net0").contains("10.100.0.1"), "{text}");
    assert!(chain("input").contains("iifname \"net1\" jump input_net1"), "{text}");
    // One NIC: its chain sits in the hooks, as before.
    let single = ruleset(&state, Node::Guest(101, &[("net0".to_string(), ip("10.0.0.153"))]));
    assert!(!single.contains("jump"), "{single}");
}

#[test]
fn the_example_drops_what_it_does_not_allow() {
    let (model, state) = example();
    let from_lan = Endpoint::Outside(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 50)));
    let verdict = evaluate(&state, &model, from_lan, Endpoint::Guest(1001), tcp(9443));
    assert!(!verdict.passes);
    assert!(matches!(&verdict.chains[0].decision, Decision::Policy { option, action, .. } if option == "policy_in" && action == "DROP"));
    // The host's own DNS is reachable from the LAN by a cluster rule.
    let dns = evaluate(&state, &model, Endpoint::Guest(102), Endpoint::Host, Packet::to(UDP, 53));
    assert!(dns.passes, "{dns:#?}");
    assert!(matches!(&dns.chains[1].decision, Decision::Rule { path, .. } if path == "/etc/pve/firewall/cluster.fw"));
}

#[test]
fn guests_without_nic_firewall_are_unprotected_not_allowed() {
    let mut source = example_source();
    source.edit_json(&example_config().join("phoenix_vm_configs.json"), |v| {
        v["vms"][1]["network_config"]["firewall"] = serde_json::json!(false)
    });
    let model = phoenix_model::check(&example_config(), &source).model.unwrap();
    let state = FirewallState::from_rendered(&render_all(&model), &model);
    let verdict = evaluate(&state, &model, Endpoint::Outside(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 50))), Endpoint::Guest(1001), tcp(9443));
    assert!(verdict.passes && verdict.unprotected);
    assert!(matches!(&verdict.chains[0].decision, Decision::NotInForce { reason } if reason.contains("lacks firewall=1")));
}

// ---- the naive reference implementation -------------------------------------------------
//
// Written from pve-firewall's `Firewall.pm` as plainly as possible, to check the evaluator's
// chain building: host chains end with the management accepts (`enable_host_firewall`), DROP
// policies accept ICMP fragmentation-needed and time-exceeded first (PVEFW-Drop), rules with
// errors decide nothing (`next if $rule->{errors}`), the blacklist drops before any rule
// (`ruleset_chain_add_input_filters`, also in PVEFW-FWBR-IN for guests), and the ipfilter
// drops a guest's packets from addresses outside its set (`ruleset_create_vm_chain`).

#[derive(Debug, Clone)]
struct NaiveRule {
    out: bool,
    accept: bool,
    enabled: bool,
    /// Written so that verify_rule refuses it: the action in lower case.
    invalid: bool,
    source: Option<(u32, u8)>,
    dest: Option<(u32, u8)>,
    proto: Option<u8>,
    ports: Option<(u16, u16)>,
}

fn in_net(ip: u32, (net, prefix): (u32, u8)) -> bool {
    prefix == 0 || (ip >> (32 - prefix as u32)) == (net >> (32 - prefix as u32))
}

fn net_text((n, p): (u32, u8)) -> String {
    format!("{}/{p}", Ipv4Addr::from(n))
}

impl NaiveRule {
    fn hits(&self, out: bool, src: u32, dst: u32, proto: u8, port: Option<u16>) -> bool {
        self.enabled
            && !self.invalid
            && self.out == out
            && self.source.is_none_or(|n| in_net(src, n))
            && self.dest.is_none_or(|n| in_net(dst, n))
            && self.proto.is_none_or(|p| p == proto)
            && self.ports.is_none_or(|(a, b)| port.is_some_and(|p| a <= p && p <= b))
    }

    fn line(&self) -> String {
        let action = if self.accept { "ACCEPT" } else { "DROP" };
        let mut line = format!(
            "{}{} {}",
            if self.enabled { "" } else { "|" },
            if self.out { "OUT" } else { "IN" },
            if self.invalid { action.to_ascii_lowercase() } else { action.to_string() }
        );
        if let Some(s) = self.source {
            line += &format!(" -source {}", net_text(s));
        }
        if let Some(d) = self.dest {
            line += &format!(" -dest {}", net_text(d));
        }
        if let Some(p) = self.proto {
            line += &format!(
                " -p {}",
                match p {
                    TCP => "tcp",
                    UDP => "udp",
                    _ => "icmp",
                }
            );
        }
        if let Some((a, b)) = self.ports {
            line += &if a == b { format!(" -dport {a}") } else { format!(" -dport {a}:{b}") };
        }
        line
    }
}

fn net() -> impl Strategy<Value = (u32, u8)> {
    (
        prop::sample::select(vec![0x0a000000u32, 0x0a000064, 0x0a000065, 0x0a000001, 0x0a000032]),
        prop::sample::select(vec![0u8, 8, 24, 30, 32]),
    )
        .prop_map(|(n, p)| (n & if p == 0 { 0 } else { u32::MAX << (32 - p as u32) }, p))
}

fn rule() -> impl Strategy<Value = NaiveRule> {
    (
        any::<bool>(),
        any::<bool>(),
        prop::bool::weighted(0.9),
        prop::bool::weighted(0.1),
        prop::option::of(net()),
        prop::option::of(net()),
        prop::option::of(prop::sample::select(vec![TCP, UDP, ICMP])),
        (1u16..30, 0u16..10),
    )
        .prop_map(|(out, accept, enabled, invalid, source, dest, proto, (a, len))| {
            let ports = match proto {
                Some(TCP) | Some(UDP) if a % 3 != 0 => Some((a, a + len)),
                _ => None,
            };
            NaiveRule { out, accept, enabled, invalid, source, dest, proto, ports }
        })
}

#[derive(Debug, Clone)]
struct NaiveGuest {
    exists: bool,
    enabled: bool,
    nic_firewall: bool,
    policy_in_accept: bool,
    policy_out_accept: bool,
    /// `ipfilter: 1` with these `ipfilter-net0` entries.
    ipfilter: Option<Vec<(u32, u8)>>,
    rules: Vec<NaiveRule>,
}

#[derive(Debug, Clone)]
struct World {
    cluster_enabled: bool,
    cluster_policy_in_accept: bool,
    cluster_policy_out_accept: bool,
    /// cluster.fw `[IPSET blacklist]`.
    blacklist: Option<Vec<(u32, u8)>>,
    cluster_rules: Vec<NaiveRule>,
    host_rules: Vec<NaiveRule>,
    guests: [NaiveGuest; 2],
}

fn world() -> impl Strategy<Value = World> {
    let set = || prop::option::weighted(0.2, prop::collection::vec(net(), 1..3));
    let guest =
        move || {
            (
                (prop::bool::weighted(0.9), prop::bool::weighted(0.8), prop::bool::weighted(0.8)),
                (any::<bool>(), prop::bool::weighted(0.7)),
                set(),
                prop::collection::vec(rule(), 0..6),
            )
                .prop_map(|((exists, enabled, nic_firewall), (policy_in_accept, policy_out_accept), ipfilter, rules)| {
                    NaiveGuest { exists, enabled, nic_firewall, policy_in_accept, policy_out_accept, ipfilter, rules }
                })
        };
    (
        (prop::bool::weighted(0.85), any::<bool>(), prop::bool::weighted(0.7)),
        set(),
        prop::collection::vec(rule(), 0..6),
        prop::collection::vec(rule(), 0..4),
        guest(),
        guest(),
    )
        .prop_map(
            |((cluster_enabled, cluster_policy_in_accept, cluster_policy_out_accept), blacklist, cluster_rules, host_rules, a, b)| World {
                cluster_enabled,
                cluster_policy_in_accept,
                cluster_policy_out_accept,
                blacklist,
                cluster_rules,
                host_rules,
                guests: [a, b],
            },
        )
}

const HOST: u32 = 0x0a000001;
const GUEST_IPS: [u32; 2] = [0x0a000064, 0x0a000065];
const OUTSIDE: u32 = 0x0a000032;
/// The node's network (its address is 10.0.0.1/24): the management ipset's own entry.
const NODE_NET: (u32, u8) = (0x0a000000, 24);

/// A probe of the property test: protocol, port, ICMP type and code.
#[derive(Debug, Clone, Copy)]
struct NaivePacket {
    proto: u8,
    port: Option<u16>,
    icmp: Option<(u8, u8)>,
}

/// Whether the packet passes, judged from the world directly.
fn naive(world: &World, src: usize, dst: usize, packet: NaivePacket) -> bool {
    // Endpoints: 0 host, 1 guest 100, 2 guest 101, 3 outside.
    let ip = |e: usize| [HOST, GUEST_IPS[0], GUEST_IPS[1], OUTSIDE][e];
    let (s, d) = (ip(src), ip(dst));
    let NaivePacket { proto, port, icmp } = packet;
    // An ipset entry with a zero prefix is refused (the parser marks it with an error) and left out.
    let in_set = |set: &Vec<(u32, u8)>, ip: u32| set.iter().any(|n| n.1 > 0 && in_net(ip, *n));
    let blacklisted = world.blacklist.as_ref().is_some_and(|set| in_set(set, s));
    // A DROP policy runs PVEFW-Drop first, which accepts these two ICMP errors.
    let policy = |accept: bool| accept || (proto == ICMP && matches!(icmp, Some((3, 4)) | Some((11, _))));
    let first = |rules: Vec<&NaiveRule>, out: bool| rules.into_iter().find(|r| r.hits(out, s, d, proto, port)).map(|r| r.accept);
    let management = |out: bool| {
        let peer = if out { d } else { s };
        let ports: &[(u16, u16)] = if out {
            &[(8006, 8006), (22, 22), (5900, 5999), (3128, 3128)]
        } else {
            &[(8006, 8006), (5900, 5999), (3128, 3128), (22, 22), (60000, 60050)]
        };
        proto == TCP && in_net(peer, NODE_NET) && port.is_some_and(|p| ports.iter().any(|(a, b)| *a <= p && p <= *b))
    };
    let chain_passes = |endpoint: usize, out: bool| -> bool {
        match endpoint {
            0 => {
                if !world.cluster_enabled {
                    return true;
                }
                if !out && blacklisted {
                    return false;
                }
                if let Some(accept) = first(world.host_rules.iter().chain(world.cluster_rules.iter()).collect(), out) {
                    return accept;
                }
                management(out) || policy(if out { world.cluster_policy_out_accept } else { world.cluster_policy_in_accept })
            }
            1 | 2 => {
                let guest = &world.guests[endpoint - 1];
                if !(world.cluster_enabled && guest.nic_firewall) {
                    return true;
                }
                if !out && blacklisted {
                    return false;
                }
                if !(guest.exists && guest.enabled) {
                    return true;
                }
                if out && guest.ipfilter.as_ref().is_some_and(|set| !in_set(set, s)) {
                    return false;
                }
                if let Some(accept) = first(guest.rules.iter().collect(), out) {
                    return accept;
                }
                policy(if out { guest.policy_out_accept } else { guest.policy_in_accept })
            }
            _ => true,
        }
    };
    chain_passes(src, true) && chain_passes(dst, false)
}

fn model() -> phoenix_model::Model {
    let etc = Path::new("/virtual/etc");
    let mut source = MemorySource::default();
    let hv =
        serde_json::json!({ "network": { "interfaces": { "name": "vmbr0", "address": "10.0.0.1/24" }, "default_subnet": "10.0.0.0/24" } });
    let lxc = serde_json::json!({ "lxc_configs": {
        "100": { "name": "a", "network_config": { "ip": "10.0.0.100/24" } },
        "101": { "name": "b", "network_config": { "ip": "10.0.0.101/24" } }
    } });
    source.files.insert(etc.join("phoenix_hypervisor_config.json"), hv.to_string());
    source.files.insert(etc.join("phoenix_lxc_configs.json"), lxc.to_string());
    source.files.insert(etc.join("phoenix_vm_configs.json"), "{\"vms\": []}".into());
    source.files.insert(etc.join("phoenix_stacks_config.json"), "{\"docker_stacks\": {}}".into());
    phoenix_model::check(etc, &source).model.unwrap()
}

fn file(options: &[(&str, String)], ipsets: &[(&str, &Vec<(u32, u8)>)], rules: &[NaiveRule]) -> String {
    let mut text = String::from("[OPTIONS]\n\n");
    for (k, v) in options {
        text += &format!("{k}: {v}\n");
    }
    for (name, entries) in ipsets {
        text += &format!("\n[IPSET {name}]\n\n");
        for entry in *entries {
            text += &format!("{}\n", net_text(*entry));
        }
    }
    text += "\n[RULES]\n\n";
    for rule in rules {
        text += &rule.line();
        text.push('\n');
    }
    text
}

fn state(world: &World) -> FirewallState {
    let mut texts = BTreeMap::new();
    let policy = |accept: bool| if accept { "ACCEPT" } else { "DROP" }.to_string();
    let blacklist: Vec<(&str, &Vec<(u32, u8)>)> = world.blacklist.iter().map(|set| ("blacklist", set)).collect();
    let options = [
        ("enable", u8::from(world.cluster_enabled).to_string()),
        ("policy_in", policy(world.cluster_policy_in_accept)),
        ("policy_out", policy(world.cluster_policy_out_accept)),
    ];
    texts.insert("/etc/pve/firewall/cluster.fw".to_string(), file(&options, &blacklist, &world.cluster_rules));
    texts.insert("/etc/pve/nodes/pve/host.fw".to_string(), file(&[("enable", "1".into())], &[], &world.host_rules));
    let mut nic = BTreeMap::new();
    for (i, guest) in world.guests.iter().enumerate() {
        let id = 100 + i as u32;
        nic.insert(id, guest.nic_firewall);
        if guest.exists {
            let mut options = vec![
                ("enable", u8::from(guest.enabled).to_string()),
                ("policy_in", policy(guest.policy_in_accept)),
                ("policy_out", policy(guest.policy_out_accept)),
            ];
            let ipfilter: Vec<(&str, &Vec<(u32, u8)>)> = guest.ipfilter.iter().map(|set| ("ipfilter-net0", set)).collect();
            if !ipfilter.is_empty() {
                options.push(("ipfilter", "1".into()));
            }
            texts.insert(format!("/etc/pve/firewall/{id}.fw"), file(&options, &ipfilter, &guest.rules));
        }
    }
    FirewallState::from_texts(&texts, "pve", nets(&nic.into_iter().collect::<Vec<_>>()), "vmbr0", "test").with_node(&model(), None)
}

fn packet() -> impl Strategy<Value = NaivePacket> {
    let icmp_types = prop::sample::select(vec![(8u8, 0u8), (3, 4), (3, 3), (11, 0), (0, 0)]);
    (prop::sample::select(vec![TCP, UDP, ICMP]), 1u16..40, icmp_types).prop_map(|(proto, port, icmp)| {
        if proto == ICMP {
            NaivePacket { proto, port: None, icmp: Some(icmp) }
        } else {
            NaivePacket { proto, port: Some(port), icmp: None }
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_evaluator_agrees_with_a_naive_reference(world in world(), src in 0usize..4, dst in 0usize..4, packet in packet()) {
        prop_assume!(src != dst);
        let model = model();
        let endpoint = |e: usize| match e {
            0 => Endpoint::Host,
            1 => Endpoint::Guest(100),
            2 => Endpoint::Guest(101),
            _ => Endpoint::Outside(IpAddr::V4(Ipv4Addr::from(OUTSIDE))),
        };
        let probe = Packet { proto: packet.proto, dport: packet.port, sport: None, icmp: packet.icmp };
        let verdict = evaluate(&state(&world), &model, endpoint(src), endpoint(dst), probe);
        prop_assert_eq!(verdict.passes, naive(&world, src, dst, packet), "{:#?}", verdict);
    }
}

#[test]
fn tracing_gives_the_same_verdict_and_tells_every_rule() {
    let (model, state) = example();
    let at = |id: u32| (Endpoint::Guest(id), Endpoint::Guest(id).ip(&model).unwrap());
    let (verdict, lines) = phoenix_core::analyze::firewall::trace(&state, &model, at(101), at(102), tcp(443));
    assert_eq!(verdict, evaluate(&state, &model, Endpoint::Guest(101), Endpoint::Guest(102), tcp(443)));
    assert_eq!(lines[0], "OUT of LXC 101 (nginx-gateway), net0:");
    assert!(lines.iter().any(|l| l.ends_with("-- MATCH")));
    assert!(lines.iter().any(|l| l.starts_with("IN of LXC 102 (traefik), net0:")));
}

#[test]
fn a_connection_to_ones_own_address_meets_no_chain() {
    use phoenix_core::analyze::firewall::{evaluate, Endpoint, FirewallState, Packet};
    let model = phoenix_model::check(&phoenix_testkit::example_config(), &phoenix_testkit::example_source()).model.unwrap();
    let state = FirewallState::from_rendered(&phoenix_core::render::render_all(&model), &model);
    // Step-CA (103) accepts 9000 only from Traefik, the gateway and the host; from itself it is loopback.
    let verdict = evaluate(&state, &model, Endpoint::Guest(103), Endpoint::Guest(103), Packet::to(6, 9000));
    assert!(verdict.passes && !verdict.unprotected, "{verdict:?}");
    assert!(evaluate(&state, &model, Endpoint::Guest(1001), Endpoint::Guest(103), Packet::to(6, 9000)).passes.eq(&false));
}

/// pve-firewall reads a policy case-insensitively (`parse_vmfw_option`: `m/^(policy_(in|out)):\s*(ACCEPT|DROP|REJECT)\s*$/i`,
/// then `uc($3)`): `policy_in: accept` accepts. The lab's nftables reads the same parsed value.
#[test]
fn a_lower_case_policy_is_the_policy() {
    let mut texts = BTreeMap::new();
    texts.insert("/etc/pve/firewall/cluster.fw".to_string(), "[OPTIONS]\n\nenable: 1\n".to_string());
    texts.insert("/etc/pve/firewall/100.fw".to_string(), "[OPTIONS]\n\nenable: 1\n".to_string());
    texts.insert("/etc/pve/firewall/101.fw".to_string(), "[OPTIONS]\n\nENABLE: 1\nPolicy_In: accept\n".to_string());
    let nic = BTreeMap::from([(100, true), (101, true)]);
    let state =
        FirewallState::from_texts(&texts, "pve", nets(&nic.into_iter().collect::<Vec<_>>()), "vmbr0", "test").with_node(&model(), None);
    assert_eq!(state.guests[&101].option("policy_in"), Some("ACCEPT"));
    let verdict = evaluate(&state, &model(), Endpoint::Guest(100), Endpoint::Guest(101), tcp(8080));
    assert!(verdict.passes && !verdict.unprotected, "{verdict:#?}");
    assert!(matches!(&verdict.chains[1].decision, Decision::Policy { action, .. } if action == "ACCEPT"), "{verdict:#?}");
}
