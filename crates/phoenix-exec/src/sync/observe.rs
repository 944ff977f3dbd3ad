//! Observing the system before planning: the Proxmox node's guests, firewalls and NICs through
//! the API, the deployed files through the target, the certificates due, whether the CA root is
//! in place, and Portainer's environments and stacks. Requests run concurrently (bounded).

use super::{PortainerApi, PveApi};
use crate::certs;
use crate::traits::{DriverError, Target};
use futures_util::stream::{self, StreamExt, TryStreamExt};
use phoenix_core::certificates::renewal::{self, Due};
use phoenix_core::deploy::Machine;
use phoenix_core::deploy::Place;
use phoenix_core::plan::files::file_domain;
use phoenix_core::plan::guests::{GuestState, PendingChange, StorageState};
use phoenix_core::plan::pve::{self, ApiRequest, FwScope, Method};
use phoenix_core::plan::features::FeatureObservation;
use phoenix_core::plan::{CertCopies, Domain, Observed, PveObserved};
use phoenix_core::pve_fw::{FwFile, FwGroup};
use phoenix_core::render::Rendered;
use phoenix_model::model::{GuestId, GuestKind, Model};
use phoenix_model::paths::STORE_ROOT_FILE;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// How many observation requests are in flight at once.
const CONCURRENT_READS: usize = 256;

async fn get(api: &impl PveApi, path: String) -> Result<Value, DriverError> {
    Ok(api.call(&ApiRequest::new(Method::Get, path, Vec::new())).await?.data)
}

fn vmid(entry: &Value) -> Option<GuestId> {
    entry.get("vmid").and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok())).map(|v| v as GuestId)
}

/// Every guest of the cluster and its node (`GET /cluster/resources?type=vm`: `type` qemu or
/// lxc, `node`, `vmid`).
async fn placement(api: &impl PveApi, observed: &mut PveObserved) -> Result<(), DriverError> {
    let query = vec![("type".to_string(), "vm".to_string())];
    let list = api.call(&ApiRequest::new(Method::Get, "/cluster/resources".to_string(), query)).await?.data;
    for entry in list.as_array().into_iter().flatten() {
        let kind = match entry.get("type").and_then(Value::as_str) {
            Some("lxc") => GuestKind::Lxc,
            Some("qemu") => GuestKind::Vm,
            _ => continue,
        };
        let (Some(id), Some(node)) = (vmid(entry), entry.get("node").and_then(Value::as_str)) else { continue };
        observed.guests.insert(id, kind);
        observed.placement.insert(id, node.to_string());
    }
    Ok(())
}

/// The guests HA manages: `GET /cluster/ha/resources` (`sid` `vm:100`/`ct:100`, `state`,
/// default `started`); `ignored` ones are not managed (`PVE::HA::Config::vm_is_ha_managed`).
async fn ha(api: &impl PveApi, observed: &mut PveObserved) -> Result<(), DriverError> {
    let list = get(api, "/cluster/ha/resources".to_string()).await?;
    for entry in list.as_array().into_iter().flatten() {
        let Some(sid) = entry.get("sid").and_then(Value::as_str) else { continue };
        let Some(id) = sid.rsplit(':').next().and_then(|id| id.parse::<GuestId>().ok()) else { continue };
        let state = entry.get("state").and_then(Value::as_str).unwrap_or("started");
        if state != "ignored" {
            observed.ha.insert(id, state.to_string());
        }
    }
    Ok(())
}

/// A scope's firewall and the digests of its rule lists (by API path).
type ScopeFirewall = (FwFile, Vec<(String, String)>);

