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
    // The names each certificate covers are the manifest's (its common name, then its SANs).
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(phoenix_testkit::example_config().join("certificate-manifest.json")).unwrap())
            .unwrap();
    let covered = |name: &str| -> Vec<String> {
        let entry = manifest.as_array().unwrap().iter().find(|e| e["name"] == name).unwrap_or_else(|| panic!("{name} in the manifest"));
        let sans = entry["sans"].as_array().into_iter().flatten().map(|s| s.as_str().unwrap().to_string());
        std::iter::once(entry["common_name"].as_str().unwrap().to_string()).chain(sans).collect()
    };
    let entries = [
        ("gateway", Usage::Server, true),
        ("traefik", Usage::Server, true),
        ("traefik-client", Usage::Client, false),
        ("portainer", Usage::Server, true),
        ("portainer-agent", Usage::Server, true),
    ];
    for (name, usage, include_ca) in entries {
        let names = covered(name);
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let leaf = ca.issue(&names, usage);
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
    // The errors it rendered despite are counted (the reference has 15).
    let said = String::from_utf8_lossy(&forced.stderr);
    assert!(said.contains("rendering despite 15 error(s) in the configuration (--allow-errors)"), "{said}");
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
    // A line pve-firewall cannot read is skipped with a warning, as pve-firewall skips it;
    // everything else is judged, and the report names the line.
    std::fs::write(dir.join("firewall/cluster.fw"), "[OPTIONS]\nenable: 1\n[RULES]\nIN ACCEPT -bogus 1\nIN ACCEPT -p tcp -dport 8006\n")
        .unwrap();
    let broken = phoenix(&["assess", "--config", "examples/homelab/etc", "--deployed", dir.to_str().unwrap(), "--format", "json"]);
    let human = phoenix(&["assess", "--config", "examples/homelab/etc", "--deployed", dir.to_str().unwrap(), "--format", "human"]);
    let markdown = phoenix(&["assess", "--config", "examples/homelab/etc", "--deployed", dir.to_str().unwrap()]);
    std::fs::remove_dir_all(&dir).unwrap();
    let value: serde_json::Value = serde_json::from_slice(&broken.stdout).unwrap();
    assert_eq!(value["skipped_rules"][0]["path"], "/etc/pve/firewall/cluster.fw");
    assert_eq!(value["skipped_rules"][0]["line"], 4);
    assert!(value["skipped_rules"][0]["reason"].as_str().unwrap().contains("unable to parse rule parameters: -bogus 1"), "{value:#}");
    assert!(value["summary"]["hops"].as_u64().unwrap() > 0, "the rest is judged");
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(text.contains("WARNING /etc/pve/firewall/cluster.fw:4: pve-firewall does not apply this line"), "{text}");
    let text = String::from_utf8_lossy(&markdown.stdout);
    assert!(text.contains("/etc/pve/firewall/cluster.fw:4: pve-firewall does not apply this line"), "{text}");
}

#[test]
fn assess_trace_walks_one_flow_rule_by_rule() {
    let pass = phoenix(&["assess", "--config", "examples/homelab/etc", "--trace", "102", "1001", "9443/tcp"]);
    assert_eq!(pass.status.code(), Some(0));
    let text = String::from_utf8(pass.stdout).unwrap();
    assert!(text.contains("OUT of LXC 102 (traefik), net0:") && text.contains("IN of VM 1001 (portainer), net0:"), "{text}");
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

/// A copy of the example installation (etc/ and persistent-storage/) in `dir`, with its
/// stacks file edited.
fn example_copy(dir: &std::path::Path, edit_stacks: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let status = std::process::Command::new("cp")
        .arg("-r")
        .arg(phoenix_testkit::workspace_root().join("examples/homelab/."))
        .arg(dir)
        .status()
        .unwrap();
    assert!(status.success());
    let stacks = dir.join("etc/phoenix_stacks_config.json");
    let mut value: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&stacks).unwrap()).unwrap();
    edit_stacks(&mut value);
    std::fs::write(&stacks, serde_json::to_string_pretty(&value).unwrap()).unwrap();
    dir.join("etc")
}

