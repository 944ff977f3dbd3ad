//! `phoenix certs renew` end to end against a real Pebble on loopback: phoenix's ACME driver
//! answers the challenges Pebble really validates, phoenix-exec installs into guest folders.
//! Every name Pebble validates resolves to 127.0.0.1 (pebble-challtestsrv), and the manifests
//! here only use loopback IP SANs, so nothing leaves the machine.

use phoenix_core::certificates::{status, Reason};
use phoenix_drivers::acme::{AcmeIssuer, AcmeSettings};
use phoenix_drivers::host::{GuestAccess, HostTarget, SystemRunner};
use phoenix_exec::certs::{read_store, renew, Outcome, RenewReport, RenewRequest, Stage};
use phoenix_model::model::Model;
use phoenix_testkit::pebble::Pebble;
use std::net::SocketAddr;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

struct Rig {
    pebble: Pebble,
    work: PathBuf,
}

impl Rig {
    async fn new(tag: &str) -> Rig {
        Rig::with_env(tag, &[]).await
    }

    async fn with_env(tag: &str, env: &[(&str, &str)]) -> Rig {
        let pebble = Pebble::start(tag, env);
        let work = std::env::temp_dir().join(format!("phoenix-renew-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(work.join("store")).unwrap();
        std::fs::write(work.join("store/root_ca.crt"), pebble.issuing_root().await).unwrap();
        Rig { pebble, work }
    }

    fn store(&self) -> String {
        self.work.join("store").to_string_lossy().into_owned()
    }

    fn guest_file(&self, guest: u32, path: &str) -> PathBuf {
        self.work.join("guests").join(format!("guest-{guest}")).join(path.trim_start_matches('/'))
    }

    fn issuer(&self, http01: SocketAddr) -> AcmeIssuer {
        AcmeIssuer::new(AcmeSettings {
            directory: self.pebble.directory.clone(),
            server_root: Some(self.pebble.server_root.clone()),
            account_file: self.work.join("acme-account.json"),
            http01_listen: http01,
            tls_alpn01_listen: self.pebble.tls_alpn01,
            order_timeout: Duration::from_secs(20),
            dns01: None,
        })
    }

    fn target(&self) -> HostTarget<SystemRunner> {
        HostTarget::new(GuestAccess::Folders(self.work.join("guests")), SystemRunner)
    }

    async fn renew(&self, model: &Model, force: bool, now: u64) -> RenewReport {
        self.renew_via(model, force, now, self.pebble.http01).await
    }

    async fn renew_via(&self, model: &Model, force: bool, now: u64, http01: SocketAddr) -> RenewReport {
        let request = RenewRequest { store_dir: self.store(), names: Vec::new(), force, now, skip_post_actions: false };
        renew(model, &request, &self.issuer(http01), &self.target()).await.expect("known names")
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

/// The bundled example with a manifest of loopback-only certificates for guest 101 (the gateway).
fn model_with(manifest: serde_json::Value) -> Model {
    let mut source = phoenix_testkit::example_source();
    let config = phoenix_testkit::example_config();
    source.edit_json(&config.join("certificate-manifest.json"), |value| *value = manifest);
    let checked = phoenix_model::check(&config, &source);
    let errors: Vec<_> = checked.diagnostics.iter().filter(|d| d.severity == phoenix_model::diag::Severity::Error).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    checked.model.expect("model")
}

fn web_entry(extra: serde_json::Value) -> serde_json::Value {
    let mut entry = serde_json::json!({
        "name": "web",
        "common_name": "web.lab.phoenix.test",
        "sans": ["127.0.0.1"],
        "guest_id": 101,
        "guest_type": "lxc",
        "cert_path": "/etc/nginx/ssl/web.crt",
        "key_path": "/etc/nginx/ssl/web.key",
        "owner": "root:root",
        "include_ca": true
    });
    entry.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    entry
}

fn outcome<'r>(report: &'r RenewReport, name: &str) -> &'r Outcome {
    &report.results.iter().find(|r| r.name == name).unwrap_or_else(|| panic!("{name} in {report:#?}")).outcome
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[tokio::test]
async fn issues_installs_and_renews_only_when_due() {
    // Pebble's default: 5 % of good nonces rejected, so the client must retry badNonce (RFC
    // 8555 section 6.5; instant-acme tries three times, so a spurious failure is ~1e-4 per request).
    let rig = Rig::with_env("issue", &[("PEBBLE_WFE_NONCEREJECT", "5")]).await;
    let model = model_with(serde_json::json!([web_entry(serde_json::json!({}))]));
    let report = rig.renew(&model, false, now()).await;
    let Outcome::Renewed { reasons, installed, .. } = outcome(&report, "web") else { panic!("{report:#?}\n{}", rig.pebble.log()) };
    assert_eq!(reasons, &[Reason::Missing]);
    assert_eq!(installed.len(), 4, "store certificate and key, guest certificate and key");

    // The guest's files: the chain (include_ca), the key readable by owner and group only.
    let cert_file = rig.guest_file(101, "/etc/nginx/ssl/web.crt");
    let key_file = rig.guest_file(101, "/etc/nginx/ssl/web.key");
    assert!(read(&cert_file).matches("BEGIN CERTIFICATE").count() >= 2, "leaf and intermediate");
    assert_eq!(std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777, 0o640);
    assert_eq!(std::fs::metadata(&cert_file).unwrap().permissions().mode() & 0o777, 0o644);
    assert_eq!(std::fs::metadata(&key_file).unwrap().uid(), 0);
    let store_key = rig.work.join("store/web.key");
    assert_eq!(std::fs::metadata(&store_key).unwrap().permissions().mode() & 0o777, 0o600);
    let no_leftovers = std::fs::read_dir(key_file.parent().unwrap()).unwrap().count();
    assert_eq!(no_leftovers, 2, "no temporary files left beside the installed ones");

    // status: the issued certificate is clean, and its renewal is due at two thirds.
    let cert = &model.certificates[0];
    let store = read_store(cert, &rig.store(), &rig.target()).await.unwrap();
    let clean = status(cert, &store, now());
    assert!(clean.reasons.is_empty(), "{clean:#?}");
    let installed = clean.installed.clone().unwrap();
    assert!(installed.sans.contains(&"127.0.0.1".to_string()) && installed.sans.contains(&"web.lab.phoenix.test".to_string()));
    assert!(installed.key_matches);
    let renew_at = clean.renew_at.unwrap();
    assert_eq!(renew_at, installed.not_before + (installed.not_after - installed.not_before) * 2 / 3);

    // Not due: nothing is ordered.
    let again = rig.renew(&model, false, now()).await;
    assert_eq!(outcome(&again, "web"), &Outcome::UpToDate { renew_at });

    // At two thirds of the lifetime it renews, with a new key.
    let key_before = read(&store_key);
    let later = rig.renew(&model, false, renew_at as u64 + 1).await;
    let Outcome::Renewed { reasons, .. } = outcome(&later, "web") else { panic!("{later:#?}") };
    assert_eq!(reasons, &[Reason::ExpiresSoon]);
    assert_ne!(read(&store_key), key_before, "a new key");
    let renewed = status(cert, &read_store(cert, &rig.store(), &rig.target()).await.unwrap(), now());
    assert!(renewed.reasons.is_empty());

    // --force renews whatever the status says.
    let forced = rig.renew(&model, true, now()).await;
    assert!(matches!(outcome(&forced, "web"), Outcome::Renewed { forced: true, .. }), "{forced:#?}");
}

#[tokio::test]
async fn a_changed_manifest_is_a_san_mismatch_and_is_reissued() {
    let rig = Rig::new("san").await;
    let before = model_with(serde_json::json!([web_entry(serde_json::json!({}))]));
    assert!(matches!(outcome(&rig.renew(&before, false, now()).await, "web"), Outcome::Renewed { .. }));

    let after = model_with(serde_json::json!([web_entry(serde_json::json!({ "sans": ["127.0.0.1", "api.lab.phoenix.test"] }))]));
    let cert = &after.certificates[0];
    let judged = status(cert, &read_store(cert, &rig.store(), &rig.target()).await.unwrap(), now());
    assert_eq!(judged.reasons, vec![Reason::SanMismatch]);

    let report = rig.renew(&after, false, now()).await;
    let Outcome::Renewed { reasons, .. } = outcome(&report, "web") else { panic!("{report:#?}") };
    assert_eq!(reasons, &[Reason::SanMismatch]);
    let fixed = status(cert, &read_store(cert, &rig.store(), &rig.target()).await.unwrap(), now());
    assert!(fixed.installed.unwrap().sans.contains(&"api.lab.phoenix.test".to_string()));
    assert!(fixed.reasons.is_empty());
}

#[tokio::test]
async fn an_expired_certificate_is_detected_and_replaced() {
    let rig = Rig::new("expiry").await;
    let model = model_with(serde_json::json!([web_entry(serde_json::json!({}))]));
    assert!(matches!(outcome(&rig.renew(&model, false, now()).await, "web"), Outcome::Renewed { .. }));
    let cert = &model.certificates[0];
    let installed = status(cert, &read_store(cert, &rig.store(), &rig.target()).await.unwrap(), now()).installed.unwrap();
    let after_expiry = installed.not_after as u64 + 60;
    assert_eq!(
        status(cert, &read_store(cert, &rig.store(), &rig.target()).await.unwrap(), after_expiry).reasons,
        vec![Reason::ExpiresSoon]
    );
    let report = rig.renew(&model, false, after_expiry).await;
    assert!(matches!(outcome(&report, "web"), Outcome::Renewed { reasons, .. } if reasons == &[Reason::ExpiresSoon]), "{report:#?}");
}

#[tokio::test]
async fn tls_alpn_01_and_client_certificates() {
    let rig = Rig::new("alpn").await;
    let model = model_with(serde_json::json!([
        web_entry(serde_json::json!({ "challenge": "tls-alpn-01" })),
        web_entry(serde_json::json!({
            "name": "web-client", "common_name": "client.lab.phoenix.test", "sans": [], "cert_type": "client", "challenge": "http-01",
            "cert_path": "/etc/nginx/ssl/client.crt", "key_path": "/etc/nginx/ssl/client.key", "include_ca": false
        })),
    ]));
    let report = rig.renew(&model, false, now()).await;
    assert!(matches!(outcome(&report, "web"), Outcome::Renewed { .. }), "{report:#?}\n{}", rig.pebble.log());
    assert!(matches!(outcome(&report, "web-client"), Outcome::Renewed { .. }), "{report:#?}");
    let client = &model.certificates[1];
    let installed = status(client, &read_store(client, &rig.store(), &rig.target()).await.unwrap(), now()).installed.unwrap();
    assert!(installed.eku.contains(&"clientAuth".to_string()), "{installed:#?}");
    // include_ca false: the guest gets the leaf alone; the store keeps the chain.
    assert_eq!(read(&rig.guest_file(101, "/etc/nginx/ssl/client.crt")).matches("BEGIN CERTIFICATE").count(), 1);
    assert!(read(&rig.work.join("store/web-client.crt")).matches("BEGIN CERTIFICATE").count() >= 2);
}

/// The files a renewal may touch, with their contents.
fn snapshot(rig: &Rig) -> Vec<(PathBuf, String)> {
    ["store/web.crt", "store/web.key", "guests/guest-101/etc/nginx/ssl/web.crt", "guests/guest-101/etc/nginx/ssl/web.key"]
        .iter()
        .map(|p| (rig.work.join(p), read(&rig.work.join(p))))
        .collect()
}

/// Issues `web` once and returns its installed files: the state a failed renewal must keep.
async fn installed(rig: &Rig, model: &Model) -> Vec<(PathBuf, String)> {
    assert!(matches!(outcome(&rig.renew(model, false, now()).await, "web"), Outcome::Renewed { .. }));
    snapshot(rig)
}

#[tokio::test]
async fn a_failing_post_renewal_action_restores_the_previous_files() {
    let rig = Rig::new("rollback").await;
    let model = model_with(serde_json::json!([web_entry(serde_json::json!({}))]));
    let before = installed(&rig, &model).await;

    let failing =
        model_with(serde_json::json!([web_entry(serde_json::json!({ "post_renewal_command": "echo reload refused >&2; exit 7" }))]));
    let report = rig.renew(&failing, true, now()).await;
    let Outcome::Failed { stage, message, restored } = outcome(&report, "web") else { panic!("{report:#?}") };
    assert_eq!(*stage, Stage::PostAction);
    assert!(message.contains("reload refused"), "{message}");
    assert!(restored);
    assert_eq!(snapshot(&rig), before, "the previous certificate and key are back");

    // reload_service in a guest that is only a folder cannot run: also rolled back.
    let reload = model_with(serde_json::json!([web_entry(serde_json::json!({ "reload_service": "nginx" }))]));
    let report = rig.renew(&reload, true, now()).await;
    assert!(matches!(outcome(&report, "web"), Outcome::Failed { stage: Stage::PostAction, restored: true, .. }), "{report:#?}");
    assert_eq!(snapshot(&rig), before);
}

#[tokio::test]
async fn a_failed_validation_installs_nothing_and_keeps_the_old_certificate() {
    let rig = Rig::new("invalid").await;
    let model = model_with(serde_json::json!([web_entry(serde_json::json!({}))]));
    let before = installed(&rig, &model).await;
    // phoenix answers on another port than the one Pebble validates: the order becomes invalid.
    let elsewhere: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let report = rig.renew_via(&model, true, now(), elsewhere).await;
    let Outcome::Failed { stage, message, restored } = outcome(&report, "web") else { panic!("{report:#?}") };
    assert_eq!(*stage, Stage::Issue);
    assert!(message.contains("nothing installed"), "{message}");
    assert!(restored);
    assert_eq!(snapshot(&rig), before);
}

#[tokio::test]
async fn the_acme_server_dying_mid_order_installs_nothing() {
    let rig = Rig::new("dies").await;
    let model = model_with(serde_json::json!([web_entry(serde_json::json!({}))]));
    let before = installed(&rig, &model).await;

    // The test, not phoenix, holds the port Pebble validates on. When Pebble's validation
    // connection arrives (the order exists, its challenge is being checked), Pebble is killed.
    let validation = std::net::TcpListener::bind(rig.pebble.http01).expect("Pebble's http-01 port");
    let elsewhere: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let watcher = std::thread::spawn(move || {
        validation.set_nonblocking(true).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            if validation.accept().is_ok() {
                tx.send(()).unwrap();
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    let renewal = rig.renew_via(&model, true, now(), elsewhere);
    let killer = async {
        loop {
            if rx.try_recv().is_ok() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::pin!(renewal);
    let report = tokio::select! {
        report = &mut renewal => report,
        _ = tokio::time::timeout(Duration::from_secs(20), killer) => {
            rig.pebble.kill();
            renewal.await
        }
    };
    watcher.join().unwrap();
    let Outcome::Failed { stage, restored, message } = outcome(&report, "web") else { panic!("{report:#?}") };
    assert_eq!(*stage, Stage::Issue);
    assert!(message.contains("client error"), "the connection to the CA failed, not the validation: {message}");
    assert!(restored);
    assert_eq!(snapshot(&rig), before, "the old certificate is kept");
}
