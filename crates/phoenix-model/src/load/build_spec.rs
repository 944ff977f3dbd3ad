//! What each guest is made of (`GuestSpec`): origin, resources, disk, container options and
//! mounts, cloud-init, from the guest's own keys and, for VMs, `vm_defaults`; and the node's
//! storages from the hypervisor file's `zfs.datasets`. Values the original accepted loosely
//! (`gpu_assignment: "0, 1"`, `user_config` as a Python-style string) are read as it read them.

use super::build_guests::At;
use super::Ctx;
use crate::diag::Diagnostic;
use crate::json::{join, JsonDoc};
use crate::model::*;
use crate::raw::{RawGuestCommon, RawLxcFields, RawVmDefaults, RawVmFields};
use crate::source::Span;
use serde_json::Value;

fn located<T: Clone>(at: &At<'_>, key: &str, value: &Option<T>) -> Option<Located<T>> {
    value.as_ref().map(|v| Located::new(v.clone(), at.span(key)))
}

fn list(at: &At<'_>, key: &str, items: &[String]) -> Vec<Located<String>> {
    items.iter().enumerate().map(|(i, v)| Located::new(v.trim().to_string(), at.item(key, i))).collect()
}

/// The resources both kinds share.
fn shared(at: &At<'_>, raw: &RawGuestCommon) -> GuestSpec {
    GuestSpec {
        memory_mb: located(at, "memory_mb", &raw.memory_mb),
        cores: located(at, "cores", &raw.cores),
        storage: located(at, "storage_pool", &raw.storage_pool),
        ..GuestSpec::default()
    }
}

/// A clone (its snapshot is filled in by [`resolve_clone_snapshots`]), else the image.
fn origin_of(clone_from: Option<&Located<GuestId>>, image: Option<Located<String>>) -> Origin {
    match (clone_from, image) {
        (Some(from), _) => Origin::Clone { from: from.clone(), snapshot: None },
        (None, Some(image)) => Origin::CloudImage(image),
        (None, None) => Origin::Unspecified,
    }
}

/// A container's spec.
pub(super) fn lxc_spec(
    at: &At<'_>,
    raw: &RawGuestCommon,
    own: &RawLxcFields,
    clone_from: Option<&Located<GuestId>>,
    ctx: &mut Ctx<'_>,
) -> GuestSpec {
    let template = located(at, "template", &own.template);
    let origin = match (clone_from, template) {
        (None, Some(template)) => Origin::OsTemplate(template),
        (from, _) => origin_of(from, None),
    };
    GuestSpec {
        origin,
        swap_mb: located(at, "swap_mb", &own.swap_mb),
        disk_gb: located(at, "storage_size_gb", &own.storage_size_gb),
        unprivileged: own.unprivileged,
        features: list(at, "pct_options", &own.pct_options),
        raw_lxc: list(at, "lxc_options", &own.lxc_options),
        apparmor_profile: located(at, "apparmor_profile", &own.apparmor_profile),
        mounts: mounts(at, own, ctx),
        gpus: gpus(at, own.gpu_assignment.as_deref(), ctx),
        lifecycle_snapshots: lxc_lifecycle_snapshots(at, raw),
        ..shared(at, raw)
    }
}

/// A VM's spec: its own keys, else `vm_defaults`'.
pub(super) fn vm_spec(
    at: &At<'_>,
    raw: &RawGuestCommon,
    own: &RawVmFields,
    defaults: &RawVmDefaults,
    default_span: &dyn Fn(&str) -> Span,
    clone_from: Option<&Located<GuestId>>,
) -> GuestSpec {
    let base = shared(at, raw);
    // A default is located where vm_defaults sets it.
    let or_default =
        |value: Option<Located<u64>>, key: &str, default: Option<u64>| value.or(default.map(|d| Located::new(d, default_span(key))));
    GuestSpec {
        origin: origin_of(clone_from, located(at, "template_image", &own.template_image)),
        memory_mb: or_default(base.memory_mb.clone(), "memory_mb", defaults.memory_mb),
        cores: base.cores.clone().or(defaults.cores.map(|c| Located::new(c, default_span("cores")))),
        storage: base.storage.clone().or(defaults.storage_pool.clone().map(|s| Located::new(s, default_span("storage_pool")))),
        disk_gb: or_default(located(at, "disk_size_gb", &own.disk_size_gb), "disk_size_gb", defaults.disk_size_gb),
        cloud_init: cloud_init(own),
        lifecycle_snapshots: vm_snapshots(at, own),
        ..base
    }
}

