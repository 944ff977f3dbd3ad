//! The Proxmox VE simulator against what the real handlers do (each test names the Perl it
//! follows): rules created on top and disabled, `moveto`, digests, normalised addresses and
//! names, NIC MACs, tasks, parameter refusals and their body, locks.

use phoenix_sim::pve::guest::GuestKind;
use phoenix_sim::pve::tasks::TaskOutcome;
use phoenix_sim::pve::PveSim;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

fn sim() -> PveSim {
    let mut sim = PveSim::new("pve");
    sim.settings.task_duration = Duration::ZERO;
    sim.add_guest(101, GuestKind::Lxc, "name=eth0,bridge=vmbr0,ip=10.0.0.11/24,tag=20,mtu=1450", &[("hostname", "gateway")]).unwrap();
    sim.add_guest(1001, GuestKind::Qemu, "virtio,bridge=vmbr0,queues=4", &[]).unwrap();
    sim
}

mod api;
use api::{call, ok};

fn actions(sim: &mut PveSim, path: &str) -> Vec<String> {
    ok(sim, "GET", path, &[]).as_array().unwrap().iter().map(|r| format!("{}:{}", r["action"].as_str().unwrap(), r["enable"])).collect()
}

#[test]
fn a_new_rule_goes_on_top_and_is_disabled_without_enable() {
    // Rules.pm create_rule: `pos` is ignored (unshift); `enable` defaults to 0.
    let mut sim = sim();
    let rules = "/cluster/firewall/rules";
    ok(&mut sim, "POST", rules, &[("type", "in"), ("action", "ACCEPT"), ("enable", "1"), ("pos", "0")]);
    ok(&mut sim, "POST", rules, &[("type", "in"), ("action", "DROP"), ("pos", "1")]);
    assert_eq!(actions(&mut sim, rules), ["DROP:0", "ACCEPT:1"]);
    // update_rule with moveto: in front of the rule that had that index; count or more: the end.
    let digest = ok(&mut sim, "GET", rules, &[])[0]["digest"].as_str().unwrap().to_string();
    ok(&mut sim, "PUT", &format!("{rules}/0"), &[("moveto", "2"), ("digest", &digest)]);
    assert_eq!(actions(&mut sim, rules), ["ACCEPT:1", "DROP:0"]);
    assert!(sim.files["firewall/cluster.fw"].contains("[RULES]\n\nIN ACCEPT\n|IN DROP\n"), "{}", sim.files["firewall/cluster.fw"]);
}

#[test]
fn positional_edits_carry_the_lists_digest() {
    // assert_if_modified: a stale digest is a plain die (500); none is not checked.
    let mut sim = sim();
    let rules = "/nodes/pve/lxc/101/firewall/rules";
    ok(&mut sim, "POST", rules, &[("type", "in"), ("action", "ACCEPT"), ("enable", "1")]);
    let digest = ok(&mut sim, "GET", rules, &[])[0]["digest"].as_str().unwrap().to_string();
    ok(&mut sim, "POST", rules, &[("type", "in"), ("action", "DROP")]);
    let stale = call(&mut sim, "PUT", &format!("{rules}/0"), &[("enable", "1"), ("digest", &digest)]);
    assert_eq!(stale.status, 500);
    assert_eq!(stale.reason, "detected modified configuration - file changed by other user? Try again.");
    let missing = call(&mut sim, "DELETE", &format!("{rules}/7"), &[]);
    assert_eq!((missing.status, missing.reason.as_str()), (500, "no rule at position 7"));
    ok(&mut sim, "PUT", &format!("{rules}/0"), &[("comment", "web"), ("delete", "comment")]);
    assert!(ok(&mut sim, "GET", &format!("{rules}/0"), &[]).get("comment").is_none(), "delete runs after the copy");
}

