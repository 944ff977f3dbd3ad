//! `phoenix sync`'s planner: (valid model, rendered files, observed state) in, a plan out. A
//! plan is a graph of steps, each with the reason it exists, the change it makes (API requests,
//! a file diff, a certificate's order, files and actions, the trust root's files, a Portainer
//! operation) and the steps it waits for.
//! Nothing that is already as described becomes a step, so a plan made right after a
//! successful sync is empty. Pure: the observation is data, secrets are resolved by a function
//! the caller passes in.

pub mod bind_mounts;
pub mod features;
pub mod files;
pub mod guests;
pub mod node_conf;
pub mod placement;
pub mod portainer;
pub mod pve;
pub mod snapshots;
pub mod verbs;

use crate::certificates::renewal::{renewal_plan, trust_plan, RenewalPlan};
use crate::deploy::{FileWrite, PostAction};
use crate::pve_fw::FwFile;
use crate::render::{Rendered, RenderedFile};
use phoenix_model::model::{GuestId, GuestKind, Model};
use pve::{ApiRequest, FwScope};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// The parts `phoenix sync` can be limited to, in the original's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Domain {
    Guests,
    /// In-guest provisioning (features, the gateway's nginx, application scripts).
    Features,
    Trust,
    Dns,
    Firewall,
    Certs,
    Gateway,
    Portainer,
    Stacks,
}

impl Domain {
    pub const ALL: [Domain; 9] =
        [Domain::Guests, Domain::Features, Domain::Trust, Domain::Dns, Domain::Firewall, Domain::Certs, Domain::Gateway, Domain::Portainer, Domain::Stacks];
}

/// What the drivers found. Absent parts (`None`) were not observed (the domain was not asked for).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    /// Proxmox VE: the node's guests and every firewall scope.
    pub pve: Option<PveObserved>,
    /// Files on the host and in guests, by (target, path); `None` when absent.
    pub files: BTreeMap<(crate::deploy::Machine, String), Option<String>>,
    /// Certificates due for renewal, with their reason codes.
    pub certs_due: BTreeMap<String, Vec<String>>,
    /// Whether the CA root is where `phoenix certs trust` puts it (None: no root in the store).
    pub trust_in_place: Option<bool>,
    /// The store's CA root (PEM), when there is one.
    pub trust_root: Option<String>,
    /// Certificates the store holds and that are not due: the store's copy and what their
    /// `cert_path` and `key_path` hold now (`None`: absent).
    pub cert_copies: BTreeMap<String, CertCopies>,
    pub portainer: Option<portainer::PortainerObserved>,
    /// Why Portainer could not be observed, when it could not: its steps wait (one blocked
    /// step says why) and every other domain goes on.
    pub portainer_failure: Option<String>,
    /// What each provisioned guest has, by id (observed for the features domain, where the
    /// target runs scripts in guests); a guest absent here is not provisioned this run.
    pub features: BTreeMap<GuestId, features::FeatureObservation>,
    /// What the features need beyond the model (the store's CA root, the application scripts).
    pub feature_inputs: crate::provision::Inputs,
    /// The root certificate Step-CA's guest holds (its PKI's, `None`: not made yet), observed
    /// with the features.
    pub step_ca_root: Option<String>,
}

/// A certificate's store copy and its installed copies, as observed.
#[derive(Debug, Clone, PartialEq)]
pub struct CertCopies {
    pub chain_pem: String,
    pub key_pem: phoenix_model::secret::Secret,
    pub installed: BTreeMap<crate::deploy::Place, Option<Vec<u8>>>,
    /// Their mode and owner, where the target can tell.
    pub meta: BTreeMap<crate::deploy::Place, crate::deploy::FileMeta>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct PveObserved {
    /// The first node (the one the API is reached on).
    pub node: String,
    /// Guests that exist in the cluster, with their kind.
    pub guests: BTreeMap<GuestId, GuestKind>,
    /// The node each guest is on (`/cluster/resources`); absent: the first node.
    pub placement: BTreeMap<GuestId, String>,
    /// The guests HA manages (any state but `ignored`), with their HA state.
    pub ha: BTreeMap<GuestId, String>,
    pub firewalls: BTreeMap<FwScope, FwFile>,
    /// Each guest's NICs as configured (`netN` key to value).
    pub nics: BTreeMap<GuestId, BTreeMap<String, String>>,
    /// The digest of each non-empty rule list, by its API path (`{base}/rules`,
    /// `/cluster/firewall/groups/{group}`), as observed.
    pub rule_digests: BTreeMap<String, String>,
    /// The described guests that exist, in detail (observed for the guests domain).
    pub guest_states: BTreeMap<GuestId, guests::GuestState>,
    /// Each node's storages, by node then id (observed for the guests domain).
    pub storages: BTreeMap<String, BTreeMap<String, guests::StorageState>>,
    /// The files each node sees on its storages that hold OS templates and images to
    /// import (volids), by node.
    pub volumes: BTreeMap<String, BTreeSet<String>>,
    /// Each described bind mount's host folder, stat'ed on the node (`None`: it does not
    /// exist); absent when not observed (then nothing is said about it).
    pub bind_owners: BTreeMap<String, Option<crate::deploy::FileMeta>>,
}

impl PveObserved {
    /// The node a guest is on now (the first node for one not observed there).
    pub fn node_of(&self, id: GuestId) -> &str {
        self.placement.get(&id).map_or(self.node.as_str(), String::as_str)
    }

