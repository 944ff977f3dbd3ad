//! The Proxmox firewall files: the format round-trips (render, parse, same rules), the parser
//! reports bad lines by number, and the renderer puts every rule in the file of its scope.

use phoenix_core::deploy::Machine;
use phoenix_core::pve_fw::{self, FwAlias, FwFile, FwGroup, FwIpSet, FwIpSetEntry, FwRule};
use phoenix_core::render::render_all;
use phoenix_testkit::{example_config, example_source, reference_config, MemorySource};
use proptest::prelude::*;

fn word() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_-]{0,10}"
}

fn comment() -> impl Strategy<Value = Option<String>> {
    prop::option::of("[A-Za-z0-9][A-Za-z0-9 ().,:/-]{0,30}[A-Za-z0-9)]".prop_map(|s| s.to_string()))
}

fn address() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u8..=255, 0u8..=255, 0u8..=32).prop_map(|(a, b, len)| format!("10.{a}.{b}.0/{len}")),
        (0u8..=255, 1u8..=254).prop_map(|(a, b)| format!("192.168.{a}.{b}")),
        word().prop_map(|w| format!("+dc/{w}")),
        word(),
    ]
}

fn rule() -> impl Strategy<Value = FwRule> {
    let options = (
        prop::option::of(prop::sample::select(vec!["net0", "net1", "vmbr0"])),
        prop::option::of(address()),
        prop::option::of(address()),
        prop::option::of(prop::sample::select(vec!["tcp", "udp", "icmp"])),
        prop::option::of((1u16..65535).prop_map(|p| p.to_string())),
        prop::option::of(prop::sample::select(vec!["nolog", "info"])),
    );
    (
        any::<bool>(),
        prop::sample::select(vec!["IN", "OUT"]),
        prop::sample::select(vec!["ACCEPT", "DROP", "REJECT", "SSH(ACCEPT)"]),
        options,
        comment(),
    )
        .prop_map(|(enabled, direction, verdict, (i, source, dest, p, dport, log), comment)| {
            let mut options = Vec::new();
            for (key, value) in [
                ("i", i.map(str::to_string)),
                ("source", source),
                ("dest", dest),
                ("p", p.map(str::to_string)),
                ("dport", dport),
                ("log", log.map(str::to_string)),
            ] {
                if let Some(value) = value {
                    options.push((key.to_string(), value));
                }
            }
            let direction = pve_fw::Direction::parse(direction).expect("IN or OUT");
            FwRule { enabled, direction, verdict: pve_fw::Verdict::parse(direction, verdict), options, comment }
        })
}

fn fw_file() -> impl Strategy<Value = FwFile> {
    (
        prop::collection::btree_map(
            prop::sample::select(vec!["enable", "policy_in", "policy_out", "log_level_in"]).prop_map(str::to_string),
            prop::sample::select(vec!["0", "1", "DROP", "ACCEPT"]).prop_map(str::to_string),
            0..4,
        ),
        prop::collection::vec((word(), address(), comment()).prop_map(|(name, cidr, comment)| FwAlias { name, cidr, comment }), 0..3),
        prop::collection::vec(
            (
                word(),
                comment(),
                prop::collection::vec(
                    (any::<bool>(), address(), comment()).prop_map(|(negated, cidr, comment)| FwIpSetEntry { negated, cidr, comment }),
                    0..3,
                ),
            )
                .prop_map(|(name, comment, entries)| FwIpSet { name, comment, entries }),
            0..3,
        ),
        prop::collection::vec(rule(), 0..8),
        prop::collection::vec(
            (word(), comment(), prop::collection::vec(rule(), 0..3)).prop_map(|(name, comment, rules)| FwGroup { name, comment, rules }),
            0..2,
        ),
    )
        .prop_map(|(options, aliases, ipsets, rules, groups)| FwFile { options, aliases, ipsets, rules, groups })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn render_then_parse_gives_the_same_file(file in fw_file()) {
        let text = file.to_text();
        let parsed = pve_fw::parse(&text).map_err(|e| TestCaseError::fail(format!("{e:?}\n{text}")))?;
        prop_assert_eq!(parsed, file);
    }
}