/// One scope's firewall: options and rules everywhere; aliases and ipsets on the cluster and
/// guests; security groups on the cluster.
async fn firewall(api: &impl PveApi, scope: FwScope, node: &str) -> Result<ScopeFirewall, DriverError> {
    let base = scope.base(node);
    let rules_path = format!("{base}/rules");
    let (options, rules) = futures_util::try_join!(get(api, format!("{base}/options")), get(api, rules_path.clone()))?;
    let mut digests: Vec<(String, String)> = pve::list_digest(&rules).map(|d| (rules_path, d)).into_iter().collect();
    let mut file = FwFile { options: pve::options_from_api(&options), rules: pve::rules_from_api(&rules), ..FwFile::default() };
    if matches!(scope, FwScope::Host(_)) {
        return Ok((file, digests));
    }
    let (aliases, sets) = futures_util::try_join!(get(api, format!("{base}/aliases")), get(api, format!("{base}/ipset")))?;
    file.aliases = pve::aliases_from_api(&aliases);
    for summary in sets.as_array().into_iter().flatten() {
        let Some(name) = summary.get("name").and_then(Value::as_str) else { continue };
        let entries = get(api, format!("{base}/ipset/{name}")).await?;
        file.ipsets.extend(pve::ipset_from_api(summary, &entries));
    }
    if matches!(scope, FwScope::Cluster) {
        let groups = get(api, "/cluster/firewall/groups".to_string()).await?;
        for group in groups.as_array().into_iter().flatten() {
            let Some(name) = group.get("group").and_then(Value::as_str) else { continue };
            let path = format!("/cluster/firewall/groups/{name}");
            let list = get(api, path.clone()).await?;
            digests.extend(pve::list_digest(&list).map(|d| (path, d)));
            let rules = pve::rules_from_api(&list);
            let comment = group.get("comment").and_then(Value::as_str).map(str::to_string);
            file.groups.push(FwGroup { name: name.to_string(), comment, rules });
        }
    }
    Ok((file, digests))
}

/// A value of the API as text (numbers as Perl prints them).
fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A described guest in detail: its config, run state and snapshots.
/// Its snapshots are listed only when the plan needs them (`snapshots`: a guest with a
/// `template_snapshot_name` or lifecycle snapshots), a request less per guest otherwise.
async fn guest_state(api: &impl PveApi, node: &str, id: GuestId, kind: GuestKind, snapshots: bool) -> Result<GuestState, DriverError> {
    let base = format!("/nodes/{node}/{}/{id}", pve::guest_segment(kind));
    let listed = async {
        match snapshots {
            true => get(api, format!("{base}/snapshot")).await,
            false => Ok(Value::Array(Vec::new())),
        }
    };
    // `config` shows pending values merged in (`load_current_config`), `pending` what waits.
    let (config, status, snapshots, pending) = futures_util::try_join!(
        get(api, format!("{base}/config")),
        get(api, format!("{base}/status/current")),
        listed,
        get(api, format!("{base}/pending"))
    )?;
    // Raw `lxc.*` lines come as `lxc: [[key, value], ...]`: kept as `key: value` lines.
    let raw = |v: &Value| -> Option<String> {
        let pairs = v.as_array()?.iter().filter_map(|p| Some(format!("{}: {}", p.get(0)?.as_str()?, p.get(1)?.as_str()?)));
        Some(pairs.collect::<Vec<_>>().join("\n"))
    };
    let config = config
        .as_object()
        .map(|o| o.iter().filter_map(|(k, v)| Some((k.clone(), if k == "lxc" { raw(v)? } else { text(v)? }))).collect())
        .unwrap_or_default();
    let snapshots = snapshots
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.get("name").and_then(Value::as_str))
        .filter(|n| *n != "current")
        .map(str::to_string)
        .collect();
    let field = |entry: &Value, key: &str| entry.get(key).and_then(text);
    let pending = pending
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| PendingChange {
            key: field(e, "key").unwrap_or_default(),
            value: field(e, "value"),
            pending: field(e, "pending"),
            delete: e.get("delete").and_then(Value::as_u64).is_some_and(|d| d > 0),
        })
        .filter(|change| change.pending.is_some() || change.delete)
        .collect();
    Ok(GuestState {
        pending,
        active_tasks: 0,
        kind: Some(kind),
        status: status.get("status").and_then(Value::as_str).unwrap_or("unknown").to_string(),
        config,
        snapshots,
        uptime: status.get("uptime").and_then(Value::as_u64).unwrap_or(0),
    })
}

