//! `phoenix sync` end to end: the binary against the Proxmox VE simulator and the Portainer fake
//! (started here, on loopback), rehearsing in a folder. Refusals without a token or without
//! confirmation, a dry run that writes nothing, JSON Lines progress, convergence, and exit 1
//! when a step fails.

use phoenix_sim::portainer::FakePortainer;
use phoenix_sim::pve_server::SimPve;
use phoenix_sim::server::Fault;
use std::path::{Path, PathBuf};
use std::process::Output;

const CONFIG: &str = "examples/homelab/etc";

struct Fakes {
    pve: SimPve,
    portainer: FakePortainer,
    root: PathBuf,
    /// The configuration folder (the example's unless a test made its own).
    config: PathBuf,
    /// Variables the configuration reads beyond the example's.
    env: Vec<(&'static str, &'static str)>,
}

async fn fakes(tag: &str) -> Fakes {
    let source = phoenix_testkit::example_source();
    let model = phoenix_model::check(&phoenix_testkit::example_config(), &source).model.unwrap();
    let rendered = phoenix_core::render::render_all(&model);
    let pve = SimPve::serve(phoenix_lab::deployed::simulated_node(&model, &rendered).unwrap()).await;
    let portainer = FakePortainer::start(None).await;
    let root = std::env::temp_dir().join(format!("phoenix-cli-sync-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    phoenix_testkit::pki::write_manifest_store(&root.join("host/var/lib/phoenix/certs"), &model).unwrap();
    // The guests as provisioned: the accounts their files are owned by exist.
    phoenix_sim::rehearsal::write_guest_accounts(&root, &model, &rendered).unwrap();
    Fakes { pve, portainer, root, config: CONFIG.into(), env: Vec::new() }
}

impl Drop for Fakes {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

async fn phoenix(fakes: &Fakes, args: &[&str], token: bool) -> Output {
    let mut command = tokio::process::Command::from(phoenix_testkit::cli_command(env!("CARGO_BIN_EXE_phoenix"), Some("test-value")));
    command.args(args);
    command.args(["--config", fakes.config.to_str().unwrap(), "--root", fakes.root.to_str().unwrap()]);
    command.envs(fakes.env.iter().copied());
    command.args(["--pve-url", &fakes.pve.url(), "--pve-ca", fakes.pve.server.ca_file.to_str().unwrap()]);
    command.args(["--portainer-url", &fakes.portainer.server.url(), "--portainer-ca", fakes.portainer.server.ca_file.to_str().unwrap()]);
    command.env_remove("PHOENIX_PVE_TOKEN").env("PHOENIX_PORTAINER_ADMIN_PASSWORD", "a-long-test-password");
    // Set, it is the key phoenix uses; here phoenix bootstraps the fake and keeps its own.
    command.env_remove("PHOENIX_PORTAINER_API_KEY");
    if token {
        command.env("PHOENIX_PVE_TOKEN", &fakes.pve.token);
    } else {
        // Without it the configuration's token (proxmox.token_id and token_secret) would be used.
        command.env_remove("PHOENIX_PVE_TOKEN_SECRET");
    }
    command.stdin(std::process::Stdio::null());
    command.output().await.expect("phoenix runs")
}

use phoenix_testkit::output_text as text;

fn writes(fakes: &Fakes) -> usize {
    fakes.pve.with(|sim| sim.writes) + fakes.portainer.state.lock().unwrap().writes
}

#[tokio::test]
async fn sync_all_refuses_plans_applies_and_converges() {
    let fakes = fakes("all").await;
    let no_token = phoenix(&fakes, &["sync", "all", "--yes"], false).await;
    assert_eq!(no_token.status.code(), Some(2), "{}", text(&no_token));
    assert!(text(&no_token).contains("PHOENIX_PVE_TOKEN"));

    let unconfirmed = phoenix(&fakes, &["sync", "all"], true).await;
    assert_eq!(unconfirmed.status.code(), Some(2), "{}", text(&unconfirmed));
    assert!(text(&unconfirmed).contains("pass --yes"));
    assert_eq!(writes(&fakes), 0);

    let dry = phoenix(&fakes, &["sync", "all", "--dry-run", "--format", "json"], true).await;
    assert_eq!(dry.status.code(), Some(0), "{}", text(&dry));
    let plan: serde_json::Value = serde_json::from_slice(&dry.stdout).unwrap();
    assert_eq!(plan["schema_version"], 1);
    assert!(plan["steps"].as_array().unwrap().len() > 20);
    assert_eq!(writes(&fakes), 0, "a dry run changes nothing");
    assert!(!Path::new(&fakes.root).join("host/etc/dnsmasq.d/phoenix.conf").exists());

    let applied = phoenix(&fakes, &["sync", "all", "--yes", "--format", "json"], true).await;
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    let lines: Vec<serde_json::Value> =
        String::from_utf8_lossy(&applied.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(lines.iter().any(|l| l["event"] == "started"));
    let summary = &lines.last().unwrap()["summary"];
    assert_eq!(summary["failed"], 0);
    assert!(!text(&applied).contains("test-value"), "no secret in the output");
    // The example's second NIC is on the node under its own key, and its stack named in the
    // stacks/<name>/ shape is deployed to the agent's environment with its labels.
    let traefik = fakes.pve.with(|sim| sim.files["nodes/pve/lxc/102.conf"].clone());
    assert!(
        traefik.lines().any(|l| l == "net1: name=eth1,bridge=vmbr100,firewall=1,hwaddr=52:54:00:AA:11:02,ip=10.100.0.12/24,type=veth"),
        "{traefik}"
    );
    let portainer = fakes.portainer.state.lock().unwrap().clone();
    let whoami = portainer.stacks.values().find(|s| s.name == "whoami-production").expect("the whoami stack is deployed");
    assert_eq!(portainer.endpoints[&whoami.endpoint_id].0, "drphoenix");
    assert!(whoami.file.contains("traefik.http.routers.whoami.rule=Host(`whoami.internal.thinkheads.ai`)"), "{}", whoami.file);

    let again = phoenix(&fakes, &["sync", "all", "--dry-run"], true).await;
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(text(&again).contains("Nothing to do"), "{}", text(&again));
}

#[tokio::test]
async fn a_failing_step_is_exit_one_and_names_the_step() {
    let fakes = fakes("fail").await;
    fakes.pve.server.controls.inject(Some("POST"), "/lxc/102/firewall/rules", Fault::Reset, 50);
    let output = phoenix(&fakes, &["sync", "firewall", "--yes"], true).await;
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(text(&output).contains("FAILED firewall guest 102: rules"), "{}", text(&output));
    assert!(text(&output).contains("skipped firewall cluster: options"), "{}", text(&output));
}

/// Issue 13: two syncs of one target never interleave. A run finds the target locked (here by
/// the test) and, after its bounded wait, refuses naming the holder and changes nothing; two
/// runs started together apply once: every rule is on the node once, and the next plan is empty.
#[tokio::test]
async fn one_sync_at_a_time_per_target() {
    let fakes = fakes("lock").await;
    let lock = fakes.root.join(".phoenix-sync.lock");
    let held = phoenix_drivers::host::lock::acquire(&lock, std::time::Duration::ZERO, "the test's own hold").unwrap();
    let refused = phoenix(&fakes, &["sync", "firewall", "--yes", "--lock-wait", "1"], true).await;
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(text(&refused).contains(&format!("pid {}, the test's own hold", std::process::id())), "{}", text(&refused));
    assert_eq!(writes(&fakes), 0, "nothing was changed while another run held the target");
    drop(held);

    let (first, second) =
        tokio::join!(phoenix(&fakes, &["sync", "firewall", "--yes"], true), phoenix(&fakes, &["sync", "firewall", "--yes"], true));
    assert_eq!((first.status.code(), second.status.code()), (Some(0), Some(0)), "{}\n{}", text(&first), text(&second));
    let guest = fakes.pve.with(|sim| sim.files["firewall/101.fw"].clone());
    let rules = guest.lines().filter(|l| l.starts_with("IN ") || l.starts_with("OUT ") || l.starts_with("GROUP ")).collect::<Vec<_>>();
    let mut unique = rules.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(rules.len(), unique.len(), "a rule is on the node twice:\n{guest}");
    let again = phoenix(&fakes, &["sync", "firewall", "--dry-run"], true).await;
    assert!(text(&again).contains("Nothing to do"), "{}", text(&again));
}

/// Issue 13: the configuration's Proxmox VE settings are used when no flag or variable gives
/// them: here proxmox.token_id with token_secret from its variable reaches the node (which
/// refuses it: the simulator knows only its own token), instead of "no token".
#[tokio::test]
async fn the_configuration_s_token_is_used_when_none_is_given() {
    let fakes = fakes("config-token").await;
    let mut command = tokio::process::Command::from(phoenix_testkit::cli_command(env!("CARGO_BIN_EXE_phoenix"), Some("test-value")));
    command.args(["sync", "firewall", "--dry-run", "--config", CONFIG, "--root", fakes.root.to_str().unwrap()]);
    command.args(["--pve-url", &fakes.pve.url(), "--pve-ca", fakes.pve.server.ca_file.to_str().unwrap()]);
    command.args(["--portainer-url", &fakes.portainer.server.url(), "--portainer-ca", fakes.portainer.server.ca_file.to_str().unwrap()]);
    let output = command.env_remove("PHOENIX_PVE_TOKEN").stdin(std::process::Stdio::null()).output().await.unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(text(&output).contains("401") && !text(&output).contains("no Proxmox VE API token"), "{}", text(&output));
}

/// Every file under `root` whose name marks an interrupted write (`.NAME.phoenix-PID`).
fn temporaries(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let name = entry.file_name().to_string_lossy().to_string();
                let suffix = name.rsplit_once(".phoenix-").map(|(_, s)| s.to_string()).unwrap_or_default();
                if suffix == "new" || (!suffix.is_empty() && suffix.bytes().all(|b| b.is_ascii_digit())) {
                    found.push(path);
                }
            }
        }
    }
    found
}

/// Issue 13: a sync killed (SIGKILL) at any moment, 30 times in a row, leaves no partial file,
/// and the run after it converges. The moments are spread over the first 600 ms of each run
/// (deterministically), which covers observing, planning and applying against the simulators,
/// and the runs change the node's firewall, files and certificates in turn.
#[tokio::test]
async fn killed_at_any_moment_a_sync_leaves_no_partial_file_and_the_next_converges() {
    let fakes = fakes("kill").await;
    // Every domain but Portainer's (whose bootstrap is one-shot on the real service: issue 18).
    let domains = ["firewall", "dns", "gateway", "certs", "trust"];
    for round in 0..30u64 {
        let mut command = tokio::process::Command::from(phoenix_testkit::cli_command(env!("CARGO_BIN_EXE_phoenix"), Some("test-value")));
        command.args([
            "sync",
            domains[round as usize % domains.len()],
            "--yes",
            "--config",
            CONFIG,
            "--root",
            fakes.root.to_str().unwrap(),
        ]);
        command.args(["--pve-url", &fakes.pve.url(), "--pve-ca", fakes.pve.server.ca_file.to_str().unwrap()]);
        command.args([
            "--portainer-url",
            &fakes.portainer.server.url(),
            "--portainer-ca",
            fakes.portainer.server.ca_file.to_str().unwrap(),
        ]);
        command.env("PHOENIX_PVE_TOKEN", &fakes.pve.token).stdin(std::process::Stdio::null()).stdout(std::process::Stdio::null());
        command.stderr(std::process::Stdio::null());
        let mut child = command.spawn().unwrap();
        tokio::time::sleep(std::time::Duration::from_millis((round * 97) % 600)).await;
        let _ = child.start_kill();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), child.wait()).await.expect("a killed run ends");
    }
    let finished = phoenix(&fakes, &["sync", "all", "--yes"], true).await;
    // (the first complete run, Portainer's bootstrap included)
    assert_eq!(finished.status.code(), Some(0), "{}", text(&finished));
    let again = phoenix(&fakes, &["sync", "all", "--dry-run"], true).await;
    assert!(text(&again).contains("Nothing to do"), "{}", text(&again));
    assert_eq!(temporaries(&fakes.root), Vec::<PathBuf>::new(), "no partial file is left");
    let node = fakes.pve.with(|sim| sim.files.clone());
    for (path, text) in node.iter().filter(|(p, _)| p.ends_with(".fw")) {
        assert!(phoenix_core::pve_fw::parse(text).is_ok(), "{path} is whole");
    }
}

