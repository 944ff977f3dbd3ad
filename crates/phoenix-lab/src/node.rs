//! `phoenix assess --live --node`: the declared hops probed on a real Proxmox node, from the
//! node itself and from inside each running container's network namespace with phoenix's
//! prober, and from inside VMs with a shell script through `qm guest exec` (TCP hops), with
//! the store's certificates. What cannot be probed (UDP from VMs, the outside client) is
//! listed, never guessed.

use crate::probe::{self, Observation};
use crate::LabError;
use phoenix_model::model::{GuestKind, Model};
use std::path::Path;

/// What a node check found.
#[derive(Debug)]
pub struct NodeCheck {
    pub observations: Vec<Observation>,
    /// Hops declared but not probed.
    pub not_probed: usize,
    /// The endpoints no probe could run from.
    pub not_entered: Vec<String>,
}

impl NodeCheck {
    pub fn drift(&self) -> usize {
        self.observations.iter().filter(|o| !o.agrees()).count()
    }
}

/// Probes the node. With `netns_prefix` (tests) the lab stands in for the node: each guest is
/// the namespace `<prefix>guest-<vmid>`.
pub fn check(model: &Model, store: &Path, netns_prefix: Option<&str>, phoenix: &Path, now: u64) -> Result<NodeCheck, LabError> {
    let mut spec = crate::spec::for_config(model, store, now)?;
    spec.probes.retain(|p| p.flow != "undeclared");
    let lxc = |key: &str| guest_of(model, key).is_some_and(|(_, kind)| kind == GuestKind::Lxc);
    let enter = |key: &str| probe::node_entry(key, lxc(key), netns_prefix);
    let mut skipped: Vec<String> = spec.probes.iter().map(|p| p.from.clone()).filter(|from| enter(from).is_none()).collect();
    skipped.sort();
    skipped.dedup();
    let mut observations = probe::probe_all(&spec, &enter, phoenix, store)?;
    let vms: Vec<String> = skipped.iter().filter(|k| k.starts_with("guest-")).cloned().collect();
    let client_files =
        model.certificates.iter().filter_map(|c| Some((c.name.clone(), (c.cert_path.clone()?, c.key_path.clone()?)))).collect();
    let exec = |key: &str, script: &str| run_in_vm(key, script, netns_prefix);
    let found = probe::probe_vms(&spec, &vms, phoenix_model::paths::TRUSTED_ROOT_PATH, &client_files, &exec)?;
    skipped.retain(|k| k == "outside" || !found.iter().any(|o| &o.probe.from == k));
    observations.extend(found);
    let not_probed = spec.probes.len() - observations.len();
    Ok(NodeCheck { observations, not_probed, not_entered: skipped })
}

fn guest_of(model: &Model, key: &str) -> Option<(u32, GuestKind)> {
    let id = key.strip_prefix("guest-")?.parse::<u32>().ok()?;
    model.guests.get(&id).map(|g| (id, g.kind))
}

/// Runs `script` in the VM `key` (`guest-<vmid>`) and returns what it printed.
fn run_in_vm(key: &str, script: &str, netns_prefix: Option<&str>) -> Result<String, LabError> {
    let error = |e: String| LabError(format!("probing from {key}: {e}"));
    let output = match netns_prefix {
        // The lab standing in for the node: the VM is a namespace.
        Some(prefix) => std::process::Command::new("ip")
            .args(["netns", "exec", &format!("{prefix}{key}"), "sh", "-c", script])
            .output()
            .map(|o| o.stdout)
            .map_err(|e| error(e.to_string()))?,
        None => {
            let id: u32 = key.strip_prefix("guest-").and_then(|i| i.parse().ok()).ok_or_else(|| error("not a guest".into()))?;
            let target =
                phoenix_drivers::host::HostTarget::new(phoenix_drivers::host::GuestAccess::Pve, phoenix_drivers::host::SystemRunner);
            let place = phoenix_core::deploy::Place { guest: Some((id, GuestKind::Vm)), path: String::new() };
            target.shell_at(&place, script, &[], None).map(|o| o.stdout).map_err(|e| error(e.message))?
        }
    };
    Ok(String::from_utf8_lossy(&output).into_owned())
}
