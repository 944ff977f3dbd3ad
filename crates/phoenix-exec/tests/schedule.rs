//! The applier's scheduling, against a fake Proxmox API that records how many requests run at
//! once: steps sharing a lock never overlap, node-locking steps respect the per-node limit,
//! independent steps overlap, and a failure skips exactly what depends on it.

use phoenix_core::plan::pve::{ApiRequest, Method};
use phoenix_core::plan::{Action, Domain, Plan, Step};
use phoenix_exec::sync::{apply, ApplyOptions, Drivers, PortainerApi, PveApi, PveReply, StepOutcome};
use phoenix_exec::{DriverError, Issued, Issuer, Target};
use serde_json::Value;
use std::cell::RefCell;
use std::collections::BTreeMap;

#[derive(Default)]
struct Recorder {
    running: RefCell<BTreeMap<String, usize>>,
    peak: RefCell<BTreeMap<String, usize>>,
}

impl PveApi for Recorder {
    async fn call(&self, request: &ApiRequest) -> Result<PveReply, DriverError> {
        // The path names the group the request belongs to: /group/<name>/...
        let group = request.path.split('/').nth(2).unwrap_or_default().to_string();
        if request.path.ends_with("/fail") {
            return Err(DriverError::new("refused"));
        }
        let now = {
            let mut running = self.running.borrow_mut();
            let count = running.entry(group.clone()).or_default();
            *count += 1;
            *count
        };
        {
            let mut peak = self.peak.borrow_mut();
            let max = peak.entry(group.clone()).or_default();
            *max = (*max).max(now);
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        *self.running.borrow_mut().get_mut(&group).unwrap() -= 1;
        Ok(Value::Null.into())
    }
}

struct Unused;

impl PortainerApi for Unused {
    async fn initialized(&self) -> Result<bool, DriverError> {
        unreachable!()
    }
    async fn endpoints(&self) -> Result<Vec<phoenix_core::plan::portainer::EndpointObserved>, DriverError> {
        unreachable!()
    }
    async fn stacks(&self) -> Result<Vec<phoenix_core::plan::portainer::StackObserved>, DriverError> {
        unreachable!()
    }
    async fn apply(&self, _: &phoenix_core::plan::portainer::Operation) -> Result<(), DriverError> {
        unreachable!()
    }
}

impl Target for Unused {
    async fn read(&self, _: &phoenix_core::deploy::Place) -> Result<Option<Vec<u8>>, DriverError> {
        unreachable!()
    }
    async fn write(&self, _: &phoenix_core::deploy::FileWrite) -> Result<(), DriverError> {
        unreachable!()
    }
    async fn remove(&self, _: &phoenix_core::deploy::Place) -> Result<(), DriverError> {
        unreachable!()
    }
    async fn run(&self, _: &phoenix_core::deploy::PostAction) -> Result<(), DriverError> {
        unreachable!()
    }
}

impl Issuer for Unused {
    async fn issue<T: phoenix_exec::Target>(&self, _: &phoenix_core::certificates::renewal::OrderRequest, _: &T) -> Result<Issued, DriverError> {
        unreachable!()
    }
}

fn step(id: &str, path: &str, after: &[&str], lock: Option<&str>, node: Option<&str>) -> Step {
    Step {
        id: id.into(),
        domain: Domain::Firewall,
        title: id.into(),
        reason: String::new(),
        diff: String::new(),
        action: Action::Pve { requests: vec![ApiRequest::new(Method::Put, path, Vec::new())] },
        after: after.iter().map(|a| a.to_string()).collect(),
        lock: lock.map(str::to_string),
        node: node.map(str::to_string),
        calls: 1,
    }
}

async fn run(plan: &Plan, node_parallel: usize) -> (phoenix_exec::sync::Summary, Recorder) {
    let recorder = Recorder::default();
    let drivers = Drivers { model: &Default::default(), pve: &recorder, portainer: &Unused, target: &Unused, issuer: &Unused };
    let options =
        ApplyOptions { parallel: 64, node_parallel, run_commands: false, store_dir: String::new(), host_trust_file: String::new(), now: 0 };
    let summary = apply(plan, &drivers, &options, &mut |_| {}).await;
    (summary, recorder)
}

#[tokio::test]
async fn locks_serialize_node_limits_cap_and_the_rest_overlaps() {
    let mut steps = Vec::new();
    for i in 0..6 {
        steps.push(step(&format!("locked-{i}"), "/g/locked/x", &[], Some("guest:101"), None));
        steps.push(step(&format!("node-{i}"), "/g/node/x", &[], None, Some("pve")));
        steps.push(step(&format!("free-{i}"), "/g/free/x", &[], None, None));
    }
    let (summary, recorder) = run(&Plan { schema_version: 1, steps, notes: Vec::new() }, 2).await;
    assert_eq!(summary.done, 18);
    let peak = recorder.peak.borrow();
    assert_eq!(peak["locked"], 1, "one lock, one at a time");
    assert_eq!(peak["node"], 2, "the per-node limit");
    assert_eq!(peak["free"], 6, "independent steps overlap");
}

#[tokio::test]
async fn the_longest_remaining_chain_starts_first() {
    // In plan order the short steps come first; with one step at a time, the chain's head
    // still goes first, so the critical path is not queued behind work that can wait.
    let steps = vec![
        step("short-1", "/g/x/ok", &[], None, None),
        step("short-2", "/g/x/ok", &[], None, None),
        step("chain-1", "/g/x/ok", &[], None, None),
        step("chain-2", "/g/x/ok", &["chain-1"], None, None),
        step("chain-3", "/g/x/ok", &["chain-2"], None, None),
    ];
    let recorder = Recorder::default();
    let drivers = Drivers { model: &Default::default(), pve: &recorder, portainer: &Unused, target: &Unused, issuer: &Unused };
    let options = ApplyOptions {
        parallel: 1,
        node_parallel: 1,
        run_commands: false,
        store_dir: String::new(),
        host_trust_file: String::new(),
        now: 0,
    };
    let mut started = Vec::new();
    let summary = apply(&Plan { schema_version: 1, steps, notes: Vec::new() }, &drivers, &options, &mut |event| {
        if let phoenix_exec::sync::Event::Started { id, .. } = event {
            started.push(id.clone());
        }
    })
    .await;
    assert_eq!(summary.done, 5);
    // Once the chain's last step is as short as the rest, plan order decides.
    assert_eq!(started, ["chain-1", "chain-2", "short-1", "short-2", "chain-3"]);
}

#[tokio::test]
async fn a_failure_skips_its_dependents_transitively_and_nothing_else() {
    let steps = vec![
        step("a", "/g/x/fail", &[], None, None),
        step("b", "/g/x/ok", &["a"], None, None),
        step("c", "/g/x/ok", &["b"], None, None),
        step("d", "/g/x/ok", &[], None, None),
        step("e", "/g/x/ok", &["d", "c"], None, None),
        step("f", "/g/x/ok", &["d", "gone-from-the-plan"], None, None),
    ];
    let (summary, _) = run(&Plan { schema_version: 1, steps, notes: Vec::new() }, 2).await;
    let outcome = |id: &str| summary.results.iter().find(|r| r.id == id).unwrap().outcome.clone();
    assert!(matches!(outcome("a"), StepOutcome::Failed { .. }));
    assert_eq!(outcome("b"), StepOutcome::Skipped { because: "a did not succeed".into() });
    assert_eq!(outcome("c"), StepOutcome::Skipped { because: "b did not succeed".into() });
    assert!(matches!(outcome("e"), StepOutcome::Skipped { .. }));
    assert!(matches!(outcome("d"), StepOutcome::Done { .. }));
    assert!(matches!(outcome("f"), StepOutcome::Done { .. }), "a dependency outside the plan is already satisfied");
    assert_eq!((summary.done, summary.failed, summary.skipped), (2, 1, 3));
}

mod files {
    //! A rendered file step on the local machine: validated and reloaded by real commands, and
    //! put back when either fails.
    use super::*;
    use phoenix_core::deploy::Machine;
    use phoenix_core::render::RenderedFile;