    /// A node's storages (none observed: empty).
    pub fn storages_of(&self, node: &str) -> &BTreeMap<String, guests::StorageState> {
        static NONE: BTreeMap<String, guests::StorageState> = BTreeMap::new();
        self.storages.get(node).unwrap_or(&NONE)
    }

    /// Whether a node sees a volume.
    pub fn has_volume(&self, node: &str, volid: &str) -> bool {
        self.volumes.get(node).is_some_and(|v| v.contains(volid))
    }
}

/// What a step does.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Action {
    /// Proxmox VE API requests, in order.
    Pve {
        requests: Vec<ApiRequest>,
    },
    /// Write a rendered file, validate it in place, reload its service; restore it on failure.
    File {
        file: RenderedFile,
    },
    /// Renew one certificate (`phoenix certs renew`): its order, the files it becomes (place,
    /// owner, mode), then its post-renewal actions, exactly as planned.
    Certificate {
        renewal: RenewalPlan,
    },
    /// Install the store's CA root (`phoenix certs trust`): these files (the root's content,
    /// never shown), then these trust-store rebuilds.
    Trust {
        files: Vec<FileWrite>,
        actions: Vec<PostAction>,
    },
    /// Put a certificate's installed copies back as the store holds them (a copy missing,
    /// changed or replaced in its guest), then its post-renewal actions.
    Install {
        files: Vec<FileWrite>,
        actions: Vec<PostAction>,
    },
    Portainer {
        operation: portainer::Operation,
    },
    /// Edit a guest's `.conf` on the node as its root does, for what Proxmox VE lets only
    /// `root@pam` set: these keys set, these raw `lxc.*` lines added where missing; the file
    /// read and written (atomically) through the target, everything else in it kept; or keys
    /// removed from it.
    NodeConf {
        place: crate::deploy::Place,
        set: Vec<(String, String)>,
        raw: Vec<(String, String)>,
        /// Keys removed (a dead worker's `lock`).
        remove: Vec<String>,
    },
    /// One provisioning change in a guest, run as its script ([`crate::provision::shell`]).
    Provision {
        guest: GuestId,
        #[serde(skip)]
        kind: GuestKind,
        change: crate::provision::Change,
    },
    /// A guest's health check: `check` by `sh -c` in the guest until it passes, at most
    /// `retries` times, `interval_secs` apart.
    Health {
        guest: GuestId,
        #[serde(skip)]
        kind: GuestKind,
        check: String,
        retries: u32,
        interval_secs: u32,
    },
    /// Copy the root certificate Step-CA's PKI made in its guest (`from`) to phoenix's store
    /// (`to`, 0644): what the guests' trust stores and the ACME client trust.
    ExportRoot {
        from: crate::deploy::Place,
        to: crate::deploy::Place,
    },
    /// Cannot be done: the reason says why (the step fails and its dependents are skipped).
    Blocked,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    pub id: String,
    pub domain: Domain,
    pub title: String,
    pub reason: String,
    /// The change, for people: a unified diff or the requests.
    pub diff: String,
    pub action: Action,
    /// Steps that must succeed first.
    pub after: Vec<String>,
    /// Steps that share a key run one at a time (a Proxmox lock: one guest's config, the
    /// cluster firewall).
    pub lock: Option<String>,
    /// Takes a lock on a node: limited per node (`--node-parallel`).
    pub node: Option<String>,
    /// How many remote calls the step makes (for the critical path and progress).
    pub calls: usize,
}

