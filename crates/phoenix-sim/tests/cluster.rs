//! The simulated cluster against the handlers it follows: `/cluster/resources` (pve-manager
//! `API2/Cluster.pm`), guest ids unique across nodes (`PVE::Cluster::check_vmid_unused`),
//! migration (qemu-server `API2/Qemu.pm` migrate_vm and `QemuMigrate.pm`, pve-container
//! `API2/LXC.pm` migrate_vm and `LXC/Migrate.pm`), clones to another node (clone_vm's
//! `target`), and HA's resources (pve-ha-manager `API2/HA/Resources.pm`). Every answer is
//! checked against the schema's `returns` by the simulator itself (a mismatch is a gap).

use phoenix_sim::pve::guest::GuestKind;
use phoenix_sim::pve::storage::StorageCfg;
use phoenix_sim::pve::PveSim;
use serde_json::{json, Value};
use std::time::Duration;

/// Two nodes sharing `nfs` (shared) and `local-zfs` (on both, local to each), `pve-only` on
/// pve alone; CT 101 and VM 1001 on pve (local disks), VM 2001 on pve2 (on nfs).
fn cluster() -> PveSim {
    let mut sim = PveSim::cluster(&[("pve", Some("10.0.0.13".parse().unwrap())), ("pve2", Some("10.0.0.14".parse().unwrap()))]);
    sim.settings.task_duration = Duration::ZERO;
    let storage = |id: &str, kind: &str, options: &[(&str, &str)]| StorageCfg {
        id: id.into(),
        kind: kind.into(),
        content: vec!["images".into(), "rootdir".into()],
        options: options.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
    };
    sim.add_storage(storage("local-zfs", "zfspool", &[("pool", "rpool/data")]));
    sim.add_storage(storage("nfs", "nfs", &[("path", "/mnt/pve/nfs"), ("shared", "1")]));
    sim.add_storage(storage("pve-only", "zfspool", &[("pool", "tank"), ("nodes", "pve")]));
    let nic = "name=eth0,bridge=vmbr0,ip=10.0.0.11/24";
    sim.add_guest_on(
        "pve",
        101,
        GuestKind::Lxc,
        &[("net0", nic)],
        &[("hostname", "ct"), ("rootfs", "local-zfs:subvol-101-disk-0,size=8G")],
    )
    .unwrap();
    sim.add_guest_on("pve", 1001, GuestKind::Qemu, &[("net0", "virtio,bridge=vmbr0")], &[("scsi0", "local-zfs:vm-1001-disk-0,size=32G")])
        .unwrap();
    sim.add_guest_on(
        "pve2",
        2001,
        GuestKind::Qemu,
        &[("net0", "virtio,bridge=vmbr0")],
        &[("scsi0", "nfs:2001/vm-2001-disk-0.raw,size=32G")],
    )
    .unwrap();
    sim
}

mod api;
use api::{call, ok};

fn refused(sim: &mut PveSim, method: &str, path: &str, pairs: &[(&str, &str)]) -> String {
    let reply = call(sim, method, path, pairs);
    assert_eq!(reply.status, 500, "{method} {path} is refused: {}", reply.body);
    reply.reason
}

/// How a task ended (`exitstatus` of its status, once it stopped).
fn task_end(sim: &mut PveSim, upid: &Value) -> String {
    let upid = upid.as_str().expect("a UPID");
    let node = upid.split(':').nth(1).unwrap();
    let status = ok(sim, "GET", &format!("/nodes/{node}/tasks/{upid}/status"), &[]);
    assert_eq!(status["status"], "stopped", "{status}");
    status["exitstatus"].as_str().unwrap_or_default().to_string()
}

