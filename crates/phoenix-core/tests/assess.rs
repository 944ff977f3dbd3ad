//! `phoenix assess` computed on the bundled example (no hop fails) and on the reference, where
//! it must contradict the hand-written assessment wherever the configuration does; and the
//! reference as its scripts really deployed it (every rule in cluster.fw, no <vmid>.fw).

use phoenix_core::analyze::assess::{assess, FlowVerdict, Status};
use phoenix_core::analyze::firewall::{Decision, FirewallState};
use phoenix_core::analyze::report;
use phoenix_core::edge::edge;
use phoenix_core::render::pve_firewall::{format::FwFile, rule_lines};
use phoenix_core::render::render_all;
use phoenix_testkit::{example_config, example_source, reference_config, MemorySource};
use std::collections::BTreeMap;

fn reference_model() -> phoenix_model::Model {
    phoenix_model::check(&reference_config(), &MemorySource::from_dir(reference_config().parent().unwrap())).model.unwrap()
}

fn judge(model: &phoenix_model::Model) -> Vec<FlowVerdict> {
    assess(model, &edge(model), &FirewallState::from_rendered(&render_all(model), model))
}

fn hop<'f>(flows: &'f [FlowVerdict], flow_id: &str, index: usize) -> &'f phoenix_core::analyze::assess::HopVerdict {
    &flows.iter().find(|f| f.id == flow_id).unwrap_or_else(|| panic!("no flow {flow_id}")).hops[index]
}

#[test]
fn the_bundled_example_passes_with_no_failure() {
    let model = phoenix_model::check(&example_config(), &example_source()).model.unwrap();
    let flows = judge(&model);
    let failing: Vec<_> = flows.iter().filter(|f| f.status == Status::Fail).map(|f| &f.title).collect();
    assert!(failing.is_empty(), "{failing:#?}");
    assert!(report::dns_findings(&model).is_empty());
    // mTLS where configured: Traefik presents traefik-client to Portainer, which requires it.
    let portainer = hop(&flows, "route:portainer.phoenix.thinkheads.ai:host", 2);
    assert!(portainer.tls.as_ref().unwrap().summary.contains("mTLS: the client presents traefik-client"), "{:?}", portainer.tls);
    insta::assert_snapshot!("assess_example_md", report::to_markdown(&model, &flows, "the files phoenix renders from the configuration"));
}

#[test]
fn the_reference_report_contradicts_the_hand_written_assessment() {
    let model = reference_model();
    let flows = judge(&model);
    // "Traefik now configured for mTLS": it presents no client certificate.
    let traefik_portainer = hop(&flows, "route:portainer.phoenix.thinkheads.ai:host", 2);
    assert!(traefik_portainer.tls.as_ref().unwrap().summary.contains("no client certificate is presented, so there is no mTLS"));
    // The agent's name resolves to the gateway, not the agent.
    let agent = hop(&flows, "portainer:1001:1002", 0);
    assert_eq!(agent.dns.as_ref().unwrap().status, Status::Fail);
    assert!(agent.dns.as_ref().unwrap().summary.contains("instead of 10.0.0.102"));
    let dns: Vec<String> = report::dns_findings(&model).into_iter().map(|(_, m)| m).collect();
    assert!(dns.iter().any(|m| m.starts_with("traefik.internal.thinkheads.ai points at 10.0.0.153")), "{dns:#?}");
    assert!(dns.iter().any(|m| m.contains("no Traefik route serves it (clients get 404)")));
    let markdown = report::to_markdown(&model, &flows, "the files phoenix renders from the configuration");
    assert!(markdown.contains("**Blocking findings:**"));
    insta::assert_snapshot!("assess_reference_md", markdown);
}

/// The reference as its scripts deployed it: every rule (global, LXC, VM) in cluster.fw, no <vmid>.fw.
fn deployed_by_the_scripts(model: &phoenix_model::Model) -> BTreeMap<String, String> {
    let mut cluster = FwFile::default();
    cluster.options.insert("enable".into(), "1".into());
    cluster.options.insert("policy_in".into(), "DROP".into());
    cluster.options.insert("policy_out".into(), "ACCEPT".into());
    cluster.rules = rule_lines(&model.firewall.cluster_rules);
    for guest in model.guests.values() {
        cluster.rules.extend(rule_lines(&guest.firewall.rules));
    }
    let mut tree = BTreeMap::from([("firewall/cluster.fw".to_string(), cluster.to_text())]);
    for guest in model.guests.values() {
        let folder = if guest.kind == phoenix_model::model::GuestKind::Lxc { "lxc" } else { "qemu-server" };
        tree.insert(format!("nodes/pve/{folder}/{}.conf", guest.id), "net0: name=eth0,bridge=vmbr0,firewall=1\n".into());
    }
    tree
}

#[test]
fn the_reference_as_deployed_filters_no_guest_traffic() {
    let model = reference_model();
    let state = FirewallState::from_pve_tree(&deployed_by_the_scripts(&model), &model, "the reference as its scripts deployed it").unwrap();
    let flows = assess(&model, &edge(&model), &state);
    let traefik_portainer = hop(&flows, "route:portainer.phoenix.thinkheads.ai:host", 2);
    assert!(traefik_portainer.firewall_chains.passes && traefik_portainer.firewall_chains.unprotected, "{traefik_portainer:#?}");
    for chain in &traefik_portainer.firewall_chains.chains {
        // The cluster rule "Allow Traefik to access Portainer" decides nothing: no guest chain is in force.
        assert!(matches!(&chain.decision, Decision::NotInForce { reason } if reason.contains(".fw does not exist")), "{chain:?}");
    }
    // Every guest-to-guest hop is open and unprotected, whatever the rules say.
    let guest_hops: Vec<_> = flows
        .iter()
        .flat_map(|f| &f.hops)
        .filter(|h| {
            matches!(
                (h.hop.from, h.hop.to),
                (phoenix_core::analyze::firewall::Endpoint::Guest(_), phoenix_core::analyze::firewall::Endpoint::Guest(_))
            )
        })
        .collect();
    assert!(!guest_hops.is_empty());
    assert!(guest_hops.iter().all(|h| h.firewall_chains.unprotected), "some guest hop is filtered");
    // Host traffic still meets the cluster rules (the host IN chain).
    let dns = hop(&flows, "dns:102", 0);
    assert!(
        matches!(&dns.firewall_chains.chains[1].decision, Decision::Rule { path, .. } if path == "/etc/pve/firewall/cluster.fw"),
        "{dns:#?}"
    );
}
