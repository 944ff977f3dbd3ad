//! The user-namespace shift of an unprivileged container's bind mounts: the container sees a
//! host folder through its id map (`lxc.idmap`, by default `u 0 100000 65536` and
//! `g 0 100000 65536`, pve-container `PVE::LXC::parse_id_maps`), so a folder owned by a host id
//! outside that map belongs to `nobody` inside and the container's root cannot write there;
//! a folder that does not exist keeps the container from starting (lxc cannot mount it).
//! Pure: the owners are observed on the node (`PveObserved::bind_owners`), and this says, for
//! the plan, what the container will see. It changes nothing on the host: whose a data
//! folder is stays the admin's decision, the plan says the command.

use super::guests::GuestState;
use super::PveObserved;
use crate::deploy::FileMeta;
use phoenix_model::model::{Guest, GuestKind, Model, MountSource, Origin};

/// One id range of a container's map: ids `inside..inside+count` are host ids `host..`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Range {
    inside: u64,
    host: u64,
    count: u64,
}

/// The container's uid and gid maps: its `lxc.idmap` lines, else pve-container's default.
fn id_maps(guest: &Guest) -> (Vec<Range>, Vec<Range>) {
    let (mut users, mut groups) = (Vec::new(), Vec::new());
    for line in &guest.spec.raw_lxc {
        let Some(rest) = line.value.strip_prefix("lxc.idmap").map(|r| r.trim_start_matches([' ', ':', '='])) else { continue };
        let parts: Vec<&str> = rest.split_whitespace().collect();
        let numbers: Vec<u64> = parts.iter().skip(1).filter_map(|p| p.parse().ok()).collect();
        if let ([kind, ..], [inside, host, count]) = (parts.as_slice(), numbers.as_slice()) {
            let range = Range { inside: *inside, host: *host, count: *count };
            match *kind {
                "u" => users.push(range),
                "g" => groups.push(range),
                _ => {}
            }
        }
    }
    let default = Range { inside: 0, host: 100_000, count: 65_536 };
    if users.is_empty() && groups.is_empty() {
        return (vec![default], vec![default]);
    }
    (users, groups)
}

/// The id inside the container of host id `host`, if the map covers it.
fn inside(map: &[Range], host: u64) -> Option<u64> {
    map.iter().find(|r| host >= r.host && host < r.host + r.count).map(|r| r.inside + (host - r.host))
}

/// A host id from `stat`'s owner text: a number, or `root`; another name is a host account.
fn host_id(name: &str) -> Option<u64> {
    match name {
        "root" => Some(0),
        other => other.parse().ok(),
    }
}

/// Whether the container runs unprivileged: as described, else as its config says (an
/// existing container without the key is privileged), else as it will be made: a clone keeps
/// its source's, a new container is unprivileged (pve-container's create: "For creation, the
/// default is 1", the schema's `unprivileged`).
fn unprivileged(model: &Model, pve: &PveObserved, guest: &Guest, state: Option<&GuestState>) -> bool {
    let (mut current, mut observed) = (guest, state);
    for _ in 0..=model.guests.len() {
        if let Some(value) = current.spec.unprivileged {
            return value;
        }
        if let Some(state) = observed {
            return state.config.get("unprivileged").is_some_and(|v| v == "1");
        }
        match &current.spec.origin {
            Origin::Clone { from, .. } => match model.guests.get(&from.value) {
                Some(source) => (current, observed) = (source, pve.guest_states.get(&source.id)),
                None => return true,
            },
            _ => return true,
        }
    }
    true
}

/// What the container will find at each bind mount that is not what it needs, one line each.
pub fn notes(model: &Model, pve: &PveObserved, guest: &Guest, state: Option<&GuestState>) -> Vec<String> {
    if guest.kind != GuestKind::Lxc {
        return Vec::new();
    }
    let shifted = unprivileged(model, pve, guest, state);
    let (users, groups) = id_maps(guest);
    let mut notes = Vec::new();
    for mount in &guest.spec.mounts {
        let MountSource::Bind(host) = &mount.source else { continue };
        let folder = &host.value;
        match pve.bind_owners.get(folder) {
            None => {}
            Some(None) => notes.push(format!(
                "{folder} does not exist on the node: the container does not start until it does (`mkdir -p {folder}`{})",
                if shifted { format!(" then `chown {}:{} {folder}`", users[0].host, groups[0].host) } else { String::new() }
            )),
            Some(Some(meta)) if shifted => notes.extend(shift_note(folder, meta, &users, &groups, &mount.path.value)),
            Some(Some(_)) => {}
        }
    }
    notes
}

fn shift_note(folder: &str, meta: &FileMeta, users: &[Range], groups: &[Range], path: &str) -> Option<String> {
    let (user, group) = meta.owner.split_once(':').unwrap_or((meta.owner.as_str(), ""));
    let uid = host_id(user).and_then(|u| inside(users, u));
    let gid = host_id(group).and_then(|g| inside(groups, g));
    if uid.is_some() && gid.is_some() {
        return None;
    }
    Some(format!(
        "{folder} is owned by {} on the node, outside the container's id map: at {path} its files belong to nobody:nogroup \
         and the container's root cannot write there (`chown {}:{} {folder}` gives it to the container's root)",
        meta.owner, users[0].host, groups[0].host
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(owner: &str) -> FileMeta {
        FileMeta { mode: 0o755, owner: owner.into() }
    }

    #[test]
    fn the_default_map_shifts_by_100000_and_a_host_owned_folder_is_nobodys() {
        let default = [Range { inside: 0, host: 100_000, count: 65_536 }];
        assert_eq!(inside(&default, 100_033), Some(33));
        assert_eq!(inside(&default, 0), None);
        assert!(shift_note("/data", &meta("100000:100000"), &default, &default, "/srv").is_none());
        assert!(shift_note("/data", &meta("100033:100033"), &default, &default, "/srv").is_none(), "www-data inside");
        let note = shift_note("/data", &meta("root:root"), &default, &default, "/srv").unwrap();
        assert!(note.contains("owned by root:root") && note.contains("`chown 100000:100000 /data`"), "{note}");
        assert!(shift_note("/data", &meta("backup:100000"), &default, &default, "/srv").is_some(), "a host account");
    }
}
