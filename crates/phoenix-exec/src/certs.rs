//! `phoenix certs renew`: for each certificate of the manifest that is due (or forced), order
//! it, check what came back against the manifest and the root, install it as one change, run
//! the post-renewal actions, and roll the files back when any of that fails. Certificates are
//! independent: one failing does not stop the others.

use crate::install::Installation;
use crate::traits::{Issuer, Target};
use phoenix_core::certificates::renewal::{self, Due};
use phoenix_core::certificates::Reason;
use phoenix_core::deploy::{Place, PostAction};
use phoenix_core::pki::CertStore;
use phoenix_model::model::{Certificate, Model};
use phoenix_model::paths::STORE_ROOT_FILE;
use serde::Serialize;

/// What to renew.
#[derive(Debug, Clone)]
pub struct RenewRequest {
    /// The store folder on the machine phoenix runs on (`<name>.crt`, `<name>.key`, `root_ca.crt`).
    pub store_dir: String,
    /// Only these manifest names; all when empty.
    pub names: Vec<String>,
    pub force: bool,
    /// Seconds since the epoch.
    pub now: u64,
    /// Skip the post-renewal actions (a rehearsal outside Proxmox).
    pub skip_post_actions: bool,
}

/// Where a renewal stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// Reading the installed files from the store.
    Read,
    /// The ACME exchange.
    Issue,
    /// The issued certificate did not match the manifest or the root.
    Verify,
    Install,
    PostAction,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Outcome {
    UpToDate {
        renew_at: i64,
    },
    Renewed {
        reasons: Vec<Reason>,
        forced: bool,
        not_after: i64,
        installed: Vec<Place>,
        actions: Vec<PostAction>,
    },
    Failed {
        stage: Stage,
        message: String,
        /// Whether the previous files are back in place (always true when nothing was written).
        restored: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RenewResult {
    pub name: String,
    #[serde(flatten)]
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RenewReport {
    pub schema_version: u32,
    pub results: Vec<RenewResult>,
}

impl RenewReport {
    pub fn failed(&self) -> bool {
        self.results.iter().any(|r| matches!(r.outcome, Outcome::Failed { .. }))
    }
}

/// Names given that the manifest does not have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownNames(pub Vec<String>);

/// The certificates `names` select, in manifest order; all when `names` is empty.
pub fn select<'m>(model: &'m Model, names: &[String]) -> Result<Vec<&'m Certificate>, UnknownNames> {
    let unknown: Vec<String> = names.iter().filter(|n| !model.certificates.iter().any(|c| &c.name == *n)).cloned().collect();
    if !unknown.is_empty() {
        return Err(UnknownNames(unknown));
    }
    Ok(model.certificates.iter().filter(|c| names.is_empty() || names.contains(&c.name)).collect())
}

/// Renews what is due. Returns `Err` only when a name is unknown (then nothing is done).
pub async fn renew(model: &Model, request: &RenewRequest, issuer: &impl Issuer, target: &impl Target) -> Result<RenewReport, UnknownNames> {
    let mut results = Vec::new();
    for cert in select(model, &request.names)? {
        let outcome = renew_one(model, cert, request, issuer, target).await;
        results.push(RenewResult { name: cert.name.clone(), outcome });
    }
    Ok(RenewReport { schema_version: 1, results })
}

fn failed(stage: Stage, message: impl Into<String>) -> Outcome {
    Outcome::Failed { stage, message: message.into(), restored: true }
}

/// Reads `places` into a [`CertStore`] keyed by the given file names; absent files are left out.
async fn read_files(places: Vec<(String, Place)>, target: &impl Target) -> Result<CertStore, String> {
    let mut store = CertStore::default();
    for (file, place) in places {
        match target.read(&place).await {
            Ok(Some(bytes)) => {
                store.files.insert(file, String::from_utf8_lossy(&bytes).into_owned());
            }
            Ok(None) => {}
            Err(error) => return Err(format!("cannot read {place}: {error}")),
        }
    }
    Ok(store)
}

/// The store's files for `cert`, as [`status`](phoenix_core::certificates::status) reads them.
pub async fn read_store(cert: &Certificate, store_dir: &str, target: &impl Target) -> Result<CertStore, String> {
    read_files(renewal::store_places(cert, store_dir), target).await
}

/// The files installed in the guest for `cert` (`cert_path`, `key_path`), named as the store
/// names them, with the store's root, so [`status`](phoenix_core::certificates::status) judges
/// what the service really uses. An entry without paths reads as missing.
pub async fn read_installed(cert: &Certificate, store_dir: &str, target: &impl Target) -> Result<CertStore, String> {
    // The places renewal installs to (one home for where they are), named by what they hold.
    let mut places: Vec<(String, Place)> = renewal::installed_files(cert)
        .into_iter()
        .map(|file| {
            let name = match file.content {
                renewal::Content::Key => renewal::store_key_file(&cert.name),
                renewal::Content::Chain | renewal::Content::Leaf => renewal::store_cert_file(&cert.name),
            };
            (name, file.place)
        })
        .collect();
    places.extend(renewal::store_places(cert, store_dir).into_iter().filter(|(file, _)| file == STORE_ROOT_FILE));
    read_files(places, target).await
}

async fn renew_one(model: &Model, cert: &Certificate, request: &RenewRequest, issuer: &impl Issuer, target: &impl Target) -> Outcome {
    let store = match read_store(cert, &request.store_dir, target).await {
        Ok(store) => store,
        Err(message) => return failed(Stage::Read, message),
    };
    let (reasons, forced) = match renewal::due(cert, &store, request.now, request.force) {
        Due::UpToDate { renew_at } => return Outcome::UpToDate { renew_at },
        Due::Renew { reasons } => (reasons, false),
        Due::Forced { reasons } => (reasons, true),
    };
    let plan = renewal::renewal_plan(model, cert, &request.store_dir);
    carry_out(cert, &plan, &store, request, issuer, target).await.map_or_else(|failed| failed, |done| done.outcome(reasons, forced))
}

/// The plan's renewal of `cert`, which is due: reads the store (its root judges the issued
/// certificate), then orders, checks and installs exactly what `plan` says.
pub async fn renew_planned(
    model: &Model,
    plan: &renewal::RenewalPlan,
    request: &RenewRequest,
    issuer: &impl Issuer,
    target: &impl Target,
) -> Outcome {
    let Some(cert) = model.certificates.iter().find(|c| c.name == plan.name) else {
        return failed(Stage::Read, format!("{} is not in the certificate manifest", plan.name));
    };
    let store = match read_store(cert, &request.store_dir, target).await {
        Ok(store) => store,
        Err(message) => return failed(Stage::Read, message),
    };
    carry_out(cert, plan, &store, request, issuer, target).await.map_or_else(|failed| failed, |done| done.outcome(Vec::new(), false))
}

/// What a renewal installed.
struct Installed {
    not_after: i64,
    places: Vec<Place>,
    actions: Vec<PostAction>,
}

impl Installed {
    fn outcome(self, reasons: Vec<phoenix_core::certificates::Reason>, forced: bool) -> Outcome {
        Outcome::Renewed { reasons, forced, not_after: self.not_after, installed: self.places, actions: self.actions }
    }
}

/// Orders the certificate, checks it against the manifest and the store's root, installs the
/// planned files as one change and runs the planned actions (none with `skip_post_actions`).
async fn carry_out(
    cert: &Certificate,
    plan: &renewal::RenewalPlan,
    store: &CertStore,
    request: &RenewRequest,
    issuer: &impl Issuer,
    target: &impl Target,
) -> Result<Installed, Outcome> {
    let Some(root) = store.files.get(STORE_ROOT_FILE) else {
        return Err(failed(
            Stage::Read,
            format!("{STORE_ROOT_FILE} is not in {}: install the CA root first (phoenix certs trust)", request.store_dir),
        ));
    };
    let issued =
        issuer.issue(&plan.order, target).await.map_err(|error| failed(Stage::Issue, format!("ACME order failed, nothing installed: {error}")))?;
    if let Err(problems) = renewal::verify_issued(cert, &issued.chain_pem, &issued.key_pem, root, request.now) {
        let codes: Vec<&str> = problems.iter().map(|r| r.code()).collect();
        return Err(failed(
            Stage::Verify,
            format!("the issued certificate is not what the manifest asks for ({}); nothing installed", codes.join(", ")),
        ));
    }
    let files = renewal::fill(&plan.files, &issued.chain_pem, &issued.key_pem);
    let actions = if request.skip_post_actions { &[][..] } else { plan.actions.as_slice() };
    apply_change(target, &files, actions).await.map_err(|error| Outcome::Failed {
        stage: error.stage,
        message: error.message,
        restored: error.restored,
    })?;
    let not_after = phoenix_core::certificates::validity(&issued.chain_pem).map(|(_, end)| end).unwrap_or_default();
    Ok(Installed { not_after, places: files.into_iter().map(|f| f.place).collect(), actions: actions.to_vec() })
}

fn unrestored_note(unrestored: &[(Place, crate::DriverError)]) -> String {
    if unrestored.is_empty() {
        return String::new();
    }
    let places: Vec<String> = unrestored.iter().map(|(place, error)| format!("{place} ({error})")).collect();
    format!("; could NOT restore: {}", places.join(", "))
}

/// The report for a terminal.
pub fn to_human(report: &RenewReport) -> String {
    let mut out = String::new();
    for result in &report.results {
        let line = match &result.outcome {
            Outcome::UpToDate { renew_at } => format!("{}: up to date, renewal due {}", result.name, time(*renew_at)),
            Outcome::Renewed { reasons, forced, not_after, installed, actions } => {
                let why: Vec<&str> = reasons.iter().map(|r| r.code()).collect();
                let why = if *forced { format!("forced; {}", why.join(", ")) } else { why.join(", ") };
                format!(
                    "{}: renewed ({why}), valid until {}; installed {} file(s), ran {} action(s)",
                    result.name,
                    time(*not_after),
                    installed.len(),
                    actions.len()
                )
            }
            Outcome::Failed { stage, message, restored } => {
                let state = restored_state(*restored);
                format!("{}: FAILED at {stage:?}: {message} [{state}]", result.name)
            }
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

fn time(seconds: i64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds.max(0) as u64);
    humantime::format_rfc3339_seconds(at).to_string()
}

/// When a `--watch` loop should look again: the earliest renewal due, a failed certificate
/// retried after `retry` seconds, and never later than `longest` seconds from `now`.
pub fn next_wake(report: &RenewReport, now: u64, retry: u64, longest: u64) -> u64 {
    let mut wake = now + longest;
    for result in &report.results {
        let at = match &result.outcome {
            Outcome::UpToDate { renew_at } => (*renew_at).max(0) as u64,
            Outcome::Renewed { .. } => now + 1,
            Outcome::Failed { .. } => now + retry,
        };
        wake = wake.min(at.max(now + 1));
    }
    wake
}

/// What a failed change left, in words: the reports of renew, trust and sync say it so.
pub fn restored_state(restored: bool) -> &'static str {
    if restored {
        "previous files in place"
    } else {
        "PREVIOUS FILES NOT ALL RESTORED"
    }
}

/// Why a change (files, then actions) failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeError {
    pub stage: Stage,
    pub message: String,
    /// Whether the previous files are back in place.
    pub restored: bool,
}

/// Installs `files` as one change, then runs `actions`; when a write or an action fails, the
/// previous files are put back.
pub async fn apply_change(
    target: &impl Target,
    files: &[phoenix_core::deploy::FileWrite],
    actions: &[PostAction],
) -> Result<(), ChangeError> {
    let installation = Installation::apply(target, files).await.map_err(|e| ChangeError {
        stage: Stage::Install,
        message: format!("cannot write {}: {}{}", e.place, e.error, unrestored_note(&e.unrestored)),
        restored: e.unrestored.is_empty(),
    })?;
    for action in actions {
        if let Err(error) = target.run(action).await {
            let unrestored = installation.roll_back(target).await;
            return Err(ChangeError {
                stage: Stage::PostAction,
                message: format!("{action} failed: {error}; the previous files were restored{}", unrestored_note(&unrestored)),
                restored: unrestored.is_empty(),
            });
        }
    }
    Ok(())
}

impl std::fmt::Display for ChangeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ChangeError {}

/// What `phoenix certs trust` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrustReport {
    pub schema_version: u32,
    pub subject: String,
    pub installed: Vec<Place>,
    pub actions: Vec<PostAction>,
}

