//! `phoenix certs status` logic: every reason code, produced by files a test CA makes for the
//! bundled example's manifest, and the renewal time at two thirds of the lifetime.

use phoenix_core::certificates::{renewal_time, status, Reason};
use phoenix_core::pki::CertStore;
use phoenix_testkit::pki::{rcgen, Leaf, TestCa, Usage};
use phoenix_testkit::{example_config, example_source};
use std::collections::BTreeMap;

/// 2026-11-26T12:00:00Z.
const NOW: u64 = 1_795_694_400;

fn manifest() -> Vec<phoenix_model::model::Certificate> {
    phoenix_model::check(&example_config(), &example_source()).model.unwrap().certificates
}

fn names_of(cert: &phoenix_model::model::Certificate) -> Vec<String> {
    let mut names = vec![cert.common_name.value.clone()];
    names.extend(cert.sans.iter().map(|s| match &s.value {
        phoenix_model::model::San::Dns(d) => d.clone(),
        phoenix_model::model::San::Ip(ip) => ip.to_string(),
    }));
    names
}

fn leaf_for(ca: &TestCa, cert: &phoenix_model::model::Certificate) -> Leaf {
    let names = names_of(cert);
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let usage = if cert.usage == phoenix_model::model::CertUsage::Client { Usage::Client } else { Usage::Server };
    ca.issue_with(&names, usage, |p| {
        p.not_before = rcgen::date_time_ymd(2026, 11, 25);
        p.not_after = rcgen::date_time_ymd(2026, 11, 28);
    })
}

/// Good files for every entry; `include_ca` entries carry the root after the leaf.
fn installed(ca: &TestCa) -> CertStore {
    let mut files = BTreeMap::from([("root_ca.crt".to_string(), ca.cert_pem.clone())]);
    for cert in manifest() {
        let leaf = leaf_for(ca, &cert);
        let pem = if cert.include_ca { format!("{}{}", leaf.cert_pem, ca.cert_pem) } else { leaf.cert_pem };
        files.insert(format!("{}.crt", cert.name), pem);
        files.insert(format!("{}.key", cert.name), leaf.key_pem);
    }
    CertStore { files }
}

fn reasons(store: &CertStore, name: &str, now: u64) -> Vec<Reason> {
    let cert = manifest().into_iter().find(|c| c.name == name).unwrap();
    status(&cert, store, now).reasons
}

#[test]
fn good_installations_need_nothing_until_two_thirds_of_their_life() {
    let ca = TestCa::new("phoenix test root");
    let store = installed(&ca);
    for cert in manifest() {
        let s = status(&cert, &store, NOW);
        assert!(s.reasons.is_empty(), "{}: {:?}", cert.name, s.reasons);
        let installed = s.installed.unwrap();
        assert!(installed.key_matches);
        assert_eq!(s.renew_at, Some(renewal_time(installed.not_before, installed.not_after)));
    }
    // Valid from the 25th to the 28th: renewal is due on the 27th at midnight.
    let portainer = manifest().into_iter().find(|c| c.name == "portainer").unwrap();
    assert_eq!(status(&portainer, &store, NOW).renew_at, Some(1_795_737_600));
    assert_eq!(reasons(&store, "portainer", 1_795_737_600 + 3600), vec![Reason::ExpiresSoon]);
    assert_eq!(reasons(&store, "portainer", 1_795_824_000 + 3600), vec![Reason::ExpiresSoon], "expired is past due too");
}

#[test]
fn every_reason_code_is_detected() {
    let ca = TestCa::new("phoenix test root");
    let mut store = installed(&ca);
    store.files.remove("portainer-agent.crt");
    assert_eq!(reasons(&store, "portainer-agent", NOW), vec![Reason::Missing]);

    let mut store = installed(&ca);
    store.files.insert("portainer.crt".into(), ca.issue(&["portainer.internal.thinkheads.ai"], Usage::Server).cert_pem);
    assert!(reasons(&store, "portainer", NOW).contains(&Reason::SanMismatch));

    let mut store = installed(&ca);
    let stranger = TestCa::new("the old root");
    let leaf = stranger.issue(&["portainer.internal.thinkheads.ai", "portainer.phoenix.thinkheads.ai", "10.0.0.111"], Usage::Server);
    store.files.insert("portainer.crt".into(), format!("{}{}", leaf.cert_pem, stranger.cert_pem));
    store.files.insert("portainer.key".into(), leaf.key_pem);
    assert_eq!(reasons(&store, "portainer", NOW), vec![Reason::IssuerChanged]);

    let mut store = installed(&ca);
    store.files.insert("traefik-client.key".into(), ca.issue(&["x.example"], Usage::Client).key_pem);
    assert_eq!(reasons(&store, "traefik-client", NOW), vec![Reason::KeyMismatch]);

    let mut store = installed(&ca);
    let leaf = leaf_for(&ca, &manifest().into_iter().find(|c| c.name == "gateway").unwrap());
    store.files.insert("gateway.crt".into(), leaf.cert_pem);
    store.files.insert("gateway.key".into(), leaf.key_pem);
    assert_eq!(reasons(&store, "gateway", NOW), vec![Reason::ChainIncomplete], "include_ca asks for the chain");

    let mut store = installed(&ca);
    store.files.remove("traefik.key");
    assert!(reasons(&store, "traefik", NOW).contains(&Reason::Missing));
    assert_eq!(Reason::ChainIncomplete.code(), "chain-incomplete");
}