/// A node's storages, and the files it sees on those holding OS templates and images to import.
async fn storages(api: &impl PveApi, node: &str, observed: &mut PveObserved) -> Result<(), DriverError> {
    let list = get(api, format!("/nodes/{node}/storage")).await?;
    for item in list.as_array().into_iter().flatten() {
        let Some(id) = item.get("storage").and_then(Value::as_str) else { continue };
        let content: Vec<String> = item.get("content").and_then(Value::as_str).unwrap_or_default().split(',').map(str::to_string).collect();
        let shared = item.get("shared").and_then(Value::as_u64).is_some_and(|s| s == 1);
        let state = StorageState { avail: item.get("avail").and_then(Value::as_u64).unwrap_or(0), content, shared };
        if state.holds("vztmpl") || state.holds("import") {
            for volume in get(api, format!("/nodes/{node}/storage/{id}/content")).await?.as_array().into_iter().flatten() {
                if let Some(volid) = volume.get("volid").and_then(Value::as_str) {
                    observed.volumes.entry(node.to_string()).or_default().insert(volid.to_string());
                }
            }
        }
        observed.storages.entry(node.to_string()).or_default().insert(id.to_string(), state);
    }
    Ok(())
}

/// What the guests domain needs: each described guest in detail (on its node), each node's
/// storages and their files.
pub async fn guests(api: &impl PveApi, model: &Model, observed: &mut PveObserved) -> Result<(), DriverError> {
    let present: Vec<(GuestId, GuestKind, String)> = observed
        .guests
        .iter()
        .filter(|(id, _)| model.guests.contains_key(id))
        .map(|(id, kind)| (*id, *kind, observed.node_of(*id).to_string()))
        .collect();
    let states: Vec<(GuestId, GuestState)> = stream::iter(
        present.into_iter().map(|(id, kind, node)| async move {
            let guest = &model.guests[&id];
            let snapshots = guest.template_snapshot.is_some() || !guest.spec.lifecycle_snapshots.is_empty();
            guest_state(api, &node, id, kind, snapshots).await.map(|s| (id, s))
        }),
    )
    .buffer_unordered(CONCURRENT_READS)
    .try_collect()
    .await?;
    observed.guest_states = states.into_iter().collect();
    // A locked guest: is anything still running for it (or, for a clone, for its source)? A
    // task runs on the node of the guest it is for (a clone's on its source's).
    let locked: Vec<(GuestId, Vec<(GuestId, String)>)> = observed
        .guest_states
        .iter()
        .filter(|(_, s)| s.lock().is_some())
        .map(|(id, _)| {
            let source = model.guests.get(id).and_then(|g| match &g.spec.origin {
                phoenix_model::model::Origin::Clone { from, .. } => Some(from.value),
                _ => None,
            });
            (*id, std::iter::once(*id).chain(source).map(|vmid| (vmid, observed.node_of(vmid).to_string())).collect())
        })
        .collect();
    for (id, holders) in locked {
        let mut active_tasks = 0;
        for (vmid, node) in holders {
            let query = vec![("vmid".to_string(), vmid.to_string()), ("source".to_string(), "active".to_string())];
            let active = api.call(&ApiRequest::new(Method::Get, format!("/nodes/{node}/tasks"), query)).await?.data;
            active_tasks += active.as_array().map_or(0, Vec::len);
        }
        if let Some(state) = observed.guest_states.get_mut(&id) {
            state.active_tasks += active_tasks;
        }
    }
    for node in cluster_nodes(model, observed) {
        storages(api, &node, observed).await?;
    }
    Ok(())
}

/// The nodes to read storages of: the described ones and any a described guest is on.
fn cluster_nodes(model: &Model, observed: &PveObserved) -> BTreeSet<String> {
    let mut nodes: BTreeSet<String> = model.host.nodes.iter().map(|n| n.name.clone()).collect();
    nodes.insert(observed.node.clone());
    nodes.extend(model.guests.keys().filter_map(|id| observed.placement.get(id).cloned()));
    nodes
}

/// The cluster as the guests domain and `phoenix status` see it.
pub async fn guests_observed(api: &impl PveApi, model: &Model, node: &str) -> Result<PveObserved, DriverError> {
    let mut observed = pve_with(api, model, node, false).await?;
    guests(api, model, &mut observed).await?;
    observed.nics = nics_of_states(&observed);
    Ok(observed)
}

/// The described guests' NICs from their configs as observed in detail (the same
/// `GET .../config` the NICs are otherwise read with).
fn nics_of_states(observed: &PveObserved) -> BTreeMap<GuestId, BTreeMap<String, String>> {
    let nics = observed.guest_states.iter().map(|(id, state)| {
        let keys = state.config.iter().filter(|(k, _)| phoenix_model::pve::fw_names::is_nic_key(k));
        (*id, keys.map(|(k, v)| (k.clone(), v.clone())).collect::<BTreeMap<_, _>>())
    });
    nics.filter(|(_, nics)| !nics.is_empty()).collect()
}