#[test]
fn cluster_resources_list_every_guest_on_its_node_and_each_nodes_storages() {
    let mut sim = cluster();
    let guests = ok(&mut sim, "GET", "/cluster/resources", &[("type", "vm")]);
    let found: Vec<(String, String, u64)> = guests
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["id"].as_str().unwrap().into(), g["node"].as_str().unwrap().into(), g["vmid"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        found,
        vec![("lxc/101".into(), "pve".into(), 101), ("qemu/1001".into(), "pve".into(), 1001), ("qemu/2001".into(), "pve2".into(), 2001)]
    );
    let storages = ok(&mut sim, "GET", "/cluster/resources", &[("type", "storage")]);
    let ids: Vec<&str> = storages.as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["storage/pve/local-zfs", "storage/pve/nfs", "storage/pve/pve-only", "storage/pve2/local-zfs", "storage/pve2/nfs"]);
    let listed = ok(&mut sim, "GET", "/nodes/pve2/storage", &[]);
    let shared: Vec<(&str, u64)> =
        listed.as_array().unwrap().iter().map(|s| (s["storage"].as_str().unwrap(), s["shared"].as_u64().unwrap())).collect();
    assert_eq!(shared, [("local-zfs", 0), ("nfs", 1)], "a storage restricted to pve is not pve2's");
    // A node outside the cluster is a failed hostname lookup (proxyto).
    assert!(refused(&mut sim, "GET", "/nodes/pve3/lxc", &[]).starts_with("hostname lookup 'pve3' failed"));
}

#[test]
fn guest_ids_are_unique_across_the_nodes() {
    let mut sim = cluster();
    let reason = refused(&mut sim, "POST", "/nodes/pve2/lxc", &[("vmid", "101"), ("ostemplate", "local-zfs:vztmpl/x.tar.zst")]);
    assert_eq!(reason, "CT 101 already exists on node 'pve'");
    assert_eq!(ok(&mut sim, "GET", "/cluster/nextid", &[]), json!(100));
    let used = call(&mut sim, "GET", "/cluster/nextid", &[("vmid", "2001")]);
    assert_eq!(used.status, 400, "{}", used.body);
    // A guest is reached on its own node only (load_config on the node the request runs on).
    assert_eq!(
        refused(&mut sim, "GET", "/nodes/pve/qemu/2001/config", &[]),
        "Configuration file 'nodes/pve/qemu-server/2001.conf' does not exist"
    );
}

#[test]
fn migrations_refuse_what_the_handlers_refuse_and_move_the_config_when_their_task_ends() {
    let mut sim = cluster();
    assert_eq!(refused(&mut sim, "POST", "/nodes/pve/lxc/101/migrate", &[("target", "pve")]), "target is local node.");
    assert_eq!(refused(&mut sim, "POST", "/nodes/pve/lxc/101/migrate", &[("target", "pve9")]), "no such cluster node 'pve9'");
    sim.running.extend([101, 1001, 2001]);
    assert_eq!(
        refused(&mut sim, "POST", "/nodes/pve/qemu/1001/migrate", &[("target", "pve2")]),
        "can't migrate running VM without --online"
    );
    let reason = refused(&mut sim, "POST", "/nodes/pve/lxc/101/migrate", &[("target", "pve2")]);
    assert_eq!(reason, "can't migrate running container without --online or --restart");
    let live = ok(&mut sim, "POST", "/nodes/pve/lxc/101/migrate", &[("target", "pve2"), ("online", "1")]);
    assert_eq!(task_end(&mut sim, &live), "lxc live migration is currently not implemented");
    let local_disks = ok(&mut sim, "POST", "/nodes/pve/qemu/1001/migrate", &[("target", "pve2"), ("online", "1")]);
    assert_eq!(task_end(&mut sim, &local_disks), "can't live migrate attached local disks without with-local-disks option");
    assert_eq!(sim.node_of(1001).as_deref(), Some("pve"), "a failed migration leaves the guest where it was");
    // A VM whose disks are on shared storage moves live and keeps running.
    let online = ok(&mut sim, "POST", "/nodes/pve2/qemu/2001/migrate", &[("target", "pve"), ("online", "1")]);
    assert_eq!(task_end(&mut sim, &online), "OK");
    assert_eq!(sim.node_of(2001).as_deref(), Some("pve"));
    assert!(sim.running.contains(&2001));
    // A container in restart mode: stopped, moved, started again.
    let restart = ok(&mut sim, "POST", "/nodes/pve/lxc/101/migrate", &[("target", "pve2"), ("restart", "1")]);
    assert_eq!(task_end(&mut sim, &restart), "OK");
    assert_eq!(sim.node_of(101).as_deref(), Some("pve2"));
    assert!(sim.running.contains(&101));
    assert_eq!(ok(&mut sim, "GET", "/nodes/pve2/lxc/101/config", &[])["hostname"], "ct");
    // A disk on a storage the target does not have.
    sim.running.remove(&1001);
    sim.add_guest_on("pve", 1002, GuestKind::Qemu, &[], &[("scsi0", "pve-only:vm-1002-disk-0,size=8G")]).unwrap();
    let offline = ok(&mut sim, "POST", "/nodes/pve/qemu/1002/migrate", &[("target", "pve2")]);
    assert_eq!(task_end(&mut sim, &offline), "storage 'pve-only' is not available on node 'pve2'");
    let moved = ok(&mut sim, "POST", "/nodes/pve/qemu/1001/migrate", &[("target", "pve2")]);
    assert_eq!(task_end(&mut sim, &moved), "OK", "a stopped VM's local disks move offline");
    assert_eq!(sim.node_of(1001).as_deref(), Some("pve2"));
}

