//! The guests domain of `phoenix sync`, first in its order: each described guest that does not
//! exist is created (from an OS template or a cloud image, downloaded to its storage first when
//! missing, or cloned from its source), one that exists is converged (the config keys phoenix
//! owns, its disk resized up, never down), templates are converted once set up, and guests are
//! started in boot order (guests of one `boot_order` together, each group after the one
//! before, and after the guests they depend on), a VM then waited for until its agent answers.
//! Guests are created in the order of the guest graph, each after its clone source only (a
//! dependency has to run before its dependents start, not exist before they are created).
//! Nothing outside the configuration is touched, and a key phoenix does not own is left as
//! it is. Pure: the observation is data.
//!
//! What the requests rely on (pve-container `API2/LXC.pm`, qemu-server `API2/Qemu.pm`; see
//! phoenix-sim's `pve::lifecycle`): a create writes `lock: create` until its task ends, an LXC
//! clone locks its source (`lock: disk`) for the whole clone, so clones of one source run one
//! after another (the step's lock is the source's) and other guests' steps go on in parallel,
//! limited per node (a VM template's clones take its lock shared, and run together); a template has no snapshots, so it is cloned as it is (a linked clone of
//! a container, a full clone of a VM), another source at its `template_snapshot_name`; an LXC
//! resize to the current size is refused ("disk is already at specified size"), so a disk is
//! resized only when it must grow; LXC template conversion runs in a worker whose task is not
//! handed out, so the step waits until the config says `template: 1`.

use super::pve::{guest_segment, ApiRequest, Method, Then};
use super::{Action, Domain, PveObserved, Step};
use crate::render::Rendered;
use phoenix_model::model::{Guest, GuestId, GuestKind, Model, MountSource, Origin};
use std::collections::{BTreeMap, BTreeSet};

/// A described guest as observed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuestState {
    pub kind: Option<GuestKind>,
    /// `running` or `stopped`.
    pub status: String,
    /// Its config, values as text.
    pub config: BTreeMap<String, String>,
    pub snapshots: BTreeSet<String>,
    pub uptime: u64,
    /// For a locked guest: the tasks running for it or its clone source (a clone's task is
    /// its source's, `vzclone`/`qmclone` UPIDs name the source).
    pub active_tasks: usize,
    /// What Proxmox VE keeps pending until the guest's next start (`GET .../pending`).
    pub pending: Vec<PendingChange>,
}

/// A config change that waits for the guest's next start.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PendingChange {
    pub key: String,
    /// The value in effect, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The value it takes at the next start; none when the key is to be deleted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending: Option<String>,
    pub delete: bool,
}

impl PendingChange {
    /// `cores 2 -> 4`, `delete swap`.
    pub fn text(&self) -> String {
        match (&self.pending, self.delete) {
            (_, true) => format!("delete {}", self.key),
            (Some(new), _) => format!("{} {} -> {new}", self.key, self.value.as_deref().unwrap_or("(unset)")),
            (None, false) => self.key.clone(),
        }
    }
}

/// Whether a key phoenix owns waits for the next start when it changes on a running guest:
/// pve-container's `vmconfig_hotplug_pending` has no live path for `nameserver` and `features`
/// (hostname, cores, memory, swap, boot keys and NICs apply at once); qemu-server's, under the
/// default `hotplug` (`network,disk,usb`), none for `cores`, `memory` and `agent` (the name,
/// boot and cloud-init keys are in `$fast_plug_option`, NICs are hotplugged).
fn waits_for_start(kind: GuestKind, key: &str) -> bool {
    match kind {
        GuestKind::Lxc => matches!(key, "nameserver" | "features"),
        GuestKind::Vm => matches!(key, "cores" | "memory" | "agent"),
    }
}

impl GuestState {
    pub fn running(&self) -> bool {
        self.status == "running"
    }

    pub fn lock(&self) -> Option<&str> {
        self.config.get("lock").map(String::as_str)
    }

    pub fn is_template(&self) -> bool {
        self.config.get("template").is_some_and(|t| t == "1")
    }

    /// The size in bytes of a disk (`rootfs`, `scsi0`), from its `size=`.
    pub fn disk_bytes(&self, key: &str) -> Option<u64> {
        self.config.get(key)?.split(',').find_map(|p| p.strip_prefix("size=")).and_then(parse_size)
    }
}

/// A storage as observed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StorageState {
    pub content: Vec<String>,
    pub avail: u64,
    /// Every node sees the same volumes (`shared` in storage.cfg: NFS, Ceph, ...).
    pub shared: bool,
}

impl StorageState {
    pub fn holds(&self, content: &str) -> bool {
        self.content.iter().any(|c| c == content)
    }
}

/// Bytes in a GiB, the unit of `storage_size_gb` and `disk_size_gb`.
pub const GIB: u64 = 1 << 30;

/// The tag phoenix gives the guests it creates: `phoenix delete` removes only those (and only
/// without disks it did not make) unless forced.
pub const CREATED_TAG: &str = "phoenix";

/// Whether a guest config key holds a disk or a mount point (`rootfs`, `mpN`, `scsiN`, ...).
pub fn is_disk_key(key: &str) -> bool {
    let base = key.trim_end_matches(|c: char| c.is_ascii_digit());
    key == "rootfs" || (base != key && matches!(base, "mp" | "scsi" | "virtio" | "sata" | "ide" | "efidisk" | "tpmstate"))
}

/// `8G`, `512M`, bytes.
pub fn parse_size(text: &str) -> Option<u64> {
    let (number, unit) = text.split_at(text.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(text.len()));
    let value: f64 = number.parse().ok()?;
    let scale: u64 = match unit {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => GIB,
        "T" => 1 << 40,
        _ => return None,
    };
    Some((value * scale as f64) as u64)
}