/// The guests of the cluster and where they are, HA's resources, the firewalls (the cluster's,
/// the first node's, each described guest's on its node) and the described guests' NICs.
pub async fn pve(api: &impl PveApi, model: &Model, node: &str) -> Result<PveObserved, DriverError> {
    pve_with(api, model, node, true).await
}

/// `pve`, the NICs read only when `with_nics` (the guests domain reads each config anyway).
async fn pve_with(api: &impl PveApi, model: &Model, node: &str, with_nics: bool) -> Result<PveObserved, DriverError> {
    let mut observed = PveObserved { node: node.to_string(), ..PveObserved::default() };
    placement(api, &mut observed).await?;
    ha(api, &mut observed).await?;
    let mut scopes = vec![(FwScope::Cluster, node.to_string())];
    scopes.extend(FwScope::hosts(model).map(|(scope, name)| (scope, name.to_string())));
    scopes.extend(
        model
            .guests
            .values()
            .filter(|g| observed.guests.get(&g.id) == Some(&g.kind))
            .map(|g| (FwScope::Guest(g.id, g.kind), observed.node_of(g.id).to_string())),
    );
    let firewalls: Vec<(FwScope, ScopeFirewall)> = stream::iter(
        scopes.into_iter().map(|(scope, node)| async move { firewall(api, scope, &node).await.map(|f| (scope, f)) }),
    )
    .buffer_unordered(CONCURRENT_READS)
    .try_collect()
    .await?;
    for (scope, (file, digests)) in firewalls {
        observed.firewalls.insert(scope, file);
        observed.rule_digests.extend(digests);
    }
    let guests: Vec<(GuestId, GuestKind, String)> = observed
        .guests
        .iter()
        .filter(|(id, _)| with_nics && model.guests.contains_key(id))
        .map(|(id, kind)| (*id, *kind, observed.node_of(*id).to_string()))
        .collect();
    let nics: Vec<(GuestId, BTreeMap<String, String>)> = stream::iter(guests.into_iter().map(|(id, kind, node)| async move {
        let config = get(api, format!("/nodes/{node}/{}/{id}/config", pve::guest_segment(kind))).await?;
        Ok::<_, DriverError>((id, nic_keys(&config)))
    }))
    .buffer_unordered(CONCURRENT_READS)
    .try_collect()
    .await?;
    observed.nics = nics.into_iter().filter(|(_, nics)| !nics.is_empty()).collect();
    Ok(observed)
}

/// The `netN` keys of a guest's configuration.
fn nic_keys(config: &Value) -> BTreeMap<String, String> {
    let Some(keys) = config.as_object() else { return BTreeMap::new() };
    keys.iter()
        .filter(|(key, _)| phoenix_model::pve::fw_names::is_nic_key(key))
        .filter_map(|(key, value)| Some((key.clone(), value.as_str()?.to_string())))
        .collect()
}

fn place_of(model: &Model, target: Machine, path: &str) -> Place {
    let guest = match target {
        Machine::Host => None,
        Machine::Guest(id) => Some((id, model.guests.get(&id).map_or(GuestKind::Lxc, |g| g.kind))),
    };
    Place { guest, path: path.to_string() }
}

/// The deployed copies of the files the asked-for domains write.
pub async fn files(
    model: &Model,
    rendered: &Rendered,
    domains: &BTreeSet<Domain>,
    target: &impl Target,
) -> Result<BTreeMap<(Machine, String), Option<String>>, DriverError> {
    let mut found = BTreeMap::new();
    for file in rendered.files.iter().filter(|f| file_domain(f).is_some_and(|d| domains.contains(&d))) {
        let content = target.read(&place_of(model, file.target, &file.path)).await?.map(|b| String::from_utf8_lossy(&b).into_owned());
        found.insert((file.target, file.path.clone()), content);
    }
    Ok(found)
}

/// Where rendered files go, as the target names places.
pub fn file_place(model: &Model, target: Machine, path: &str) -> Place {
    place_of(model, target, path)
}

