//! `phoenix sync` against the Proxmox VE simulator, for what a real PVE 9 does differently
//! from what phoenix used to assume (each would fail on phoenix before the simulator): new
//! rules land on top, a NIC written without its MAC gets a new one and loses unsent keys,
//! single hosts and ipset entries read back normalised, group names lower-cased, a 500 is
//! permanent (and may come after the change was made), positional edits race with the GUI,
//! tasks end with warnings, and locks time out.

mod rig;

use phoenix_core::plan::{Action, Domain};
use phoenix_core::pve_fw::{self, FwFile};
use phoenix_exec::sync::StepOutcome;
use phoenix_model::model::Model;
use phoenix_sim::pve::tasks::TaskOutcome;
use phoenix_sim::pve::PveSim;
use phoenix_sim::server::Fault;
use rig::{example, Rig};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

fn firewall() -> BTreeSet<Domain> {
    [Domain::Firewall].into()
}

/// The example with cluster aliases and ipsets written as users write them (single hosts
/// with /32, an entry with host bits) and a security group with capitals, used by guest 101.
fn example_with_names() -> Model {
    let mut source = phoenix_testkit::example_source();
    let config = phoenix_testkit::example_config();
    source.edit_json(&config.join("phoenix_hypervisor_config.json"), |v| {
        let fw = &mut v["firewall"];
        fw["aliases"] = json!({ "Traefik": "10.0.0.12/32", "lan": "10.0.0.0/24" });
        fw["ipsets"] = json!({ "Mgmt": ["10.0.0.5/32", "10.0.1.7/24"] });
        fw["security_groups"] =
            json!({ "WebServers": [{ "type": "in", "action": "ACCEPT", "proto": "tcp", "port": "443", "source": "+Mgmt" }] });
    });
    source.edit_json(&config.join("phoenix_lxc_configs.json"), |v| {
        let rules = v["lxc_configs"]["101"]["firewall"]["rules"].as_array_mut().unwrap();
        rules.push(json!({ "type": "group", "action": "WebServers" }));
        rules.push(json!({ "type": "in", "action": "ACCEPT", "proto": "tcp", "port": "22", "source": "Traefik" }));
        rules.push(json!({ "type": "in", "action": "DROP", "proto": "tcp", "port": "22", "comment": "no SSH otherwise" }));
    });
    phoenix_model::check(&config, &source).model.expect("the edited example loads")
}

/// The node's file for a rendered `.fw` path, parsed by phoenix's reader.
fn on_node(sim: &PveSim, rendered_path: &str) -> FwFile {
    let path = rendered_path.trim_start_matches("/etc/pve/");
    sim.files.get(path).map(|text| pve_fw::parse(text).expect("phoenix reads PVE's file")).unwrap_or_default()
}

fn rendered_files(rig: &Rig) -> BTreeMap<String, FwFile> {
    rig.rendered.files.iter().filter(|f| f.path.ends_with(".fw")).map(|f| (f.path.clone(), pve_fw::parse(&f.content).unwrap())).collect()
}

async fn sync_once(rig: &Rig, domains: &BTreeSet<Domain>) -> phoenix_exec::sync::Summary {
    let plan = rig.plan(domains).await.unwrap();
    rig.apply(&plan).await.0
}

#[tokio::test]
async fn the_node_holds_the_rendered_rules_in_order_and_a_second_sync_plans_nothing() {
    let rig = Rig::with("order", example_with_names(), |_| {}).await;
    let summary = sync_once(&rig, &rig::all()).await;
    assert_eq!((summary.failed, summary.skipped), (0, 0), "{}", summary.to_text());
    let rendered = rendered_files(&rig);
    rig.pve.with(|sim| {
        assert!(sim.gaps.is_empty(), "{:?}", sim.gaps);
        for (path, want) in &rendered {
            let have = on_node(sim, path);
            assert_eq!(have.rules, want.rules, "{path}: the rules, in order");
            assert_eq!(have.aliases, want.aliases, "{path}: aliases");
            assert_eq!(have.ipsets, want.ipsets, "{path}: ipsets");
            assert_eq!(have.groups, want.groups, "{path}: security groups");
        }
        let cluster = &sim.files["firewall/cluster.fw"];
        assert!(
            cluster.contains("traefik 10.0.0.12\n") && cluster.contains("10.0.1.0/24") && cluster.contains("[group webservers]"),
            "{cluster}"
        );
    });
    let again = rig.plan(&rig::all()).await.unwrap();
    assert!(again.is_empty(), "converged in one run:\n{}", again.to_text());
}

