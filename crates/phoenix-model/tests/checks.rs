//! Every validation check, exercised by one mutation of the bundled example (which itself
//! must be clean). Each test asserts the code appears where the mutation put the problem.

use phoenix_model::{check, Checked};
use phoenix_testkit::{example_config, example_source, MemorySource};
use serde_json::{json, Value};
use std::path::PathBuf;

fn file(name: &str) -> PathBuf {
    example_config().join(name)
}

const HV: &str = "phoenix_hypervisor_config.json";
const LXC: &str = "phoenix_lxc_configs.json";
const VM: &str = "phoenix_vm_configs.json";
const STACKS: &str = "phoenix_stacks_config.json";
const MANIFEST: &str = "certificate-manifest.json";

fn run(source: &MemorySource) -> Checked {
    check(&example_config(), source)
}

fn mutated(name: &str, edit: impl FnOnce(&mut Value)) -> Checked {
    let mut source = example_source();
    source.edit_json(&file(name), edit);
    run(&source)
}

/// The diagnostics with `code`, as (file name, line, message).
fn found(checked: &Checked, code: &str) -> Vec<(String, usize, String)> {
    checked
        .diagnostics
        .iter()
        .filter(|d| d.code == code)
        .map(|d| {
            let span = d.span.expect("every diagnostic here has a span");
            let path = checked.sources.path(span.file).file_name().unwrap().to_string_lossy().to_string();
            (path, checked.sources.line_col(span).line, d.message.clone())
        })
        .collect()
}

fn assert_code(checked: &Checked, code: &str, file: &str, message_part: &str) {
    let hits = found(checked, code);
    assert!(
        hits.iter().any(|(f, _, m)| f == file && m.contains(message_part)),
        "expected {code} in {file} mentioning {message_part:?}; got {hits:?}\nall: {:#?}",
        checked.diagnostics.iter().map(|d| (d.code, &d.message)).collect::<Vec<_>>()
    );
}

fn lxc<'a>(v: &'a mut Value, id: &str) -> &'a mut Value {
    &mut v["lxc_configs"][id]
}

fn vm(v: &mut Value, index: usize) -> &mut Value {
    &mut v["vms"][index]
}

#[test]
fn the_bundled_example_is_clean() {
    let checked = run(&example_source());
    let all: Vec<_> = checked.diagnostics.iter().map(|d| (d.code, d.message.clone())).collect();
    assert!(all.is_empty(), "{all:#?}");
    let model = checked.model.expect("model");
    assert_eq!(model.guests.len(), 7);
    assert_eq!(model.edge.gateway, Some(101));
    assert_eq!(model.edge.traefik, Some(102));
    assert_eq!(model.edge.step_ca, Some(103));
}

#[test]
fn json_syntax_errors_stop_loading_with_line_and_column() {
    let mut source = example_source();
    let text = source.files.get(&file(VM)).unwrap().replacen("\"vmid\": 1001,", "\"vmid\": 1001,,", 1);
    source.files.insert(file(VM), text.clone());
    let checked = run(&source);
    assert!(checked.model.is_none(), "no model after a syntax error");
    let error = checked.diagnostics.iter().find(|d| d.code == "PHX-JSON-001").expect("syntax error");
    let at = checked.sources.line_col(error.span.unwrap());
    let expected_line = text[..text.find(",,").unwrap()].lines().count();
    assert_eq!(at.line, expected_line);
    assert!(at.column > 1);
}

#[test]
fn an_unreadable_file_is_reported_and_others_still_checked() {
    let mut source = example_source();
    source.files.remove(&file(LXC));
    source.edit_json(&file(HV), |v| v["domian_name"] = json!("x"));
    let checked = run(&source);
    assert_code(&checked, "PHX-IO-001", LXC, "cannot read");
    assert_code(&checked, "PHX-KEY-001", HV, "domian_name");
    assert!(checked.has_errors());
}

#[test]
fn the_certificate_manifest_is_optional() {
    let mut source = example_source();
    source.files.remove(&file(MANIFEST));
    let checked = run(&source);
    assert!(checked.diagnostics.is_empty());
    assert!(checked.model.unwrap().certificates.is_empty());
}

#[test]
fn duplicate_keys_are_warned() {
    let mut source = example_source();
    let text = source.files.get(&file(HV)).unwrap().replacen(
        "\"timezone\": \"America/New_York\",",
        "\"timezone\": \"UTC\", \"timezone\": \"America/New_York\",",
        1,
    );
    source.files.insert(file(HV), text);
    assert_code(&run(&source), "PHX-JSON-002", HV, "timezone");
}

#[test]
fn unknown_keys_suggest_the_nearest_known_key() {
    let checked = mutated(LXC, |v| lxc(v, "102")["memroy_mb"] = json!(512));
    assert_code(&checked, "PHX-KEY-001", LXC, "memroy_mb");
    let d = checked.diagnostics.iter().find(|d| d.code == "PHX-KEY-001").unwrap();
    assert_eq!(d.help.as_deref(), Some("did you mean `memory_mb`?"));
    assert!(!checked.has_errors(), "an unknown key is a warning");
}

#[test]
fn misplaced_sections_are_used_and_reported() {
    let checked = mutated(HV, |v| {
        let firewall = v.as_object_mut().unwrap().remove("firewall").unwrap();
        v["network"]["firewall"] = firewall;
    });
    assert_code(&checked, "PHX-KEY-002", HV, "`firewall` is nested under `network`");
    assert!(checked.model.unwrap().firewall.cluster.enabled, "the relocated section is honoured");
}

#[test]
fn schema_type_enum_and_required_problems_are_reported_at_the_value() {
    let checked = mutated(LXC, |v| lxc(v, "102")["memory_mb"] = json!("lots"));
    assert_code(&checked, "PHX-SCHEMA-001", LXC, "/lxc_configs/102/memory_mb");
    assert!(checked.model.unwrap().guests.contains_key(&102), "the guest survives a wrong value");

    let checked = mutated(VM, |v| vm(v, 1)["portainer_role"] = json!("boss"));
    assert_code(&checked, "PHX-SCHEMA-003", VM, "/vms/1/portainer_role");

    let checked = mutated(VM, |v| {
        vm(v, 2).as_object_mut().unwrap().remove("vmid");
    });
    assert_code(&checked, "PHX-SCHEMA-002", VM, "vmid");
}

