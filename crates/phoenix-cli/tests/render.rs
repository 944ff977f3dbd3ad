//! `phoenix render` end to end: the listing, --out writes a tree laid out as on the real
//! system, --diff against it is silent until a file changes (then exit 3 with a unified diff),
//! and a configuration with errors is refused unless --allow-errors.

use std::path::PathBuf;
use std::process::Output;

fn phoenix(args: &[&str]) -> Output {
    phoenix_testkit::cli_command(env!("CARGO_BIN_EXE_phoenix"), Some("x")).args(args).output().expect("phoenix runs")
}

/// Writes test-CA certificates for every entry of the example's manifest into `dir`, with
/// `root_ca.crt`; `include_ca` entries carry the root after the leaf when `chains` is set.
fn write_example_certs(dir: &std::path::Path, ca: &phoenix_testkit::pki::TestCa, chains: bool) {
    use phoenix_testkit::pki::Usage;
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("root_ca.crt"), &ca.cert_pem).unwrap();
    let entries: [(&str, &[&str], Usage, bool); 5] = [
        (
            "gateway",
            &[
                "gateway.internal.thinkheads.ai",
                "portainer.phoenix.thinkheads.ai",
                "qdrant.phoenix.thinkheads.ai",
                "portainer.internal.thinkheads.ai",
                "qdrant.internal.thinkheads.ai",
                "10.0.0.153",
            ],
            Usage::Server,
            true,
        ),
        (
            "traefik",
            &[
                "traefik.internal.thinkheads.ai",
                "portainer.phoenix.thinkheads.ai",
                "qdrant.phoenix.thinkheads.ai",
                "portainer.internal.thinkheads.ai",
                "qdrant.internal.thinkheads.ai",
                "10.0.0.12",
            ],
            Usage::Server,
            true,
        ),
        ("traefik-client", &["traefik.internal.thinkheads.ai"], Usage::Client, false),
        ("portainer", &["portainer.internal.thinkheads.ai", "portainer.phoenix.thinkheads.ai", "10.0.0.111"], Usage::Server, true),
        ("portainer-agent", &["portainer-agent.internal.thinkheads.ai", "10.0.0.102"], Usage::Server, true),
    ];
    for (name, names, usage, include_ca) in entries {
        let leaf = ca.issue(names, usage);
        let pem = if chains && include_ca { format!("{}{}", leaf.cert_pem, ca.cert_pem) } else { leaf.cert_pem };
        std::fs::write(dir.join(format!("{name}.crt")), pem).unwrap();
        std::fs::write(dir.join(format!("{name}.key")), leaf.key_pem).unwrap();
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("phoenix-render-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn out_then_diff_round_trips_and_detects_drift() {
    let dir = scratch("tree");
    let out = phoenix(&["render", "--config", "examples/homelab/etc", "--out", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let cluster = dir.join("host/etc/pve/firewall/cluster.fw");
    assert!(cluster.exists());
    assert!(dir.join("guest-101/etc/nginx/nginx.conf").exists());
    assert!(dir.join("guest-102/etc/traefik/dynamic/phoenix.yml").exists());

    let same = phoenix(&["render", "--config", "examples/homelab/etc", "--diff", dir.to_str().unwrap()]);
    assert_eq!(same.status.code(), Some(0));
    assert!(same.stdout.is_empty());

    let text = std::fs::read_to_string(&cluster).unwrap().replace("enable: 1", "enable: 0");
    std::fs::write(&cluster, text).unwrap();
    std::fs::remove_file(dir.join("guest-102/etc/traefik/traefik.yml")).unwrap();
    let drift = phoenix(&["render", "--config", "examples/homelab/etc", "--diff", dir.to_str().unwrap()]);
    let diff = String::from_utf8(drift.stdout).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(drift.status.code(), Some(3));
    assert!(diff.contains("--- deployed/host/etc/pve/firewall/cluster.fw"), "{diff}");
    assert!(diff.contains("-enable: 0\n+enable: 1\n"), "{diff}");
    assert!(diff.contains("+++ rendered/guest-102/etc/traefik/traefik.yml"), "{diff}");
}

#[test]
fn the_listing_names_every_file_with_its_commands() {
    let output = phoenix(&["render", "--config", "examples/homelab/etc"]);
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("/etc/dnsmasq.d/phoenix.conf") && text.contains("validate: dnsmasq --test"));
    assert!(text.contains("guest 101  /etc/nginx/nginx.conf") && text.contains("validate: nginx -t  reload: systemctl reload nginx"));
    assert!(text.contains("guest 1002 net0: virtio=52:54:00:AA:10:02,bridge=vmbr0,firewall=1"));
}

#[test]
fn a_configuration_with_errors_is_not_rendered_unless_asked() {
    let reference = "../shared/reference/phoenix-2025-10-27/etc";
    let dir = scratch("refused");
    let refused = phoenix(&["render", "--config", reference, "--out", dir.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(!dir.exists(), "nothing is written for a configuration with errors");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--allow-errors"));
    let forced = phoenix(&["render", "--config", reference, "--allow-errors", "--out", dir.to_str().unwrap()]);
    assert_eq!(forced.status.code(), Some(0));
    assert!(dir.join("host/etc/pve/firewall/cluster.fw").exists());
    // The errors it rendered despite are counted (the reference has 14).
    let said = String::from_utf8_lossy(&forced.stderr);
    assert!(said.contains("rendering despite 14 error(s) in the configuration (--allow-errors)"), "{said}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn diff_against_a_missing_folder_says_so_instead_of_listing_every_file_as_new() {
    let output = phoenix(&["render", "--config", "examples/homelab/etc", "--diff", "/nonexistent/deployed"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty(), "no diff is printed");
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("/nonexistent/deployed does not exist: there is nothing to compare with"), "{said}");
    assert!(said.contains("hint: "), "{said}");
}

#[test]
fn assess_exit_codes_and_json() {
    let example = phoenix(&["assess", "--config", "examples/homelab/etc", "--format", "json"]);
    assert_eq!(example.status.code(), Some(0), "{}", String::from_utf8_lossy(&example.stderr));
    let value: serde_json::Value = serde_json::from_slice(&example.stdout).unwrap();
    assert_eq!(value["schema_version"], 1);
    assert_eq!(value["summary"]["fail"], 0);
    let reference = phoenix(&["assess", "--config", "../shared/reference/phoenix-2025-10-27/etc", "--format", "human"]);
    assert_eq!(reference.status.code(), Some(1), "the reference fails");
    assert!(String::from_utf8_lossy(&reference.stdout).contains("FAIL"));
}

#[test]
fn assess_judges_a_deployed_tree() {
    let dir = scratch("deployed");
    std::fs::create_dir_all(dir.join("firewall")).unwrap();
    // A cluster with the firewall on but no guest files: nothing between guests is filtered.
    std::fs::write(dir.join("firewall/cluster.fw"), "[OPTIONS]\n\nenable: 1\n").unwrap();
    let output = phoenix(&["assess", "--config", "examples/homelab/etc", "--deployed", dir.to_str().unwrap(), "--format", "json"]);
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(value["judged"].as_str().unwrap().contains("deployed"));
    assert!(value["summary"]["warning"].as_u64().unwrap() > 0, "unprotected hops are warnings");
    std::fs::write(dir.join("firewall/cluster.fw"), "[OPTIONS]\nenable: 1\n[RULES]\nIN ACCEPT -bogus 1\n").unwrap();
    let broken = phoenix(&["assess", "--config", "examples/homelab/etc", "--deployed", dir.to_str().unwrap()]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(broken.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&broken.stderr).contains("firewall/cluster.fw:4: unknown rule option `-bogus`"),
        "{}",
        String::from_utf8_lossy(&broken.stderr)
    );
}

#[test]
fn assess_trace_walks_one_flow_rule_by_rule() {
    let pass = phoenix(&["assess", "--config", "examples/homelab/etc", "--trace", "102", "1001", "9443/tcp"]);
    assert_eq!(pass.status.code(), Some(0));
    let text = String::from_utf8(pass.stdout).unwrap();
    assert!(text.contains("OUT of LXC 102 (traefik):") && text.contains("IN of VM 1001 (portainer):"), "{text}");
    assert!(
        text.contains("/etc/pve/firewall/1001.fw:9: IN ACCEPT -source 10.0.0.12 -p tcp -dport 9443") && text.contains("-- MATCH"),
        "{text}"
    );
    assert!(text.trim_end().ends_with("PASSES"));
    let blocked = phoenix(&["assess", "--config", "examples/homelab/etc", "--trace", "10.0.0.50", "1001", "9443"]);
    assert_eq!(blocked.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&blocked.stdout).contains("policy_in: DROP"));
    let bad = phoenix(&["assess", "--config", "examples/homelab/etc", "--trace", "nowhere", "1001", "9443/sctp"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("`nowhere` is not `host`, a guest id or an IP address"));
}

#[test]
fn assess_inspects_certificate_files_at_a_given_time() {
    let ca = phoenix_testkit::pki::TestCa::new("phoenix test root");
    let dir = scratch("certs");
    write_example_certs(&dir, &ca, false);
    let certs = dir.to_str().unwrap();
    let today =
        phoenix(&["assess", "--config", "examples/homelab/etc", "--certs", certs, "--now", "2026-11-26T12:00:00Z", "--format", "human"]);
    assert_eq!(today.status.code(), Some(0), "{}", String::from_utf8_lossy(&today.stdout));
    let far =
        phoenix(&["assess", "--config", "examples/homelab/etc", "--certs", certs, "--now", "4100-01-01T00:00:00Z", "--format", "human"]);
    assert_eq!(far.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&far.stdout).contains("has expired"));
    let bad_time = phoenix(&["assess", "--config", "examples/homelab/etc", "--now", "yesterday"]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(bad_time.status.code(), Some(2));
}

#[test]
fn certs_status_reports_installed_files_and_reasons() {
    let ca = phoenix_testkit::pki::TestCa::new("phoenix test root");
    let dir = scratch("status");
    write_example_certs(&dir, &ca, true);
    let certs = dir.to_str().unwrap();
    let ok = phoenix(&["certs", "status", "--config", "examples/homelab/etc", "--certs", certs, "--now", "2026-11-26T12:00:00Z"]);
    let text = String::from_utf8_lossy(&ok.stdout).to_string();
    assert_eq!(ok.status.code(), Some(0), "{text}");
    assert!(text.contains("portainer: ok") && text.contains("key matches") && text.contains("renewal due"), "{text}");
    std::fs::remove_file(dir.join("portainer-agent.crt")).unwrap();
    let missing = phoenix(&["certs", "status", "--config", "examples/homelab/etc", "--certs", certs, "--format", "json"]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(missing.status.code(), Some(1));
    let value: serde_json::Value = serde_json::from_slice(&missing.stdout).unwrap();
    let agent = value["certificates"].as_array().unwrap().iter().find(|c| c["name"] == "portainer-agent").unwrap();
    assert_eq!(agent["reasons"], serde_json::json!(["missing"]));
}