fn key<'n>(net: &'n str, key: &str) -> Option<&'n str> {
    net.split(',').find_map(|p| p.strip_prefix(&format!("{key}=")))
}

#[tokio::test]
async fn nics_keep_their_mac_and_every_key_phoenix_does_not_render() {
    let rig = Rig::with("nics", example(), |sim| {
        for vmid in [101u32, 1001] {
            let net0 = sim.guest_key(vmid, "net0").unwrap();
            let kind = if vmid == 101 { "lxc" } else { "qemu" };
            let path = format!("/nodes/pve/{kind}/{vmid}/config");
            let method = if kind == "lxc" { "PUT" } else { "POST" };
            let reply = sim.request(method, &path, [("net0".to_string(), Value::String(format!("{net0},tag=20,mtu=1450")))].into());
            assert_eq!(reply.status, 200, "{}", reply.body);
        }
    })
    .await;
    let before: Vec<String> = rig.pve.with(|sim| [101, 1001].iter().map(|id| sim.guest_key(*id, "net0").unwrap()).collect());
    let summary = sync_once(&rig, &firewall()).await;
    assert_eq!(summary.failed, 0, "{}", summary.to_text());
    rig.pve.with(|sim| {
        for (vmid, was) in [101u32, 1001].iter().zip(&before) {
            let now = sim.guest_key(*vmid, "net0").unwrap();
            assert_eq!(key(&now, "firewall"), Some("1"), "{now}");
            assert_eq!((key(&now, "tag"), key(&now, "mtu")), (Some("20"), Some("1450")), "unrendered keys kept: {now}");
            let mac = |net: &str| key(net, "hwaddr").or_else(|| key(net, "virtio")).map(str::to_string);
            assert_eq!(mac(&now), mac(was), "the MAC is kept: {was} -> {now}");
        }
    });
    assert!(rig.plan(&firewall()).await.unwrap().is_empty());
}

#[tokio::test]
async fn an_upper_case_security_group_converges() {
    let rig = Rig::with("groups", example_with_names(), |_| {}).await;
    assert_eq!(sync_once(&rig, &firewall()).await.failed, 0);
    let again = rig.plan(&firewall()).await.unwrap();
    assert!(again.is_empty(), "{}", again.to_text());
}

#[tokio::test]
async fn a_500_is_not_repeated_even_when_the_change_was_made() {
    let rig = Rig::new("once").await;
    // The rule is created, then the answer is a 500 (a proxy failing on the way back).
    rig.pve.server.controls.inject(Some("POST"), "/lxc/101/firewall/rules", Fault::AfterHandling(500, "proxy error".into()), 1);
    let summary = sync_once(&rig, &firewall()).await;
    let step = summary.results.iter().find(|r| r.id == "firewall:guest:101:rules").unwrap();
    assert!(matches!(step.outcome, StepOutcome::Failed { .. }), "{:?}", step.outcome);
    let rules = rig.pve.with(|sim| on_node(sim, "/etc/pve/firewall/101.fw").rules.len());
    assert_eq!(rules, 1, "the POST was not sent twice");
    // A rerun plans from what is there and converges.
    rig.pve.server.controls.clear_faults();
    assert_eq!(sync_once(&rig, &firewall()).await.failed, 0);
    assert!(rig.plan(&firewall()).await.unwrap().is_empty());
    let rendered = rendered_files(&rig);
    rig.pve.with(|sim| assert_eq!(on_node(sim, "/etc/pve/firewall/101.fw").rules, rendered["/etc/pve/firewall/101.fw"].rules));
}