/// A node with no guests yet (the example's storages only), and the Portainer fake.
async fn empty_node(tag: &str) -> Fakes {
    let source = phoenix_testkit::example_source();
    let model = phoenix_model::check(&phoenix_testkit::example_config(), &source).model.unwrap();
    let pve = SimPve::serve(phoenix_sim::rehearsal::empty_node(&model)).await;
    let portainer = FakePortainer::start(None).await;
    let root = std::env::temp_dir().join(format!("phoenix-cli-guests-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    Fakes { pve, portainer, root, config: CONFIG.into(), env: Vec::new() }
}

/// Runs `sync guests` and kills it right after its `after`th step ended; whether it got there.
async fn killed_after(fakes: &Fakes, after: usize) -> bool {
    use tokio::io::AsyncBufReadExt;
    let mut command = tokio::process::Command::from(phoenix_testkit::cli_command(env!("CARGO_BIN_EXE_phoenix"), Some("test-value")));
    command.args(["sync", "guests", "--yes", "--no-boot-delay", "--format", "json", "--config", fakes.config.to_str().unwrap()]);
    command.args(["--root", fakes.root.to_str().unwrap()]);
    command.args(["--pve-url", &fakes.pve.url(), "--pve-ca", fakes.pve.server.ca_file.to_str().unwrap()]);
    command.args(["--portainer-url", &fakes.portainer.server.url(), "--portainer-ca", fakes.portainer.server.ca_file.to_str().unwrap()]);
    command.env("PHOENIX_PVE_TOKEN", &fakes.pve.token).stdin(std::process::Stdio::null());
    command.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::null());
    let mut child = command.spawn().unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let reading = async {
        let mut finished = 0;
        while let Ok(Some(line)) = lines.next_line().await {
            finished += usize::from(line.contains("\"event\":\"finished\""));
            if finished == after {
                return true;
            }
        }
        false
    };
    let stopped = tokio::time::timeout(std::time::Duration::from_secs(20), reading).await.unwrap_or(false);
    let _ = child.start_kill();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), child.wait()).await.expect("a killed run ends");
    stopped
}