impl Step {
    /// A step that cannot be done: applying it fails with `reason`, and what waits for it is skipped.
    pub fn blocked(id: String, domain: Domain, title: String, reason: impl Into<String>, after: Vec<String>) -> Step {
        Step {
            id,
            domain,
            title,
            reason: reason.into(),
            diff: String::new(),
            action: Action::Blocked,
            after,
            lock: None,
            node: None,
            calls: 0,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Plan {
    pub schema_version: u32,
    pub steps: Vec<Step>,
    /// What the plan leaves to someone else, and says so (a guest HA keeps on another node).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// The longest chain of calls through the graph: the least time the plan can take with
    /// unlimited parallelism, in calls.
    pub fn critical_path_calls(&self) -> usize {
        let mut longest: BTreeMap<&str, usize> = BTreeMap::new();
        // Steps are emitted after their dependencies, so one pass in order suffices.
        for step in &self.steps {
            let before = step.after.iter().filter_map(|a| longest.get(a.as_str())).max().copied().unwrap_or(0);
            // A step without requests (a boot-order join) makes no call.
            let own = if matches!(&step.action, Action::Pve { requests } if requests.is_empty()) { 0 } else { step.calls.max(1) };
            longest.insert(&step.id, before + own);
        }
        longest.values().max().copied().unwrap_or(0)
    }

    /// The plan for a terminal.
    pub fn to_text(&self) -> String {
        let notes: String = self.notes.iter().map(|n| format!("note: {n}\n")).collect();
        if self.steps.is_empty() {
            return format!("{notes}Nothing to do: the system is as described.\n");
        }
        let mut out = format!("{notes}{} step(s):\n", self.steps.len());
        for step in &self.steps {
            out.push_str(&format!("\n[{}] {}\n  why: {}\n", step.id, step.title, step.reason));
            if !step.after.is_empty() {
                out.push_str(&format!("  after: {}\n", step.after.join(", ")));
            }
            for line in step.diff.lines() {
                out.push_str(&format!("  | {line}\n"));
            }
        }
        out
    }
}

/// Everything the planner needs.
pub struct PlanInput<'a> {
    pub model: &'a Model,
    pub rendered: &'a Rendered,
    pub observed: &'a Observed,
    pub domains: &'a BTreeSet<Domain>,
    /// The value of a secret (from the environment or a file), for stack environments.
    pub secret: &'a dyn Fn(&phoenix_model::model::SecretRef) -> Option<String>,
    /// phoenix's certificate store and the host's trust file: where renewals and the trust
    /// step write.
    pub store_dir: &'a str,
    pub host_trust_file: &'a str,
    /// Wait each guest's `boot_delay` after starting it (off: start in order without waiting).
    pub boot_delays: bool,
}

/// The plan: every difference between the described and the observed system, as steps.
pub fn plan(input: &PlanInput<'_>) -> Plan {
    let mut steps = Vec::new();
    let wants = |d: Domain| input.domains.contains(&d);
    let guest_plan = match (&input.observed.pve, wants(Domain::Guests)) {
        (Some(pve), true) => guests::steps(input.model, input.rendered, pve),
        _ => guests::GuestPlan::default(),
    };
    steps.append(&mut guest_plan.steps.clone());
    if wants(Domain::Trust) {
        steps.extend(trust_step(input));
    }
    if wants(Domain::Dns) {
        steps.extend(files::file_steps(input.rendered, input.observed, Domain::Dns, &[]));
    }
    if wants(Domain::Firewall) {
        if let Some(pve) = &input.observed.pve {
            steps.extend(firewall_steps(input.model, input.rendered, pve, &guest_plan));
        }
    }
    if let (Some(pve), true) = (&input.observed.pve, wants(Domain::Guests)) {
        let starts = guests::start_steps(input.model, pve, &guest_plan, &steps, input.boot_delays);
        steps.extend(starts);
    }
    if wants(Domain::Features) {
        let provisioning = features::steps(input.model, input.observed, &steps, input.store_dir);
        steps.extend(provisioning);
    }
    if wants(Domain::Certs) {
        let after = present(&steps, &["dns"]);
        steps.extend(certificate_steps(input, &after));
        steps.extend(reinstall_steps(input));
    }
    if wants(Domain::Gateway) {
        let after: Vec<String> = steps
            .iter()
            .filter(|s| matches!(s.action, Action::Certificate { .. } | Action::Trust { .. } | Action::Install { .. }))
            .map(|s| s.id.clone())
            .collect();
        steps.extend(files::file_steps(input.rendered, input.observed, Domain::Gateway, &after));
    }
    if wants(Domain::Portainer) || wants(Domain::Stacks) {
        if let Some(failure) = &input.observed.portainer_failure {
            steps.push(Step::blocked(
                "portainer:observe".into(),
                Domain::Portainer,
                "observe Portainer".into(),
                format!("Portainer could not be observed ({failure}); its environments and stacks wait for a run that reaches it"),
                Vec::new(),
            ));
        }
        if let Some(observed) = &input.observed.portainer {
            steps.extend(portainer::steps(
                input.model,
                input.rendered,
                observed,
                wants(Domain::Portainer),
                wants(Domain::Stacks),
                input.secret,
                &steps,
            ));
        }
    }
    wait_for_started_guests(&mut steps);
    wait_for_features(&mut steps);
    if let (Some(pve), true) = (&input.observed.pve, wants(Domain::Guests)) {
        let snapshots = snapshots::steps(input.model, pve, &guest_plan, &steps);
        steps.extend(snapshots);
    }
    Plan { schema_version: 1, steps: dependencies_first(steps), notes: guest_plan.notes }
}

/// A file written into a guest, and a Portainer step, wait for the guests they need to run:
/// the file's guest, and every guest phoenix starts (Portainer's server and agents run there).
fn wait_for_started_guests(steps: &mut [Step]) {
    let starts: Vec<String> =
        steps.iter().filter(|s| s.id.starts_with("guest:") && s.id.ends_with(":start")).map(|s| s.id.clone()).collect();
    if starts.is_empty() {
        return;
    }
    for step in steps.iter_mut() {
        let needed: Vec<String> = match &step.action {
            Action::File { file } => match file.target {
                crate::deploy::Machine::Guest(id) => vec![format!("guest:{id}:start")],
                crate::deploy::Machine::Host => Vec::new(),
            },
            Action::Portainer { .. } => starts.clone(),
            _ => Vec::new(),
        };
        for id in needed.into_iter().filter(|id| starts.contains(id)) {
            if !step.after.contains(&id) {
                step.after.push(id);
            }
        }
    }
}

/// What reaches into a guest waits for the guest's provisioning (nginx.conf needs nginx, a
/// reload needs its service, the trust root needs ca-certificates): a file written into it, a
/// certificate or trust step installing there or reloading there. Each waits for the last
/// change of the guests it touches only (not for their health checks), so one guest's failure
/// holds back nothing of another's, with three exceptions by design: a guest's Portainer
/// server or agent starts after the certificates installed into it; Portainer's API steps wait
/// for every Portainer server and agent; certificates are ordered once Step-CA, where phoenix
/// provisions it, is set up and its root exported.
fn wait_for_features(steps: &mut [Step]) {
    // A guest is ready for files once its features are provisioned, but for its Portainer
    // server or agent, which start only with the guest's certificates in place.
    let late = |s: &Step| matches!(&s.action, Action::Provision { change, .. } if change.feature == crate::provision::portainer::PORTAINER);
    let ready: BTreeMap<GuestId, String> = steps
        .iter()
        .filter(|s| !late(s))
        .filter_map(|s| match s.action {
            Action::Provision { guest, .. } => Some((guest, s.id.clone())),
            _ => None,
        })
        .collect();
    let touching: Vec<(GuestId, String)> = steps
        .iter()
        .filter(|s| !matches!(s.action, Action::Provision { .. } | Action::Health { .. }))
        .flat_map(|s| guests_touched(&s.action).into_iter().map(|g| (g, s.id.clone())))
        .collect();
    // The first Portainer change of each guest, and the last one of all (the API waits for it).
    let mut first_late: BTreeMap<GuestId, String> = BTreeMap::new();
    let mut last_late: BTreeMap<GuestId, String> = BTreeMap::new();
    for step in steps.iter().filter(|s| late(s)) {
        if let Action::Provision { guest, .. } = step.action {
            first_late.entry(guest).or_insert_with(|| step.id.clone());
            last_late.insert(guest, step.id.clone());
        }
    }
    // Step-CA's last change and its root's export: the orders go to that CA, trusting that root.
    let ca_guests: BTreeSet<GuestId> = steps
        .iter()
        .filter_map(|s| match &s.action {
            Action::Provision { guest, change, .. } if change.feature == crate::provision::step_ca::STEP_CA => Some(*guest),
            _ => None,
        })
        .collect();
    let mut ca_ready: Vec<String> = ca_guests.iter().filter_map(|g| ready.get(g).cloned()).collect();
    ca_ready.extend(steps.iter().filter(|s| matches!(s.action, Action::ExportRoot { .. })).map(|s| s.id.clone()));
    let add = |step: &mut Step, id: &String| {
        if !step.after.contains(id) && &step.id != id {
            step.after.push(id.clone());
        }
    };
    for step in steps.iter_mut() {
        for guest in guests_touched(&step.action) {
            if let Some(id) = ready.get(&guest) {
                add(step, id);
            }
        }
        if first_late.values().any(|id| id == &step.id) {
            let Action::Provision { guest, .. } = step.action else { continue };
            for (_, id) in touching.iter().filter(|(g, _)| *g == guest) {
                add(step, id);
            }
        }
        if matches!(step.action, Action::Portainer { .. }) {
            for id in last_late.values() {
                add(step, id);
            }
        }
        if matches!(step.action, Action::Certificate { .. }) {
            for id in &ca_ready {
                add(step, id);
            }
        }
    }
}

/// The guests a step writes into or runs something in.
fn guests_touched(action: &Action) -> BTreeSet<GuestId> {
    let in_place = |p: &crate::deploy::Place| p.guest.map(|(id, _)| id);
    let in_action = |a: &PostAction| match a {
        PostAction::Reload { guest, .. } => Some(*guest),
        PostAction::UpdateTrust { guest } | PostAction::Command { guest, .. } => guest.map(|(id, _)| id),
        PostAction::Touch { place } => in_place(place),
        PostAction::Shell { .. } => None,
    };
    match action {
        Action::File { file } => match file.target {
            crate::deploy::Machine::Guest(id) => [id].into(),
            crate::deploy::Machine::Host => BTreeSet::new(),
        },
        Action::Certificate { renewal } => renewal
            .files
            .iter()
            .filter_map(|f| in_place(&f.place))
            .chain(renewal.actions.iter().filter_map(in_action))
            .chain(renewal.order.webroot.as_ref().and_then(in_place))
            .collect(),
        Action::Install { files, actions } | Action::Trust { files, actions } => {
            files.iter().filter_map(|f| in_place(&f.place)).chain(actions.iter().filter_map(in_action)).collect()
        }
        _ => BTreeSet::new(),
    }
}

/// The steps reordered so that each comes after every step it waits for, otherwise in the
/// order they were planned (the applier and the critical path read the plan in order; a
/// step made to wait for provisioning may have been planned before it).
fn dependencies_first(steps: Vec<Step>) -> Vec<Step> {
    let index: std::collections::HashMap<&str, usize> = steps.iter().enumerate().map(|(i, s)| (s.id.as_str(), i)).collect();
    let mut waiting: Vec<usize> = vec![0; steps.len()];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); steps.len()];
    for (i, step) in steps.iter().enumerate() {
        for before in step.after.iter().filter_map(|a| index.get(a.as_str())) {
            waiting[i] += 1;
            dependents[*before].push(i);
        }
    }
    let mut ready: BTreeSet<usize> = (0..steps.len()).filter(|i| waiting[*i] == 0).collect();
    let mut order = Vec::with_capacity(steps.len());
    while let Some(i) = ready.pop_first() {
        order.push(i);
        for &d in &dependents[i] {
            waiting[d] -= 1;
            if waiting[d] == 0 {
                ready.insert(d);
            }
        }
    }
    // A cycle cannot be ordered: its steps keep their places at the end (the applier reports them).
    let placed: BTreeSet<usize> = order.iter().copied().collect();
    order.extend((0..steps.len()).filter(|i| !placed.contains(i)));
    let mut slots: Vec<Option<Step>> = steps.into_iter().map(Some).collect();
    order.into_iter().filter_map(|i| slots[i].take()).collect()
}

