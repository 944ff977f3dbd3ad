//! The provisioning core on data: the example's guests planned from nothing (snapshot), the
//! probe's parser, and the planner's reasons (drift, watched files, guarded commands, what
//! waits).

use phoenix_core::deploy::FileMeta;
use phoenix_core::provision::features::Inputs;
use phoenix_core::provision::probe;
use phoenix_core::provision::resource::{FileState, ServiceState};
use phoenix_core::provision::{self, Action, GuestState, ManagedFile, Resource};
use phoenix_testkit::{example_config, example_source};
use serde_json::{json, Value};
use std::collections::BTreeMap;

fn model_with(edit: impl FnOnce(&mut Value)) -> phoenix_model::Model {
    let mut source = example_source();
    source.edit_json(&example_config().join("phoenix_lxc_configs.json"), edit);
    phoenix_model::check(&example_config(), &source).model.expect("a model")
}

fn inputs() -> Inputs {
    Inputs { root_ca_pem: Some("-----BEGIN CERTIFICATE-----\nROOT\n-----END CERTIFICATE-----\n".into()), scripts: BTreeMap::new(), agent_secret: None }
}

fn plans_from_nothing(model: &phoenix_model::Model, inputs: &Inputs) -> String {
    let mut out = String::new();
    for (id, desired) in provision::desired(model, inputs) {
        out.push_str(&format!("guest {id}\n{}", provision::plan(&desired, &GuestState::default()).to_text()));
    }
    out
}

/// What `feature` changes in `desired`'s guest from nothing, described.
fn changes_of(desired: &provision::Desired, feature: &str) -> Vec<String> {
    let plan = provision::plan(desired, &GuestState::default());
    plan.changes.iter().filter(|c| c.feature == feature).map(|c| c.action.describe()).collect()
}

#[test]
fn the_example_from_nothing() {
    let model = model_with(|_| {});
    insta::assert_snapshot!(plans_from_nothing(&model, &inputs()));
}

#[test]
fn trusted_ca_waits_for_the_root_and_the_rest_goes_on() {
    let model = model_with(|_| {});
    let desired = provision::desired(&model, &Inputs::default()).remove(&101).unwrap();
    let plan = provision::plan(&desired, &GuestState::default());
    assert_eq!(plan.waiting.len(), 1);
    assert!(plan.waiting[0].0 == "trusted_ca" && plan.waiting[0].1.contains("not in phoenix's store"), "{:?}", plan.waiting);
    assert!(plan.changes.iter().any(|c| c.feature == "gateway"));
}

fn state_with_everything(desired: &provision::Desired) -> GuestState {
    let mut state = GuestState::default();
    for resource in desired.resources() {
        match resource {
            Resource::Packages { names } => state.packages.extend(names.iter().cloned()),
            Resource::File(file) => {
                let meta = FileMeta { mode: file.mode, owner: file.owner.clone() };
                state.files.insert(file.path.clone(), FileState { sha256: file.sha256(), meta });
            }
            Resource::Download(download) => {
                let meta = FileMeta { mode: download.mode, owner: download.owner.clone() };
                state.files.insert(download.path.clone(), FileState { sha256: download.sha256.clone(), meta });
            }
            Resource::Command(command) => drop(state.done.insert(command.name.clone())),
            Resource::Service { unit, .. } => {
                state.services.insert(unit.clone(), ServiceState { enabled: "enabled".into(), active: "active".into() });
            }
            Resource::Group { name } => drop(state.groups.insert(name.clone())),
            Resource::User { name, .. } => drop(state.users.insert(name.clone())),
        }
    }
    state
}

#[test]
fn a_changed_daemon_json_restarts_docker_and_nothing_else_changes() {
    let model = model_with(|_| {});
    let desired = provision::desired(&model, &inputs()).remove(&1001).unwrap();
    let mut state = state_with_everything(&desired);
    assert!(provision::plan(&desired, &state).is_empty(), "everything in place plans nothing");
    state.files.get_mut("/etc/docker/daemon.json").unwrap().sha256 = "0".repeat(64);
    let plan = provision::plan(&desired, &state);
    let changes: Vec<(String, String)> = plan.changes.iter().map(|c| (c.action.describe(), c.reason.clone())).collect();
    assert_eq!(
        changes,
        [
            ("write /etc/docker/daemon.json (root:root, 0644)".to_string(), "content differs".to_string()),
            ("restart docker".to_string(), "/etc/docker/daemon.json changed".to_string()),
        ]
    );
}

