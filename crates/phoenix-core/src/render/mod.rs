//! Rendering: the model in, every file phoenix deploys out, each with its target, path,
//! owner, mode, and the commands that validate it and reload its service.
//! Must not write files or run the commands it names: drivers do that.

pub mod diff;
pub mod dnsmasq;
pub mod nginx;
pub mod pve_firewall;
pub mod stacks;
pub mod traefik;

use phoenix_model::diag::Diagnostic;
use phoenix_model::model::{GuestId, Model};
use serde::Serialize;
use std::collections::BTreeMap;

use crate::deploy::Machine;

/// One file phoenix deploys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RenderedFile {
    pub target: Machine,
    /// Absolute path on the target.
    pub path: String,
    /// `user:group`.
    pub owner: String,
    pub mode: u32,
    /// The command that checks the file in place before its service is reloaded.
    pub validate: Option<String>,
    /// The command that makes the service use the file (none when the service watches it).
    pub reload: Option<String>,
    #[serde(skip)]
    pub content: String,
}

impl RenderedFile {
    pub fn new(target: Machine, path: impl Into<String>, content: String) -> Self {
        RenderedFile { target, path: path.into(), owner: "root:root".into(), mode: 0o644, validate: None, reload: None, content }
    }

    pub fn validated_by(mut self, command: &str) -> Self {
        self.validate = Some(command.to_string());
        self
    }

    pub fn reloaded_by(mut self, command: &str) -> Self {
        self.reload = Some(command.to_string());
        self
    }

    /// Where the file sits in a tree laid out as on the real system: `host/<path>` or `guest-<id>/<path>`.
    pub fn tree_path(&self) -> String {
        let root = match self.target {
            Machine::Host => "host".to_string(),
            Machine::Guest(id) => format!("guest-{id}"),
        };
        format!("{root}{}", self.path)
    }
}

/// A setting of a guest's Proxmox configuration (e.g. `net0` with `firewall=1`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GuestSetting {
    pub guest: GuestId,
    pub key: String,
    pub value: String,
}

/// Each guest's rendered NICs: `netN` key to value, in key order.
pub type GuestNics<'a> = BTreeMap<GuestId, BTreeMap<&'a str, &'a str>>;

/// The NIC settings (`net0`, `net1`, ...) of every guest in `rendered`.
pub fn rendered_nics(rendered: &Rendered) -> GuestNics<'_> {
    let mut nics: GuestNics<'_> = BTreeMap::new();
    for setting in rendered.settings.iter().filter(|s| phoenix_model::pve::fw_names::is_nic_key(&s.key)) {
        nics.entry(setting.guest).or_default().insert(setting.key.as_str(), setting.value.as_str());
    }
    nics
}

/// Everything rendered from one model.
#[derive(Debug, Clone, Default)]
pub struct Rendered {
    pub files: Vec<RenderedFile>,
    pub settings: Vec<GuestSetting>,
    /// Findings made while rendering (e.g. cluster rules that cannot filter guest traffic).
    pub notes: Vec<Diagnostic>,
}

/// Renders the Proxmox firewall files and NIC settings only (what the firewall analysis reads).
pub fn render_firewall(model: &Model) -> Rendered {
    let mut rendered = Rendered::default();
    pve_firewall::render(model, &mut rendered);
    rendered
}

/// Renders every file phoenix manages. Deterministic: files are ordered by target and path.
pub fn render_all(model: &Model) -> Rendered {
    let mut rendered = Rendered::default();
    dnsmasq::render(model, &mut rendered);
    pve_firewall::render(model, &mut rendered);
    let edge = crate::edge::edge(model);
    traefik::render(model, &edge, &mut rendered);
    nginx::render(model, &edge, &mut rendered);
    stacks::render(model, &mut rendered);
    rendered.notes.extend(edge.notes.iter().cloned());
    rendered.files.sort_by(|a, b| (a.target, &a.path).cmp(&(b.target, &b.path)));
    rendered
}

/// Version of the JSON document produced by [`to_json`].
pub const RENDER_SCHEMA_VERSION: u32 = 1;

/// The listing of `phoenix render`: one line per file, then the NIC settings.
pub fn listing(rendered: &Rendered) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for file in &rendered.files {
        let _ = write!(out, "{:<10} {:<40} {} {:04o}", file.target.to_string(), file.path, file.owner, file.mode);
        if let Some(validate) = &file.validate {
            let _ = write!(out, "  validate: {validate}");
        }
        if let Some(reload) = &file.reload {
            let _ = write!(out, "  reload: {reload}");
        }
        out.push('\n');
    }
    if !rendered.settings.is_empty() {
        out.push_str("\nGuest settings:\n");
        for setting in &rendered.settings {
            let _ = writeln!(out, "  guest {} {}: {}", setting.guest, setting.key, setting.value);
        }
    }
    out
}

/// The versioned JSON document of `phoenix render --format json` (files with their content).
pub fn to_json(rendered: &Rendered) -> serde_json::Value {
    let files: Vec<serde_json::Value> = rendered
        .files
        .iter()
        .map(|f| {
            let mut value = serde_json::to_value(f).expect("serialisable");
            value["content"] = serde_json::Value::String(f.content.clone());
            value
        })
        .collect();
    serde_json::json!({
        "schema_version": RENDER_SCHEMA_VERSION,
        "files": files,
        "settings": rendered.settings,
        "notes": rendered.notes.iter().map(|n| serde_json::json!({ "code": n.code, "message": n.message })).collect::<Vec<_>>(),
    })
}
