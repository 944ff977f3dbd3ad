//! Pending changes: what a config update of a running guest cannot apply while it runs waits
//! in the config's pending section until the next start. Follows pve-container
//! `PVE::LXC::Config` (`update_pct_config`, `vmconfig_hotplug_pending` with
//! `$LXC_FASTPLUG_OPTIONS`, `vmconfig_apply_pending`) and qemu-server `PVE::QemuServer`
//! (`$fast_plug_option`, `vmconfig_hotplug_pending` under the default `hotplug` of
//! `network,disk,usb`, `vmconfig_apply_pending`); `GET .../pending` is pve-guest-common's
//! `PVE::GuestHelpers::config_with_pending_array`, `GET .../config` without `current` is
//! `AbstractConfig::load_current_config` (pending values merged in). It owns only these rules,
//! not the file format (`guest`) or the API routes (`mod`).

use super::guest::{pending_header, GuestConf, GuestKind};
use serde_json::{json, Value};

/// `$LXC_FASTPLUG_OPTIONS`: moved into the config at once, nothing to do live.
const LXC_FASTPLUG: &[&str] = &["description", "onboot", "startup", "protection", "hostname", "hookscript", "cores", "tags", "lock"];

/// `$fast_plug_option`, with the cloud-init keys (`$confdesc_cloudinit`) it includes.
const QEMU_FASTPLUG: &[&str] = &[
    "description",
    "hookscript",
    "lock",
    "migrate_downtime",
    "migrate_speed",
    "name",
    "onboot",
    "protection",
    "shares",
    "startup",
    "tags",
    "vmstatestorage",
    "citype",
    "ciuser",
    "cipassword",
    "ciupgrade",
    "cicustom",
    "searchdomain",
    "nameserver",
    "sshkeys",
];

