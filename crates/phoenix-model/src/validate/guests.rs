//! What Proxmox VE would refuse or get wrong when it creates the guests: storages that do not
//! exist or lack the content type, clones smaller than their source, mount points a container
//! cannot use, a VM's GPU given to another guest too, boot orders against the dependencies,
//! guests nothing says how to create, and templates given snapshots.

use crate::diag::Diagnostic;
use crate::model::{Guest, GuestKind, Located, Model, MountSource, Origin, Storage};
use std::collections::BTreeMap;

pub fn check(model: &Model) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for guest in model.guests.values() {
        storages(model, guest, &mut out);
        clone_size(model, guest, &mut out);
        mount_paths(guest, &mut out);
        boot_order(model, guest, &mut out);
        if let Some(snapshot) = guest.spec.lifecycle_snapshots.first().filter(|_| guest.is_template) {
            let message = format!("{} is a template: its lifecycle snapshots are not taken", guest.label());
            out.push(Diagnostic::at("PHX-GUEST-018", snapshot.name.span, message).help("a template cannot have snapshots; remove them"));
        }
        if guest.spec.origin == Origin::Unspecified {
            out.push(Diagnostic::at("PHX-GUEST-017", guest.id_span, format!("nothing says how to create {}", guest.label())).help(
                match guest.kind {
                    GuestKind::Lxc => "add `template` (an OS template) or `clone_from_ctid`",
                    GuestKind::Vm => "add `template_image` (a cloud image) or `clone_from_vmid`",
                },
            ));
        }
    }
    gpus(model, &mut out);
    out
}

/// The storage an OS template lives on: `storage:vztmpl/file`, or a path below a `dir`
/// storage's `template/cache/`.
pub fn template_storage<'m>(model: &'m Model, template: &str) -> Option<&'m Storage> {
    match template.split_once(':') {
        Some((id, _)) if !template.starts_with('/') => model.host.storages.iter().find(|s| s.id == id),
        _ => {
            model.host.storages.iter().find(|s| {
                s.path.as_deref().is_some_and(|p| template.strip_prefix(p).is_some_and(|rest| rest.starts_with("/template/cache/")))
            })
        }
    }
}

fn storages(model: &Model, guest: &Guest, out: &mut Vec<Diagnostic>) {
    if model.host.storages.is_empty() {
        return; // The configuration does not describe the node's storages.
    }
    let disk = if guest.kind == GuestKind::Lxc { "rootdir" } else { "images" };
    let mut wanted: Vec<(&Located<String>, &str, &str)> = guest.spec.storage.iter().map(|s| (s, disk, "its disk")).collect();
    for mount in &guest.spec.mounts {
        if let MountSource::Volume { storage, .. } = &mount.source {
            wanted.push((storage, "rootdir", "a volume"));
        }
    }
    for (storage, content, what) in wanted {
        let message = match model.host.storages.iter().find(|s| s.id == storage.value) {
            None => format!("{} puts {what} on storage `{}`, which the node does not have", guest.label(), storage.value),
            Some(found) if !found.holds(content) => format!(
                "{} puts {what} on storage `{}`, whose content types ({}) do not include `{content}`",
                guest.label(),
                storage.value,
                found.content.join(",")
            ),
            Some(_) => continue,
        };
        out.push(Diagnostic::at("PHX-GUEST-012", storage.span, message).help(known(model, content)));
    }
    if let Origin::OsTemplate(template) = &guest.spec.origin {
        let message = match template_storage(model, &template.value) {
            None => format!("no storage of the node holds the OS template `{}`", template.value),
            Some(found) if !found.holds("vztmpl") => {
                format!("the OS template `{}` is on storage `{}`, which does not hold `vztmpl` content", template.value, found.id)
            }
            Some(_) => return,
        };
        out.push(Diagnostic::at("PHX-GUEST-012", template.span, message).help(known(model, "vztmpl")));
    }
}