/// Issue 14: `sync guests` from a node with no guests, killed right after each step of its
/// first run in turn (on a fresh node each time: creating, cloning, converting, starting), then
/// run again to its end: every guest exists once, none is left half-made, a third run plans
/// nothing, and `phoenix status` shows every guest running or a template, without drift.
#[tokio::test]
async fn guests_from_an_empty_node_survive_interruptions_and_status_shows_them_converged() {
    let probe = empty_node("probe").await;
    let first = phoenix(&probe, &["sync", "guests", "--dry-run", "--format", "json"], true).await;
    let steps = serde_json::from_slice::<serde_json::Value>(&first.stdout).unwrap()["steps"].as_array().unwrap().len();
    assert!(steps >= 16, "the example's first run: {steps} steps");
    for after in 1..steps {
        let fakes = empty_node(&format!("kill-{after}")).await;
        assert!(killed_after(&fakes, after).await, "the run got to step {after}");
        // What a killed client started, Proxmox VE finishes: let its tasks end.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let finished = phoenix(&fakes, &["sync", "guests", "--yes", "--no-boot-delay"], true).await;
        assert_eq!(finished.status.code(), Some(0), "killed after step {after}: {}", text(&finished));
        let again = phoenix(&fakes, &["sync", "guests", "--dry-run"], true).await;
        assert!(text(&again).contains("Nothing to do"), "killed after step {after}: {}", text(&again));
        fakes.pve.with(|sim| {
            let guests: Vec<u32> = sim.all_guests().iter().map(|(id, _, _)| *id).collect();
            assert_eq!(guests, vec![101, 102, 103, 900, 1001, 1002, 9000], "each guest once, nothing else");
            assert!(sim.all_guests().iter().all(|(_, _, conf)| !conf.keys.contains_key("lock")), "no half-made guest");
        });
    }
    let fakes = probe;
    let before = status(&fakes, "text").await;
    assert_eq!(before.status.code(), Some(1), "absent guests are exit 1: {}", text(&before));
    assert!(text(&before).contains("absent"));
    let finished = phoenix(&fakes, &["sync", "guests", "--yes", "--no-boot-delay"], true).await;
    assert_eq!(finished.status.code(), Some(0), "{}", text(&finished));
    all_running_without_drift(&fakes, 7).await;
}

