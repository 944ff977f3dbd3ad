//! The sync plan for the bundled example against a node whose guests exist with nothing
//! configured, and against a node already as described (then the plan is empty).

use phoenix_core::plan::portainer::PortainerObserved;
use phoenix_core::plan::pve::FwScope;
use phoenix_core::plan::{plan, Domain, Observed, PlanInput, PveObserved};
use phoenix_core::pve_fw::parse;
use phoenix_model::model::Model;
use phoenix_model::paths::{DEFAULT_STORE, TRUSTED_ROOT_PATH};
use std::collections::BTreeSet;

fn example() -> Model {
    phoenix_model::check(&phoenix_testkit::example_config(), &phoenix_testkit::example_source()).model.unwrap()
}

fn bare_node(model: &Model) -> PveObserved {
    PveObserved {
        node: model.host.node_name.clone(),
        guests: model.guests.values().map(|g| (g.id, g.kind)).collect(),
        ..PveObserved::default()
    }
}

/// What a first run observes: a bare node, the trust in place, a fresh Portainer.
fn first_run(model: &Model) -> Observed {
    Observed {
        pve: Some(bare_node(model)),
        trust_in_place: Some(true),
        portainer: Some(PortainerObserved::default()),
        ..Observed::default()
    }
}

/// The plan with no secrets resolved and the default store and trust file.
fn plan_for(
    model: &Model,
    rendered: &phoenix_core::render::Rendered,
    observed: &Observed,
    domains: &BTreeSet<Domain>,
) -> phoenix_core::plan::Plan {
    plan(&PlanInput {
        model,
        rendered,
        observed,
        domains,
        secret: &|_| None,
        store_dir: DEFAULT_STORE,
        host_trust_file: TRUSTED_ROOT_PATH,
        boot_delays: true,
    })
}

fn all() -> BTreeSet<Domain> {
    Domain::ALL.into_iter().collect()
}

#[test]
fn the_first_plan_orders_references_rules_options_and_switches_the_firewall_on_last() {
    let model = example();
    let rendered = phoenix_core::render::render_all(&model);
    let observed = first_run(&model);
    let domains = all();
    let secret = |_: &phoenix_model::model::SecretRef| Some("s3cret".to_string());
    let plan = plan(&PlanInput {
        model: &model,
        rendered: &rendered,
        observed: &observed,
        domains: &domains,
        secret: &secret,
        store_dir: DEFAULT_STORE,
        host_trust_file: TRUSTED_ROOT_PATH,
        boot_delays: true,
    });
    let cluster = plan.steps.iter().find(|s| s.id == "firewall:cluster:options").unwrap();
    let rule_steps = plan.steps.iter().filter(|s| s.id.ends_with(":rules")).count();
    assert_eq!(cluster.after.len(), rule_steps, "the cluster firewall is switched on after every rule set");
    let nic = plan.steps.iter().find(|s| s.id == "nic:101").unwrap();
    assert_eq!(nic.after, ["firewall:guest:101:rules", "firewall:guest:101:options"]);
    assert_eq!(nic.lock.as_deref(), Some("guest:101"));
    assert!(!plan.to_text().contains("s3cret"));
    insta::assert_snapshot!(plan.to_text());
}

#[test]
fn a_node_as_described_plans_nothing() {
    let model = example();
    let rendered = phoenix_core::render::render_all(&model);
    let mut node = bare_node(&model);
    for file in rendered.files.iter().filter(|f| f.path.ends_with(".fw")) {
        let scope = match file.path.rsplit('/').next().unwrap().trim_end_matches(".fw") {
            "cluster" => FwScope::Cluster,
            // nodes/<node>/host.fw: that node's index in the cluster.
            "host" => {
                let node = file.path.trim_end_matches("/host.fw").rsplit('/').next().unwrap();
                FwScope::Host(model.host.nodes.iter().position(|n| n.name == node).unwrap() as u8)
            }
            id => {
                let id: u32 = id.parse().unwrap();
                FwScope::Guest(id, model.guests[&id].kind)
            }
        };
        node.firewalls.insert(scope, parse(&file.content).unwrap());
    }
    // The node lists NIC options in its own order: still the same NIC.
    for setting in rendered.settings.iter().filter(|s| s.key.starts_with("net")) {
        let mut parts: Vec<&str> = setting.value.split(',').collect();
        parts.reverse();
        node.nics.entry(setting.guest).or_default().insert(setting.key.clone(), parts.join(","));
    }
    let observed = Observed { pve: Some(node), ..Observed::default() };
    let domains = BTreeSet::from([Domain::Firewall]);
    let plan = plan_for(&model, &rendered, &observed, &domains);
    assert!(plan.is_empty(), "{}", plan.to_text());
    assert_eq!(plan.critical_path_calls(), 0);
}