#[tokio::test]
async fn an_edit_in_the_gui_after_the_plan_stops_the_positional_edits() {
    let rig = Rig::with("race", example_with_names(), |_| {}).await;
    assert_eq!(sync_once(&rig, &firewall()).await.failed, 0);
    // Someone changes rule 0 of guest 101 in place: phoenix plans to put it back (a PUT at 0).
    let rules = "/nodes/pve/lxc/101/firewall/rules";
    rig.pve.with(|sim| assert_eq!(sim.request("PUT", &format!("{rules}/0"), [("comment".into(), json!("edited"))].into()).status, 200));
    let plan = rig.plan(&firewall()).await.unwrap();
    let step = plan.steps.iter().find(|s| s.id == "firewall:guest:101:rules").expect("a step puts rule 0 back");
    assert!(matches!(&step.action, Action::Pve { requests } if requests[0].path.ends_with("/rules/0")), "{}", step.diff);
    // ... and before it runs, the GUI adds a rule on top: position 0 is now another rule.
    rig.pve.with(|sim| {
        let added = sim.request(
            "POST",
            rules,
            [("type".into(), json!("in")), ("action".into(), json!("ACCEPT")), ("comment".into(), json!("from the GUI"))].into(),
        );
        assert_eq!(added.status, 200);
    });
    let before = rig.pve.with(|sim| sim.files["firewall/101.fw"].clone());
    let (summary, _) = rig.apply(&plan).await;
    let result = summary.results.iter().find(|r| r.id == "firewall:guest:101:rules").unwrap();
    match &result.outcome {
        StepOutcome::Failed { message } => assert!(message.contains("changed since phoenix observed it"), "{message}"),
        other => panic!("the step must refuse, not edit the wrong rule: {other:?}"),
    }
    assert_eq!(rig.pve.with(|sim| sim.files["firewall/101.fw"].clone()), before, "nothing was edited");
    // Planning again from what is there converges.
    assert_eq!(sync_once(&rig, &firewall()).await.failed, 0);
    assert!(rig.plan(&firewall()).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_task_ending_with_warnings_succeeds_and_says_so() {
    let rig = Rig::new("warnings").await;
    rig.pve.with(|sim| {
        for _ in 0..4 {
            sim.tasks.injected.push_back(TaskOutcome::Warnings(vec!["hotplug: NIC re-plugged".into()]));
        }
    });
    let summary = sync_once(&rig, &firewall()).await;
    assert_eq!(summary.failed, 0, "{}", summary.to_text());
    let noted = summary
        .results
        .iter()
        .filter(|r| r.id.starts_with("nic:"))
        .filter(|r| matches!(&r.outcome, StepOutcome::Done { note: Some(n) } if n.contains("hotplug: NIC re-plugged")))
        .count();
    assert!(noted >= 1, "{}", summary.to_text());
}

#[tokio::test]
async fn a_lock_held_by_someone_else_is_waited_out() {
    let rig = Rig::new("lock").await;
    let plan = rig.plan(&firewall()).await.unwrap();
    // Someone else holds the cluster firewall's lock and a VM's config lock for longer than a
    // writer waits: the first attempts time out, the retries get through.
    rig.pve.with(|sim| {
        sim.settings.lock_timeout = Duration::from_millis(40);
        sim.hold_lock("firewall-cluster", Duration::from_millis(120));
        sim.hold_lock("config-1001", Duration::from_millis(120));
    });
    let (summary, _) = rig.apply(&plan).await;
    assert_eq!((summary.failed, summary.skipped), (0, 0), "lock timeouts are retried: {}", summary.to_text());
    assert!(rig.pve.with(|sim| sim.lock_timeouts) >= 2, "locks timed out on the way (cfs lock and the VM task's flock)");
    assert!(rig.plan(&firewall()).await.unwrap().is_empty());
}

#[tokio::test]
async fn sync_of_500_guests_converges_in_one_run_with_their_macs() {
    // Every domain but Portainer's: the synthetic inventory runs stacks on guests it gives no
    // Portainer agent.
    let domains: BTreeSet<Domain> = rig::all().into_iter().filter(|d| !matches!(d, Domain::Portainer | Domain::Stacks)).collect();
    let rig = Rig::with("synth", phoenix_testkit::synth::model(500), |_| {}).await;
    let macs = |sim: &PveSim| -> Vec<Option<String>> {
        (0..=2000)
            .filter_map(|id| sim.guest_key(id, "net0"))
            .map(|n| n.split(',').find(|p| p.contains("BC:24:11")).map(str::to_string))
            .collect()
    };
    let before = rig.pve.with(|sim| macs(sim));
    let summary = sync_once(&rig, &domains).await;
    assert_eq!((summary.failed, summary.skipped), (0, 0), "{}", summary.to_text());
    let again = rig.plan(&domains).await.unwrap();
    assert!(again.is_empty(), "{}", again.to_text());
    assert_eq!(rig.pve.with(|sim| macs(sim)), before, "no MAC changed");
    let rendered = rendered_files(&rig);
    rig.pve.with(|sim| {
        for (path, want) in &rendered {
            assert_eq!(on_node(sim, path).rules, want.rules, "{path}");
        }
    });
}