/// The ids among `wanted` that are steps of the plan so far.
fn present(steps: &[Step], wanted: &[&str]) -> Vec<String> {
    wanted.iter().filter(|w| steps.iter().any(|s| s.id == **w)).map(|w| w.to_string()).collect()
}

/// One step per certificate due: its renewal as planned, shown file by file.
fn certificate_steps(input: &PlanInput<'_>, after: &[String]) -> Vec<Step> {
    let mut steps = Vec::new();
    for (name, reasons) in &input.observed.certs_due {
        let Some(cert) = input.model.certificates.iter().find(|c| &c.name == name) else { continue };
        let renewal = renewal_plan(input.model, cert, input.store_dir);
        steps.push(Step {
            id: format!("cert:{name}"),
            domain: Domain::Certs,
            title: format!("renew certificate {name}"),
            reason: reasons.join(", "),
            diff: renewal.to_text(),
            action: Action::Certificate { renewal },
            after: after.to_vec(),
            lock: None,
            node: None,
            calls: 1,
        });
    }
    steps
}

/// One step per certificate whose installed copies are not what the store holds: "nothing to
/// do" must mean the services use the certificates phoenix keeps.
fn reinstall_steps(input: &PlanInput<'_>) -> Vec<Step> {
    let mut steps = Vec::new();
    for (name, copies) in &input.observed.cert_copies {
        let Some(cert) = input.model.certificates.iter().find(|c| &c.name == name) else { continue };
        let files = crate::certificates::renewal::fill(
            &crate::certificates::renewal::installed_files(cert),
            &copies.chain_pem,
            copies.key_pem.expose(),
        );
        let drifted: Vec<String> = files.iter().filter_map(|f| copy_drift(f, copies)).collect();
        if drifted.is_empty() {
            continue;
        }
        let actions = crate::certificates::renewal::post_actions(input.model, cert);
        let diff = install_text(&files, &actions);
        steps.push(Step {
            id: format!("cert-install:{name}"),
            domain: Domain::Certs,
            title: format!("install certificate {name} where its service reads it"),
            reason: drifted.join("; "),
            diff,
            action: Action::Install { files, actions },
            after: Vec::new(),
            lock: None,
            node: None,
            calls: 1,
        });
    }
    steps
}