/// `phoenix status` of the fakes' node, as `format`.
async fn status(fakes: &Fakes, format: &str) -> Output {
    let mut command = tokio::process::Command::from(phoenix_testkit::cli_command(env!("CARGO_BIN_EXE_phoenix"), Some("test-value")));
    command.args(["status", "--config", fakes.config.to_str().unwrap(), "--format", format]);
    command.args(["--pve-url", &fakes.pve.url(), "--pve-ca", fakes.pve.server.ca_file.to_str().unwrap()]);
    command.env("PHOENIX_PVE_TOKEN", &fakes.pve.token).stdin(std::process::Stdio::null());
    command.output().await.expect("phoenix runs")
}

/// `phoenix status` says exit 0, and each of the `count` guests runs (or is a template) without drift.
async fn all_running_without_drift(fakes: &Fakes, count: usize) {
    let after = status(fakes, "json").await;
    assert_eq!(after.status.code(), Some(0), "{}", text(&after));
    let report: serde_json::Value = serde_json::from_slice(&after.stdout).unwrap();
    // Features as declared (no --probe: nothing is run in the guests).
    use serde_json::json;
    if let Some(gateway) = report["features"].as_array().unwrap().iter().find(|f| f["guest"] == 101) {
        assert_eq!(gateway["features"].as_array().unwrap()[..3], [json!("base_setup"), json!("trusted_ca"), json!("gateway")], "{gateway}");
        assert_eq!(gateway["not_provisioned"], serde_json::json!(["step_cli"]));
        assert_eq!((&gateway["pending"], &gateway["health"]), (&serde_json::Value::Null, &serde_json::Value::Null));
    }
    let rows = report["guests"].as_array().unwrap();
    assert_eq!(rows.len(), count, "{rows:?}");
    for row in rows {
        assert!(row["state"] == "running" || row["state"] == "template", "{row}");
        assert_eq!(row["drift"], serde_json::json!([]));
    }
}