#[test]
fn duplicate_guest_ids_across_lxc_and_vm() {
    let checked = mutated(VM, |v| vm(v, 2)["vmid"] = json!(102));
    assert_code(&checked, "PHX-GUEST-001", VM, "already used by LXC 102");
}

#[test]
fn invalid_guest_ids() {
    let checked = mutated(LXC, |v| {
        let guest = lxc(v, "103").clone();
        v["lxc_configs"]["42"] = guest;
    });
    assert_code(&checked, "PHX-GUEST-002", LXC, "`42`");
}

#[test]
fn duplicate_ip_and_mac() {
    let checked = mutated(VM, |v| {
        vm(v, 2)["network_config"]["ip"] = json!("10.0.0.111/24");
        vm(v, 2)["mac_address"] = json!("52:54:00:aa:10:01");
    });
    assert_code(&checked, "PHX-NET-001", VM, "10.0.0.111 of VM 1002");
    assert_code(&checked, "PHX-NET-002", VM, "52:54:00:AA:10:01");
}

#[test]
fn the_host_address_counts_as_used() {
    let checked = mutated(LXC, |v| lxc(v, "103")["network_config"]["ip"] = json!("10.0.0.13/24"));
    assert_code(&checked, "PHX-NET-001", LXC, "the Proxmox host");
}

#[test]
fn addresses_and_gateways_outside_the_subnet() {
    let checked = mutated(LXC, |v| {
        lxc(v, "102")["network_config"]["ip"] = json!("10.0.1.12/24");
        lxc(v, "103")["network_config"]["gw"] = json!("192.168.1.1");
    });
    assert_code(&checked, "PHX-NET-003", LXC, "outside the subnet 10.0.0.0/24");
    assert_code(&checked, "PHX-NET-004", LXC, "gateway 192.168.1.1");
}

#[test]
fn malformed_addresses() {
    let checked = mutated(LXC, |v| {
        lxc(v, "102")["network_config"]["ip"] = json!("10.0.0.12");
        lxc(v, "102")["mac_address"] = json!("52:54:00:AA:01");
    });
    assert_code(&checked, "PHX-NET-005", LXC, "`10.0.0.12` is not an IPv4 address with prefix");
    assert_code(&checked, "PHX-NET-005", LXC, "not a MAC address");
}

#[test]
fn dangling_dependencies_and_clone_sources() {
    let checked = mutated(LXC, |v| {
        lxc(v, "102")["dependencies"] = json!([104]);
        lxc(v, "101")["clone_from_ctid"] = json!("905");
    });
    assert_code(&checked, "PHX-GRAPH-001", LXC, "depends on guest 104");
    assert_code(&checked, "PHX-GRAPH-002", LXC, "clones from guest 905");
}

#[test]
fn dependency_cycles_print_the_cycle() {
    let checked = mutated(LXC, |v| lxc(v, "103")["dependencies"] = json!([1002]));
    // The cycle is printed from its lowest id; 101 depends on 103 but is not on it.
    assert_code(&checked, "PHX-GRAPH-003", LXC, "dependency cycle: 102 -> 1001 -> 1002 -> 103 -> 102");
}

#[test]
fn clone_sources_must_be_templates_of_the_same_kind() {
    let checked = mutated(VM, |v| vm(v, 0)["is_template"] = json!(false));
    assert_code(&checked, "PHX-GRAPH-004", VM, "not marked \"is_template\": true");
    let checked = mutated(LXC, |v| {
        lxc(v, "900").as_object_mut().unwrap().remove("template_snapshot_name");
        lxc(v, "900")["is_template"] = json!(false);
    });
    assert_code(&checked, "PHX-GRAPH-004", LXC, "no template_snapshot_name");
    let checked = mutated(VM, |v| vm(v, 1)["clone_from_vmid"] = json!(900));
    assert_code(&checked, "PHX-GRAPH-004", VM, "it is an LXC, not a VM");
}

#[test]
fn stack_assignments_must_name_defined_stacks_and_environments() {
    let checked = mutated(VM, |v| {
        vm(v, 2)["docker_stacks"] =
            json!([{ "name": "qdrant_servce", "environment": "production" }, { "name": "portainer_service", "environment": "staging" }]);
    });
    assert_code(&checked, "PHX-STACK-001", VM, "qdrant_servce");
    let d = checked.diagnostics.iter().find(|d| d.code == "PHX-STACK-001").unwrap();
    assert_eq!(d.help.as_deref(), Some("did you mean `qdrant_service`?"));
    assert_code(&checked, "PHX-STACK-002", VM, "no environment `staging`");
}

#[test]
fn compose_files_must_exist_and_be_valid() {
    let checked = mutated(STACKS, |v| {
        v["docker_stacks"]["qdrant_service"]["compose_file_path"] = json!("persistent-storage/nope/docker-compose.yml")
    });
    assert_code(&checked, "PHX-STACK-003", STACKS, "does not exist");

    let mut source = example_source();
    let compose = example_config().parent().unwrap().join("persistent-storage/qdrant/docker-compose.yml");
    source.files.insert(compose.clone(), "services:\n  qdrant:\n    image: [unclosed\n".into());
    assert_code(&run(&source), "PHX-STACK-004", "docker-compose.yml", "not valid YAML");

    source.files.insert(compose, "services:\n  qdrant:\n    image: qdrant/qdrant\n    restart: sometimes-maybe\n    ports: 6333\n".into());
    assert_code(&run(&source), "PHX-STACK-004", "docker-compose.yml", "Compose Specification");
}

#[test]
fn stack_files_must_exist() {
    let checked = mutated(STACKS, |v| {
        v["docker_stacks"]["qdrant_service"]["environments"]["production"]["files"] =
            json!([{ "source": "persistent-storage/qdrant/missing.env", "destination_in_container": "/app/.env" }]);
    });
    assert_code(&checked, "PHX-STACK-005", STACKS, "missing.env");
}