/// An install step's change for people: each file with its owner and mode, then the actions.
fn install_text(files: &[FileWrite], actions: &[PostAction]) -> String {
    files.iter().map(|f| format!("install {}\n", f.to_text())).chain(actions.iter().map(|a| format!("then {a}\n"))).collect()
}

/// How an installed copy departs from what the store and the manifest say, if it does: its
/// content, its mode, its owner (when the manifest names one).
fn copy_drift(file: &FileWrite, copies: &CertCopies) -> Option<String> {
    match copies.installed.get(&file.place) {
        Some(Some(found)) if *found == file.content => {}
        Some(Some(_)) => return Some(format!("{} differs from the store", file.place)),
        _ => return Some(format!("{} is missing", file.place)),
    }
    let meta = copies.meta.get(&file.place)?;
    if meta.mode != file.mode {
        return Some(format!("{} has mode {:04o}, not {:04o}", file.place, meta.mode, file.mode));
    }
    match &file.owner {
        Some(owner) if *owner != meta.owner => Some(format!("{} is owned by {}, not {owner}", file.place, meta.owner)),
        _ => None,
    }
}

fn trust_step(input: &PlanInput<'_>) -> Option<Step> {
    let (id, title) = ("trust".to_string(), "install the CA root on the host and the edge guests".to_string());
    let root = match (input.observed.trust_in_place, &input.observed.trust_root) {
        (Some(true), _) => return None,
        (Some(false), Some(root)) => root,
        _ => {
            let reason = "there is no CA root in the certificate store: run `phoenix certs trust --root FILE` first";
            return Some(Step::blocked(id, Domain::Trust, title, reason, Vec::new()));
        }
    };
    let (files, actions) = trust_plan(input.model, root, input.store_dir, input.host_trust_file);
    let diff = install_text(&files, &actions);
    Some(Step {
        id,
        domain: Domain::Trust,
        title,
        reason: "the store's root_ca.crt is missing from a trust store".into(),
        diff,
        action: Action::Trust { files, actions },
        after: Vec::new(),
        lock: None,
        node: None,
        calls: 1,
    })
}

