//! Issue 16: each shape the users' configuration took after 2025-10-27 (and before), read with
//! the meaning the original's scripts of that time gave it. Each test writes its own small
//! fixture as a mutation of the bundled example.

use phoenix_model::model::{BridgeRole, GuestKind, Owner, PortainerRole};
use phoenix_model::{check, Checked, Severity};
use phoenix_testkit::{example_config, example_source, MemorySource};
use serde_json::{json, Value};
use std::net::IpAddr;

const HV: &str = "phoenix_hypervisor_config.json";
const LXC: &str = "phoenix_lxc_configs.json";
const MANIFEST: &str = "certificate-manifest.json";

fn checked_with(edits: &[(&str, &dyn Fn(&mut Value))]) -> Checked {
    let mut source: MemorySource = example_source();
    for (name, edit) in edits {
        source.edit_json(&example_config().join(name), |v| edit(v));
    }
    check(&example_config(), &source)
}

fn codes<'c>(checked: &'c Checked, code: &str) -> Vec<&'c str> {
    checked.diagnostics.iter().filter(|d| d.code == code).map(|d| d.message.as_str()).collect()
}

/// The late-November network: a public VLAN and an internal bridge on the node
/// (hypervisor_feature_setup_macvlan.sh), and a dual-homed gateway (lxc-manager's
/// secondary_network_config).
fn dual_homed(v: &mut Value) {
    let gateway = &mut v["lxc_configs"]["101"];
    gateway["network_config"] = json!({ "name": "eth0", "bridge": "vmbr0.20", "ip": "dhcp", "firewall": true });
    gateway["secondary_network_config"] = json!({
        "name": "eth1", "bridge": "vmbr100", "ip": "172.16.100.10/24", "gw": "172.16.100.1",
        "hwaddr": "52:54:00:AA:10:01", "nameservers": "172.16.100.1"
    });
    // The example's Traefik is on the internal bridge too: its address moves with the subnet.
    v["lxc_configs"]["102"]["secondary_network_config"]["ip"] = json!("172.16.100.12/24");
}

fn internal_network(v: &mut Value) {
    v["network"]["public_bridge"] = json!("vmbr0");
    v["network"]["public_vlan_tag"] = json!(20);
    v["network"]["macvlan_vlan_tag"] = json!(10);
    v["network"]["internal_bridge"] = json!({ "name": "vmbr100", "subnet": "172.16.100.0/24" });
}

#[test]
fn a_second_nic_is_read_with_its_bridge_vlan_mac_and_resolver_and_its_address_belongs_to_its_guest() {
    let checked = checked_with(&[
        (HV, &internal_network),
        (LXC, &dual_homed),
        (LXC, &|v| {
            // Traefik admits the gateway's internal address: a rule on a second NIC's address.
            v["lxc_configs"]["102"]["firewall"]["rules"].as_array_mut().unwrap().push(json!({
                "type": "in", "action": "ACCEPT", "source": "172.16.100.10", "proto": "tcp", "port": "443", "comment": "gateway, internal"
            }));
        }),
    ]);
    let model = checked.model.as_ref().expect("loads");
    let gateway = &model.guests[&101];
    assert_eq!(gateway.nics.len(), 2);
    let (public, internal) = (&gateway.nics[0], &gateway.nics[1]);
    assert!(public.dhcp && public.address.is_none());
    assert_eq!((public.key(), public.vlan()), ("net0".to_string(), Some(20)));
    assert_eq!((internal.key(), internal.name.as_deref(), internal.bridge.as_deref()), ("net1".into(), Some("eth1"), Some("vmbr100")));
    assert_eq!(internal.mac.as_ref().unwrap().value, "52:54:00:AA:10:01");
    assert_eq!(internal.nameservers[0].value.to_string(), "172.16.100.1");
    // Its DHCP NIC has no address: it is reached on its internal one.
    assert_eq!(gateway.address().map(|a| a.to_string()).as_deref(), Some("172.16.100.10"));
    let index = model.address_index();
    assert!(matches!(index.owner_of("172.16.100.10".parse::<IpAddr>().unwrap()), Some(Owner::Guest(g)) if g.id == 101));
    // The node takes .1 of the internal subnet, as the original's setup script gave it.
    assert!(matches!(index.owner_of("172.16.100.1".parse::<IpAddr>().unwrap()), Some(Owner::Host)));
    let roles: Vec<(&str, BridgeRole, Option<u16>)> = model.host.bridges.iter().map(|b| (b.name.as_str(), b.role, b.vlan)).collect();
    assert_eq!(
        roles,
        [("vmbr0.10", BridgeRole::Public, Some(10)), ("vmbr0.20", BridgeRole::Public, Some(20)), ("vmbr100", BridgeRole::Internal, None)]
    );
    let unowned = codes(&checked, "PHX-FW-008");
    assert!(unowned.iter().all(|m| !m.contains("172.16.100.10")), "an address on a second NIC is owned: {unowned:?}");
    assert!(codes(&checked, "PHX-NET-003").is_empty(), "172.16.100.10 is inside vmbr100's subnet");
    for code in ["PHX-KEY-001", "PHX-SCHEMA-001", "PHX-SCHEMA-002", "PHX-SCHEMA-003"] {
        assert!(codes(&checked, code).is_empty(), "{code}: {:?}", codes(&checked, code));
    }
}