#[test]
fn traefik_labels_must_agree_with_the_guest_traefik_service() {
    // VM 1002 routes qdrant twice: by its stack's labels (port 6333, http) and by a
    // traefik_service that says otherwise.
    let mut source = example_source();
    source.edit_json(&file(VM), |v| {
        vm(v, 2)["traefik_service"] = json!({ "name": "qdrant", "port": 6334, "scheme": "https" });
    });
    source.edit_json(&file(STACKS), |v| {
        let labels = v["docker_stacks"]["qdrant_service"]["environments"]["production"]["services"]["qdrant"]["traefik_labels"]
            .as_array_mut()
            .unwrap();
        labels.push(json!("traefik.http.routers.qdrant-again.rule=Host(`qdrant.phoenix.thinkheads.ai`)"));
    });
    let checked = run(&source);
    assert_code(&checked, "PHX-TRAEFIK-001", STACKS, "port 6333 instead of port 6334, scheme http instead of https");
    // The same host name in two routers is also reported; the first definition is kept.
    assert_code(&checked, "PHX-TRAEFIK-003", STACKS, "qdrant.phoenix.thinkheads.ai is routed twice");
}

#[test]
fn unreadable_traefik_labels_are_warned() {
    let checked = mutated(STACKS, |v| {
        v["docker_stacks"]["qdrant_service"]["environments"]["production"]["services"]["qdrant"]["traefik_labels"][4] =
            json!("traefik.http.services.qdrant.loadbalancer.server.port=sixty");
    });
    assert_code(&checked, "PHX-TRAEFIK-002", STACKS, "port=sixty");
}

#[test]
fn duplicate_and_shadowed_rules() {
    let checked = mutated(VM, |v| {
        let rules = vm(v, 2)["firewall"]["rules"].as_array_mut().unwrap();
        rules.push(rules[0].clone());
        rules.insert(
            0,
            json!({ "type": "in", "action": "ACCEPT", "source": "10.0.0.0/24", "proto": "tcp", "comment": "everything from the LAN" }),
        );
    });
    assert_code(&checked, "PHX-FW-006", VM, "repeats rule 2");
    assert_code(&checked, "PHX-FW-007", VM, "rule 3 (\"Traefik proxies the Qdrant HTTP API\") is never reached");
}

#[test]
fn a_shadowed_rule_with_another_action_says_so() {
    let checked = mutated(LXC, |v| {
        let rules = lxc(v, "101")["firewall"]["rules"].as_array_mut().unwrap();
        rules.push(json!({ "type": "in", "action": "DROP", "source": "10.0.0.66", "proto": "tcp", "port": "443" }));
    });
    assert_code(&checked, "PHX-FW-007", LXC, "its action differs");
}

#[test]
fn malformed_rules_name_the_bad_field() {
    let checked = mutated(LXC, |v| {
        let rules = lxc(v, "103")["firewall"]["rules"].as_array_mut().unwrap();
        rules.push(json!({ "type": "in", "action": "ACCEPT", "source": "10.0.0.0/33", "proto": "tcp", "port": "9000" }));
        rules.push(json!({ "type": "in", "action": "ACCEPT", "proto": "tcp", "port": "9000:80" }));
        rules.push(json!({ "type": "in", "action": "ACCEPT", "proto": "tpc", "port": "9000" }));
        rules.push(json!({ "type": "in", "action": "accept", "proto": "tcp", "port": "9001" }));
        rules.push(json!({ "type": "sideways", "action": "ACCEPT", "proto": "tcp", "port": "9002" }));
        rules.push(json!({ "type": "in", "action": "ACCEPT", "proto": "icmp", "port": "9003" }));
    });
    assert_code(&checked, "PHX-FW-001", LXC, "10.0.0.0/33");
    assert_code(&checked, "PHX-FW-002", LXC, "runs backwards");
    assert_code(&checked, "PHX-FW-003", LXC, "unknown protocol `tpc`");
    assert_code(&checked, "PHX-FW-004", LXC, "`accept` is not a firewall action");
    assert_code(&checked, "PHX-FW-005", LXC, "`sideways`");
    assert_code(&checked, "PHX-FW-003", LXC, "port is given with protocol icmp");
    let d = checked.diagnostics.iter().find(|d| d.code == "PHX-FW-004").unwrap();
    assert!(d.help.as_deref().unwrap().contains("ACCEPT"));
}

#[test]
fn rules_proxmox_would_refuse_are_reported_where_written() {
    // Each is a 400 from pve-firewall's verify_rule on a real PVE 9.
    let checked = mutated(LXC, |v| {
        let rules = lxc(v, "103")["firewall"]["rules"].as_array_mut().unwrap();
        rules.push(json!({ "type": "in", "action": "ACCEPT", "iface": "eth0" }));
        rules.push(json!({ "type": "in", "action": "ACCEPT", "macro": "SSH", "port": "22" }));
        rules.push(json!({ "type": "in", "action": "ACCEPT", "macro": "NFS" }));
        rules.push(json!({ "type": "in", "action": "ACCEPT", "macro": "SSH", "proto": "udp" }));
        rules.push(json!({ "type": "in", "action": "ACCEPT", "source": "10.0.0.12,dc/lan" }));
        rules.push(json!({ "type": "in", "action": "ACCEPT", "source": "10.0.0.1-10.0.0.9,10.0.0.20" }));
        rules.push(json!({ "type": "in", "action": "ACCEPT", "source": "10.0.0.12/24" }));
        let ports: Vec<String> = (9000..9016).map(|p| p.to_string()).collect();
        rules.push(json!({ "type": "in", "action": "ACCEPT", "proto": "tcp", "port": ports.join(",") }));
        rules.push(json!({ "type": "group", "action": "web", "source": "10.0.0.0/24" }));
        rules.push(json!({ "type": "in", "action": "ACCEPT", "proto": "icmp", "source": "2001:db8::/64" }));
    });
    assert_code(&checked, "PHX-FW-010", LXC, "interface `eth0` is not a NIC key");
    assert_code(&checked, "PHX-FW-010", LXC, "a dport with a macro needs a protocol");
    assert_code(&checked, "PHX-FW-010", LXC, "no macro `NFS`");
    assert_code(&checked, "PHX-FW-010", LXC, "macro SSH already sets tcp 22");
    assert_code(&checked, "PHX-FW-010", LXC, "must stand alone");
    assert_code(&checked, "PHX-FW-010", LXC, "a range cannot be part of a list");
    assert_code(&checked, "PHX-FW-010", LXC, "host bits below its prefix");
    assert_code(&checked, "PHX-FW-010", LXC, "16 ports");
    assert_code(&checked, "PHX-FW-010", LXC, "a GROUP rule takes only an interface");
    assert_code(&checked, "PHX-FW-010", LXC, "mixes IPv4 and IPv6");
    // Located at the offending value, on its own line.
    let lines: std::collections::BTreeSet<usize> = found(&checked, "PHX-FW-010").iter().map(|(_, line, _)| *line).collect();
    assert!(lines.len() >= 8, "{lines:?}");
}

