//! Worker tasks: a UPID per long operation (`PVE::Tools::upid_encode`:
//! `UPID:<node>:<pid 8 hex>:<pstart 8 hex>:<starttime 8 hex>:<type>:<id>:<user>:`), `running`
//! for a while, then `stopped` with an exit status: `OK`, `WARNINGS: <n>` (a success,
//! `upid_status_is_error`) or the error text; its log holds the `WARN:` lines. Outcomes can be
//! injected; by default a task succeeds. A task's change takes effect when it ends (its
//! `effects`, applied by [`Tasks::finished`]); a failed task applies its clean-up instead, as
//! the handlers' error paths do, and a crashed one (the node lost the worker) applies nothing,
//! leaving its `lock:` keys behind.

use serde_json::{json, Value};
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// How an injected task ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskOutcome {
    Ok,
    /// Succeeds with these warnings.
    Warnings(Vec<String>),
    /// Fails with this error (its change is not made; its clean-up is).
    Error(String),
    /// The worker died (node crash, OOM kill): the task ends with this status and neither its
    /// change nor its clean-up is made.
    Crash(String),
}

/// A change a task makes when it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Writes a file of the cluster file system.
    Write(String, String),
    /// Removes a file.
    Remove(String),
    /// Removes the `lock` key of the config at this path when it is this lock.
    Unlock(String, String),
    /// The guest runs (or not) from now on.
    Running(u32, bool),
    /// The pending changes of the config at this path are applied (`vmconfig_apply_pending`).
    ApplyPending(String),
    /// A file appears on a file storage as a node sees it (node, `volid`, bytes).
    FileVolume(String, String, u64),
}

#[derive(Debug, Clone)]
pub struct Task {
    pub node: String,
    pub kind: String,
    pub id: String,
    pub user: String,
    pub pid: u32,
    pub started: Instant,
    pub starttime: u64,
    pub duration: Duration,
    pub outcome: TaskOutcome,
    /// What it changes when it ends well, and what its failure cleans up.
    pub effects: Vec<Effect>,
    pub on_error: Vec<Effect>,
    settled: bool,
    /// A copy the task logs its progress of (see [`TransferLog`]).
    pub transfer: Option<TransferLog>,
}

/// What a task copying a disk logs: its first line, then qemu-server's
/// `PVE::QemuServer::QemuImage::convert` line per percent qemu-img reports
/// (`transferred 3.2 GiB of 32.0 GiB (10.00%)`, sizes as pve-common `render_bytes($x, 1)`).
#[derive(Debug, Clone)]
pub struct TransferLog {
    pub header: String,
    pub bytes: u64,
}

/// pve-common `PVE::Format::render_bytes` with one decimal.
fn render_bytes(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let (mut value, mut unit) = (bytes as f64, 0);
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", units[unit])
}

#[derive(Debug, Default)]
pub struct Tasks {
    by_upid: BTreeMap<String, Task>,
    next_pid: u32,
    /// Outcomes for the next tasks, in order (then `Ok`).
    pub injected: VecDeque<TaskOutcome>,
}

impl Tasks {
    /// Starts a task; returns its UPID and how it will end.
    pub fn start(&mut self, node: &str, kind: &str, id: &str, user: &str, duration: Duration, epoch: u64) -> (String, TaskOutcome) {
        self.start_with(node, kind, id, user, duration, epoch, None, (Vec::new(), Vec::new()))
    }

