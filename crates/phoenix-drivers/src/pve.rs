//! The Proxmox VE API (`/api2/json`) with an API token: `Authorization: PVEAPIToken=
//! USER@REALM!TOKENID=SECRET`, form-encoded parameters, the answer in `data`. Long operations
//! answer with a task UPID, which is polled at `/nodes/{node}/tasks/{upid}/status` until the
//! task has `status: stopped`; its `exitstatus` is `OK` or `WARNINGS: n` on success (pve-common
//! `upid_status_is_error`), the warnings then read from the task log's `WARN:` lines.
//!
//! Retries: a handler's refusal is a `die`, which the server answers 500 (pve-manager
//! `PVE/HTTPServer.pm`), so a 500 is permanent, and a POST after one is never repeated (it may
//! have been made). Repeated, with backoff: lock timeouts (`can't lock file ... got timeout`,
//! `cfs-lock ... got lock request timeout`: the lock was not taken, nothing was changed), 502,
//! 503, pveproxy's 595/596 (the node was not reached), and connection failures; a request that
//! timed out only when repeating it is harmless (not a POST).

use crate::http::{self, Backoff, Trust};
use phoenix_core::plan::pve::{ApiRequest, Method};
use phoenix_exec::sync::{PveApi, PveReply, Watch};
use phoenix_exec::DriverError;
use phoenix_model::secret::Secret;
use serde_json::Value;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct PveSettings {
    /// e.g. `https://10.0.0.13:8006/api2/json`.
    pub url: String,
    /// `USER@REALM!TOKENID=SECRET`.
    pub token: Secret,
    pub trust: Trust,
    pub timeout: Duration,
    pub backoff: Backoff,
    /// The longest a task may run.
    pub task_timeout: Duration,
}

impl PveSettings {
    /// phoenix's defaults: 30 s per request, the default backoff, 5 minutes per task.
    pub fn new(url: String, token: Secret, trust: Trust) -> PveSettings {
        PveSettings {
            url,
            token,
            trust,
            timeout: Duration::from_secs(30),
            backoff: Backoff::default(),
            task_timeout: Duration::from_secs(300),
        }
    }
}

pub struct PveClient {
    http: reqwest::Client,
    settings: PveSettings,
}

/// What one attempt ended with.
enum Attempt {
    Done(Value),
    /// Worth repeating (after a delay).
    Retry(String),
    Fail(String),
}

impl PveClient {
    pub fn new(settings: PveSettings) -> Result<PveClient, DriverError> {
        http::require_https(&settings.url, "the Proxmox VE")?;
        Ok(PveClient { http: http::client(&settings.trust, settings.timeout)?, settings })
    }

    async fn attempt(&self, request: &ApiRequest) -> Attempt {
        let url = format!("{}{}", self.settings.url.trim_end_matches('/'), request.path);
        let builder = match request.method {
            Method::Get => self.http.get(&url).query(&request.params),
            Method::Delete => self.http.delete(&url).query(&request.params),
            Method::Post => self.http.post(&url).form(&request.params),
            Method::Put => self.http.put(&url).form(&request.params),
        };
        let repeatable = request.method != Method::Post;
        let response = match builder.header("Authorization", format!("PVEAPIToken={}", self.settings.token.expose())).send().await {
            Ok(response) => response,
            // The certificate is refused: it will be refused again.
            Err(error) if http::is_tls_refusal(&error) => return Attempt::Fail(format!("TLS refused: {}", http::with_causes(&error))),
            // Nothing reached the server: always safe to repeat.
            Err(error) if error.is_connect() => return Attempt::Retry(format!("cannot connect: {}", http::with_causes(&error))),
            Err(error) if repeatable => return Attempt::Retry(describe(&error)),
            Err(error) => return Attempt::Fail(describe(&error)),
        };
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        let value: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        if status.is_success() {
            return Attempt::Done(value.get("data").cloned().unwrap_or(Value::Null));
        }
        // pve-http-server: the message in the body (and the status line), parameter errors in `errors`.
        let text = value.get("message").and_then(Value::as_str).unwrap_or(body.trim()).trim_end();
        let text = if text.is_empty() { status.canonical_reason().unwrap_or_default() } else { text };
        let message = match value.get("errors") {
            Some(errors) if !errors.is_null() => format!("{} {text} {errors}", status.as_u16()),
            _ => format!("{} {text}", status.as_u16()),
        };
        if transient(status.as_u16(), &message) {
            Attempt::Retry(message)
        } else {
            Attempt::Fail(message)
        }
    }