#[test]
fn an_address_outside_its_own_bridges_subnet_and_a_duplicate_mac_on_a_second_nic_are_reported() {
    let checked = checked_with(&[
        (HV, &internal_network),
        (LXC, &dual_homed),
        (LXC, &|v| {
            v["lxc_configs"]["101"]["secondary_network_config"]["ip"] = json!("10.0.0.77/24");
            v["lxc_configs"]["102"]["mac_address"] = json!("52:54:00:AA:10:01");
        }),
    ]);
    let outside = codes(&checked, "PHX-NET-003");
    assert_eq!(outside, ["10.0.0.77 of LXC 101 (nginx-gateway) is outside the subnet 172.16.100.0/24"], "{outside:?}");
    assert!(codes(&checked, "PHX-NET-002").iter().any(|m| m.contains("52:54:00:AA:10:01")));
    assert!(codes(&checked, "PHX-NET-004").iter().any(|m| m.contains("gateway 172.16.100.1")), "its gateway is off its network");
}

#[test]
fn a_vlan_tag_that_is_not_one_is_refused_with_its_place() {
    let checked = checked_with(&[(HV, &|v| v["network"]["public_vlan_tag"] = json!(5000))]);
    assert!(codes(&checked, "PHX-SCHEMA-004").iter().any(|m| m.contains("`5000` is not a VLAN tag")));
}

/// The manifests from mid-November 2025: no guest_id, the files in the guest's persistent-data
/// folder on the node, and `permissions` for both files (certificate-renewal-manager.sh).
#[test]
fn manifest_entries_without_guest_id_take_the_guest_of_their_folder_and_their_permissions() {
    let checked = checked_with(&[(MANIFEST, &|v| {
        let list = v.as_array_mut().unwrap();
        list.push(json!({
            "common_name": "proxy.internal.thinkheads.ai",
            "sans": ["*.internal.thinkheads.ai"],
            "cert_path": "/mnt/pve/quickOS/lxc-persistent-data/102/certs/traefik.crt",
            "key_path": "/mnt/pve/quickOS/lxc-persistent-data/102/certs/traefik.key",
            "owner": "root:root", "permissions": "644",
            "post_renewal_command": "pct exec 102 -- systemctl reload traefik"
        }));
        list.push(json!({
            "common_name": "agent.internal.thinkheads.ai",
            "cert_path": "/mnt/pve/quickOS/vm-persistent-data/1002/certs/agent.crt",
            "key_path": "/mnt/pve/quickOS/vm-persistent-data/1002/certs/agent.key",
            "owner": "root:root", "permissions": "600"
        }));
        list.push(json!({
            "common_name": "lost.internal.thinkheads.ai",
            "cert_path": "/mnt/pve/quickOS/lxc-persistent-data/199/lost.crt",
            "key_path": "/mnt/pve/quickOS/lxc-persistent-data/199/lost.key",
            "permissions": "6x0"
        }));
    })]);
    let model = checked.model.as_ref().expect("loads");
    let by_cn = |cn: &str| model.certificates.iter().find(|c| c.common_name.value == cn).expect("kept");
    let traefik = by_cn("proxy.internal.thinkheads.ai");
    assert_eq!((traefik.guest.as_ref().map(|g| g.value), traefik.guest_kind), (Some(102), Some(GuestKind::Lxc)));
    assert!(traefik.files_on_host && traefik.guest_from_path);
    assert_eq!(traefik.permissions.as_ref().map(|p| p.value), Some(0o644));
    let agent = by_cn("agent.internal.thinkheads.ai");
    assert_eq!((agent.guest.as_ref().map(|g| g.value), agent.guest_kind), (Some(1002), Some(GuestKind::Vm)));
    assert_eq!(
        codes(&checked, "PHX-CERT-003"),
        ["permissions 644 make the private key of certificate proxy.internal.thinkheads.ai readable by every user"]
    );
    assert!(codes(&checked, "PHX-CERT-002").iter().any(|m| m.contains("`6x0` is not an octal file mode")));
    assert!(codes(&checked, "PHX-CERT-001").iter().any(|m| m.contains("persistent-data folder of guest 199")));
    assert!(codes(&checked, "PHX-SCHEMA-002").is_empty(), "guest_id is not required: {:?}", codes(&checked, "PHX-SCHEMA-002"));
}

