//! What Proxmox VE lets only `root@pam` set in a container's config, and so not phoenix's API
//! token (pve-container `check_ct_modify_config_perm`: bind and device mount points, features
//! other than `nesting`; raw `lxc.*` keys are no API parameters at all): written into the
//! container's `.conf` on the node, as its root does (the original appended them there), the
//! cluster file system making the change the guest's config. Also how a dead worker's `lock`
//! is removed (`pct unlock` edits the file so). Pure: the step and the edit.

use super::guests::GuestState;
use super::{Action, Domain, Step};
use crate::deploy::Place;
use phoenix_model::model::{Guest, GuestKind, MountSource};

/// `pct_options` as the `features` property string (keys in order, as pve-container prints it).
pub fn features(guest: &Guest) -> String {
    let mut items: Vec<&str> = guest.spec.features.iter().map(|f| f.value.as_str()).collect();
    items.sort_by_key(|f| f.split('=').next().unwrap_or_default().to_string());
    items.join(",")
}

/// Whether the features are the token's to set (only `nesting`).
pub fn api_features(guest: &Guest) -> bool {
    guest.spec.features.iter().all(|f| f.value.starts_with("nesting="))
}

/// A line of `lxc_options` as the original wrote it (`lxc.apparmor.profile=unconfined`,
/// `lxc.mount.auto:sys:rw`, `lxc.cgroup2.devices.allow: c 195:* rwm`): key and value.
fn raw_line(text: &str) -> Option<(String, String)> {
    let at = text.find([':', '='])?;
    let (key, value) = (text[..at].trim(), text[at + 1..].trim());
    (key.starts_with("lxc.") && !value.is_empty()).then(|| (key.to_string(), value.to_string()))
}

/// NVIDIA device access for a container with GPUs, as the original wrote it (character
/// devices 195 and the nvidia-uvm major 243, the control and UVM nodes, one node per GPU).
fn gpu_lines(guest: &Guest) -> Vec<(String, String)> {
    if guest.spec.gpus.is_empty() {
        return Vec::new();
    }
    let allow = |major: &str| ("lxc.cgroup2.devices.allow".to_string(), format!("c {major}:* rwm"));
    let entry = |node: &str| ("lxc.mount.entry".to_string(), format!("/dev/{node} dev/{node} none bind,optional,create=file"));
    let mut lines = vec![allow("195"), allow("243"), entry("nvidiactl"), entry("nvidia-uvm"), entry("nvidia-uvm-tools")];
    lines.extend(guest.spec.gpus.iter().map(|g| entry(&format!("nvidia{}", g.value))));
    lines
}

/// The root-only settings of a container as (keys, raw lines): all features when one is not
/// `nesting`, bind mounts (numbered after the volumes' mount points), `lxc_options`, GPU lines.
pub fn settings(guest: &Guest) -> (Vec<(String, String)>, Vec<(String, String)>) {
    let spec = &guest.spec;
    if guest.kind != GuestKind::Lxc {
        return (Vec::new(), Vec::new());
    }
    let mut keys = Vec::new();
    if !api_features(guest) {
        keys.push(("features".to_string(), features(guest)));
    }
    let volumes = spec.mounts.iter().filter(|m| matches!(m.source, MountSource::Volume { .. })).count();
    for (index, mount) in spec.mounts.iter().filter(|m| matches!(m.source, MountSource::Bind(_))).enumerate() {
        if let MountSource::Bind(host) = &mount.source {
            keys.push((format!("mp{}", volumes + index), format!("{},mp={}", host.value, mount.path.value)));
        }
    }
    let mut raw: Vec<(String, String)> = spec.raw_lxc.iter().filter_map(|l| raw_line(&l.value)).collect();
    raw.extend(gpu_lines(guest));
    (keys, raw)
}

