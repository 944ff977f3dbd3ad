//! Where each described guest runs in a cluster, and the migration that puts it there: a guest
//! that does not exist is created on its declared node; one on another node is migrated there
//! first (offline when stopped, online when a running VM's disks are all on shared storage,
//! in restart mode for a running container), or refused with the reason when its storage does
//! not allow it; one HA manages is left where HA placed it (the plan says so: HA decides,
//! phoenix never moves a guest behind HA's back nor fights its placement). What the refusals
//! follow: qemu-server `API2/Qemu.pm` migrate_vm ("can't migrate running VM without --online")
//! and `QemuMigrate.pm` prepare / scan_local_volumes (a storage the target lacks, local disks of
//! a live migration, local devices), pve-container `API2/LXC.pm` migrate_vm and
//! `LXC/Migrate.pm` prepare (no live migration, local bind mount points).
//! Pure: the observation is data; it must not decide anything HA decides.

use super::guests::{is_disk_key, step, GuestState};
use super::pve::{guest_segment, ApiRequest, Method};
use super::{PveObserved, Step};
use phoenix_model::model::{Guest, GuestId, GuestKind};

/// Where a guest is addressed in this plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// On its declared node (created there, or already there).
    Declared(String),
    /// On `from`, migrated to its declared node `to` before anything else is done to it.
    Migrate { from: String, to: String },
    /// HA manages it (`state`) and keeps it on `node`, not the declared one: left there.
    HeldByHa { node: String, declared: String, state: String },
}

impl Placement {
    /// The node the plan's requests for the guest go to (after its migration).
    pub fn node(&self) -> &str {
        match self {
            Placement::Declared(node) | Placement::HeldByHa { node, .. } => node,
            Placement::Migrate { to, .. } => to,
        }
    }
}

/// Where the guest goes in this plan, from where it is and whether HA manages it.
pub fn decide(guest: &Guest, pve: &PveObserved) -> Placement {
    let declared = guest.node.value.clone();
    let Some(current) = pve.guests.contains_key(&guest.id).then(|| pve.node_of(guest.id).to_string()) else {
        return Placement::Declared(declared);
    };
    if current == declared {
        return Placement::Declared(declared);
    }
    match pve.ha.get(&guest.id) {
        Some(state) => Placement::HeldByHa { node: current, declared, state: state.clone() },
        None => Placement::Migrate { from: current, to: declared },
    }
}

/// What the plan says of a guest HA keeps elsewhere.
pub fn ha_note(guest: &Guest, node: &str, declared: &str, state: &str) -> String {
    let sid = ha_sid(guest);
    format!(
        "guest {} ({}) runs on {node}, declared on {declared}: HA manages {sid} (state {state}) and decides where it runs, \
         so phoenix leaves it there and changes it on {node}; to move it, `phoenix migrate {}` asks HA (as `ha-manager migrate {sid} {declared}` does)",
        guest.id, guest.name, guest.id
    )
}

/// The id of the step that moves a guest to another node.
fn migrate_id(guest: &Guest) -> String {
    format!("guest:{}:migrate", guest.id)
}

/// HA's name for a guest: `vm:100`, `ct:100`.
pub fn ha_sid(guest: &Guest) -> String {
    match guest.kind {
        GuestKind::Vm => format!("vm:{}", guest.id),
        GuestKind::Lxc => format!("ct:{}", guest.id),
    }
}

