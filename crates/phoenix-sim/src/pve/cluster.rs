//! The cluster around the nodes: which node holds each guest (its config's folder,
//! `nodes/<node>/{lxc,qemu-server}/<vmid>.conf`, as pmxcfs keeps it), `GET /cluster/resources`
//! (pve-manager `PVE/API2/Cluster.pm` resources, `PVE::API2Tools::extract_vm_stats`),
//! migration (qemu-server `API2/Qemu.pm` migrate_vm and `QemuMigrate.pm` prepare /
//! scan_local_volumes; pve-container `API2/LXC.pm` migrate_vm and `LXC/Migrate.pm` prepare),
//! and HA's resources (pve-ha-manager `API2/HA/Resources.pm`: `ha/resources.cfg` in the cluster
//! file system; `migrate`/`relocate` queue a CRM command which the LRM carries out as a
//! migration task of the guest's node). A request to `/nodes/{node}/...` runs on that node
//! (`proxyto => 'node'`): the caller sets `PveSim::node` for it.
//! What it must not do: decide anything HA's CRM decides beyond carrying out a queued move.

use super::guest::{GuestConf, GuestKind};
use super::storage::{disk_of, is_disk_key};
use super::tasks::{Effect, TaskOutcome};
use super::{Failure, Params, PveSim};
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// The cluster file system's HA resource list (`PVE::HA::Config::read_resources_config`).
pub const HA_RESOURCES: &str = "ha/resources.cfg";

/// The cluster's corosync configuration in the cluster file system.
pub const COROSYNC_CONF: &str = "corosync.conf";

/// `corosync.conf` for these nodes, laid out as pve-cluster writes it.
fn corosync_conf(nodes: &[(&str, Option<std::net::IpAddr>)]) -> String {
    let mut out = String::from("logging {\n  debug: off\n  to_syslog: yes\n}\n\nnodelist {\n");
    for (index, (name, address)) in nodes.iter().enumerate() {
        let ring = address.map_or_else(|| name.to_string(), |a| a.to_string());
        out.push_str(&format!(
            "  node {{\n    name: {name}\n    nodeid: {}\n    quorum_votes: 1\n    ring0_addr: {ring}\n  }}\n",
            index + 1
        ));
    }
    out.push_str("}\n\nquorum {\n  provider: corosync_votequorum\n}\n\n");
    out.push_str("totem {\n  cluster_name: phoenix\n  config_version: 1\n  interface {\n    linknumber: 0\n  }\n");
    out.push_str("  ip_version: ipv4-6\n  link_mode: passive\n  secauth: on\n  version: 2\n}\n");
    out
}

/// The `name:` of each `node { }` in `nodelist { }`.
fn nodelist_names(text: &str) -> BTreeSet<String> {
    let (mut depth, mut in_list, mut names) = (0usize, false, BTreeSet::new());
    for line in text.lines().map(|l| l.split('#').next().unwrap_or_default().trim()) {
        if let Some(section) = line.strip_suffix('{') {
            depth += 1;
            if depth == 1 {
                in_list = section.trim() == "nodelist";
            }
        } else if line == "}" {
            depth = depth.saturating_sub(1);
        } else if let Some(name) = line.strip_prefix("name:").filter(|_| in_list && depth == 2) {
            names.insert(name.trim().to_string());
        }
    }
    names
}

fn die(message: impl Into<String>) -> Failure {
    Failure::Die(message.into())
}

/// An HA resource: `vm:100` or `ct:100`, its `state` (default `started`), its other keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaResource {
    pub sid: String,
    pub vmid: u32,
    pub kind: GuestKind,
    pub keys: std::collections::BTreeMap<String, String>,
}

impl HaResource {
    /// `started`, `stopped`, `enabled`, `disabled` or `ignored` (default `started`).
    pub fn state(&self) -> &str {
        self.keys.get("state").map_or("started", String::as_str)
    }

    /// `PVE::HA::Config::vm_is_ha_managed`: any state but `ignored`.
    pub fn managed(&self) -> bool {
        self.state() != "ignored"
    }
}

