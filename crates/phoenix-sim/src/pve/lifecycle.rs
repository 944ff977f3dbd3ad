//! Creating, cloning, converting, resizing and destroying guests, and their snapshots, as
//! pve-container (`src/PVE/API2/LXC.pm` create_vm, clone_vm, template, resize_vm, destroy_vm;
//! `API2/LXC/Snapshot.pm`) and qemu-server (`src/PVE/API2/Qemu.pm` create_vm, clone_vm,
//! template, resize_vm, destroy_vm) do it, with pve-guest-common's `AbstractConfig` locks:
//! a create writes `lock: create` before its worker starts (`create_and_lock_config`), an LXC
//! clone `lock: disk` on its source and `lock: create` on the new CT, a VM clone `lock: clone`
//! on the new VM and a flock on the source for the whole clone. Each long operation is a task
//! whose change is made when it ends (`tasks::Effect`). Checks the handlers make before
//! forking fail the request (500); those their workers make fail the task.
//! Root-only requests (bind mounts, features other than `nesting`, raw `lxc.*` keys, which
//! are no API parameters at all) are refused to the API token: `check_ct_modify_config_perm`
//! returns early only for `root@pam` itself.

use super::guest::{GuestConf, GuestKind};
use super::storage::{disk_of, format_size, is_disk_key, GIB};
use super::tasks::{Effect, TaskOutcome};
use super::{Failure, Params, PveSim};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Parameters that steer a create or clone and are not written into the config.
const CREATE_ONLY: &[&str] =
    &["node", "vmid", "ostemplate", "storage", "password", "ssh-public-keys", "start", "force", "restore", "unique", "pool", "ha-managed"];

fn die(message: impl Into<String>) -> Failure {
    Failure::Die(message.into())
}

fn param(key: &str, message: impl Into<String>) -> Failure {
    Failure::Param(BTreeMap::from([(key.to_string(), message.into())]))
}

/// The word the handlers name a guest kind with.
pub fn word(kind: GuestKind) -> &'static str {
    match kind {
        GuestKind::Lxc => "CT",
        GuestKind::Qemu => "VM",
    }
}

/// The snapshot sections of a config (`[name]` sections other than pending and special ones).
pub fn snapshots(conf: &GuestConf) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut found: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in conf.sections.lines() {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let special = name.eq_ignore_ascii_case("pending") || name.contains(':');
            current = (!special).then(|| name.to_string());
            if let Some(name) = &current {
                found.entry(name.clone()).or_default();
            }
        } else if let (Some(name), Some((key, value))) = (&current, line.split_once(':')) {
            found.entry(name.clone()).or_default().insert(key.trim().into(), value.trim().into());
        }
    }
    found
}

fn append_section(conf: &mut GuestConf, name: &str, keys: &BTreeMap<String, String>) {
    let mut text = format!("[{name}]\n");
    for (key, value) in keys {
        text.push_str(&format!("{key}: {value}\n"));
    }
    if !conf.sections.is_empty() && !conf.sections.ends_with("\n\n") {
        conf.sections.push('\n');
    }
    conf.sections.push_str(&text);
}

