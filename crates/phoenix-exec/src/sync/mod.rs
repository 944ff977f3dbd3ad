//! `phoenix sync`: observe, plan (phoenix-core), apply. The applier runs the plan's steps as a
//! graph: a step starts once every step it waits for has succeeded, independent steps run
//! concurrently (at most `parallel` at once, steps sharing a lock one at a time, node-locking
//! steps at most `node_parallel` per node), a failed step skips its dependents and nothing
//! else, and every start and end is reported as an event.

pub mod observe;
mod pve;

use crate::certs::{self, apply_change, RenewRequest};
use crate::traits::{DriverError, Issuer, Target};
pub use crate::traits::{PortainerApi, PveApi, PveReply, Watch};
use futures_util::stream::{FuturesUnordered, StreamExt};
use phoenix_core::deploy::{FileWrite, Place, PostAction};
use phoenix_core::plan::{Action, Plan, Step};
use phoenix_core::render::RenderedFile;
use phoenix_model::model::Model;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

/// The drivers a sync uses.
pub struct Drivers<'a, P, Q, T, I> {
    pub model: &'a Model,
    pub pve: &'a P,
    pub portainer: &'a Q,
    pub target: &'a T,
    pub issuer: &'a I,
}

#[derive(Debug, Clone)]
pub struct ApplyOptions {
    pub parallel: usize,
    pub node_parallel: usize,
    /// Run validate and reload commands and post-renewal actions (off in a rehearsal where
    /// guests are folders).
    pub run_commands: bool,
    pub store_dir: String,
    pub host_trust_file: String,
    pub now: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum StepOutcome {
    Done {
        #[serde(skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    Failed {
        message: String,
    },
    Skipped {
        because: String,
    },
}

/// Progress, one per step start and end, and a running task's newest log line (JSON Lines
/// with `--format json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    Started {
        id: String,
        title: String,
    },
    Finished {
        id: String,
        title: String,
        #[serde(flatten)]
        outcome: StepOutcome,
        millis: u64,
    },
    /// A line a running step's Proxmox VE task logged (a clone's `transferred ...`).
    Progress {
        id: String,
        line: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepResult {
    pub id: String,
    pub title: String,
    #[serde(flatten)]
    pub outcome: StepOutcome,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub schema_version: u32,
    pub done: usize,
    pub failed: usize,
    pub skipped: usize,
    pub results: Vec<StepResult>,
}

impl Summary {
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for result in self.results.iter().filter(|r| !matches!(r.outcome, StepOutcome::Done { note: None })) {
            let line = match &result.outcome {
                StepOutcome::Done { note } => format!("done     {} ({})", result.title, note.clone().unwrap_or_default()),
                StepOutcome::Failed { message } => format!("FAILED   {}: {message}", result.title),
                StepOutcome::Skipped { because } => format!("skipped  {}: {because}", result.title),
            };
            out.push_str(&line);
            out.push('\n');
        }
        out.push_str(&format!("{} done, {} failed, {} skipped\n", self.done, self.failed, self.skipped));
        out
    }
}

type StepFuture<'f> = Pin<Box<dyn Future<Output = (usize, StepOutcome, u64)> + 'f>>;

/// Bookkeeping of a running plan: what each step waits for, who waits for it, and the locks
/// and node slots in use. Work is proportional to steps plus dependencies.
struct Schedule<'p> {
    plan: &'p Plan,
    waiting_on: Vec<usize>,
    dependents: Vec<Vec<usize>>,
    outcomes: Vec<Option<StepOutcome>>,
    /// Calls from each step's start to the end of the longest chain it begins.
    rank: Vec<usize>,
    /// Ready steps (dependencies done), longest remaining chain first, then in plan order: the
    /// critical path is never queued behind work that can wait.
    ready: BTreeSet<(std::cmp::Reverse<usize>, usize)>,
    locks: BTreeSet<&'p str>,
    per_node: BTreeMap<&'p str, usize>,
}