#[test]
fn security_groups_follow_pve_firewalls_names_and_nesting() {
    let checked = mutated(HV, |v| {
        v["firewall"]["security_groups"] = json!({
            "a-name-longer-than-18": [],
            "Outer": [{ "type": "group", "action": "inner" }, { "type": "in", "action": "ACCEPT", "iface": "net0" }],
            "outer": []
        });
        v["firewall"]["ipsets"] = json!({ "9lives": ["10.0.0.0/24"] });
    });
    assert_code(&checked, "PHX-FW-011", HV, "longer than 18 characters");
    assert_code(&checked, "PHX-FW-011", HV, "`outer` to pve-firewall");
    assert_code(&checked, "PHX-FW-011", HV, "ipset name `9lives`");
    assert_code(&checked, "PHX-FW-010", HV, "cannot include another group");
    assert_code(&checked, "PHX-FW-010", HV, "cannot name an interface");
}

#[test]
fn a_mis_cased_macro_is_written_as_pve_firewall_spells_it() {
    let mut source = example_source();
    source.edit_json(&file(LXC), |v| {
        lxc(v, "103")["firewall"]["rules"].as_array_mut().unwrap().push(json!({ "type": "in", "action": "ACCEPT", "macro": "ssh" }));
    });
    let checked = run(&source);
    assert!(found(&checked, "PHX-FW-010").is_empty());
    let model = checked.model.unwrap();
    let rule = model.guests[&103].firewall.rules.last().unwrap();
    assert_eq!(rule.macro_name.as_deref(), Some("SSH"));
}

#[test]
fn rules_and_records_must_name_owned_addresses() {
    let checked = mutated(LXC, |v| {
        lxc(v, "103")["firewall"]["rules"][0]["source"] = json!("10.0.0.99");
    });
    assert_code(&checked, "PHX-FW-008", LXC, "source 10.0.0.99");
    let checked = mutated(HV, |v| v["dns_server"]["authoritative_zones"][1]["records"][0]["ip_internal"] = json!("10.0.0.77"));
    assert_code(&checked, "PHX-DNS-001", HV, "10.0.0.77");
    // Declared external systems own their addresses.
    let checked = mutated(LXC, |v| lxc(v, "103")["firewall"]["rules"][0]["source"] = json!("10.0.0.50"));
    assert!(found(&checked, "PHX-FW-008").is_empty());
}

#[test]
fn cluster_rules_that_concern_guests_are_flagged() {
    let checked = mutated(HV, |v| {
        v["firewall"]["global_firewall_rules"].as_array_mut().unwrap().push(json!({
            "type": "in", "action": "ACCEPT", "source": "10.0.0.12", "dest": "10.0.0.111", "proto": "tcp", "port": "9443", "comment": "Allow Traefik to access Portainer"
        }));
    });
    assert_code(&checked, "PHX-FW-009", HV, "VM 1001 (portainer)");
}

#[test]
fn one_dns_name_with_two_addresses() {
    let checked = mutated(HV, |v| {
        v["dns_server"]["authoritative_zones"][1]["records"]
            .as_array_mut()
            .unwrap()
            .push(json!({ "hostname": "ca", "ip_internal": "10.0.0.12" }));
    });
    assert_code(&checked, "PHX-DNS-002", HV, "ca.internal.thinkheads.ai points at 10.0.0.12 here and at 10.0.0.10");
}

#[test]
fn service_names_must_point_at_the_guest_that_serves_them() {
    let checked = mutated(HV, |v| {
        let records = v["dns_server"]["authoritative_zones"][1]["records"].as_array_mut().unwrap();
        let mut point = |hostname: &str, address: &str| {
            let record = records.iter_mut().find(|r| r["hostname"] == hostname).unwrap();
            record["ip_internal"] = json!(address);
        };
        point("traefik", "10.0.0.153"); // -> the gateway
        point("portainer-agent", "10.0.0.153"); // -> the gateway
        point("portainer", "10.0.0.111"); // -> the backend, bypassing the gateway
    });
    assert_code(&checked, "PHX-DNS-003", HV, "traefik.internal.thinkheads.ai points at 10.0.0.153");
    assert_code(&checked, "PHX-DNS-003", HV, "portainer-agent.internal.thinkheads.ai points at 10.0.0.153");
    assert_code(&checked, "PHX-DNS-003", HV, "portainer.internal.thinkheads.ai points at 10.0.0.111");
}

#[test]
fn names_sent_to_the_gateway_without_a_route_are_warned() {
    let checked = mutated(HV, |v| {
        v["dns_server"]["authoritative_zones"][0]["records"]
            .as_array_mut()
            .unwrap()
            .push(json!({ "hostname": "grafana", "ip_external": "10.0.0.153" }));
    });
    assert_code(&checked, "PHX-DNS-005", HV, "grafana.phoenix.thinkheads.ai");
}

#[test]
fn malformed_records() {
    let checked = mutated(HV, |v| {
        let records = v["dns_server"]["authoritative_zones"][0]["records"].as_array_mut().unwrap();
        records.push(json!({ "hostname": "bad name", "ip_external": "10.0.0.153" }));
        records.push(json!({ "hostname": "ok", "ip_external": "10.0.0.300" }));
    });
    assert_code(&checked, "PHX-DNS-004", HV, "bad name");
    assert_code(&checked, "PHX-DNS-004", HV, "10.0.0.300");
}

#[test]
fn literal_and_unresolvable_secrets() {
    let checked = mutated(HV, |v| v["portainer_api"]["admin_password"] = json!("hunter2-literal"));
    assert_code(&checked, "PHX-SECRET-001", HV, "portainer_api.admin_password");
    assert!(!checked.has_errors(), "a literal secret is a warning");
    let mut source = example_source();
    source.env.remove("PHOENIX_PORTAINER_API_KEY");
    source.edit_json(&file(HV), |v| v["portainer_api"]["agent_secret"] = json!({ "file": "secrets/agent" }));
    let checked = run(&source);
    assert_code(&checked, "PHX-SECRET-002", HV, "PHOENIX_PORTAINER_API_KEY, which is not set");
    assert_code(&checked, "PHX-SECRET-002", HV, "secrets/agent, which does not exist");
    // Issue 13: sync reads the file where validate looked, the configuration folder, not the
    // directory phoenix happens to run in.
    let model = checked.model.unwrap();
    let agent = model.secrets.iter().find(|s| s.what.contains("agent_secret")).expect("the agent secret");
    let expected = example_config().join("secrets/agent");
    assert_eq!(agent.reference, phoenix_model::model::SecretRef::File(expected.to_string_lossy().into_owned()));
}