/// What the store says of each certificate: the ones due for renewal, with their reason codes,
/// and for the others the store's copy beside what their service's files hold now.
pub async fn certs_due(
    model: &Model,
    store_dir: &str,
    now: u64,
    target: &impl Target,
) -> Result<(BTreeMap<String, Vec<String>>, BTreeMap<String, CertCopies>), DriverError> {
    let (mut due, mut copies) = (BTreeMap::new(), BTreeMap::new());
    for cert in &model.certificates {
        let store = certs::read_store(cert, store_dir, target).await.map_err(DriverError::new)?;
        if let Due::Renew { reasons } = renewal::due(cert, &store, now, false) {
            due.insert(cert.name.clone(), reasons.iter().map(|r| r.code().to_string()).collect());
            continue;
        }
        let (Some(chain), Some(key)) =
            (store.files.get(&renewal::store_cert_file(&cert.name)), store.files.get(&renewal::store_key_file(&cert.name)))
        else {
            continue;
        };
        let (mut installed, mut meta) = (BTreeMap::new(), BTreeMap::new());
        for file in renewal::installed_files(cert) {
            installed.insert(file.place.clone(), target.read(&file.place).await?);
            if let Some(found) = target.stat(&file.place).await? {
                meta.insert(file.place.clone(), found);
            }
        }
        copies.insert(cert.name.clone(), CertCopies { chain_pem: chain.clone(), key_pem: key.clone().into(), installed, meta });
    }
    Ok((due, copies))
}

/// The store's CA root, and whether it is everywhere `phoenix certs trust` puts it; `None`
/// when the store has no root.
pub async fn trust_in_place(
    model: &Model,
    store_dir: &str,
    host_trust_file: &str,
    target: &impl Target,
) -> Result<Option<(String, bool)>, DriverError> {
    let Some(root_text) = store_root(store_dir, target).await? else {
        return Ok(None);
    };
    let (files, _) = renewal::trust_plan(model, &root_text, store_dir, host_trust_file);
    for file in files {
        if target.read(&file.place).await?.as_deref() != Some(file.content.as_slice()) {
            return Ok(Some((root_text, false)));
        }
    }
    Ok(Some((root_text, true)))
}

/// The store's CA root (PEM), when it has one.
async fn store_root(store_dir: &str, target: &impl Target) -> Result<Option<String>, DriverError> {
    let root = target.read(&Place::host(format!("{}/{STORE_ROOT_FILE}", store_dir.trim_end_matches('/')))).await?;
    Ok(root.map(|r| String::from_utf8_lossy(&r).into_owned()))
}

/// The root certificate in Step-CA's guest, when phoenix provisions Step-CA there and the
/// guest is reached (a guest not created yet has none).
async fn step_ca_root(model: &Model, target: &impl Target) -> Result<Option<String>, DriverError> {
    let Some(guest) = model.edge.step_ca.and_then(|id| model.guests.get(&id)) else { return Ok(None) };
    if !guest.has_feature(phoenix_core::provision::step_ca::STEP_CA) || !target.runs_scripts(guest.id, guest.kind) {
        return Ok(None);
    }
    let place = Place { guest: Some((guest.id, guest.kind)), path: phoenix_core::provision::step_ca::ROOT_CERT.into() };
    // A guest that does not run yet cannot be read: it holds no root.
    let root = target.read(&place).await.ok().flatten().map(|r| String::from_utf8_lossy(&r).into_owned());
    Ok(root.filter(|r| r.trim_start().starts_with("-----BEGIN CERTIFICATE-----")))
}

/// Each provisioned guest's resources, probed concurrently where the guest runs; a guest that
/// does not exist or is stopped is planned from nothing, one whose probe fails waits.
async fn features(model: &Model, observed: &Observed, target: &impl Target) -> BTreeMap<GuestId, FeatureObservation> {
    let desired = phoenix_core::provision::desired(model, &observed.feature_inputs);
    let running = |id: &GuestId| observed.pve.as_ref().and_then(|p| p.guest_states.get(id)).is_some_and(|g| g.status == "running");
    // A guest the target cannot run scripts in is not provisioned from here (no steps).
    let probes = desired.values().filter(|d| target.runs_scripts(d.guest, d.kind)).map(|d| async move {
        if !running(&d.guest) {
            return (d.guest, FeatureObservation::NotRunning);
        }
        match crate::provision::observe(target, d).await {
            Ok(state) => (d.guest, FeatureObservation::Found(state)),
            Err(error) => (d.guest, FeatureObservation::Unreachable(error.message)),
        }
    });
    futures_util::future::join_all(probes).await.into_iter().collect()
}