#[test]
fn verify_rule_refuses_with_the_first_error_only() {
    let mut sim = sim();
    let rules = "/nodes/pve/lxc/101/firewall/rules";
    let refused = |sim: &mut PveSim, pairs: &[(&str, &str)]| {
        let reply = call(sim, "POST", rules, pairs);
        assert_eq!(reply.status, 400, "{pairs:?}: {}", reply.body);
        assert_eq!(reply.body["message"], "Parameter verification failed.\n");
        reply.body["errors"].as_object().unwrap().keys().cloned().collect::<Vec<_>>()
    };
    assert_eq!(refused(&mut sim, &[("type", "in"), ("action", "ACCEPT"), ("iface", "eth0")]), ["iface"]);
    assert_eq!(refused(&mut sim, &[("type", "in"), ("action", "ACCEPT"), ("macro", "SSH"), ("dport", "22")]), ["proto"]);
    assert_eq!(refused(&mut sim, &[("type", "in"), ("action", "ACCEPT"), ("macro", "Nope")]), ["macro"]);
    assert_eq!(refused(&mut sim, &[("type", "in"), ("action", "ACCEPT"), ("source", "10.0.0.1,dc/web")]), ["source"]);
    let sixteen = (1..=16).map(|p| p.to_string()).collect::<Vec<_>>().join(",");
    assert_eq!(refused(&mut sim, &[("type", "in"), ("action", "ACCEPT"), ("proto", "tcp"), ("dport", &sixteen)]), ["dport"]);
    assert_eq!(refused(&mut sim, &[("type", "forward"), ("action", "ACCEPT")]), ["type"], "no forward rules for guests");
    ok(&mut sim, "POST", "/cluster/firewall/groups", &[("group", "web")]);
    assert_eq!(
        refused_at(&mut sim, "/cluster/firewall/groups/web", &[("type", "group"), ("action", "other")]),
        ["type"],
        "no groups in groups"
    );
    // A mis-cased macro is accepted and stored canonically.
    ok(&mut sim, "POST", rules, &[("type", "in"), ("action", "ACCEPT"), ("macro", "ssh")]);
    assert_eq!(ok(&mut sim, "GET", &format!("{rules}/0"), &[])["macro"], "SSH");
}

fn refused_at(sim: &mut PveSim, path: &str, pairs: &[(&str, &str)]) -> Vec<String> {
    let reply = call(sim, "POST", path, pairs);
    assert_eq!(reply.status, 400, "{}", reply.body);
    reply.body["errors"].as_object().unwrap().keys().cloned().collect()
}

#[test]
fn addresses_and_names_read_back_in_pve_normal_form() {
    let mut sim = sim();
    // Aliases.pm stores the address as sent; the parser drops /32 on the next read.
    ok(&mut sim, "POST", "/cluster/firewall/aliases", &[("name", "Traefik"), ("cidr", "10.0.0.12/32")]);
    let alias = &ok(&mut sim, "GET", "/cluster/firewall/aliases", &[])[0];
    assert_eq!((alias["name"].as_str(), alias["cidr"].as_str()), (Some("Traefik"), Some("10.0.0.12")));
    // IPSet.pm create_ip: clean_cidr masks host bits; a repeat is refused in normal form.
    ok(&mut sim, "POST", "/cluster/firewall/ipset", &[("name", "Mgmt")]);
    assert_eq!(ok(&mut sim, "GET", "/cluster/firewall/ipset", &[])[0]["name"], "mgmt", "names are lower-cased on read");
    assert_eq!(call(&mut sim, "GET", "/cluster/firewall/ipset/Mgmt", &[]).status, 500, "the spelling it was created with is gone");
    ok(&mut sim, "POST", "/cluster/firewall/ipset/mgmt", &[("cidr", "10.0.1.7/24")]);
    ok(&mut sim, "POST", "/cluster/firewall/ipset/mgmt", &[("cidr", "10.0.0.5/32")]);
    let entries: Vec<String> = ok(&mut sim, "GET", "/cluster/firewall/ipset/mgmt", &[])
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["cidr"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(entries, ["10.0.0.5", "10.0.1.0/24"], "masked, bare, and sorted as the writer sorts");
    let again = call(&mut sim, "POST", "/cluster/firewall/ipset/mgmt", &[("cidr", "10.0.1.9/24")]);
    assert_eq!(again.status, 400);
    assert_eq!(again.body["errors"]["cidr"], "address '10.0.1.0/24' already exists");
    // A non-empty ipset is deleted only with force (a plain die otherwise).
    assert_eq!(call(&mut sim, "DELETE", "/cluster/firewall/ipset/mgmt", &[]).status, 500);
    ok(&mut sim, "DELETE", "/cluster/firewall/ipset/mgmt", &[("force", "1")]);
    // Groups: lower-cased on read; 18 characters at most (schema).
    ok(&mut sim, "POST", "/cluster/firewall/groups", &[("group", "WebServers")]);
    assert_eq!(ok(&mut sim, "GET", "/cluster/firewall/groups", &[])[0]["group"], "webservers");
    assert_eq!(call(&mut sim, "POST", "/cluster/firewall/groups", &[("group", "a-name-of-19-chars-")]).status, 400);
}

#[test]
fn a_nic_written_without_its_mac_gets_a_new_one_and_loses_unsent_keys() {
    // qemu-server $update_vm_api: print_net(parse_net($value)); pve-container likewise.
    let mut sim = sim();
    let before = sim.guest_key(101, "net0").unwrap();
    assert!(before.contains("hwaddr=BC:24:11:") && before.contains("tag=20"), "{before}");
    ok(&mut sim, "PUT", "/nodes/pve/lxc/101/config", &[("net0", "name=eth0,bridge=vmbr0,firewall=1")]);
    let after = sim.guest_key(101, "net0").unwrap();
    assert!(!after.contains("tag=20") && !after.contains("mtu="), "unsent keys are gone: {after}");
    assert_ne!(mac(&before, "hwaddr"), mac(&after, "hwaddr"), "a new MAC");
    assert_eq!(after.split(',').next(), Some("name=eth0"), "canonical order: {after}");
    // A VM config change is a task; its UPID is polled.
    let upid = ok(&mut sim, "POST", "/nodes/pve/qemu/1001/config", &[("net0", "virtio,bridge=vmbr0,firewall=1")]);
    let upid = upid.as_str().unwrap();
    assert!(upid.starts_with("UPID:pve:") && upid.contains(":qmconfig:1001:"), "{upid}");
    let status = ok(&mut sim, "GET", &format!("/nodes/pve/tasks/{upid}/status"), &[]);
    assert_eq!((status["status"].as_str(), status["exitstatus"].as_str()), (Some("stopped"), Some("OK")));
    assert!(sim.guest_key(1001, "net0").unwrap().starts_with("virtio=BC:24:11:"));
}

fn mac<'t>(net: &'t str, key: &str) -> &'t str {
    net.split(',').find_map(|p| p.strip_prefix(&format!("{key}="))).unwrap_or_default()
}

