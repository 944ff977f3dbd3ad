//! `phoenix assess` computed on the bundled example (no hop fails) and on the reference, where
//! it must contradict the hand-written assessment wherever the configuration does; and the
//! reference as its scripts really deployed it (every rule in cluster.fw, no <vmid>.fw).

use phoenix_core::analyze::assess::{assess, FlowVerdict, Options};
use phoenix_core::analyze::firewall::{Decision, FirewallState};
use phoenix_core::analyze::report;
use phoenix_core::analyze::verdict::Status;
use phoenix_core::edge::edge;
use phoenix_core::pve_fw::FwFile;
use phoenix_core::render::pve_firewall::rule_lines;
use phoenix_core::render::render_all;
use phoenix_testkit::{example_config, example_source, reference_config, MemorySource};
use std::collections::BTreeMap;

fn reference_model() -> phoenix_model::Model {
    phoenix_model::check(&reference_config(), &MemorySource::from_dir(reference_config().parent().unwrap())).model.unwrap()
}

fn judge(model: &phoenix_model::Model) -> Vec<FlowVerdict> {
    assess(model, &edge(model), &FirewallState::from_rendered(&render_all(model), model), &Options::default())
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
    insta::assert_snapshot!(
        "assess_example_md",
        report::to_markdown(&model, &flows, &FirewallState::from_rendered(&render_all(&model), &model))
    );
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
    let markdown = report::to_markdown(&model, &flows, &FirewallState::from_rendered(&render_all(&model), &model));
    assert!(markdown.contains("**Blocking findings:**"));
    // The rules the hand-written assessment credits to "the host firewall" filter no guest traffic.
    assert!(markdown.contains("cluster rule 18 (\"Allow Traefik to access Portainer\") has dest 10.0.0.111, so it can only concern traffic of VM 1001 (Portainer); cluster.fw never filters guest traffic"));
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
    let state = FirewallState::from_pve_tree(&deployed_by_the_scripts(&model), &model, "the reference as its scripts deployed it");
    let flows = assess(&model, &edge(&model), &state, &Options::default());
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

// ---- certificate files (--certs) ----------------------------------------------------------

use phoenix_core::pki::CertStore;
use phoenix_testkit::pki::{rcgen, TestCa, Usage};

/// Certificates for every manifest entry of the example, signed by `ca`, with `adjust` able to
/// replace one (by name) with a broken variant.
fn example_store(ca: &TestCa, broken: Option<(&str, &dyn Fn(&TestCa) -> phoenix_testkit::pki::Leaf)>) -> CertStore {
    let model = phoenix_model::check(&example_config(), &example_source()).model.unwrap();
    let mut files = BTreeMap::from([("root_ca.crt".to_string(), ca.cert_pem.clone())]);
    for cert in &model.certificates {
        let leaf = match broken {
            Some((name, make)) if name == cert.name => make(ca),
            _ => {
                let mut names: Vec<String> = vec![cert.common_name.value.clone()];
                names.extend(cert.sans.iter().map(|s| match &s.value {
                    phoenix_model::model::San::Dns(d) => d.clone(),
                    phoenix_model::model::San::Ip(ip) => ip.to_string(),
                }));
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                let usage = match cert.usage {
                    phoenix_model::model::CertUsage::Client => Usage::Client,
                    phoenix_model::model::CertUsage::Both => Usage::Both,
                    phoenix_model::model::CertUsage::Server => Usage::Server,
                };
                ca.issue(&names, usage)
            }
        };
        files.insert(format!("{}.crt", cert.name), leaf.cert_pem);
        files.insert(format!("{}.key", cert.name), leaf.key_pem);
    }
    CertStore { files }
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

fn judge_with(store: CertStore, now: u64) -> Vec<FlowVerdict> {
    let model = phoenix_model::check(&example_config(), &example_source()).model.unwrap();
    let state = FirewallState::from_rendered(&render_all(&model), &model);
    assess(&model, &edge(&model), &state, &Options { certs: Some(store), now })
}

fn portainer_hop_tls(flows: &[FlowVerdict]) -> phoenix_core::analyze::verdict::Check {
    hop(flows, "route:portainer.phoenix.thinkheads.ai:host", 2).tls.clone().unwrap()
}

#[test]
fn good_certificate_files_pass() {
    let ca = TestCa::new("phoenix test root");
    let flows = judge_with(example_store(&ca, None), now());
    let failing: Vec<_> = flows.iter().filter(|f| f.status == Status::Fail).map(|f| &f.title).collect();
    assert!(failing.is_empty(), "{failing:#?}");
    let tls = portainer_hop_tls(&flows);
    assert!(
        tls.summary.contains("certificate portainer chains to the configured root, is valid now, covers portainer.internal.thinkheads.ai"),
        "{tls:?}"
    );
    assert!(tls.summary.contains("certificate traefik-client chains to the configured root, is valid now, clientAuth"), "{tls:?}");
}

#[test]
fn broken_certificate_files_are_findings() {
    let ca = TestCa::new("phoenix test root");
    let expired = |ca: &TestCa| {
        ca.issue_with(&["portainer.internal.thinkheads.ai"], Usage::Server, |p| {
            p.not_before = rcgen::date_time_ymd(2020, 1, 1);
            p.not_after = rcgen::date_time_ymd(2021, 1, 1);
        })
    };
    let tls = portainer_hop_tls(&judge_with(example_store(&ca, Some(("portainer", &expired))), now()));
    assert_eq!(tls.status, Status::Fail);
    assert!(tls.summary.contains("certificate portainer has expired"), "{tls:?}");

    let wrong_name = |ca: &TestCa| ca.issue(&["someone-else.internal.thinkheads.ai"], Usage::Server);
    let tls = portainer_hop_tls(&judge_with(example_store(&ca, Some(("portainer", &wrong_name))), now()));
    assert!(tls.summary.contains("certificate portainer does not cover portainer.internal.thinkheads.ai"), "{tls:?}");

    let untrusted = |_: &TestCa| TestCa::new("another root").issue(&["portainer.internal.thinkheads.ai"], Usage::Server);
    let tls = portainer_hop_tls(&judge_with(example_store(&ca, Some(("portainer", &untrusted))), now()));
    assert!(tls.summary.contains("certificate portainer does not chain to the configured root"), "{tls:?}");

    let server_as_client = |ca: &TestCa| ca.issue(&["traefik.internal.thinkheads.ai"], Usage::Server);
    let tls = portainer_hop_tls(&judge_with(example_store(&ca, Some(("traefik-client", &server_as_client))), now()));
    assert!(tls.summary.contains("certificate traefik-client lacks the clientAuth extended key usage"), "{tls:?}");

    let mut store = example_store(&ca, None);
    store.files.remove("traefik-client.crt");
    let tls = portainer_hop_tls(&judge_with(store, now()));
    assert!(tls.summary.contains("traefik-client.crt is not in the certificates folder"), "{tls:?}");

    let mut store = example_store(&ca, None);
    store.files.remove("root_ca.crt");
    let tls = portainer_hop_tls(&judge_with(store, now()));
    assert!(tls.summary.contains("root_ca.crt (the configured root) is missing"), "{tls:?}");

    // Judged in the year 4100, after rcgen's default not-after (4096), every certificate has expired.
    let year_4100 = (4100 - 1970) * 31_556_952;
    let later = judge_with(example_store(&ca, None), year_4100);
    assert!(portainer_hop_tls(&later).summary.contains("has expired"));
}

#[test]
fn declared_flows_are_judged_too() {
    let mut source = example_source();
    source.edit_json(&example_config().join("phoenix_hypervisor_config.json"), |v| {
        v["flows"] = serde_json::json!([
            { "title": "admin workstation reaches Traefik directly", "from": "10.0.0.50", "to": 102, "port": 443 },
            { "title": "Traefik scrapes the agent's metrics", "from": "102", "to": "1002", "port": 9100, "proto": "tcp" }
        ]);
    });
    let model = phoenix_model::check(&example_config(), &source).model.unwrap();
    let flows = judge(&model);
    let direct = flows.iter().find(|f| f.title == "admin workstation reaches Traefik directly").unwrap();
    assert_eq!(direct.status, Status::Fail, "Traefik only accepts the gateway and Step-CA");
    let metrics = flows.iter().find(|f| f.title == "Traefik scrapes the agent's metrics").unwrap();
    assert_eq!(metrics.status, Status::Fail);

    let mut broken = example_source();
    broken.edit_json(&example_config().join("phoenix_hypervisor_config.json"), |v| {
        v["flows"] = serde_json::json!([{ "from": "host", "to": 4242, "port": 22 }])
    });
    let checked = phoenix_model::check(&example_config(), &broken);
    assert!(checked.diagnostics.iter().any(|d| d.code == "PHX-FLOW-001" && d.message.contains("`4242`")));
}

#[test]
fn passthrough_routes_check_traefiks_certificate_on_the_clients_hop() {
    let mut source = example_source();
    source.edit_json(&example_config().join("phoenix_vm_configs.json"), |v| {
        v["vms"][1]["traefik_service"]["gateway_tls"] = serde_json::json!("passthrough")
    });
    let model = phoenix_model::check(&example_config(), &source).model.unwrap();
    let flows = judge(&model);
    let client = hop(&flows, "route:portainer.phoenix.thinkheads.ai:host", 0).tls.clone().unwrap();
    assert!(client.summary.starts_with("TLS passed through the gateway, terminated at Traefik"), "{client:?}");
    assert!(client.summary.contains("LXC 102 (traefik) presents certificate traefik"), "{client:?}");
    let relay = hop(&flows, "route:portainer.phoenix.thinkheads.ai:host", 1).tls.clone().unwrap();
    assert!(relay.summary.starts_with("TLS the client's TLS stream, passed through untouched"), "{relay:?}");
}

#[test]
fn a_name_cannot_resolve_when_the_client_cannot_reach_the_dns_server() {
    let mut source = example_source();
    let vms = example_config().join("phoenix_vm_configs.json");
    source.edit_json(&vms, |value| {
        let vm = value["vms"].as_array_mut().unwrap().iter_mut().find(|v| v["vmid"] == 1001).unwrap();
        vm["firewall"]["policy_out"] = serde_json::json!("DROP");
    });
    let model = phoenix_model::check(&example_config(), &source).model.unwrap();
    let flows = judge(&model);
    let agent =
        flows.iter().flat_map(|f| &f.hops).find(|h| h.hop.name.as_deref() == Some("portainer-agent.internal.thinkheads.ai")).unwrap();
    let dns = agent.dns.as_ref().unwrap();
    assert_eq!(dns.status, Status::Fail);
    assert!(dns.summary.contains("cannot ask the DNS server 10.0.0.13 (UDP/53)"), "{}", dns.summary);
    assert!(dns.summary.contains("policy_out: DROP"), "{}", dns.summary);
}
