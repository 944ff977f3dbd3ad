//! The `phoenix` binary end to end: snapshots of every output on the reference configuration
//! and the bundled example, exit codes, and that no secret value ever reaches the output.

use std::path::Path;
use std::process::Output;

const REFERENCE: &str = "../shared/reference/phoenix-2025-10-27/etc";
const EXAMPLE: &str = "examples/homelab/etc";

/// Literal secrets the reference configuration holds (test data for this very check).
const REFERENCE_SECRETS: &[&str] = &["ExamplePlaintextPassword1", "PROD_SECRET_PASSWORD", "TEST_SECRET_PASSWORD", "DEV_SECRET_PASSWORD"];

/// Values given to the example's secret variables; they must never be printed.
const SENTINEL: &str = "sentinel-secret-value-7f3a";

fn phoenix(args: &[&str], example_env: bool) -> Output {
    let mut command = phoenix_testkit::cli_command(env!("CARGO_BIN_EXE_phoenix"), example_env.then_some(SENTINEL));
    command.args(args).env_remove("NO_COLOR").output().expect("phoenix runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("UTF-8 output")
}

fn assert_no_secrets(output: &Output) {
    let all = format!("{}{}", stdout(output), String::from_utf8_lossy(&output.stderr));
    for secret in REFERENCE_SECRETS.iter().chain([&SENTINEL]) {
        assert!(!all.contains(secret), "output contains the secret {secret}");
    }
}

#[test]
fn validate_reference_human() {
    let output = phoenix(&["validate", "--config", REFERENCE], false);
    assert_eq!(output.status.code(), Some(1), "the reference has errors");
    assert_no_secrets(&output);
    insta::assert_snapshot!(stdout(&output));
}

#[test]
fn validate_reference_json() {
    let output = phoenix(&["validate", "--config", REFERENCE, "--format", "json"], false);
    assert_eq!(output.status.code(), Some(1));
    assert_no_secrets(&output);
    let value: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("valid JSON");
    assert_eq!(value["schema_version"], 1);
    insta::assert_json_snapshot!(value);
}

#[test]
fn the_reference_findings_the_issue_names_are_all_there() {
    let output = phoenix(&["validate", "--config", REFERENCE, "--format", "json"], false);
    let value: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    let diagnostics = value["diagnostics"].as_array().unwrap();
    let has = |code: &str, text: &str| diagnostics.iter().any(|d| d["code"] == code && d["message"].as_str().unwrap().contains(text));
    assert!(has("PHX-KEY-002", "`firewall` is nested under `shared_volumes`"));
    assert!(has("PHX-FW-006", "VM 1002"));
    assert!(has("PHX-SECRET-001", "portainer_api.admin_password"));
    assert!(has("PHX-SECRET-001", "DATABASE_PASS"));
    assert!(has("PHX-TRAEFIK-001", "port 9000 instead of port 9443"));
    assert!(has("PHX-DNS-003", "traefik.internal.thinkheads.ai points at 10.0.0.153"));
    assert!(has("PHX-DNS-003", "portainer-agent.internal.thinkheads.ai points at 10.0.0.153"));
    assert!(has("PHX-APP-001", "phoenix_hypervisor_lxc_101.sh"));
    assert!(has("PHX-FW-009", "Allow Traefik to access Portainer"));
}

#[test]
fn validate_example_human_and_json() {
    let output = phoenix(&["validate", "--config", EXAMPLE], true);
    assert_eq!(output.status.code(), Some(0));
    assert_no_secrets(&output);
    insta::assert_snapshot!("validate_example_human", stdout(&output));
    let output = phoenix(&["validate", "--config", EXAMPLE, "--format", "json"], true);
    assert_eq!(output.status.code(), Some(0));
    insta::assert_snapshot!("validate_example_json", stdout(&output));
}

#[test]
fn unset_secret_variables_are_warnings_not_errors() {
    let output = phoenix(&["validate", "--config", EXAMPLE], false);
    assert_eq!(output.status.code(), Some(0));
    assert!(stdout(&output).contains("PHX-SECRET-002"));
}

#[test]
fn graph_of_the_reference_puts_prerequisites_first() {
    let output = phoenix(&["graph", "--config", REFERENCE], false);
    assert_eq!(output.status.code(), Some(0));
    let text = stdout(&output);
    let position = |id: &str| text.find(&format!(" {id} (")).unwrap_or_else(|| panic!("{id} missing from\n{text}"));
    for (before, after) in [
        ("900", "901"),
        ("901", "911"),
        ("911", "801"),
        ("103", "102"),
        ("102", "1001"),
        ("1001", "1002"),
        ("9000", "1001"),
        ("1002", "801"),
        ("103", "101"),
    ] {
        assert!(position(before) < position(after), "{before} must come before {after}");
    }
    insta::assert_snapshot!(text);
}

#[test]
fn graph_json_is_versioned() {
    let output = phoenix(&["graph", "--config", EXAMPLE, "--format", "json"], true);
    let value: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(value["schema_version"], 1);
    assert_eq!(value["order"][0], 900, "the template comes first");
    insta::assert_json_snapshot!(value);
}

#[test]
fn explain_documents_codes() {
    let output = phoenix(&["explain", "PHX-FW-009"], false);
    assert_eq!(output.status.code(), Some(0));
    insta::assert_snapshot!(stdout(&output));
    let list = phoenix(&["explain"], false);
    assert!(stdout(&list).lines().count() >= 40);
    // An unknown code is a wrong argument: phoenix could not run (issue 12's exit table).
    let unknown = phoenix(&["explain", "PHX-NOPE-001"], false);
    assert_eq!(unknown.status.code(), Some(2));
}

#[test]
fn exit_code_two_when_phoenix_cannot_run() {
    let missing = phoenix(&["validate", "--config", "/nonexistent/etc"], false);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("does not exist"));
    let bad_args = phoenix(&["validate", "--format", "yaml"], false);
    assert_eq!(bad_args.status.code(), Some(2));
}

