//! The lab as a system to deploy to (`phoenix lab up --bare`, then `phoenix sync --lab`).
//! Its folder `deployed/` has the layout of a rehearsal (`host/`, `guest-<vmid>/`); its Proxmox
//! VE API is phoenix-sim's simulator, in process, its cluster file system kept in
//! `deployed/host/etc/pve`; a lab CA stands in for Step-CA's signing, once Pebble at Step-CA's
//! address validated the order ([`crate::acme`]). After a sync the lab reloads with what was written:
//! the firewall compiled from what the API holds, dnsmasq and nginx with the deployed files,
//! the TLS stand-ins with the deployed store. What it must not do: read the configuration's
//! rendering as if it were deployed.

use crate::LabError;
use phoenix_core::certificates::renewal::OrderRequest;
use phoenix_core::plan::pve::{ApiRequest, Method};
use phoenix_core::render::Rendered;
use phoenix_exec::sync::{PveApi, PveReply};
use phoenix_exec::{DriverError, Issued, Issuer};
use phoenix_model::model::{GuestKind, Model};
use phoenix_sim::ca::TestCa;
use phoenix_sim::pve::guest::GuestKind as SimKind;
use phoenix_sim::pve::guest::GuestConf;
use phoenix_sim::pve::PveSim;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The folder standing in for the node and its guests.
pub fn folder(name: &str) -> PathBuf {
    crate::state_dir(name).join("deployed")
}

fn ca_dir(name: &str) -> PathBuf {
    crate::state_dir(name).join("ca")
}

/// The simulated node's `/etc/pve`.
fn pve_dir(name: &str) -> PathBuf {
    folder(name).join("host/etc/pve")
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> LabError + '_ {
    move |e| LabError(format!("{}: {e}", path.display()))
}

/// The store as phoenix finds it on the lab's node: `<folder>/host/<store_dir>`.
pub fn store(name: &str, store_dir: &str) -> PathBuf {
    folder(name).join("host").join(store_dir.trim_start_matches('/'))
}