#[test]
fn docker_uses_the_dns_guest_when_dns_runs_in_one() {
    let mut source = example_source();
    source.edit_json(&example_config().join("phoenix_hypervisor_config.json"), |v| v["edge"]["dns_guest"] = json!(103));
    let model = phoenix_model::load(&example_config(), &source).model.unwrap();
    let desired = provision::desired(&model, &inputs()).remove(&1001).unwrap();
    let daemon = desired.resources().into_iter().find_map(|r| match r {
        Resource::File(f) if f.path == "/etc/docker/daemon.json" => Some(String::from_utf8(f.content.clone()).unwrap()),
        _ => None,
    });
    assert_eq!(daemon.as_deref(), Some("{\n  \"dns\": [\n    \"10.0.0.10\"\n  ]\n}\n"));
}

#[test]
fn the_application_script_runs_when_it_changed_or_its_health_check_fails() {
    let model = model_with(|v| v["lxc_configs"]["102"]["application_script"] = json!("setup_traefik.sh"));
    let mut inputs = inputs();
    inputs.scripts.insert((phoenix_model::model::GuestKind::Lxc, "setup_traefik.sh".into()), b"#!/bin/sh\necho configured\n".to_vec());
    let desired = provision::desired(&model, &inputs).remove(&102).unwrap();
    let mut state = state_with_everything(&desired);
    assert!(provision::plan(&desired, &state).is_empty());
    // 102 has no health check: only a changed script reruns it.
    state.files.remove("/usr/local/lib/phoenix/setup_traefik.sh");
    let plan = provision::plan(&desired, &state);
    let described: Vec<String> = plan.changes.iter().map(|c| format!("{} ({})", c.action.describe(), c.reason)).collect();
    assert_eq!(described, ["write /usr/local/lib/phoenix/setup_traefik.sh (root:root, 0755) (absent)", "run application_script (/usr/local/lib/phoenix/setup_traefik.sh changed)"]);
    let Action::RunCommand { command, .. } = &plan.changes[1].action else { panic!() };
    assert_eq!(command.log.as_deref(), Some("/var/log/phoenix/setup_traefik.sh.log"));
    // With a health check that fails, the script runs again though it did not change.
    let model = model_with(|v| {
        v["lxc_configs"]["102"]["application_script"] = json!("setup_traefik.sh");
        v["lxc_configs"]["102"]["health_check"] = json!({ "command": "curl -fs localhost:8080/ping" });
    });
    let desired = provision::desired(&model, &inputs).remove(&102).unwrap();
    let mut state = state_with_everything(&desired);
    state.done.remove("application_script");
    let plan = provision::plan(&desired, &state);
    assert_eq!(plan.changes.len(), 1);
    assert_eq!(plan.changes[0].reason, "`curl -fs localhost:8080/ping` does not hold");
}

#[test]
fn the_probe_passes_values_as_arguments_and_refuses_what_it_did_not_print() {
    let file = Resource::File(ManagedFile::new("/etc/it's here", b"x".to_vec(), 0o600));
    let (script, args) = probe::script(&[&file]);
    assert!(!script.contains("it's"), "values never spliced into the script: {script}");
    assert_eq!(args, ["/etc/it's here"]);
    let digest = "a".repeat(64);
    let found = probe::parse(&format!("package\tnginx\tinstalled\npackage\tcurl\tconfig-files\nfile\t/etc/x\t{}\t640 root:www-data\nservice\tnginx\tenabled\tfailed\n", digest)).unwrap();
    assert!(found.packages.contains("nginx") && !found.packages.contains("curl"), "removed but not purged is not installed");
    assert_eq!(found.files["/etc/x"].meta, FileMeta { mode: 0o640, owner: "root:www-data".into() });
    assert!(found.services["nginx"].is_enabled() && !found.services["nginx"].is_active());
    let error = probe::parse("Welcome to Ubuntu\n").unwrap_err();
    assert!(error.contains("unexpected line"), "{error}");
    let error = probe::parse("file\t/etc/x\tsha256sum: ü\t644 root:root\n").unwrap_err();
    assert!(error.contains("unexpected digest"), "{error}");
}

