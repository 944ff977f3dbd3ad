//! dns-01 for real (issue 18): a real Pebble validates the challenge against a real dnsmasq
//! on loopback, into which phoenix writes the `_acme-challenge` TXT records (its own file,
//! a `dnsmasq --test`, a restart), and from which it removes them afterwards. The names are
//! under `lab.phoenix.test` and nothing but 127.0.0.1 is ever asked.

use phoenix_drivers::acme::dns01::{Dns01, Dns01Settings, TxtRecord};
use phoenix_drivers::acme::{AcmeIssuer, AcmeSettings};
use phoenix_drivers::host::{GuestAccess, HostTarget, SystemRunner};
use phoenix_exec::certs::{read_store, renew, Outcome, RenewRequest};
use phoenix_model::model::{AcmeChallenge, Model};
use phoenix_testkit::dnsmasq::Dnsmasq;
use phoenix_testkit::pebble::Pebble;
use std::path::PathBuf;
use std::time::Duration;

struct Rig {
    dnsmasq: Dnsmasq,
    pebble: Pebble,
    work: PathBuf,
}

impl Rig {
    async fn new(tag: &str) -> Rig {
        let dnsmasq = Dnsmasq::start(tag);
        let pebble = Pebble::start_with_dns(tag, &[], dnsmasq.address);
        let work = std::env::temp_dir().join(format!("phoenix-dns01-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(work.join("store")).unwrap();
        std::fs::write(work.join("store/root_ca.crt"), pebble.issuing_root().await).unwrap();
        Rig { dnsmasq, pebble, work }
    }

    fn dns01(&self, conf_file: PathBuf) -> Dns01Settings {
        Dns01Settings {
            conf_file,
            check: self.dnsmasq.check.clone(),
            restart: self.dnsmasq.restart.clone(),
            resolver: self.dnsmasq.address,
            wait: Duration::from_secs(3),
        }
    }

    async fn renew(&self, model: &Model, dns01: Dns01Settings) -> Outcome {
        let issuer = AcmeIssuer::new(AcmeSettings {
            directory: self.pebble.directory.clone(),
            server_root: Some(self.pebble.server_root.clone()),
            account_file: self.work.join("acme-account.json"),
            http01_listen: self.pebble.http01,
            tls_alpn01_listen: self.pebble.tls_alpn01,
            order_timeout: Duration::from_secs(20),
            dns01: Some(dns01),
        });
        let target = HostTarget::new(GuestAccess::Folders(self.work.join("guests")), SystemRunner);
        let request = RenewRequest {
            store_dir: self.work.join("store").to_string_lossy().into(),
            names: Vec::new(),
            force: true,
            now: now(),
            skip_post_actions: true,
        };
        let report = renew(model, &request, &issuer, &target).await.expect("known names");
        report.results.into_iter().next().expect("one result").outcome
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.work);
    }
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// The example with one wildcard entry for the gateway (no challenge written: dns-01).
fn wildcard_model() -> Model {
    let mut source = phoenix_testkit::example_source();
    let config = phoenix_testkit::example_config();
    let entry = serde_json::json!([{
        "name": "wild",
        "common_name": "internal.lab.phoenix.test",
        "sans": ["*.internal.lab.phoenix.test", "internal.lab.phoenix.test"],
        "guest_id": 101,
        "guest_type": "lxc",
        "cert_path": "/etc/nginx/ssl/wild.crt",
        "key_path": "/etc/nginx/ssl/wild.key",
        "owner": "root:root"
    }]);
    source.edit_json(&config.join("certificate-manifest.json"), |value| *value = entry);
    let checked = phoenix_model::check(&config, &source);
    let errors: Vec<_> = checked.diagnostics.iter().filter(|d| d.severity == phoenix_model::diag::Severity::Error).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let model = checked.model.expect("model");
    assert_eq!(model.certificates[0].challenge, AcmeChallenge::Dns01);
    model
}

fn records_in(file: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(file).unwrap_or_default().lines().filter(|l| l.starts_with("txt-record=")).map(str::to_string).collect()
}

#[tokio::test]
async fn a_wildcard_is_issued_over_dns01_through_a_real_dnsmasq_and_the_records_go_afterwards() {
    let rig = Rig::new("wildcard").await;
    let file = rig.dnsmasq.records_file.clone();
    // A record an interrupted order left behind.
    std::fs::write(&file, "txt-record=_acme-challenge.old.lab.phoenix.test,\"stale\"\n").unwrap();
    let outcome = rig.renew(&wildcard_model(), rig.dns01(file.clone())).await;
    assert!(matches!(outcome, Outcome::Renewed { .. }), "{outcome:#?}\n{}", rig.pebble.log());
    let model = wildcard_model();
    let target = HostTarget::new(GuestAccess::Folders(rig.work.join("guests")), SystemRunner);
    let store = read_store(&model.certificates[0], &rig.work.join("store").to_string_lossy(), &target).await.unwrap();
    let judged = phoenix_core::certificates::status(&model.certificates[0], &store, now());
    let sans = judged.installed.expect("issued").sans;
    assert!(sans.contains(&"*.internal.lab.phoenix.test".to_string()), "{sans:?}");
    assert!(records_in(&file).is_empty(), "the records are removed, the stale one too: {:?}", records_in(&file));
    let log = rig.pebble.log();
    assert!(log.contains(&format!("Using custom DNS resolver for ACME challenges: {}", rig.dnsmasq.address)), "{log}");
    assert_eq!(log.matches("set VALID by completed challenge").count(), 2, "the wildcard and its base name, validated:\n{log}");
}

#[tokio::test]
async fn records_dnsmasq_does_not_read_fail_the_order_before_pebble_is_asked() {
    let rig = Rig::new("unread").await;
    // A file dnsmasq does not include: the records are never answered.
    let elsewhere = rig.work.join("not-included.conf");
    let outcome = rig.renew(&wildcard_model(), rig.dns01(elsewhere.clone())).await;
    let Outcome::Failed { message, restored, .. } = outcome else { panic!("{outcome:#?}") };
    assert!(message.contains("did not answer the TXT record(s) _acme-challenge.internal.lab.phoenix.test"), "{message}");
    assert!(restored, "nothing was installed");
    assert!(records_in(&elsewhere).is_empty(), "removed after the failure");
}

#[tokio::test]
async fn a_configuration_dnsmasq_refuses_puts_the_previous_file_back() {
    let rig = Rig::new("refused").await;
    let file = rig.dnsmasq.records_file.clone();
    std::fs::write(&file, "# before\n").unwrap();
    let dns = Dns01::new(rig.dns01(file.clone()));
    // A value that breaks its line: the next line is no dnsmasq option.
    let bad = TxtRecord { name: "x.lab.phoenix.test".into(), value: "broken\nnot-an-option".into() };
    let error = dns.publish(&[bad]).await.unwrap_err();
    assert!(error.message.contains("checking dnsmasq's configuration") && error.message.contains("the previous file is back"), "{error}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "# before\n");
}