/// The early revisions (September-October 2025): vLLM containers, integration tests, a
/// container's volumes, a `vms` stub in the hypervisor file, `portainer_role: server`.
#[test]
fn keys_of_the_early_revisions_are_read_and_said_once_each() {
    let checked = checked_with(&[
        (LXC, &|v| {
            let traefik = &mut v["lxc_configs"]["102"];
            traefik["vllm_model"] = json!("Qwen/Qwen2.5-7B");
            traefik["vllm_port"] = json!(8000);
            traefik["integration_tests"] = json!({ "script": "run_vllm_integration_tests.sh" });
            traefik["volumes"] = json!([{ "name": "data", "pool": "tank", "size_gb": 20, "mount_point": "/data" }]);
            v["lxc_configs"]["103"]["portainer_role"] = json!("server");
        }),
        (HV, &|v| v["vms"] = json!([{ "name": "webserver-vm", "cores": 4 }])),
    ]);
    let model = checked.model.as_ref().expect("loads");
    assert_eq!(model.guests[&103].portainer_role, PortainerRole::Primary, "server was the early name of primary");
    let said: Vec<&str> = codes(&checked, "PHX-KEY-003");
    for key in ["vllm_model", "vllm_port", "integration_tests", "volumes", "vms"] {
        assert_eq!(said.iter().filter(|m| m.starts_with(&format!("`{key}`"))).count(), 1, "{key}: {said:?}");
    }
    assert!(checked.diagnostics.iter().filter(|d| d.code == "PHX-KEY-003").all(|d| d.severity == Severity::Info));
    for code in ["PHX-KEY-001", "PHX-SCHEMA-001", "PHX-SCHEMA-003"] {
        assert!(codes(&checked, code).is_empty(), "{code}: {:?}", codes(&checked, code));
    }
}

/// The era of empty zones (mid-November 2025): the original's DNS script generated the records
/// from the guests and stacks; phoenix derives them the same way, says so, and checks them.
#[test]
fn with_empty_zones_the_records_are_derived_as_the_dns_script_did_and_checked() {
    let checked = checked_with(&[
        (HV, &|v| {
            v["domain_name"] = json!("internal.thinkheads.ai");
            v["dns_server"]["authoritative_zones"] = json!([]);
            // That era had no internal bridge yet (its script derived records differently after).
            v["network"].as_object_mut().unwrap().remove("internal_bridge");
        }),
        (LXC, &|v| {
            v["lxc_configs"]["102"].as_object_mut().unwrap().remove("secondary_network_config");
            // Step-CA moved; the script still sent `ca` to its old address.
            v["lxc_configs"]["103"]["traefik_service"] = json!({ "name": "ca", "port": 9000 });
            v["lxc_configs"]["103"]["network_config"]["ip"] = json!("10.0.0.11/24");
        }),
    ]);
    let model = checked.model.as_ref().expect("loads");
    let record = |fqdn: &str| model.dns.records.iter().find(|r| r.fqdn == fqdn).unwrap_or_else(|| panic!("no record {fqdn}"));
    // A VM's traefik_service at the gateway; guests' own names at themselves; the agent's name.
    assert_eq!(record("portainer.internal.thinkheads.ai").address.to_string(), "10.0.0.153");
    // The first record of a name wins: Traefik's guest is named traefik, before the static one.
    assert_eq!(record("traefik.internal.thinkheads.ai").address.to_string(), "10.0.0.12");
    assert_eq!(record("drphoenix.internal.thinkheads.ai").address.to_string(), "10.0.0.102");
    assert_eq!(record("portainer-agent.internal.thinkheads.ai").address.to_string(), "10.0.0.102");
    assert!(record("drphoenix.internal.thinkheads.ai").derived.as_deref().unwrap().contains("the name of VM 1002"));
    // The template VM has no static address: the script skipped it.
    assert!(model.dns.records.iter().all(|r| r.fqdn != "ubuntu-2404-cloud-template.internal.thinkheads.ai"));
    // `ca` went to the address written into the script, wherever Step-CA was.
    assert_eq!(record("ca.internal.thinkheads.ai").address.to_string(), "10.0.0.10");
    // Checked like a declared record, and the finding says it is derived.
    let unowned = codes(&checked, "PHX-DNS-001");
    assert!(
        unowned.iter().any(|m| m.starts_with("ca.internal.thinkheads.ai points at 10.0.0.10, which belongs to no guest")
            && m.ends_with("(derived, as the original's DNS script did, from the traefik_service of LXC 103 (step-ca))")),
        "{unowned:?}"
    );
}