/// `ha/resources.cfg`: `vm: 100` sections with tab-indented `key value` lines.
pub fn parse_ha(text: &str) -> Vec<HaResource> {
    let mut found: Vec<HaResource> = Vec::new();
    for line in text.lines() {
        if let Some((kind, id)) = line.split_once(':').filter(|_| !line.starts_with(['\t', ' '])) {
            let (Ok(vmid), Some(kind)) = (id.trim().parse(), ha_kind(kind.trim())) else { continue };
            found.push(HaResource { sid: format!("{}:{vmid}", kind_word(kind)), vmid, kind, keys: Default::default() });
        } else if let (Some(resource), Some((key, value))) = (found.last_mut(), line.trim().split_once(' ')) {
            resource.keys.insert(key.into(), value.trim().into());
        }
    }
    found
}

fn print_ha(resources: &[HaResource]) -> String {
    let mut out = String::new();
    for r in resources {
        out.push_str(&format!("{}: {}\n", kind_word(r.kind), r.vmid));
        for (key, value) in &r.keys {
            out.push_str(&format!("\t{key} {value}\n"));
        }
        out.push('\n');
    }
    out
}

fn ha_kind(word: &str) -> Option<GuestKind> {
    match word {
        "vm" => Some(GuestKind::Qemu),
        "ct" => Some(GuestKind::Lxc),
        _ => None,
    }
}

fn kind_word(kind: GuestKind) -> &'static str {
    match kind {
        GuestKind::Qemu => "vm",
        GuestKind::Lxc => "ct",
    }
}

/// How a migration moves a guest (the handlers' `online` and `restart`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Offline,
    Online,
    Restart,
}

impl PveSim {
    /// A cluster of these nodes, each with its ring0 address (the first is the one the API is
    /// reached on): `corosync.conf` lists them, as `pvecm create` and `pvecm add` leave it
    /// (pve-cluster `PVE/Corosync.pm` create_conf / add_corosync_member).
    pub fn cluster(nodes: &[(&str, Option<std::net::IpAddr>)]) -> PveSim {
        let mut sim = PveSim::new(nodes.first().map_or("pve", |n| n.0));
        if nodes.len() > 1 {
            sim.files.insert(COROSYNC_CONF.into(), corosync_conf(nodes));
        }
        sim
    }

    /// The cluster's nodes: `corosync.conf`'s nodelist, or this node alone outside a cluster
    /// (what pmxcfs's `.members` lists).
    pub fn members(&self) -> BTreeSet<String> {
        let text = self.files.get(COROSYNC_CONF).map(String::as_str).unwrap_or_default();
        let mut read = self.members_read.borrow_mut();
        if read.0 != text {
            *read = (text.to_string(), nodelist_names(text));
        }
        if read.1.is_empty() {
            BTreeSet::from([self.node.clone()])
        } else {
            read.1.clone()
        }
    }

    /// The node whose folder holds the guest's config.
    pub fn node_of(&self, vmid: u32) -> Option<String> {
        let holds = |node: &String| [GuestKind::Lxc, GuestKind::Qemu].iter().any(|kind| self.files.contains_key(&kind.config_path(node, vmid)));
        self.members().into_iter().find(holds)
    }

    pub(crate) fn guest_on(&self, node: &str, vmid: u32) -> Option<(GuestKind, GuestConf)> {
        [GuestKind::Lxc, GuestKind::Qemu]
            .into_iter()
            .find_map(|kind| self.files.get(&kind.config_path(node, vmid)).map(|text| (kind, GuestConf::parse(text))))
    }

    /// Every guest of the cluster: (node, vmid, kind, config).
    pub fn cluster_guests(&self) -> Vec<(String, u32, GuestKind, GuestConf)> {
        let mut found = Vec::new();
        for node in &self.members() {
            for kind in [GuestKind::Lxc, GuestKind::Qemu] {
                let prefix = format!("nodes/{node}/{}/", kind.folder());
                for (path, text) in self.files.range(prefix.clone()..).take_while(|(p, _)| p.starts_with(&prefix)) {
                    if let Some(vmid) = path[prefix.len()..].strip_suffix(".conf").and_then(|v| v.parse().ok()) {
                        found.push((node.clone(), vmid, kind, GuestConf::parse(text)));
                    }
                }
            }
        }
        found.sort_by_key(|(_, vmid, _, _)| *vmid);
        found
    }