/// Certificate and trust steps are planned like the others: the plan a user approves shows each
/// file with its owner and mode, and the actions after them; the applier gets exactly these.
#[test]
fn certificate_and_trust_steps_show_their_files_owners_modes_and_actions() {
    use phoenix_core::plan::Action;
    let model = example();
    let rendered = phoenix_core::render::render_all(&model);
    let observed = Observed {
        certs_due: [("gateway".to_string(), vec!["expires-soon".to_string()])].into(),
        trust_in_place: Some(false),
        trust_root: Some("-----BEGIN CERTIFICATE-----\nroot\n-----END CERTIFICATE-----\n".into()),
        ..Observed::default()
    };
    let domains: BTreeSet<Domain> = [Domain::Trust, Domain::Certs, Domain::Gateway].into();
    let plan = plan_for(&model, &rendered, &observed, &domains);
    let cert = plan.steps.iter().find(|s| s.id == "cert:gateway").expect("a step for the certificate due");
    let Action::Certificate { renewal } = &cert.action else { panic!("{:?}", cert.action) };
    let key = renewal.files.iter().find(|f| f.place.path == "/etc/nginx/ssl/gateway.key").expect("the installed key is planned");
    assert_eq!((key.owner.as_deref(), key.mode), (Some("root:www-data"), 0o640));
    assert!(cert.diff.contains("install Lxc 101:/etc/nginx/ssl/gateway.key (Key, root:www-data, 0640)"), "{}", cert.diff);
    assert!(cert.diff.contains("install /var/lib/phoenix/certs/gateway.key (Key, phoenix's user, 0600)"), "{}", cert.diff);
    let trust = plan.steps.iter().find(|s| s.id == "trust").expect("a trust step");
    let Action::Trust { files, actions } = &trust.action else { panic!("{:?}", trust.action) };
    assert!(files.iter().any(|f| f.place.path == TRUSTED_ROOT_PATH && f.place.guest.is_none()));
    assert!(actions.iter().any(|a| a.to_string() == "update-ca-certificates on the host"));
    assert!(trust.diff.contains("then update-ca-certificates on the host"), "{}", trust.diff);
    let gateway_files: Vec<_> = plan.steps.iter().filter(|s| s.domain == Domain::Gateway).collect();
    assert!(gateway_files.iter().all(|s| s.after.contains(&"cert:gateway".to_string()) && s.after.contains(&"trust".to_string())));
    // The JSON plan carries them too (the root's and keys' contents never).
    let json = serde_json::to_string(&plan).unwrap();
    assert!(json.contains("\"mode\":416") && !json.contains("BEGIN CERTIFICATE"), "{json}");
    insta::assert_snapshot!(cert.diff);
}

/// Issue 16: a dual-homed gateway (the original's secondary_network_config) has both NICs
/// rendered, each under its own key, and a node that has only the first gets the second.
#[test]
fn a_second_nic_is_rendered_and_planned_under_its_own_key() {
    // The example's internal bridge (vmbr100, 10.100.0.0/24) already carries Traefik's net1.
    let mut source = phoenix_testkit::example_source();
    source.edit_json(&phoenix_testkit::example_config().join("phoenix_lxc_configs.json"), |v| {
        v["lxc_configs"]["101"]["secondary_network_config"] = serde_json::json!({
            "name": "eth1", "bridge": "vmbr100", "ip": "10.100.0.10/24", "hwaddr": "52:54:00:AA:10:01"
        });
    });
    let model = phoenix_model::check(&phoenix_testkit::example_config(), &source).model.unwrap();
    let rendered = phoenix_core::render::render_all(&model);
    let nics = phoenix_core::render::rendered_nics(&rendered);
    assert_eq!(nics[&101]["net1"], "name=eth1,bridge=vmbr100,firewall=1,hwaddr=52:54:00:AA:10:01,ip=10.100.0.10/24,type=veth");
    assert!(nics[&101]["net0"].starts_with("name=eth0,bridge=vmbr0,"));
    // The node has net0 as rendered and no net1.
    let mut node = bare_node(&model);
    for (guest, own) in &nics {
        node.nics.insert(*guest, own.iter().filter(|(k, _)| **k == "net0").map(|(k, v)| (k.to_string(), v.to_string())).collect());
    }
    let observed = Observed { pve: Some(node), ..Observed::default() };
    let plan = plan_for(&model, &rendered, &observed, &BTreeSet::from([Domain::Firewall]));
    let step = plan.steps.iter().find(|s| s.id == "nic:101").expect("a NIC step for the gateway");
    assert_eq!(step.title, "guest 101: net1 (firewall flag)");
    assert_eq!(step.diff, format!("- net1: (none)\n+ net1: {}\n", nics[&101]["net1"]));
    let nic_steps: Vec<&str> = plan.steps.iter().filter(|s| s.id.starts_with("nic:")).map(|s| s.id.as_str()).collect();
    assert_eq!(nic_steps, ["nic:101", "nic:102"], "only the guests with a second NIC: {}", plan.to_text());
}

#[test]
fn a_stack_that_runs_the_portainer_server_is_never_deployed_through_portainer() {
    let mut source = phoenix_testkit::example_source();
    let vms = phoenix_testkit::example_config().join("phoenix_vm_configs.json");
    source.edit_json(&vms, |v| {
        v["vms"][1]["docker_stacks"] = serde_json::json!([{ "name": "portainer_service", "environment": "production" }])
    });
    let model = phoenix_model::check(&phoenix_testkit::example_config(), &source).model.unwrap();
    let rendered = phoenix_core::render::render_all(&model);
    let observed = first_run(&model);
    let plan = plan_for(&model, &rendered, &observed, &all());
    let step = plan.steps.iter().find(|s| s.id.starts_with("stack:portainer:")).expect("the stack has a step");
    assert!(matches!(step.action, phoenix_core::plan::Action::Blocked), "{step:?}");
    assert!(step.reason.contains("PHX-COMPOSE-003"), "{}", step.reason);
}