    /// Starts a task that ends `forced` (when the handler's worker will die of it) or as
    /// injected, making `effects.0` when it succeeds and `effects.1` when it fails.
    #[allow(clippy::too_many_arguments)]
    pub fn start_with(
        &mut self,
        node: &str,
        kind: &str,
        id: &str,
        user: &str,
        duration: Duration,
        epoch: u64,
        forced: Option<TaskOutcome>,
        effects: (Vec<Effect>, Vec<Effect>),
    ) -> (String, TaskOutcome) {
        self.next_pid += 1;
        let pid = 0x1000 + self.next_pid;
        let outcome = forced.unwrap_or_else(|| self.injected.pop_front().unwrap_or(TaskOutcome::Ok));
        let upid = format!("UPID:{node}:{pid:08X}:{:08X}:{epoch:08X}:{kind}:{id}:{user}:", pid * 7);
        let task = Task {
            node: node.into(),
            kind: kind.into(),
            id: id.into(),
            user: user.into(),
            pid,
            started: Instant::now(),
            starttime: epoch,
            duration,
            outcome: outcome.clone(),
            effects: effects.0,
            on_error: effects.1,
            settled: false,
            transfer: None,
        };
        self.by_upid.insert(upid.clone(), task);
        (upid, outcome)
    }

    /// How many tasks of this type were started.
    pub fn count(&self, kind: &str) -> usize {
        self.by_upid.values().filter(|t| t.kind == kind).count()
    }

    /// Makes a task log the progress of a copy.
    pub fn log_transfer(&mut self, upid: &str, transfer: TransferLog) {
        if let Some(task) = self.by_upid.get_mut(upid) {
            task.transfer = Some(transfer);
        }
    }

    pub fn get(&self, upid: &str) -> Option<&Task> {
        self.by_upid.get(upid)
    }

    /// The changes of the tasks that ended since the last call, in the order they started.
    pub fn finished(&mut self) -> Vec<Effect> {
        let mut ended: Vec<&mut Task> = self.by_upid.values_mut().filter(|t| !t.settled && t.started.elapsed() >= t.duration).collect();
        ended.sort_by_key(|t| t.pid);
        let mut effects = Vec::new();
        for task in ended {
            task.settled = true;
            match task.outcome {
                TaskOutcome::Ok | TaskOutcome::Warnings(_) => effects.append(&mut task.effects),
                TaskOutcome::Error(_) => effects.append(&mut task.on_error),
                TaskOutcome::Crash(_) => {}
            }
        }
        effects
    }

    /// `GET /nodes/{node}/tasks` (pve-manager `PVE/API2/Tasks.pm` node_tasks and its
    /// `filter_task`): `node`'s own tasks, those of `vmid` and of type `typefilter` when given,
    /// started at `since` or later, `source` `active` (running), `archive` (ended, the default)
    /// or `all`; `errors` drops those that ended `OK` (warnings stay: only the `ok` status type
    /// is filtered out); newest first, ended ones with their status.
    pub fn list(&self, node: &str, filter: &TaskFilter) -> Value {
        let mut found: Vec<(&String, &Task)> = self.by_upid.iter().filter(|(_, t)| t.node == node && filter.admits(t)).collect();
        found.sort_by_key(|(_, t)| std::cmp::Reverse(t.pid));
        Value::Array(
            found
                .into_iter()
                .map(|(upid, t)| {
                    let mut entry = json!({ "upid": upid, "node": t.node, "pid": t.pid, "pstart": t.pid * 7, "starttime": t.starttime,
                        "type": t.kind, "id": t.id, "user": t.user });
                    if t.started.elapsed() >= t.duration {
                        entry["status"] = json!(t.exitstatus());
                        entry["endtime"] = json!(t.starttime + t.duration.as_secs());
                    }
                    entry
                })
                .collect(),
        )
    }

    /// Whether a task of this type for this id is running.
    pub fn running(&self, kind: &str, id: &str) -> bool {
        self.by_upid.values().any(|t| t.kind == kind && t.id == id && t.started.elapsed() < t.duration)
    }

    /// Until when running tasks hold guest `id`'s config lock.
    pub fn busy_until(&self, id: &str) -> Option<Instant> {
        self.by_upid.values().filter(|t| t.id == id && t.started.elapsed() < t.duration).map(|t| t.started + t.duration).max()
    }
}