    /// `GET /cluster/resources`: guests (`id` `qemu/100`, `node`, `status`, `hastate` when HA
    /// manages it), nodes and each node's storages, filtered by `type` (vm, node, storage).
    pub(super) fn resources(&self, params: &Params) -> Result<Value, Failure> {
        let wanted = params.get("type").map(String::as_str);
        let mut list = Vec::new();
        if wanted.is_none_or(|t| t == "vm") {
            let ha = self.ha_resources();
            for (node, vmid, kind, conf) in self.cluster_guests() {
                let segment = kind.segment();
                let name_key = if kind == GuestKind::Lxc { "hostname" } else { "name" };
                let status = if self.running.contains(&vmid) { "running" } else { "stopped" };
                let mut entry = json!({
                    "id": format!("{segment}/{vmid}"), "type": segment, "node": node, "vmid": vmid, "status": status,
                    "name": conf.keys.get(name_key).cloned().unwrap_or_else(|| format!("{}{vmid}", super::lifecycle::word(kind))),
                    "template": u8::from(conf.keys.get("template").is_some_and(|t| t == "1")),
                    "uptime": self.uptime(vmid),
                });
                if let Some(lock) = conf.keys.get("lock") {
                    entry["lock"] = json!(lock);
                }
                if let Some(resource) = ha.iter().find(|r| r.vmid == vmid) {
                    entry["hastate"] = json!(resource.state());
                }
                list.push(entry);
            }
        }
        if wanted.is_none_or(|t| t == "node") {
            for node in &self.members() {
                list.push(json!({ "id": format!("node/{node}"), "type": "node", "node": node, "status": "online" }));
            }
        }
        if wanted.is_none_or(|t| t == "storage") {
            for node in &self.members() {
                for storage in self.storages().into_iter().filter(|s| s.enabled_on(node)) {
                    list.push(json!({
                        "id": format!("storage/{node}/{}", storage.id), "type": "storage", "node": node,
                        "storage": storage.id, "status": "available", "shared": u8::from(storage.shared()),
                        "content": storage.content.join(","), "plugintype": storage.kind,
                    }));
                }
            }
        }
        Ok(Value::Array(list))
    }

    /// The HA resources, as `ha/resources.cfg` lists them.
    pub fn ha_resources(&self) -> Vec<HaResource> {
        self.files.get(HA_RESOURCES).map(|t| parse_ha(t)).unwrap_or_default()
    }

    fn managed_by_ha(&self, vmid: u32) -> bool {
        self.ha_resources().iter().any(|r| r.vmid == vmid && r.managed())
    }

    /// `GET /cluster/ha/resources` (index): every resource with its `sid`, `type` and keys.
    pub(super) fn ha_index(&self, params: &Params) -> Result<Value, Failure> {
        let wanted = params.get("type").map(String::as_str);
        let mut list = Vec::new();
        for resource in self.ha_resources().into_iter().filter(|r| wanted.is_none_or(|t| t == kind_word(r.kind))) {
            let mut entry = json!({ "sid": resource.sid, "type": kind_word(resource.kind), "state": resource.state() });
            for (key, value) in &resource.keys {
                entry[key] = json!(value);
            }
            list.push(entry);
        }
        Ok(Value::Array(list))
    }

    /// `POST /cluster/ha/resources` (create): the guest must exist; a resource once.
    pub(super) fn ha_add(&mut self, params: &Params) -> Result<Value, Failure> {
        let sid = params.get("sid").cloned().unwrap_or_default();
        let (vmid, kind) = self.ha_guest(&sid)?;
        let mut all = self.ha_resources();
        if all.iter().any(|r| r.vmid == vmid) {
            return Err(die(format!("resource ID '{}:{vmid}' already defined", kind_word(kind))));
        }
        let mut keys = std::collections::BTreeMap::new();
        for key in ["state", "group", "max_restart", "max_relocate", "comment", "failback"] {
            if let Some(value) = params.get(key) {
                keys.insert(key.to_string(), value.clone());
            }
        }
        all.push(HaResource { sid: format!("{}:{vmid}", kind_word(kind)), vmid, kind, keys });
        self.files.insert(HA_RESOURCES.into(), print_ha(&all));
        Ok(Value::Null)
    }

