//! Storages and their volumes as pve-storage keeps them. The storages are `storage.cfg` in the
//! cluster file system (`<type>: <id>` then tab-indented `content`, `path`, `pool` lines); the
//! files on them (OS templates, ISOs, images to import) are listed in a file of the
//! simulator's own beside it (`phoenix-sim/volumes`, `<volid> <bytes>` per line), since PVE
//! reads them from the storage itself; the guests' disks are read from the guests' configs
//! (`size=` of `rootfs`, `mpN`, `scsiN`, ...). A storage's capacity is the simulator's setting.
//! Handlers: `GET /nodes/{node}/storage` (pve-storage `API2/Storage/Status.pm` index),
//! `GET .../{storage}/content` (`API2/Storage/Content.pm` index), `POST .../download-url` and
//! `POST /nodes/{node}/aplinfo` (pve-manager `API2/Nodes.pm` apl_download), both `download` tasks.

use super::{Failure, Params, PveSim};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The file of the simulator's own listing the volumes on shared file storages; a node's
/// local file storages are listed in `node_volumes_file`.
pub const VOLUMES_FILE: &str = "phoenix-sim/volumes";

/// The list of a node's volumes on its local file storages.
pub fn node_volumes_file(node: &str) -> String {
    format!("{VOLUMES_FILE}-{node}")
}

fn read_volumes(text: Option<&String>) -> BTreeMap<String, u64> {
    let text = text.map(String::as_str).unwrap_or_default();
    text.lines().filter_map(|l| l.split_once(' ')).filter_map(|(v, s)| Some((v.to_string(), s.parse().ok()?))).collect()
}

/// A storage of `storage.cfg`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageCfg {
    pub id: String,
    pub kind: String,
    pub content: Vec<String>,
    /// `path` (dir) or `pool` (zfspool).
    pub options: BTreeMap<String, String>,
}

impl StorageCfg {
    pub fn holds(&self, content: &str) -> bool {
        self.content.iter().any(|c| c == content)
    }

    /// Whether the storage is enabled on `node` (`PVE::Storage::storage_check_enabled`: no
    /// `nodes` list, or one naming it).
    pub fn enabled_on(&self, node: &str) -> bool {
        self.options.get("nodes").is_none_or(|list| list.split(',').any(|n| n.trim() == node))
    }

    /// `shared 1` in storage.cfg: every node sees the same volumes (NFS, Ceph, ...).
    pub fn shared(&self) -> bool {
        self.options.get("shared").is_some_and(|s| s == "1")
    }

    /// File based storages hold templates, ISOs and images to import.
    pub fn file_based(&self) -> bool {
        matches!(self.kind.as_str(), "dir" | "nfs" | "cifs" | "cephfs" | "btrfs")
    }
}

/// `PVE::Storage::Plugin::parse_config` for the lines phoenix-sim writes.
pub fn parse_cfg(text: &str) -> Vec<StorageCfg> {
    let mut found: Vec<StorageCfg> = Vec::new();
    for line in text.lines() {
        if let Some((kind, id)) = line.split_once(':').filter(|_| !line.starts_with(['\t', ' '])) {
            found.push(StorageCfg { id: id.trim().into(), kind: kind.trim().into(), content: Vec::new(), options: BTreeMap::new() });
        } else if let (Some(storage), Some((key, value))) = (found.last_mut(), line.trim().split_once(' ')) {
            if key == "content" {
                storage.content = value.split(',').map(|c| c.trim().to_string()).filter(|c| !c.is_empty()).collect();
            } else {
                storage.options.insert(key.into(), value.trim().into());
            }
        }
    }
    found
}

pub fn print_cfg(storages: &[StorageCfg]) -> String {
    let mut out = String::new();
    for storage in storages {
        out.push_str(&format!("{}: {}\n", storage.kind, storage.id));
        for (key, value) in &storage.options {
            out.push_str(&format!("\t{key} {value}\n"));
        }
        out.push_str(&format!("\tcontent {}\n\n", storage.content.join(",")));
    }
    out
}

/// A size as PVE writes it (`8G`, `512M`), in bytes: phoenix's reading of the same format.
pub use phoenix_core::plan::guests::parse_size;