/// Portainer's environments and stacks (with each stack's compose file).
pub async fn portainer(api: &impl PortainerApi) -> Result<phoenix_core::plan::portainer::PortainerObserved, DriverError> {
    if !api.initialized().await? {
        return Ok(phoenix_core::plan::portainer::PortainerObserved::default());
    }
    Ok(phoenix_core::plan::portainer::PortainerObserved {
        initialized: true,
        endpoints: api.endpoints().await?,
        stacks: api.stacks().await?,
    })
}

/// Everything the asked-for domains need, in one value for the planner.
pub struct ObserveInput<'a, P, Q, T> {
    pub model: &'a Model,
    pub rendered: &'a Rendered,
    pub domains: &'a BTreeSet<Domain>,
    pub pve: &'a P,
    pub portainer: &'a Q,
    pub target: &'a T,
    pub node: &'a str,
    pub store_dir: &'a str,
    pub host_trust_file: &'a str,
    pub now: u64,
    /// Plan each guest's boot delay after its start.
    pub boot_delays: bool,
    /// Each application script's content, by the name guests give (read from the installation).
    /// What provisioning needs beyond the model (the application scripts, the agent secret);
    /// the store's root is read here.
    pub feature_inputs: &'a phoenix_core::provision::Inputs,
}

/// The owner of each container bind mount's host folder, on the node (see `plan::bind_mounts`).
async fn bind_owners(model: &Model, target: &impl Target) -> Result<BTreeMap<String, Option<phoenix_core::deploy::FileMeta>>, DriverError> {
    let mut owners = BTreeMap::new();
    let folders = model.guests.values().flat_map(|g| &g.spec.mounts).filter_map(|m| match &m.source {
        phoenix_model::model::MountSource::Bind(host) => Some(host.value.clone()),
        _ => None,
    });
    for folder in folders.collect::<BTreeSet<_>>() {
        let meta = target.stat(&Place::host(folder.clone())).await?;
        owners.insert(folder, meta);
    }
    Ok(owners)
}

pub async fn observe<P: PveApi, Q: PortainerApi, T: Target>(input: &ObserveInput<'_, P, Q, T>) -> Result<Observed, DriverError> {
    let wants = |d: Domain| input.domains.contains(&d);
    let mut observed = Observed::default();
    let provisioning = wants(Domain::Features) && input.model.guests.values().any(|g| input.target.runs_scripts(g.id, g.kind));
    if wants(Domain::Firewall) || wants(Domain::Guests) || provisioning {
        let proxmox = |e: DriverError| DriverError::new(format!("Proxmox VE: {e}"));
        let detailed = wants(Domain::Guests) || provisioning;
        let mut found = pve_with(input.pve, input.model, input.node, !detailed).await.map_err(proxmox)?;
        if detailed {
            guests(input.pve, input.model, &mut found).await.map_err(proxmox)?;
            found.nics = nics_of_states(&found);
        }
        if wants(Domain::Guests) {
            found.bind_owners = bind_owners(input.model, input.target).await?;
        }
        observed.pve = Some(found);
    }
    observed.files = files(input.model, input.rendered, input.domains, input.target).await?;
    if wants(Domain::Certs) {
        (observed.certs_due, observed.cert_copies) = certs_due(input.model, input.store_dir, input.now, input.target).await?;
    }
    if wants(Domain::Trust) {
        let trust = trust_in_place(input.model, input.store_dir, input.host_trust_file, input.target).await?;
        observed.trust_in_place = trust.as_ref().map(|(_, in_place)| *in_place);
        observed.trust_root = trust.map(|(root, _)| root);
    }
    if provisioning {
        let root = store_root(input.store_dir, input.target).await?;
        observed.feature_inputs = phoenix_core::provision::Inputs { root_ca_pem: root, ..input.feature_inputs.clone() };
        observed.features = features(input.model, &observed, input.target).await;
        observed.step_ca_root = step_ca_root(input.model, input.target).await?;
    }
    if wants(Domain::Portainer) || wants(Domain::Stacks) {
        // A Portainer that cannot be observed holds back only its own steps.
        match portainer(input.portainer).await {
            Ok(found) => observed.portainer = Some(found),
            Err(e) => observed.portainer_failure = Some(e.to_string()),
        }
    }
    Ok(observed)
}