    async fn with_retries(&self, request: &ApiRequest) -> Result<Value, DriverError> {
        let mut last = String::new();
        for attempt in 0..self.settings.backoff.attempts.max(1) {
            if attempt > 0 {
                tokio::time::sleep(self.settings.backoff.delay(attempt - 1)).await;
            }
            match self.attempt(request).await {
                Attempt::Done(value) => return Ok(value),
                Attempt::Fail(message) => return Err(DriverError::new(message)),
                Attempt::Retry(message) => last = message,
            }
        }
        Err(DriverError::new(format!("{last} (after {} attempts)", self.settings.backoff.attempts)))
    }

    /// Waits for a task to stop and checks its exit status; `watch` hears its log's newest
    /// line every [`LOG_EVERY`] while it runs.
    async fn wait_for_task(&self, upid: &str, watch: Option<&Watch>) -> Result<PveReply, DriverError> {
        // UPID:<node>:<pid>:<pstart>:<starttime>:<type>:<id>:<user>:
        let node = upid.split(':').nth(1).ok_or_else(|| DriverError::new(format!("malformed task id {upid}")))?;
        let status = ApiRequest::new(Method::Get, format!("/nodes/{node}/tasks/{}/status", upid_path(upid)), Vec::new());
        let started = Instant::now();
        let deadline = started + self.settings.task_timeout;
        let (mut logged_at, mut lines_seen) = (started, 0usize);
        loop {
            if let Some(watch) = watch.filter(|_| logged_at.elapsed() >= LOG_EVERY) {
                logged_at = Instant::now();
                lines_seen = self.tell_new_lines(node, upid, lines_seen, watch).await;
            }
            let state = self.with_retries(&status).await?;
            if state.get("status").and_then(Value::as_str) == Some("stopped") {
                let done = PveReply::from(Value::String(upid.to_string()));
                return match state.get("exitstatus").and_then(Value::as_str) {
                    Some("OK") => Ok(done),
                    Some(warned) if warned.strip_prefix("WARNINGS: ").is_some_and(|n| n.parse::<u32>().is_ok()) => {
                        Ok(PveReply { warnings: self.task_warnings(node, upid, warned).await, ..done })
                    }
                    other => Err(DriverError::new(format!("task {upid} failed: {}", other.unwrap_or("no exit status")))),
                };
            }
            if Instant::now() >= deadline {
                return Err(DriverError::new(format!("task {upid} still running after {}s", self.settings.task_timeout.as_secs())));
            }
            // A twentieth of the time waited so far (50 ms to 1 s): a task is seen to end within
            // about 5 % of its duration, at a few dozen polls for a minute-long clone.
            tokio::time::sleep((started.elapsed() / 20).clamp(Duration::from_millis(50), Duration::from_secs(1))).await;
        }
    }

    /// Tells `watch` the newest of the log lines after the first `seen` (pve-manager's
    /// `GET .../log` with `start`, as its task viewer follows a log); the count seen now. A log
    /// that cannot be read tells nothing: progress is for people, the status decides.
    async fn tell_new_lines(&self, node: &str, upid: &str, seen: usize, watch: &Watch) -> usize {
        let params = vec![("start".to_string(), seen.to_string()), ("limit".to_string(), "500".to_string())];
        let log = ApiRequest::new(Method::Get, task_log_path(node, upid), params);
        let Ok(Value::Array(lines)) = self.attempt_once(&log).await else { return seen };
        let texts: Vec<&str> = lines.iter().filter_map(|l| l.get("t")?.as_str()).filter(|t| !t.trim().is_empty()).collect();
        if let Some(newest) = texts.last() {
            watch(newest);
        }
        seen + lines.len()
    }