#[test]
fn secret_looking_stack_variables_are_secrets() {
    let checked = mutated(STACKS, |v| {
        v["docker_stacks"]["qdrant_service"]["environments"]["production"]["variables"] =
            json!([{ "name": "DB_PASSWORD", "value": "s3cret" }, { "name": "LOG_LEVEL", "value": "debug" }]);
    });
    let hits = found(&checked, "PHX-SECRET-001");
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert!(hits[0].2.contains("DB_PASSWORD"));
}

#[test]
fn application_scripts_and_features_must_exist() {
    let checked = mutated(LXC, |v| {
        lxc(v, "101")["application_script"] = json!("phoenix_hypervisor_lxc_101.sh");
        lxc(v, "102")["features"] = json!(["base_setup", "traefick"]);
    });
    assert_code(&checked, "PHX-APP-001", LXC, "phoenix_hypervisor_lxc_101.sh");
    assert_code(&checked, "PHX-APP-002", LXC, "traefick");
    let d = checked.diagnostics.iter().find(|d| d.code == "PHX-APP-002").unwrap();
    assert_eq!(d.help.as_deref(), Some("did you mean `traefik`?"));

    let mut source = example_source();
    let root = example_config().parent().unwrap().to_path_buf();
    source.files.insert(root.join("bin/lxc_setup/phoenix_hypervisor_lxc_101.sh"), "#!/bin/sh\n".into());
    source.files.insert(root.join("bin/lxc_setup/phoenix_hypervisor_feature_install_grafana.sh"), "#!/bin/sh\n".into());
    source.edit_json(&file(LXC), |v| {
        lxc(v, "101")["application_script"] = json!("phoenix_hypervisor_lxc_101.sh");
        lxc(v, "101")["features"] = json!(["base_setup", "grafana"]);
    });
    let checked = run(&source);
    assert!(found(&checked, "PHX-APP-001").is_empty() && found(&checked, "PHX-APP-002").is_empty());
}

#[test]
fn certificates_must_name_existing_guests_of_the_right_kind() {
    let checked = mutated(MANIFEST, |v| {
        v[0]["guest_id"] = json!(199);
        v[3]["guest_type"] = json!("lxc");
        v[4]["sans"] = json!(["10.0.0.102", "not a name"]);
    });
    assert_code(&checked, "PHX-CERT-001", MANIFEST, "guest 199");
    assert_code(&checked, "PHX-CERT-001", MANIFEST, "guest_type lxc, but VM 1001 (portainer) is not one");
    assert_code(&checked, "PHX-CERT-002", MANIFEST, "not a name");
}

/// Issue 18: a wildcard needs dns-01 (and gets it when no challenge is written); an address
/// cannot be proven over dns-01. Unwritten, the challenge is dns-01 where phoenix's DNS runs on
/// the node and the entry has no address, else http-01.
#[test]
fn names_the_challenge_cannot_prove_are_errors() {
    let wildcard = |challenge: Option<&str>| {
        mutated(MANIFEST, |v| {
            v[1]["sans"] = json!(["*.internal.thinkheads.ai"]);
            if let Some(challenge) = challenge {
                v[1]["challenge"] = json!(challenge);
            }
        })
    };
    for challenge in ["http-01", "tls-alpn-01"] {
        let checked = wildcard(Some(challenge));
        assert_code(&checked, "PHX-CERT-004", MANIFEST, &format!("cannot prove the wildcard *.internal.thinkheads.ai with {challenge}"));
    }
    assert!(found(&wildcard(None), "PHX-CERT-004").is_empty(), "a wildcard without a challenge is dns-01");
    assert!(found(&wildcard(Some("dns-01")), "PHX-CERT-004").is_empty());
    let address = mutated(MANIFEST, |v| {
        v[0]["sans"].as_array_mut().unwrap().push(json!("10.0.0.153"));
        v[0]["challenge"] = json!("dns-01");
    });
    assert_code(&address, "PHX-CERT-004", MANIFEST, "cannot prove the address 10.0.0.153 with dns-01");
    assert!(found(&run(&example_source()), "PHX-CERT-004").is_empty(), "the example proves every name");
    let challenge = |checked: &Checked, i: usize| checked.model.as_ref().unwrap().certificates[i].challenge;
    use phoenix_model::model::AcmeChallenge;
    assert_eq!(challenge(&run(&example_source()), 0), AcmeChallenge::Dns01, "dns-01 through the node's dnsmasq");
    let with_address = mutated(MANIFEST, |v| v[0]["sans"].as_array_mut().unwrap().push(json!("10.0.0.153")));
    assert_eq!(challenge(&with_address, 0), AcmeChallenge::Http01, "an address needs http-01");
    let webroot = |root: &str, challenge: Option<&str>| {
        mutated(MANIFEST, |v| {
            v[4]["http01_webroot"] = json!(root);
            if let Some(challenge) = challenge {
                v[4]["challenge"] = json!(challenge);
            }
        })
    };
    assert_eq!(challenge(&webroot("/var/www/html", None), 4), AcmeChallenge::Http01, "a web root implies http-01");
    assert!(found(&webroot("/var/www/html", None), "PHX-CERT-006").is_empty());
    assert_code(&webroot("var/www", None), "PHX-CERT-006", MANIFEST, "not an absolute path in the guest");
    assert_code(&webroot("/var/www", Some("dns-01")), "PHX-CERT-006", MANIFEST, "only http-01 reads tokens from files");
    let dns_in_guest = mutated(HV, |v| v["edge"] = json!({ "dns_guest": 103 }));
    assert_eq!(challenge(&dns_in_guest, 0), AcmeChallenge::Http01, "phoenix writes no records into a DNS guest");
}

#[test]
fn every_emitted_code_is_documented() {
    // A sample of broken configurations; every code they produce must be explainable.
    for checked in [mutated(VM, |v| vm(v, 2)["vmid"] = json!(102)), run(&example_source())] {
        for d in &checked.diagnostics {
            assert!(phoenix_model::diag::explain(d.code).is_some(), "{} has no explanation", d.code);
        }
    }
}

