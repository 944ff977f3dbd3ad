//! Every request the sync planner emits is one Proxmox VE 9.1.3 takes: checked, without HTTP,
//! by the simulator's router and parameter validator (the real API schema), and each rule it
//! writes by the simulator's port of pve-firewall's `verify_rule`, for the bundled
//! example, the reference configuration and synthetic inventories of 50 and 5,000 guests, from
//! a fresh node (everything created) and from a drifted one (rules reordered, added and
//! removed, aliases and options changed, stray ipsets and groups, NICs of another model).

use phoenix_core::plan::pve::{FwScope, Guard};
use phoenix_core::plan::{plan, Action, Domain, Observed, PlanInput, PveObserved};
use phoenix_core::pve_fw::{self, FwAlias, FwFile, FwGroup, FwIpSet, FwIpSetEntry};
use phoenix_core::render::{render_all, Rendered};
use phoenix_model::model::Model;
use phoenix_model::paths::{DEFAULT_STORE, TRUSTED_ROOT_PATH};
use phoenix_testkit::{example_config, example_source, reference_config, MemorySource};
use std::collections::BTreeMap;

fn scope_file(scope: FwScope, node: &str) -> String {
    match scope {
        FwScope::Cluster => "/etc/pve/firewall/cluster.fw".into(),
        FwScope::Host(_) => format!("/etc/pve/nodes/{node}/host.fw"),
        FwScope::Guest(id, _) => format!("/etc/pve/firewall/{id}.fw"),
    }
}

fn scopes(model: &Model) -> Vec<FwScope> {
    let mut scopes = vec![FwScope::Cluster, FwScope::Host(0)];
    scopes.extend(model.guests.values().map(|g| FwScope::Guest(g.id, g.kind)));
    scopes
}

fn rendered_file(rendered: &Rendered, path: &str) -> FwFile {
    rendered
        .files
        .iter()
        .find(|f| f.path == path)
        .map(|f| pve_fw::parse(&f.content).expect("phoenix parses its own files"))
        .unwrap_or_default()
}

fn node(
    model: &Model,
    rendered: &Rendered,
    firewalls: BTreeMap<FwScope, FwFile>,
    nics: BTreeMap<u32, BTreeMap<String, String>>,
) -> Observed {
    let rule_digests = firewalls
        .iter()
        .flat_map(|(scope, file)| {
            let base = scope.base(&model.host.node_name);
            let mut lists = vec![(format!("{base}/rules"), !file.rules.is_empty())];
            lists.extend(file.groups.iter().map(|g| (format!("/cluster/firewall/groups/{}", g.name), !g.rules.is_empty())));
            lists.into_iter().filter(|(_, full)| *full).map(|(path, _)| (path, "0".repeat(40)))
        })
        .collect();
    let _ = rendered;
    Observed {
        pve: Some(PveObserved {
            node: model.host.node_name.clone(),
            guests: model.guests.values().map(|g| (g.id, g.kind)).collect(),
            firewalls,
            nics,
            rule_digests,
            ..PveObserved::default()
        }),
        ..Observed::default()
    }
}

/// A node phoenix never touched.
fn fresh(model: &Model, rendered: &Rendered) -> Observed {
    node(model, rendered, BTreeMap::new(), phoenix_core::render::pve_firewall::nics_before_firewall(rendered))
}

/// A node where the rendered firewall was deployed once and then drifted in every way the
/// planner has a request for.
fn drifted(model: &Model, rendered: &Rendered) -> Observed {
    let node_name = &model.host.node_name;
    let mut firewalls = BTreeMap::new();
    for scope in scopes(model) {
        let mut file = rendered_file(rendered, &scope_file(scope, node_name));
        file.rules.reverse();
        if file.rules.len() > 1 {
            file.rules.remove(0);
        }
        file.rules.push(pve_fw::parse_rule("IN DROP -p tcp -dport 9 # stray").unwrap());
        file.rules.push(pve_fw::parse_rule("|OUT ACCEPT -source 10.9.9.0/24 -p udp -dport 53").unwrap());
        file.options.insert("policy_in".into(), "REJECT".into());
        file.options.insert("log_level_in".into(), "info".into());
        if !matches!(scope, FwScope::Host(_)) {
            if let Some(alias) = file.aliases.first_mut() {
                alias.cidr = "10.9.9.9".into();
            }
            file.aliases.push(FwAlias { name: "stray-alias".into(), cidr: "10.9.9.8".into(), comment: None });
            if let Some(set) = file.ipsets.first_mut() {
                set.entries.pop();
                set.entries.push(FwIpSetEntry { negated: true, cidr: "10.9.8.0/24".into(), comment: Some("stray".into()) });
            }
            let stray = FwIpSetEntry { negated: false, cidr: "10.9.7.1".into(), comment: None };
            file.ipsets.push(FwIpSet { name: "stray-set".into(), comment: None, entries: vec![stray] });
        }
        if matches!(scope, FwScope::Cluster) {
            for group in &mut file.groups {
                group.rules.reverse();
                group.rules.push(pve_fw::parse_rule("IN DROP -p tcp -dport 7").unwrap());
            }
            let rules = vec![pve_fw::parse_rule("IN SSH(ACCEPT)").unwrap()];
            file.groups.push(FwGroup { name: "stray-group".into(), comment: None, rules });
        }
        firewalls.insert(scope, file);
    }
    let nics = phoenix_core::render::pve_firewall::nics_before_firewall(rendered)
        .into_iter()
        .map(|(id, nics)| {
            let drifted = nics
                .into_iter()
                .map(|(key, net)| {
                    let drifted = if net.starts_with("virtio") {
                        net.replacen("virtio", "e1000=BC:24:11:00:00:01", 1)
                    } else if net.contains("hwaddr=") {
                        format!("{net},tag=30,mtu=1400")
                    } else {
                        format!("{net},hwaddr=BC:24:11:00:00:02,tag=30")
                    };
                    (key, drifted)
                })
                .collect();
            (id, drifted)
        })
        .collect();
    node(model, rendered, firewalls, nics)
}

