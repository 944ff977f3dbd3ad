//! A rehearsal's guests as folders (`<root>/guest-<vmid>`), as they are once provisioned: the
//! accounts their files are owned by exist in their own `etc/passwd` and `etc/group`. The
//! `phoenix-sim` binary, the bare lab and the test rigs prepare their folders with it.

use crate::pve::storage::StorageCfg;
use crate::pve::PveSim;
use phoenix_core::render::Rendered;
use phoenix_model::model::Model;
use std::collections::BTreeMap;
use std::path::Path;

/// The bridges the configuration's node has: its main bridge and the others it names
/// (`network.internal_bridge`, the VLAN bridges), as the original's setup scripts made them.
pub fn node_bridges(model: &Model) -> Vec<String> {
    let main = model.host.bridge.clone().unwrap_or_else(|| "vmbr0".into());
    std::iter::once(main).chain(model.host.bridges.iter().map(|b| b.name.clone())).collect()
}

/// The configuration's node, or its cluster of nodes (`proxmox.nodes`, each at its management
/// address), each with the configuration's bridges (a guest migrates only between nodes that
/// have its bridges: a cluster's nodes are set up alike).
pub fn cluster(model: &Model) -> PveSim {
    let nodes: Vec<(&str, Option<std::net::IpAddr>)> =
        model.host.nodes.iter().map(|n| (n.name.as_str(), n.address.as_ref().map(|a| std::net::IpAddr::V4(a.value)))).collect();
    let mut sim = if nodes.is_empty() { PveSim::new(&model.host.node_name) } else { PveSim::cluster(&nodes) };
    sim.bridges.extend(node_bridges(model));
    sim
}

/// A node for a configuration with no guests on it: its storages as the configuration
/// describes them (`zfs.datasets`), and `local` (`dir` at /var/lib/vz for ISOs, OS templates,
/// backups and images to import), which a Proxmox VE installation creates: the content list is
/// the one pve-installer's `Proxmox/Install/StorageConfig.pm` (`get_zfs_config`,
/// `get_lvm_thin_config`) writes since it added `import` (PVE 8.3 and 9).
pub fn empty_node(model: &Model) -> PveSim {
    let mut sim = cluster(model);
    let mut local = BTreeMap::new();
    local.insert("path".to_string(), "/var/lib/vz".to_string());
    let content = ["iso", "vztmpl", "backup", "import"].map(str::to_string).to_vec();
    sim.add_storage(StorageCfg { id: "local".into(), kind: "dir".into(), content, options: local });
    for storage in &model.host.storages {
        let mut options = BTreeMap::new();
        match &storage.path {
            Some(path) => options.insert("path".to_string(), path.clone()),
            None => options.insert("pool".to_string(), storage.id.replacen('-', "/", 1)),
        };
        sim.add_storage(StorageCfg { id: storage.id.clone(), kind: storage.kind.clone(), content: storage.content.clone(), options });
    }
    sim
}

/// Gives every guest folder under `root` (`guest-<vmid>`) the accounts its files are owned
/// by, as a guest has them once its services are installed (see
/// [`phoenix_core::lab::guest_accounts`]).
pub fn write_guest_accounts(root: &Path, model: &Model, rendered: &Rendered) -> std::io::Result<()> {
    for (id, (passwd, group)) in phoenix_core::lab::guest_accounts(model, rendered) {
        let etc = root.join(format!("guest-{id}")).join("etc");
        std::fs::create_dir_all(&etc)?;
        std::fs::write(etc.join("passwd"), passwd)?;
        std::fs::write(etc.join("group"), group)?;
    }
    Ok(())
}
