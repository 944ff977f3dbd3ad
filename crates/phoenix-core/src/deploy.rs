//! The deployment vocabulary: where a file lives ([`Machine`], [`Place`]), a file to install
//! ([`FileWrite`]) with its owner and mode, and what runs after it ([`PostAction`]). Renderers,
//! certificate renewal, the trust plan, the sync planner, the lab and every driver that writes
//! files speak these words; none of them owns them. Data only: nothing here decides or writes.

use phoenix_model::model::{GuestId, GuestKind};
use serde::Serialize;

/// The machine a file is deployed to or a command runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "id")]
pub enum Machine {
    /// The Proxmox node (including /etc/pve, which the cluster file system shares).
    Host,
    Guest(GuestId),
}

impl std::fmt::Display for Machine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Machine::Host => f.write_str("host"),
            Machine::Guest(id) => write!(f, "guest {id}"),
        }
    }
}

/// Mode of certificate files: public.
pub const CERT_MODE: u32 = 0o644;
/// Mode of a key installed for a service: its owner and group may read it, others never.
pub const KEY_MODE: u32 = 0o640;
/// Mode of the keys in phoenix's own store: only phoenix's user.
pub const STORE_KEY_MODE: u32 = 0o600;

/// Where a file lives: on the machine phoenix runs on, or in a guest.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Place {
    pub guest: Option<(GuestId, GuestKind)>,
    pub path: String,
}

impl Place {
    pub fn host(path: impl Into<String>) -> Place {
        Place { guest: None, path: path.into() }
    }
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.guest {
            Some((id, kind)) => write!(f, "{kind:?} {id}:{}", self.path),
            None => write!(f, "{}", self.path),
        }
    }
}

/// One file to install.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileWrite {
    pub place: Place,
    #[serde(skip)]
    pub content: Vec<u8>,
    /// `user:group`; `None` keeps the writer's.
    pub owner: Option<String>,
    pub mode: u32,
}

/// What runs after a certificate's files are installed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum PostAction {
    /// The manifest's `post_renewal_command`, run by `sh -c` on the Proxmox host.
    Shell { command: String },
    /// The structured alternative: reload a service in the guest.
    Reload { guest: GuestId, guest_kind: GuestKind, service: String },
    /// Rewrite a file's timestamp: Traefik watches its configuration files, not the
    /// certificates they name, so a renewed certificate is only served once the file changes.
    Touch { place: Place },
    /// Rebuild the system trust store (`update-ca-certificates`) on the host or in a guest.
    UpdateTrust { guest: Option<(GuestId, GuestKind)> },
    /// A rendered file's validate or reload command, run by `sh -c` where the file lives.
    Command { guest: Option<(GuestId, GuestKind)>, command: String },
}

/// What a file's metadata says: its permission bits and its owner as `user:group` names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct FileMeta {
    pub mode: u32,
    pub owner: String,
}

/// The action in words (the plan, reports and errors say it so).
impl std::fmt::Display for PostAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PostAction::Shell { command } => write!(f, "post_renewal_command `{command}`"),
            PostAction::Reload { guest, service, .. } => write!(f, "reloading {service} in guest {guest}"),
            PostAction::Touch { place } => write!(f, "touching {place}"),
            PostAction::UpdateTrust { guest: None } => f.write_str("update-ca-certificates on the host"),
            PostAction::UpdateTrust { guest: Some((id, _)) } => write!(f, "update-ca-certificates in guest {id}"),
            PostAction::Command { guest: None, command } => write!(f, "`{command}` on the host"),
            PostAction::Command { guest: Some((id, _)), command } => write!(f, "`{command}` in guest {id}"),
        }
    }
}

impl FileWrite {
    /// For people: the place, owner and mode (never the content).
    pub fn to_text(&self) -> String {
        format!("{} ({}, {:04o})", self.place, owner_text(&self.place, self.owner.as_deref()), self.mode)
    }
}

/// Who will own a file written without an owner: on the host the user phoenix runs as, in a
/// guest root (`pct push` and phoenix's guest writes chown to `root:root`).
pub fn owner_text<'a>(place: &Place, owner: Option<&'a str>) -> &'a str {
    match (owner, place.guest) {
        (Some(owner), _) => owner,
        (None, Some(_)) => "root:root",
        (None, None) => "phoenix's user",
    }
}