#[test]
fn a_secret_file_never_prints() {
    let mut file = ManagedFile::new("/etc/portainer/agent-secret", b"s3cr3t-value".to_vec(), 0o600);
    file.secret = true;
    assert!(!format!("{file:?}").contains("s3cr3t"));
    let change = provision::plan(
        &provision::Desired {
            guest: 1001,
            kind: phoenix_model::model::GuestKind::Vm,
            features: vec![provision::features::Feature { name: "portainer".into(), resources: Ok(vec![Resource::File(file)]) }],
            not_provisioned: Vec::new(),
            health_check: None,
        },
        &GuestState::default(),
    );
    let json = serde_json::to_string(&change).unwrap();
    assert!(!json.contains("s3cr3t") && !format!("{:?}", change.changes[0].action.shell()).contains("s3cr3t"), "{json}");
}

/// A VM's NFS volume is a mount unit named as systemd requires: the name phoenix gives is the
/// one `systemd-escape --path --suffix=mount` prints, and `systemd-analyze verify` accepts the
/// rendered unit under it (it refuses a unit whose name does not match its Where=).
#[test]
fn an_nfs_volume_is_a_mount_unit_systemd_accepts() {
    use phoenix_core::provision::mounts::{mount_unit, mount_unit_name};
    for path in ["/persistent-storage", "/srv/data.v2/x_y", "/mnt/.hidden", "/a-b/c"] {
        let real = std::process::Command::new("systemd-escape").args(["--path", "--suffix=mount", path]).output().expect("systemd-escape (systemd)");
        assert_eq!(mount_unit_name(path), String::from_utf8_lossy(&real.stdout).trim(), "{path}");
    }
    let model = model_with(|_| {});
    let vm = &model.guests[&1001];
    let volume = &vm.nfs_volumes[0];
    assert_eq!((volume.server.value.as_str(), volume.path.value.as_str()), ("10.0.0.13", "/quickOS/vm-persistent-data/1001"));
    let dir = std::env::temp_dir().join(format!("phoenix-mount-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let unit = dir.join(mount_unit_name(&volume.mount_point.value));
    std::fs::write(&unit, mount_unit(volume)).unwrap();
    let verified = std::process::Command::new("systemd-analyze").arg("verify").arg(&unit).output().expect("systemd-analyze");
    assert!(verified.status.success(), "{}", String::from_utf8_lossy(&verified.stderr));
    let misnamed = dir.join("data.mount");
    std::fs::write(&misnamed, mount_unit(volume)).unwrap();
    let refused = std::process::Command::new("systemd-analyze").arg("verify").arg(&misnamed).output().unwrap();
    assert!(!refused.status.success(), "a misnamed unit is refused, so the check above can fail");
    let _ = std::fs::remove_dir_all(&dir);

    // Planned: the client, the unit, a daemon-reload, the mount enabled and (re)started: its unit
    // is written in this run, so it is restarted whatever it ran before (`restart` starts an
    // inactive unit).
    let desired = provision::desired(&model, &inputs()).remove(&1001).unwrap();
    let nfs = changes_of(&desired, "nfs_volumes");
    assert_eq!(
        nfs,
        [
            "install nfs-common",
            r"write /etc/systemd/system/persistent\x2dstorage.mount (root:root, 0644)",
            "run daemon-reload",
            r"enable persistent\x2dstorage.mount",
            r"restart persistent\x2dstorage.mount",
        ]
    );
}

/// A malformed NFS volume is an error with its place, a volume of another type a warning.
#[test]
fn malformed_and_foreign_volumes_are_reported() {
    let mut source = example_source();
    source.edit_json(&example_config().join("phoenix_vm_configs.json"), |v| {
        let vm = v["vms"].as_array_mut().unwrap().iter_mut().find(|g| g["vmid"] == 1001).unwrap();
        vm["volumes"] = json!([{ "type": "nfs", "server": "10.0.0.13", "path": "../etc", "mount_point": "/data" }, { "type": "cifs" }]);
    });
    let report = phoenix_model::check(&example_config(), &source);
    let codes: Vec<&str> = report.diagnostics.iter().map(|d| d.code).filter(|c| c.starts_with("PHX-VOL")).collect();
    assert_eq!(codes, ["PHX-VOL-001", "PHX-VOL-002"]);
    assert!(report.model.unwrap().guests[&1001].nfs_volumes.is_empty());
}

/// `nvidia` in a container: it waits without verified sources (saying which), then plans the
/// runfile (checked), its user-space install without a kernel module, the toolkit's signed
/// repository and package, and Docker's `nvidia` runtime in the docker feature's daemon.json.
#[test]
fn nvidia_plans_the_driver_user_space_and_the_container_toolkit() {
    let with_features = |v: &mut Value| {
        v["lxc_configs"]["102"]["features"] = json!(["base_setup", "docker", "nvidia"]);
        v["lxc_configs"]["102"]["gpu_assignment"] = json!("0");
    };
    let model = model_with(with_features);
    let desired = provision::desired(&model, &inputs()).remove(&102).unwrap();
    let plan = provision::plan(&desired, &GuestState::default());
    let waiting: Vec<&str> = plan.waiting.iter().filter(|w| w.0 == "nvidia").map(|w| w.1.as_str()).collect();
    assert!(waiting.len() == 1 && waiting[0].contains("software.nvidia_driver"), "{waiting:?}");

    let runfile = "https://us.download.nvidia.com/XFree86/Linux-x86_64/580.76.05/NVIDIA-Linux-x86_64-580.76.05.run";
    let mut source = example_source();
    source.edit_json(&example_config().join("phoenix_lxc_configs.json"), with_features);
    source.edit_json(&example_config().join("phoenix_hypervisor_config.json"), |v| {
        v["software"] = json!({
            "nvidia_driver": { "url": runfile, "sha256": "a".repeat(64) },
            "nvidia_container_toolkit": { "url": "https://nvidia.github.io/libnvidia-container/gpgkey", "sha256": "b".repeat(64) },
        });
    });
    let model = phoenix_model::check(&example_config(), &source).model.unwrap();
    let desired = provision::desired(&model, &inputs()).remove(&102).unwrap();
    let nvidia = changes_of(&desired, "nvidia");
    assert_eq!(
        nvidia,
        [
            format!("install /var/cache/phoenix/NVIDIA-Linux-x86_64-580.76.05.run from {runfile} (root:root, 0755)"),
            "run nvidia-driver".to_string(),
            "install /etc/apt/keyrings/nvidia-container-toolkit.asc from https://nvidia.github.io/libnvidia-container/gpgkey (root:root, 0644)".to_string(),
            "write /etc/apt/sources.list.d/nvidia-container-toolkit.list (root:root, 0644)".to_string(),
            "install nvidia-container-toolkit".to_string(),
        ]
    );
    let install = desired.resources().into_iter().find_map(|r| match r {
        Resource::Command(c) if c.name == "nvidia-driver" => Some(c.clone()),
        _ => None,
    });
    let install = install.unwrap();
    assert!(install.run.contains("--no-kernel-module"), "{}", install.run);
    assert_eq!(install.done_when.as_deref(), Some("[ -e /usr/lib/x86_64-linux-gnu/libnvidia-ml.so.580.76.05 ]"));
    let daemon = desired.resources().into_iter().find_map(|r| match r {
        Resource::File(f) if f.path == "/etc/docker/daemon.json" => Some(String::from_utf8_lossy(&f.content).into_owned()),
        _ => None,
    });
    let daemon: Value = serde_json::from_str(&daemon.unwrap()).unwrap();
    assert_eq!(daemon["runtimes"]["nvidia"]["path"], "nvidia-container-runtime");
    assert_eq!(phoenix_core::provision::nvidia::driver_version("https://x/NVIDIA-Linux-x86_64-580.76.05.run"), Some("580.76.05"));
    assert_eq!(phoenix_core::provision::nvidia::driver_version("https://x/driver.run"), None);
}

fn with_step_ca_source() -> phoenix_model::Model {
    let mut source = example_source();
    source.edit_json(&example_config().join("phoenix_hypervisor_config.json"), |v| {
        v["software"] = json!({ "step_ca": { "url": "https://example.org/step-ca", "sha256": "c".repeat(64) } });
    });
    phoenix_model::check(&example_config(), &source).model.unwrap()
}

/// step_ca in guest 103: the PKI made in the guest, ca.json, the binary, the unit, the service
/// and the wait for the ACME directory; then sync exports the root the PKI made to the store,
/// and again only when the guest's root is not the store's.
#[test]
fn step_ca_is_set_up_in_its_guest_and_its_root_exported_to_the_store() {
    use phoenix_core::plan::{features::FeatureObservation, Action as StepAction, Observed};
    let model = with_step_ca_source();
    let desired = provision::desired(&model, &inputs()).remove(&103).unwrap();
    let step_ca = changes_of(&desired, "step_ca");
    assert_eq!(
        step_ca,
        [
            "install openssl",
            "create group step",
            "create user step (step)",
            "run pki",
            "install /usr/local/bin/step-ca from https://example.org/step-ca (root:root, 0755)",
            "write /etc/step-ca/config/ca.json (root:root, 0644)",
            "write /etc/systemd/system/step-ca.service (root:root, 0644)",
            "run daemon-reload",
            "enable step-ca",
            "restart step-ca",
            "run acme-directory",
        ]
    );
    let store = "/var/lib/phoenix/certs";
    let observed = |state: GuestState, root: Option<&str>| Observed {
        features: [(103, FeatureObservation::Found(state))].into(),
        feature_inputs: inputs(),
        step_ca_root: root.map(str::to_string),
        ..Observed::default()
    };
    let exports = |observed: &Observed| -> Vec<phoenix_core::plan::Step> {
        phoenix_core::plan::features::steps(&model, observed, &[], store).into_iter().filter(|s| s.id == "features:103:root").collect()
    };
    let from_nothing = exports(&observed(GuestState::default(), None));
    assert_eq!(from_nothing.len(), 1);
    assert_eq!(from_nothing[0].reason, "Step-CA's PKI is made in this run");
    assert!(from_nothing[0].after[0].starts_with("features:103:"), "after the guest's last change: {:?}", from_nothing[0].after);
    let StepAction::ExportRoot { from, to } = &from_nothing[0].action else { panic!("{:?}", from_nothing[0].action) };
    assert_eq!((from.path.as_str(), to.path.as_str()), ("/etc/step-ca/certs/root_ca.crt", "/var/lib/phoenix/certs/root_ca.crt"));
    let set_up = state_with_everything(&desired);
    let other = "-----BEGIN CERTIFICATE-----\nOTHER\n-----END CERTIFICATE-----\n";
    assert_eq!(exports(&observed(set_up.clone(), Some(other)))[0].reason, "the store's root is not the one Step-CA's guest holds");
    let same = inputs().root_ca_pem.unwrap();
    assert!(exports(&observed(set_up, Some(&same))).is_empty(), "the store has the guest's root: nothing to export");
}

/// ca.json names the PKI step_ca makes, serves the CA's name and address on its port, and has
/// the ACME provisioner the Traefik and phoenix's directory URL name, with 24-hour
/// certificates (Traefik is told the same).
#[test]
fn step_ca_s_configuration_is_what_the_rest_of_the_system_expects() {
    let model = with_step_ca_source();
    let config: Value = serde_json::from_str(&phoenix_core::provision::step_ca::ca_json(&model, &model.guests[&103])).unwrap();
    assert_eq!(config["root"], "/etc/step-ca/certs/root_ca.crt");
    assert_eq!(config["crt"], "/etc/step-ca/certs/intermediate_ca.crt");
    assert_eq!(config["key"], "/etc/step-ca/secrets/intermediate_ca_key");
    assert_eq!(config["address"], ":9000");
    assert_eq!(config["dnsNames"], json!(["ca.internal.thinkheads.ai", "10.0.0.10"]));
    assert_eq!(config["db"], json!({ "type": "badgerv2", "dataSource": "/etc/step-ca/db" }));
    let provisioner = &config["authority"]["provisioners"][0];
    assert_eq!((provisioner["type"].as_str(), provisioner["name"].as_str()), (Some("ACME"), Some("acme")));
    assert_eq!(provisioner["claims"]["defaultTLSCertDuration"], "24h");
    let directory = phoenix_core::render::traefik::acme_directory(&model).unwrap();
    assert_eq!(directory, "https://ca.internal.thinkheads.ai:9000/acme/acme/directory");
    assert_eq!(phoenix_core::render::traefik::static_config(&model)["certificatesResolvers"]["stepca"]["acme"]["certificatesDuration"], 24);
}

/// The Portainer server on the primary (the configuration's compose definition in the folder
/// its path names, the agent secret in an env file next to it, `docker compose up`, its
/// `/api/system/status` waited for) and the agent on VM 1002 (portainer/agent of the server's
/// version, `/ping`); the secret only ever in a 0600 file the plan does not show, and both wait
/// without it.
#[test]
fn the_portainer_server_and_agent_run_with_compose_and_the_agent_secret_in_a_file() {
    let model = model_with(|_| {});
    let waiting = provision::desired(&model, &inputs()).remove(&1001).unwrap();
    let plan = provision::plan(&waiting, &GuestState::default());
    assert!(plan.waiting.iter().any(|(f, why)| f == "portainer" && why.contains("agent secret")), "{:?}", plan.waiting);

    let secret = "agent-secret-value-7f3a";
    let with_secret = Inputs { agent_secret: Some(phoenix_model::secret::Secret::new(secret)), ..inputs() };
    let server = provision::desired(&model, &with_secret).remove(&1001).unwrap();
    let portainer = changes_of(&server, "portainer");
    let plan = provision::plan(&server, &GuestState::default());
    assert_eq!(
        portainer,
        [
            "install docker-compose-v2",
            "write /persistent-storage/portainer/docker-compose.yml (root:root, 0644)",
            "write /persistent-storage/portainer/docker-compose.phoenix.yml (root:root, 0644)",
            "write /persistent-storage/portainer/phoenix.env (root:root, 0600)",
            "run portainer-up",
            "run portainer-status",
        ]
    );
    assert_eq!(plan.changes.last().unwrap().feature, "portainer", "Portainer comes last in its guest");
    let text = plan.to_text();
    assert!(!text.contains(secret), "the plan never shows the secret:\n{text}");
    let resources = server.resources();
    let env = resources.iter().find_map(|r| match r {
        Resource::File(f) if f.path.ends_with("phoenix.env") => Some(f),
        _ => None,
    });
    let env = env.unwrap();
    assert!(env.secret && env.content == format!("AGENT_SECRET={secret}\n").as_bytes());
    let scripts: Vec<String> = plan.changes.iter().map(|c| format!("{:?}", c.action.shell().args)).collect();
    assert!(scripts.iter().all(|args| !args.contains(secret)), "never on a command line");
    let up = resources.iter().find_map(|r| match r {
        Resource::Command(c) if c.name == "portainer-up" => Some(c.run.clone()),
        _ => None,
    });
    assert_eq!(
        up.unwrap(),
        "cd '/persistent-storage/portainer' && docker compose -f '/persistent-storage/portainer/docker-compose.yml' -f '/persistent-storage/portainer/docker-compose.phoenix.yml' up -d"
    );
    let status = resources.iter().find_map(|r| match r {
        Resource::Command(c) if c.name == "portainer-status" => c.done_when.clone(),
        _ => None,
    });
    assert!(status.unwrap().contains("--resolve 'portainer.phoenix.thinkheads.ai:9443:127.0.0.1' 'https://portainer.phoenix.thinkheads.ai:9443/api/system/status'"));

    let agent = provision::desired(&model, &with_secret).remove(&1002).unwrap();
    let compose = agent.resources().into_iter().find_map(|r| match r {
        Resource::File(f) if f.path == "/etc/phoenix/portainer-agent/docker-compose.yml" => Some(String::from_utf8_lossy(&f.content).into_owned()),
        _ => None,
    });
    let compose: Value = yaml_serde::from_str(&compose.unwrap()).expect("valid YAML");
    assert_eq!(compose["services"]["agent"]["image"], "portainer/agent:2.21.4", "the server's version");
    assert_eq!(compose["services"]["agent"]["env_file"], json!(["phoenix.env"]));
    assert_eq!(compose["services"]["agent"]["ports"], json!(["9001:9001"]));
}

/// A mount point systemd would simplify (`//`, `.`) is refused: its unit would be named
/// otherwise than phoenix names it, and systemd refuses such a unit.
#[test]
fn mount_points_systemd_would_rename_are_refused() {
    for bad in ["/a//b", "/a/./b", "/.", "/data/../etc", "relative"] {
        let mut source = example_source();
        source.edit_json(&example_config().join("phoenix_vm_configs.json"), |v| {
            let vm = v["vms"].as_array_mut().unwrap().iter_mut().find(|g| g["vmid"] == 1001).unwrap();
            vm["volumes"] = json!([{ "type": "nfs", "server": "10.0.0.13", "path": "/export", "mount_point": bad }]);
        });
        let report = phoenix_model::check(&example_config(), &source);
        assert!(report.diagnostics.iter().any(|d| d.code == "PHX-VOL-001"), "{bad} is refused");
    }
}
