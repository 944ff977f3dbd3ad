//! The provisioning plan: the desired resources of each guest against what the probe found,
//! as the ordered changes that make them true ([`GuestPlan`]), each with its reason. A guest
//! whose resources all hold plans nothing. Pure; [`super::shell`] says how each change runs.

use super::features::{self, Feature, Inputs};
use super::resource::{FileState, GuardedCommand, GuestState, ManagedFile, Resource};
use phoenix_model::model::{GuestId, GuestKind, HealthCheck, Model};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// What phoenix wants in one guest: its features' resources, the features it cannot
/// provision (and why), its health check.
#[derive(Debug, Clone)]
pub struct Desired {
    pub guest: GuestId,
    pub kind: GuestKind,
    pub features: Vec<Feature>,
    /// Features the guest declares that phoenix leaves to the original's scripts.
    pub not_provisioned: Vec<String>,
    pub health_check: Option<HealthCheck>,
}

impl Desired {
    /// Every resource phoenix can provision, in order (what the probe asks about).
    pub fn resources(&self) -> Vec<&Resource> {
        self.features.iter().filter_map(|f| f.resources.as_ref().ok()).flatten().collect()
    }
}

/// The desired state of every guest phoenix provisions (templates excluded), by id.
pub fn desired(model: &Model, inputs: &Inputs) -> BTreeMap<GuestId, Desired> {
    let mut out = BTreeMap::new();
    for guest in model.guests.values().filter(|g| features::provisioned(g)) {
        let mut desired =
            Desired { guest: guest.id, kind: guest.kind, features: Vec::new(), not_provisioned: Vec::new(), health_check: guest.health_check.clone() };
        for (name, feature) in features::for_guest(model, guest, inputs) {
            match feature {
                Some(feature) => desired.features.push(feature),
                None => desired.not_provisioned.push(name),
            }
        }
        out.insert(guest.id, desired);
    }
    out
}

/// One change in a guest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    InstallPackages { names: Vec<String> },
    CreateGroup { name: String },
    CreateUser { name: String, group: String, home: String },
    WriteFile {
        #[serde(flatten)]
        file: FileChange,
    },
    /// Fetch `url` (on phoenix's side), check its SHA-256, write it.
    Download {
        path: String,
        url: String,
        sha256: String,
        owner: String,
        mode: String,
    },
    RunCommand {
        name: String,
        #[serde(skip)]
        command: GuardedCommand,
    },
    EnableService { unit: String },
    StartService { unit: String },
    RestartService { unit: String },
    ReloadService { unit: String },
}

/// A file to write (its content never serialised: it may be a secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileChange {
    pub path: String,
    pub owner: String,
    pub mode: String,
    #[serde(skip)]
    pub file: ManagedFile,
}

/// A change with the feature it belongs to and why it is needed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub feature: String,
    #[serde(flatten)]
    pub action: Action,
    pub reason: String,
}

/// One guest's changes, in the order they run; a failed change stops the guest's later ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GuestPlan {
    pub guest: GuestId,
    #[serde(skip)]
    pub kind: GuestKind,
    pub changes: Vec<Change>,
    /// Features phoenix cannot provision now, with the reason.
    pub waiting: Vec<(String, String)>,
    pub not_provisioned: Vec<String>,
}

/// The changes that bring `desired` to hold, given what the guest has (`state`).
pub fn plan(desired: &Desired, state: &GuestState) -> GuestPlan {
    let mut changes = Vec::new();
    let mut waiting = Vec::new();
    // Files written in this run: commands after them rerun, services watching them restart.
    let mut written: BTreeSet<String> = BTreeSet::new();
    // Packages an earlier feature installs in this run count as installed for later ones.
    let mut state = state.clone();
    for feature in &desired.features {
        let resources = match &feature.resources {
            Ok(resources) => resources,
            Err(reason) => {
                waiting.push((feature.name.clone(), reason.clone()));
                continue;
            }
        };
        let mut push = |action: Action, reason: String| changes.push(Change { feature: feature.name.clone(), action, reason });
        for resource in resources {
            for (action, reason) in needed(resource, &state, &written) {
                match &action {
                    Action::WriteFile { file } => drop(written.insert(file.path.clone())),
                    Action::Download { path, .. } => drop(written.insert(path.clone())),
                    Action::InstallPackages { names } => state.packages.extend(names.iter().cloned()),
                    _ => {}
                }
                push(action, reason);
            }
        }
    }
    GuestPlan { guest: desired.guest, kind: desired.kind, changes, waiting, not_provisioned: desired.not_provisioned.clone() }
}