/// Issue 14: the reference configuration, corrected as its findings' hints say
/// (`phoenix_testkit::corrected`), from a node with no guests: `sync all` creates its 15
/// guests (the OS template and the cloud image downloaded, two container templates and a VM
/// template made, clones of each), starts them in boot order and deploys the firewall, DNS, the
/// gateway, Portainer and the stacks; a second run plans nothing; `phoenix status` shows every
/// guest running or a template, without drift.
#[tokio::test]
async fn the_corrected_reference_is_made_from_an_empty_node_by_sync_all() {
    let root = std::env::temp_dir().join(format!("phoenix-cli-reference-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let config = phoenix_testkit::corrected::reference(&root.join("installation")).unwrap();
    let source = phoenix_testkit::MemorySource::from_dir(config.parent().unwrap()).set_env(&["DATABASE_PASS"]);
    let checked = phoenix_model::check(&config, &source);
    let errors: Vec<_> = checked.diagnostics.iter().filter(|d| d.severity == phoenix_model::Severity::Error).collect();
    assert!(errors.is_empty(), "every finding is corrected: {errors:?}");
    let model = checked.model.unwrap();
    let rehearsal = root.join("rehearsal");
    // As `phoenix-sim --empty` does: the node's /etc/pve is the rehearsal's, the CA's store
    // holds the manifest's certificates, and the guests' accounts exist once provisioned.
    let node = phoenix_sim::rehearsal::empty_node(&model).backed_by(&rehearsal.join("host/etc/pve")).unwrap();
    phoenix_testkit::pki::write_manifest_store(&rehearsal.join("host/var/lib/phoenix/certs"), &model).unwrap();
    phoenix_sim::rehearsal::write_guest_accounts(&rehearsal, &model, &phoenix_core::render::render_all(&model)).unwrap();
    let pve = SimPve::serve(node).await;
    let portainer = FakePortainer::start(None).await;
    let fakes = Fakes { pve, portainer, root: rehearsal, config, env: vec![("DATABASE_PASS", "a-test-password")] };
    let first = phoenix(&fakes, &["sync", "all", "--yes", "--no-boot-delay"], true).await;
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let again = phoenix(&fakes, &["sync", "all", "--dry-run"], true).await;
    assert!(text(&again).contains("Nothing to do"), "{}", text(&again));
    all_running_without_drift(&fakes, 15).await;
    fakes.pve.with(|sim| {
        assert_eq!(sim.tasks.count("download"), 2, "the OS template and the cloud image, once each");
        let started: Vec<u32> = sim.running.iter().copied().collect();
        assert_eq!(started.len(), 14, "every guest but the VM template runs: {started:?}");
    });
    let _ = std::fs::remove_dir_all(&root);
}

/// Issue 18: a bootstrap cut after Portainer's administrator was created (no API key kept)
/// does not block later runs: phoenix logs in with the configured password, observes and
/// plans with that session, creates and keeps its API key before the first change, and the
/// next run uses the key.
#[tokio::test]
async fn a_portainer_bootstrap_cut_before_the_key_was_kept_resumes() {
    let fakes = fakes("resume").await;
    fakes.portainer.state.lock().unwrap().admin = Some(("admin".into(), "a-long-test-password".into()));
    let dry = phoenix(&fakes, &["sync", "all", "--dry-run"], true).await;
    assert_eq!(dry.status.code(), Some(0), "{}", text(&dry));
    assert!(!text(&dry).contains("bootstrap Portainer"), "the administrator exists: {}", text(&dry));
    assert!(fakes.portainer.state.lock().unwrap().api_keys.is_empty(), "a dry run creates no key");
    let applied = phoenix(&fakes, &["sync", "all", "--yes"], true).await;
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    let state = fakes.portainer.state.lock().unwrap().clone();
    assert_eq!(state.api_keys.len(), 1, "one key, created before the first change");
    assert!(state.stacks.values().any(|s| s.name == "qdrant_service-production"), "the stacks are deployed");
    let again = phoenix(&fakes, &["sync", "all", "--dry-run"], true).await;
    assert!(text(&again).contains("Nothing to do"), "{}", text(&again));
    assert_eq!(fakes.portainer.state.lock().unwrap().api_keys.len(), 1, "the kept key is used");
}

/// Issue 18: the configuration's `portainer_api.admin_user` is the administrator phoenix
/// creates on a fresh Portainer (it used to be `admin` whatever the file said).
#[tokio::test]
async fn the_configured_portainer_administrator_is_the_one_created() {
    let mut fakes = fakes("admin-user").await;
    let copy = fakes.root.join("installation");
    phoenix_testkit::copy_dir(&phoenix_testkit::workspace_root().join("examples/homelab"), &copy).unwrap();
    let hypervisor = copy.join("etc/phoenix_hypervisor_config.json");
    let mut value: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&hypervisor).unwrap()).unwrap();
    value["portainer_api"]["admin_user"] = serde_json::json!("phoenix-admin");
    std::fs::write(&hypervisor, serde_json::to_string_pretty(&value).unwrap()).unwrap();
    fakes.config = copy.join("etc");
    let applied = phoenix(&fakes, &["sync", "portainer", "--yes"], true).await;
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    let admin = fakes.portainer.state.lock().unwrap().admin.clone();
    assert_eq!(admin.map(|(user, _)| user).as_deref(), Some("phoenix-admin"));
}

