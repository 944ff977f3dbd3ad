//! Provisioning carried out: each guest probed in one round trip, planned by the core, its
//! changes run in order through [`Target`]; the first failed change stops that guest's
//! later changes (the files before it stay as written) and no other guest's. Health checks
//! run after a guest's changes, with the retries and interval the configuration gives.
//! Decides nothing: the plan is the core's, and what runs is exactly what it shows.

use crate::traits::{DriverError, Target};
use futures_util::future::join_all;
use phoenix_core::provision::{self, probe, shell, Action, Desired, GuestPlan, GuestState};
use phoenix_model::model::{GuestId, GuestKind, HealthCheck};
use serde::Serialize;
use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

/// What the probe found in `desired`'s guest.
pub async fn observe(guests: &impl Target, desired: &Desired) -> Result<GuestState, DriverError> {
    let resources = desired.resources();
    let (script, args) = probe::script(&resources);
    let output = guests.shell(desired.guest, desired.kind, &shell::Shell { script, args, stdin: None }).await?;
    if !output.success() {
        return Err(DriverError::new(format!("guest {}: the probe failed: {}", desired.guest, output.summary())));
    }
    probe::parse(&String::from_utf8_lossy(&output.stdout)).map_err(|e| DriverError::new(format!("guest {}: {e}", desired.guest)))
}

/// Every guest's plan, probed concurrently; a guest that cannot be probed is an error of its
/// own and plans nothing.
pub async fn plan_all(
    guests: &impl Target,
    desired: &BTreeMap<GuestId, Desired>,
) -> BTreeMap<GuestId, Result<GuestPlan, DriverError>> {
    let probes = desired.values().map(|d| async move { (d.guest, observe(guests, d).await.map(|state| provision::plan(d, &state))) });
    join_all(probes).await.into_iter().collect()
}

/// How one guest's provisioning went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GuestOutcome {
    pub guest: GuestId,
    /// Changes that ran, in order (their descriptions).
    pub done: Vec<String>,
    /// The change that failed, and why.
    pub failed: Option<(String, String)>,
    /// Changes not run because an earlier one failed.
    pub skipped: Vec<String>,
    pub health: Option<Health>,
}

/// A health check's result: the tries it took and whether the last passed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Health {
    pub passed: bool,
    pub tries: u32,
    /// The last failure's words (empty when it passed).
    pub detail: String,
}

impl GuestOutcome {
    pub fn ok(&self) -> bool {
        self.failed.is_none() && self.health.as_ref().is_none_or(|h| h.passed)
    }
}

/// Runs `plan`'s changes in order, then `check` when the changes all succeeded.
pub async fn apply<G: Target, S: Future<Output = ()>>(
    guests: &G,
    plan: &GuestPlan,
    check: Option<&HealthCheck>,
    sleep: impl Fn(Duration) -> S,
) -> GuestOutcome {
    let mut outcome = GuestOutcome { guest: plan.guest, done: Vec::new(), failed: None, skipped: Vec::new(), health: None };
    for change in &plan.changes {
        let what = format!("{}: {}", change.feature, change.action.describe());
        if outcome.failed.is_some() {
            outcome.skipped.push(what);
            continue;
        }
        match run_change(guests, plan.guest, plan.kind, &change.action).await {
            Ok(()) => outcome.done.push(what),
            Err(error) => outcome.failed = Some((what, error.message)),
        }
    }
    if outcome.failed.is_none() {
        if let Some(check) = check {
            let command = &check.command.value;
            outcome.health = Some(health(guests, plan.guest, plan.kind, command, check.retries, check.interval_secs, sleep).await);
        }
    }
    outcome
}

/// Runs one change in a guest. A download is fetched by phoenix and its SHA-256 checked first:
/// one that does not match is refused and nothing reaches the guest.
pub async fn run_change(target: &impl Target, guest: GuestId, kind: GuestKind, action: &Action) -> Result<(), DriverError> {
    let mut script = action.shell();
    if let Action::Download { url, sha256, .. } = action {
        let content = target.fetch(url).await?;
        let found = phoenix_core::provision::resource::sha256_hex(&content);
        if &found != sha256 {
            return Err(DriverError::new(format!("{url} has SHA-256 {found}, not {sha256}: refused, nothing installed"))
                .hint("check software.<name>.sha256 against the file the url serves (sha256sum prints it)"));
        }
        script.stdin = Some(content);
    }
    let output = target.shell(guest, kind, &script).await?;
    if output.success() {
        Ok(())
    } else {
        Err(DriverError::new(output.summary()))
    }
}