/// The guests domain's steps, and what the later domains need of them.
#[derive(Debug, Default)]
pub struct GuestPlan {
    pub steps: Vec<Step>,
    /// Guests this plan creates.
    pub created: BTreeSet<GuestId>,
    /// Per guest, the step after which it is as described (created or converged).
    pub ready: BTreeMap<GuestId, String>,
    /// Guests the domain planned for (created, converged or blocked).
    pub handled: BTreeSet<GuestId>,
    /// The node each described guest's requests go to (after its migration, if any).
    pub nodes: BTreeMap<GuestId, String>,
    /// Per guest migrated in this plan, its migration step (what its other steps wait for).
    pub migrations: BTreeMap<GuestId, String>,
    /// What the plan says without doing it (a guest HA keeps on another node).
    pub notes: Vec<String>,
}

impl GuestPlan {
    /// The node a guest's requests go to in this plan.
    pub fn node_of<'a>(&'a self, id: GuestId, pve: &'a PveObserved) -> &'a str {
        self.nodes.get(&id).map_or_else(|| pve.node_of(id), String::as_str)
    }
}

struct Context<'a> {
    model: &'a Model,
    pve: &'a PveObserved,
    /// Each guest's rendered NICs.
    nics: crate::render::GuestNics<'a>,
    /// Where each described guest is addressed (see `placement`).
    placements: BTreeMap<GuestId, super::placement::Placement>,
}

impl Context<'_> {
    /// The node the guest's requests go to in this plan.
    fn node(&self, id: GuestId) -> &str {
        self.placements.get(&id).map_or_else(|| self.pve.node_of(id), |p| p.node())
    }

    fn base(&self, id: GuestId, kind: GuestKind) -> String {
        format!("/nodes/{}/{}", self.node(id), guest_segment(kind))
    }
}

fn pair(key: &str, value: impl Into<String>) -> (String, String) {
    (key.to_string(), value.into())
}

/// The config keys phoenix owns for a guest (besides `net0`, compared as a property string),
/// and the value Proxmox VE assumes when a key is absent.
fn owned_keys(guest: &Guest) -> Vec<(&'static str, String, &'static str)> {
    let spec = &guest.spec;
    let mut keys: Vec<(&'static str, String, &'static str)> = Vec::new();
    let name_key = if guest.kind == GuestKind::Lxc { "hostname" } else { "name" };
    keys.push((name_key, guest.name.clone(), ""));
    if let Some(memory) = &spec.memory_mb {
        keys.push(("memory", memory.value.to_string(), "512"));
    }
    if let (Some(swap), GuestKind::Lxc) = (&spec.swap_mb, guest.kind) {
        keys.push(("swap", swap.value.to_string(), "512"));
    }
    if let Some(cores) = &spec.cores {
        keys.push(("cores", cores.value.to_string(), ""));
    }
    // Proxmox VE keeps one resolver list per guest: every NIC's servers, first NIC first.
    let mut servers: Vec<String> = Vec::new();
    for server in guest.nics.iter().flat_map(|n| &n.nameservers).map(|n| n.value.to_string()) {
        if !servers.contains(&server) {
            servers.push(server);
        }
    }
    if !servers.is_empty() {
        keys.push(("nameserver", servers.join(" "), ""));
    }
    keys.push(("onboot", if guest.boot.start_at_boot { "1" } else { "0" }.into(), "0"));
    if guest.boot.order.is_some() || guest.boot.delay.is_some() {
        let mut startup = Vec::new();
        if let Some(order) = guest.boot.order {
            startup.push(format!("order={order}"));
        }
        if let Some(delay) = guest.boot.delay {
            startup.push(format!("up={delay}"));
        }
        keys.push(("startup", startup.join(","), ""));
    }
    match guest.kind {
        GuestKind::Lxc => {
            // Features other than `nesting` are root's: then all of them go through the node.
            if !spec.features.is_empty() && super::node_conf::api_features(guest) {
                keys.push(("features", super::node_conf::features(guest), ""));
            }
        }
        GuestKind::Vm => {
            keys.push(("agent", "1".into(), "0"));
            if let Some(user) = &spec.cloud_init.user {
                keys.push(("ciuser", user.clone(), ""));
            }
            if !spec.cloud_init.ssh_keys.is_empty() {
                keys.push(("sshkeys", percent_encode(&spec.cloud_init.ssh_keys.join("\n")), ""));
            }
            if let Some(domain) = &spec.cloud_init.search_domain {
                keys.push(("searchdomain", domain.clone(), ""));
            }
            // VMs have one NIC in the configuration (network_config): its address is ipconfig0.
            let nic = guest.nic();
            let ip = match (&nic.address, nic.dhcp) {
                (Some(address), _) => Some(match &nic.gateway {
                    Some(gw) => format!("ip={},gw={}", address.value, gw.value),
                    None => format!("ip={}", address.value),
                }),
                (None, true) => Some("ip=dhcp".to_string()),
                _ => None,
            };
            if let Some(ip) = ip {
                keys.push(("ipconfig0", ip, ""));
            }
        }
    }
    keys
}

/// qemu-server stores `sshkeys` URL-encoded, as the API takes them.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

/// A step taking snapshot `name` of the guest (under the guest's lock).
pub(super) fn snapshot_step(node: &str, guest: &Guest, id: String, name: &str, reason: String, after: Vec<String>) -> Step {
    let path = format!("/nodes/{node}/{}/{}/snapshot", guest_segment(guest.kind), guest.id);
    let request = ApiRequest::new(Method::Post, path, vec![pair("snapname", name)]);
    let title = format!("snapshot {} {} as {name}", guest.kind.label(), guest.id);
    step(id, title, reason, vec![request], after, Some(format!("guest:{}", guest.id)), None)
}

