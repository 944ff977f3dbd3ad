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

#[derive(Debug, Clone)]
struct NaiveRule {
    out: bool,
    accept: bool,
    enabled: bool,
    source: Option<(u32, u8)>,
    dest: Option<(u32, u8)>,
    proto: Option<u8>,
    ports: Option<(u16, u16)>,
}

fn in_net(ip: u32, (net, prefix): (u32, u8)) -> bool {
    prefix == 0 || (ip >> (32 - prefix as u32)) == (net >> (32 - prefix as u32))
}

impl NaiveRule {
    fn hits(&self, out: bool, src: u32, dst: u32, proto: u8, port: Option<u16>) -> bool {
        self.enabled
            && self.out == out
            && self.source.is_none_or(|n| in_net(src, n))
            && self.dest.is_none_or(|n| in_net(dst, n))
            && self.proto.is_none_or(|p| p == proto)
            && self.ports.is_none_or(|(a, b)| port.is_some_and(|p| a <= p && p <= b))
    }

    fn line(&self) -> String {
        let mut line = format!(
            "{}{} {}",
            if self.enabled { "" } else { "|" },
            if self.out { "OUT" } else { "IN" },
            if self.accept { "ACCEPT" } else { "DROP" }
        );
        let net = |(n, p): (u32, u8)| format!("{}/{p}", Ipv4Addr::from(n));
        if let Some(s) = self.source {
            line += &format!(" -source {}", net(s));
        }
        if let Some(d) = self.dest {
            line += &format!(" -dest {}", net(d));
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

fn rule() -> impl Strategy<Value = NaiveRule> {
    let net = (
        prop::sample::select(vec![0x0a000000u32, 0x0a000064, 0x0a000065, 0x0a000001, 0x0a000032]),
        prop::sample::select(vec![0u8, 8, 24, 30, 32]),
    );
    (
        any::<bool>(),
        any::<bool>(),
        prop::bool::weighted(0.9),
        prop::option::of(net.clone()),
        prop::option::of(net),
        prop::option::of(prop::sample::select(vec![TCP, UDP, ICMP])),
        (1u16..30, 0u16..10),
    )
        .prop_map(|(out, accept, enabled, source, dest, proto, (a, len))| {
            let ports = match proto {
                Some(TCP) | Some(UDP) if a % 3 != 0 => Some((a, a + len)),
                _ => None,
            };
            NaiveRule {
                out,
                accept,
                enabled,
                source: source.map(|(n, p)| (n & if p == 0 { 0 } else { u32::MAX << (32 - p as u32) }, p)),
                dest: dest.map(|(n, p)| (n & if p == 0 { 0 } else { u32::MAX << (32 - p as u32) }, p)),
                proto,
                ports,
            }
        })
}

#[derive(Debug, Clone)]
struct World {
    cluster_enabled: bool,
    cluster_policy_in_accept: bool,
    cluster_rules: Vec<NaiveRule>,
    host_rules: Vec<NaiveRule>,
    /// guest 100 and 101: (file exists, enabled, nic flag, policy_in accept, policy_out accept, rules)
    guests: [(bool, bool, bool, bool, bool, Vec<NaiveRule>); 2],
}

fn world() -> impl Strategy<Value = World> {
    let guest = || {
        (
            prop::bool::weighted(0.9),
            prop::bool::weighted(0.8),
            prop::bool::weighted(0.8),
            any::<bool>(),
            prop::bool::weighted(0.7),
            prop::collection::vec(rule(), 0..6),
        )
    };
    (prop::bool::weighted(0.85), any::<bool>(), prop::collection::vec(rule(), 0..6), prop::collection::vec(rule(), 0..4), guest(), guest())
        .prop_map(|(cluster_enabled, cluster_policy_in_accept, cluster_rules, host_rules, a, b)| World {
            cluster_enabled,
            cluster_policy_in_accept,
            cluster_rules,
            host_rules,
            guests: [a, b],
        })
}

const HOST: u32 = 0x0a000001;
const GUEST_IPS: [u32; 2] = [0x0a000064, 0x0a000065];
const OUTSIDE: u32 = 0x0a000032;

/// (passes, index of the deciding rule in its list or None for policy/not in force), per chain.
fn naive(world: &World, src: usize, dst: usize, proto: u8, port: Option<u16>) -> bool {
    // Endpoints: 0 host, 1 guest 100, 2 guest 101, 3 outside.
    let ip = |e: usize| [HOST, GUEST_IPS[0], GUEST_IPS[1], OUTSIDE][e];
    let (s, d) = (ip(src), ip(dst));
    let chain_passes = |endpoint: usize, out: bool| -> bool {
        match endpoint {
            0 => {
                if !world.cluster_enabled {
                    return true;
                }
                for rule in world.host_rules.iter().chain(world.cluster_rules.iter()) {
                    if rule.hits(out, s, d, proto, port) {
                        return rule.accept;
                    }
                }
                if out {
                    true
                } else {
                    world.cluster_policy_in_accept
                }
            }
            1 | 2 => {
                let (exists, enabled, nic, policy_in, policy_out, rules) = &world.guests[endpoint - 1];
                if !(world.cluster_enabled && *exists && *enabled && *nic) {
                    return true;
                }
                for rule in rules {
                    if rule.hits(out, s, d, proto, port) {
                        return rule.accept;
                    }
                }
                if out {
                    *policy_out
                } else {
                    *policy_in
                }
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

fn file(options: &[(&str, String)], rules: &[NaiveRule]) -> String {
    let mut text = String::from("[OPTIONS]\n\n");
    for (k, v) in options {
        text += &format!("{k}: {v}\n");
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
    texts.insert(
        "/etc/pve/firewall/cluster.fw".to_string(),
        file(
            &[("enable", u8::from(world.cluster_enabled).to_string()), ("policy_in", policy(world.cluster_policy_in_accept))],
            &world.cluster_rules,
        ),
    );
    texts.insert("/etc/pve/nodes/pve/host.fw".to_string(), file(&[("enable", "1".into())], &world.host_rules));
    let mut nic = BTreeMap::new();
    for (i, (exists, enabled, flag, policy_in, policy_out, rules)) in world.guests.iter().enumerate() {
        let id = 100 + i as u32;
        nic.insert(id, *flag);
        if *exists {
            texts.insert(
                format!("/etc/pve/firewall/{id}.fw"),
                file(
                    &[("enable", u8::from(*enabled).to_string()), ("policy_in", policy(*policy_in)), ("policy_out", policy(*policy_out))],
                    rules,
                ),
            );
        }
    }
    FirewallState::from_texts(&texts, "pve", nets(&nic.into_iter().collect::<Vec<_>>()), "vmbr0", "test").with_node(&model(), None)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_evaluator_agrees_with_a_naive_reference(world in world(), src in 0usize..4, dst in 0usize..4, proto in prop::sample::select(vec![TCP, UDP, ICMP]), port in 1u16..40) {
        prop_assume!(src != dst);
        let model = model();
        let endpoint = |e: usize| match e {
            0 => Endpoint::Host,
            1 => Endpoint::Guest(100),
            2 => Endpoint::Guest(101),
            _ => Endpoint::Outside(IpAddr::V4(Ipv4Addr::from(OUTSIDE))),
        };
        let port = (proto != ICMP).then_some(port);
        let verdict = evaluate(&state(&world), &model, endpoint(src), endpoint(dst), Packet { proto, dport: port, ..Packet::default() });
        prop_assert_eq!(verdict.passes, naive(&world, src, dst, proto, port), "{:#?}", verdict);
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
    assert!(evaluate(&state, &model, Endpoint::Guest(1001), Endpoint::Guest(103), Packet::to(6, 9000))
        .passes
        .eq(&false));
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
    let state = FirewallState::from_texts(&texts, "pve", nets(&nic.into_iter().collect::<Vec<_>>()), "vmbr0", "test").with_node(&model(), None);
    assert_eq!(state.guests[&101].option("policy_in"), Some("ACCEPT"));
    let verdict = evaluate(&state, &model(), Endpoint::Guest(100), Endpoint::Guest(101), tcp(8080));
    assert!(verdict.passes && !verdict.unprotected, "{verdict:#?}");
    assert!(matches!(&verdict.chains[1].decision, Decision::Policy { action, .. } if action == "ACCEPT"), "{verdict:#?}");
}
