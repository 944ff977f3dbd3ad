//! Worker tasks: a UPID per long operation (`PVE::Tools::upid_encode`:
//! `UPID:<node>:<pid 8 hex>:<pstart 8 hex>:<starttime 8 hex>:<type>:<id>:<user>:`), `running`
//! for a while, then `stopped` with an exit status: `OK`, `WARNINGS: <n>` (a success,
//! `upid_status_is_error`) or the error text; its log holds the `WARN:` lines. Outcomes can be
//! injected; by default a task succeeds.

use serde_json::{json, Value};
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// How an injected task ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskOutcome {
    Ok,
    /// Succeeds with these warnings.
    Warnings(Vec<String>),
    /// Fails with this error (its change is not made).
    Error(String),
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
        self.next_pid += 1;
        let pid = 0x1000 + self.next_pid;
        let outcome = self.injected.pop_front().unwrap_or(TaskOutcome::Ok);
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
        };
        self.by_upid.insert(upid.clone(), task);
        (upid, outcome)
    }

    /// How many tasks of this type were started.
    pub fn count(&self, kind: &str) -> usize {
        self.by_upid.values().filter(|t| t.kind == kind).count()
    }

    pub fn get(&self, upid: &str) -> Option<&Task> {
        self.by_upid.get(upid)
    }

    /// Until when running tasks hold guest `id`'s config lock.
    pub fn busy_until(&self, id: &str) -> Option<Instant> {
        self.by_upid.values().filter(|t| t.id == id && t.started.elapsed() < t.duration).map(|t| t.started + t.duration).max()
    }
}

impl Task {
    fn exitstatus(&self) -> String {
        match &self.outcome {
            TaskOutcome::Ok => "OK".into(),
            TaskOutcome::Warnings(warnings) => format!("WARNINGS: {}", warnings.len()),
            TaskOutcome::Error(message) => message.clone(),
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

    /// `GET .../log`: numbered lines, the warnings as `WARN:` lines, then the end line.
    pub fn log(&self) -> Value {
        let mut lines: Vec<String> = vec![format!("update VM {}: phoenix-sim", self.id)];
        if let TaskOutcome::Warnings(warnings) = &self.outcome {
            lines.extend(warnings.iter().map(|w| format!("WARN: {w}")));
        }
        if self.started.elapsed() >= self.duration {
            lines.push(match &self.outcome {
                TaskOutcome::Error(message) => format!("TASK ERROR: {message}"),
                TaskOutcome::Warnings(warnings) => format!("TASK WARNINGS: {}", warnings.len()),
                TaskOutcome::Ok => "TASK OK".into(),
            });
        }
        Value::Array(lines.into_iter().enumerate().map(|(n, t)| json!({ "n": n + 1, "t": t })).collect())
    }
}
