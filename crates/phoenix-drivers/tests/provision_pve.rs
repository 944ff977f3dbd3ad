//! `sync features` on the Proxmox VE simulator standing in for the node: the plan is observed
//! and applied through the command lines a node runs (`pct exec` for containers, `qm guest
//! exec` with the guest agent's JSON for VMs), recorded and checked. A recording runner plays
//! bare guests (the probe finds nothing; every change succeeds).

mod rig;

use phoenix_core::plan::{Action, Domain};
use phoenix_drivers::host::{CommandOutput, CommandRunner, GuestAccess, HostTarget};
use phoenix_exec::sync::observe::ObserveInput;
use phoenix_exec::sync::{apply, plan_sync, ApplyOptions, Drivers};
use phoenix_exec::DriverError;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

type Call = (Vec<String>, Option<Vec<u8>>);

#[derive(Clone, Default)]
struct Node {
    calls: Arc<Mutex<Vec<Call>>>,
}

impl CommandRunner for Node {
    fn run(&self, argv: &[String], stdin: Option<&[u8]>) -> Result<CommandOutput, DriverError> {
        self.calls.lock().unwrap().push((argv.to_vec(), stdin.map(<[u8]>::to_vec)));
        // A bare guest: the probe prints nothing, every change exits 0. `qm guest exec`
        // prints the agent's answer as JSON (qemu-server's PVE::CLI::qm `guest exec`).
        // A file read or stat'ed (`test -e "$1" || exit 3`) is absent.
        let absent = argv.iter().any(|a| a.contains(r#"test -e "$1" || exit 3"#));
        let code = if absent { 3 } else { 0 };
        let stdout = match argv.first().map(String::as_str) {
            Some("qm") => format!(r#"{{"exitcode":{code},"exited":1,"out-data":""}}"#).into_bytes(),
            _ => Vec::new(),
        };
        let code = if argv.first().is_some_and(|a| a == "qm") { 0 } else { code };
        Ok(CommandOutput { code: Some(code), stdout, stderr: Vec::new() })
    }
}

/// What sync observes on the rig's node for `domains`, through `target`.
fn observe_input<'a>(
    rig: &'a rig::Rig,
    target: &'a HostTarget<Node>,
    domains: &'a BTreeSet<Domain>,
    inputs: &'a phoenix_core::provision::Inputs,
) -> ObserveInput<'a, phoenix_drivers::pve::PveClient, phoenix_drivers::portainer::PortainerClient, HostTarget<Node>> {
    ObserveInput {
        model: &rig.model,
        rendered: &rig.rendered,
        domains,
        pve: &rig.pve_client,
        portainer: &rig.portainer_client,
        target,
        node: &rig.model.host.node_name,
        store_dir: rig::STORE,
        host_trust_file: rig::TRUST_FILE,
        now: 1_800_000_000,
        boot_delays: false,
        feature_inputs: inputs,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn features_run_through_pct_exec_and_qm_guest_exec() {
    // The example's guests exist and run (all but the templates).
    let model = rig::example();
    let running: Vec<u32> = model.guests.values().filter(|g| !g.is_template).map(|g| g.id).collect();
    let rig = rig::Rig::with("provision-pve", model, |sim| sim.running.extend(running)).await;
    let node = Node::default();
    // Host files (the store's root) in the rehearsal folder; guests through the node's commands.
    let mut target = HostTarget::new(GuestAccess::Pve, node.clone());
    target.host_root = Some(rig.root.join("host"));
    let domains: BTreeSet<Domain> = [Domain::Features].into();
    let inputs = Default::default();
    let input = observe_input(&rig, &target, &domains, &inputs);
    let plan = plan_sync(&input, &|_| None).await.expect("observed");
    let titles: Vec<&str> = plan.steps.iter().map(|s| s.title.as_str()).collect();
    for expected in [
        "base_setup in guest 101: install locales tzdata ca-certificates curl",
        "trusted_ca in guest 101: write /usr/local/share/ca-certificates/phoenix-root-ca.crt (root:root, 0644)",
        "gateway in guest 101: install nginx libnginx-mod-stream",
        "health check of guest 101: `systemctl is-active --quiet nginx`",
        "docker in guest 1001: install docker.io",
        "docker in guest 1001: write /etc/docker/daemon.json (root:root, 0644)",
        // docker.io starts docker with its defaults: the written daemon.json needs a restart.
        "docker in guest 1001: restart docker",
    ] {
        assert!(titles.contains(&expected), "{expected} missing: {titles:#?}");
    }
    // Templates are cloned, never provisioned; each guest's changes form one chain.
    assert!(!titles.iter().any(|t| t.contains("guest 900") || t.contains("guest 9000")), "{titles:#?}");
    let first_of_101 = plan.steps.iter().find(|s| s.id == "features:101:001").unwrap();
    let second_of_101 = plan.steps.iter().find(|s| s.id == "features:101:002").unwrap();
    assert_eq!(second_of_101.after, [first_of_101.id.clone()]);
    let probes = node.calls.lock().unwrap().len();
    assert_eq!(probes, 6, "one probe per provisioned guest (101, 102, 103, 1001, 1002), and Step-CA's root read in 103");

    let drivers = Drivers { model: &rig.model, pve: &rig.pve_client, portainer: &rig.portainer_client, target: &target, issuer: &rig::NoAcme };
    let options = ApplyOptions {
        parallel: 8,
        node_parallel: 4,
        run_commands: true,
        store_dir: rig::STORE.into(),
        host_trust_file: rig::TRUST_FILE.into(),
        now: 1_800_000_000,
    };
    let summary = apply(&plan, &drivers, &options, &mut |_| {}).await;
    assert_eq!(summary.failed, 0, "{}", summary.to_text());
    let steps = plan.steps.iter().filter(|s| matches!(s.action, Action::Provision { .. } | Action::Health { .. })).count();
    let calls = node.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), probes + steps, "one command line per step");

    let lines: Vec<&Call> = calls[probes..].iter().collect();
    let apt_101 = lines.iter().find(|(argv, _)| argv.last().is_some_and(|a| a == "curl") && argv[..3] == ["pct", "exec", "101"]).unwrap();
    assert_eq!(&apt_101.0[..6], ["pct", "exec", "101", "--", "sh", "-c"]);
    let apt = &apt_101.0[6];
    assert!(apt.contains("apt-get install -y -q --no-install-recommends") && apt.contains("DPkg::Lock::Timeout=600") && apt.contains("-- \"$@\""), "{apt}");
    assert_eq!(&apt_101.0[7..], ["sh", "locales", "tzdata", "ca-certificates", "curl"]);

    // A VM's file goes through the guest agent with its content on standard input.
    let daemon = lines.iter().find(|(argv, _)| argv.iter().any(|a| a == "/etc/docker/daemon.json") && argv.get(3).is_some_and(|a| a == "1001")).unwrap();
    assert_eq!(&daemon.0[..10], ["qm", "guest", "exec", "1001", "--timeout", "0", "--pass-stdin", "1", "--", "sh"]);
    assert_eq!(daemon.1.as_deref(), Some(&b"{\n  \"dns\": [\n    \"10.0.0.13\"\n  ]\n}\n"[..]), "the internal DNS, the node");

    // The CA root reaches guests only on standard input, never on a command line.
    let root = std::fs::read_to_string(rig.root.join("host").join(rig::STORE.trim_start_matches('/')).join("root_ca.crt")).unwrap();
    let marker = root.lines().nth(1).unwrap();
    assert!(calls.iter().all(|(argv, _)| !argv.iter().any(|a| a.contains(marker))));
    assert!(calls.iter().any(|(_, stdin)| stdin.as_deref().is_some_and(|s| s == root.as_bytes())));
}

/// In one plan, the Portainer server and agent start only once their guest's certificates are
/// installed (Portainer's TLS files), those certificates wait for the rest of the guest's
/// features, and the Portainer API steps wait for the server and agent to answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portainer_starts_after_its_certificates_and_before_the_portainer_steps() {
    let model = rig::example();
    let running: Vec<u32> = model.guests.values().filter(|g| !g.is_template).map(|g| g.id).collect();
    let rig = rig::Rig::with("provision-portainer", model, |sim| sim.running.extend(running)).await;
    let node = Node::default();
    let mut target = HostTarget::new(GuestAccess::Pve, node.clone());
    target.host_root = Some(rig.root.join("host"));
    let domains: BTreeSet<Domain> = [Domain::Features, Domain::Certs, Domain::Portainer].into();
    let secret = "agent-secret-in-a-file-only";
    let inputs = phoenix_core::provision::Inputs { agent_secret: Some(phoenix_model::secret::Secret::new(secret)), ..Default::default() };
    let input = observe_input(&rig, &target, &domains, &inputs);
    let plan = plan_sync(&input, &|_| None).await.expect("observed");
    let step = |title: &str| plan.steps.iter().find(|s| s.title == title).unwrap_or_else(|| panic!("{title}: {:#?}", plan.steps.iter().map(|s| &s.title).collect::<Vec<_>>()));
    let up = step("portainer in guest 1001: run portainer-up");
    let ids: Vec<&str> = plan.steps.iter().map(|s| s.id.as_str()).collect();
    let cert = plan.steps.iter().find(|s| s.id == "cert-install:portainer").unwrap_or_else(|| panic!("Portainer's certificate is installed: {ids:?}"));
    let first_portainer = plan.steps.iter().find(|s| s.title == "portainer in guest 1001: install docker-compose-v2").unwrap();
    assert!(first_portainer.after.contains(&cert.id), "the server's first change waits for its certificate: {:?}", first_portainer.after);
    assert!(plan.steps.iter().position(|s| s.id == cert.id) < plan.steps.iter().position(|s| s.id == up.id), "in order");
    let before_cert: Vec<&String> = cert.after.iter().filter(|a| a.starts_with("features:1001:")).collect();
    assert_eq!(before_cert.len(), 1, "the certificate waits for the guest's features: {:?}", cert.after);
    let waited = plan.steps.iter().find(|s| &s.id == before_cert[0]).unwrap();
    assert!(!waited.title.starts_with("portainer in"), "but not for Portainer itself: {}", waited.title);
    let status = step("portainer in guest 1001: run portainer-status");
    let ping = step("portainer in guest 1002: run portainer-agent-ping");
    let api: Vec<_> = plan.steps.iter().filter(|s| matches!(s.action, Action::Portainer { .. })).collect();
    assert!(!api.is_empty(), "the example's Portainer steps are planned");
    for s in api {
        assert!(s.after.contains(&status.id) && s.after.contains(&ping.id), "{} waits for the server and agent: {:?}", s.id, s.after);
    }
    assert!(!plan.to_text().contains(secret), "the plan never shows the agent secret");
}