/// `enable_lifecycle_snapshots` of a container: the original's `pre-configured` and
/// `final-form` (it read the flag for containers only).
fn lxc_lifecycle_snapshots(at: &At<'_>, raw: &RawGuestCommon) -> Vec<LifecycleSnapshot> {
    if raw.enable_lifecycle_snapshots != Some(true) {
        return Vec::new();
    }
    let span = at.span("enable_lifecycle_snapshots");
    [(SetupPoint::BeforeSetup, "pre-configured"), (SetupPoint::AfterSetup, "final-form")]
        .into_iter()
        .map(|(point, name)| LifecycleSnapshot { point, name: Located::new(name.to_string(), span) })
        .collect()
}

/// A VM's `snapshots` (`pre-features`, `post-features`; the early revisions wrote
/// `pre_features`, `post_features`).
fn vm_snapshots(at: &At<'_>, own: &RawVmFields) -> Vec<LifecycleSnapshot> {
    let Some(snapshots) = &own.snapshots else { return Vec::new() };
    let spelled = |name: &'static str, early: &'static str, value: &Option<String>, early_value: &Option<String>| match value {
        Some(_) => (name, value.clone()),
        None => (early, early_value.clone()),
    };
    let (pre_key, pre) = spelled("pre-features", "pre_features", &snapshots.pre_features, &snapshots.pre_features_early);
    let (post_key, post) = spelled("post-features", "post_features", &snapshots.post_features, &snapshots.post_features_early);
    let points = [(SetupPoint::BeforeSetup, pre_key, &pre), (SetupPoint::AfterSetup, post_key, &post)];
    points
        .into_iter()
        .filter_map(|(point, key, name)| {
            let name = name.as_ref().filter(|n| !n.trim().is_empty())?;
            Some(LifecycleSnapshot { point, name: Located::new(name.trim().to_string(), at.member("snapshots", key)) })
        })
        .collect()
}

/// `user_config`: an object, or the string the original wrote (`"{'username': 'x'}"`).
fn cloud_init(own: &RawVmFields) -> CloudInit {
    let value = match &own.user_config {
        Some(Value::String(text)) => serde_json::from_str(&text.replace('\'', "\"")).unwrap_or(Value::Null),
        Some(other) => other.clone(),
        None => Value::Null,
    };
    let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_string);
    let keys = ["ssh_keys", "ssh_authorized_keys"]
        .iter()
        .filter_map(|k| value.get(*k))
        .flat_map(|v| match v {
            Value::String(s) => vec![s.clone()],
            Value::Array(items) => items.iter().filter_map(Value::as_str).map(str::to_string).collect(),
            _ => Vec::new(),
        })
        .collect();
    CloudInit { user: text("username").or_else(|| text("user")), ssh_keys: keys, search_domain: None }
}