#[test]
fn sync_refuses_a_lab_that_is_not_up_and_changes_nothing() {
    let output = phoenix(&["sync", "all", "--lab", "nosuchlab", "--yes", "--config", EXAMPLE], true);
    assert_eq!(output.status.code(), Some(2));
    let text = phoenix_testkit::output_text(&output);
    assert!(text.contains("lab nosuchlab is not up") && text.contains("lab up --bare"), "{text}");
    assert!(!std::path::Path::new("/run/phoenix-lab/nosuchlab").exists());
    let output = phoenix(&["sync", "all", "--lab", "nosuchlab", "--root", "/tmp/x", "--config", EXAMPLE], true);
    assert_eq!(output.status.code(), Some(2), "--lab and --root exclude each other");
}

#[test]
fn a_syntax_error_is_exit_one_with_file_line_and_column() {
    let dir = std::env::temp_dir().join(format!("phoenix-cli-syntax-{}", std::process::id()));
    let etc = dir.join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    let example = phoenix_testkit::example_config();
    for entry in std::fs::read_dir(&example).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, etc.join(path.file_name().unwrap())).unwrap();
    }
    std::fs::write(etc.join("phoenix_vm_configs.json"), "{\n  \"vms\": [\n    { \"vmid\": 1001, }\n  ]\n}\n").unwrap();
    let output = phoenix(&["validate", "--config", etc.to_str().unwrap()], true);
    let text = stdout(&output);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(text.contains("PHX-JSON-001"), "{text}");
    assert!(text.contains("phoenix_vm_configs.json:3:"), "{text}");
}

#[test]
fn the_published_schemas_match_the_types() {
    let root = phoenix_testkit::workspace_root();
    let dir = std::env::temp_dir().join(format!("phoenix-schemas-{}", std::process::id()));
    let output = phoenix(&["schema", "--out", dir.to_str().unwrap()], false);
    assert_eq!(output.status.code(), Some(0));
    for entry in std::fs::read_dir(root.join("schema")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let generated = std::fs::read_to_string(dir.join(path.file_name().unwrap())).unwrap();
            let published = std::fs::read_to_string(&path).unwrap();
            assert_eq!(generated, published, "{} is stale: run `phoenix schema --out schema`", path.display());
        }
    }
    let count = std::fs::read_dir(&dir).unwrap().count();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(count, 5);
    assert!(Path::new(&root.join("schema/phoenix_lxc_configs.phoenix.schema.json")).exists());
}

#[test]
fn completions_and_manual_pages_come_from_the_parser() {
    let commands = ["validate", "render", "assess", "sync", "lab", "certs", "explain", "graph", "schema", "completions", "man"];
    let bash = stdout(&phoenix(&["completions", "bash"], false));
    assert!(bash.contains("complete -F _phoenix"), "{bash}");
    for command in commands {
        assert!(bash.contains(command), "bash completion lacks {command}");
    }
    assert!(bash.contains("--pve-fingerprint") && bash.contains("--dry-run"), "flags are completed");
    assert!(stdout(&phoenix(&["completions", "zsh"], false)).starts_with("#compdef phoenix"));
    assert!(stdout(&phoenix(&["completions", "fish"], false)).contains("complete -c phoenix"));
    let page = stdout(&phoenix(&["man"], false));
    assert!(page.contains(".TH phoenix 1"), "{page}");
    assert!(page.contains("Run a Proxmox VE homelab or cluster from one declarative description"), "{page}");
    let dir = std::env::temp_dir().join(format!("phoenix-man-{}", std::process::id()));
    let output = phoenix(&["man", "--out", dir.to_str().unwrap()], false);
    assert_eq!(output.status.code(), Some(0));
    for command in commands {
        let page = std::fs::read_to_string(dir.join(format!("phoenix-{command}.1"))).unwrap_or_default();
        assert!(page.contains(&format!(".TH phoenix-{command} 1")), "no manual page for {command}");
    }
    assert!(dir.join("phoenix-sync.1").is_file() && dir.join("phoenix.1").is_file());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn help_starts_with_what_phoenix_is_for() {
    let help = stdout(&phoenix(&["--help"], false));
    assert!(help.starts_with("Run a Proxmox VE homelab or cluster from one declarative description"), "{help}");
    let sync = stdout(&phoenix(&["sync", "--help"], false));
    assert!(!sync.contains("environment only"), "--pve-token is a flag too: its help must not say otherwise");
}

#[test]
fn a_missing_portainer_ca_names_the_flag_that_gives_it() {
    let mut command = phoenix_testkit::cli_command(env!("CARGO_BIN_EXE_phoenix"), Some(SENTINEL));
    command.args(["sync", "all", "--dry-run", "--config", EXAMPLE, "--pve-fingerprint", &"00".repeat(32)]);
    command.args(["--pve-url", "https://127.0.0.1:1/api2/json", "--portainer-ca", "/nonexistent/portainer-ca.pem"]);
    let output = command.env("PHOENIX_PVE_TOKEN", "root@pam!phoenix=x").output().expect("phoenix runs");
    assert_eq!(output.status.code(), Some(2));
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("caused by: cannot read the CA certificate /nonexistent/portainer-ca.pem"), "{said}");
    assert!(said.contains("hint: ") && said.contains("--portainer-ca FILE"), "{said}");
}