/// Issue 18: the administrator check is an idempotent GET and retried like one: a Portainer
/// answering it 503 once (restarting behind its proxy) does not fail the run.
#[tokio::test]
async fn the_administrator_check_is_retried() {
    let fakes = fakes("admin-check").await;
    fakes.portainer.server.controls.inject(Some("GET"), "/api/users/admin/check", Fault::Status(503, "starting".into()), 1);
    let applied = phoenix(&fakes, &["sync", "portainer", "--yes"], true).await;
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    assert!(fakes.portainer.state.lock().unwrap().admin.is_some(), "bootstrapped after the retry");
}

/// Issue 18: a Portainer that cannot be observed holds back only its own steps: DNS, the
/// firewall and the gateway are deployed, the run ends 1 naming why Portainer waits, and the
/// next run, with Portainer back, completes it.
#[tokio::test]
async fn an_unreachable_portainer_blocks_only_its_own_steps() {
    let fakes = fakes("portainer-down").await;
    fakes.portainer.server.controls.inject(None, "/api/", Fault::Status(502, "bad gateway".into()), 1000);
    let applied = phoenix(&fakes, &["sync", "all", "--yes"], true).await;
    assert_eq!(applied.status.code(), Some(1), "{}", text(&applied));
    assert!(text(&applied).contains("Portainer could not be observed"), "{}", text(&applied));
    assert!(Path::new(&fakes.root).join("host/etc/dnsmasq.d/phoenix.conf").exists(), "DNS went on");
    assert!(fakes.pve.with(|sim| sim.files.contains_key("firewall/cluster.fw")), "the firewall went on");
    fakes.portainer.server.controls.clear_faults();
    let again = phoenix(&fakes, &["sync", "all", "--yes"], true).await;
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(fakes.portainer.state.lock().unwrap().stacks.values().any(|s| s.name == "whoami-production"));
}

/// The example's configuration copied to `dir`, one text replaced in one of its files (a
/// declaration changed by hand).
fn edited_config(dir: &Path, file: &str, from: &str, to: &str) -> PathBuf {
    let config = dir.join("etc");
    std::fs::create_dir_all(&config).unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(CONFIG);
    for entry in std::fs::read_dir(&example).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, config.join(path.file_name().unwrap())).unwrap();
    }
    for folder in ["stacks", "persistent-storage"] {
        let from_dir = example.join("..").join(folder);
        if from_dir.is_dir() {
            let _ = std::process::Command::new("cp").arg("-r").arg(&from_dir).arg(dir).status();
        }
    }
    let path = config.join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{file} has `{from}`");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    config
}

/// The example's empty cluster, with its certificate store and the guests' accounts (for `sync all`).
async fn empty_cluster(tag: &str) -> Fakes {
    let fakes = empty_node(tag).await;
    let model = phoenix_model::check(&phoenix_testkit::example_config(), &phoenix_testkit::example_source()).model.unwrap();
    phoenix_testkit::pki::write_manifest_store(&fakes.root.join("host/var/lib/phoenix/certs"), &model).unwrap();
    phoenix_sim::rehearsal::write_guest_accounts(&fakes.root, &model, &phoenix_core::render::render_all(&model)).unwrap();
    fakes
}