/// How a migration moves the guest (for people) and the parameters that say so.
type Mode = (&'static str, Vec<(String, String)>);

/// How a migration moves the guest, or why it cannot.
fn mode(guest: &Guest, state: &GuestState, pve: &PveObserved, from: &str, to: &str) -> Result<Mode, String> {
    let running = state.running();
    for (key, value) in state.config.iter().filter(|(k, _)| is_disk_key(k)) {
        if value.starts_with('/') {
            if guest.kind == GuestKind::Lxc && !value.split(',').any(|o| o == "shared=1") {
                return Err(format!("its mount point {key} is a bind mount of a folder on {from}, which pve-container does not migrate"));
            }
            continue;
        }
        let Some((storage, volume)) = value.split(',').next().and_then(|v| v.split_once(':')) else { continue };
        let shared = pve.storages_of(from).get(storage).is_some_and(|s| s.shared);
        if !pve.storages_of(to).contains_key(storage) {
            return Err(format!("its disk {key} is on storage `{storage}`, which node {to} does not have"));
        }
        if !shared && volume.contains("base-") {
            return Err(format!(
                "its disk {key} is a linked clone of a template on {from}'s local storage `{storage}`; the base stays on {from}"
            ));
        }
        if !shared && running && guest.kind == GuestKind::Vm && !value.contains("media=cdrom") {
            return Err(format!(
                "it runs, and its disk {key} is on {from}'s local storage `{storage}`: a live migration would copy every disk while it runs \
                 (qm migrate --with-local-disks); stop it (`phoenix stop {}`) and sync again to migrate it offline",
                guest.id
            ));
        }
    }
    Ok(match (guest.kind, running) {
        (_, false) => ("offline", Vec::new()),
        (GuestKind::Vm, true) => ("online", vec![("online".to_string(), "1".to_string())]),
        (GuestKind::Lxc, true) => ("restart mode: shut down, moved, started again", vec![("restart".to_string(), "1".to_string())]),
    })
}

/// How long phoenix waits for HA to carry out a move it asked for: HA's manager takes the
/// request on its next round (about 10 s) and the node's LRM then runs the migration task.
const HA_MOVE_SECONDS: u64 = 900;

/// The step that asks HA to move a guest it manages from `from` to `to` (pve-ha-manager
/// `API2/HA/Resources.pm` migrate: online for a running VM, the LRM restarts a running
/// container on the target), and waits until its config is on `to`, as the request only queues
/// the manager's command and hands out no task. HA's LRM migrates through the same handlers as
/// `qm`/`pct migrate`, so what refuses those refuses it: such a step is blocked with the reason.
pub fn ha_migrate_step(guest: &Guest, state: &GuestState, pve: &PveObserved, from: &str, to: &str) -> Step {
    let sid = ha_sid(guest);
    let id = migrate_id(guest);
    let title = format!("ask HA to move {} {} ({}) from {from} to {to}", guest.kind.label(), guest.id, guest.name);
    if let Err(reason) = mode(guest, state, pve, from, to) {
        return Step::blocked(id, super::Domain::Guests, title, format!("it is declared on {to} but HA cannot move it: {reason}"), Vec::new());
    }
    let segment = guest_segment(guest.kind);
    let arrived = super::pve::Then::Arrived {
        path: format!("/nodes/{to}/{segment}/{}/config", guest.id),
        node: to.to_string(),
        from: from.to_string(),
        task: if guest.kind == GuestKind::Vm { "qmigrate" } else { "vzmigrate" }.to_string(),
        vmid: guest.id.to_string(),
        seconds: HA_MOVE_SECONDS,
    };
    let request = ApiRequest::new(Method::Post, format!("/cluster/ha/resources/{sid}/migrate"), vec![("node".to_string(), to.to_string())]);
    let reason = format!("it is on {from} and declared on {to}; HA manages {sid}, so HA moves it");
    step(id, title, reason, vec![request.then(arrived)], Vec::new(), Some(format!("guest:{}", guest.id)), None)
}

/// The step that migrates an existing guest from `from` to `to`, or a blocked one saying why not.
pub fn migrate_step(guest: &Guest, state: &GuestState, pve: &PveObserved, from: &str, to: &str, after: Vec<String>) -> Step {
    let id = migrate_id(guest);
    let title = format!("migrate {} {} ({}) from {from} to {to}", guest.kind.label(), guest.id, guest.name);
    match mode(guest, state, pve, from, to) {
        Err(reason) => Step::blocked(id, super::Domain::Guests, title, format!("it is declared on {to} but cannot move: {reason}"), after),
        Ok((how, extra)) => migration(guest.id, guest.kind, from, to, how, extra, id, title, after),
    }
}

/// A new guest cloned on its source's node (`from`, local storage) and moved to `to` offline.
pub fn move_new_clone(guest: &Guest, from: &str, to: &str, after: Vec<String>) -> Step {
    let id = migrate_id(guest);
    let title = format!("migrate {} {} ({}) from {from} to {to}", guest.kind.label(), guest.id, guest.name);
    migration(guest.id, guest.kind, from, to, "offline, after its clone on the source's node", Vec::new(), id, title, after)
}

#[allow(clippy::too_many_arguments)]
fn migration(
    vmid: GuestId,
    kind: GuestKind,
    from: &str,
    to: &str,
    how: &str,
    extra: Vec<(String, String)>,
    id: String,
    title: String,
    after: Vec<String>,
) -> Step {
    let mut params = vec![("target".to_string(), to.to_string())];
    params.extend(extra);
    let path = format!("/nodes/{from}/{}/{vmid}/migrate", guest_segment(kind));
    let request = ApiRequest::new(Method::Post, path, params);
    let reason = format!("it is on {from} and declared on {to}: migrated {how}");
    step(id, title, reason, vec![request], after, Some(format!("guest:{vmid}")), Some(from.to_string()))
}