/// Why `phoenix certs trust` failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustError {
    pub message: String,
    pub restored: bool,
}

/// Installs the CA root where [`renewal::trust_plan`] says, as one change: when rebuilding a
/// trust store fails, the previous files are put back.
pub async fn trust(
    model: &Model,
    root_pem: &str,
    store_dir: &str,
    host_trust_file: &str,
    update_stores: bool,
    target: &impl Target,
) -> Result<TrustReport, TrustError> {
    let subject = renewal::check_root(root_pem).map_err(|message| TrustError { message, restored: true })?;
    let (files, mut actions) = renewal::trust_plan(model, root_pem, store_dir, host_trust_file);
    if !update_stores {
        actions.clear();
    }
    apply_change(target, &files, &actions).await.map_err(|e| TrustError { message: e.message, restored: e.restored })?;
    Ok(TrustReport { schema_version: 1, subject, installed: files.into_iter().map(|f| f.place).collect(), actions })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(outcomes: Vec<Outcome>) -> RenewReport {
        RenewReport { schema_version: 1, results: outcomes.into_iter().map(|outcome| RenewResult { name: "c".into(), outcome }).collect() }
    }

    #[test]
    fn the_watch_loop_wakes_for_the_earliest_renewal_or_a_retry() {
        let up_to_date = |renew_at| Outcome::UpToDate { renew_at };
        let failed = Outcome::Failed { stage: Stage::Issue, message: String::new(), restored: true };
        assert_eq!(next_wake(&report(vec![up_to_date(1_500), up_to_date(1_200)]), 1_000, 300, 3_600), 1_200);
        assert_eq!(next_wake(&report(vec![up_to_date(90_000)]), 1_000, 300, 3_600), 4_600, "at most an hour");
        assert_eq!(next_wake(&report(vec![up_to_date(90_000), failed]), 1_000, 300, 3_600), 1_300, "failures retried");
        assert_eq!(next_wake(&report(vec![up_to_date(10)]), 1_000, 300, 3_600), 1_001, "overdue: right away, never in the past");
        assert_eq!(next_wake(&report(vec![]), 1_000, 300, 3_600), 4_600);
    }
}
