//! `phoenix certs trust|renew|status|timer` end to end: the binary against a real Pebble on
//! loopback (its names all resolve to 127.0.0.1, the manifest's IP SANs are loopback), guests
//! as folders.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn phoenix(args: &[&str]) -> Output {
    phoenix_testkit::cli_command(env!("CARGO_BIN_EXE_phoenix"), Some("x")).args(args).output().expect("phoenix runs")
}

use phoenix_testkit::output_text as text;

/// The example copied to `dir`, its manifest replaced by one loopback-only certificate.
fn example_with_loopback_manifest(dir: &Path) -> PathBuf {
    let root = phoenix_testkit::workspace_root().join("examples/homelab");
    phoenix_testkit::copy_dir(&root, dir).unwrap();
    let manifest = serde_json::json!([{
        "name": "web", "common_name": "web.lab.phoenix.test", "sans": ["127.0.0.1"],
        "guest_id": 101, "guest_type": "lxc", "owner": "root:root", "include_ca": true,
        "cert_path": "/etc/nginx/ssl/web.crt", "key_path": "/etc/nginx/ssl/web.key"
    }]);
    std::fs::write(dir.join("etc/certificate-manifest.json"), serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
    dir.join("etc")
}

#[tokio::test]
async fn trust_then_renew_then_status_then_timer() {
    let pebble = phoenix_testkit::pebble::Pebble::start("cli", &[]);
    let work = std::env::temp_dir().join(format!("phoenix-cli-certs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    let config = example_with_loopback_manifest(&work.join("config"));
    let config = config.to_str().unwrap();
    let store = work.join("store");
    let store = store.to_str().unwrap();
    let guests = work.join("guests");
    let guests = guests.to_str().unwrap();
    let root_file = work.join("pebble-root.pem");
    std::fs::write(&root_file, pebble.issuing_root().await).unwrap();
    let trust_file = work.join("host-trust/phoenix-root-ca.crt");

    // A file that is not a CA is refused, and nothing is written.
    let not_a_root = work.join("leaf.pem");
    let leaf = phoenix_testkit::pki::TestCa::new("x").issue(&["a.test"], phoenix_testkit::pki::Usage::Server);
    std::fs::write(&not_a_root, leaf.cert_pem).unwrap();
    let refused = phoenix(&["certs", "trust", "--config", config, "--certs", store, "--root", not_a_root.to_str().unwrap(), "--no-update"]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(text(&refused).contains("is not a CA certificate"));
    assert!(!Path::new(store).exists());

    let trusted = phoenix(&[
        "certs",
        "trust",
        "--config",
        config,
        "--certs",
        store,
        "--root",
        root_file.to_str().unwrap(),
        "--trust-file",
        trust_file.to_str().unwrap(),
        "--guests-root",
        guests,
        "--no-update",
    ]);
    assert_eq!(trusted.status.code(), Some(0), "{}", text(&trusted));
    assert!(trust_file.is_file() && Path::new(store).join("root_ca.crt").is_file());
    // The gateway (101) and Traefik (102) verify upstreams against this root.
    for guest in ["101", "102"] {
        assert!(
            Path::new(guests).join(format!("guest-{guest}")).join("usr/local/share/ca-certificates/phoenix-root-ca.crt").is_file(),
            "guest {guest}"
        );
    }

    // Before renewal, status says missing (exit 1).
    let before = phoenix(&["certs", "status", "--config", config, "--certs", store]);
    assert_eq!(before.status.code(), Some(1));
    assert!(text(&before).contains("web: needs renewal: missing"), "{}", text(&before));

    let http01 = pebble.http01.to_string();
    let acme = [
        "--acme-directory",
        pebble.directory.as_str(),
        "--acme-root",
        pebble.server_root.to_str().unwrap(),
        "--http01-listen",
        http01.as_str(),
        "--guests-root",
        guests,
    ];
    let unknown = phoenix(&[&["certs", "renew", "--config", config, "--certs", store], &acme[..], &["nosuch"]].concat());
    assert_eq!(unknown.status.code(), Some(2));
    assert!(text(&unknown).contains("not in the certificate manifest: nosuch (known: web)"), "{}", text(&unknown));

    let renewed = phoenix(&[&["certs", "renew", "--config", config, "--certs", store, "--format", "json"], &acme[..]].concat());
    assert_eq!(renewed.status.code(), Some(0), "{}\n{}", text(&renewed), pebble.log());
    let report: serde_json::Value = serde_json::from_slice(&renewed.stdout).unwrap();
    assert_eq!(report["results"][0]["outcome"], "renewed");
    assert_eq!(report["results"][0]["reasons"], serde_json::json!(["missing"]));
    assert!(Path::new(guests).join("guest-101/etc/nginx/ssl/web.key").is_file());
    assert!(!text(&renewed).contains("PRIVATE KEY"), "the key is never printed");

    let after = phoenix(&["certs", "status", "--config", config, "--certs", store]);
    assert_eq!(after.status.code(), Some(0), "{}", text(&after));
    assert!(text(&after).contains("web: ok"));

    // What the guest really has: the chain and key installed in guest 101.
    let installed = phoenix(&["certs", "status", "--config", config, "--certs", store, "--installed", "--guests-root", guests]);
    assert_eq!(installed.status.code(), Some(0), "{}", text(&installed));
    std::fs::write(
        Path::new(guests).join("guest-101/etc/nginx/ssl/web.key"),
        phoenix_testkit::pki::TestCa::new("y").issue(&["z.test"], phoenix_testkit::pki::Usage::Server).key_pem,
    )
    .unwrap();
    let tampered = phoenix(&["certs", "status", "--config", config, "--certs", store, "--installed", "--guests-root", guests]);
    assert_eq!(tampered.status.code(), Some(1));
    assert!(text(&tampered).contains("web: needs renewal: key-mismatch"), "{}", text(&tampered));

    let again = phoenix(&[&["certs", "renew", "--config", config, "--certs", store], &acme[..]].concat());
    assert_eq!(again.status.code(), Some(0));
    assert!(text(&again).contains("web: up to date, renewal due"), "{}", text(&again));

    // The timer units.
    let units = work.join("units");
    let timer = phoenix(&["certs", "timer", "--config", config, "--certs", store, "--dir", units.to_str().unwrap()]);
    assert_eq!(timer.status.code(), Some(0), "{}", text(&timer));
    let service = std::fs::read_to_string(units.join("phoenix-certs-renew.service")).unwrap();
    assert!(service.contains(&format!("certs renew --config {config} --certs {store}")), "{service}");
    // systemd itself checks the units (scripts/test installs systemd-analyze).
    assert!(Path::new("/usr/bin/systemd-analyze").is_file(), "systemd-analyze is missing: install the Debian package systemd");
    {
        let verify = Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(units.join("phoenix-certs-renew.timer"))
            .arg(units.join("phoenix-certs-renew.service"))
            .output()
            .unwrap();
        let complaints = String::from_utf8_lossy(&verify.stderr).to_string();
        assert!(!complaints.contains("phoenix-certs-renew"), "systemd-analyze: {complaints}");
    }
    let _ = std::fs::remove_dir_all(&work);
}