/// Bytes as PVE prints a disk's `size=` (`PVE::JSONSchema::format_size`: the largest unit
/// that divides it).
pub fn format_size(bytes: u64) -> String {
    for (unit, scale) in [("T", 1u64 << 40), ("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)] {
        if bytes >= scale && bytes % scale == 0 {
            return format!("{}{unit}", bytes / scale);
        }
    }
    bytes.to_string()
}

pub use phoenix_core::plan::guests::GIB;

/// A disk value of a guest config (`local-zfs:subvol-101-disk-0,size=8G`): its volume and size.
pub fn disk_of(value: &str) -> Option<(String, u64)> {
    let mut parts = value.split(',');
    let volume = parts.next()?.to_string();
    let size = parts.find_map(|p| p.strip_prefix("size=")).and_then(parse_size).unwrap_or(0);
    volume.contains(':').then_some((volume, size))
}

/// Whether a config key holds a disk: phoenix's reading of the same keys.
pub use phoenix_core::plan::guests::is_disk_key;

/// Whether a volume name is a template's base volume (`base-9000-disk-0`, an LXC
/// `basevol-900-disk-0`, a file storage's `9000/base-9000-disk-0.raw`).
pub fn is_base(volname: &str) -> bool {
    let file =
        volname.rsplit_once('/').map_or(volname, |(folder, file)| if folder.chars().all(|c| c.is_ascii_digit()) { file } else { folder });
    file.starts_with("base-") || file.starts_with("basevol-")
}

/// A linked clone's volume names its base first (`base-9000-disk-0/vm-101-disk-0`).
pub fn is_linked(volname: &str) -> bool {
    ["base-", "basevol-"].iter().any(|b| volname.find(b).is_some_and(|i| volname[i..].contains('/')))
}

impl PveSim {
    pub fn storages(&self) -> Vec<StorageCfg> {
        self.files.get("storage.cfg").map(|t| parse_cfg(t)).unwrap_or_default()
    }

    /// Adds (or replaces) a storage.
    pub fn add_storage(&mut self, storage: StorageCfg) {
        let mut all: Vec<StorageCfg> = self.storages().into_iter().filter(|s| s.id != storage.id).collect();
        all.push(storage);
        all.sort_by(|a, b| a.id.cmp(&b.id));
        self.files.insert("storage.cfg".into(), print_cfg(&all));
    }

    pub fn storage(&self, id: &str) -> Option<StorageCfg> {
        self.storages().into_iter().find(|s| s.id == id)
    }

    /// The files on the file storages this node sees (`volid` -> bytes): a shared storage's
    /// are the cluster's, a local one's this node's own.
    pub fn file_volumes(&self) -> BTreeMap<String, u64> {
        let mut found = read_volumes(self.files.get(VOLUMES_FILE));
        found.extend(read_volumes(self.files.get(&node_volumes_file(&self.node))));
        found
    }

    /// Adds a file to a storage as `node` sees it (on a local storage, that node's copy).
    pub fn add_file_volume_on(&mut self, node: &str, volid: &str, bytes: u64) {
        let shared = volid.split(':').next().and_then(|sid| self.storage(sid)).is_some_and(|s| s.shared());
        let file = if shared { VOLUMES_FILE.to_string() } else { node_volumes_file(node) };
        let mut volumes = read_volumes(self.files.get(&file));
        volumes.insert(volid.to_string(), bytes);
        let text: String = volumes.iter().map(|(v, s)| format!("{v} {s}\n")).collect();
        self.files.insert(file, text);
    }

    /// Adds a file to a storage of the current node.
    pub fn add_file_volume(&mut self, volid: &str, bytes: u64) {
        let node = self.node.clone();
        self.add_file_volume_on(&node, volid, bytes);
    }

    /// Every guest disk this node sees: (volid, bytes, owner vmid); on a local storage only
    /// those of the node's own guests.
    pub fn guest_disks(&self) -> Vec<(String, u64, u32)> {
        let mut disks = Vec::new();
        let shared: std::collections::BTreeSet<String> = self.storages().into_iter().filter(|s| s.shared()).map(|s| s.id).collect();
        for (node, vmid, _, conf) in self.cluster_guests() {
            for (key, value) in &conf.keys {
                if is_disk_key(key) && !value.contains("media=cdrom") {
                    if let Some((volume, size)) = disk_of(value) {
                        let storage = volume.split(':').next().unwrap_or_default();
                        if node == self.node || shared.contains(storage) {
                            disks.push((volume, size, vmid));
                        }
                    }
                }
            }
        }
        disks
    }

    /// Bytes used on a storage.
    pub fn used(&self, storage: &str) -> u64 {
        let prefix = format!("{storage}:");
        let files: u64 = self.file_volumes().iter().filter(|(v, _)| v.starts_with(&prefix)).map(|(_, s)| s).sum();
        // A linked clone's disk shares its base: only the base counts.
        let disks: u64 = self
            .guest_disks()
            .iter()
            .filter(|(v, _, _)| v.strip_prefix(&prefix).is_some_and(|name| !is_linked(name)))
            .map(|(_, s, _)| s)
            .sum();
        files + disks
    }

    pub fn capacity(&self, storage: &str) -> u64 {
        self.settings.capacity.get(storage).copied().unwrap_or(self.settings.default_capacity)
    }

    /// Allocation of `bytes` on `storage` (the plugin's `alloc_image`; PVE has no handler
    /// message for a full storage, the plugin's command fails: this is zfs's).
    pub fn allocate(&self, storage: &str, volume: &str, bytes: u64) -> Result<(), Failure> {
        if self.used(storage) + bytes > self.capacity(storage) {
            return Err(Failure::Die(format!("zfs error: cannot create '{storage}/{volume}': out of space")));
        }
        Ok(())
    }

    /// `GET /nodes/{node}/storage`.
    pub(super) fn storage_index(&self, params: &Params) -> Result<Value, Failure> {
        let content = params.get("content");
        let mut list = Vec::new();
        for storage in self.storages().into_iter().filter(|s| s.enabled_on(&self.node)) {
            if content.is_some_and(|c| !storage.holds(c)) || params.get("storage").is_some_and(|s| *s != storage.id) {
                continue;
            }
            let (total, used) = (self.capacity(&storage.id), self.used(&storage.id));
            list.push(json!({
                "storage": storage.id, "type": storage.kind, "content": storage.content.join(","),
                "enabled": 1, "active": 1, "shared": u8::from(storage.shared()), "total": total, "used": used, "avail": total.saturating_sub(used),
                "used_fraction": used as f64 / total.max(1) as f64,
            }));
        }
        if let Some(id) = params.get("storage").filter(|_| list.is_empty()) {
            return Err(Failure::Param(BTreeMap::from([("storage".into(), format!("No such storage '{id}'."))])));
        }
        Ok(Value::Array(list))
    }

    /// `GET /nodes/{node}/storage/{storage}/content`.
    pub(super) fn storage_content(&self, params: &Params) -> Result<Value, Failure> {
        let id = params.get("storage").cloned().unwrap_or_default();
        if self.storage(&id).is_none() {
            return Err(Failure::Die(format!("storage '{id}' does not exist")));
        }
        let prefix = format!("{id}:");
        let mut list = Vec::new();
        for (volid, size) in self.file_volumes().into_iter().filter(|(v, _)| v.starts_with(&prefix)) {
            let content = volid[prefix.len()..].split('/').next().unwrap_or_default().to_string();
            let format = volid.rsplit('.').next().unwrap_or("raw").to_string();
            list.push(json!({ "volid": volid, "size": size, "content": content, "format": format }));
        }
        for (volid, size, vmid) in self.guest_disks().into_iter().filter(|(v, _, _)| v.starts_with(&prefix)) {
            let content = if volid.contains("subvol-") { "rootdir" } else { "images" };
            let format = if volid.contains("subvol-") { "subvol" } else { "raw" };
            list.push(json!({ "volid": volid, "size": size, "content": content, "format": format, "vmid": vmid }));
        }
        if let Some(content) = params.get("content") {
            list.retain(|v| v["content"] == *content);
        }
        Ok(Value::Array(list))
    }

    /// `POST .../download-url` (content iso, vztmpl or import) and `POST aplinfo` (vztmpl):
    /// a `download` task; the file is there when it ends. The simulator downloads nothing: a
    /// file has the size `settings.download_bytes` gives its name, else 512 MiB.
    pub(super) fn download(&mut self, params: &Params, appliance: bool) -> Result<Value, Failure> {
        let id = params.get("storage").cloned().unwrap_or_default();
        let storage = self.storage(&id).ok_or_else(|| Failure::Die(format!("storage '{id}' does not exist")))?;
        let (content, filename) = if appliance {
            if !storage.holds("vztmpl") {
                return Err(Failure::Die(format!("storage '{id}' does not support templates")));
            }
            ("vztmpl".to_string(), params.get("template").cloned().unwrap_or_default())
        } else {
            if !storage.file_based() {
                return Err(Failure::Die(format!("can't upload to storage type '{}', not a file based storage!", storage.kind)));
            }
            let content = params.get("content").cloned().unwrap_or_default();
            if !storage.holds(&content) {
                return Err(Failure::Die(format!("storage '{id}' is not configured for content-type '{content}'")));
            }
            (content, params.get("filename").cloned().unwrap_or_default())
        };
        let volid = format!("{id}:{content}/{filename}");
        let bytes = self.settings.download_bytes.get(&filename).copied().unwrap_or(512 << 20);
        self.allocate(&id, &filename, bytes)?;
        let upid = self.start_task("download", &id, vec![super::tasks::Effect::FileVolume(self.node.clone(), volid, bytes)]);
        Ok(Value::String(upid))
    }
}
