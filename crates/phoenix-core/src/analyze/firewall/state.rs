//! What the evaluator reads: cluster.fw, the node's host.fw, each guest's `.fw`, and each
//! guest's NIC flag, from rendered files or from a copy of /etc/pve.

use crate::pve_fw::{parse_with_lines, FwFile, ParseError, RuleLines};
use crate::render::Rendered;
use phoenix_model::model::GuestId;
use std::collections::BTreeMap;

/// One parsed `.fw` file and where it came from.
#[derive(Debug, Clone, Default)]
pub struct FwSource {
    pub path: String,
    pub file: FwFile,
    pub lines: RuleLines,
    /// False when the file does not exist (Proxmox then uses its defaults).
    pub present: bool,
}

impl FwSource {
    fn parse(path: &str, text: Option<&str>) -> Result<FwSource, StateError> {
        match text {
            None => Ok(FwSource { path: path.to_string(), present: false, ..FwSource::default() }),
            Some(text) => {
                let (file, lines) = parse_with_lines(text).map_err(|errors| StateError { path: path.to_string(), errors })?;
                Ok(FwSource { path: path.to_string(), file, lines, present: true })
            }
        }
    }

    pub fn option(&self, key: &str) -> Option<&str> {
        self.file.options.get(key).map(String::as_str)
    }
}

/// A `.fw` file that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateError {
    pub path: String,
    pub errors: Vec<ParseError>,
}

/// The whole firewall configuration of one node.
#[derive(Debug, Clone, Default)]
pub struct FirewallState {
    pub cluster: FwSource,
    pub host: FwSource,
    pub guests: BTreeMap<GuestId, FwSource>,
    /// Each guest's `firewall=1` NIC flag (net0), as configured or deployed.
    pub nic_firewall: BTreeMap<GuestId, bool>,
    /// The host's bridge, for host rules limited with `-i`.
    pub host_bridge: String,
    /// What was judged: "rendered from the configuration" or the deployed folder.
    pub origin: String,
}

/// Whether a Proxmox `net0` value carries `firewall=1`.
pub fn nic_has_firewall(net: &str) -> bool {
    net.split(',').any(|part| part.trim() == "firewall=1")
}

impl FirewallState {
    /// From texts keyed by their path under /etc/pve (as rendered, or as copied from a node).
    pub fn from_texts(
        texts: &BTreeMap<String, String>,
        node: &str,
        guests: impl IntoIterator<Item = GuestId>,
        nic_firewall: BTreeMap<GuestId, bool>,
        host_bridge: &str,
        origin: &str,
    ) -> Result<FirewallState, Vec<StateError>> {
        let mut errors = Vec::new();
        let mut load = |path: String| match FwSource::parse(&path, texts.get(&path).map(String::as_str)) {
            Ok(source) => source,
            Err(error) => {
                errors.push(error);
                FwSource { path, ..FwSource::default() }
            }
        };
        let cluster = load(phoenix_model::paths::CLUSTER_FW.to_string());
        let host = load(phoenix_model::paths::host_fw(&node));
        let guests = guests.into_iter().map(|id| (id, load(phoenix_model::paths::guest_fw(id)))).collect();
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(FirewallState { cluster, host, guests, nic_firewall, host_bridge: host_bridge.to_string(), origin: origin.to_string() })
    }

    /// What is deployed, from a copy of /etc/pve keyed by path relative to it
    /// (`firewall/cluster.fw`, `nodes/<node>/host.fw`, `nodes/<node>/lxc/<id>.conf`, ...). A guest's
    /// NIC counts as filtered only when its `.conf` has `net0: ...firewall=1`.
    pub fn from_pve_tree(
        tree: &BTreeMap<String, String>,
        model: &phoenix_model::Model,
        origin: &str,
    ) -> Result<FirewallState, Vec<StateError>> {
        let texts: BTreeMap<String, String> =
            tree.iter().map(|(k, v)| (format!("/etc/pve/{}", k.trim_start_matches('/')), v.clone())).collect();
        let node = &model.host.node_name;
        let nic = model
            .guests
            .values()
            .map(|g| {
                let folder = match g.kind {
                    phoenix_model::model::GuestKind::Lxc => "lxc",
                    phoenix_model::model::GuestKind::Vm => "qemu-server",
                };
                let conf = tree.get(&format!("nodes/{node}/{folder}/{}.conf", g.id));
                let flag = conf.is_some_and(|c| {
                    c.lines().any(|l| l.trim_start().starts_with("net0:") && nic_has_firewall(l.trim_start().trim_start_matches("net0:")))
                });
                (g.id, flag)
            })
            .collect();
        let bridge = model.host.bridge.clone().unwrap_or_else(|| "vmbr0".into());
        FirewallState::from_texts(&texts, node, model.guests.keys().copied(), nic, &bridge, origin)
    }

    /// The firewall phoenix would deploy: its rendered files and NIC settings.
    pub fn from_rendered(rendered: &Rendered, model: &phoenix_model::Model) -> FirewallState {
        let texts: BTreeMap<String, String> =
            rendered.files.iter().filter(|f| f.path.starts_with("/etc/pve/")).map(|f| (f.path.clone(), f.content.clone())).collect();
        let nic = rendered.settings.iter().filter(|s| s.key == "net0").map(|s| (s.guest, nic_has_firewall(&s.value))).collect();
        let bridge = model.host.bridge.clone().unwrap_or_else(|| "vmbr0".into());
        // phoenix renders these files itself; failing to parse them back is a bug in the renderer.
        FirewallState::from_texts(
            &texts,
            &model.host.node_name,
            model.guests.keys().copied(),
            nic,
            &bridge,
            "the files phoenix renders from the configuration",
        )
        .expect("rendered firewall files parse")
    }
}