#[test]
fn the_parser_names_the_bad_line() {
    let text = "[OPTIONS]\nenable: 1\n\n[RULES]\nIN ACCEPT -p tcp -dport 22\nSIDEWAYS ACCEPT\nIN ACCEPT -bogus 1\n[NONSENSE]\n";
    let errors = pve_fw::parse(text).unwrap_err();
    let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![6, 7, 8], "{errors:?}");
    assert!(errors[0].message.contains("SIDEWAYS"));
}

#[test]
fn a_real_proxmox_file_parses() {
    // Written as pve-firewall writes files (cf. proxmox-firewall's tests/input fixtures).
    let text = "[OPTIONS]\n\nenable: 1\npolicy_in: DROP\n\n[ALIASES]\n\nmgmt 10.0.0.0/24 # management LAN\n\n[IPSET admins] # who may SSH\n\n10.0.0.50\n!10.0.0.51\n\n[RULES]\n\nGROUP web -i net0\n|IN SSH(ACCEPT) -source +admins -log nolog # disabled\nOUT ACCEPT -dest 10.0.0.10 -p tcp -dport 9000\n\n[group web]\n\nIN ACCEPT -p tcp -dport 80,443\n";
    let file = pve_fw::parse(text).unwrap();
    assert_eq!(file.rules.len(), 3);
    assert!(!file.rules[1].enabled);
    assert_eq!(file.rules[0].direction, pve_fw::Direction::Group);
    assert!(file.ipsets[0].entries[1].negated);
    assert_eq!(file.groups[0].rules[0].options, vec![("p".to_string(), "tcp".to_string()), ("dport".to_string(), "80,443".to_string())]);
}

fn render_source(source: &MemorySource, config: &std::path::Path) -> phoenix_core::render::Rendered {
    let checked = phoenix_model::check(config, source);
    render_all(checked.model.as_ref().expect("model"))
}

#[test]
fn every_guest_gets_its_own_file_with_its_own_rules() {
    let rendered = render_source(&example_source(), &example_config());
    let checked = phoenix_model::check(&example_config(), &example_source());
    let model = checked.model.unwrap();
    for guest in model.guests.values() {
        let path = format!("/etc/pve/firewall/{}.fw", guest.id);
        let file = rendered.files.iter().find(|f| f.path == path && f.target == Machine::Host).unwrap_or_else(|| panic!("{path} missing"));
        let parsed = pve_fw::parse(&file.content).unwrap();
        assert_eq!(parsed.rules.len(), guest.firewall.rules.len(), "{path}");
        assert_eq!(parsed.options.get("enable").map(String::as_str), Some(if guest.firewall.enabled { "1" } else { "0" }));
    }
    let cluster = rendered.files.iter().find(|f| f.path == "/etc/pve/firewall/cluster.fw").unwrap();
    assert_eq!(pve_fw::parse(&cluster.content).unwrap().rules.len(), model.firewall.cluster_rules.len());
    assert!(rendered.files.iter().any(|f| f.path == "/etc/pve/nodes/pve/host.fw"));
    // Every guest with a firewall gets firewall=1 on its NIC.
    for setting in &rendered.settings {
        assert!(setting.value.contains("firewall=1"), "{setting:?}");
    }
    // One setting per NIC: seven guests, LXC 102 with two.
    assert_eq!(rendered.settings.len(), model.guests.values().map(|g| g.nics.len()).sum::<usize>());
    assert_eq!(rendered.settings.len(), 8);
}

#[test]
fn cluster_rules_meant_for_guests_are_rendered_where_declared_and_reported() {
    let source = MemorySource::from_dir(reference_config().parent().unwrap());
    let rendered = render_source(&source, &reference_config());
    let cluster = rendered.files.iter().find(|f| f.path == "/etc/pve/firewall/cluster.fw").unwrap();
    assert!(cluster
        .content
        .contains("IN ACCEPT -source 10.0.0.12 -dest 10.0.0.111 -p tcp -dport 9443 # Allow Traefik to access Portainer"));
    assert!(rendered.notes.iter().any(|n| n.code == "PHX-FW-009" && n.message.contains("Allow Traefik to access Portainer")));
    let portainer = rendered.files.iter().find(|f| f.path == "/etc/pve/firewall/1001.fw").unwrap();
    assert!(portainer.content.contains("IN ACCEPT -source 10.0.0.12 -p tcp -dport 9443 # Allow Traefik to access Portainer"));
}
