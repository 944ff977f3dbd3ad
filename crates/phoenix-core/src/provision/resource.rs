//! The provisioning vocabulary: what a feature leaves in a guest ([`Resource`]: packages,
//! accounts, files, guarded commands, services), and what was found there ([`GuestState`]).
//! Data only: the features build resources, the probe observes them, the planner compares.

use crate::deploy::FileMeta;
use std::collections::{BTreeMap, BTreeSet};

/// One thing a feature makes true in a guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    /// Debian packages, installed with apt when missing (never removed).
    Packages { names: Vec<String> },
    /// A system group.
    Group { name: String },
    /// A system user in `group` with `home` (not created), no login shell.
    User { name: String, group: String, home: String },
    File(ManagedFile),
    /// A program fetched from its source by phoenix (not in the guest), its digest checked
    /// before it is written: a download that does not match is refused and nothing installed.
    Download(Download),
    Command(GuardedCommand),
    /// A systemd unit, enabled and running; restarted (or reloaded) when one of `watch`
    /// changed in the same run. With `needs`, it is started only once that file exists (its
    /// configuration, which another step writes and which restarts it).
    Service { unit: String, watch: Vec<String>, reload: bool, needs: Option<String> },
}

/// A file whose content is what `url` serves, known by its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Download {
    pub path: String,
    pub url: String,
    /// Lower-case hex, as `sha256sum` prints it.
    pub sha256: String,
    pub owner: String,
    pub mode: u32,
}

/// A file phoenix renders into the guest.
#[derive(Clone, PartialEq, Eq)]
pub struct ManagedFile {
    pub path: String,
    pub content: Vec<u8>,
    /// `user:group`.
    pub owner: String,
    pub mode: u32,
    /// A secret's file: the plan and the logs never show its content.
    pub secret: bool,
    /// Run by `sh -c` in the guest once the new file is in place; when it fails the old file
    /// is put back (or the new one removed) and the step fails.
    pub validate: Option<String>,
}

impl std::fmt::Debug for ManagedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let content = if self.secret { "<secret>".to_string() } else { format!("{} bytes", self.content.len()) };
        f.debug_struct("ManagedFile")
            .field("path", &self.path)
            .field("content", &content)
            .field("owner", &self.owner)
            .field("mode", &format_args!("{:04o}", self.mode))
            .field("validate", &self.validate)
            .finish()
    }
}

impl ManagedFile {
    pub fn new(path: impl Into<String>, content: impl Into<Vec<u8>>, mode: u32) -> ManagedFile {
        ManagedFile { path: path.into(), content: content.into(), owner: "root:root".into(), mode, secret: false, validate: None }
    }

    /// The SHA-256 of the content, in hex, as `sha256sum` prints it.
    pub fn sha256(&self) -> String {
        sha256_hex(&self.content)
    }
}

/// `sha256sum`'s hex digest of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// A command phoenix runs only when an observable condition says it is needed: `done_when`
/// (a shell condition run in the guest) fails, or a file it depends on (`after`) changed in
/// this run. A command with neither never runs twice for the same files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardedCommand {
    /// Its name in the plan (`locale-gen`, `application_script`).
    pub name: String,
    /// Run by `sh -c` in the guest.
    pub run: String,
    pub done_when: Option<String>,
    pub after: Vec<String>,
    /// Where its output is kept in the guest (its standard output and error).
    pub log: Option<String>,
}

impl Resource {
    /// The resource's identity in the plan and the observation: `package:nginx`,
    /// `file:/etc/docker/daemon.json`, `service:nginx`, `command:locale-gen`.
    pub fn key(&self) -> String {
        match self {
            Resource::Packages { names } => format!("packages:{}", names.join(",")),
            Resource::Group { name } => format!("group:{name}"),
            Resource::User { name, .. } => format!("user:{name}"),
            Resource::File(file) => format!("file:{}", file.path),
            Resource::Download(download) => format!("file:{}", download.path),
            Resource::Command(command) => format!("command:{}", command.name),
            Resource::Service { unit, .. } => format!("service:{unit}"),
        }
    }
}

/// A systemd unit as `systemctl` reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceState {
    /// `systemctl is-enabled` (`enabled`, `disabled`, `static`, ...; empty when unknown).
    pub enabled: String,
    /// `systemctl is-active` (`active`, `inactive`, `failed`, ...).
    pub active: String,
}

impl ServiceState {
    /// Whether it starts at boot (or cannot be enabled and need not be: static, generated).
    pub fn is_enabled(&self) -> bool {
        matches!(self.enabled.as_str(), "enabled" | "enabled-runtime" | "static" | "generated" | "alias" | "indirect")
    }

    pub fn is_active(&self) -> bool {
        self.active == "active" || self.active == "reloading"
    }
}

/// A file as found: its digest and metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileState {
    pub sha256: String,
    pub meta: FileMeta,
}

/// What the probe found in one guest, for the resources it was asked about.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuestState {
    /// Installed packages (of those asked about).
    pub packages: BTreeSet<String>,
    pub groups: BTreeSet<String>,
    pub users: BTreeSet<String>,
    /// Files that exist.
    pub files: BTreeMap<String, FileState>,
    pub services: BTreeMap<String, ServiceState>,
    /// Commands whose `done_when` held.
    pub done: BTreeSet<String>,
}