    /// One try of a request, its `data` (no retries: for what may be skipped).
    async fn attempt_once(&self, request: &ApiRequest) -> Result<Value, String> {
        match self.attempt(request).await {
            Attempt::Done(value) => Ok(value),
            Attempt::Fail(message) | Attempt::Retry(message) => Err(message),
        }
    }

    /// The `WARN:` lines of a task's log (its status line when the log cannot be read).
    async fn task_warnings(&self, node: &str, upid: &str, status: &str) -> Vec<String> {
        let log = ApiRequest::new(Method::Get, task_log_path(node, upid), Vec::new());
        let lines: Vec<String> = match self.with_retries(&log).await {
            Ok(Value::Array(lines)) => {
                lines.iter().filter_map(|l| l.get("t")?.as_str()?.strip_prefix("WARN: ").map(str::to_string)).collect()
            }
            _ => Vec::new(),
        };
        if lines.is_empty() {
            vec![format!("task {upid}: {status}")]
        } else {
            lines
        }
    }
}

/// Whether a failed answer is worth repeating (see the module's notes).
fn transient(status: u16, message: &str) -> bool {
    matches!(status, 502 | 503 | 595 | 596) || message.contains("can't lock file") || message.contains("got lock request timeout")
}

/// Where a task's log is read.
fn task_log_path(node: &str, upid: &str) -> String {
    format!("/nodes/{node}/tasks/{}/log", upid_path(upid))
}

/// A UPID in a URL path (its `:` and `@` are fine; `!` of token users too).
fn upid_path(upid: &str) -> String {
    upid.replace('/', "%2F")
}

fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        format!("timed out: {}", http::with_causes(error))
    } else {
        http::with_causes(error)
    }
}

/// How often a running task's log is read for its progress.
const LOG_EVERY: Duration = Duration::from_secs(2);

impl PveApi for PveClient {
    async fn call(&self, request: &ApiRequest) -> Result<PveReply, DriverError> {
        self.call_and_wait(request, None).await
    }

    async fn call_watched(&self, request: &ApiRequest, watch: &Watch) -> Result<PveReply, DriverError> {
        self.call_and_wait(request, Some(watch)).await
    }
}

impl PveClient {
    /// A request, and its task waited for (see the module's notes on what is repeated).
    async fn call_and_wait(&self, request: &ApiRequest, watch: Option<&Watch>) -> Result<PveReply, DriverError> {
        let mut attempt = 0;
        loop {
            let data =
                self.with_retries(request).await.map_err(|e| DriverError::new(format!("{:?} {}: {e}", request.method, request.path)))?;
            let Some(upid) = data.as_str().filter(|d| d.starts_with("UPID:")) else { return Ok(data.into()) };
            match self.wait_for_task(upid, watch).await {
                // A worker that could not take its lock changed nothing (qemu-server takes the
                // config lock inside the task): the request is sent again, as for a lock error.
                Err(error) if error.message.contains("can't lock file") && attempt + 1 < self.settings.backoff.attempts => {
                    tokio::time::sleep(self.settings.backoff.delay(attempt)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_lock_timeouts_and_unreached_nodes_are_repeated() {
        assert!(transient(500, "500 can't lock file '/var/lock/qemu-server/lock-100.conf' - got timeout"));
        assert!(transient(500, "500 cfs-lock 'firewall-cluster' error: got lock request timeout"));
        assert!(transient(596, "596 Connection refused") && transient(503, "") && transient(502, ""));
        assert!(!transient(500, "500 no such security group 'web'"), "a handler's refusal is permanent");
        assert!(!transient(400, "400 Parameter verification failed."));
    }
}