/// The step writing the root-only settings a container lacks (a created one: all of them).
/// `notes` are what the container will find at its bind mounts (`bind_mounts::notes`), said
/// in the step's reason and diff.
pub fn step(node: &str, guest: &Guest, state: Option<&GuestState>, after: Vec<String>, notes: &[String]) -> Option<Step> {
    let (keys, raw) = settings(guest);
    let observed_raw: Vec<(String, String)> = state
        .and_then(|s| s.config.get("lxc"))
        .map(|text| text.lines().filter_map(|l| l.split_once(": ")).map(|(k, v)| (k.to_string(), v.to_string())).collect())
        .unwrap_or_default();
    let set: Vec<(String, String)> = keys.into_iter().filter(|(k, v)| state.and_then(|s| s.config.get(k)) != Some(v)).collect();
    let add: Vec<(String, String)> = raw.into_iter().filter(|line| !observed_raw.contains(line)).collect();
    if set.is_empty() && add.is_empty() {
        return None;
    }
    let id = guest.id;
    let place = Place::host(format!("/etc/pve/nodes/{node}/lxc/{id}.conf"));
    let mut diff: String = set.iter().chain(&add).map(|(k, v)| format!("+ {k}: {v}\n")).collect();
    diff.extend(notes.iter().map(|n| format!("! {n}\n")));
    let mut reason = "the API lets only root@pam set raw lxc.* lines, bind mounts and features other than nesting: \
                      written into the container's config on the node, as its root does"
        .to_string();
    for note in notes {
        reason.push_str(&format!("; warning: {note}"));
    }
    Some(Step {
        id: format!("guest:{id}:node-conf"),
        domain: Domain::Guests,
        title: format!("LXC {id}: settings only root may make, in {}", place.path),
        reason,
        diff,
        action: Action::NodeConf { place, set, raw: add, remove: Vec::new() },
        after,
        lock: Some(format!("guest:{id}")),
        node: None,
        calls: 2,
    })
}

/// A guest `.conf` with `set` keys replaced (or added) and `raw` lines added, in its main
/// section; the snapshot and pending sections kept as they are.
pub fn edit_conf(text: &str, set: &[(String, String)], raw: &[(String, String)], remove: &[String]) -> String {
    let (main, rest) = match text.find("\n[") {
        Some(at) => (&text[..at + 1], &text[at + 1..]),
        None if text.starts_with('[') => ("", text),
        None => (text, ""),
    };
    let mut lines: Vec<String> = main.lines().filter(|l| !l.is_empty()).map(str::to_string).collect();
    lines.retain(|l| !l.split_once(':').is_some_and(|(k, _)| remove.iter().any(|r| r == k.trim())));
    for (key, value) in set {
        let line = format!("{key}: {value}");
        match lines.iter().position(|l| l.split_once(':').is_some_and(|(k, _)| k.trim() == key)) {
            Some(at) => lines[at] = line,
            None => lines.push(line),
        }
    }
    for (key, value) in raw {
        let line = format!("{key}: {value}");
        if !lines.contains(&line) {
            lines.push(line);
        }
    }
    let mut out: String = lines.iter().map(|l| format!("{l}\n")).collect();
    if !rest.is_empty() {
        out.push('\n');
        out.push_str(rest);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_conf_keeps_its_sections_and_gains_only_what_is_missing() {
        let text = "arch: amd64\nfeatures: nesting=1\nlxc.apparmor.profile: unconfined\n\n[snap]\narch: amd64\n";
        let set = [("features".to_string(), "keyctl=1,nesting=1".to_string())];
        let raw = [("lxc.apparmor.profile".to_string(), "unconfined".to_string()), ("lxc.mount.auto".to_string(), "sys:rw".to_string())];
        let edited = edit_conf(text, &set, &raw, &[]);
        assert_eq!(
            edited,
            "arch: amd64\nfeatures: keyctl=1,nesting=1\nlxc.apparmor.profile: unconfined\nlxc.mount.auto: sys:rw\n\n[snap]\narch: amd64\n"
        );
        assert_eq!(edit_conf(&edited, &set, &raw, &[]), edited, "a second edit changes nothing");
        assert_eq!(edit_conf("lock: create\narch: amd64\n", &[], &[], &["lock".into()]), "arch: amd64\n");
    }

    #[test]
    fn the_originals_option_spellings_are_read() {
        assert_eq!(raw_line("lxc.mount.auto:sys:rw"), Some(("lxc.mount.auto".into(), "sys:rw".into())));
        assert_eq!(raw_line("lxc.apparmor.profile=unconfined"), Some(("lxc.apparmor.profile".into(), "unconfined".into())));
        assert_eq!(raw_line("lxc.cgroup2.devices.allow: c 195:* rwm"), Some(("lxc.cgroup2.devices.allow".into(), "c 195:* rwm".into())));
        assert_eq!(raw_line("nesting=1"), None);
    }
}