#[test]
fn synthetic_inventories_are_clean() {
    // The benchmarks measure realistic, valid input: the generator must produce no findings.
    let root = std::path::Path::new("/synthetic");
    let mut source = MemorySource::default().set_env(&["PHOENIX_PORTAINER_PASSWORD"]);
    for (relative, text) in phoenix_testkit::synth::inventory(60) {
        source.files.insert(root.join(relative), text);
    }
    let checked = check(&root.join("etc"), &source);
    let all: Vec<_> = checked.diagnostics.iter().map(|d| (d.code, d.message.clone())).collect();
    assert!(all.is_empty(), "{all:#?}");
    assert_eq!(checked.model.unwrap().guests.len(), 60);
}

/// Values that become names on the node or paths on disk are checked (issue 13): they must
/// never carry a write outside its place, nor read a file outside the installation.
#[test]
fn names_and_paths_cannot_reach_outside_their_place() {
    let checked = mutated(HV, |v| v["proxmox"]["node_name"] = json!("../../../../tmp/escape"));
    assert_code(&checked, "PHX-NAME-001", HV, "is not a Proxmox VE node name");
    assert_eq!(checked.model.as_ref().unwrap().host.node_name, "pve", "an invalid node name is never used in a path");

    let checked = mutated(LXC, |v| lxc(v, "101")["name"] = json!("a".repeat(50 * 1024 * 1024)));
    assert_code(&checked, "PHX-NAME-001", LXC, "(52428800 bytes)");

    let checked = mutated(STACKS, |v| {
        let stack = v["docker_stacks"]["qdrant_service"].take();
        v["docker_stacks"]["../../escape"] = stack;
    });
    assert_code(&checked, "PHX-NAME-001", STACKS, "stack name `../../escape` cannot name a folder");

    let checked = mutated(MANIFEST, |v| v[0]["key_path"] = json!("/../../../x"));
    assert_code(&checked, "PHX-PATH-001", MANIFEST, "key_path `/../../../x` climbs out with `..`");
    let checked = mutated(MANIFEST, |v| v[0]["cert_path"] = json!("etc/relative.crt"));
    assert_code(&checked, "PHX-PATH-001", MANIFEST, "is not absolute");

    for path in ["/etc/shadow", "../../../proc/self/environ"] {
        let checked = mutated(STACKS, |v| v["docker_stacks"]["qdrant_service"]["compose_file_path"] = json!(path));
        assert_code(&checked, "PHX-PATH-002", STACKS, "names a file outside the installation's tree");
        // Never read, so never quoted: no other file was added to the source map.
        assert!(checked.sources.files().all(|(_, f)| !f.path.ends_with("shadow") && !f.path.ends_with("environ")));
    }
}

/// Issue 13: a `{"file": ...}` secret outside the installation is never read (its content
/// could be sent on, to Portainer's stack environment for one).
#[test]
fn a_secret_file_outside_the_installation_is_refused() {
    for path in ["/proc/self/environ", "../../../../etc/shadow"] {
        let checked = mutated(HV, |v| v["portainer_api"]["agent_secret"] = json!({ "file": path }));
        assert_code(&checked, "PHX-PATH-002", HV, "names a file outside the installation's tree");
        let model = checked.model.unwrap();
        let agent = model.secrets.iter().find(|s| s.what.contains("agent_secret")).unwrap();
        assert_eq!(agent.reference, phoenix_model::model::SecretRef::Refused(path.to_string()));
    }
}

/// Issue 14: a VM's `snapshots` (`pre-features`, `post-features`) become lifecycle snapshots
/// at the two points of its setup; on a template they are a warning at the name (Proxmox VE
/// converts no guest with snapshots), and the template gets none.
#[test]
fn a_vms_snapshots_are_read_and_a_templates_are_a_warning() {
    use phoenix_model::model::SetupPoint;
    let checked = mutated(VM, |v| {
        vm(v, 2)["snapshots"] = serde_json::json!({ "pre-features": "clean", "post-features": "provisioned" });
        vm(v, 0)["snapshots"] = serde_json::json!({ "post-features": "baked" });
    });
    let model = checked.model.as_ref().unwrap();
    let points: Vec<(SetupPoint, &str)> =
        model.guests[&1002].spec.lifecycle_snapshots.iter().map(|s| (s.point, s.name.value.as_str())).collect();
    assert_eq!(points, [(SetupPoint::BeforeSetup, "clean"), (SetupPoint::AfterSetup, "provisioned")]);
    assert_code(&checked, "PHX-GUEST-018", VM, "ubuntu-2404-cloud-template) is a template");
    let hits = found(&checked, "PHX-GUEST-018");
    assert_eq!(hits.len(), 1, "{hits:?}");
}

/// Issue 16: stacks by name (November 2025 on). A VM's `docker_stacks` lists names, each stack
/// in `stacks/<name>/docker-compose.yml` with an optional `phoenix.json` beside it; a stack
/// named without an environment deploys `production`; the environment's `firewall_rules` are
/// the VM's (the original's vm-manager applied them there), reported at their own lines.
#[test]
fn stacks_named_by_string_come_from_their_folder_and_bring_their_firewall_rules() {
    let mut source = example_source();
    let root = phoenix_testkit::example_config().parent().unwrap().to_path_buf();
    source.files.insert(root.join("stacks/webapp/docker-compose.yml"), "services:\n  web:\n    image: nginx:1.27\n".into());
    let phoenix_json = r#"{
    "description": "a web app",
    "environments": {
        "production": {
            "services": { "web": { "traefik_labels": ["traefik.enable=true"] } },
            "firewall_rules": [
                { "type": "in", "action": "ACCEPT", "proto": "tcp", "port": "8080", "source": "10.0.0.12", "comment": "the app" },
                { "type": "in", "action": "ACCEPT", "proto": "tcp", "port": "99999", "source": "10.0.0.12" }
            ]
        }
    }
}"#;
    source.files.insert(root.join("stacks/webapp/phoenix.json"), phoenix_json.into());
    source.edit_json(&file(VM), |v| {
        let stacks = vm(v, 2)["docker_stacks"].as_array_mut().unwrap();
        stacks.push(serde_json::json!("webapp"));
        stacks[0] = serde_json::json!({ "name": "qdrant_service" });
    });
    let checked = run(&source);
    let model = checked.model.as_ref().unwrap();
    let stack = &model.stacks["webapp"];
    assert_eq!(stack.description.as_deref(), Some("a web app"));
    assert!(stack.compose.as_ref().unwrap().content.is_some(), "its compose file is read");
    let assigned: Vec<(&str, &str)> =
        model.guests[&1002].stacks.iter().map(|s| (s.name.value.as_str(), s.environment.value.as_str())).collect();
    assert_eq!(assigned, [("qdrant_service", "production"), ("whoami", "production"), ("webapp", "production")]);
    let rules = &model.guests[&1002].firewall.rules;
    let app = rules.iter().find(|r| r.comment.as_deref() == Some("the app")).expect("the stack's rule is the VM's");
    assert_eq!(app.scope, phoenix_model::model::Scope::Guest(1002));
    // The bad port is reported in phoenix.json, once.
    let bad: Vec<_> = checked
        .diagnostics
        .iter()
        .filter(|d| d.span.is_some_and(|s| checked.sources.path(s.file).ends_with("stacks/webapp/phoenix.json")))
        .collect();
    assert_eq!(bad.len(), 1, "{bad:#?}");
    assert_eq!(checked.sources.line_col(bad[0].span.unwrap()).line, 8, "the line of the rule with port 99999");
    assert!(found(&checked, "PHX-STACK-001").is_empty(), "the stack is defined by its folder");
}