#[test]
fn tasks_run_for_a_while_and_may_end_with_warnings_or_an_error() {
    let mut sim = sim();
    sim.settings.task_duration = Duration::from_millis(100);
    sim.tasks.injected.push_back(TaskOutcome::Warnings(vec!["hotplug problem".into()]));
    sim.tasks.injected.push_back(TaskOutcome::Error("hotplug problem - injected".into()));
    let first = ok(&mut sim, "POST", "/nodes/pve/qemu/1001/config", &[("net0", "virtio,bridge=vmbr1")]);
    let status = format!("/nodes/pve/tasks/{}/status", first.as_str().unwrap());
    assert_eq!(ok(&mut sim, "GET", &status, &[])["status"], "running");
    std::thread::sleep(Duration::from_millis(120));
    assert_eq!(ok(&mut sim, "GET", &status, &[])["exitstatus"], "WARNINGS: 1");
    let before = sim.guest_key(1001, "net0");
    let second = ok(&mut sim, "POST", "/nodes/pve/qemu/1001/config", &[("net0", "virtio,bridge=vmbr2")]);
    std::thread::sleep(Duration::from_millis(120));
    let ended = ok(&mut sim, "GET", &format!("/nodes/pve/tasks/{}/status", second.as_str().unwrap()), &[]);
    assert_eq!(ended["exitstatus"], "hotplug problem - injected");
    assert_eq!(sim.guest_key(1001, "net0"), before, "a failed task changes nothing");
}

#[test]
fn a_writer_waits_for_a_held_lock_and_times_out() {
    let mut sim = sim();
    sim.settings.lock_timeout = Duration::from_millis(100);
    sim.hold_lock("firewall-cluster", Duration::from_millis(40));
    let clock = Instant::now();
    ok(&mut sim, "PUT", "/cluster/firewall/options", &[("enable", "1")]);
    assert!(clock.elapsed() >= Duration::from_millis(40), "it waited for the lock");
    sim.hold_lock("firewall-cluster", Duration::from_secs(5));
    let timed_out = call(&mut sim, "PUT", "/cluster/firewall/options", &[("enable", "0")]);
    assert_eq!((timed_out.status, timed_out.reason.as_str()), (500, "cfs-lock 'firewall-cluster' error: got lock request timeout"));
}