pub(super) fn step(
    id: String,
    title: String,
    reason: String,
    requests: Vec<ApiRequest>,
    after: Vec<String>,
    lock: Option<String>,
    node: Option<String>,
) -> Step {
    let diff = requests.iter().map(|r| format!("{r}\n")).collect();
    let calls = requests.iter().map(ApiRequest::calls).sum::<usize>().max(1);
    Step { id, domain: Domain::Guests, title, reason, diff, action: Action::Pve { requests }, after, lock, node, calls }
}

/// The OS template's volume id: `storage:vztmpl/file` as written, or a path below a storage's
/// `template/cache/` (how the original names it) as that storage's volume.
fn template_volid(model: &Model, template: &str) -> Option<String> {
    if !template.starts_with('/') && template.contains(":vztmpl/") {
        return Some(template.to_string());
    }
    let storage = phoenix_model::validate::template_storage(model, template)?;
    Some(format!("{}:vztmpl/{}", storage.id, template.rsplit('/').next()?))
}

/// Where a VM's cloud image is imported from: the first storage holding `import` content,
/// the file named `.qcow2` (Ubuntu's `.img` cloud images are qcow2; the `import` content type
/// takes `.qcow2`, `.raw`, `.vmdk`).
fn image_volid(pve: &PveObserved, node: &str, image: &str) -> Option<String> {
    let (storage, _) = pve.storages_of(node).iter().find(|(_, s)| s.holds("import"))?;
    let stem = image.rsplit('/').next()?.trim_end_matches(".img").trim_end_matches(".qcow2");
    Some(format!("{storage}:import/{stem}.qcow2"))
}

pub fn steps(model: &Model, rendered: &Rendered, pve: &PveObserved) -> GuestPlan {
    let placements = model.guests.values().map(|g| (g.id, super::placement::decide(g, pve))).collect();
    let context = Context { model, pve, nics: crate::render::rendered_nics(rendered), placements };
    let mut plan = GuestPlan::default();
    let mut downloads: BTreeMap<String, String> = BTreeMap::new();
    for id in phoenix_model::graph::build(model).order {
        let guest = &model.guests[&id];
        // Creation needs only the clone source; a dependency must run before this guest
        // starts (see `start_steps`), not exist before it is created.
        let mut before: Vec<String> = match &guest.spec.origin {
            Origin::Clone { from, .. } => plan.ready.get(&from.value).cloned().into_iter().collect(),
            _ => Vec::new(),
        };
        if pve.guests.contains_key(&id) && !pve.guest_states.contains_key(&id) {
            continue; // It exists, but was not observed in detail: nothing to plan from.
        }
        plan.handled.insert(id);
        plan.nodes.insert(id, context.node(id).to_string());
        let mut moved = Vec::new();
        match (&context.placements[&id], pve.guest_states.get(&id)) {
            (super::placement::Placement::Migrate { from, to }, Some(state)) if state.kind == Some(guest.kind) && state.lock().is_none() => {
                let migrate = super::placement::migrate_step(guest, state, pve, from, to, before.clone());
                before = vec![migrate.id.clone()];
                plan.migrations.insert(id, migrate.id.clone());
                moved.push(migrate);
            }
            (super::placement::Placement::HeldByHa { node, declared, state }, _) => {
                plan.notes.push(super::placement::ha_note(guest, node, declared, state));
            }
            _ => {}
        }
        plan.steps.extend(moved);
        let found = match pve.guest_states.get(&id) {
            // Half-made by a worker that died: removed, then made again.
            Some(state) if state.kind == Some(guest.kind) && half_made(state) => {
                let mut steps = recover(&context, guest, state.lock().unwrap_or_default(), before);
                let removed = steps.last().map(|s| vec![s.id.clone()]).unwrap_or_default();
                create(&context, guest, removed, &mut downloads, &mut plan).map(|created| {
                    steps.extend(created);
                    steps
                })
            }
            Some(state) if state.kind == Some(guest.kind) => converge(&context, guest, state, before),
            Some(state) => Err(format!(
                "guest {id} exists on node {} as a{} {}, but is described as a{} {}",
                pve.node_of(id),
                if state.kind == Some(GuestKind::Lxc) { "n" } else { "" },
                state.kind.map_or("guest", GuestKind::label),
                if guest.kind == GuestKind::Lxc { "n" } else { "" },
                guest.kind.label()
            )),
            None => create(&context, guest, before, &mut downloads, &mut plan),
        };
        match found {
            Ok(steps) => {
                // Ready after its last step, or after its move when nothing else is to do.
                if let Some(last) = steps.last().map(|s| &s.id).or(plan.migrations.get(&id)) {
                    plan.ready.insert(id, last.clone());
                }
                plan.steps.extend(steps);
            }
            Err(reason) => {
                let blocked = Step {
                    domain: Domain::Guests,
                    ..Step::blocked(format!("guest:{id}"), Domain::Guests, format!("guest {id} ({})", guest.name), reason, Vec::new())
                };
                plan.ready.insert(id, blocked.id.clone());
                plan.steps.push(blocked);
            }
        }
    }
    plan
}

