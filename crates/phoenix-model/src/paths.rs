//! Paths and defaults phoenix shares across crates: the configuration folder and the
//! certificate store phoenix uses when none is given, the store's file names, where the CA root
//! is installed in guests, where Proxmox VE keeps the firewall files, and where the original's
//! installation keeps its scripts. One home, so the CLI's defaults, the renderers, the lab and
//! the drivers cannot disagree. Constants and pure path arithmetic only.

use crate::model::GuestKind;
use std::path::{Path, PathBuf};

/// The original's configuration folder, phoenix's default `--config`.
pub const DEFAULT_CONFIG_DIR: &str = "/usr/local/phoenix_hypervisor/etc";

/// phoenix's certificate store on the Proxmox host, the default `--store`.
pub const DEFAULT_STORE: &str = "/var/lib/phoenix/certs";

/// The CA root's file name in the store (and in `assess --certs DIR`).
pub const STORE_ROOT_FILE: &str = "root_ca.crt";

/// The CA root's SHA-256 fingerprint (of its DER, lower-case hex, as `step certificate
/// fingerprint` prints it and `step ca bootstrap --fingerprint` takes it), beside the root in
/// the store once phoenix exported Step-CA's root.
pub const STORE_ROOT_FINGERPRINT_FILE: &str = "root_ca.fingerprint";

/// Where phoenix installs the Step-CA root in a Debian trust store folder: on every guest,
/// and on the host unless `--trust-file` says otherwise.
pub const TRUSTED_ROOT_PATH: &str = "/usr/local/share/ca-certificates/phoenix-root-ca.crt";

/// The cluster-wide firewall file (pmxcfs; `PVE::Firewall::cluster_fw_conf_filename`).
pub const CLUSTER_FW: &str = "/etc/pve/firewall/cluster.fw";

/// A node's host firewall file (`PVE::Firewall::host_fw_conf_filename`).
pub fn host_fw(node: &str) -> String {
    format!("/etc/pve/nodes/{node}/host.fw")
}

/// A guest's firewall file (`$pvefw_conf_dir/<vmid>.fw` in PVE::Firewall).
pub fn guest_fw(id: impl std::fmt::Display) -> String {
    format!("/etc/pve/firewall/{id}.fw")
}

/// Features the original phoenix_hypervisor scripts provide.
pub const KNOWN_FEATURES: &[&str] = &[
    "base_setup",
    "docker",
    "nvidia",
    "ollama",
    "portainer",
    "python_api_service",
    "step_ca",
    "step_cli",
    "traefik",
    "trusted_ca",
    "vllm",
];

/// Where an application script may be installed, relative to the installation root.
pub fn application_script_candidates(root: &Path, kind: GuestKind, script: &str) -> Vec<PathBuf> {
    let folder = match kind {
        GuestKind::Lxc => "lxc_setup",
        GuestKind::Vm => "vm_setup",
    };
    vec![root.join("bin").join(folder).join(script), root.join("bin").join(script)]
}

/// Where a feature's installer lives.
pub fn feature_script(root: &Path, feature: &str) -> PathBuf {
    root.join("bin/lxc_setup").join(format!("phoenix_hypervisor_feature_install_{feature}.sh"))
}

/// Whether `name` can be one path component on its own: not empty, not `.` or `..`, no `/`
/// or NUL, at most 255 bytes (NAME_MAX). Stack and environment names become folder names.
pub fn one_component(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && name.len() <= 255 && !name.contains(['/', '\0'])
}

/// Why `path` is not a normalised absolute path in a guest (`None` when it is one): it must
/// start with `/`, and hold no `.`, `..` or empty component and no NUL, so that joined under
/// a root it stays there.
pub fn guest_path_problem(path: &str) -> Option<&'static str> {
    if !path.starts_with('/') {
        return Some("is not absolute");
    }
    if path.contains('\0') {
        return Some("contains a NUL byte");
    }
    let inner = path.trim_start_matches('/');
    if inner.is_empty() {
        return Some("names no file");
    }
    match inner.split('/').find(|c| c.is_empty() || *c == "." || *c == "..") {
        Some("..") => Some("climbs out with `..`"),
        Some(_) => Some("is not normalised (an empty or `.` component)"),
        None => None,
    }
}

/// Whether `relative` stays inside the tree it is joined to: a relative path of plain
/// components (no `/` at the start, no `..`). Files the configuration names (compose files,
/// stack files, application scripts) are read only when they do.
pub fn within_tree(relative: &str) -> bool {
    use std::path::Component;
    !relative.is_empty()
        && !relative.contains('\0')
        && Path::new(relative).components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

/// The cluster's corosync configuration (pve-firewall reads its links for the host's rules).
pub const COROSYNC_CONF: &str = "/etc/pve/corosync.conf";

/// Where `scripts/test` unpacks the real Traefik (under the user's home; Debian does not
/// package it): the lab and the tests look there when PHOENIX_TRAEFIK names none.
pub const TRAEFIK_CACHE_BINARY: &str = ".cache/phoenix/traefik-3.7.15/traefik";

/// The guest whose folder in the original's persistent-data layout `path` is or lies in:
/// `.../lxc-persistent-data/<ctid>[/...]` or `.../vm-persistent-data/<vmid>[/...]` (the
/// original's certificate manager and mounts used these). The guest need not exist.
pub fn persistent_data_guest(path: &str) -> Option<(crate::model::GuestId, GuestKind)> {
    let parts: Vec<&str> = path.split('/').collect();
    parts.windows(2).find_map(|w| {
        let kind = match w[0] {
            "lxc-persistent-data" => GuestKind::Lxc,
            "vm-persistent-data" => GuestKind::Vm,
            _ => return None,
        };
        Some((w[1].parse().ok()?, kind))
    })
}
