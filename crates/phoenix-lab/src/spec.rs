//! What a lab runs, assembled from a configuration: its rendering and firewall (a lab that
//! runs the configuration), or what was deployed to a bare lab, observed as `phoenix sync`
//! observes a node. The lab's data itself is phoenix-core's; this only gathers the inputs
//! (the store's files, the bare lab's folder and API).

use crate::deployed::{self, LabPve};
use crate::LabError;
use phoenix_core::analyze::{self, firewall::FirewallState};
use phoenix_core::lab::LabSpec;
use phoenix_core::plan::Domain;
use phoenix_core::render::Rendered;
use phoenix_drivers::host::{GuestAccess, HostTarget, SystemRunner};
use phoenix_exec::sync::observe::{observe, ObserveInput};
use phoenix_model::model::Model;
use std::path::Path;

/// The lab running `model`'s configuration, its certificates judged from `store` at `now`.
pub fn for_config(model: &Model, store: &Path, now: u64) -> Result<LabSpec, LabError> {
    let rendered = phoenix_core::render::render_all(model);
    let state = FirewallState::from_rendered(&rendered, model);
    with(model, &state, &rendered, store, now)
}

/// A bare lab's folder as the node and its guests (where `phoenix sync --lab` writes).
pub fn deploy_target(name: &str) -> HostTarget<SystemRunner> {
    let folder = deployed::folder(name);
    let mut target = HostTarget::new(GuestAccess::Folders(folder.clone()), SystemRunner);
    target.host_root = Some(folder.join("host"));
    target
}

/// A bare lab running what was deployed to it: the firewall its Proxmox VE API holds and the
/// files in its folder; certificates judged from `store` (the one deployed, under `store_dir`).
pub async fn for_bare(name: &str, model: &Model, store: &Path, store_dir: &str, now: u64) -> Result<LabSpec, LabError> {
    let rendered = phoenix_core::render::render_all(model);
    let pve = LabPve::open(name, model)?;
    let target = crate::target::LabTarget::new(deploy_target(name), name, model);
    let domains = [Domain::Firewall, Domain::Dns, Domain::Gateway].into();
    let input = ObserveInput {
        model,
        rendered: &rendered,
        domains: &domains,
        pve: &pve,
        // The lab runs no Portainer: a sync against it leaves Portainer and stacks out.
        portainer: &phoenix_exec::NotUsed,
        target: &target,
        node: &model.host.node_name,
        store_dir,
        host_trust_file: phoenix_model::paths::TRUSTED_ROOT_PATH,
        now,
        boot_delays: true,
        feature_inputs: &Default::default(),
    };
    let cannot = |e: String| LabError(format!("cannot read what lab {name} has deployed: {e}"));
    let observed = observe(&input).await.map_err(|e| cannot(e.message))?;
    let pve = observed.pve.as_ref().ok_or_else(|| cannot("no firewall observed".into()))?;
    let state = phoenix_core::lab::deployed::firewall(pve, model);
    let mut spec = with(model, &state, &phoenix_core::lab::deployed::files(&rendered, &observed), store, now)?;
    // Step-CA validates for real in a bare lab, through the resolver its guest is given.
    for namespace in spec.namespaces.iter_mut().filter(|n| n.acme_port.is_some()) {
        namespace.acme_resolver = namespace.nameservers.first().copied();
    }
    // A real container runs its own nginx or Traefik, as provisioned: the lab starts none
    // there (the stand-ins fill only the ports nothing in it listens on, see net::configure).
    for namespace in &mut spec.namespaces {
        if crate::containers::in_namespace(name, &namespace.key) {
            // 80 and 443 are its nginx's or Traefik's, running or not yet: no stand-in takes them.
            if namespace.nginx.is_some() || namespace.traefik.is_some() {
                namespace.tcp.remove(&80);
                namespace.tcp.remove(&443);
            }
            namespace.nginx = None;
            namespace.traefik = None;
            namespace.files.clear();
        }
    }
    // A guest the lab's node does not have (yet) is dark: its namespace without services.
    for namespace in &mut spec.namespaces {
        let absent = namespace.key.strip_prefix("guest-").and_then(|id| id.parse().ok()).is_some_and(|id| !pve.guests.contains_key(&id));
        if absent {
            namespace.without_services();
        }
    }
    Ok(spec)
}

/// The lab for `model` running `state` and `rendered`, its certificates judged from `store`.
fn with(model: &Model, state: &FirewallState, rendered: &Rendered, store: &Path, now: u64) -> Result<LabSpec, LabError> {
    let files = phoenix_drivers::host::read_tree(store).map_err(|e| LabError(format!("cannot read {}: {e}", store.display())))?;
    let options = analyze::assess::Options { certs: Some(phoenix_core::pki::CertStore { files }), now };
    let verdicts = analyze::assess::assess(model, &phoenix_core::edge::edge(model), state, &options);
    Ok(phoenix_core::lab::spec(model, state, &verdicts, rendered))
}