/// The steps that create a guest that does not exist, then convert or snapshot it.
fn create(
    context: &Context<'_>,
    guest: &Guest,
    mut after: Vec<String>,
    downloads: &mut BTreeMap<String, String>,
    plan: &mut GuestPlan,
) -> Result<Vec<Step>, String> {
    let (model, pve) = (context.model, context.pve);
    let id = guest.id;
    let mut steps = Vec::new();
    let node = Some(context.node(id).to_string());
    let mut params: Vec<(String, String)> = vec![pair("vmid", id.to_string())];
    let config_keys = owned_keys(guest);
    let nics: Vec<(String, String)> = context.nics.get(&id).into_iter().flatten().map(|(k, v)| pair(*k, *v)).collect();
    let storage = guest.spec.storage.as_ref().map(|s| s.value.clone());
    let needs = if guest.kind == GuestKind::Lxc { "rootdir" } else { "images" };
    if let Some(storage) = &storage {
        match pve.storages_of(context.node(id)).get(storage) {
            None => return Err(format!("storage `{storage}` does not exist on node {}", context.node(id))),
            Some(found) if !found.holds(needs) => return Err(format!("storage `{storage}` does not hold `{needs}` content")),
            Some(_) => {}
        }
    }
    // Where a clone lands (another node than its own when its source's storage is local).
    let mut cloned_on = None;
    let origin_step = match &guest.spec.origin {
        Origin::Unspecified => return Err(format!("guest {id} does not exist, and nothing says how to create it (PHX-GUEST-017)")),
        Origin::OsTemplate(template) => {
            let volid = template_volid(model, &template.value)
                .ok_or_else(|| format!("no storage of the node holds the OS template `{}`", template.value))?;
            after.extend(download(context, context.node(id), &volid, None, downloads, &mut steps));
            params.push(pair("ostemplate", &volid));
            params.push(pair("tags", CREATED_TAG));
            for (key, value, _) in &config_keys {
                params.push(pair(key, value));
            }
            if let Some(storage) = &storage {
                params.push(pair("storage", storage));
                let size = guest.spec.disk_gb.as_ref().map_or(4, |s| s.value);
                params.push(pair("rootfs", format!("{storage}:{size}")));
            }
            if let Some(unprivileged) = guest.spec.unprivileged {
                params.push(pair("unprivileged", if unprivileged { "1" } else { "0" }));
            }
            for (index, mount) in guest.spec.mounts.iter().filter(|m| matches!(m.source, MountSource::Volume { .. })).enumerate() {
                if let MountSource::Volume { storage, size_gb } = &mount.source {
                    params.push(pair(&format!("mp{index}"), format!("{}:{size_gb},mp={}", storage.value, mount.path.value)));
                }
            }
            params.extend(nics.iter().cloned());
            let request = ApiRequest::new(Method::Post, context.base(id, GuestKind::Lxc), params);
            let reason = format!("it does not exist: created from the OS template {volid}");
            step(
                format!("guest:{id}:create"),
                format!("create LXC {id} ({})", guest.name),
                reason,
                vec![request],
                after,
                Some(format!("guest:{id}")),
                node,
            )
        }
        Origin::CloudImage(image) => {
            let volid = image_volid(pve, context.node(id), &image.value).ok_or_else(|| {
                "no storage of the node holds `import` content, where the cloud image is downloaded to and imported from \
                 (add it to a file storage: pvesm set STORAGE --content iso,vztmpl,import)"
                    .to_string()
            })?;
            let release = model.host.ubuntu_release.as_deref().unwrap_or("noble");
            let url = format!("https://cloud-images.ubuntu.com/{release}/current/{}", image.value);
            after.extend(download(context, context.node(id), &volid, Some(&url), downloads, &mut steps));
            let storage = storage.clone().unwrap_or_else(|| "local-lvm".into());
            for (key, value, _) in &config_keys {
                params.push(pair(key, value));
            }
            params.extend([
                pair("tags", CREATED_TAG),
                pair("scsihw", "virtio-scsi-pci"),
                pair("scsi0", format!("{storage}:0,import-from={volid}")),
                pair("ide2", format!("{storage}:cloudinit")),
                pair("serial0", "socket"),
                pair("vga", "serial0"),
                pair("boot", "order=scsi0"),
            ]);
            params.extend(nics.iter().cloned());
            let mut requests = vec![ApiRequest::new(Method::Post, context.base(id, GuestKind::Vm), params)];
            if let Some(size) = &guest.spec.disk_gb {
                let path = format!("{}/{id}/resize", context.base(id, GuestKind::Vm));
                requests.push(ApiRequest::new(Method::Put, path, vec![pair("disk", "scsi0"), pair("size", format!("{}G", size.value))]));
            }
            let reason = format!("it does not exist: created from the cloud image {volid}, its disk imported, with a cloud-init drive, a serial console and the guest agent");
            step(
                format!("guest:{id}:create"),
                format!("create VM {id} ({})", guest.name),
                reason,
                requests,
                after,
                Some(format!("guest:{id}")),
                node,
            )
        }
        Origin::Clone { from, snapshot } => {
            let (made, lands_on) = clone(context, guest, from.value, snapshot.as_deref(), &config_keys, &nics, after, plan)?;
            cloned_on = Some(lands_on);
            made
        }
    };
    plan.created.insert(id);
    let mut last = vec![origin_step.id.clone()];
    steps.push(origin_step);
    // Cloned from local storage on its source's node: moved to its own node offline.
    if let Some(from) = cloned_on.filter(|n| n != context.node(id)) {
        let migrate = super::placement::move_new_clone(guest, &from, context.node(id), last.clone());
        last = vec![migrate.id.clone()];
        plan.migrations.insert(id, migrate.id.clone());
        steps.push(migrate);
    }
    if let Some(node) = super::node_conf::step(
        context.node(id),
        guest,
        None,
        last.clone(),
        &super::bind_mounts::notes(context.model, context.pve, guest, None),
    ) {
        last = vec![node.id.clone()];
        steps.push(node);
    }
    steps.extend(finish(context, guest, &GuestState::default(), last).unwrap_or_default());
    Ok(steps)
}