#[test]
fn zones_that_are_declared_are_never_completed() {
    let checked = checked_with(&[]);
    assert!(checked.model.as_ref().unwrap().dns.records.iter().all(|r| r.derived.is_none()));
}

/// The later revisions have no phoenix_stacks_config.json: their stacks are folders.
#[test]
fn the_stacks_file_may_be_absent() {
    let mut source = example_source();
    source.files.remove(&example_config().join("phoenix_stacks_config.json"));
    let checked = check(&example_config(), &source);
    assert!(checked.model.is_some());
    assert!(codes(&checked, "PHX-IO-001").is_empty());
    assert!(!codes(&checked, "PHX-STACK-001").is_empty(), "a guest naming a stack nobody defines is still reported");
}

/// The internal-mesh era (late November 2025): the same script then sent every service name
/// to Traefik, and only Step-CA, Traefik and the gateway's internal NIC by their own names.
#[test]
fn with_an_internal_bridge_the_derived_records_point_at_traefik_as_the_mesh_script_did() {
    let checked = checked_with(&[
        (HV, &|v| {
            internal_network(v);
            v["domain_name"] = json!("internal.thinkheads.ai");
            v["dns_server"]["authoritative_zones"] = json!([]);
        }),
        (LXC, &dual_homed),
    ]);
    let model = checked.model.as_ref().expect("loads");
    let at = |fqdn: &str| model.dns.records.iter().find(|r| r.fqdn == fqdn).map(|r| r.address.to_string());
    assert_eq!(at("portainer.internal.thinkheads.ai").as_deref(), Some("10.0.0.12"), "a VM's service at Traefik");
    assert_eq!(at("nginx-gateway.internal.thinkheads.ai").as_deref(), Some("172.16.100.10"), "the gateway at its second NIC");
    assert_eq!(at("step-ca.internal.thinkheads.ai").as_deref(), Some("10.0.0.10"));
    assert_eq!(at("drphoenix.internal.thinkheads.ai").as_deref(), Some("10.0.0.12"), "a VM's own name at Traefik");
    assert_eq!(at("portainer-agent.internal.thinkheads.ai").as_deref(), Some("10.0.0.12"));
    // Which the checks then judge: the agent's hostname must reach the agent, not Traefik.
    assert!(codes(&checked, "PHX-DNS-003").iter().any(|m| m.starts_with("portainer-agent.internal.thinkheads.ai points at 10.0.0.12")));
}

/// Issue 16: Swarm-style compose files (the users' late stacks: `deploy`, external networks and
/// secrets) load without a finding against them, and each Swarm key is said once, as read but
/// not acted on, however many stacks carry it.
#[test]
fn swarm_style_compose_files_load_and_their_keys_are_said_once_each() {
    let mut source: MemorySource = example_source();
    let stacks = example_config().parent().unwrap().join("stacks");
    let swarm = "services:\n  whoami:\n    image: traefik/whoami:v1.10\n    networks: [traefik_public]\n    secrets: [api_key]\n    \
                 deploy:\n      replicas: 2\n      placement:\n        constraints: [\"node.labels.gpu == true\"]\n\
                 networks:\n  traefik_public:\n    external: true\nsecrets:\n  api_key:\n    external: true\n";
    source.files.insert(stacks.join("whoami/docker-compose.yml"), swarm.into());
    source.files.insert(
        stacks.join("second/docker-compose.yml"),
        "services:\n  app:\n    image: nginx:1.27\n    deploy:\n      replicas: 3\n".into(),
    );
    source.edit_json(&example_config().join("phoenix_vm_configs.json"), |v| {
        let vm = v["vms"].as_array_mut().unwrap().iter_mut().find(|vm| vm["vmid"] == 1002).unwrap();
        vm["docker_stacks"].as_array_mut().unwrap().push(json!("second"));
    });
    let checked = check(&example_config(), &source);
    let mut said = codes(&checked, "PHX-KEY-003");
    said.sort_unstable();
    assert_eq!(
        said,
        [
            "`deploy` of a compose file is read, but phoenix does not act on it yet (2 places; this is the first)",
            "`external networks` of a compose file is read, but phoenix does not act on it yet",
            "`secrets` of a compose file is read, but phoenix does not act on it yet",
        ],
        "{said:?}"
    );
    let others: Vec<_> = checked.diagnostics.iter().filter(|d| d.severity == Severity::Error).map(|d| (d.code, &d.message)).collect();
    assert!(others.is_empty(), "{others:?}");
}