/// Where phoenix provisions Step-CA, certificates are ordered only once it is set up and its
/// root exported to the store (the ACME client's trust): every renewal waits for the CA guest's
/// last change and for the export.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_wait_for_step_ca_and_its_root() {
    let mut source = phoenix_testkit::example_source();
    source.edit_json(&phoenix_testkit::example_config().join("phoenix_hypervisor_config.json"), |v| {
        v["software"] = serde_json::json!({ "step_ca": { "url": "https://example.org/step-ca", "sha256": "c".repeat(64) } });
    });
    let model = phoenix_model::check(&phoenix_testkit::example_config(), &source).model.expect("the example with a Step-CA source");
    let running: Vec<u32> = model.guests.values().filter(|g| !g.is_template).map(|g| g.id).collect();
    let rig = rig::Rig::with("provision-step-ca", model, |sim| sim.running.extend(running)).await;
    let mut target = HostTarget::new(GuestAccess::Pve, Node::default());
    target.host_root = Some(rig.root.join("host"));
    let domains: BTreeSet<Domain> = [Domain::Features, Domain::Certs].into();
    let inputs = Default::default();
    let mut input = observe_input(&rig, &target, &domains, &inputs);
    // Long after the store's certificates expired: every one is renewed.
    input.now = 200_000_000_000;
    let plan = plan_sync(&input, &|_| None).await.expect("observed");
    let export = plan.steps.iter().find(|s| s.id == "features:103:root").expect("the root the PKI makes is exported");
    assert_eq!(export.reason, "Step-CA's PKI is made in this run");
    let last_of_ca = plan.steps.iter().filter(|s| s.id.starts_with("features:103:0")).last().unwrap();
    assert!(last_of_ca.title.contains("acme-directory"), "{}", last_of_ca.title);
    let renewals: Vec<_> = plan.steps.iter().filter(|s| matches!(s.action, Action::Certificate { .. })).collect();
    assert_eq!(renewals.len(), rig.model.certificates.len(), "{:#?}", plan.steps.iter().map(|s| &s.id).collect::<Vec<_>>());
    for renewal in renewals {
        assert!(renewal.after.contains(&export.id) && renewal.after.contains(&last_of_ca.id), "{}: {:?}", renewal.id, renewal.after);
    }
}