fn remove_section(conf: &mut GuestConf, name: &str) {
    let mut out = String::new();
    let mut skipping = false;
    for line in conf.sections.lines() {
        if line.starts_with('[') {
            skipping = line == format!("[{name}]");
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    conf.sections = out.trim_start_matches('\n').to_string();
}

impl PveSim {
    /// Every guest of the cluster, whichever node holds it: (vmid, kind, config).
    pub fn all_guests(&self) -> Vec<(u32, GuestKind, GuestConf)> {
        self.cluster_guests().into_iter().map(|(_, vmid, kind, conf)| (vmid, kind, conf)).collect()
    }

    /// `PVE::Cluster::check_vmid_unused`: ids are unique in the cluster; the word is that of
    /// the guest owning the id, the node the one holding it.
    fn check_vmid_unused(&self, vmid: u32) -> Result<(), Failure> {
        match self.node_of(vmid) {
            Some(node) => {
                let (kind, _) = self.guest_on(&node, vmid).expect("the guest is on its node");
                Err(die(format!("{} {vmid} already exists on node '{node}'", word(kind))))
            }
            None => Ok(()),
        }
    }

    /// `AbstractConfig::check_lock`.
    fn check_lock(kind: GuestKind, conf: &GuestConf) -> Result<(), Failure> {
        match conf.keys.get("lock") {
            Some(lock) => Err(die(format!("{} is locked ({lock})", word(kind)))),
            None => Ok(()),
        }
    }

    pub(super) fn start_task(&mut self, kind: &str, id: &str, effects: Vec<Effect>) -> String {
        self.start_task_with(kind, id, None, effects, Vec::new())
    }

    pub(super) fn start_task_with(
        &mut self,
        kind: &str,
        id: &str,
        forced: Option<TaskOutcome>,
        effects: Vec<Effect>,
        on_error: Vec<Effect>,
    ) -> String {
        let duration = self.settings.duration(kind);
        let epoch = self.epoch();
        self.tasks.start_with(&self.node, kind, id, super::TASK_USER, duration, epoch, forced, (effects, on_error)).0
    }

    /// Applies the changes of the tasks that ended.
    pub(super) fn settle(&mut self) {
        for effect in self.tasks.finished() {
            match effect {
                Effect::Write(path, text) => {
                    self.files.insert(path, text);
                }
                Effect::Remove(path) => {
                    self.files.remove(&path);
                }
                Effect::Unlock(path, lock) => {
                    if let Some(text) = self.files.get(&path) {
                        let mut conf = GuestConf::parse(text);
                        if conf.keys.get("lock") == Some(&lock) {
                            conf.keys.remove("lock");
                            self.files.insert(path, conf.to_text());
                        }
                    }
                }
                Effect::Running(vmid, true) => {
                    self.running.insert(vmid);
                    self.started.insert(vmid, std::time::Instant::now());
                }
                Effect::Running(vmid, false) => {
                    self.running.remove(&vmid);
                    self.started.remove(&vmid);
                }
                Effect::FileVolume(node, volid, bytes) => self.add_file_volume_on(&node, &volid, bytes),
                Effect::ApplyPending(path) => {
                    if let Some(text) = self.files.get(&path) {
                        let mut conf = GuestConf::parse(text);
                        super::pending::apply(&mut conf);
                        self.files.insert(path, conf.to_text());
                    }
                }
            }
        }
    }

    /// A new disk `sid:N` (N GiB; `sid:0,import-from=` takes the source's size), named as the
    /// storage plugin names it; `Ok(None)` when the value is an existing volume.
    fn new_disk(&self, kind: GuestKind, vmid: u32, key: &str, value: &str, index: usize) -> Result<Option<String>, Failure> {
        let (volume, rest) = value.split_once(',').map_or((value, ""), |(v, r)| (v, r));
        let Some((storage_id, size)) = volume.split_once(':') else { return Ok(None) };
        let storage = self.storage(storage_id).ok_or_else(|| param(key, format!("storage '{storage_id}' does not exist")))?;
        if !storage.enabled_on(&self.node) {
            return Err(die(format!("storage '{storage_id}' is not available on node '{}'", self.node)));
        }
        if size == "cloudinit" {
            return Ok(Some(format!("{storage_id}:vm-{vmid}-cloudinit,media=cdrom")));
        }
        let Ok(gib) = size.parse::<f64>() else { return Ok(None) };
        let (content, refusal) = match kind {
            GuestKind::Lxc => ("rootdir", format!("storage '{storage_id}' does not support container directories")),
            GuestKind::Qemu => ("images", format!("storage '{storage_id}' does not support vm images")),
        };
        if !storage.holds(content) {
            return Err(param("storage", refusal));
        }
        let mut bytes = (gib * GIB as f64) as u64;
        let mut kept: Vec<&str> = Vec::new();
        for option in rest.split(',').filter(|o| !o.is_empty()) {
            match option.strip_prefix("import-from=") {
                Some(source) => {
                    let found = self.file_volumes().get(source).copied();
                    let Some(source_bytes) = found.filter(|_| source.contains(":import/") || source.contains(":images/")) else {
                        return Err(die(format!("cannot import from '{source}' - no such volume")));
                    };
                    bytes = bytes.max(source_bytes);
                }
                None => kept.push(option),
            }
        }
        if bytes == 0 {
            return Err(param(key, "'import-from' requires special syntax - use <storage ID>:0,import-from=<source>"));
        }
        let name = match (kind, storage.file_based()) {
            (GuestKind::Lxc, false) => format!("subvol-{vmid}-disk-{index}"),
            (GuestKind::Qemu, false) => format!("vm-{vmid}-disk-{index}"),
            (_, true) => format!("{vmid}/vm-{vmid}-disk-{index}.raw"),
        };
        self.allocate(storage_id, &name, bytes)?;
        let mut stored = format!("{storage_id}:{name}");
        for option in kept {
            stored.push(',');
            stored.push_str(option);
        }
        Ok(Some(format!("{stored},size={}", format_size(bytes))))
    }

    /// `POST /nodes/{node}/lxc` and `POST /nodes/{node}/qemu` (create_vm).
    pub(super) fn create_guest(
        &mut self,
        kind: GuestKind,
        params: &Params,
        properties: &serde_json::Map<String, Value>,
    ) -> Result<Value, Failure> {
        let vmid: u32 = params.get("vmid").and_then(|v| v.parse().ok()).unwrap_or_default();
        let path = kind.config_path(&self.node, vmid);
        let mut conf = GuestConf::default();
        let mut forced = None;
        if kind == GuestKind::Lxc {
            let template = params.get("ostemplate").cloned().unwrap_or_default();
            if template.starts_with('/') {
                return Err(Failure::Perm("Only root can pass arbitrary filesystem paths.".into()));
            }
            if !template.split_once(':').is_some_and(|(_, v)| v.starts_with("vztmpl/")) {
                return Err(die(format!("unable to use volume {template} - content type needs to be 'vztmpl'")));
            }
            if !self.file_volumes().contains_key(&template) {
                // Not checked before the worker: the extraction fails.
                forced = Some(TaskOutcome::Error(format!("unable to create CT {vmid} - volume '{template}' does not exist")));
            }
            let unprivileged = params.get("unprivileged").is_none_or(|u| u == "1");
            check_features(params.get("features").map(String::as_str), unprivileged)?;
            conf.keys.insert("arch".into(), params.get("arch").cloned().unwrap_or_else(|| "amd64".into()));
            conf.keys.insert("ostype".into(), ostype(&template));
            conf.keys.insert("hostname".into(), format!("CT{vmid}"));
            conf.keys.insert("memory".into(), "512".into());
            conf.keys.insert("swap".into(), "512".into());
            if unprivileged {
                conf.keys.insert("unprivileged".into(), "1".into());
            }
            let storage = params.get("storage").cloned().unwrap_or_else(|| "local".into());
            conf.keys.insert("rootfs".into(), format!("{storage}:4"));
        } else {
            conf.keys.insert("smbios1".into(), format!("uuid={}", fake_uuid(vmid)));
            conf.keys.insert("meta".into(), format!("creation-qemu=9.2.0,ctime={}", self.epoch()));
        }
        self.check_vmid_unused(vmid)?;
        for (key, value) in params.iter().filter(|(k, _)| !CREATE_ONLY.contains(&k.as_str())) {
            conf.keys.insert(key.clone(), value.clone());
        }
        self.fill_disks(kind, vmid, &mut conf)?;
        self.normalise_nics(kind, &mut conf, properties)?;
        let mut locked = GuestConf::default();
        locked.keys.insert("lock".into(), "create".into());
        self.files.insert(path.clone(), locked.to_text());
        let mut effects = vec![Effect::Write(path.clone(), conf.to_text())];
        if params.get("start").is_some_and(|s| s == "1") {
            effects.push(Effect::Running(vmid, true));
        }
        let task = if kind == GuestKind::Lxc { "vzcreate" } else { "qmcreate" };
        Ok(Value::String(self.start_task_with(task, &vmid.to_string(), forced, effects, vec![Effect::Remove(path)])))
    }

    /// New disks of a config allocated and named; bind mounts refused to the token.
    fn fill_disks(&self, kind: GuestKind, vmid: u32, conf: &mut GuestConf) -> Result<(), Failure> {
        let mut index = 0;
        let keys: Vec<String> = conf.keys.keys().filter(|k| is_disk_key(k)).cloned().collect();
        for key in keys {
            let value = conf.keys[&key].clone();
            if kind == GuestKind::Lxc && value.starts_with('/') {
                let kind = if value.starts_with("/dev/") { "device" } else { "bind" };
                return Err(Failure::Perm(format!("mount point type {kind} is only allowed for root@pam")));
            }
            if let Some(stored) = self.new_disk(kind, vmid, &key, &value, index)? {
                if !stored.contains("cloudinit") {
                    index += 1;
                }
                conf.keys.insert(key, stored);
            }
        }
        Ok(())
    }

    fn normalise_nics(
        &mut self,
        kind: GuestKind,
        conf: &mut GuestConf,
        properties: &serde_json::Map<String, Value>,
    ) -> Result<(), Failure> {
        let keys: Vec<String> = conf.keys.keys().filter(|k| super::nic_format_of(properties, k).is_some()).cloned().collect();
        for key in keys {
            let format = super::nic_format_of(properties, &key).expect("a NIC key");
            let stored = super::guest::normalise_nic(kind, format, &key, &conf.keys[&key], &mut self.macs).map_err(|e| param(&key, e))?;
            conf.keys.insert(key, stored);
        }
        Ok(())
    }

    /// `POST .../{vmid}/clone` (clone_vm).
    pub(super) fn clone_guest(&mut self, kind: GuestKind, vmid: u32, params: &Params) -> Result<Value, Failure> {
        let source_path = kind.config_path(&self.node, vmid);
        let mut source = self.existing(&source_path)?;
        let newid: u32 = params.get("newid").and_then(|v| v.parse().ok()).unwrap_or_default();
        Self::check_lock(kind, &source)?;
        let template = source.keys.get("template").is_some_and(|t| t == "1");
        let full = params.get("full").map_or(!template, |f| f == "1");
        if !full && params.contains_key("storage") {
            return Err(die("parameter 'storage' not allowed for linked clones"));
        }
        let base = match params.get("snapname") {
            Some(name) => snapshots(&source).remove(name).ok_or_else(|| die(format!("snapshot '{name}' does not exist")))?,
            None => source.keys.clone(),
        };
        let running = self.running.contains(&vmid);
        if kind == GuestKind::Lxc && full && running && params.get("snapname").is_none() {
            return Err(die("Full clone of a running container is only possible from a snapshot"));
        }
        if !full && !template {
            return Err(die("Linked clone feature is not available for a guest that is not a template"));
        }
        // `target`: the clone's config is written on that node, which needs every disk of the
        // source on shared storage (qemu-server clone_vm: "can't clone VM to node '$target'
        // (VM uses local storage)"; pve-container checks the same).
        let node = match params.get("target").filter(|t| **t != self.node) {
            None => self.node.clone(),
            Some(target) if !self.members().contains(target) => return Err(die(format!("no such cluster node '{target}'"))),
            Some(target) => {
                let local = source.keys.iter().filter(|(k, v)| is_disk_key(k) && !v.contains("media=cdrom")).any(|(_, v)| {
                    v.split_once(':').and_then(|(sid, _)| self.storage(sid)).is_none_or(|s| !s.shared())
                });
                if local {
                    return Err(die(format!("can't clone VM to node '{target}' (VM uses local storage)")));
                }
                target.clone()
            }
        };
        let new_path = kind.config_path(&node, newid);
        match kind {
            GuestKind::Lxc => self.check_vmid_unused(newid)?,
            GuestKind::Qemu if self.files.contains_key(&new_path) => {
                return Err(die(format!("unable to create VM {newid}: config file already exists")))
            }
            GuestKind::Qemu => {}
        }
        let mut clone = GuestConf::default();
        let dropped = ["template", "parent", "snaptime", "snapstate", "lock", "vmstate"];
        for (key, value) in base.iter().filter(|(k, _)| !dropped.contains(&k.as_str()) && !k.starts_with("unused")) {
            clone.keys.insert(key.clone(), value.clone());
        }
        // The raw `lxc.*` entries are part of the config hash clone_vm copies.
        if params.get("snapname").is_none() {
            clone.raw = source.raw.clone();
        }
        self.clone_disks(kind, newid, &mut clone, full, params.get("storage").map(String::as_str))?;
        for key in clone.keys.keys().filter(|k| k.starts_with("net")).cloned().collect::<Vec<_>>() {
            let mac_key = if kind == GuestKind::Lxc { "hwaddr" } else { "macaddr" };
            let fresh = self.macs.next_mac();
            let value = renew_mac(&clone.keys[&key], mac_key, &fresh);
            clone.keys.insert(key, value);
        }
        let name_key = if kind == GuestKind::Lxc { "hostname" } else { "name" };
        let name = params.get(name_key).cloned().or_else(|| {
            (kind == GuestKind::Qemu).then(|| format!("Copy-of-VM-{}", source.keys.get("name").cloned().unwrap_or(vmid.to_string())))
        });
        if let Some(name) = name {
            clone.keys.insert(name_key.into(), name);
        }
        if kind == GuestKind::Qemu {
            clone.keys.insert("smbios1".into(), format!("uuid={}", fake_uuid(newid)));
        }
        let (lock, task) = match kind {
            GuestKind::Lxc => ("create", "vzclone"),
            GuestKind::Qemu => ("clone", "qmclone"),
        };
        let mut placeholder = GuestConf::default();
        placeholder.keys.insert("lock".into(), lock.into());
        self.files.insert(new_path.clone(), placeholder.to_text());
        let mut effects = vec![Effect::Write(new_path.clone(), clone.to_text())];
        let mut on_error = vec![Effect::Remove(new_path)];
        if kind == GuestKind::Lxc {
            source.keys.insert("lock".into(), "disk".into());
            self.files.insert(source_path.clone(), source.to_text());
            effects.push(Effect::Unlock(source_path.clone(), "disk".into()));
            on_error.push(Effect::Unlock(source_path, "disk".into()));
        }
        let upid = self.start_task_with(task, &vmid.to_string(), None, effects, on_error);
        // qemu-server `clone_disk`: a full copy of each disk through qemu-img, logged.
        if let (GuestKind::Qemu, true, Some((volume, bytes))) = (kind, full, source.keys.get("scsi0").and_then(|v| disk_of(v))) {
            let header = format!("create full clone of drive scsi0 ({volume})");
            self.tasks.log_transfer(&upid, super::tasks::TransferLog { header, bytes });
        }
        Ok(Value::String(upid))
    }

    /// A clone's disks: linked to the template's base volumes, or full copies (on `storage`
    /// when given).
    fn clone_disks(&self, kind: GuestKind, newid: u32, clone: &mut GuestConf, full: bool, storage: Option<&str>) -> Result<(), Failure> {
        let keys: Vec<String> = clone.keys.keys().filter(|k| is_disk_key(k)).cloned().collect();
        for (index, key) in keys.into_iter().enumerate() {
            let value = clone.keys[&key].clone();
            if value.contains("media=cdrom") {
                continue;
            }
            if kind == GuestKind::Lxc && value.starts_with('/') {
                return Err(die(format!("unable to clone mountpoint '{key}' (type bind)")));
            }
            let Some((volume, bytes)) = disk_of(&value) else { continue };
            let (source_storage, volname) = volume.split_once(':').unwrap_or_default();
            let rest: String = value.split(',').skip(1).filter(|o| !o.starts_with("size=")).map(|o| format!(",{o}")).collect();
            let prefix = if kind == GuestKind::Lxc { "subvol" } else { "vm" };
            let target = storage.unwrap_or(source_storage);
            let stored = if full {
                self.allocate(target, volname, bytes)?;
                format!("{target}:{prefix}-{newid}-disk-{index}")
            } else {
                format!("{source_storage}:{volname}/{prefix}-{newid}-disk-{index}")
            };
            clone.keys.insert(key, format!("{stored}{rest},size={}", format_size(bytes)));
        }
        Ok(())
    }

    /// `POST .../{vmid}/template`: LXC answers null and forks a `vztemplate` worker whose UPID
    /// it throws away; qemu-server answers the `qmtemplate` UPID.
    pub(super) fn template(&mut self, kind: GuestKind, vmid: u32) -> Result<Value, Failure> {
        let path = kind.config_path(&self.node, vmid);
        let conf = self.existing(&path)?;
        Self::check_lock(kind, &conf)?;
        if !snapshots(&conf).is_empty() {
            return Err(die(format!("unable to create template, because {} contains snapshots", word(kind))));
        }
        if conf.keys.get("template").is_some_and(|t| t == "1") {
            return Err(die("you can't convert a template to a template"));
        }
        if self.running.contains(&vmid) {
            return Err(die(match kind {
                GuestKind::Lxc => "you can't convert a CT to template if the CT is running",
                GuestKind::Qemu => "you can't convert a VM to template if VM is running",
            }));
        }
        let mut done = conf.clone();
        done.keys.insert("template".into(), "1".into());
        for (key, value) in conf.keys.iter().filter(|(k, v)| is_disk_key(k) && !v.contains("media=cdrom")) {
            done.keys.insert(key.clone(), base_volume(value));
        }
        let task = if kind == GuestKind::Lxc { "vztemplate" } else { "qmtemplate" };
        let upid = self.start_task(task, &vmid.to_string(), vec![Effect::Write(path, done.to_text())]);
        Ok(if kind == GuestKind::Lxc { Value::Null } else { Value::String(upid) })
    }

    fn existing(&self, path: &str) -> Result<GuestConf, Failure> {
        self.config_text(path).map(|t| GuestConf::parse(t))
    }

    /// `PUT .../{vmid}/resize`: pve-container checks before forking (500), qemu-server in its
    /// worker (a failed task).
    pub(super) fn resize(&mut self, kind: GuestKind, vmid: u32, params: &Params) -> Result<Value, Failure> {
        let path = kind.config_path(&self.node, vmid);
        let conf = self.existing(&path)?;
        let disk = params.get("disk").cloned().unwrap_or_default();
        let size = params.get("size").cloned().unwrap_or_default();
        let checked = (|| {
            Self::check_lock(kind, &conf)?;
            let value = conf.keys.get(&disk).ok_or_else(|| die(format!("disk '{disk}' does not exist")))?;
            let (volume, current) = disk_of(value).ok_or_else(|| die(format!("disk '{disk}' has no associated volume")))?;
            let wanted = match size.strip_prefix('+') {
                Some(delta) => current + super::storage::parse_size(delta).unwrap_or(0),
                None => super::storage::parse_size(&size).unwrap_or(0),
            };
            if wanted < current {
                return Err(die(match kind {
                    GuestKind::Lxc => "unable to shrink disk size",
                    GuestKind::Qemu => "shrinking disks is not supported",
                }));
            }
            if wanted == current && kind == GuestKind::Lxc {
                return Err(die("disk is already at specified size"));
            }
            let storage = volume.split(':').next().unwrap_or_default();
            self.allocate(storage, &volume, wanted - current)?;
            let mut done = conf.clone();
            let rest: String = value.split(',').skip(1).filter(|o| !o.starts_with("size=")).map(|o| format!(",{o}")).collect();
            done.keys.insert(disk.clone(), format!("{volume}{rest},size={}", format_size(wanted)));
            Ok(done)
        })();
        let (forced, effects) = match (checked, kind) {
            (Ok(done), _) => (None, vec![Effect::Write(path, done.to_text())]),
            (Err(failure), GuestKind::Lxc) => return Err(failure),
            (Err(Failure::Die(message)), GuestKind::Qemu) => (Some(TaskOutcome::Error(message)), Vec::new()),
            (Err(failure), GuestKind::Qemu) => return Err(failure),
        };
        Ok(Value::String(self.start_task_with("resize", &vmid.to_string(), forced, effects, Vec::new())))
    }

    /// `DELETE .../{vmid}` (destroy_vm).
    pub(super) fn destroy(&mut self, kind: GuestKind, vmid: u32, params: &Params) -> Result<Value, Failure> {
        let path = kind.config_path(&self.node, vmid);
        let conf = self.existing(&path)?;
        if let Some(lock) = conf.keys.get("lock") {
            return Err(die(format!("{} {vmid} is locked ({lock})", word(kind))));
        }
        let force = params.get("force").is_some_and(|f| f == "1");
        if self.running.contains(&vmid) && !(force && kind == GuestKind::Lxc) {
            return Err(die(match kind {
                GuestKind::Lxc => format!("unable to destroy CT {vmid} - container is running"),
                GuestKind::Qemu => format!("VM {vmid} is running - destroy failed"),
            }));
        }
        // A template's base volumes in use by linked clones: the storage refuses to free them.
        let bases: Vec<String> = conf
            .keys
            .values()
            .filter_map(|v| disk_of(v))
            .map(|(v, _)| v)
            .filter(|v| v.split_once(':').is_some_and(|(_, name)| super::storage::is_base(name)))
            .collect();
        let in_use =
            self.guest_disks().into_iter().find(|(v, _, owner)| *owner != vmid && bases.iter().any(|b| v.starts_with(&format!("{b}/"))));
        let forced = in_use.map(|(v, _, _)| {
            let base = v.split('/').next().unwrap_or_default().to_string();
            TaskOutcome::Error(format!("base volume '{base}' is still in use by linked clones"))
        });
        let effects = vec![Effect::Running(vmid, false), Effect::Remove(format!("firewall/{vmid}.fw")), Effect::Remove(path)];
        let task = if kind == GuestKind::Lxc { "vzdestroy" } else { "qmdestroy" };
        Ok(Value::String(self.start_task_with(task, &vmid.to_string(), forced, effects, Vec::new())))
    }

    /// `GET`/`POST .../{vmid}/snapshot` and `DELETE .../snapshot/{snapname}`.
    pub(super) fn snapshot(&mut self, kind: GuestKind, vmid: u32, method: &str, params: &Params) -> Result<Value, Failure> {
        let path = kind.config_path(&self.node, vmid);
        let mut conf = self.existing(&path)?;
        let found = snapshots(&conf);
        if method == "GET" {
            let mut list: Vec<Value> = found
                .iter()
                .map(|(name, keys)| {
                    let mut entry = json!({ "name": name, "description": keys.get("description").cloned().unwrap_or_default() });
                    if let Some(time) = keys.get("snaptime").and_then(|t| t.parse::<u64>().ok()) {
                        entry["snaptime"] = json!(time);
                    }
                    if let Some(parent) = keys.get("parent") {
                        entry["parent"] = json!(parent);
                    }
                    entry
                })
                .collect();
            let mut current =
                json!({ "name": "current", "description": "You are here!", "running": u8::from(self.running.contains(&vmid)) });
            if let Some(parent) = conf.keys.get("parent") {
                current["parent"] = json!(parent);
            }
            list.push(current);
            return Ok(Value::Array(list));
        }
        let name = params.get("snapname").cloned().unwrap_or_default();
        let task =
            format!("{}{}", if kind == GuestKind::Lxc { "vz" } else { "qm" }, if method == "DELETE" { "delsnapshot" } else { "snapshot" });
        if method == "DELETE" {
            if !found.contains_key(&name) {
                return Err(die(format!("snapshot '{name}' does not exist")));
            }
            remove_section(&mut conf, &name);
            if conf.keys.get("parent") == Some(&name) {
                conf.keys.remove("parent");
            }
            return Ok(Value::String(self.start_task(&task, &vmid.to_string(), vec![Effect::Write(path, conf.to_text())])));
        }
        if ["current", "vzdump"].contains(&name.as_str()) || name.eq_ignore_ascii_case("pending") {
            return Err(die(format!("unable to use snapshot name '{name}' (reserved name)")));
        }
        if conf.keys.get("template").is_some_and(|t| t == "1") {
            return Err(die("you can't take a snapshot if it's a template"));
        }
        Self::check_lock(kind, &conf)?;
        if found.contains_key(&name) {
            return Err(die(format!("snapshot name '{name}' already used")));
        }
        let mut copy: BTreeMap<String, String> = conf
            .keys
            .iter()
            .filter(|(k, _)| !["lock", "digest", "parent"].contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        copy.insert("snaptime".into(), self.epoch().to_string());
        if let Some(parent) = conf.keys.get("parent") {
            copy.insert("parent".into(), parent.clone());
        }
        if let Some(description) = params.get("description") {
            copy.insert("description".into(), description.clone());
        }
        let mut done = conf.clone();
        append_section(&mut done, &name, &copy);
        done.keys.insert("parent".into(), name);
        conf.keys.insert("lock".into(), "snapshot".into());
        self.files.insert(path.clone(), conf.to_text());
        let on_error = vec![Effect::Unlock(path.clone(), "snapshot".into())];
        Ok(Value::String(self.start_task_with(&task, &vmid.to_string(), None, vec![Effect::Write(path, done.to_text())], on_error)))
    }

    /// `GET /cluster/nextid` (pve-manager `API2/Cluster.pm`): the lowest free id from 100.
    pub(super) fn next_id(&self, params: &Params) -> Result<Value, Failure> {
        let used: std::collections::BTreeSet<u32> = self.cluster_guests().iter().map(|(_, v, _, _)| *v).collect();
        if let Some(vmid) = params.get("vmid").and_then(|v| v.parse::<u32>().ok()) {
            return if used.contains(&vmid) { Err(param("vmid", format!("VM {vmid} already exists"))) } else { Ok(json!(vmid)) };
        }
        (100..1_000_000)
            .find(|id| !used.contains(id))
            .map(|id| json!(id))
            .ok_or_else(|| die("unable to get any free VMID in range [100, 1000000]"))
    }
}

/// What `PUT /nodes/{node}/lxc/{vmid}/config` refuses the token (`update_pct_config`,
/// `check_ct_modify_config_perm`): the read-only `unprivileged`, bind and device mount points,
/// features other than `nesting`.
pub fn check_ct_config_change(conf: &GuestConf, changes: &Params) -> Result<(), Failure> {
    if changes.contains_key("unprivileged") {
        return Err(die("unable to modify read-only option: 'unprivileged'"));
    }
    for value in changes.iter().filter(|(k, _)| k.starts_with("mp") && is_disk_key(k)).map(|(_, v)| v) {
        if value.starts_with('/') {
            let kind = if value.starts_with("/dev/") { "device" } else { "bind" };
            return Err(Failure::Perm(format!("mount point type {kind} is only allowed for root@pam")));
        }
    }
    if let Some(features) = changes.get("features") {
        check_features(Some(features), conf.keys.get("unprivileged").is_some_and(|u| u == "1"))?;
    }
    Ok(())
}

/// `check_ct_modify_config_perm` on `features` for a token (not `root@pam`).
fn check_features(features: Option<&str>, unprivileged: bool) -> Result<(), Failure> {
    let Some(features) = features else { return Ok(()) };
    let others = features.split(',').filter(|f| !f.is_empty()).any(|f| f.split('=').next() != Some("nesting"));
    match (unprivileged, others) {
        (false, _) => Err(Failure::Perm("changing feature flags for privileged container is only allowed for root@pam".into())),
        (true, true) => Err(Failure::Perm("changing feature flags (except nesting) is only allowed for root@pam".into())),
        (true, false) => Ok(()),
    }
}

/// The OS type pve-container detects from the extracted template (here: its name).
fn ostype(template: &str) -> String {
    let file = template.rsplit('/').next().unwrap_or_default();
    ["ubuntu", "debian", "alpine", "centos", "fedora", "archlinux", "opensuse"]
        .into_iter()
        .find(|os| file.starts_with(os))
        .unwrap_or("unmanaged")
        .to_string()
}

fn fake_uuid(vmid: u32) -> String {
    format!("00000000-0000-4000-8000-{vmid:012x}")
}

/// A NIC value with a new MAC (clones get fresh MACs).
fn renew_mac(value: &str, mac_key: &str, fresh: &str) -> String {
    let mut parts: Vec<String> = value.split(',').map(str::to_string).collect();
    for part in &mut parts {
        if let Some((key, _)) = part.split_once('=') {
            let model = ["virtio", "e1000", "rtl8139", "vmxnet3"].contains(&key);
            if key == mac_key || model {
                *part = format!("{key}={fresh}");
            }
        }
    }
    parts.join(",")
}

/// A disk renamed as a template's base volume (`vm-100-disk-0` -> `base-100-disk-0`).
fn base_volume(value: &str) -> String {
    value.replacen(":vm-", ":base-", 1).replacen(":subvol-", ":basevol-", 1).replacen("/vm-", "/base-", 1)
}
