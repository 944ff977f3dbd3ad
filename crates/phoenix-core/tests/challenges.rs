//! The static check of every certificate's ACME challenge (issue 18): on the bundled example
//! every identifier has a path Step-CA can complete; each way the path can break (the firewall
//! from Step-CA, the gateway's relay to phoenix, the DNS answer, nobody answering at an address,
//! a wildcard over http-01, dns-01 where phoenix does not write the records) is an error naming
//! that hop. The rendered gateway relays exactly the http-01 names.

use phoenix_core::analyze::challenges::diagnostics;
use phoenix_model::diag::Diagnostic;
use phoenix_testkit::{example_config, example_source, MemorySource};
use serde_json::{json, Value};

const MANIFEST: &str = "certificate-manifest.json";
const HYPERVISOR: &str = "phoenix_hypervisor_config.json";
const LXC: &str = "phoenix_lxc_configs.json";

fn model_with(edits: &[(&str, &dyn Fn(&mut Value))]) -> phoenix_model::Model {
    let mut source: MemorySource = example_source();
    for (file, edit) in edits {
        source.edit_json(&example_config().join(file), |v| edit(v));
    }
    let checked = phoenix_model::check(&example_config(), &source);
    checked.model.expect("a model")
}

fn messages(found: &[Diagnostic]) -> Vec<String> {
    found.iter().map(|d| format!("{}: {}", d.code, d.message)).collect()
}

/// The one PHX-CERT-005 about `identifier`.
fn about<'d>(found: &'d [Diagnostic], identifier: &str) -> &'d Diagnostic {
    let hits: Vec<&Diagnostic> = found.iter().filter(|d| d.message.contains(&format!("validate {identifier} of"))).collect();
    assert_eq!(hits.len(), 1, "{:#?}", messages(found));
    assert_eq!(hits[0].code, "PHX-CERT-005");
    hits[0]
}

#[test]
fn the_bundled_example_completes_every_challenge() {
    let model = model_with(&[]);
    assert!(diagnostics(&model).is_empty(), "{:#?}", messages(&diagnostics(&model)));
    let flows = phoenix_core::analyze::flows::flows(&model, &phoenix_core::edge::edge(&model));
    let challenges: Vec<&str> = flows.iter().filter(|f| f.id.starts_with("challenge:")).map(|f| f.id.as_str()).collect();
    assert!(challenges.contains(&"challenge:gateway:10.0.0.153"), "{challenges:?}");
    assert!(challenges.contains(&"challenge:portainer-agent:portainer-agent.internal.thinkheads.ai"), "{challenges:?}");
}

#[test]
fn a_firewall_that_blocks_step_ca_at_the_gateway_names_that_hop() {
    // The gateway's rule for 80 and 443 keeps only 443.
    let found = diagnostics(&model_with(&[(LXC, &|v: &mut Value| {
        let rules = v["lxc_configs"]["101"]["firewall"]["rules"].as_array_mut().unwrap();
        let web = rules.iter_mut().find(|r| r["port"] == "80,443").expect("the gateway's web rule");
        web["port"] = json!("443");
    })]));
    let hit = about(&found, "whoami.internal.thinkheads.ai");
    assert!(hit.message.contains("hop 1 (Step-CA fetches http://whoami.internal.thinkheads.ai/"), "{}", hit.message);
    assert!(hit.message.contains("blocked (tcp/80)"), "{}", hit.message);
}

#[test]
fn a_host_firewall_that_blocks_the_gateways_relay_names_the_relay() {
    let found = diagnostics(&model_with(&[(HYPERVISOR, &|v: &mut Value| {
        let rules = v["firewall"]["global_firewall_rules"].as_array_mut().unwrap();
        rules.retain(|r| r["port"] != "80");
    })]));
    let hit = about(&found, "10.0.0.153");
    assert!(hit.message.contains("hop 2 (the gateway relays the challenge to phoenix's responder"), "{}", hit.message);
    assert!(hit.message.contains("blocked (tcp/80) by the IN of the host chain"), "{}", hit.message);
}

