//! A lab whose containers (LXC guests) are real: Debian's lxc, each container started inside
//! its guest's namespace and sharing it (`lxc.net.0.type = none`), so the lab's bridge,
//! addresses and nftables rules are the container's. The lab's Proxmox VE starts and stops
//! them as `pct start`/`pct stop` would ([`crate::deployed::LabPve`]); phoenix provisions and
//! deploys into them through `lxc-attach`. VMs stay namespaces with stand-ins. What it must not
//! do: decide what runs inside (that is the provisioning's).

use crate::LabError;
use phoenix_drivers::host::lxc::{ContainerSpec, LxcContainer};
use phoenix_sim::pve::guest::GuestConf;
use std::path::{Path, PathBuf};

/// The lxc path of lab `name`'s containers.
pub fn lxc_path(name: &str) -> PathBuf {
    crate::state_dir(name).join("lxc")
}

/// The root file system lab `name`'s containers start from, when they are real.
pub fn rootfs(name: &str) -> Option<PathBuf> {
    crate::read_state(name)?.containers
}

pub fn container(name: &str, vmid: u32) -> LxcContainer {
    LxcContainer::new(&lxc_path(name), vmid)
}

/// Whether guest `vmid` of lab `name` is a real container that exists now.
pub fn is_container(name: &str, vmid: u32) -> bool {
    container(name, vmid).exists()
}

/// Whether the lab namespace `key` (`guest-<vmid>`) holds one of lab `name`'s real containers.
pub fn in_namespace(name: &str, key: &str) -> bool {
    key.strip_prefix("guest-").and_then(|id| id.parse().ok()).is_some_and(|id| is_container(name, id))
}

/// `/etc/resolv.conf` from the guest's `nameserver` and `searchdomain`, as pve-container writes
/// it on start (PVE::LXC::Setup::Base::set_dns); `None` when the guest names neither (the
/// container keeps its own).
fn resolv_conf(conf: &GuestConf) -> Option<String> {
    let servers: Vec<&str> = conf.keys.get("nameserver").map(|s| s.split_whitespace().collect()).unwrap_or_default();
    let search = conf.keys.get("searchdomain");
    if servers.is_empty() && search.is_none() {
        return None;
    }
    let mut text = search.map(|s| format!("search {s}\n")).unwrap_or_default();
    for server in servers {
        text.push_str(&format!("nameserver {server}\n"));
    }
    Some(text)
}

/// Starts guest `vmid`'s container in its namespace (set up on first start, kept after).
pub fn start(name: &str, rootfs: &Path, vmid: u32, conf: &GuestConf) -> Result<(), LabError> {
    let netns = crate::net::netns(name, &format!("guest-{vmid}"));
    let hostname = conf.keys.get("hostname").cloned().unwrap_or_else(|| format!("guest-{vmid}"));
    let spec = ContainerSpec { rootfs, hostname: &hostname, netns: Some(&netns), resolv_conf: resolv_conf(conf) };
    let container = container(name, vmid);
    if container.running() {
        return Ok(());
    }
    container.start(&spec).map_err(LabError)
}

pub fn stop(name: &str, vmid: u32) -> Result<(), LabError> {
    container(name, vmid).stop().map_err(LabError)
}

pub fn destroy(name: &str, vmid: u32) -> Result<(), LabError> {
    container(name, vmid).destroy().map_err(LabError)
}

/// Stops every container of lab `name` (before its namespaces go); the errors, if any.
pub fn stop_all(name: &str) -> Vec<String> {
    LxcContainer::all(&lxc_path(name)).iter().filter_map(|c| c.stop().err()).collect()
}

/// Whether this machine can run the lab's containers: Debian's lxc and the root file system.
pub fn preflight(rootfs: &Path) -> Result<(), LabError> {
    if !Path::new("/usr/bin/lxc-start").is_file() {
        return Err(LabError("real containers need Debian's lxc (apt-get install lxc)".into()));
    }
    if !rootfs.join("sbin/init").exists() {
        return Err(LabError(format!(
            "{} is not a container root file system (no sbin/init): build one with `bash scripts/lab-rootfs DIR`",
            rootfs.display()
        )));
    }
    Ok(())
}
