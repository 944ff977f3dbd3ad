//! The original's guest verbs as plans, with the semantics its README promised: `create`
//! (the guests named and every prerequisite that does not exist, then started), `converge`
//! (the same chain, existing guests brought to their description), `start` (dependencies
//! first, in boot order), `stop` (dependents first), `restart` (stop, then start), `delete`
//! (refused while other described guests depend on or clone from it, or when it holds what
//! phoenix did not create, unless forced), and phoenix's own `migrate` (each guest named moved to
//! its declared node: through HA when HA manages it, which `sync` leaves to HA). Prerequisites
//! are clone sources and dependencies, across LXC and VMs, as the original's
//! `resolve_dependencies` walks them. Pure.

use super::guests::{self, GuestPlan, CREATED_TAG};
use super::placement::{self, Placement};
use super::pve::{guest_segment, ApiRequest, Method};
use super::{Action, Domain, Plan, PveObserved, Step};
use crate::render::Rendered;
use phoenix_model::model::{GuestId, Model, Origin};
use std::collections::BTreeSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Create,
    Converge,
    Start,
    Stop,
    Restart,
    Delete { force: bool },
    Migrate,
}

/// A guest's prerequisites: its clone source and dependencies.
fn prerequisites(model: &Model, id: GuestId) -> Vec<GuestId> {
    let Some(guest) = model.guests.get(&id) else { return Vec::new() };
    let source = match &guest.spec.origin {
        Origin::Clone { from, .. } => Some(from.value),
        _ => None,
    };
    guest.dependencies.iter().map(|d| d.value).chain(source).collect()
}

/// `ids` and everything they need, transitively.
pub fn with_prerequisites(model: &Model, ids: &[GuestId]) -> BTreeSet<GuestId> {
    let mut found: BTreeSet<GuestId> = BTreeSet::new();
    let mut stack: Vec<GuestId> = ids.to_vec();
    while let Some(id) = stack.pop() {
        if found.insert(id) {
            stack.extend(prerequisites(model, id));
        }
    }
    found
}

/// `ids` and every described guest that needs one of them, transitively.
pub fn with_dependents(model: &Model, ids: &[GuestId]) -> BTreeSet<GuestId> {
    let mut found: BTreeSet<GuestId> = ids.iter().copied().collect();
    loop {
        let more: Vec<GuestId> = model
            .guests
            .keys()
            .filter(|g| !found.contains(g) && prerequisites(model, **g).iter().any(|p| found.contains(p)))
            .copied()
            .collect();
        if more.is_empty() {
            return found;
        }
        found.extend(more);
    }
}

fn belongs(step: &Step, ids: &BTreeSet<GuestId>) -> bool {
    let guest = step.id.strip_prefix("guest:").and_then(|rest| rest.split(':').next()).and_then(|id| id.parse::<GuestId>().ok());
    match guest {
        Some(id) => ids.contains(&id),
        // A download serves the guests that wait for it; kept, then dropped when none does.
        None => step.id.starts_with("download:"),
    }
}

/// Drops download steps nothing waits for.
fn without_idle_downloads(mut steps: Vec<Step>) -> Vec<Step> {
    let needed: BTreeSet<String> = steps.iter().flat_map(|s| s.after.clone()).collect();
    steps.retain(|s| !s.id.starts_with("download:") || needed.contains(&s.id));
    steps
}