impl<'p> Schedule<'p> {
    fn new(plan: &'p Plan) -> Schedule<'p> {
        let index: BTreeMap<&str, usize> = plan.steps.iter().enumerate().map(|(i, s)| (s.id.as_str(), i)).collect();
        let mut waiting_on = vec![0; plan.steps.len()];
        let mut dependents = vec![Vec::new(); plan.steps.len()];
        for (i, step) in plan.steps.iter().enumerate() {
            // A dependency that is not in the plan is already as described.
            for j in step.after.iter().filter_map(|a| index.get(a.as_str())) {
                waiting_on[i] += 1;
                dependents[*j].push(i);
            }
        }
        // Steps come after their dependencies, so one pass from the end suffices.
        let mut rank = vec![0; plan.steps.len()];
        for i in (0..plan.steps.len()).rev() {
            let after = dependents[i].iter().map(|d| rank[*d]).max().unwrap_or(0);
            rank[i] = plan.steps[i].calls.max(1) + after;
        }
        let ready = (0..plan.steps.len()).filter(|i| waiting_on[*i] == 0).map(|i| (std::cmp::Reverse(rank[i]), i)).collect();
        Schedule {
            plan,
            rank,
            waiting_on,
            dependents,
            outcomes: vec![None; plan.steps.len()],
            ready,
            locks: BTreeSet::new(),
            per_node: BTreeMap::new(),
        }
    }

    /// The next ready step whose lock and node slot are free, taking them.
    fn take_startable(&mut self, node_parallel: usize) -> Option<usize> {
        let steps = &self.plan.steps;
        let (rank, found) = self.ready.iter().copied().find(|(_, i)| {
            let step = &steps[*i];
            step.lock.as_deref().is_none_or(|l| !self.locks.contains(l))
                && step.node.as_deref().is_none_or(|n| self.per_node.get(n).copied().unwrap_or(0) < node_parallel.max(1))
        })?;
        self.ready.remove(&(rank, found));
        let step = &steps[found];
        if let Some(lock) = step.lock.as_deref() {
            self.locks.insert(lock);
        }
        if let Some(node) = step.node.as_deref() {
            *self.per_node.entry(node).or_default() += 1;
        }
        Some(found)
    }

    /// Records the end of step `i`; returns the steps skipped because of it.
    fn finish(&mut self, i: usize, outcome: StepOutcome) -> Vec<(usize, StepOutcome)> {
        let step = &self.plan.steps[i];
        if let Some(lock) = step.lock.as_deref() {
            self.locks.remove(lock);
        }
        if let Some(node) = step.node.as_deref() {
            *self.per_node.entry(node).or_default() -= 1;
        }
        let succeeded = matches!(outcome, StepOutcome::Done { .. });
        self.outcomes[i] = Some(outcome);
        if succeeded {
            for &d in &self.dependents[i] {
                self.waiting_on[d] -= 1;
                if self.waiting_on[d] == 0 && self.outcomes[d].is_none() {
                    self.ready.insert((std::cmp::Reverse(self.rank[d]), d));
                }
            }
            return Vec::new();
        }
        // Everything downstream is skipped, naming the step that did not succeed.
        let mut skipped = Vec::new();
        let mut stack = vec![i];
        while let Some(failed) = stack.pop() {
            for &d in &self.dependents[failed] {
                if self.outcomes[d].is_none() {
                    let outcome = StepOutcome::Skipped { because: format!("{} did not succeed", self.plan.steps[failed].id) };
                    self.outcomes[d] = Some(outcome.clone());
                    self.ready.remove(&(std::cmp::Reverse(self.rank[d]), d));
                    skipped.push((d, outcome));
                    stack.push(d);
                }
            }
        }
        skipped
    }
}

/// Runs `plan`. Never stops at the first failure: independent steps finish.
pub async fn apply<P: PveApi, Q: PortainerApi, T: Target, I: Issuer>(
    plan: &Plan,
    drivers: &Drivers<'_, P, Q, T, I>,
    options: &ApplyOptions,
    events: &mut dyn FnMut(&Event),
) -> Summary {
    let mut schedule = Schedule::new(plan);
    let mut running: FuturesUnordered<StepFuture<'_>> = FuturesUnordered::new();
    // Task progress comes from inside the running steps; the loop tells it as it comes.
    let (progress, mut heard) = tokio::sync::mpsc::unbounded_channel::<(usize, String)>();
    loop {
        while running.len() < options.parallel.max(1) {
            let Some(i) = schedule.take_startable(options.node_parallel) else { break };
            let step = &plan.steps[i];
            events(&Event::Started { id: step.id.clone(), title: step.title.clone() });
            let progress = progress.clone();
            running.push(Box::pin(async move {
                let clock = Instant::now();
                let watch = move |line: &str| {
                    let _ = progress.send((i, line.to_string()));
                };
                let outcome = run_step(step, drivers, options, &watch).await;
                (i, outcome, clock.elapsed().as_millis() as u64)
            }));
        }
        let next = tokio::select! {
            biased;
            Some((i, line)) = heard.recv() => {
                events(&Event::Progress { id: plan.steps[i].id.clone(), line });
                continue;
            }
            next = running.next() => next,
        };
        let Some((i, outcome, millis)) = next else { break };
        let step = &plan.steps[i];
        events(&Event::Finished { id: step.id.clone(), title: step.title.clone(), outcome: outcome.clone(), millis });
        for (skipped, because) in schedule.finish(i, outcome) {
            let step = &plan.steps[skipped];
            events(&Event::Finished { id: step.id.clone(), title: step.title.clone(), outcome: because, millis: 0 });
        }
    }
    let results: Vec<StepResult> = plan
        .steps
        .iter()
        .zip(schedule.outcomes)
        .map(|(step, outcome)| StepResult {
            id: step.id.clone(),
            title: step.title.clone(),
            outcome: outcome.unwrap_or(StepOutcome::Skipped { because: "never became ready".into() }),
        })
        .collect();
    let count = |f: fn(&StepOutcome) -> bool| results.iter().filter(|r| f(&r.outcome)).count();
    Summary {
        schema_version: 1,
        done: count(|o| matches!(o, StepOutcome::Done { .. })),
        failed: count(|o| matches!(o, StepOutcome::Failed { .. })),
        skipped: count(|o| matches!(o, StepOutcome::Skipped { .. })),
        results,
    }
}

fn failed(message: impl Into<String>) -> StepOutcome {
    StepOutcome::Failed { message: message.into() }
}

async fn run_step<P: PveApi, Q: PortainerApi, T: Target, I: Issuer>(
    step: &Step,
    drivers: &Drivers<'_, P, Q, T, I>,
    options: &ApplyOptions,
    watch: &Watch,
) -> StepOutcome {
    match &step.action {
        Action::Blocked => failed(step.reason.clone()),
        Action::Pve { requests } => pve::run(drivers.pve, requests, watch).await,
        Action::File { file } => write_file(file, drivers.model, drivers.target, options.run_commands).await,
        Action::Certificate { renewal } => {
            let request = RenewRequest {
                store_dir: options.store_dir.clone(),
                names: vec![renewal.name.clone()],
                force: false,
                now: options.now,
                skip_post_actions: !options.run_commands,
            };
            match certs::renew_planned(drivers.model, renewal, &request, drivers.issuer, drivers.target).await {
                certs::Outcome::Failed { stage, message, restored } => {
                    let state = certs::restored_state(restored);
                    failed(format!("{stage:?}: {message} [{state}]"))
                }
                _ => StepOutcome::Done { note: None },
            }
        }
        Action::Trust { files, actions } | Action::Install { files, actions } => {
            let actions = if options.run_commands { actions.as_slice() } else { &[] };
            match apply_change(drivers.target, files, actions).await {
                Ok(()) => StepOutcome::Done {
                    note: (!options.run_commands && !actions.is_empty()).then(|| "actions not run (rehearsal)".to_string()),
                },
                Err(error) => failed(error.message),
            }
        }
        Action::Provision { guest, kind, change } => match crate::provision::run_change(drivers.target, *guest, *kind, &change.action).await {
            Ok(()) => StepOutcome::Done { note: None },
            Err(error) => failed(error.message),
        },
        Action::Health { guest, kind, check, retries, interval_secs } => {
            let sleep = |d| tokio::time::sleep(d);
            let health = crate::provision::health(drivers.target, *guest, *kind, check, *retries, *interval_secs, sleep).await;
            match health.passed {
                true => StepOutcome::Done { note: (health.tries > 1).then(|| format!("passed at try {}", health.tries)) },
                false => failed(format!("failed {} time(s): {}", health.tries, health.detail)),
            }
        }
        Action::NodeConf { place, set, raw, remove } => node_conf(drivers.target, place, set, raw, remove).await,
        Action::ExportRoot { from, to } => match export_root(drivers.target, from, to).await {
            Ok(()) => StepOutcome::Done { note: None },
            Err(error) => failed(error.message),
        },
        Action::Portainer { operation } => match drivers.portainer.apply(operation).await {
            Ok(()) => StepOutcome::Done { note: None },
            Err(error) => failed(error.message),
        },
    }
}

/// Copies Step-CA's root from its guest to the store, with its fingerprint beside it (the file
/// `STORE_ROOT_FINGERPRINT_FILE`); refuses what is not a PEM certificate.
pub async fn export_root(target: &impl Target, from: &Place, to: &Place) -> Result<(), DriverError> {
    let root = target.read(from).await?.ok_or_else(|| DriverError::new(format!("{from} is missing: Step-CA's PKI was not made")))?;
    let text = String::from_utf8_lossy(&root).into_owned();
    let fingerprint = phoenix_core::pki::fingerprint(&text).ok_or_else(|| DriverError::new(format!("{from} is not a PEM certificate")))?;
    let folder = to.path.rsplit_once('/').map_or("", |(folder, _)| folder);
    let beside = Place { guest: to.guest, path: format!("{folder}/{}", phoenix_model::paths::STORE_ROOT_FINGERPRINT_FILE) };
    target.write(&FileWrite { place: beside, content: format!("{fingerprint}\n").into_bytes(), owner: None, mode: 0o644 }).await?;
    target.write(&FileWrite { place: to.clone(), content: root, owner: None, mode: 0o644 }).await
}

/// Edits a guest's `.conf` on the node (read, changed, written atomically; the cluster file
/// system makes the change the guest's config).
async fn node_conf(
    target: &impl Target,
    place: &Place,
    set: &[(String, String)],
    raw: &[(String, String)],
    remove: &[String],
) -> StepOutcome {
    let text = match target.read(place).await {
        Ok(Some(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
        Ok(None) => return failed(format!("{place} does not exist: the guest is not on this node")),
        Err(error) => return failed(error.message),
    };
    let content = phoenix_core::plan::node_conf::edit_conf(&text, set, raw, remove).into_bytes();
    match target.write(&FileWrite { place: place.clone(), content, owner: None, mode: 0o640 }).await {
        Ok(()) => StepOutcome::Done { note: None },
        Err(error) => failed(error.message),
    }
}

/// Writes a rendered file, validates it in place and reloads its service; a failure puts the
/// previous file back.
async fn write_file(file: &RenderedFile, model: &Model, target: &impl Target, run_commands: bool) -> StepOutcome {
    let place = observe::file_place(model, file.target, &file.path);
    let write =
        FileWrite { place: place.clone(), content: file.content.as_bytes().to_vec(), owner: Some(file.owner.clone()), mode: file.mode };
    let commands: Vec<PostAction> = if run_commands {
        [&file.validate, &file.reload]
            .into_iter()
            .flatten()
            .map(|command| PostAction::Command { guest: place.guest, command: command.clone() })
            .collect()
    } else {
        Vec::new()
    };
    match apply_change(target, &[write], &commands).await {
        Ok(()) => StepOutcome::Done {
            note: (!run_commands && (file.validate.is_some() || file.reload.is_some()))
                .then(|| "written; validate and reload not run (rehearsal)".to_string()),
        },
        Err(error) => failed(error.message),
    }
}

/// Observes what the asked-for domains need and plans: the first half of a sync, and all of a
/// dry run.
pub async fn plan_sync<P: PveApi, Q: PortainerApi, T: Target>(
    input: &observe::ObserveInput<'_, P, Q, T>,
    secret: &dyn Fn(&phoenix_model::model::SecretRef) -> Option<String>,
) -> Result<Plan, DriverError> {
    let observed = observe::observe(input).await?;
    Ok(phoenix_core::plan::plan(&phoenix_core::plan::PlanInput {
        model: input.model,
        rendered: input.rendered,
        observed: &observed,
        domains: input.domains,
        secret,
        store_dir: input.store_dir,
        host_trust_file: input.host_trust_file,
        boot_delays: input.boot_delays,
    }))
}