/// The download of a template or image to its storage as `node` sees it, once per plan and
/// node; the id to wait for.
fn download(
    context: &Context<'_>,
    node: &str,
    volid: &str,
    url: Option<&str>,
    downloads: &mut BTreeMap<String, String>,
    steps: &mut Vec<Step>,
) -> Option<String> {
    if context.pve.has_volume(node, volid) {
        return None;
    }
    // The first node's downloads keep their names; another node's say which node.
    let id = if node == context.pve.node { format!("download:{volid}") } else { format!("download:{node}:{volid}") };
    if downloads.contains_key(&id) {
        return Some(id);
    }
    let (storage, rest) = volid.split_once(':')?;
    let file = rest.split_once('/').map_or(rest, |(_, f)| f);
    let request = match url {
        None => ApiRequest::new(
            Method::Post,
            format!("/nodes/{node}/aplinfo"),
            vec![pair("storage", storage), pair("template", file)],
        ),
        Some(url) => ApiRequest::new(
            Method::Post,
            format!("/nodes/{node}/storage/{storage}/download-url"),
            vec![pair("content", "import"), pair("filename", file), pair("url", url)],
        ),
    };
    let reason = format!("{volid} is not on storage {storage}");
    let title = if node == context.pve.node { format!("download {file} to {storage}") } else { format!("download {file} to {storage} on {node}") };
    steps.push(step(id.clone(), title, reason, vec![request], Vec::new(), Some(id.clone()), None));
    downloads.insert(id.clone(), id.clone());
    Some(id)
}

/// A clone of `source`, then the keys phoenix owns and its disk grown to the described size;
/// and the node the clone lands on.
#[allow(clippy::too_many_arguments)]
fn clone(
    context: &Context<'_>,
    guest: &Guest,
    source: GuestId,
    snapshot: Option<&str>,
    config_keys: &[(&'static str, String, &'static str)],
    nics: &[(String, String)],
    after: Vec<String>,
    plan: &GuestPlan,
) -> Result<(Step, String), String> {
    let (model, pve, id) = (context.model, context.pve, guest.id);
    let source_template = match (pve.guest_states.get(&source), model.guests.get(&source)) {
        (Some(state), _) if !plan.created.contains(&source) => state.is_template(),
        (_, Some(described)) => described.is_template,
        (Some(state), None) => state.is_template(),
        (None, None) => return Err(format!("its clone source {source} exists neither on node {} nor in the configuration", plan.node_of(source, pve))),
    };
    let route = clone_route(context, guest, source, plan);
    let segment = guest_segment(guest.kind);
    let base = format!("/nodes/{}/{segment}", route.lands_on);
    let name_key = if guest.kind == GuestKind::Lxc { "hostname" } else { "name" };
    let mut params = vec![pair("newid", id.to_string()), pair(name_key, &guest.name)];
    if route.lands_on != route.source_node {
        params.push(pair("target", &route.lands_on));
    }
    // A template is cloned linked (a container) or in full (a VM, as the original did); any
    // other source in full, at its snapshot. A clone that moves to another node afterwards is
    // full: a linked clone's base stays on the source's node.
    let full = guest.kind == GuestKind::Vm || !source_template || route.lands_on != context.node(id);
    if full {
        params.push(pair("full", "1"));
        if let Some(storage) = &guest.spec.storage {
            params.push(pair("storage", &storage.value));
        }
    }
    if let Some(snapshot) = snapshot {
        params.push(pair("snapname", snapshot));
    }
    let clone_path = format!("/nodes/{}/{segment}/{source}/clone", route.source_node);
    let mut requests = vec![ApiRequest::new(Method::Post, clone_path, params)];
    let mut config: Vec<(String, String)> = config_keys.iter().filter(|(k, _, _)| *k != name_key).map(|(k, v, _)| pair(k, v)).collect();
    config.extend(nics.iter().cloned());
    config.push(pair("tags", CREATED_TAG));
    let method = if guest.kind == GuestKind::Lxc { Method::Put } else { Method::Post };
    requests.push(ApiRequest::new(method, format!("{base}/{id}/config"), config));
    let disk = if guest.kind == GuestKind::Lxc { "rootfs" } else { "scsi0" };
    let source_bytes = match pve.guest_states.get(&source).filter(|_| !plan.created.contains(&source)) {
        Some(state) => state.disk_bytes(disk),
        None => model
            .guests
            .get(&source)
            .and_then(|s| s.spec.disk_gb.as_ref())
            .map(|s| s.value * GIB)
            .or((guest.kind == GuestKind::Lxc).then_some(4 * GIB)),
    };
    if let Some(size) = &guest.spec.disk_gb {
        // qemu-server takes the current size as done; pve-container refuses it.
        if source_bytes.is_none_or(|s| s < size.value * GIB) && (guest.kind == GuestKind::Vm || source_bytes.is_some()) {
            let path = format!("{base}/{id}/resize");
            requests.push(ApiRequest::new(Method::Put, path, vec![pair("disk", disk), pair("size", format!("{}G", size.value))]));
        }
    }
    let how = match (full, snapshot) {
        (false, _) => "a linked clone of the template".to_string(),
        (true, Some(s)) => format!("a full clone at its snapshot {s}"),
        (true, None) => "a full clone".to_string(),
    };
    let reason = format!("it does not exist: {how} of guest {source}, then the configured settings");
    // pve-container marks the source `lock: disk` for the whole clone (`API2/LXC.pm`
    // `clone_vm`), so a container's clones of one source run one after another; qemu-server
    // takes the source's config lock shared when the source is not running
    // (`lock_config_shared` in `API2/Qemu.pm` `clone_vm`), exclusive when it runs: clones of
    // a VM template run together.
    let source_template =
        model.guests.get(&source).is_some_and(|s| s.is_template) || pve.guest_states.get(&source).is_some_and(GuestState::is_template);
    let lock = match guest.kind {
        GuestKind::Vm if source_template => format!("guest:{id}"),
        _ => format!("guest:{source}"),
    };
    let title = format!("create {} {id} ({}) as a clone of {source}", guest.kind.label(), guest.name);
    let made = step(format!("guest:{id}:create"), title, reason, requests, after, Some(lock), Some(route.source_node));
    Ok((made, route.lands_on))
}