fn plan_steps(output: &Output) -> Vec<serde_json::Value> {
    let plan: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|_| panic!("a JSON plan: {}", text(output)));
    plan["steps"].as_array().cloned().unwrap_or_default()
}

/// Issue 20: the two-node example from nothing: `sync all` creates each guest on its node (103
/// and 1002 on pve2, cloned on pve from its templates' local storage and moved), a second run
/// plans nothing; the declaration of 103 moved back to pve plans exactly one migration (its
/// container running: restart mode), which is carried out, and then nothing is left to do.
#[tokio::test]
async fn the_two_node_example_is_made_on_its_nodes_and_a_moved_declaration_migrates_once() {
    let mut fakes = empty_cluster("cluster").await;
    let made = phoenix(&fakes, &["sync", "all", "--yes", "--no-boot-delay"], true).await;
    assert_eq!(made.status.code(), Some(0), "{}", text(&made));
    let again = phoenix(&fakes, &["sync", "all", "--dry-run"], true).await;
    assert!(text(&again).contains("Nothing to do"), "{}", text(&again));
    let placed = |fakes: &Fakes| fakes.pve.with(|sim| [101, 102, 103, 900, 1001, 1002, 9000].map(|id| sim.node_of(id).unwrap_or_default()));
    assert_eq!(placed(&fakes), ["pve", "pve", "pve2", "pve", "pve", "pve2", "pve"].map(String::from));

    fakes.config = edited_config(&fakes.root.join("edited"), "phoenix_lxc_configs.json", "\"node\": \"pve2\",", "\"node\": \"pve\",");
    let planned = phoenix(&fakes, &["sync", "all", "--dry-run", "--format", "json"], true).await;
    let steps = plan_steps(&planned);
    let ids: Vec<&str> = steps.iter().filter_map(|s| s["id"].as_str()).collect();
    assert_eq!(ids, vec!["guest:103:migrate"], "one migration and nothing else: {}", text(&planned));
    let request = &steps[0]["action"]["requests"][0];
    assert_eq!(request["path"], "/nodes/pve2/lxc/103/migrate", "{request}");
    let params: Vec<(String, String)> = serde_json::from_value(request["params"].clone()).unwrap();
    assert_eq!(params, vec![("target".into(), "pve".into()), ("restart".into(), "1".into())], "a running container moves in restart mode");
    let moved = phoenix(&fakes, &["sync", "all", "--yes", "--no-boot-delay"], true).await;
    assert_eq!(moved.status.code(), Some(0), "{}", text(&moved));
    assert_eq!(placed(&fakes)[2], "pve");
    fakes.pve.with(|sim| assert!(sim.running.contains(&103), "started again on pve"));
    let after = phoenix(&fakes, &["sync", "all", "--dry-run"], true).await;
    assert!(text(&after).contains("Nothing to do"), "{}", text(&after));
}