/// The plan of a verb for `ids` (every id must be described).
pub fn plan(model: &Model, rendered: &Rendered, pve: &PveObserved, verb: Verb, ids: &[GuestId], boot_delays: bool) -> Result<Plan, String> {
    if let Some(unknown) = ids.iter().find(|id| !model.guests.contains_key(id)) {
        return Err(format!("guest {unknown} is not described in the configuration"));
    }
    let all = guests::steps(model, rendered, pve);
    let steps = match verb {
        Verb::Create | Verb::Converge => {
            let chain = with_prerequisites(model, ids);
            let targets: BTreeSet<GuestId> = ids.iter().copied().collect();
            // create: what does not exist, and the targets themselves; converge: the whole chain.
            let wanted: BTreeSet<GuestId> = chain
                .iter()
                .copied()
                .filter(|id| verb == Verb::Converge || targets.contains(id) || !pve.guest_states.contains_key(id))
                .collect();
            let mut steps: Vec<Step> = all.steps.iter().filter(|s| belongs(s, &wanted)).cloned().collect();
            let limited = GuestPlan { created: all.created.clone(), ready: all.ready.clone(), handled: wanted, nodes: all.nodes.clone(), ..GuestPlan::default() };
            steps.extend(guests::start_steps(model, pve, &limited, &steps, boot_delays));
            without_idle_downloads(steps)
        }
        Verb::Start => start(model, pve, &with_prerequisites(model, ids), &[], boot_delays),
        Verb::Stop => stop(model, pve, &with_dependents(model, ids)),
        Verb::Restart => {
            let set = with_dependents(model, ids);
            let stops = stop(model, pve, &set);
            let after: Vec<String> = stops.iter().map(|s| s.id.clone()).collect();
            // Every guest of the set starts again, those that ran and those stopped now.
            let running: BTreeSet<GuestId> =
                set.iter().copied().filter(|id| pve.guest_states.get(id).is_some_and(|s| s.running())).collect();
            let mut restarted = pve.clone();
            for id in &running {
                if let Some(state) = restarted.guest_states.get_mut(id) {
                    state.status = "stopped".into();
                }
            }
            let mut steps = stops;
            steps.extend(start(model, &restarted, &running, &after, boot_delays));
            steps
        }
        Verb::Delete { force } => delete(model, pve, ids, force)?,
        Verb::Migrate => migrate(model, pve, ids)?,
    };
    Ok(Plan { schema_version: 1, steps, notes: Vec::new() })
}

/// Start steps for the guests of `set` that do not run, after `after`.
fn start(model: &Model, pve: &PveObserved, set: &BTreeSet<GuestId>, after: &[String], boot_delays: bool) -> Vec<Step> {
    let limited = GuestPlan { handled: set.clone(), ..GuestPlan::default() };
    let mut steps = guests::start_steps(model, pve, &limited, &[], boot_delays);
    for step in &mut steps {
        step.after.extend(after.iter().cloned());
    }
    steps
}

fn base(pve: &PveObserved, model: &Model, id: GuestId) -> String {
    format!("/nodes/{}/{}/{id}", pve.node_of(id), guest_segment(model.guests[&id].kind))
}

fn pve_step(id: String, title: String, reason: String, requests: Vec<ApiRequest>, after: Vec<String>, lock: String) -> Step {
    let diff = requests.iter().map(|r| format!("{r}\n")).collect();
    let calls = requests.iter().map(ApiRequest::calls).sum::<usize>().max(1);
    Step { id, domain: Domain::Guests, title, reason, diff, action: Action::Pve { requests }, after, lock: Some(lock), node: None, calls }
}

/// Shutdown steps (stopped after 60 s) for the running guests of `set`, each after the stops
/// of the guests that need it.
fn stop(model: &Model, pve: &PveObserved, set: &BTreeSet<GuestId>) -> Vec<Step> {
    let running: Vec<GuestId> = set.iter().copied().filter(|id| pve.guest_states.get(id).is_some_and(|s| s.running())).collect();
    // Dependents first: reverse creation order.
    let order = phoenix_model::graph::build(model).order;
    let mut steps = Vec::new();
    for id in order.iter().rev().filter(|id| running.contains(id)) {
        let after =
            running.iter().filter(|other| prerequisites(model, **other).contains(id)).map(|other| format!("guest:{other}:stop")).collect();
        let guest = &model.guests[id];
        let request = ApiRequest::new(
            Method::Post,
            format!("{}/status/shutdown", base(pve, model, *id)),
            vec![("forceStop".into(), "1".into()), ("timeout".into(), "60".into())],
        );
        let title = format!("stop {} {id} ({})", guest.kind.label(), guest.name);
        steps.push(pve_step(
            format!("guest:{id}:stop"),
            title,
            "it runs (shut down, stopped after 60 s)".into(),
            vec![request],
            after,
            format!("guest:{id}"),
        ));
    }
    steps
}