/// Whether `key` is `prefix` followed by a number (`net0`, `mp3`).
fn numbered(key: &str, prefix: &str) -> bool {
    key.strip_prefix(prefix).is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Whether setting `key` on a running guest takes effect at once (fast-plugged or hotplugged).
fn set_live(kind: GuestKind, key: &str, conf: &GuestConf) -> bool {
    let new = !conf.keys.contains_key(key);
    match kind {
        GuestKind::Lxc => {
            LXC_FASTPLUG.contains(&key)
                || ["cpulimit", "cpuunits", "memory", "swap"].contains(&key)
                || numbered(key, "net")
                // A new mount point or device is hotplugged; a changed one waits.
                || (new && (numbered(key, "mp") || numbered(key, "dev")))
        }
        GuestKind::Qemu => {
            QEMU_FASTPLUG.contains(&key)
                || numbered(key, "ipconfig")
                || ["cpuunits", "cpulimit", "balloon"].contains(&key)
                || numbered(key, "net")
                // `disk` hotplug: a new SCSI or VirtIO disk; cores, memory, serial, boot,
                // agent and IDE/SATA disks have no hotplug branch under the default.
                || (new && (numbered(key, "scsi") || numbered(key, "virtio")))
        }
    }
}

/// Whether deleting `key` from a running guest takes effect at once.
fn delete_live(kind: GuestKind, key: &str) -> bool {
    match kind {
        GuestKind::Lxc => {
            LXC_FASTPLUG.contains(&key)
                || ["swap", "cpulimit", "cpuunits"].contains(&key)
                || numbered(key, "net")
                || numbered(key, "unused")
        }
        GuestKind::Qemu => {
            QEMU_FASTPLUG.contains(&key)
                || numbered(key, "ipconfig")
                || numbered(key, "net")
                || numbered(key, "unused")
                || numbered(key, "scsi")
                || numbered(key, "virtio")
        }
    }
}

/// Stores an update's changes: on a stopped guest everything (what was pending before too) is
/// applied; on a running one what can be is, the rest is pending. A pending value equal to the
/// current one is dropped (`cleanup_pending`).
pub fn stage(conf: &mut GuestConf, kind: GuestKind, running: bool, changes: &[(String, String)], deletes: &[String]) {
    for key in deletes {
        conf.pending.remove(key);
        if running && !delete_live(kind, key) {
            if conf.keys.contains_key(key) && !conf.pending_delete.contains(key) {
                conf.pending_delete.push(key.clone());
            }
        } else {
            conf.keys.remove(key);
            conf.pending_delete.retain(|k| k != key);
        }
    }
    for (key, value) in changes {
        conf.pending_delete.retain(|k| k != key);
        if running && !set_live(kind, key, conf) {
            conf.pending.insert(key.clone(), value.clone());
        } else {
            conf.pending.remove(key);
            conf.keys.insert(key.clone(), value.clone());
        }
    }
    let current = &conf.keys;
    conf.pending.retain(|key, value| current.get(key) != Some(value));
    if !running {
        apply(conf);
    }
    if !conf.pending.is_empty() || !conf.pending_delete.is_empty() {
        conf.pending_header = pending_header(kind);
    }
}

/// `vmconfig_apply_pending`: every pending change into the config (deletes first).
pub fn apply(conf: &mut GuestConf) {
    for key in std::mem::take(&mut conf.pending_delete) {
        conf.keys.remove(&key);
    }
    let pending = std::mem::take(&mut conf.pending);
    conf.keys.extend(pending);
}

/// The config as `GET .../config` shows it by default: pending values in, pending deletes out.
pub fn merged(conf: &GuestConf) -> GuestConf {
    let mut view = conf.clone();
    apply(&mut view);
    view
}

/// `GET .../pending`: each current key with its value (and its pending value or delete mark),
/// then keys only pending. Values are strings, `delete` is 1 (neither pve-container nor
/// phoenix's requests force a delete).
pub fn list(conf: &GuestConf, digest: &str) -> Value {
    let mut entries = Vec::new();
    let description = (!conf.description.is_empty()).then(|| ("description".to_string(), conf.description.join("\n")));
    let digest = ("digest".to_string(), digest.to_string());
    let mut current: Vec<(String, String)> = conf.keys.clone().into_iter().chain(description).chain([digest]).collect();
    current.sort();
    for (key, value) in &current {
        let mut entry = json!({ "key": key, "value": value });
        if let Some(pending) = conf.pending.get(key) {
            entry["pending"] = json!(pending);
        }
        if conf.pending_delete.contains(key) {
            entry["delete"] = json!(1);
        }
        entries.push(entry);
    }
    for (key, pending) in conf.pending.iter().filter(|(k, _)| !conf.keys.contains_key(*k)) {
        entries.push(json!({ "key": key, "pending": pending }));
    }
    Value::Array(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(lines: &str) -> GuestConf {
        GuestConf::parse(lines)
    }

    fn changes(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn a_running_container_takes_memory_at_once_and_keeps_features_pending() {
        let mut ct = conf("memory: 512\nfeatures: nesting=1\nnameserver: 10.0.0.1\n");
        stage(
            &mut ct,
            GuestKind::Lxc,
            true,
            &changes(&[("memory", "2048"), ("features", "nesting=1,keyctl=1"), ("nameserver", "10.0.0.13")]),
            &[],
        );
        assert_eq!(ct.keys["memory"], "2048");
        assert_eq!(ct.keys["features"], "nesting=1");
        assert_eq!(ct.pending["features"], "nesting=1,keyctl=1");
        assert_eq!(ct.pending["nameserver"], "10.0.0.13");
        assert_eq!(merged(&ct).keys["nameserver"], "10.0.0.13");
        let text = ct.to_text();
        assert!(text.contains("\n[pve:pending]\nfeatures: nesting=1,keyctl=1\n"), "{text}");
        assert_eq!(GuestConf::parse(&text), ct, "the pending section reads back");
        apply(&mut ct);
        assert_eq!(ct.keys["features"], "nesting=1,keyctl=1");
        assert!(ct.pending.is_empty());
    }

    #[test]
    fn a_running_vm_keeps_cores_and_memory_pending_and_takes_cloud_init_keys() {
        let mut vm = conf("cores: 2\nmemory: 2048\nnameserver: 10.0.0.1\n");
        stage(&mut vm, GuestKind::Qemu, true, &changes(&[("cores", "4"), ("memory", "8192"), ("nameserver", "10.0.0.13")]), &[]);
        assert_eq!((vm.keys["cores"].as_str(), vm.keys["nameserver"].as_str()), ("2", "10.0.0.13"));
        assert_eq!(vm.pending.keys().collect::<Vec<_>>(), ["cores", "memory"]);
        assert!(vm.to_text().contains("\n[PENDING]\ncores: 4\nmemory: 8192\n"));
        let listed = list(&vm, "d");
        let cores = listed.as_array().unwrap().iter().find(|e| e["key"] == "cores").unwrap();
        assert_eq!(cores, &json!({ "key": "cores", "value": "2", "pending": "4" }));
    }

    #[test]
    fn a_stopped_guest_applies_everything_and_setting_back_drops_the_pending_value() {
        let mut ct = conf("memory: 512\nswap: 512\nfeatures: nesting=1\n");
        stage(&mut ct, GuestKind::Lxc, true, &changes(&[("features", "nesting=1,fuse=1")]), &["swap".to_string()]);
        assert!(!ct.keys.contains_key("swap"), "a swap delete is hotplugged");
        stage(&mut ct, GuestKind::Lxc, true, &changes(&[("features", "nesting=1")]), &[]);
        assert!(ct.pending.is_empty(), "back to the current value: nothing pending");
        stage(&mut ct, GuestKind::Lxc, true, &changes(&[("features", "fuse=1")]), &[]);
        stage(&mut ct, GuestKind::Lxc, false, &changes(&[("memory", "1024")]), &[]);
        assert_eq!((ct.keys["features"].as_str(), ct.keys["memory"].as_str()), ("fuse=1", "1024"));
        assert!(ct.pending.is_empty() && !ct.to_text().contains("pending"));
    }
}