/// Where a clone is made and where it lands.
struct CloneRoute {
    /// The node holding the source (the clone request goes there).
    source_node: String,
    /// Where the new guest is when the clone ends: the declared node when the source's disks
    /// are all on shared storage (`target`; qemu-server and pve-container refuse it otherwise,
    /// "can't clone VM to node '$target' (VM uses local storage)"), else the source's node.
    lands_on: String,
}

fn clone_route(context: &Context<'_>, guest: &Guest, source: GuestId, plan: &GuestPlan) -> CloneRoute {
    let pve = context.pve;
    let source_node = plan.node_of(source, pve).to_string();
    let declared = context.node(guest.id).to_string();
    if source_node == declared {
        return CloneRoute { source_node, lands_on: declared };
    }
    let storages = pve.storages_of(&source_node);
    let shared = |sid: &str| storages.get(sid).is_some_and(|s| s.shared);
    let all_shared = match pve.guest_states.get(&source).filter(|_| !plan.created.contains(&source)) {
        Some(state) => state
            .config
            .iter()
            .filter(|(k, v)| is_disk_key(k) && !v.contains("media=cdrom"))
            .all(|(_, v)| v.split_once(':').is_some_and(|(sid, _)| shared(sid))),
        None => context.model.guests.get(&source).and_then(|g| g.spec.storage.as_ref()).is_some_and(|s| shared(&s.value)),
    };
    let lands_on = if all_shared { declared } else { source_node.clone() };
    CloneRoute { source_node, lands_on }
}


/// The snapshot a clone source is cloned at, and a template's conversion, when not done yet.
fn finish(context: &Context<'_>, guest: &Guest, state: &GuestState, after: Vec<String>) -> Option<Vec<Step>> {
    let id = guest.id;
    let base = format!("{}/{id}", context.base(id, guest.kind));
    let lock = Some(format!("guest:{id}"));
    let mut steps = Vec::new();
    if guest.is_template && !state.is_template() {
        let request = ApiRequest::new(Method::Post, format!("{base}/template"), Vec::new());
        let request = match guest.kind {
            GuestKind::Lxc => {
                request.then(Then::Config { path: format!("{base}/config"), key: "template".into(), value: "1".into(), seconds: 600 })
            }
            GuestKind::Vm => request,
        };
        let mut reason = "it is described as a template (`is_template`)".to_string();
        let mut requests = Vec::new();
        if state.running() {
            // Neither pve-container nor qemu-server converts a running guest.
            reason.push_str("; it runs, so it is shut down first");
            let shutdown = vec![pair("forceStop", "1"), pair("timeout", "60")];
            requests.push(ApiRequest::new(Method::Post, format!("{base}/status/shutdown"), shutdown));
        }
        requests.push(request);
        steps.push(step(
            format!("guest:{id}:template"),
            format!("convert {} {id} to a template", guest.kind.label()),
            reason,
            requests,
            after,
            lock,
            None,
        ));
    } else if let Some(name) = guest.template_snapshot.as_ref().filter(|n| !guest.is_template && !state.snapshots.contains(*n)) {
        let reason = format!("its clones start from snapshot {name} (`template_snapshot_name`)");
        steps.push(snapshot_step(context.node(id), guest, format!("guest:{id}:snapshot"), name, reason, after));
    }
    (!steps.is_empty()).then_some(steps)
}

/// Whether a guest is half-made: created or cloned by a worker that died (its `create` or
/// `clone` lock left, nothing running for it).
fn half_made(state: &GuestState) -> bool {
    matches!(state.lock(), Some("create" | "clone")) && state.active_tasks == 0
}

/// A guest whose lock a dead worker left: unlocked on the node; a half-made one (`create`,
/// `clone`) then destroyed, to be made again by the next run (which plans it as absent).
fn recover(context: &Context<'_>, guest: &Guest, lock: &str, after: Vec<String>) -> Vec<Step> {
    let id = guest.id;
    let folder = if guest.kind == GuestKind::Lxc { "lxc" } else { "qemu-server" };
    // Where it is now (a half-made guest is not migrated first).
    let place = crate::deploy::Place::host(format!("/etc/pve/nodes/{}/{folder}/{id}.conf", context.pve.node_of(id)));
    let unlock = Step {
        id: format!("guest:{id}:unlock"),
        domain: Domain::Guests,
        title: format!("unlock {} {id} ({lock}, left by an operation that did not finish)", guest.kind.label()),
        reason: format!("its config says `lock: {lock}` and no task runs for it: removed as `pct unlock`/`qm unlock` does"),
        diff: format!("- lock: {lock}\n"),
        action: Action::NodeConf { place, set: Vec::new(), raw: Vec::new(), remove: vec!["lock".into()] },
        after,
        lock: Some(format!("guest:{id}")),
        node: None,
        calls: 2,
    };
    let mut steps = vec![unlock];
    if matches!(lock, "create" | "clone") {
        let path = format!("/nodes/{}/{}/{id}", context.pve.node_of(id), guest_segment(guest.kind));
        let request = ApiRequest::new(Method::Delete, path, vec![pair("purge", "1")]);
        let reason = "it is half-made (its creation did not finish): destroyed with its disks, then made again".to_string();
        steps.push(step(
            format!("guest:{id}:remove"),
            format!("remove the half-made {} {id}", guest.kind.label()),
            reason,
            vec![request],
            vec![format!("guest:{id}:unlock")],
            Some(format!("guest:{id}")),
            None,
        ));
    }
    steps
}