    /// A `sid` (`vm:100`, `ct:100` or `100`) as the guest it names (`parse_sid`, which looks the
    /// guest up in the cluster's vmlist: "no such VM" otherwise).
    fn ha_guest(&self, sid: &str) -> Result<(u32, GuestKind), Failure> {
        let (word, id) = sid.split_once(':').map_or((None, sid), |(w, id)| (Some(w), id));
        let vmid: u32 = id.parse().map_err(|_| die(format!("unable to parse service id '{sid}'")))?;
        let node = self.node_of(vmid).ok_or_else(|| die(format!("no such VM '{vmid}'")))?;
        let (kind, _) = self.guest_on(&node, vmid).expect("the guest is on its node");
        if word.is_some_and(|w| ha_kind(w) != Some(kind)) {
            return Err(die(format!("unable to parse service id '{sid}'")));
        }
        Ok((vmid, kind))
    }

    /// `POST /cluster/ha/resources/{sid}/{migrate,relocate}`: the resource must be configured
    /// (not `ignored`); the CRM's command is carried out as the guest node's migration task
    /// (online for a running VM, restart for a running container; `relocate` stops and starts).
    pub(super) fn ha_move(&mut self, params: &Params, relocate: bool) -> Result<Value, Failure> {
        let sid = params.get("sid").cloned().unwrap_or_default();
        let target = params.get("node").cloned().unwrap_or_default();
        let (vmid, kind) = self.ha_guest(&sid)?;
        let resource = self.ha_resources().into_iter().find(|r| r.vmid == vmid);
        let Some(resource) = resource.filter(HaResource::managed) else {
            return Err(die(format!("service '{sid}' is not managed by the HA manager")));
        };
        if !self.members().contains(&target) {
            return Err(die(format!("no such cluster node '{target}'")));
        }
        let source = self.node_of(vmid).expect("ha_guest found it");
        if source != target {
            let running = self.running.contains(&vmid);
            let mode = match (running, kind, relocate) {
                (false, _, _) => Mode::Offline,
                (true, GuestKind::Qemu, false) => Mode::Online,
                (true, _, _) => Mode::Restart,
            };
            let entry = std::mem::replace(&mut self.node, source);
            let started = self.start_migration(kind, vmid, &target, mode, "root@pam");
            self.node = entry;
            started?;
        }
        Ok(json!({ "sid": resource.sid, "requested-node": target }))
    }

    /// What HA's recovery does when a node fails: the guest's config moves to `target` (the
    /// fenced node's guests are stolen: pve-ha-manager `PVE/HA/Manager.pm` next_state_recovery,
    /// `$haenv->steal_service`), and it runs there if it ran before (a `started` resource is
    /// started on the recovery node). For tests of a guest HA moved.
    pub fn ha_recover(&mut self, vmid: u32, target: &str) -> Result<(), String> {
        let source = self.node_of(vmid).ok_or(format!("no guest {vmid}"))?;
        let (kind, conf) = self.guest_on(&source, vmid).expect("the guest is on its node");
        self.files.remove(&kind.config_path(&source, vmid));
        self.files.insert(kind.config_path(target, vmid), conf.to_text());
        Ok(())
    }