/// The rendered `.fw` files, parsed, by path.
fn rendered_firewalls(rendered: &Rendered) -> BTreeMap<&str, FwFile> {
    rendered
        .files
        .iter()
        .filter(|f| f.path.ends_with(".fw"))
        .filter_map(|f| Some((f.path.as_str(), crate::pve_fw::parse(&f.content).ok()?)))
        .collect()
}

fn requests_step(
    id: String,
    title: String,
    reason: &str,
    requests: Vec<ApiRequest>,
    after: Vec<String>,
    lock: Option<String>,
) -> Option<Step> {
    if requests.is_empty() {
        return None;
    }
    let diff = requests.iter().map(|r| format!("{r}\n")).collect();
    let calls = requests.iter().map(ApiRequest::calls).sum();
    Some(Step {
        id,
        domain: Domain::Firewall,
        title,
        reason: reason.to_string(),
        diff,
        action: Action::Pve { requests },
        after,
        lock,
        node: None,
        calls,
    })
}

/// Firewall scopes (cluster, host, each guest) and NIC flags. Per scope: references first,
/// then rules and the references no longer used, then options; the cluster's options (which
/// can switch the whole firewall on) wait for every scope's rules; a NIC's firewall flag
/// waits for its guest's rules and options.
fn firewall_steps(model: &Model, rendered: &Rendered, pve: &PveObserved, guest_plan: &guests::GuestPlan) -> Vec<Step> {
    let mut scopes = vec![(FwScope::Cluster, phoenix_model::paths::CLUSTER_FW.to_string())];
    scopes.extend(FwScope::hosts(model).map(|(scope, node)| (scope, phoenix_model::paths::host_fw(node))));
    let mut missing = Vec::new();
    for guest in model.guests.values() {
        if pve.guests.get(&guest.id) == Some(&guest.kind) || guest_plan.created.contains(&guest.id) {
            scopes.push((FwScope::Guest(guest.id, guest.kind), phoenix_model::paths::guest_fw(guest.id)));
        } else if !guest_plan.handled.contains(&guest.id) {
            missing.push(guest.id);
        }
    }
    let context = ScopeContext { pve, firewalls: rendered_firewalls(rendered), nics: crate::render::rendered_nics(rendered) };
    let (mut steps, mut rule_steps, mut cluster_refs) = (Vec::new(), Vec::new(), false);
    for (scope, path) in &scopes {
        let node = match scope {
            FwScope::Guest(id, _) => guest_plan.node_of(*id, pve),
            FwScope::Host(_) => scope.host_node(model).unwrap_or(pve.node.as_str()),
            FwScope::Cluster => pve.node.as_str(),
        };
        let found = scope_steps(&context, *scope, node, path, cluster_refs);
        cluster_refs |= matches!(scope, FwScope::Cluster) && found.steps.iter().any(|s| s.id.ends_with(":refs"));
        rule_steps.extend(found.rules);
        steps.extend(found.steps);
    }
    // A guest created in this run: its firewall after it exists, its net0 created as rendered.
    steps.retain(|s| !s.id.strip_prefix("nic:").and_then(|id| id.parse().ok()).is_some_and(|id: GuestId| guest_plan.created.contains(&id)));
    for step in steps.iter_mut() {
        let guest =
            step.id.strip_prefix("firewall:guest:").and_then(|rest| rest.split(':').next()).and_then(|id| id.parse::<GuestId>().ok());
        if let Some(ready) = guest.filter(|id| guest_plan.created.contains(id)).and_then(|id| guest_plan.ready.get(&id)) {
            step.after.push(ready.clone());
        }
        // A guest migrated in this plan: its firewall and NIC on its new node, after the move.
        let nic = step.id.strip_prefix("nic:").and_then(|id| id.parse::<GuestId>().ok());
        if let Some(migrated) = guest.or(nic).and_then(|id| guest_plan.migrations.get(&id)) {
            if !step.after.contains(migrated) {
                step.after.push(migrated.clone());
            }
        }
    }
    // The cluster options (enable, policies) go last: switching the firewall on before the
    // rules are in place would cut guests off.
    if let Some(options) = steps.iter_mut().find(|s| s.id == "firewall:cluster:options") {
        options.after = rule_steps;
    }
    for id in missing {
        steps.push(Step::blocked(
            format!("guest:{id}"),
            Domain::Firewall,
            format!("guest {id} does not exist on node {}", model.guests[&id].node.value),
            "phoenix sync does not create guests; create it (or fix its id and type) first",
            Vec::new(),
        ));
    }
    // Dependencies first, for display and for the one-pass critical path.
    let order = |s: &Step| if s.id == "firewall:cluster:options" { 1 } else { 0 };
    steps.sort_by_key(order);
    steps
}