/// The steps that bring an existing guest to its description: the keys phoenix owns, its NIC,
/// its disk grown; then a snapshot or the template conversion.
fn converge(context: &Context<'_>, guest: &Guest, state: &GuestState, after: Vec<String>) -> Result<Vec<Step>, String> {
    let id = guest.id;
    if let Some(lock) = state.lock() {
        if state.active_tasks > 0 {
            return Err(format!("guest {id} is locked ({lock}) by an operation still running: run sync again once it ends"));
        }
        // The lock a worker that died left behind: `lock` removed as `pct unlock` / `qm unlock`
        // do (on the node), and a half-made guest (`create`, `clone`) removed and made again.
        if !matches!(lock, "create" | "clone" | "disk" | "snapshot" | "snapshot-delete") {
            return Err(format!("guest {id} is locked ({lock}): phoenix leaves a lock it does not take; `pct unlock {id}` / `qm unlock {id}` when nothing runs"));
        }
        return Ok(recover(context, guest, lock, after));
    }
    let mut steps = Vec::new();
    let base = format!("{}/{id}", context.base(id, guest.kind));
    let lock = Some(format!("guest:{id}"));
    if !state.is_template() {
        let mut changes = Vec::new();
        let mut diff = String::new();
        for (key, value, default) in owned_keys(guest) {
            let current = state.config.get(key).map(String::as_str).unwrap_or(default);
            if current != value {
                diff.push_str(&format!("- {key}: {current}\n+ {key}: {value}\n"));
                changes.push(pair(key, value));
            }
        }
        if let Some(rendered) = context.nics.get(&id) {
            for change in super::pve::nic_changes(Some(&state.config), rendered) {
                diff.push_str(&change.diff());
                changes.push(pair(&change.key, &change.value));
            }
        }
        let waiting: Vec<String> =
            changes.iter().map(|(k, _)| k.clone()).filter(|k| state.running() && waits_for_start(guest.kind, k)).collect();
        let mut requests = Vec::new();
        if !changes.is_empty() {
            let method = if guest.kind == GuestKind::Lxc { Method::Put } else { Method::Post };
            requests.push(ApiRequest::new(method, format!("{base}/config"), changes));
        }
        let disk = if guest.kind == GuestKind::Lxc { "rootfs" } else { "scsi0" };
        if let (Some(size), Some(current)) = (&guest.spec.disk_gb, state.disk_bytes(disk)) {
            if current < size.value * GIB {
                diff.push_str(&format!("- {disk} size: {current} bytes\n+ {disk} size: {}G\n", size.value));
                requests.push(ApiRequest::new(
                    Method::Put,
                    format!("{base}/resize"),
                    vec![pair("disk", disk), pair("size", format!("{}G", size.value))],
                ));
            }
        }
        let mut reason = "its settings differ from the description".to_string();
        if !waiting.is_empty() {
            reason.push_str(&format!(
                "; it runs, so Proxmox VE keeps {} pending until its next start (`phoenix restart {id}`)",
                waiting.join(", ")
            ));
        }
        if !requests.is_empty() {
            let mut found = step(
                format!("guest:{id}:config"),
                format!("converge {} {id} ({})", guest.kind.label(), guest.name),
                reason,
                requests,
                after.clone(),
                lock,
                None,
            );
            found.diff = diff;
            steps.push(found);
        }
    }
    let after = steps.last().map(|s: &Step| vec![s.id.clone()]).unwrap_or(after);
    let node = if state.is_template() {
        None
    } else {
        super::node_conf::step(
            context.node(id),
            guest,
            Some(state),
            after.clone(),
            &super::bind_mounts::notes(context.model, context.pve, guest, Some(state)),
        )
    };
    let after = node.as_ref().map(|s| vec![s.id.clone()]).unwrap_or(after);
    steps.extend(node);
    steps.extend(finish(context, guest, state, after).unwrap_or_default());
    Ok(steps)
}

/// Above this many starts, a boot-order group is joined by a step of its own.
const BOOT_GROUP_JOIN: usize = 8;