/// A node as after installation: the guests exist (with their `net0`, but without the
/// firewall flag), no firewall is configured, nothing of phoenix's is deployed, and the lab
/// CA's root sits in the store (as `step ca root` would put it there). Returns the store.
/// `empty`: the node has no guests yet (its storages only), for a sync that creates them.
pub fn prepare(name: &str, model: &Model, rendered: &Rendered, store_dir: &str, empty: bool) -> Result<PathBuf, LabError> {
    let dir = folder(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let ca_name = format!("phoenix lab {name} root");
    let ca = crate::certs::new_ca(&ca_name)?;
    ca.save(&ca_dir(name), &ca_name).map_err(io(&ca_dir(name)))?;
    let store = store(name, store_dir);
    std::fs::create_dir_all(&store).map_err(io(&store))?;
    let root = store.join(phoenix_model::paths::STORE_ROOT_FILE);
    std::fs::write(&root, &ca.cert_pem).map_err(io(&root))?;
    let node = if empty { phoenix_sim::rehearsal::empty_node(model) } else { simulated_node(model, rendered).map_err(LabError)? };
    save_pve(name, &node)?;
    phoenix_sim::rehearsal::write_guest_accounts(&dir, model, rendered).map_err(io(&dir))?;
    Ok(store)
}

/// The node with the configuration's guests, their NICs as before a firewall (see
/// `nics_before_firewall`), and nothing else configured.
pub fn simulated_node(model: &Model, rendered: &Rendered) -> Result<PveSim, String> {
    let nics = phoenix_core::render::pve_firewall::nics_before_firewall(rendered);
    let mut sim = phoenix_sim::rehearsal::cluster(model);
    for guest in model.guests.values() {
        let kind = match guest.kind {
            GuestKind::Lxc => SimKind::Lxc,
            GuestKind::Vm => SimKind::Qemu,
        };
        let own: Vec<(&str, &str)> = nics.get(&guest.id).into_iter().flatten().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        sim.add_guest_on(&guest.node.value, guest.id, kind, &own, &[]).map_err(|e| format!("guest {}: {e}", guest.id))?;
    }
    Ok(sim)
}

fn save_pve(name: &str, sim: &PveSim) -> Result<(), LabError> {
    let dir = pve_dir(name);
    sim.save_dir(&dir).map_err(io(&dir))
}

/// The lab's Proxmox VE API: every request answered by the simulator, every change saved. In
/// a lab of real containers ([`crate::containers`]), a container's start, stop and removal
/// the simulator accepted are then carried out on the real one, as pct does.
pub struct LabPve {
    state: Mutex<PveSim>,
    name: String,
    containers: Option<PathBuf>,
}

impl LabPve {
    /// The lab's node for `model` (its name and bridges).
    pub fn open(name: &str, model: &Model) -> Result<LabPve, LabError> {
        let node = &model.host.node_name;
        let dir = pve_dir(name);
        if !dir.is_dir() {
            return Err(LabError(format!(
                "lab {name} has no Proxmox VE of its own ({} is missing); start it with `phoenix lab up --bare`",
                dir.display()
            )));
        }
        // Kept in the folder between requests: what the lab's node root writes there (a
        // guest's .conf) is seen, as on pmxcfs.
        let mut sim = PveSim::new(node).backed_by(&dir).map_err(io(&dir))?;
        sim.bridges.extend(phoenix_sim::rehearsal::node_bridges(model));
        // In process, tasks end at once: nothing else waits on the lab's node.
        sim.settings.task_duration = std::time::Duration::ZERO;
        sim.settings.agent_delay = std::time::Duration::ZERO;
        // The lab runs every guest (as its namespaces) but the templates; a real container
        // runs when it runs.
        let containers = crate::containers::rootfs(name);
        let runs = |id: u32, kind: SimKind| match (&containers, kind) {
            (Some(_), SimKind::Lxc) => crate::containers::container(name, id).running(),
            _ => true,
        };
        let running: Vec<u32> = sim
            .all_guests()
            .into_iter()
            .filter(|(id, kind, c)| c.keys.get("template").is_none_or(|t| t != "1") && runs(*id, *kind))
            .map(|(id, _, _)| id)
            .collect();
        for id in running {
            sim.running.insert(id);
            sim.started.insert(id, std::time::Instant::now());
        }
        Ok(LabPve { state: Mutex::new(sim), name: name.to_string(), containers })
    }

    /// After the simulator accepted `method path`: the real container's start, stop or removal
    /// it asks for (`/nodes/{node}/lxc/{vmid}/status/{start,stop,shutdown,reboot}`,
    /// `DELETE .../lxc/{vmid}`), with the guest's config as the simulator has it.
    fn container_change(&self, sim: &PveSim, method: &str, path: &str) -> Option<(u32, &'static str, GuestConf)> {
        self.containers.as_ref()?;
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        let (vmid, action) = match parts.as_slice() {
            ["nodes", _, "lxc", vmid, "status", action] if method == "POST" => (vmid.parse::<u32>().ok()?, *action),
            ["nodes", _, "lxc", vmid] if method == "DELETE" => (vmid.parse::<u32>().ok()?, "destroy"),
            _ => return None,
        };
        let action = ["start", "reboot", "stop", "shutdown", "destroy"].into_iter().find(|a| *a == action)?;
        let conf = sim.all_guests().into_iter().find(|(id, _, _)| *id == vmid).map(|(_, _, conf)| conf).unwrap_or_default();
        Some((vmid, action, conf))
    }
}

/// Carries out a container's start, stop or removal (blocking: a start waits for its systemd).
fn carry_out(name: &str, rootfs: &Path, (vmid, action, conf): (u32, &str, GuestConf)) -> Result<(), DriverError> {
    use crate::containers;
    let done = match action {
        "start" => containers::start(name, rootfs, vmid, &conf),
        "reboot" => containers::stop(name, vmid).and_then(|()| containers::start(name, rootfs, vmid, &conf)),
        "stop" | "shutdown" => containers::stop(name, vmid),
        _ => containers::destroy(name, vmid),
    };
    done.map_err(|e| DriverError::new(format!("container {vmid}: {e}")))
}

impl PveApi for LabPve {
    async fn call(&self, request: &ApiRequest) -> Result<PveReply, DriverError> {
        let method = match request.method {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        };
        // The API sees the path percent-decoded (an ipset entry's CIDR carries %2F).
        let path = percent_encoding::percent_decode_str(&request.path).decode_utf8_lossy().into_owned();
        let mut state = self.state.lock().map_err(|_| DriverError::new("the lab's Proxmox VE state is poisoned"))?;
        let params = request.params.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
        let reply = state.request(method, &path, params);
        if !(200..300).contains(&reply.status) {
            let message = reply.body.get("message").and_then(Value::as_str).unwrap_or_default().trim_end().to_string();
            let errors = reply.body.get("errors").map(|e| format!(" {e}")).unwrap_or_default();
            return Err(DriverError::new(format!("{method} {}: {} {message}{errors}", request.path, reply.status)));
        }
        let change = self.container_change(&state, method, &path);
        // The simulator is free again while a container boots: other requests go on.
        drop(state);
        if let (Some(change), Some(rootfs)) = (change, self.containers.clone()) {
            let name = self.name.clone();
            let done = tokio::task::spawn_blocking(move || carry_out(&name, &rootfs, change)).await;
            done.map_err(|e| DriverError::new(format!("a container operation stopped: {e}")))??;
        }
        Ok(reply.data().clone().into())
    }
}

/// The lab CA as an issuer: it signs what the order asks for, as Step-CA does once the
/// challenge is valid; in a bare lab whose Step-CA validates, only after Pebble at Step-CA's
/// address validated the same order over the lab's DNS and firewall ([`crate::acme`]).
pub struct LabIssuer {
    ca: TestCa,
    /// How orders are validated; the reason why they cannot be, when a Step-CA runs that cannot.
    validation: Result<Option<crate::acme::Validation>, String>,
}

impl LabIssuer {
    pub fn open(name: &str) -> Result<LabIssuer, LabError> {
        crate::check_name(name)?;
        let dir = ca_dir(name);
        let ca = TestCa::load(&dir).map_err(|e| LabError(format!("lab {name} has no CA of its own ({}: {e})", dir.display())))?;
        let spec = crate::read_state(name).and_then(|state| state.spec);
        let validation = spec.map_or(Ok(None), |spec| crate::acme::Validation::for_lab(name, &spec));
        Ok(LabIssuer { ca, validation })
    }
}

impl Issuer for LabIssuer {
    async fn issue<T: phoenix_exec::Target>(&self, order: &OrderRequest, _: &T) -> Result<Issued, DriverError> {
        match &self.validation {
            Ok(Some(validation)) => validation.validate(order).await.map_err(|e| {
                DriverError::new(format!("Step-CA (Pebble in the lab) did not validate certificate {}: {}", order.name, e.message))
            })?,
            Ok(None) => {}
            Err(why) => return Err(DriverError::new(format!("certificate {} cannot be validated: {why}", order.name))),
        }
        let names: Vec<&str> = order.identifiers.iter().map(String::as_str).collect();
        let leaf = self
            .ca
            .try_issue(&names, order.usage.into())
            .map_err(|e| DriverError::new(format!("the lab CA cannot issue {}: {e}", order.name)))?;
        Ok(Issued { chain_pem: format!("{}{}", leaf.cert_pem, self.ca.cert_pem), key_pem: leaf.key_pem })
    }
}