/// What every scope's steps are planned from.
struct ScopeContext<'a> {
    pve: &'a PveObserved,
    /// The rendered `.fw` files, parsed, by path.
    firewalls: BTreeMap<&'a str, FwFile>,
    /// Each guest's rendered NICs.
    nics: crate::render::GuestNics<'a>,
}

/// The steps of one scope, and the id of its rules step (the cluster options wait for it).
struct ScopeSteps {
    steps: Vec<Step>,
    rules: Option<String>,
}

/// One firewall scope: its references (aliases, ipsets, groups), its rules and the references
/// no longer used, its options, and for a guest its NIC flag, each waiting for the one before.
/// Other scopes' references wait for the cluster's (`cluster_refs`), which they may name.
fn scope_steps(context: &ScopeContext<'_>, scope: FwScope, node: &str, path: &str, cluster_refs: bool) -> ScopeSteps {
    let pve = context.pve;
    let empty = FwFile::default();
    let desired = context.firewalls.get(path).unwrap_or(&empty);
    let observed = pve.firewalls.get(&scope).unwrap_or(&empty);
    let label = scope.label(node);
    let key = format!("firewall:{}", label.replace(' ', ":"));
    let lock = Some(match scope {
        FwScope::Guest(id, _) => format!("guest:{id}"),
        _ => "cluster-firewall".to_string(),
    });
    let mut found = ScopeSteps { steps: Vec::new(), rules: None };
    let mut after = Vec::new();
    if !matches!(scope, FwScope::Cluster) && cluster_refs {
        after.push("firewall:cluster:refs".to_string());
    }
    let refs = pve::reference_requests(scope, node, desired, observed, &pve.rule_digests);
    let what = (format!("{key}:refs"), format!("firewall {label}: aliases, ipsets, groups"));
    if let Some(step) = requests_step(what.0, what.1, "references differ from the rendered firewall", refs, after.clone(), lock.clone()) {
        after.push(step.id.clone());
        found.steps.push(step);
    }
    let rules_path = format!("{}/rules", scope.base(node));
    let digest = pve.rule_digests.get(&rules_path).map(String::as_str);
    let mut rules = pve::rules_requests(&rules_path, &desired.rules, &observed.rules, digest);
    rules.extend(pve::cleanup_requests(scope, node, desired, observed, &pve.rule_digests));
    let what = (format!("{key}:rules"), format!("firewall {label}: rules"));
    if let Some(step) = requests_step(what.0, what.1, "rules differ from the rendered firewall", rules, after.clone(), lock.clone()) {
        after.push(step.id.clone());
        found.rules = Some(step.id.clone());
        found.steps.push(step);
    }
    let options = pve::options_request(&scope.base(node), &desired.options, &observed.options).into_iter().collect();
    let option_after = if matches!(scope, FwScope::Cluster) { Vec::new() } else { after.clone() };
    let what = (format!("{key}:options"), format!("firewall {label}: options"));
    if let Some(step) = requests_step(what.0, what.1, "options differ from the rendered firewall", options, option_after, lock.clone()) {
        after.push(step.id.clone());
        found.steps.push(step);
    }
    if let FwScope::Guest(id, kind) = scope {
        found.steps.extend(nic_step(context, node, id, kind, after, lock));
    }
    found
}

/// A guest's NICs when a key phoenix renders (the firewall flag) differs in any of them.
fn nic_step(context: &ScopeContext<'_>, node: &str, id: GuestId, kind: GuestKind, after: Vec<String>, lock: Option<String>) -> Option<Step> {
    let observed = context.pve.nics.get(&id);
    let changes = pve::nic_changes(observed, context.nics.get(&id)?);
    if changes.is_empty() {
        return None;
    }
    // The change takes only this guest's config lock (pct/qm set lock the guest).
    let request = pve::nic_request(node, id, kind, &changes);
    let keys: Vec<&str> = changes.iter().map(|c| c.key.as_str()).collect();
    let mut step = requests_step(
        format!("nic:{id}"),
        format!("guest {id}: {} (firewall flag)", keys.join(", ")),
        "a key phoenix renders differs in the NIC (the MAC and other keys stay as they are)",
        vec![request],
        after,
        lock,
    )?;
    step.diff = changes.iter().map(pve::NicChange::diff).collect();
    Some(step)
}
