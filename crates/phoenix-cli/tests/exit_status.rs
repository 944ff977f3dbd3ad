//! The exit-status table, command by command: one case of each way a command can end.
//! 0 ok; 1 the thing checked is wrong (configuration errors, a failed hop, a certificate that
//! needs renewal, a lab that is not up when asked about); 2 phoenix could not run (bad
//! arguments, an unknown code or file, a missing folder, an unreachable system); 3 differs
//! (`render --diff`). Kinds a command cannot end with are left out.

use phoenix_sim::portainer::FakePortainer;
use phoenix_sim::pve_server::SimPve;
use std::path::PathBuf;

const EXAMPLE: &str = "examples/homelab/etc";
const REFERENCE: &str = "../shared/reference/phoenix-2025-10-27/etc";

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("phoenix-exit-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn code(args: &[&str]) -> Option<i32> {
    let mut command = phoenix_testkit::cli_command(env!("CARGO_BIN_EXE_phoenix"), Some("test-value"));
    command.args(args).env_remove("PHOENIX_PVE_TOKEN").stdin(std::process::Stdio::null());
    command.output().expect("phoenix runs").status.code()
}

#[test]
fn every_command_ends_with_the_status_its_kind_gives() {
    let empty = scratch("empty");
    let empty = empty.to_str().unwrap();
    let units = scratch("units");
    let units = units.to_str().unwrap();
    let cases: &[(&[&str], i32)] = &[
        (&["validate", "--config", EXAMPLE], 0),
        (&["validate", "--config", REFERENCE], 1),
        (&["validate", "--config", "/nonexistent/etc"], 2),
        (&["render", "--config", EXAMPLE], 0),
        (&["render", "--config", REFERENCE], 1),
        (&["render", "--config", EXAMPLE, "--diff", "/nonexistent/tree"], 2),
        (&["render", "--config", EXAMPLE, "--diff", empty], 3),
        (&["assess", "--config", EXAMPLE], 0),
        (&["assess", "--config", EXAMPLE, "--trace", "host", "101", "9999/tcp"], 1),
        (&["assess", "--config", EXAMPLE, "--trace", "host", "99999", "443"], 2),
        (&["sync", "all", "--config", REFERENCE, "--dry-run"], 1),
        (&["sync", "all", "--config", EXAMPLE, "--dry-run"], 2),
        (&["letsgo", "--config", REFERENCE, "--dry-run"], 1),
        (&["letsgo", "--config", EXAMPLE, "--dry-run"], 2),
        (&["status", "--config", REFERENCE], 1),
        (&["status", "--config", EXAMPLE], 2),
        (&["start", "101", "--config", REFERENCE, "--dry-run"], 1),
        (&["stop", "101", "--config", EXAMPLE, "--dry-run"], 2),
        (&["delete", "101", "--config", EXAMPLE, "--dry-run"], 2),
        (&["create", "--config", EXAMPLE], 2),
        (&["lab", "down", "--name", "exit-nosuch"], 0),
        (&["lab", "status", "--name", "exit-nosuch"], 1),
        (&["lab", "check", "--name", "exit-nosuch", "--config", EXAMPLE], 2),
        (&["certs", "timer", "--config", EXAMPLE, "--dir", units], 0),
        (&["certs", "status", "--config", EXAMPLE, "--certs", empty], 1),
        (&["certs", "status", "--config", EXAMPLE, "--certs", "/nonexistent/store"], 2),
        (&["explain", "PHX-FW-009"], 0),
        (&["explain", "PHX-NOPE-001"], 2),
        (&["graph", "--config", EXAMPLE], 0),
        (&["graph", "--config", "/nonexistent/etc"], 2),
        (&["schema", "phoenix_lxc_configs.json"], 0),
        (&["schema", "nosuch.json"], 2),
        (&["completions", "bash"], 0),
        (&["completions", "nosh"], 2),
        (&["man"], 0),
        (&["man", "--out", "/proc/phoenix-no-such-folder"], 2),
        (&["--version"], 0),
        (&["no-such-command"], 2),
    ];
    let wrong: Vec<String> = cases
        .iter()
        .filter_map(|(args, expected)| {
            let got = code(args);
            (got != Some(*expected)).then(|| format!("phoenix {}: exit {got:?}, expected {expected}", args.join(" ")))
        })
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// `sync`'s ok case needs a Proxmox VE and a Portainer: the simulators, on loopback.
#[tokio::test]
async fn a_dry_run_against_the_simulators_is_ok() {
    let source = phoenix_testkit::example_source();
    let model = phoenix_model::check(&phoenix_testkit::example_config(), &source).model.unwrap();
    let rendered = phoenix_core::render::render_all(&model);
    let pve = SimPve::serve(phoenix_lab::deployed::simulated_node(&model, &rendered).unwrap()).await;
    let portainer = FakePortainer::start(None).await;
    let root = scratch("sync");
    phoenix_testkit::pki::write_manifest_store(&root.join("host/var/lib/phoenix/certs"), &model).unwrap();
    let mut command = tokio::process::Command::from(phoenix_testkit::cli_command(env!("CARGO_BIN_EXE_phoenix"), Some("test-value")));
    command.args(["sync", "firewall", "--dry-run", "--config", EXAMPLE, "--root", root.to_str().unwrap()]);
    command.args(["--pve-url", &pve.url(), "--pve-ca", pve.server.ca_file.to_str().unwrap()]);
    command.args(["--portainer-url", &portainer.server.url(), "--portainer-ca", portainer.server.ca_file.to_str().unwrap()]);
    command.env("PHOENIX_PVE_TOKEN", &pve.token).stdin(std::process::Stdio::null());
    let output = command.output().await.expect("phoenix runs");
    let _ = std::fs::remove_dir_all(&root);
    assert_eq!(output.status.code(), Some(0), "{}", phoenix_testkit::output_text(&output));
}