/// `mount_points` (bind mounts) then `zfs_volumes` (allocated volumes).
fn mounts(at: &At<'_>, own: &RawLxcFields, ctx: &mut Ctx<'_>) -> Vec<Mount> {
    let mut found = Vec::new();
    for (key, items, path_key) in [("mount_points", &own.mount_points, "container_path"), ("zfs_volumes", &own.zfs_volumes, "mount_point")]
    {
        for (i, item) in items.iter().enumerate() {
            let span = at.item(key, i);
            let text = |k: &str| item.get(k).and_then(Value::as_str).map(|s| Located::new(s.to_string(), span));
            let Some(path) = text(path_key) else {
                ctx.push(
                    Diagnostic::at("PHX-GUEST-010", span, format!("this {key} entry has no `{path_key}`"))
                        .help(format!("give the path inside the container as `{path_key}`")),
                );
                continue;
            };
            let source = if key == "mount_points" {
                match text("host_path") {
                    Some(host) => MountSource::Bind(host),
                    None => {
                        ctx.push(
                            Diagnostic::at("PHX-GUEST-010", span, "this mount point has no `host_path`")
                                .help("give the host folder to bind-mount"),
                        );
                        continue;
                    }
                }
            } else {
                let size_gb = item.get("size_gb").and_then(Value::as_u64).unwrap_or(0);
                match text("pool") {
                    Some(storage) if size_gb > 0 => MountSource::Volume { storage, size_gb },
                    _ => {
                        ctx.push(
                            Diagnostic::at("PHX-GUEST-010", span, "this volume needs a `pool` and a `size_gb` above 0")
                                .help("name the storage and the size in GB"),
                        );
                        continue;
                    }
                }
            };
            found.push(Mount { source, path, span });
        }
    }
    found
}

/// `gpu_assignment`: `none`, or GPU indexes separated by commas (`"0, 1"`).
fn gpus(at: &At<'_>, text: Option<&str>, ctx: &mut Ctx<'_>) -> Vec<Located<u32>> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty() && !t.eq_ignore_ascii_case("none")) else { return Vec::new() };
    let span = at.span("gpu_assignment");
    let mut found = Vec::new();
    for part in text.split(',').map(str::trim) {
        match part.parse::<u32>() {
            Ok(index) => found.push(Located::new(index, span)),
            Err(_) => ctx.push(
                Diagnostic::at("PHX-GUEST-011", span, format!("`{part}` is not a GPU index"))
                    .help("write `none` or the host GPU indexes separated by commas, e.g. \"0,1\""),
            ),
        }
    }
    found
}

/// Clones start from their source's `template_snapshot_name`.
/// A template has no snapshots (pve-container and qemu-server refuse to convert a guest that
/// has some, and to snapshot a template), so a template is cloned as it is.
pub(super) fn resolve_clone_snapshots(model: &mut Model) {
    let snapshots: std::collections::BTreeMap<GuestId, Option<String>> =
        model.guests.values().map(|g| (g.id, g.template_snapshot.clone().filter(|_| !g.is_template))).collect();
    for guest in model.guests.values_mut() {
        if let Origin::Clone { from, snapshot } = &mut guest.spec.origin {
            *snapshot = snapshots.get(&from.value).cloned().flatten();
        }
    }
}

/// The node's storages: each ZFS dataset the original registers with Proxmox VE, named
/// `<pool>-<name>` (its `proxmox_storage_ids`), a `dir` storage at the dataset's mount point.
pub(super) fn storages(model: &mut Model, zfs: Option<&Value>, doc: &JsonDoc) {
    let Some(datasets) = zfs.and_then(|z| z.get("datasets")).and_then(Value::as_array) else { return };
    for (i, dataset) in datasets.iter().enumerate() {
        let text = |k: &str| dataset.get(k).and_then(Value::as_str).map(str::to_string);
        let (Some(name), Some(pool)) = (text("name"), text("pool")) else { continue };
        let kind = text("proxmox_storage_type").unwrap_or_else(|| "zfspool".into());
        let content =
            text("proxmox_content_type").unwrap_or_default().split(',').map(|c| c.trim().to_string()).filter(|c| !c.is_empty()).collect();
        let path = (kind == "dir").then(|| format!("/{pool}/{name}"));
        let span = doc.span(&join("/zfs/datasets", i));
        model.host.storages.push(Storage { id: format!("{pool}-{name}"), kind, content, path, span });
    }
}