fn known(model: &Model, content: &str) -> String {
    let ids: Vec<&str> = model.host.storages.iter().filter(|s| s.holds(content)).map(|s| s.id.as_str()).collect();
    if ids.is_empty() {
        format!("no storage holds `{content}`: add it to a dataset's proxmox_content_type")
    } else {
        format!("storages holding `{content}`: {}", ids.join(", "))
    }
}

fn clone_size(model: &Model, guest: &Guest, out: &mut Vec<Diagnostic>) {
    let Origin::Clone { from, .. } = &guest.spec.origin else { return };
    let (Some(source), Some(size)) = (model.guests.get(&from.value), &guest.spec.disk_gb) else { return };
    if let Some(source_size) = source.spec.disk_gb.as_ref().filter(|s| s.value > size.value) {
        out.push(
            Diagnostic::at(
                "PHX-GUEST-013",
                size.span,
                format!(
                    "{} is {} GB, smaller than its source {} ({} GB): Proxmox VE never shrinks a disk",
                    guest.label(),
                    size.value,
                    source.label(),
                    source_size.value
                ),
            )
            .related(source_size.span, "the source's size")
            .help(format!("give at least {} GB", source_size.value)),
        );
    }
}

fn mount_paths(guest: &Guest, out: &mut Vec<Diagnostic>) {
    for mount in &guest.spec.mounts {
        let path = &mount.path.value;
        let normal = path.starts_with('/') && !path.split('/').skip(1).any(|c| c.is_empty() || c == "." || c == "..");
        let reserved = ["/proc", "/sys", "/dev"].iter().any(|r| path == r || path.starts_with(&format!("{r}/")));
        let problem = if !normal || path == "/" {
            Some(format!("`{path}` is not an absolute, normalised path other than `/`"))
        } else if reserved {
            Some(format!("`{path}` is inside /proc, /sys or /dev"))
        } else {
            match &mount.source {
                MountSource::Bind(host) if !host.value.starts_with('/') || host.value.starts_with("/etc/pve") => {
                    Some(format!("the host folder `{}` is not an absolute path outside /etc/pve", host.value))
                }
                _ => None,
            }
        };
        if let Some(problem) = problem {
            out.push(
                Diagnostic::at("PHX-GUEST-014", mount.span, format!("{}: mount point {problem}", guest.label()))
                    .help("mount at an absolute path such as /srv/data"),
            );
        }
    }
}

fn boot_order(model: &Model, guest: &Guest, out: &mut Vec<Diagnostic>) {
    let Some(order) = guest.boot.order.filter(|_| guest.boot.start_at_boot) else { return };
    for dependency in &guest.dependencies {
        let Some(other) = model.guests.get(&dependency.value) else { continue };
        if let Some(before) = other.boot.order.filter(|o| other.boot.start_at_boot && *o > order) {
            out.push(
                Diagnostic::at(
                    "PHX-GUEST-016",
                    dependency.span,
                    format!("{} boots at order {order}, before {} (order {before}), which it depends on", guest.label(), other.label()),
                )
                .help(format!("give {} a boot_order above {before}", guest.label())),
            );
        }
    }
}

fn gpus(model: &Model, out: &mut Vec<Diagnostic>) {
    let mut holders: BTreeMap<u32, Vec<&Guest>> = BTreeMap::new();
    for guest in model.guests.values() {
        for gpu in &guest.spec.gpus {
            holders.entry(gpu.value).or_default().push(guest);
        }
    }
    for (gpu, guests) in holders {
        if guests.len() < 2 || guests.iter().all(|g| g.kind == GuestKind::Lxc) {
            continue;
        }
        let second = guests[1];
        let span = second.spec.gpus.iter().find(|g| g.value == gpu).map_or(second.id_span, |g| g.span);
        out.push(
            Diagnostic::at("PHX-GUEST-015", span, format!("GPU {gpu} is given to {} and {}", guests[0].label(), second.label()))
                .help("a GPU passed through to a VM belongs to that VM alone"),
        );
    }
}