/// What one resource needs, given the guest's state and the files this run writes before it.
fn needed(resource: &Resource, state: &GuestState, written: &BTreeSet<String>) -> Vec<(Action, String)> {
    match resource {
        Resource::Packages { names } => {
            let missing: Vec<String> = names.iter().filter(|n| !state.packages.contains(*n)).cloned().collect();
            if missing.is_empty() {
                return Vec::new();
            }
            vec![(Action::InstallPackages { names: missing }, "not installed".into())]
        }
        Resource::Group { name } if !state.groups.contains(name) => vec![(Action::CreateGroup { name: name.clone() }, "absent".into())],
        Resource::User { name, group, home } if !state.users.contains(name) => {
            vec![(Action::CreateUser { name: name.clone(), group: group.clone(), home: home.clone() }, "absent".into())]
        }
        Resource::Group { .. } | Resource::User { .. } => Vec::new(),
        Resource::File(file) => file_reason(file, state)
            .map(|reason| {
                let change = FileChange { path: file.path.clone(), owner: file.owner.clone(), mode: format!("{:04o}", file.mode), file: file.clone() };
                (Action::WriteFile { file: change }, reason)
            })
            .into_iter()
            .collect(),
        Resource::Download(download) => download_reason(download, state)
            .map(|reason| {
                let d = download.clone();
                (Action::Download { path: d.path, url: d.url, sha256: d.sha256, owner: d.owner, mode: format!("{:04o}", d.mode) }, reason)
            })
            .into_iter()
            .collect(),
        Resource::Command(command) => command_reason(command, state, written)
            .map(|reason| (Action::RunCommand { name: command.name.clone(), command: command.clone() }, reason))
            .into_iter()
            .collect(),
        Resource::Service { unit, watch, reload, needs } => {
            // Not started before its configuration exists (or is written in this run).
            let configured = needs.as_ref().is_none_or(|p| state.files.contains_key(p) || written.contains(p));
            service_changes(unit, watch, *reload, configured, state, written)
        }
    }
}

fn file_reason(file: &ManagedFile, state: &GuestState) -> Option<String> {
    drift(state.files.get(&file.path), &file.sha256(), &file.owner, file.mode, |_| "content differs".into())
}

fn download_reason(download: &super::resource::Download, state: &GuestState) -> Option<String> {
    let differs = |found: &str| format!("its SHA-256 is {}, the source's {}", short(found), short(&download.sha256));
    drift(state.files.get(&download.path), &download.sha256, &download.owner, download.mode, differs)
}

/// Why a file found in the guest is not the one wanted (`None` when it is): absent, its content
/// (said by `differs`, given the digest found), or its owner and mode.
fn drift(found: Option<&FileState>, sha256: &str, owner: &str, mode: u32, differs: impl FnOnce(&str) -> String) -> Option<String> {
    let Some(found) = found else { return Some("absent".into()) };
    if found.sha256 != sha256 {
        return Some(differs(&found.sha256));
    }
    (found.meta.owner != owner || found.meta.mode != mode).then(|| format!("{} {:04o}, wanted {owner} {mode:04o}", found.meta.owner, found.meta.mode))
}

/// A digest's first 12 digits, enough for people to tell two apart.
fn short(sha256: &str) -> &str {
    &sha256[..sha256.len().min(12)]
}

fn command_reason(command: &GuardedCommand, state: &GuestState, written: &BTreeSet<String>) -> Option<String> {
    if let Some(changed) = command.after.iter().find(|p| written.contains(*p)) {
        return Some(format!("{changed} changed"));
    }
    match &command.done_when {
        Some(condition) if !state.done.contains(&command.name) => Some(format!("`{condition}` does not hold")),
        _ => None,
    }
}

fn service_changes(
    unit: &str,
    watch: &[String],
    reload: bool,
    configured: bool,
    state: &GuestState,
    written: &BTreeSet<String>,
) -> Vec<(Action, String)> {
    let found = state.services.get(unit).cloned().unwrap_or_default();
    let shown = |s: &str| if s.is_empty() { "unknown".to_string() } else { s.to_string() };
    let mut out = Vec::new();
    if !found.is_enabled() {
        out.push((Action::EnableService { unit: unit.into() }, format!("is {}", shown(&found.enabled))));
    }
    // A watched file written in this run: the unit must read it, whatever state the probe saw
    // (a package install may have started it with its defaults since).
    match (watch.iter().find(|p| written.contains(*p)), found.is_active()) {
        (_, false) if !configured => {}
        (Some(path), true) if reload => out.push((Action::ReloadService { unit: unit.into() }, format!("{path} changed"))),
        (Some(path), _) => out.push((Action::RestartService { unit: unit.into() }, format!("{path} changed"))),
        (None, false) => out.push((Action::StartService { unit: unit.into() }, format!("is {}", shown(&found.active)))),
        (None, true) => {}
    }
    out
}

impl Action {
    /// The change in words, for the plan.
    pub fn describe(&self) -> String {
        match self {
            Action::InstallPackages { names } => format!("install {}", names.join(" ")),
            Action::CreateGroup { name } => format!("create group {name}"),
            Action::CreateUser { name, group, .. } => format!("create user {name} ({group})"),
            Action::WriteFile { file } => format!("write {} ({}, {})", file.path, file.owner, file.mode),
            Action::Download { path, url, owner, mode, .. } => format!("install {path} from {url} ({owner}, {mode})"),
            Action::RunCommand { name, .. } => format!("run {name}"),
            Action::EnableService { unit } => format!("enable {unit}"),
            Action::StartService { unit } => format!("start {unit}"),
            Action::RestartService { unit } => format!("restart {unit}"),
            Action::ReloadService { unit } => format!("reload {unit}"),
        }
    }
}

impl GuestPlan {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// The plan for people: one line per change, then what waits and what phoenix leaves alone.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for change in &self.changes {
            out.push_str(&format!("  {:<20} {} ({})\n", change.feature, change.action.describe(), change.reason));
        }
        for (feature, reason) in &self.waiting {
            out.push_str(&format!("  {feature:<20} waits: {reason}\n"));
        }
        if !self.not_provisioned.is_empty() {
            out.push_str(&format!("  not provisioned by phoenix: {}\n", self.not_provisioned.join(", ")));
        }
        out
    }
}