/// What `GET /nodes/{node}/tasks` lists (its parameters as sent).
#[derive(Debug, Default)]
pub struct TaskFilter {
    pub vmid: Option<String>,
    pub typefilter: Option<String>,
    pub since: Option<u64>,
    pub source: String,
    pub errors: bool,
}

impl TaskFilter {
    pub fn from_params(params: &std::collections::BTreeMap<String, String>) -> TaskFilter {
        TaskFilter {
            vmid: params.get("vmid").cloned(),
            typefilter: params.get("typefilter").cloned(),
            since: params.get("since").and_then(|s| s.parse().ok()),
            source: params.get("source").cloned().unwrap_or_else(|| "archive".into()),
            errors: params.get("errors").is_some_and(|e| e == "1"),
        }
    }

    fn admits(&self, task: &Task) -> bool {
        let running = task.started.elapsed() < task.duration;
        let source = match self.source.as_str() {
            "active" => running,
            "all" => true,
            _ => !running,
        };
        source
            && self.vmid.as_ref().is_none_or(|v| task.id == *v)
            && self.typefilter.as_ref().is_none_or(|t| task.kind == *t)
            && self.since.is_none_or(|since| task.starttime >= since)
            && !(self.errors && !running && task.exitstatus() == "OK")
    }
}

impl Task {
    fn exitstatus(&self) -> String {
        match &self.outcome {
            TaskOutcome::Ok => "OK".into(),
            TaskOutcome::Warnings(warnings) => format!("WARNINGS: {}", warnings.len()),
            TaskOutcome::Error(message) | TaskOutcome::Crash(message) => message.clone(),
        }
    }

    /// `GET /nodes/{node}/tasks/{upid}/status` (pve-manager `PVE/API2/Tasks.pm` read_task_status).
    pub fn status(&self, upid: &str) -> Value {
        let mut status = json!({
            "upid": upid, "node": self.node, "pid": self.pid, "pstart": self.pid * 7, "starttime": self.starttime,
            "type": self.kind, "id": self.id, "user": self.user, "status": "running",
        });
        if self.started.elapsed() >= self.duration {
            status["status"] = json!("stopped");
            status["exitstatus"] = json!(self.exitstatus());
        }
        status
    }

    /// `GET .../log` (pve-manager `read_task_log`): numbered lines from `start` (0-based),
    /// at most `limit` (0: all), the warnings as `WARN:` lines, then the end line.
    pub fn log(&self, start: usize, limit: usize) -> Value {
        let mut lines: Vec<String> = match &self.transfer {
            None => vec![format!("update VM {}: phoenix-sim", self.id)],
            Some(transfer) => {
                let done = (self.started.elapsed().as_secs_f64() / self.duration.as_secs_f64().max(1e-9)).min(1.0);
                let percents = 0..=(done * 100.0) as u64;
                let total = render_bytes(transfer.bytes);
                let progress = percents.map(|p| format!("transferred {} of {total} ({p}.00%)", render_bytes(transfer.bytes / 100 * p)));
                std::iter::once(transfer.header.clone()).chain(progress).collect()
            }
        };
        if let TaskOutcome::Warnings(warnings) = &self.outcome {
            lines.extend(warnings.iter().map(|w| format!("WARN: {w}")));
        }
        if self.started.elapsed() >= self.duration {
            lines.push(match &self.outcome {
                TaskOutcome::Error(message) | TaskOutcome::Crash(message) => format!("TASK ERROR: {message}"),
                TaskOutcome::Warnings(warnings) => format!("TASK WARNINGS: {}", warnings.len()),
                TaskOutcome::Ok => "TASK OK".into(),
            });
        }
        let numbered = lines.into_iter().enumerate().skip(start);
        let limit = if limit == 0 { usize::MAX } else { limit };
        Value::Array(numbered.take(limit).map(|(n, t)| json!({ "n": n + 1, "t": t })).collect())
    }
}
