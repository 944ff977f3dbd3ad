//! Lifecycle snapshots: the snapshots a guest's description names at points of its setup (a
//! container's `enable_lifecycle_snapshots`: `pre-configured` once it runs, before phoenix sets
//! anything up in it, `final-form` after everything the run does to it; a VM's `snapshots`
//! `pre-features` and `post-features` at the same points). Each is taken once, when it is
//! missing: the original replaced them on every `create`, which would make every run change
//! the guest and throw away the point it is kept to go back to. Templates get none (Proxmox VE
//! neither snapshots a template nor converts a guest that has snapshots; PHX-GUEST-018), and a
//! name the guest's clones start from (`template_snapshot_name`) is the guests domain's.
//! Pure: steps from the plan so far and the observation.

use super::guests::{snapshot_step, GuestPlan};
use super::{Action, PveObserved, Step};
use crate::deploy::{Machine, Place};
use phoenix_model::model::{Guest, GuestId, Model, SetupPoint};

/// Whether a step of the plan sets something up in (or on) the guest.
fn concerns(step: &Step, id: GuestId) -> bool {
    let in_guest = |place: &Place| place.guest.is_some_and(|(g, _)| g == id);
    let prefixed = [format!("guest:{id}:"), format!("firewall:guest:{id}:")];
    step.id == format!("nic:{id}")
        || prefixed.iter().any(|p| step.id.starts_with(p.as_str()))
        || match &step.action {
            Action::File { file } => file.target == Machine::Guest(id),
            Action::Certificate { renewal } => renewal.files.iter().any(|f| in_guest(&f.place)),
            Action::Trust { files, .. } | Action::Install { files, .. } => files.iter().any(|f| in_guest(&f.place)),
            _ => false,
        }
}

/// The snapshot steps for every guest the guests domain planned for, after the plan so far.
pub fn steps(model: &Model, pve: &PveObserved, guests: &GuestPlan, earlier: &[Step]) -> Vec<Step> {
    let mut steps = Vec::new();
    let ids: std::collections::BTreeSet<&str> = earlier.iter().map(|s| s.id.as_str()).collect();
    for guest in model.guests.values().filter(|g| !g.is_template && guests.handled.contains(&g.id) && !g.spec.lifecycle_snapshots.is_empty()) {
        steps.extend(guest_steps(guest, pve, guests, earlier, &ids));
    }
    steps
}

fn guest_steps(guest: &Guest, pve: &PveObserved, guests: &GuestPlan, earlier: &[Step], ids: &std::collections::BTreeSet<&str>) -> Vec<Step> {
    let id = guest.id;
    let taken = |name: &String| pve.guest_states.get(&id).is_some_and(|s| s.snapshots.contains(name));
    let start = format!("guest:{id}:start");
    let before_setup: Vec<String> = match ids.contains(start.as_str()) {
        true => vec![start],
        false => guests.ready.get(&id).cloned().into_iter().collect(),
    };
    let mut steps: Vec<Step> = Vec::new();
    let mut snapshots = guest.spec.lifecycle_snapshots.clone();
    snapshots.sort_by_key(|s| s.point);
    for snapshot in snapshots {
        let name = &snapshot.name.value;
        if taken(name) || guest.template_snapshot.as_ref() == Some(name) {
            continue;
        }
        let (after, when) = match snapshot.point {
            SetupPoint::BeforeSetup => (before_setup.clone(), "once it runs, before phoenix sets anything up in it"),
            SetupPoint::AfterSetup => {
                let mut after: Vec<String> = earlier.iter().filter(|s| concerns(s, id)).map(|s| s.id.clone()).collect();
                after.extend(steps.iter().map(|s| s.id.clone()));
                (after, "after everything this run does to it")
            }
        };
        let reason = format!("a lifecycle snapshot {when}; taken once, kept as it is");
        steps.push(snapshot_step(guests.node_of(guest.id, pve), guest, format!("guest:{id}:lifecycle:{name}"), name, reason, after));
    }
    steps
}