#[test]
fn a_vm_config_change_waits_for_its_lock_inside_the_task() {
    // qemu-server: the qmconfig worker takes lock_config; a timeout ends the task, not the POST.
    let mut sim = sim();
    sim.settings.lock_timeout = Duration::from_millis(20);
    sim.hold_lock("config-1001", Duration::from_secs(5));
    let upid = ok(&mut sim, "POST", "/nodes/pve/qemu/1001/config", &[("net0", "virtio,bridge=vmbr1")]);
    std::thread::sleep(Duration::from_millis(60));
    let status = ok(&mut sim, "GET", &format!("/nodes/pve/tasks/{}/status", upid.as_str().unwrap()), &[]);
    assert_eq!(status["exitstatus"], "can't lock file '/var/lock/qemu-server/lock-1001.conf' - got timeout");
    assert!(!sim.guest_key(1001, "net0").unwrap().contains("vmbr1"), "nothing was changed");
    // A config with a `lock:` key refuses writes at once (check_lock).
    let mut locked = PveSim::new("pve");
    locked.add_guest(1002, GuestKind::Qemu, "virtio,bridge=vmbr0", &[("lock", "backup")]).unwrap();
    let refused = call(&mut locked, "POST", "/nodes/pve/qemu/1002/config", &[("net0", "virtio,bridge=vmbr1")]);
    assert_eq!((refused.status, refused.reason.as_str()), (500, "VM is locked (backup)"));
}

#[test]
fn parameters_are_checked_against_the_schema() {
    let mut sim = sim();
    let unknown = call(&mut sim, "POST", "/cluster/firewall/rules", &[("type", "in"), ("action", "ACCEPT"), ("colour", "red")]);
    assert_eq!(unknown.status, 400);
    assert_eq!(unknown.reason, "Parameter verification failed.");
    assert_eq!(unknown.body["errors"]["colour"], "property is not defined in schema and the schema does not allow additional properties");
    let flag = call(&mut sim, "PUT", "/nodes/pve/lxc/101/firewall/options", &[("enable", "true")]);
    assert_eq!(flag.body["errors"]["enable"], "type check ('boolean') failed - got 'true'", "top-level booleans are 1 or 0");
    let vmid = call(&mut sim, "GET", "/nodes/pve/lxc/99/config", &[]);
    assert_eq!(vmid.body["errors"]["vmid"], "invalid format - value does not look like a valid VM ID\n");
    let missing = call(&mut sim, "GET", "/nodes/pve/lxc/555/config", &[]);
    assert_eq!((missing.status, missing.reason.as_str()), (500, "Configuration file 'nodes/pve/lxc/555.conf' does not exist"));
    let nowhere = call(&mut sim, "GET", "/cluster/nonsense", &[]);
    assert_eq!((nowhere.status, nowhere.body["message"].as_str()), (501, Some("Method 'GET /cluster/nonsense' not implemented")));
    // A JSON body's values come as they are: a JSON boolean passes a boolean parameter.
    let json_body: BTreeMap<String, Value> = [("enable".to_string(), json!(true))].into();
    assert_eq!(sim.request("PUT", "/nodes/pve/lxc/101/firewall/options", json_body).status, 200);
    assert_eq!(ok(&mut sim, "GET", "/nodes/pve/lxc/101/firewall/options", &[])["enable"], 1);
}

/// pve-common `PVE/Network.pm` `read_bridge_mtu` ("bridge '...' does not exist"), which
/// `veth_create` (containers) and `tap_create` (VMs) call when the NIC is plugged in at start:
/// a guest with a NIC on a bridge the node lacks does not start; the config itself is accepted.
#[test]
fn a_guest_on_a_bridge_the_node_lacks_does_not_start() {
    let mut sim = sim();
    ok(&mut sim, "PUT", "/nodes/pve/lxc/101/config", &[("net1", "name=eth1,bridge=vmbr100,ip=10.100.0.11/24")]);
    for (kind, vmid) in [("lxc", 101), ("qemu", 1001)] {
        if kind == "qemu" {
            let upid = ok(&mut sim, "POST", "/nodes/pve/qemu/1001/config", &[("net1", "virtio,bridge=vmbr100")]);
            let status = ok(&mut sim, "GET", &format!("/nodes/pve/tasks/{}/status", upid.as_str().unwrap()), &[]);
            assert_eq!(status["exitstatus"], "OK", "the config is accepted");
        }
        let upid = ok(&mut sim, "POST", &format!("/nodes/pve/{kind}/{vmid}/status/start"), &[]);
        let status = ok(&mut sim, "GET", &format!("/nodes/pve/tasks/{}/status", upid.as_str().unwrap()), &[]);
        assert_eq!(status["exitstatus"], "bridge 'vmbr100' does not exist", "{kind}");
        assert!(!sim.running.contains(&vmid), "{kind} {vmid} stays stopped");
    }
    sim.bridges.insert("vmbr100".into());
    let upid = ok(&mut sim, "POST", "/nodes/pve/lxc/101/status/start", &[]);
    let status = ok(&mut sim, "GET", &format!("/nodes/pve/tasks/{}/status", upid.as_str().unwrap()), &[]);
    assert_eq!(status["exitstatus"], "OK");
    assert!(sim.running.contains(&101));
}
