//! The static check of every certificate's ACME challenge (issue 18): on the bundled example
//! (dns-01 through the node's dnsmasq, the default there) and on it with the Portainer
//! certificate over http-01 through the gateway, every identifier has a path Step-CA can
//! complete; each way the path can break (the firewall from Step-CA, the gateway's relay to
//! phoenix, the DNS answer, nobody answering at an address, a wildcard over http-01, dns-01
//! where phoenix does not write the records) is an error naming that hop. The rendered gateway
//! relays exactly the http-01 names.

use phoenix_core::analyze::challenges::diagnostics;
use phoenix_model::diag::Diagnostic;
use phoenix_testkit::{example_config, example_source, MemorySource};
use serde_json::{json, Value};

const MANIFEST: &str = "certificate-manifest.json";
const HYPERVISOR: &str = "phoenix_hypervisor_config.json";
const LXC: &str = "phoenix_lxc_configs.json";

fn checked_with(edits: &[(&str, &dyn Fn(&mut Value))]) -> phoenix_model::Checked {
    let mut source: MemorySource = example_source();
    for (file, edit) in edits {
        source.edit_json(&example_config().join(file), |v| edit(v));
    }
    phoenix_model::check(&example_config(), &source)
}

fn model_with(edits: &[(&str, &dyn Fn(&mut Value))]) -> phoenix_model::Model {
    checked_with(edits).model.expect("a model")
}