    /// `POST /nodes/{node}/{qemu,lxc}/{vmid}/migrate`, on the node the request names.
    pub(super) fn migrate(&mut self, kind: GuestKind, vmid: u32, params: &Params) -> Result<Value, Failure> {
        let target = params.get("target").cloned().unwrap_or_default();
        if target == self.node {
            return Err(die("target is local node."));
        }
        if !self.members().contains(&target) {
            return Err(die(format!("no such cluster node '{target}'")));
        }
        self.config_text(&kind.config_path(&self.node, vmid))?;
        let flag = |key: &str| params.get(key).is_some_and(|v| v == "1");
        let running = self.running.contains(&vmid);
        let mode = match kind {
            GuestKind::Qemu if running && !flag("online") => return Err(die("can't migrate running VM without --online")),
            GuestKind::Qemu if running => Mode::Online,
            GuestKind::Lxc if running && !flag("online") && !flag("restart") => {
                return Err(die("can't migrate running container without --online or --restart"))
            }
            GuestKind::Lxc if running && !flag("restart") => {
                // LXC/Migrate.pm prepare: a live migration is refused in the worker.
                let id = vmid.to_string();
                let failed = Some(TaskOutcome::Error("lxc live migration is currently not implemented".into()));
                return Ok(json!(self.start_task_with("vzmigrate", &id, failed, Vec::new(), Vec::new())));
            }
            GuestKind::Lxc if running => Mode::Restart,
            _ => Mode::Offline,
        };
        // A guest HA manages is moved by HA: the handler forks `ha-manager migrate` instead.
        if self.managed_by_ha(vmid) {
            let ha = Params::from([("sid".to_string(), format!("{}:{vmid}", kind_word(kind))), ("node".to_string(), target)]);
            let upid = self.start_task("hamigrate", &vmid.to_string(), Vec::new());
            self.ha_move(&ha, false)?;
            return Ok(json!(upid));
        }
        Ok(json!(self.start_migration(kind, vmid, &target, mode, super::TASK_USER)?))
    }

    /// The migration worker: its refusals (a locked guest, a volume whose storage the target
    /// lacks, local disks of a running VM, a container's bind or device mount) fail the task;
    /// otherwise the config moves to the target when the task ends, the guest locked
    /// `migrate` meanwhile, a restart migration's container stopped and started again there.
    fn start_migration(&mut self, kind: GuestKind, vmid: u32, target: &str, mode: Mode, user: &str) -> Result<String, Failure> {
        let path = kind.config_path(&self.node, vmid);
        let mut conf = GuestConf::parse(self.config_text(&path)?);
        let task = if kind == GuestKind::Qemu { "qmigrate" } else { "vzmigrate" };
        let refusal = self.migration_refusal(kind, &conf, target, mode);
        let id = vmid.to_string();
        if let Some(message) = refusal {
            let duration = self.settings.duration(task);
            let epoch = self.epoch();
            let node = self.node.clone();
            let failed = Some(TaskOutcome::Error(message));
            return Ok(self.tasks.start_with(&node, task, &id, user, duration, epoch, failed, Default::default()).0);
        }
        let moved = conf.to_text();
        conf.keys.insert("lock".into(), "migrate".into());
        self.files.insert(path.clone(), conf.to_text());
        let mut effects = vec![Effect::Remove(path.clone()), Effect::Write(kind.config_path(target, vmid), moved)];
        if mode == Mode::Restart {
            // Stopped on the source first, started on the target at the end.
            self.running.remove(&vmid);
            self.started.remove(&vmid);
            effects.push(Effect::Running(vmid, true));
        }
        let on_error = vec![Effect::Unlock(path, "migrate".into())];
        let duration = self.settings.duration(task);
        let epoch = self.epoch();
        let node = self.node.clone();
        Ok(self.tasks.start_with(&node, task, &id, user, duration, epoch, None, (effects, on_error)).0)
    }

    fn migration_refusal(&self, kind: GuestKind, conf: &GuestConf, target: &str, mode: Mode) -> Option<String> {
        if let Some(lock) = conf.keys.get("lock") {
            return Some(format!("{} is locked ({lock})", super::lifecycle::word(kind)));
        }
        for (key, value) in conf.keys.iter().filter(|(k, _)| is_disk_key(k)) {
            if value.starts_with('/') {
                if kind == GuestKind::Lxc && !value.split(',').any(|o| o == "shared=1") {
                    return Some(format!("cannot migrate local bind mount point '{key}'"));
                }
                continue;
            }
            let Some((volume, _)) = disk_of(value) else { continue };
            let sid = volume.split(':').next().unwrap_or_default();
            let Some(storage) = self.storage(sid) else { continue };
            if !storage.enabled_on(target) {
                return Some(format!("storage '{sid}' is not available on node '{target}'"));
            }
            if !storage.shared() && mode == Mode::Online && !value.contains("media=cdrom") {
                return Some("can't live migrate attached local disks without with-local-disks option".into());
            }
        }
        if kind == GuestKind::Qemu && conf.keys.keys().any(|k| k.starts_with("hostpci") || k.starts_with("usb")) {
            return Some("can't migrate VM which uses local devices".into());
        }
        None
    }
}