/// Stop, then destroy (with its disks and firewall: `purge`) each target; refused while
/// another described guest needs it, or when it holds what phoenix did not make.
fn delete(model: &Model, pve: &PveObserved, ids: &[GuestId], force: bool) -> Result<Vec<Step>, String> {
    let targets: BTreeSet<GuestId> = ids.iter().copied().collect();
    let mut refusals = Vec::new();
    for id in ids {
        let needing: Vec<String> =
            model.guests.keys().filter(|g| !targets.contains(g) && prerequisites(model, **g).contains(id)).map(|g| g.to_string()).collect();
        if !needing.is_empty() {
            refusals.push(format!("guest {id} is needed by {} (a dependency or clone source)", needing.join(", ")));
        }
        if let Some(state) = pve.guest_states.get(id) {
            let ours = state.config.get("tags").is_some_and(|t| t.split([';', ',', ' ']).any(|t| t == CREATED_TAG));
            let foreign: Vec<&String> = state.config.keys().filter(|k| k.starts_with("unused")).collect();
            if !ours {
                refusals.push(format!("guest {id} was not created by phoenix (it has no `{CREATED_TAG}` tag)"));
            }
            if !foreign.is_empty() {
                refusals.push(format!(
                    "guest {id} holds disks nothing describes ({})",
                    foreign.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
                ));
            }
        }
    }
    if !refusals.is_empty() && !force {
        return Err(format!("{}; pass --force to delete anyway", refusals.join("; ")));
    }
    let mut steps = stop(model, pve, &targets);
    for id in ids.iter().filter(|id| pve.guest_states.contains_key(id)) {
        let guest = &model.guests[id];
        let after: Vec<String> = steps.iter().filter(|s| s.id == format!("guest:{id}:stop")).map(|s| s.id.clone()).collect();
        let request = ApiRequest::new(Method::Delete, base(pve, model, *id), vec![("purge".into(), "1".into())]);
        let title = format!("delete {} {id} ({})", guest.kind.label(), guest.name);
        steps.push(pve_step(
            format!("guest:{id}:delete"),
            title,
            "asked for (phoenix delete)".into(),
            vec![request],
            after,
            format!("guest:{id}"),
        ));
    }
    Ok(steps)
}

/// Each named guest moved to its declared node: one HA manages through HA (the move `sync`
/// leaves to HA, asked for here), any other as `sync` migrates it; nothing for a guest already
/// there; refused for one that does not exist (`create` makes it on its node).
fn migrate(model: &Model, pve: &PveObserved, ids: &[GuestId]) -> Result<Vec<Step>, String> {
    let named: BTreeSet<GuestId> = ids.iter().copied().collect();
    let missing: Vec<String> = named.iter().filter(|id| !pve.guest_states.contains_key(id)).map(GuestId::to_string).collect();
    if !missing.is_empty() {
        return Err(format!("guest {} does not exist; `phoenix create` makes a guest on its declared node", missing.join(", ")));
    }
    let steps = named.iter().filter_map(|id| {
        let guest = &model.guests[id];
        match placement::decide(guest, pve) {
            Placement::Declared(_) => None,
            Placement::Migrate { from, to } => Some(placement::migrate_step(guest, &pve.guest_states[id], pve, &from, &to, Vec::new())),
            Placement::HeldByHa { node, declared, .. } => Some(placement::ha_migrate_step(guest, &pve.guest_states[id], pve, &node, &declared)),
        }
    });
    Ok(steps.collect())
}