/// Issue 16: keys of the users' later files that phoenix reads but does not act on yet are said
/// once each (PHX-KEY-003, informational, with the number of places), never refused.
#[test]
fn later_keys_are_said_once_each_as_read_but_not_acted_on() {
    let mut source = example_source();
    source.edit_json(&file(VM), |v| {
        vm(v, 1)["swarm_role"] = serde_json::json!("manager");
        vm(v, 2)["swarm_role"] = serde_json::json!("worker");
        vm(v, 2)["node_labels"] = serde_json::json!({ "gpu": "true" });
    });
    source.edit_json(&file("phoenix_hypervisor_config.json"), |v| {
        v["bootstrap_ca_url"] = serde_json::json!("https://ca.internal.example:9000");
    });
    let checked = run(&source);
    assert!(checked.model.is_some());
    let said: Vec<&str> = checked.diagnostics.iter().filter(|d| d.code == "PHX-KEY-003").map(|d| d.message.as_str()).collect();
    assert_eq!(
        said,
        [
            "`bootstrap_ca_url` is read, but phoenix does not act on it yet",
            "`swarm_role` is read, but phoenix does not act on it yet (2 places; this is the first)",
            "`node_labels` is read, but phoenix does not act on it yet",
        ],
        "{:#?}",
        checked.diagnostics.iter().map(|d| (d.code, &d.message)).collect::<Vec<_>>()
    );
    assert!(checked.diagnostics.iter().filter(|d| d.code == "PHX-KEY-003").all(|d| d.severity == phoenix_model::Severity::Info));
    assert!(checked.diagnostics.iter().all(|d| d.code != "PHX-KEY-001" && d.code != "PHX-SCHEMA-001"), "not refused");
}

fn compose_edit(source: &mut MemorySource, stack_folder: &str, edit: impl FnOnce(&str) -> String) {
    let path = example_config().parent().unwrap().join("persistent-storage").join(stack_folder).join("docker-compose.yml");
    let text = source.files[&path].clone();
    source.files.insert(path, edit(&text));
}

#[test]
fn a_name_claimed_by_a_guest_and_a_route_is_an_error() {
    let checked = mutated(VM, |v| vm(v, 2)["portainer_agent_hostname"] = json!("portainer.internal.thinkheads.ai"));
    assert_code(&checked, "PHX-NAME-002", VM, "portainer.internal.thinkheads.ai is routed through Traefik to VM 1001 (portainer), but it is its Portainer agent hostname of VM 1002");
    let checked = mutated(STACKS, |v| {
        v["docker_stacks"]["qdrant_service"]["environments"]["production"]["services"]["qdrant"]["traefik_labels"][1] =
            json!("traefik.http.routers.qdrant.rule=Host(`ca.internal.thinkheads.ai`)");
    });
    assert_code(&checked, "PHX-NAME-003", STACKS, "ca.internal.thinkheads.ai is routed through Traefik to VM 1002");
    assert!(found(&checked, "PHX-NAME-002").is_empty(), "the cycle is said once, as the cycle");
}

#[test]
fn rules_that_cannot_mean_what_they_say() {
    let checked = mutated(LXC, |v| lxc(v, "103")["firewall"]["rules"][0]["iface"] = json!("net3"));
    assert_code(&checked, "PHX-FW-012", LXC, "names interface net3, which the guest does not have");
    let checked = mutated(LXC, |v| lxc(v, "103")["firewall"]["rules"][0]["iface"] = json!("net0"));
    assert!(found(&checked, "PHX-FW-012").is_empty(), "net0 exists");

    let checked = mutated(LXC, |v| {
        let rules = lxc(v, "103")["firewall"]["rules"].as_array_mut().unwrap();
        rules.push(json!({ "type": "out", "action": "ACCEPT", "proto": "tcp", "port": "443", "comment": "updates" }));
    });
    assert_code(&checked, "PHX-FW-013", LXC, "rule 4 (\"updates\") says ACCEPT, as the OUT policy does");
    // A later rule that decides otherwise makes it an exception that matters.
    let checked = mutated(LXC, |v| {
        let rules = lxc(v, "103")["firewall"]["rules"].as_array_mut().unwrap();
        rules.push(json!({ "type": "out", "action": "ACCEPT", "proto": "tcp", "port": "443" }));
        rules.push(json!({ "type": "out", "action": "DROP" }));
    });
    assert!(found(&checked, "PHX-FW-013").is_empty());

    let checked = mutated(HV, |v| {
        v["firewall"]["global_firewall_rules"][0].as_object_mut().unwrap().remove("source");
    });
    assert_code(&checked, "PHX-FW-014", HV, "accepts tcp 8006,22 of the Proxmox host from any source");
}