    /// Local files, commands by `sh -c` (the host side of phoenix-drivers' target, minimal).
    struct Local;

    impl Target for Local {
        async fn read(&self, place: &phoenix_core::deploy::Place) -> Result<Option<Vec<u8>>, DriverError> {
            Ok(std::fs::read(&place.path).ok())
        }
        async fn write(&self, file: &phoenix_core::deploy::FileWrite) -> Result<(), DriverError> {
            std::fs::write(&file.place.path, &file.content).map_err(|e| DriverError::new(e.to_string()))
        }
        async fn remove(&self, place: &phoenix_core::deploy::Place) -> Result<(), DriverError> {
            let _ = std::fs::remove_file(&place.path);
            Ok(())
        }
        async fn run(&self, action: &phoenix_core::deploy::PostAction) -> Result<(), DriverError> {
            let phoenix_core::deploy::PostAction::Command { command, .. } = action else { unreachable!() };
            let status = std::process::Command::new("sh").args(["-c", command]).status().map_err(|e| DriverError::new(e.to_string()))?;
            if status.success() {
                Ok(())
            } else {
                Err(DriverError::new(format!("`{command}` failed")))
            }
        }
    }

    async fn write(path: &std::path::Path, validate: &str, reload: &str) -> StepOutcome {
        let mut file = RenderedFile::new(Machine::Host, path.to_string_lossy(), "new\n".into());
        file.validate = Some(validate.replace("{}", &path.to_string_lossy()));
        file.reload = Some(reload.into());
        let step = Step { action: Action::File { file }, ..step("file", "/", &[], None, None) };
        let plan = Plan { schema_version: 1, steps: vec![step], notes: Vec::new() };
        let drivers =
            Drivers { model: &Default::default(), pve: &Recorder::default(), portainer: &Unused, target: &Local, issuer: &Unused };
        let options = ApplyOptions {
            parallel: 1,
            node_parallel: 1,
            run_commands: true,
            store_dir: String::new(),
            host_trust_file: String::new(),
            now: 0,
        };
        apply(&plan, &drivers, &options, &mut |_| {}).await.results[0].outcome.clone()
    }

    #[tokio::test]
    async fn a_file_failing_validation_or_reload_is_put_back() {
        let dir = std::env::temp_dir().join(format!("phoenix-file-step-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("service.conf");
        std::fs::write(&path, "old\n").unwrap();
        // The validator sees the new file in place, and refuses it.
        let refused = write(&path, "! grep -q new {}", "true").await;
        assert!(matches!(refused, StepOutcome::Failed { .. }), "{refused:?}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old\n");
        let reload_failed = write(&path, "grep -q new {}", "exit 3").await;
        assert!(matches!(reload_failed, StepOutcome::Failed { ref message } if message.contains("restored")), "{reload_failed:?}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old\n");
        assert!(matches!(write(&path, "grep -q new {}", "true").await, StepOutcome::Done { .. }));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