#[test]
fn a_name_that_points_elsewhere_names_the_dns_answer() {
    let found = diagnostics(&model_with(&[(HYPERVISOR, &|v: &mut Value| {
        let zone = &mut v["dns_server"]["authoritative_zones"][1]["records"];
        let whoami = zone.as_array_mut().unwrap().iter_mut().find(|r| r["hostname"] == "whoami").unwrap();
        whoami["ip_internal"] = json!("10.0.0.12");
    })]));
    let hit = about(&found, "whoami.internal.thinkheads.ai");
    assert!(hit.message.contains("resolves to 10.0.0.12 (LXC 102 (traefik)) instead of 10.0.0.153"), "{}", hit.message);
}

#[test]
fn an_address_of_a_guest_that_relays_nothing_is_a_dead_end() {
    // The users' manifest: the Portainer VM's own address over http-01.
    let found = diagnostics(&model_with(&[(MANIFEST, &|v: &mut Value| {
        v[3]["sans"].as_array_mut().unwrap().push(json!("10.0.0.111"));
    })]));
    let hit = about(&found, "10.0.0.111");
    assert!(hit.message.contains("nothing at 10.0.0.111:80 answers phoenix's challenge"), "{}", hit.message);
    assert!(hit.message.contains("portainer (VM 1001"), "{}", hit.message);
}

#[test]
fn dns01_where_phoenix_does_not_write_the_records_is_a_dead_end() {
    let found = diagnostics(&model_with(&[(HYPERVISOR, &|v: &mut Value| {
        v["edge"] = json!({ "dns_guest": 103 });
    })]));
    let hit = about(&found, "portainer-agent.internal.thinkheads.ai");
    assert!(hit.message.contains("phoenix writes challenge records only into the Proxmox host's dnsmasq"), "{}", hit.message);
}

#[test]
fn a_wildcard_over_http01_is_a_dead_end_in_assess_and_phx_cert_004_in_validate() {
    let model = model_with(&[(MANIFEST, &|v: &mut Value| {
        v[0]["sans"].as_array_mut().unwrap().push(json!("*.internal.thinkheads.ai"));
        v[0]["challenge"] = json!("http-01");
    })]);
    let flows = phoenix_core::analyze::assess::assess(
        &model,
        &phoenix_core::edge::edge(&model),
        &phoenix_core::analyze::firewall::FirewallState::from_rendered(&phoenix_core::render::render_all(&model), &model),
        &Default::default(),
    );
    let wildcard = flows.iter().find(|f| f.id == "challenge:gateway:*.internal.thinkheads.ai").expect("the wildcard's flow");
    let answer = wildcard.hops[0].answer.as_ref().expect("a dead end");
    assert!(answer.summary.contains("proves only over dns-01"), "{}", answer.summary);
    assert!(diagnostics(&model).iter().all(|d| !d.message.contains("*.")), "left to PHX-CERT-004");
}

#[test]
fn the_gateway_relays_exactly_the_http01_identifiers() {
    let model = model_with(&[]);
    let conf = phoenix_core::render::nginx::http_servers(&model, &phoenix_core::edge::edge(&model));
    let relay = conf.split("server {").nth(1).expect("the relay server");
    let names = relay.lines().find_map(|l| l.trim().strip_prefix("server_name ")).unwrap().trim_end_matches(';');
    assert_eq!(
        names,
        "gateway.internal.thinkheads.ai portainer.phoenix.thinkheads.ai qdrant.phoenix.thinkheads.ai portainer.internal.thinkheads.ai qdrant.internal.thinkheads.ai whoami.internal.thinkheads.ai 10.0.0.153"
    );
    assert!(relay.contains("proxy_pass http://10.0.0.13:80;"), "{relay}");
    assert!(relay.contains("error_page 404 502 504 = @traefik_acme;"), "{relay}");
    assert!(!names.contains("portainer-agent"), "dns-01 names are not relayed");
}