/// The start steps: every guest that is not a template and does not run (or is created now),
/// by boot order; a VM waited for until its agent answers, each group's boot delay waited
/// (unless `boot_delays` is off).
pub fn start_steps(model: &Model, pve: &PveObserved, guests: &GuestPlan, earlier: &[Step], boot_delays: bool) -> Vec<Step> {
    let mut starting: Vec<&Guest> = model
        .guests
        .values()
        .filter(|g| !g.is_template && guests.handled.contains(&g.id))
        .filter(|g| guests.created.contains(&g.id) || pve.guest_states.get(&g.id).is_some_and(|s| !s.running() && !s.is_template()))
        .collect();
    starting.sort_by_key(|g| (g.boot.order.unwrap_or(u32::MAX), g.id));
    // Each guest's firewall and NIC steps so far, found in one pass (per guest it would be
    // quadratic in a large inventory).
    let mut own_steps: BTreeMap<GuestId, Vec<String>> = BTreeMap::new();
    for step in earlier {
        let guest = step.id.strip_prefix("nic:").or_else(|| step.id.strip_prefix("firewall:guest:").and_then(|rest| rest.split(':').next()));
        if let Some(id) = guest.and_then(|id| id.parse::<GuestId>().ok()) {
            own_steps.entry(id).or_default().push(step.id.clone());
        }
    }
    let mut steps: Vec<Step> = Vec::new();
    let mut planned_starts: BTreeSet<String> = BTreeSet::new();
    let mut previous_group: Vec<String> = Vec::new();
    let mut group: Vec<String> = Vec::new();
    let mut group_order = None;
    for guest in starting {
        let order = guest.boot.order.unwrap_or(u32::MAX);
        if group_order != Some(order) {
            if let Some(done) = group_order {
                previous_group = std::mem::take(&mut group);
                // A large group is joined by one step without requests, so the next group
                // waits for it: n + m dependencies instead of n * m.
                if previous_group.len() > BOOT_GROUP_JOIN {
                    let title = format!("boot order {done} started");
                    let reason = "the next boot order starts after every guest of this one".to_string();
                    let join = step(format!("boot-order:{done}"), title, reason, Vec::new(), previous_group, None, None);
                    previous_group = vec![join.id.clone()];
                    steps.push(join);
                }
            }
            group_order = Some(order);
        }
        let id = guest.id;
        let mut after: Vec<String> = guests.ready.get(&id).cloned().into_iter().collect();
        after.extend(own_steps.get(&id).into_iter().flatten().cloned());
        after.extend(previous_group.iter().cloned());
        after.extend(guest.dependencies.iter().map(|d| format!("guest:{}:start", d.value)).filter(|d| planned_starts.contains(d)));
        after.sort();
        after.dedup();
        let base = format!("/nodes/{}/{}/{id}", guests.node_of(id, pve), guest_segment(guest.kind));
        let mut request = ApiRequest::new(Method::Post, format!("{base}/status/start"), Vec::new());
        let agent = guests.created.contains(&id)
            || pve.guest_states.get(&id).is_some_and(|s| s.config.get("agent").is_some_and(|a| a.starts_with('1')));
        if guest.kind == GuestKind::Vm && agent {
            request = request.then(Then::Agent { path: format!("{base}/agent/ping"), seconds: 300 });
        }
        let mut requests = vec![request];
        if let Some(delay) = guest.boot.delay.filter(|d| *d > 0 && boot_delays) {
            requests.push(
                ApiRequest::new(Method::Get, format!("{base}/status/current"), Vec::new()).then(Then::Pause { seconds: delay.into() }),
            );
        }
        let reason = match guest.boot.order {
            Some(order) => format!("it is not running (boot order {order})"),
            None => "it is not running".to_string(),
        };
        let title = format!("start {} {id} ({})", guest.kind.label(), guest.name);
        steps.push(step(format!("guest:{id}:start"), title, reason, requests, after, Some(format!("guest:{id}")), None));
        planned_starts.insert(format!("guest:{id}:start"));
        group.push(format!("guest:{id}:start"));
    }
    steps
}

/// One described guest as `phoenix status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GuestStatus {
    pub id: GuestId,
    pub kind: GuestKind,
    pub name: String,
    /// `running`, `stopped`, `template` or `absent`.
    pub state: String,
    pub uptime: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock: Option<String>,
    /// Changes made but waiting for its next start.
    pub pending: Vec<PendingChange>,
    /// What `phoenix sync guests` would change (its steps' titles), empty when none.
    pub drift: Vec<String>,
}

/// Each described guest's state, uptime, lock and drift, from what was observed.
pub fn status(model: &Model, rendered: &Rendered, pve: &PveObserved) -> Vec<GuestStatus> {
    let plan = steps(model, rendered, pve);
    let starts = start_steps(model, pve, &plan, &plan.steps, false);
    model
        .guests
        .values()
        .map(|guest| {
            let state = pve.guest_states.get(&guest.id);
            let own = |s: &&Step| s.id == format!("guest:{}", guest.id) || s.id.starts_with(&format!("guest:{}:", guest.id));
            let drift = plan.steps.iter().chain(&starts).filter(own).map(|s| s.title.clone()).collect();
            GuestStatus {
                id: guest.id,
                kind: guest.kind,
                name: guest.name.clone(),
                state: match state {
                    None => "absent".into(),
                    Some(s) if s.is_template() => "template".into(),
                    Some(s) => s.status.clone(),
                },
                uptime: state.map_or(0, |s| s.uptime),
                lock: state.and_then(|s| s.lock().map(str::to_string)),
                pending: state.map(|s| s.pending.clone()).unwrap_or_default(),
                drift,
            }
        })
        .collect()
}

/// The status table for a terminal.
pub fn status_text(rows: &[GuestStatus]) -> String {
    let mut out = format!("{:<10} {:<4} {:<28} {:<9} {:>9}  {}\n", "ID", "KIND", "NAME", "STATE", "UPTIME", "DRIFT");
    for row in rows {
        let drift = match (&row.lock, row.drift.is_empty()) {
            (Some(lock), _) => format!("locked ({lock})"),
            (None, true) => "none".to_string(),
            (None, false) => row.drift.join("; "),
        };
        out.push_str(&format!("{:<10} {:<4} {:<28} {:<9} {:>8}s  {drift}\n", row.id, row.kind.label(), row.name, row.state, row.uptime));
        if !row.pending.is_empty() {
            let changes: Vec<String> = row.pending.iter().map(PendingChange::text).collect();
            out.push_str(&format!("{:<10} pending until its next start: {} (`phoenix restart {}`)\n", "", changes.join(", "), row.id));
        }
    }
    out
}