#[test]
fn addresses_nobody_owns_outside_rules_and_records() {
    let checked = mutated(LXC, |v| lxc(v, "103")["network_config"]["nameservers"] = json!("10.0.0.77"));
    assert_code(&checked, "PHX-ADDR-001", LXC, "LXC 103 (step-ca) (net0) resolves names through 10.0.0.77, which belongs to no guest");
    let checked = mutated(LXC, |v| lxc(v, "103")["network_config"]["nameservers"] = json!("10.0.0.12"));
    assert_code(&checked, "PHX-ADDR-001", LXC, "which is LXC 102 (traefik), and phoenix's DNS server runs elsewhere");
    let checked = mutated(LXC, |v| lxc(v, "103")["network_config"]["nameservers"] = json!("1.1.1.1"));
    assert!(found(&checked, "PHX-ADDR-001").is_empty(), "a public resolver is not ours to own");

    let checked = mutated(MANIFEST, |v| {
        let sans = v[0]["sans"].as_array_mut().unwrap();
        *sans.last_mut().unwrap() = json!("10.0.0.12");
    });
    assert_code(
        &checked,
        "PHX-ADDR-002",
        MANIFEST,
        "certificate gateway for LXC 101 (nginx-gateway) names IP 10.0.0.12, which is LXC 102 (traefik)'s",
    );
    // A container's resolver (compose `dns`) is checked the same way.
    let mut source = example_source();
    compose_edit(&mut source, "qdrant", |text| text.replacen("    image:", "    dns: [\"10.0.0.77\"]\n    image:", 1));
    let checked = run(&source);
    assert_code(
        &checked,
        "PHX-ADDR-001",
        STACKS,
        "service qdrant of stack qdrant_service resolves names through 10.0.0.77, which belongs to no guest",
    );
    // Loopback is the guest's own (the users' Docker daemon certificate names 127.0.0.1).
    let checked = mutated(MANIFEST, |v| v[0]["sans"].as_array_mut().unwrap().push(json!("127.0.0.1")));
    assert!(found(&checked, "PHX-ADDR-002").is_empty(), "{:?}", found(&checked, "PHX-ADDR-002"));

    let checked = mutated(LXC, |v| {
        lxc(v, "103")["mount_points"] = json!([{ "host_path": "/quickOS/lxc-persistent-data/950", "container_path": "/srv/data" }]);
    });
    assert_code(&checked, "PHX-ADDR-003", LXC, "mounts the persistent-data folder of LXC 950, which does not exist");
    let checked = mutated(LXC, |v| {
        lxc(v, "103")["mount_points"] = json!([{ "host_path": "/quickOS/lxc-persistent-data/103", "container_path": "/srv/data" }]);
    });
    assert!(found(&checked, "PHX-ADDR-003").is_empty());
}

#[test]
fn exposure_and_tls_policy() {
    let checked = mutated(LXC, |v| {
        lxc(v, "103")["firewall"]["rules"][0].as_object_mut().unwrap().remove("source");
    });
    assert_code(&checked, "PHX-EXPOSE-001", LXC, "LXC 103 (step-ca) accepts port 9000 from any source, but only LXC 101 (nginx-gateway)");
    let checked = mutated(STACKS, |v| {
        v["docker_stacks"]["qdrant_service"]["environments"]["production"]["services"]["qdrant"]["traefik_labels"]
            .as_array_mut()
            .unwrap()
            .push(json!("traefik.http.serversTransports.qdrant.insecureSkipVerify=true"));
    });
    assert_code(&checked, "PHX-TLS-001", STACKS, "service qdrant of stack qdrant_service tells Traefik not to verify");
    let checked = mutated(HV, |v| v["nfs"]["exports"][0]["options"].as_array_mut().unwrap().push(json!("no_root_squash")));
    assert_code(&checked, "PHX-NFS-001", HV, "NFS export /quickOS/vm-persistent-data has no_root_squash");
}

#[test]
fn compose_semantics_the_users_tripped_on() {
    let mut source = example_source();
    compose_edit(&mut source, "qdrant", |text| {
        text.replace("    image:", "    user: \"1000:1000\"\n    image:")
            .replace("    volumes:\n", "    volumes:\n      - /var/run/docker.sock:/var/run/docker.sock:ro\n")
    });
    let checked = run(&source);
    assert_code(&checked, "PHX-COMPOSE-001", STACKS, "runs as user 1000:1000 but mounts /var/run/docker.sock");

    let mut source = example_source();
    compose_edit(&mut source, "portainer", |text| text.replace("--sslcert", "--tlsverify --tlscert").replace("--sslkey", "--tlskey"));
    let checked = run(&source);
    assert_code(&checked, "PHX-COMPOSE-002", STACKS, "gives Portainer --tlsverify, --tlscert, --tlskey");

    let checked = mutated(VM, |v| vm(v, 1)["docker_stacks"] = json!([{ "name": "portainer_service", "environment": "production" }]));
    assert_code(&checked, "PHX-COMPOSE-003", VM, "VM 1001 (portainer) is the Portainer server and is assigned stack portainer_service");
}

#[test]
fn health_checks_are_typed_and_malformed_ones_reported() {
    let checked = run(&example_source());
    let gateway = &checked.model.as_ref().unwrap().guests[&101];
    let check = gateway.health_check.as_ref().expect("the example's gateway has one");
    assert_eq!((check.command.value.as_str(), check.retries, check.interval_secs), ("systemctl is-active --quiet nginx", 5, 2));
    // The reference's own shape (103: nc -z localhost 9000, 30 tries 10 s apart) reads too.
    let config = phoenix_testkit::reference_config();
    let reference = phoenix_model::load(&config, &MemorySource::from_dir(config.parent().unwrap()));
    let step_ca = reference.model.as_ref().and_then(|m| m.guests.get(&103)).and_then(|g| g.health_check.clone());
    assert_eq!(step_ca.map(|h| (h.command.value, h.retries, h.interval_secs)), Some(("nc -z localhost 9000".to_string(), 30, 10)));
    for bad in [json!({ "retries": 3 }), json!({ "command": " " }), json!({ "command": "true", "retries": 0 }), json!("true")] {
        let checked = mutated(LXC, |v| lxc(v, "101")["health_check"] = bad.clone());
        assert_code(&checked, "PHX-APP-003", LXC, "health_check");
    }
}

#[test]
fn a_timezone_that_is_not_a_zone_name_is_refused() {
    assert_eq!(run(&example_source()).model.unwrap().host.timezone.map(|t| t.value), Some("America/New_York".into()));
    for bad in ["../../etc/passwd", "Europe/Paris'; rm -rf /", "/UTC", "Europe//Paris"] {
        let checked = mutated(HV, |v| v["timezone"] = json!(bad));
        assert_code(&checked, "PHX-NAME-001", HV, "timezone");
        assert_eq!(checked.model.and_then(|m| m.host.timezone), None, "{bad} is not used");
    }
}