/// The example with certificate `portainer` (portainer.internal and portainer.phoenix, both
/// pointing at the gateway) over http-01, the host open on port 80 to the gateway's relay.
fn relayed(edits: &[(&str, &dyn Fn(&mut Value))]) -> phoenix_model::Model {
    let http01 = |v: &mut Value| v[3]["challenge"] = json!("http-01");
    let host_rule = |v: &mut Value| {
        let rules = v["firewall"]["global_firewall_rules"].as_array_mut().unwrap();
        rules.push(json!({ "type": "in", "action": "ACCEPT", "source": "10.0.0.153", "proto": "tcp", "port": "80", "comment": "the gateway's ACME relay" }));
    };
    let mut all: Vec<(&str, &dyn Fn(&mut Value))> = vec![(MANIFEST, &http01), (HYPERVISOR, &host_rule)];
    all.extend_from_slice(edits);
    model_with(&all)
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
fn the_bundled_example_completes_every_challenge_over_dns01() {
    let model = model_with(&[]);
    assert!(model.certificates.iter().all(|c| c.challenge == phoenix_model::model::AcmeChallenge::Dns01), "the default on the node");
    assert!(diagnostics(&model).is_empty(), "{:#?}", messages(&diagnostics(&model)));
    let flows = phoenix_core::analyze::flows::flows(&model, &phoenix_core::edge::edge(&model));
    let agent = flows.iter().find(|f| f.id == "challenge:portainer-agent:portainer-agent.internal.thinkheads.ai").expect("its flow");
    assert_eq!(agent.hops[0].port, 53);
    assert_eq!(agent.hops[0].to, phoenix_core::analyze::firewall::Endpoint::Host);
}

#[test]
fn http01_through_the_gateway_completes_when_the_host_opens_the_relay() {
    let model = relayed(&[]);
    assert!(diagnostics(&model).is_empty(), "{:#?}", messages(&diagnostics(&model)));
    // The relay runs once the gateway runs phoenix's nginx.conf, deployed after certificates.
    let flows = judged(&model);
    let flow = flows.iter().find(|f| f.id == "challenge:portainer:portainer.internal.thinkheads.ai").expect("its flow");
    let caveat = flow.hops[0].answer.as_ref().expect("a caveat");
    assert_eq!(caveat.status, phoenix_core::analyze::verdict::Status::Warning);
    assert!(caveat.summary.contains("a first issuance cannot pass through it"), "{}", caveat.summary);
    // phoenix's own order: the host reaches Step-CA's ACME directory.
    let order = flows.iter().find(|f| f.id == "acme:host").expect("phoenix's order");
    assert_eq!(order.status, phoenix_core::analyze::verdict::Status::Ok, "{:#?}", order.hops[0].firewall);
}

#[test]
fn a_firewall_that_blocks_step_ca_at_the_gateway_names_that_hop() {
    // The gateway's rule for 80 and 443 keeps only 443.
    let found = diagnostics(&relayed(&[(LXC, &|v: &mut Value| {
        let rules = v["lxc_configs"]["101"]["firewall"]["rules"].as_array_mut().unwrap();
        let web = rules.iter_mut().find(|r| r["port"] == "80,443").expect("the gateway's web rule");
        web["port"] = json!("443");
    })]));
    let hit = about(&found, "portainer.internal.thinkheads.ai");
    assert!(hit.message.contains("hop 1 (Step-CA fetches http://portainer.internal.thinkheads.ai/"), "{}", hit.message);
    assert!(hit.message.contains("blocked (tcp/80)"), "{}", hit.message);
}

#[test]
fn a_host_firewall_that_blocks_the_gateways_relay_names_the_relay() {
    let found = diagnostics(&model_with(&[(MANIFEST, &|v: &mut Value| v[3]["challenge"] = json!("http-01"))]));
    let hit = about(&found, "portainer.phoenix.thinkheads.ai");
    assert!(hit.message.contains("hop 2 (the gateway relays the challenge to phoenix's responder"), "{}", hit.message);
    assert!(hit.message.contains("blocked (tcp/80) by the IN of the host chain"), "{}", hit.message);
}

#[test]
fn a_name_that_points_elsewhere_names_the_dns_answer() {
    let found = diagnostics(&relayed(&[(HYPERVISOR, &|v: &mut Value| {
        let zone = &mut v["dns_server"]["authoritative_zones"][1]["records"];
        let record = zone.as_array_mut().unwrap().iter_mut().find(|r| r["hostname"] == "portainer").unwrap();
        record["ip_internal"] = json!("10.0.0.12");
    })]));
    let hit = about(&found, "portainer.internal.thinkheads.ai");
    assert!(hit.message.contains("resolves to 10.0.0.12 (LXC 102 (traefik)) instead of 10.0.0.153"), "{}", hit.message);
}

#[test]
fn an_address_of_a_guest_that_relays_nothing_is_a_dead_end() {
    // The users' manifest: the Portainer VM's own address over http-01.
    let found = diagnostics(&relayed(&[(MANIFEST, &|v: &mut Value| {
        v[3]["sans"].as_array_mut().unwrap().push(json!("10.0.0.111"));
    })]));
    let hit = about(&found, "10.0.0.111");
    assert!(hit.message.contains("nothing at 10.0.0.111:80 answers phoenix's challenge"), "{}", hit.message);
    assert!(hit.message.contains("portainer (VM 1001"), "{}", hit.message);
}

#[test]
fn dns01_where_phoenix_does_not_write_the_records_is_a_dead_end() {
    // Written out: with DNS in a guest the default would be http-01.
    let found = diagnostics(&model_with(&[
        (HYPERVISOR, &|v: &mut Value| v["edge"] = json!({ "dns_guest": 103 })),
        (MANIFEST, &|v: &mut Value| v[4]["challenge"] = json!("dns-01")),
    ]));
    let hit = about(&found, "portainer-agent.internal.thinkheads.ai");
    assert!(hit.message.contains("phoenix writes challenge records only into the Proxmox host's dnsmasq"), "{}", hit.message);
}

fn judged(model: &phoenix_model::Model) -> Vec<phoenix_core::analyze::assess::FlowVerdict> {
    phoenix_core::analyze::assess::assess(
        model,
        &phoenix_core::edge::edge(model),
        &phoenix_core::analyze::firewall::FirewallState::from_rendered(&phoenix_core::render::render_all(model), model),
        &Default::default(),
    )
}

#[test]
fn a_wildcard_over_http01_is_a_dead_end_in_assess_and_phx_cert_004_in_validate() {
    let model = relayed(&[(MANIFEST, &|v: &mut Value| {
        v[3]["sans"].as_array_mut().unwrap().push(json!("*.internal.thinkheads.ai"));
    })]);
    let flows = judged(&model);
    let wildcard = flows.iter().find(|f| f.id == "challenge:portainer:*.internal.thinkheads.ai").expect("the wildcard's flow");
    let answer = wildcard.hops[0].answer.as_ref().expect("a dead end");
    assert!(answer.summary.contains("proves only over dns-01"), "{}", answer.summary);
    assert!(diagnostics(&model).iter().all(|d| !d.message.contains("*.")), "left to PHX-CERT-004");
    let checked = checked_with(&[(MANIFEST, &|v: &mut Value| {
        v[3]["challenge"] = json!("http-01");
        v[3]["sans"].as_array_mut().unwrap().push(json!("*.internal.thinkheads.ai"));
    })]);
    assert!(checked.diagnostics.iter().any(|d| d.code == "PHX-CERT-004" && d.message.contains("wildcard")), "{:#?}", checked.diagnostics);
}

#[test]
fn the_gateways_own_certificate_over_its_relay_is_a_warning_about_the_first_issuance() {
    let model = relayed(&[(MANIFEST, &|v: &mut Value| v[0]["challenge"] = json!("http-01"))]);
    let flows = judged(&model);
    let own = flows.iter().find(|f| f.id == "challenge:gateway:gateway.internal.thinkheads.ai").expect("its flow");
    let answer = own.hops[0].answer.as_ref().expect("a caveat");
    assert_eq!(answer.status, phoenix_core::analyze::verdict::Status::Warning);
    assert!(answer.summary.contains("first issuance cannot pass through the gateway's relay"), "{}", answer.summary);
    assert!(diagnostics(&model).is_empty(), "a warning, not an error: {:#?}", messages(&diagnostics(&model)));
}

#[test]
fn the_gateway_relays_exactly_the_http01_identifiers() {
    let servers = |model: &phoenix_model::Model| phoenix_core::render::nginx::http_servers(model, &phoenix_core::edge::edge(model));
    assert!(!servers(&model_with(&[])).contains("@traefik_acme"), "nothing to relay over dns-01");
    let conf = servers(&relayed(&[]));
    let relay = conf.split("server {").nth(1).expect("the relay server");
    let names = relay.lines().find_map(|l| l.trim().strip_prefix("server_name ")).unwrap().trim_end_matches(';');
    assert_eq!(names, "portainer.internal.thinkheads.ai portainer.phoenix.thinkheads.ai");
    assert!(relay.contains("proxy_pass http://10.0.0.13:80;"), "{relay}");
    assert!(relay.contains("error_page 404 502 504 = @traefik_acme;"), "{relay}");
}

#[test]
fn a_guest_serving_its_own_web_root_answers_http01_once_step_ca_reaches_its_port_80() {
    // The agent's certificate (portainer-agent.internal points at VM 1002) from VM 1002's web root.
    let webroot = |v: &mut Value| v[4]["http01_webroot"] = json!("/var/www/html");
    let blocked = diagnostics(&model_with(&[(MANIFEST, &webroot)]));
    let hit = about(&blocked, "portainer-agent.internal.thinkheads.ai");
    assert!(hit.message.contains("from the guest's own web server"), "{}", hit.message);
    assert!(hit.message.contains("blocked (tcp/80) by the IN of VM 1002"), "{}", hit.message);
    let open = |v: &mut Value| {
        let agent = v["vms"].as_array_mut().unwrap().iter_mut().find(|g| g["vmid"] == 1002).unwrap();
        let rule = json!({ "type": "in", "action": "ACCEPT", "source": "10.0.0.10", "proto": "tcp", "port": "80", "comment": "Step-CA's http-01" });
        agent["firewall"]["rules"].as_array_mut().unwrap().push(rule);
    };
    let model = model_with(&[(MANIFEST, &webroot), ("phoenix_vm_configs.json", &open)]);
    assert!(diagnostics(&model).is_empty(), "{:#?}", messages(&diagnostics(&model)));
    let relay = phoenix_core::render::nginx::http_servers(&model, &phoenix_core::edge::edge(&model));
    assert!(!relay.contains("portainer-agent"), "the gateway relays nothing for it");
}

#[test]
fn step_ca_resolving_elsewhere_is_a_dead_end_for_every_name() {
    let found = diagnostics(&model_with(&[(LXC, &|v: &mut Value| {
        v["lxc_configs"]["103"]["network_config"]["nameservers"] = json!("1.1.1.1");
    })]));
    let hit = about(&found, "portainer-agent.internal.thinkheads.ai");
    assert!(hit.message.contains("Step-CA's guest resolves through 1.1.1.1, not phoenix's DNS server 10.0.0.13"), "{}", hit.message);
}

/// A name that points at the Proxmox host is answered there by phoenix's responders: http-01
/// on port 80, tls-alpn-01 on 443, each only once the host lets Step-CA in.
#[test]
fn names_pointing_at_the_host_are_answered_there_once_step_ca_may_reach_it() {
    let at_host = |v: &mut Value| {
        let zone = &mut v["dns_server"]["authoritative_zones"][1]["records"];
        let record = zone.as_array_mut().unwrap().iter_mut().find(|r| r["hostname"] == "portainer-agent").unwrap();
        record["ip_internal"] = json!("10.0.0.13");
    };
    for (challenge, port) in [("http-01", "80"), ("tls-alpn-01", "443")] {
        let written = move |v: &mut Value| v[4]["challenge"] = json!(challenge);
        let blocked = diagnostics(&model_with(&[(HYPERVISOR, &at_host), (MANIFEST, &written)]));
        let hit = about(&blocked, "portainer-agent.internal.thinkheads.ai");
        assert!(hit.message.contains(&format!("blocked (tcp/{port}) by the IN of the host chain")), "{challenge}: {}", hit.message);
        let open = move |v: &mut Value| {
            at_host(v);
            let rule = json!({ "type": "in", "action": "ACCEPT", "source": "10.0.0.10", "proto": "tcp", "port": port, "comment": "Step-CA validates" });
            v["firewall"]["global_firewall_rules"].as_array_mut().unwrap().push(rule);
        };
        let model = model_with(&[(HYPERVISOR, &open), (MANIFEST, &written)]);
        assert!(diagnostics(&model).is_empty(), "{challenge}: {:#?}", messages(&diagnostics(&model)));
    }
}
