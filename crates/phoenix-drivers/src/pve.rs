//! The Proxmox VE API (`/api2/json`) with an API token: `Authorization: PVEAPIToken=
//! USER@REALM!TOKENID=SECRET`, form-encoded parameters, the answer in `data`. Long operations
//! answer with a task UPID, which is polled at `/nodes/{node}/tasks/{upid}/status` until the
//! task has `status: stopped`; its `exitstatus` is `OK` on success. "can't lock file" errors
//! (another operation holds the guest's or the firewall's lock) and 5xx answers are retried
//! with backoff; a request that timed out is retried only when repeating it is harmless (GET,
//! PUT, DELETE).

use crate::http::{self, Backoff, Trust};
use phoenix_core::plan::pve::{ApiRequest, Method};
use phoenix_exec::sync::PveApi;
use phoenix_exec::DriverError;
use serde_json::Value;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct PveSettings {
    /// e.g. `https://10.0.0.13:8006/api2/json`.
    pub url: String,
    /// `USER@REALM!TOKENID=SECRET` (a secret: never printed).
    pub token: String,
    pub trust: Trust,
    pub timeout: Duration,
    pub backoff: Backoff,
    /// The longest a task may run.
    pub task_timeout: Duration,
}

impl PveSettings {
    /// phoenix's defaults: 30 s per request, the default backoff, 5 minutes per task.
    pub fn new(url: String, token: String, trust: Trust) -> PveSettings {
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
        let response = match builder.header("Authorization", format!("PVEAPIToken={}", self.settings.token)).send().await {
            Ok(response) => response,
            // Nothing reached the server: always safe to repeat.
            Err(error) if error.is_connect() => return Attempt::Retry(format!("cannot connect: {error}")),
            Err(error) if repeatable => return Attempt::Retry(describe(&error)),
            Err(error) => return Attempt::Fail(describe(&error)),
        };
        let status = response.status();
        // pve-http-server puts the error in the status line's reason phrase and in `errors`.
        let reason = status.canonical_reason().unwrap_or_default().to_string();
        let body = response.text().await.unwrap_or_default();
        let value: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        if status.is_success() {
            return Attempt::Done(value.get("data").cloned().unwrap_or(Value::Null));
        }
        let message = match value.get("errors") {
            Some(errors) if !errors.is_null() => format!("{status}: {errors}"),
            _ => format!("{status} {reason} {}", value.get("message").and_then(Value::as_str).unwrap_or(body.trim())),
        };
        if message.contains("can't lock file") || status.is_server_error() {
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

    /// Waits for a task to stop and checks its exit status.
    async fn wait_for_task(&self, upid: &str) -> Result<Value, DriverError> {
        // UPID:<node>:<pid>:<pstart>:<starttime>:<type>:<id>:<user>:
        let node = upid.split(':').nth(1).ok_or_else(|| DriverError::new(format!("malformed task id {upid}")))?;
        let status = ApiRequest::new(Method::Get, format!("/nodes/{node}/tasks/{}/status", upid_path(upid)), Vec::new());
        let deadline = Instant::now() + self.settings.task_timeout;
        let mut delay = Duration::from_millis(50);
        loop {
            let state = self.with_retries(&status).await?;
            if state.get("status").and_then(Value::as_str) == Some("stopped") {
                return match state.get("exitstatus").and_then(Value::as_str) {
                    Some("OK") => Ok(Value::String(upid.to_string())),
                    other => Err(DriverError::new(format!("task {upid} failed: {}", other.unwrap_or("no exit status")))),
                };
            }
            if Instant::now() >= deadline {
                return Err(DriverError::new(format!("task {upid} still running after {}s", self.settings.task_timeout.as_secs())));
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(2));
        }
    }
}

/// A UPID in a URL path (its `:` and `@` are fine; `!` of token users too).
fn upid_path(upid: &str) -> String {
    upid.replace('/', "%2F")
}

fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        format!("timed out: {error}")
    } else {
        format!("{error}")
    }
}

impl PveApi for PveClient {
    async fn call(&self, request: &ApiRequest) -> Result<Value, DriverError> {
        let data = self.with_retries(request).await.map_err(|e| DriverError::new(format!("{:?} {}: {e}", request.method, request.path)))?;
        match data.as_str() {
            Some(upid) if upid.starts_with("UPID:") => self.wait_for_task(upid).await,
            _ => Ok(data),
        }
    }
}