/// Runs `command` until it passes, at most `retries` times, `interval_secs` apart.
pub async fn health<G: Target, S: Future<Output = ()>>(
    guests: &G,
    guest: GuestId,
    kind: GuestKind,
    command: &str,
    retries: u32,
    interval_secs: u32,
    sleep: impl Fn(Duration) -> S,
) -> Health {
    let script = shell::health_check(command);
    let mut detail = String::new();
    for attempt in 1..=retries.max(1) {
        if attempt > 1 {
            sleep(Duration::from_secs(interval_secs.into())).await;
        }
        match guests.shell(guest, kind, &script).await {
            Ok(output) if output.success() => return Health { passed: true, tries: attempt, detail: String::new() },
            Ok(output) => detail = output.summary(),
            Err(error) => detail = error.to_string(),
        }
    }
    Health { passed: false, tries: retries.max(1), detail }
}

/// One guest's provisioning as `phoenix status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GuestReport {
    pub guest: GuestId,
    /// The features phoenix provisions, in order.
    pub features: Vec<String>,
    /// Declared features phoenix leaves to the original's scripts.
    pub not_provisioned: Vec<String>,
    /// Features that wait (why).
    pub waiting: Vec<(String, String)>,
    /// What a sync would change (the plan's lines); `None` when the guest was not probed.
    pub pending: Option<Vec<String>>,
    /// Why the guest could not be probed, when it could not.
    pub probe_error: Option<String>,
    /// The health check's result, when the guest has one and runs.
    pub health: Option<Health>,
}

/// Each provisioned guest's features and, for those in `running` (probed through `target`),
/// what a sync would change and how its health check goes.
pub async fn report<G: Target, S: Future<Output = ()>>(
    target: &G,
    desired: &BTreeMap<GuestId, Desired>,
    running: &std::collections::BTreeSet<GuestId>,
    sleep: impl Fn(Duration) -> S + Copy,
) -> Vec<GuestReport> {
    let reports = desired.values().map(|d| async move {
        let mut report = GuestReport {
            guest: d.guest,
            features: d.features.iter().map(|f| f.name.clone()).collect(),
            not_provisioned: d.not_provisioned.clone(),
            waiting: d.features.iter().filter_map(|f| Some((f.name.clone(), f.resources.as_ref().err()?.clone()))).collect(),
            pending: None,
            probe_error: None,
            health: None,
        };
        if !running.contains(&d.guest) {
            return report;
        }
        match observe(target, d).await {
            Ok(state) => {
                let plan = provision::plan(d, &state);
                report.pending = Some(plan.changes.iter().map(|c| format!("{}: {}", c.feature, c.action.describe())).collect());
            }
            Err(error) => report.probe_error = Some(error.message),
        }
        if let Some(check) = &d.health_check {
            let command = &check.command.value;
            report.health = Some(health(target, d.guest, d.kind, command, check.retries, check.interval_secs, sleep).await);
        }
        report
    });
    join_all(reports).await
}

/// The reports as a table for a terminal.
pub fn report_text(reports: &[GuestReport]) -> String {
    let mut out = format!("{:<10} {:<40} {:<24} {}\n", "ID", "FEATURES", "PROVISIONING", "HEALTH");
    for r in reports {
        let mut features = r.features.join(", ");
        if !r.not_provisioned.is_empty() {
            features.push_str(&format!(" (not phoenix's: {})", r.not_provisioned.join(", ")));
        }
        let provisioning = match (&r.pending, &r.probe_error) {
            (_, Some(error)) => format!("cannot probe: {error}"),
            (Some(p), None) if p.is_empty() => "in place".to_string(),
            (Some(p), None) => format!("{} change(s) pending", p.len()),
            (None, None) => "not running".to_string(),
        };
        let health = match &r.health {
            None => "-".to_string(),
            Some(h) if h.passed => format!("passed (try {})", h.tries),
            Some(h) => format!("FAILED after {} tries: {}", h.tries, h.detail),
        };
        out.push_str(&format!("{:<10} {features:<40} {provisioning:<24} {health}\n", r.guest));
        for (feature, why) in &r.waiting {
            out.push_str(&format!("{:<10} {feature} waits: {why}\n", ""));
        }
    }
    out
}

impl GuestReport {
    /// Everything in place and healthy (a guest not running has nothing to say here).
    pub fn converged(&self) -> bool {
        self.probe_error.is_none() && self.pending.as_ref().is_none_or(Vec::is_empty) && self.health.as_ref().is_none_or(|h| h.passed)
    }
}