/// pve-firewall's `verify_rule` (the simulator's port) on a rule a request writes, with the
/// aliases and ipsets of the rendered files as the simulator's parser reads them.
fn verify_rule(
    files: &BTreeMap<&str, &str>,
    cluster: &phoenix_sim::pve::fw::FwConf,
    path: &str,
    params: &[(String, String)],
) -> Result<(), String> {
    use phoenix_sim::pve::fw::{rule, FwConf, FwKind};
    if !params.iter().any(|(k, _)| k == "type") {
        return Ok(());
    }
    let text = |file: &str| files.get(file).copied().unwrap_or_default();
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (env, local) = match parts.as_slice() {
        ["cluster", "firewall", "groups", ..] => (rule::RuleEnv::Group, FwConf::default()),
        ["cluster", ..] => (rule::RuleEnv::Cluster, FwConf::default()),
        ["nodes", _, "firewall", ..] => (rule::RuleEnv::Host, FwConf::default()),
        ["nodes", _, kind, vmid, ..] => {
            let env = if *kind == "lxc" { rule::RuleEnv::Ct } else { rule::RuleEnv::Vm };
            (env, FwConf::parse(text(&format!("/etc/pve/firewall/{vmid}.fw")), FwKind::Guest(env), Some(cluster)).0)
        }
        _ => return Ok(()),
    };
    let mut candidate = rule::Rule::default();
    rule::copy_data(&mut candidate, &params.iter().cloned().collect());
    let (aliases, ipsets) = (cluster.alias_versions(), cluster.ipset_names());
    let (local_aliases, local_ipsets) = (local.alias_versions(), local.ipset_names());
    let names = rule::Names {
        cluster_aliases: Some(&aliases),
        local_aliases: Some(&local_aliases),
        cluster_ipsets: Some(&ipsets),
        local_ipsets: Some(&local_ipsets),
    };
    rule::verify(&mut candidate, env, &names).map_err(|refusals| format!("{path} {params:?}: verify_rule refuses it: {refusals:?}"))
}

/// Checks every Proxmox request of the plan; returns how many there were.
fn conform(model: &Model, rendered: &Rendered, observed: &Observed) -> usize {
    let domains = [Domain::Firewall].into();
    let plan = plan(&PlanInput {
        model,
        rendered,
        observed,
        domains: &domains,
        secret: &|_| None,
        store_dir: DEFAULT_STORE,
        host_trust_file: TRUSTED_ROOT_PATH,
        boot_delays: true,
    });
    let mut checked = 0;
    let mut refused = Vec::new();
    let files: BTreeMap<&str, &str> = rendered.files.iter().map(|f| (f.path.as_str(), f.content.as_str())).collect();
    let cluster_text = files.get("/etc/pve/firewall/cluster.fw").copied().unwrap_or_default();
    let cluster = phoenix_sim::pve::fw::FwConf::parse(cluster_text, phoenix_sim::pve::fw::FwKind::Cluster, None).0;
    for step in &plan.steps {
        let Action::Pve { requests } = &step.action else { continue };
        for request in requests {
            let mut params = request.params.clone();
            if request.guard.is_some() {
                // The digest the executor sends: observed, or read just before.
                params.push(("digest".into(), "0".repeat(40)));
            }
            if let Some(Guard::Reread { list, .. }) = &request.guard {
                refused.extend(phoenix_sim::pve::check_request("GET", list, &[]).err());
            }
            let path = request.path.replace("%2F", "/");
            let method = format!("{:?}", request.method).to_ascii_uppercase();
            refused.extend(phoenix_sim::pve::check_request(&method, &path, &params).err());
            if path.contains("/rules") || path.contains("/groups/") {
                refused.extend(verify_rule(&files, &cluster, &path, &request.params).err());
            }
            checked += 1;
        }
    }
    assert!(
        refused.is_empty(),
        "{} of {checked} requests would be refused:\n{}",
        refused.len(),
        refused[..refused.len().min(20)].join("\n")
    );
    checked
}

fn both(model: &Model) -> (usize, usize) {
    let rendered = render_all(model);
    (conform(model, &rendered, &fresh(model, &rendered)), conform(model, &rendered, &drifted(model, &rendered)))
}

#[test]
fn the_examples_requests_are_all_ones_pve_takes() {
    let model = phoenix_model::check(&example_config(), &example_source()).model.unwrap();
    let (fresh, drifted) = both(&model);
    assert!(fresh > 20 && drifted > 50, "{fresh} and {drifted} requests");
}

#[test]
fn the_reference_configurations_requests_are_all_ones_pve_takes() {
    let source = MemorySource::from_dir(reference_config().parent().unwrap());
    let model = phoenix_model::check(&reference_config(), &source).model.unwrap();
    let (fresh, drifted) = both(&model);
    assert!(fresh > 20 && drifted > 50, "{fresh} and {drifted} requests");
}

#[test]
fn synthetic_inventories_requests_are_all_ones_pve_takes() {
    for guests in [50, 5000] {
        let (fresh, drifted) = both(&phoenix_testkit::synth::model(guests));
        assert!(fresh > guests * 5 && drifted > guests * 5, "{guests} guests: {fresh} and {drifted} requests");
    }
}
