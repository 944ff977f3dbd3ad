//! Applying a step's Proxmox VE requests in order. A positional edit of a rule list carries
//! the list's digest: the observed one, or the one of a re-read made just before it, which must
//! show exactly what phoenix's own earlier writes left; when the list changed under phoenix
//! (someone edited it in the GUI), the step stops before editing a rule it did not plan for.
//! A task that ends `WARNINGS: n` is a success whose warnings are reported. A request's wait
//! (`Then`) polls until the config shows the change, the guest agent answers, or the pause has
//! passed, bounded by its seconds.

use super::StepOutcome;
use crate::traits::{PveApi, Watch};
use phoenix_core::plan::pve::{self, ApiRequest, Guard, Method, Then};
use std::time::{Duration, Instant};

/// What pve-firewall's `assert_if_modified` and qemu-server's digest check answer.
const MODIFIED: &[&str] = &["detected modified configuration", "checksum mismatch"];

/// Why a list is not what the plan was made from.
fn conflict(path: &str, what: &str) -> StepOutcome {
    StepOutcome::Failed {
        message: format!(
            "{path} changed since phoenix observed it ({what}); nothing more was changed: run phoenix sync again to plan from what is there now"
        ),
    }
}

/// The request as sent: with its digest, read again first when the guard says so.
async fn with_digest(api: &impl PveApi, request: &ApiRequest) -> Result<ApiRequest, StepOutcome> {
    let digest = match &request.guard {
        None => return Ok(request.clone()),
        Some(Guard::Observed { digest }) => digest.clone(),
        Some(Guard::Reread { list, expected }) => {
            let read = api.call(&ApiRequest::new(Method::Get, list.clone(), Vec::new())).await;
            let data = read.map_err(|e| StepOutcome::Failed { message: format!("GET {list}: {e}") })?.data;
            if pve::rules_from_api(&data) != *expected {
                return Err(conflict(list, "its rules are not the ones phoenix's own writes left"));
            }
            pve::list_digest(&data).unwrap_or_default()
        }
    };
    let mut sent = request.clone();
    if !digest.is_empty() {
        sent.params.push(("digest".into(), digest));
    }
    Ok(sent)
}

/// Runs the requests in order; `watch` hears their tasks' progress.
pub async fn run(api: &impl PveApi, requests: &[ApiRequest], watch: &Watch) -> StepOutcome {
    let mut warnings = Vec::new();
    for (n, request) in requests.iter().enumerate() {
        let sent = match with_digest(api, request).await {
            Ok(sent) => sent,
            Err(outcome) => return outcome,
        };
        match api.call_watched(&sent, watch).await {
            Ok(reply) => {
                warnings.extend(reply.warnings);
                if let Some(then) = &request.then {
                    if let Err(message) = wait(api, then).await {
                        return StepOutcome::Failed { message: format!("{request}: {message}") };
                    }
                }
            }
            Err(error) if MODIFIED.iter().any(|m| error.message.contains(m)) => {
                let list = request.path.rsplit_once('/').map_or(request.path.as_str(), |(list, _)| list);
                return conflict(list, "Proxmox VE refused the digest phoenix planned with");
            }
            Err(error) => {
                return StepOutcome::Failed {
                    message: format!("{request}: {error} ({n} of {} requests done; a rerun continues from there)", requests.len()),
                };
            }
        }
    }
    StepOutcome::Done { note: (!warnings.is_empty()).then(|| format!("with warnings: {}", warnings.join("; "))) }
}

/// The query for `node`'s `task`s of guest `vmid` that failed from now on (pve-manager
/// `PVE/API2/Tasks.pm` node_tasks: `since` on the node's own clock, read from
/// `GET /nodes/{node}/time` a few seconds back; `errors` leaves out those that ended `OK`);
/// `None` when the node's time cannot be read (then only arrival ends the wait).
async fn failed_tasks_query(api: &impl PveApi, node: &str, task: &str, vmid: &str) -> Option<ApiRequest> {
    let time = api.call(&ApiRequest::new(Method::Get, format!("/nodes/{node}/time"), Vec::new())).await.ok()?;
    let since = time.data.get("time")?.as_u64()?.saturating_sub(FAILED_TASK_SLACK_SECS);
    let params = [("vmid", vmid.to_string()), ("typefilter", task.to_string()), ("since", since.to_string()), ("errors", "1".into())];
    Some(ApiRequest::new(Method::Get, format!("/nodes/{node}/tasks"), params.map(|(k, v)| (k.to_string(), v)).to_vec()))
}

/// How far before the wait began a failed task still counts: the request was made just before.
const FAILED_TASK_SLACK_SECS: u64 = 5;

/// The first task `query` lists that failed (not `OK`, not `WARNINGS: n`), as an error.
async fn failed_task(api: &impl PveApi, query: &ApiRequest) -> Option<String> {
    let listed = api.call(query).await.ok()?;
    listed.data.as_array()?.iter().find_map(|task| {
        let status = task.get("status")?.as_str()?;
        let fine = status == "OK" || status.starts_with("WARNINGS: ");
        (!fine).then(|| format!("task {} failed: {status}", task.get("upid").and_then(|u| u.as_str()).unwrap_or("?")))
    })
}

/// Waits as `then` says, polling with a growing interval (50 ms to 2 s), at most its seconds.
async fn wait(api: &impl PveApi, then: &Then) -> Result<(), String> {
    let (check, seconds) = match then {
        Then::Pause { seconds } => {
            tokio::time::sleep(Duration::from_secs(*seconds)).await;
            return Ok(());
        }
        Then::Config { path, seconds, .. } => (ApiRequest::new(Method::Get, path.clone(), Vec::new()), *seconds),
        Then::Agent { path, seconds } => (ApiRequest::new(Method::Post, path.clone(), Vec::new()), *seconds),
        Then::Arrived { path, seconds, .. } => (ApiRequest::new(Method::Get, path.clone(), Vec::new()), *seconds),
    };
    let failed_tasks = match then {
        Then::Arrived { from, task, vmid, .. } => failed_tasks_query(api, from, task, vmid).await,
        _ => None,
    };
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut delay = Duration::from_millis(50);
    let mut last: String;
    loop {
        match (api.call(&check).await, then) {
            (Ok(reply), Then::Config { key, value, .. }) => {
                let found = reply.data.get(key).map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string));
                if found.as_deref() == Some(value.as_str()) {
                    return Ok(());
                }
                last = format!("its config has {key}: {}", found.unwrap_or_else(|| "(none)".into()));
            }
            (Ok(_), _) => return Ok(()),
            (Err(error), _) => last = error.message,
        }
        if let Some(query) = &failed_tasks {
            if let Some(failure) = failed_task(api, query).await {
                return Err(failure);
            }
        }
        if Instant::now() >= deadline {
            return Err(format!("gave up after {seconds} s waiting: {last}"));
        }
        tokio::time::sleep(delay.min(deadline.saturating_duration_since(Instant::now()))).await;
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}
