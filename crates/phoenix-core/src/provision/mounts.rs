//! A VM's NFS volumes as systemd mount units: the NFS client (nfs-common), one unit per
//! volume named for its mount point as systemd requires (systemd.mount(5): "Mount units must
//! be named after the mount point directories they control"), enabled for remote-fs.target and
//! mounted; a changed unit is re-read and the volume remounted. Pure: resources out.

use super::resource::{ManagedFile, Resource};
use phoenix_model::model::NfsVolume;

/// The feature's name in the plan.
pub const NFS_VOLUMES: &str = "nfs_volumes";

/// `systemd-escape --path --suffix=mount`: slashes trimmed and turned into `-`, every byte but
/// ASCII letters, digits, `:`, `_` and a `.` not leading written `\xNN` (systemd.unit(5),
/// "String Escaping for Inclusion in Unit Names").
pub fn mount_unit_name(path: &str) -> String {
    let trimmed = path.trim_matches('/');
    if trimmed.is_empty() {
        return "-.mount".into();
    }
    let mut out = String::new();
    for (i, byte) in trimmed.bytes().enumerate() {
        match byte {
            b'/' => out.push('-'),
            b'.' if i == 0 => out.push_str("\\x2e"),
            b if b.is_ascii_alphanumeric() || b":_.".contains(&b) => out.push(b as char),
            b => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push_str(".mount");
    out
}

/// The unit that mounts `volume`.
pub fn mount_unit(volume: &NfsVolume) -> String {
    format!(
        "# Rendered by phoenix; do not edit: phoenix sync overwrites it.\n\
         [Unit]\nDescription=NFS volume {} (phoenix)\n\n\
         [Mount]\nWhat={}:{}\nWhere={}\nType=nfs\nOptions=nofail\n\n\
         [Install]\nWantedBy=remote-fs.target\n",
        volume.name, volume.server.value, volume.path.value, volume.mount_point.value
    )
}

/// The NFS client, then each volume's unit, a daemon-reload when a unit changed, and the
/// mount enabled and active (remounted when its unit changed).
pub fn nfs_volumes(volumes: &[NfsVolume]) -> Vec<Resource> {
    let units: Vec<(String, String)> = volumes
        .iter()
        .map(|v| {
            let name = mount_unit_name(&v.mount_point.value);
            (format!("/etc/systemd/system/{name}"), name)
        })
        .collect();
    let paths: Vec<String> = units.iter().map(|(path, _)| path.clone()).collect();
    let mut out = vec![Resource::Packages { names: vec!["nfs-common".into()] }];
    out.extend(volumes.iter().zip(&paths).map(|(volume, path)| Resource::File(ManagedFile::new(path.clone(), mount_unit(volume), 0o644))));
    out.push(super::features::daemon_reload(&paths));
    out.extend(units.into_iter().map(|(path, unit)| Resource::Service { unit, watch: vec![path], reload: false, needs: None }));
    out
}
