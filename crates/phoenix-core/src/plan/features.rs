//! Provisioning's steps in the sync plan: one step per change a guest's features need (in
//! order, each after the one before, so a failure skips only that guest's later changes), the
//! first after the guest's start when sync starts it, then its health check when anything
//! changed. A guest this sync starts is planned from nothing (everything is absent in a guest
//! that does not exist yet); one that does not run and is not started here, or could not be
//! probed, gets one blocked step saying why.

use super::{Action, Domain, Observed, Step};
use crate::provision::{self, GuestState};
use crate::deploy::Place;
use phoenix_model::model::{GuestId, GuestKind, Model};

/// What the probe found in a guest the plan provisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeatureObservation {
    Found(GuestState),
    /// The guest does not exist or is not running: its changes are planned from nothing.
    NotRunning,
    /// The probe failed (why).
    Unreachable(String),
}

/// The features domain's steps; `before` holds the steps planned so far (a guest's start).
/// `store_dir`: phoenix's store, where Step-CA's root is exported.
pub fn steps(model: &Model, observed: &Observed, before: &[Step], store_dir: &str) -> Vec<Step> {
    let mut steps = Vec::new();
    for (id, desired) in provision::desired(model, &observed.feature_inputs) {
        let Some(found) = observed.features.get(&id) else { continue };
        let start = format!("guest:{id}:start");
        let mut after: Vec<String> = before.iter().filter(|s| s.id == start).map(|s| s.id.clone()).collect();
        let state = match found {
            FeatureObservation::Found(state) => state.clone(),
            // Planned from nothing when this sync starts it; otherwise nothing can run there.
            FeatureObservation::NotRunning if !after.is_empty() => GuestState::default(),
            FeatureObservation::NotRunning => {
                let reason = format!("guest {id} does not run: `phoenix sync guests` (or `phoenix start {id}`) first, then its features");
                steps.push(Step::blocked(format!("features:{id}:probe"), Domain::Features, format!("provision guest {id}"), reason, after));
                continue;
            }
            FeatureObservation::Unreachable(why) => {
                let reason = format!("guest {id} could not be probed ({why}); its features wait for a run that reaches it");
                steps.push(Step::blocked(format!("features:{id}:probe"), Domain::Features, format!("probe guest {id}"), reason, after));
                continue;
            }
        };
        let plan = provision::plan(&desired, &state);
        for (n, change) in plan.changes.iter().enumerate() {
            let step_id = format!("features:{id}:{:03}", n + 1);
            steps.push(Step {
                id: step_id.clone(),
                domain: Domain::Features,
                title: format!("{} in guest {id}: {}", change.feature, change.action.describe()),
                reason: change.reason.clone(),
                diff: String::new(),
                action: Action::Provision { guest: id, kind: desired.kind, change: change.clone() },
                after: std::mem::take(&mut after),
                lock: None,
                node: None,
                calls: 1,
            });
            after = vec![step_id];
        }
        use provision::step_ca::{PKI, STEP_CA};
        let makes_pki = plan.changes.iter().any(|c| matches!(&c.action, provision::Action::RunCommand { name, .. } if name == PKI) && c.feature == STEP_CA);
        // Only where phoenix provisions Step-CA (its feature not waiting).
        let provisions_ca = desired.features.iter().any(|f| f.name == STEP_CA && f.resources.is_ok());
        let export = provisions_ca.then(|| export_root(id, desired.kind, makes_pki, observed, store_dir, &after)).flatten();
        if let Some(step) = export {
            after = vec![step.id.clone()];
            steps.push(step);
        }
        if let (Some(check), false) = (&desired.health_check, plan.changes.is_empty()) {
            steps.push(Step {
                id: format!("features:{id}:health"),
                domain: Domain::Features,
                title: format!("health check of guest {id}: `{}`", check.command.value),
                reason: format!("its features changed; up to {} tries, {} s apart", check.retries, check.interval_secs),
                diff: String::new(),
                action: Action::Health { guest: id, kind: desired.kind, check: check.command.value.clone(), retries: check.retries, interval_secs: check.interval_secs },
                after,
                lock: None,
                node: None,
                calls: 1,
            });
        }
    }
    steps
}

/// The step exporting Step-CA's root from guest `id` to the store: when its PKI is made in this
/// run, or the root it holds is not the store's.
fn export_root(id: GuestId, kind: GuestKind, makes_pki: bool, observed: &Observed, store_dir: &str, after: &[String]) -> Option<Step> {
    let store = observed.feature_inputs.root_ca_pem.as_deref();
    let reason = match (&observed.step_ca_root, makes_pki) {
        (_, true) => "Step-CA's PKI is made in this run".to_string(),
        (Some(root), false) if Some(root.as_str()) != store => match store {
            Some(_) => "the store's root is not the one Step-CA's guest holds".into(),
            None => "the store has no root yet".into(),
        },
        _ => return None,
    };
    let from = Place { guest: Some((id, kind)), path: provision::step_ca::ROOT_CERT.into() };
    let to = Place::host(format!("{}/{}", store_dir.trim_end_matches('/'), phoenix_model::paths::STORE_ROOT_FILE));
    Some(Step {
        id: format!("features:{id}:root"),
        domain: Domain::Features,
        title: format!("export Step-CA's root from guest {id} to {} (and its fingerprint beside it)", to.path),
        reason,
        diff: String::new(),
        action: Action::ExportRoot { from, to },
        after: after.to_vec(),
        lock: None,
        node: None,
        calls: 2,
    })
}