/// Issue 20: a guest HA manages and moved (its node failed: HA recovered it on pve) is neither
/// recreated nor moved back: the plan says HA decides, and a sync leaves it where HA put it.
#[tokio::test]
async fn a_guest_ha_moved_is_neither_recreated_nor_moved_back() {
    let fakes = empty_cluster("ha").await;
    let made = phoenix(&fakes, &["sync", "all", "--yes", "--no-boot-delay"], true).await;
    assert_eq!(made.status.code(), Some(0), "{}", text(&made));
    fakes.pve.with(|sim| {
        let added = sim.request("POST", "/cluster/ha/resources", [("sid".to_string(), serde_json::json!("vm:1002"))].into());
        assert_eq!(added.status, 200, "{}", added.body);
        sim.ha_recover(1002, "pve").unwrap();
    });
    let planned = phoenix(&fakes, &["sync", "all", "--dry-run"], true).await;
    assert_eq!(planned.status.code(), Some(0), "{}", text(&planned));
    assert!(text(&planned).contains("Nothing to do"), "{}", text(&planned));
    assert!(text(&planned).contains("HA manages vm:1002"), "the plan says HA decides: {}", text(&planned));
    let writes_before = writes(&fakes);
    let synced = phoenix(&fakes, &["sync", "all", "--yes", "--no-boot-delay"], true).await;
    assert_eq!(synced.status.code(), Some(0), "{}", text(&synced));
    assert_eq!(writes(&fakes), writes_before, "nothing was changed");
    fakes.pve.with(|sim| {
        assert_eq!(sim.node_of(1002).as_deref(), Some("pve"), "left where HA put it");
        assert_eq!(sim.all_guests().iter().filter(|(id, _, _)| *id == 1002).count(), 1, "not recreated");
    });

    // Asked for, the move goes through HA, never behind its back. Running, with its disk on
    // pve's local storage, HA's live migration would be refused as `qm migrate` is: blocked.
    let refused = guest_verb(&fakes, &["migrate", "1002", "--dry-run"]).await;
    assert!(text(&refused).contains("HA cannot move it: it runs, and its disk"), "{}", text(&refused));
    let stopped = fakes.pve.with(|sim| sim.request("POST", "/nodes/pve/qemu/1002/status/stop", Default::default()));
    assert_eq!(stopped.status, 200, "{}", stopped.body);
    let status = || fakes.pve.with(|sim| sim.request("GET", "/nodes/pve/qemu/1002/status/current", Default::default()).data()["status"].clone());
    for _ in 0..100 {
        if status() == "stopped" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status(), "stopped");
    // Stopped: HA's migrate request, then a wait until the config is on the declared node.
    let shown = guest_verb(&fakes, &["migrate", "1002", "--dry-run"]).await;
    assert_eq!(shown.status.code(), Some(0), "{}", text(&shown));
    assert!(text(&shown).contains("ask HA to move VM 1002 (drphoenix) from pve to pve2"), "{}", text(&shown));
    assert!(text(&shown).contains("Post /cluster/ha/resources/vm:1002/migrate node=pve2"), "{}", text(&shown));
    assert!(!text(&shown).contains("/nodes/pve/qemu/1002/migrate"), "not qm migrate behind HA's back: {}", text(&shown));
    let moved = guest_verb(&fakes, &["migrate", "1002", "--yes"]).await;
    assert_eq!(moved.status.code(), Some(0), "{}", text(&moved));
    fakes.pve.with(|sim| {
        assert_eq!(sim.node_of(1002).as_deref(), Some("pve2"), "HA moved it to its declared node");
        assert!(sim.ha_resources().iter().any(|r| r.vmid == 1002), "still managed by HA");
    });
    let after = phoenix(&fakes, &["sync", "all", "--dry-run"], true).await;
    // On its declared node, nothing is said of HA nor planned for its placement (it is only
    // started again: it was stopped for the move).
    let after = text(&after);
    let steps: Vec<&str> = after.lines().filter(|l| l.starts_with('[')).map(|l| l.split(']').next().unwrap_or(l)).collect();
    assert_eq!((steps, after.contains("HA manages")), (vec!["[guest:1002:start"], false), "{after}");
    let again = guest_verb(&fakes, &["migrate", "1002", "--yes"]).await;
    assert_eq!((again.status.code(), text(&again).contains("Nothing to do")), (Some(0), true), "{}", text(&again));
    // A move HA's LRM fails (the guest was locked meanwhile) ends the wait with the task's error.
    fakes.pve.with(|sim| {
        sim.ha_recover(1002, "pve").unwrap();
        let conf = sim.files.get_mut("nodes/pve/qemu-server/1002.conf").expect("1002 is on pve again");
        conf.insert_str(0, "lock: backup\n");
    });
    let failed = guest_verb(&fakes, &["migrate", "1002", "--yes"]).await;
    assert_ne!(failed.status.code(), Some(0), "{}", text(&failed));
    assert!(text(&failed).contains("qmigrate") && text(&failed).contains("failed: VM is locked (backup)"), "{}", text(&failed));
    fakes.pve.with(|sim| assert_eq!(sim.node_of(1002).as_deref(), Some("pve"), "it did not move"));
    let absent = guest_verb(&fakes, &["migrate", "9999", "--dry-run"]).await;
    assert!(text(&absent).contains("guest 9999 is not described"), "{}", text(&absent));
}

/// A guest verb (`migrate`, `stop`, ...) against the fakes' node.
async fn guest_verb(fakes: &Fakes, args: &[&str]) -> Output {
    let mut command = tokio::process::Command::from(phoenix_testkit::cli_command(env!("CARGO_BIN_EXE_phoenix"), Some("test-value")));
    command.args(args).args(["--config", fakes.config.to_str().unwrap()]);
    command.args(["--pve-url", &fakes.pve.url(), "--pve-ca", fakes.pve.server.ca_file.to_str().unwrap()]);
    command.envs(fakes.env.iter().copied()).env("PHOENIX_PVE_TOKEN", &fakes.pve.token).stdin(std::process::Stdio::null());
    command.output().await.expect("phoenix runs")
}