/// Issue 13: `render --out DIR` writes below DIR only, whatever a name says and whatever links
/// someone planted in DIR.
#[test]
fn render_out_never_writes_outside_its_folder() {
    let dir = scratch("escape");
    std::fs::create_dir_all(&dir).unwrap();
    let outside = dir.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let config = example_copy(&dir.join("install"), |v| {
        let stack = v["docker_stacks"]["qdrant_service"].take();
        v["docker_stacks"]["../../../outside"] = stack;
    });
    // The guest runs the renamed stack, so the renderer is asked to write it.
    let vms = config.join("phoenix_vm_configs.json");
    std::fs::write(&vms, std::fs::read_to_string(&vms).unwrap().replace("\"qdrant_service\"", "\"../../../outside\"")).unwrap();
    let out = dir.join("out");
    let escaped = phoenix(&["render", "--config", config.to_str().unwrap(), "--allow-errors", "--out", out.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&escaped.stderr);
    assert_eq!(escaped.status.code(), Some(2), "the writer refuses the path even when errors are allowed: {said}");
    assert!(said.contains("climbs out of"), "{said}");
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0, "nothing was written outside the output folder");
    assert!(!out.exists(), "nothing was written at all: every place is checked first");
    let validated = phoenix(&["validate", "--config", config.to_str().unwrap()]);
    let found = String::from_utf8_lossy(&validated.stdout);
    assert!(found.contains("PHX-NAME-001") && found.contains("stack name `../../../outside` cannot name a folder"), "{found}");
    let _ = std::fs::remove_dir_all(&out);

    // A planted link inside the output folder: the write is refused, nothing lands outside.
    let clean = example_copy(&dir.join("clean"), |_| {});
    std::fs::create_dir_all(out.join("host")).unwrap();
    std::os::unix::fs::symlink(&outside, out.join("host/etc")).unwrap();
    let linked = phoenix(&["render", "--config", clean.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(linked.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&linked.stderr).contains("is a symbolic link"), "{}", String::from_utf8_lossy(&linked.stderr));
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0, "nothing was written through the link");

    // schema --out does not write through a planted file link either.
    let schemas = dir.join("schemas");
    std::fs::create_dir_all(&schemas).unwrap();
    std::os::unix::fs::symlink(outside.join("stolen.json"), schemas.join("phoenix_lxc_configs.phoenix.schema.json")).unwrap();
    let schema = phoenix(&["schema", "--out", schemas.to_str().unwrap()]);
    assert_eq!(schema.status.code(), Some(2));
    assert!(!outside.join("stolen.json").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Issue 13: a compose file inside the tree that is a link to a file outside is refused too,
/// and none of its lines is quoted; `--allow-outside-tree` (the user's flag, never the
/// configuration's) lets phoenix read it.
#[test]
fn a_link_out_of_the_installation_is_not_followed_unless_the_user_allows_it() {
    let dir = scratch("link-out");
    let config = example_copy(&dir.join("install"), |_| {});
    let secret = dir.join("secret.yml");
    std::fs::write(&secret, "services:\n  x:\n    image: SECRET-LINE-FROM-OUTSIDE\n    bogus: [\n").unwrap();
    let compose = dir.join("install/persistent-storage/qdrant/docker-compose.yml");
    std::fs::remove_file(&compose).unwrap();
    std::os::unix::fs::symlink(&secret, &compose).unwrap();
    let refused = phoenix(&["validate", "--config", config.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&refused.stdout);
    assert!(said.contains("PHX-PATH-002") && said.contains("through a symbolic link"), "{said}");
    assert!(!said.contains("SECRET-LINE-FROM-OUTSIDE"), "a line of the outside file was quoted:\n{said}");
    let allowed = phoenix(&["validate", "--allow-outside-tree", "--config", config.to_str().unwrap()]);
    assert!(!String::from_utf8_lossy(&allowed.stdout).contains("PHX-PATH-002"), "{}", String::from_utf8_lossy(&allowed.stdout));
    std::fs::remove_dir_all(&dir).unwrap();
}