#[test]
fn a_clone_goes_to_another_node_only_from_shared_storage() {
    let mut sim = cluster();
    let reason = refused(&mut sim, "POST", "/nodes/pve/qemu/1001/clone", &[("newid", "1003"), ("target", "pve2"), ("full", "1")]);
    assert_eq!(reason, "can't clone VM to node 'pve2' (VM uses local storage)");
    let upid = ok(&mut sim, "POST", "/nodes/pve2/qemu/2001/clone", &[("newid", "2003"), ("target", "pve"), ("full", "1")]);
    assert_eq!(task_end(&mut sim, &upid), "OK");
    assert_eq!(sim.node_of(2003).as_deref(), Some("pve"));
}

#[test]
fn ha_moves_the_guests_it_manages_and_a_migration_of_one_is_handed_to_ha() {
    let mut sim = cluster();
    sim.running.insert(2001);
    let reason = refused(&mut sim, "POST", "/cluster/ha/resources/vm:2001/migrate", &[("node", "pve")]);
    assert_eq!(reason, "service 'vm:2001' is not managed by the HA manager");
    ok(&mut sim, "POST", "/cluster/ha/resources", &[("sid", "vm:2001")]);
    ok(&mut sim, "POST", "/cluster/ha/resources", &[("sid", "ct:101"), ("state", "ignored")]);
    assert_eq!(refused(&mut sim, "POST", "/cluster/ha/resources", &[("sid", "2001")]), "resource ID 'vm:2001' already defined");
    let listed = ok(&mut sim, "GET", "/cluster/ha/resources", &[]);
    let states: Vec<(&str, &str)> =
        listed.as_array().unwrap().iter().map(|r| (r["sid"].as_str().unwrap(), r["state"].as_str().unwrap())).collect();
    assert_eq!(states, [("vm:2001", "started"), ("ct:101", "ignored")]);
    let bad = call(&mut sim, "POST", "/cluster/ha/resources/vm 2001/migrate", &[("node", "pve")]);
    assert_eq!(bad.status, 400, "{}", bad.body);
    // qm migrate of a guest HA manages forks `ha-manager migrate` instead (a `hamigrate` task).
    let upid = ok(&mut sim, "POST", "/nodes/pve2/qemu/2001/migrate", &[("target", "pve"), ("online", "1")]);
    assert!(upid.as_str().unwrap().contains(":hamigrate:2001:"), "{upid}");
    ok(&mut sim, "GET", "/cluster/resources", &[]);
    assert_eq!(sim.node_of(2001).as_deref(), Some("pve"));
    let resources = ok(&mut sim, "GET", "/cluster/resources", &[("type", "vm")]);
    let entry = resources.as_array().unwrap().iter().find(|r| r["vmid"] == 2001).unwrap().clone();
    assert_eq!((entry["node"].as_str(), entry["hastate"].as_str()), (Some("pve"), Some("started")));
    // An ignored resource is not managed: its migration is the handler's own.
    sim.running.remove(&101);
    let plain = ok(&mut sim, "POST", "/nodes/pve/lxc/101/migrate", &[("target", "pve2")]);
    assert!(plain.as_str().unwrap().contains(":vzmigrate:101:"), "{plain}");
    let moved = ok(&mut sim, "POST", "/cluster/ha/resources/2001/relocate", &[("node", "pve2")]);
    assert_eq!(moved["requested-node"], "pve2");
}
