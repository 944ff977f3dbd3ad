//! The `nvidia` feature of a container with GPUs passed through (their device nodes and
//! cgroup rules are the guest's configuration, `plan::node_conf`): the NVIDIA driver's user
//! space, from the runfile in `software.nvidia_driver` (its SHA-256 checked), installed without
//! a kernel module (the node's module serves the container, and the versions must match);
//! and NVIDIA's container toolkit from NVIDIA's apt repository, signed by the key in
//! `software.nvidia_container_toolkit`, for Docker's `nvidia` runtime (which the docker
//! feature's daemon.json names). Pure: resources out; nothing here can run without a GPU, so
//! the plan is what is tested.

use super::resource::{Download, GuardedCommand, ManagedFile, Resource};
use phoenix_model::model::Model;

/// Where the runfile is kept in the guest (downloaded by phoenix, checked, then run).
pub const RUNFILE_DIR: &str = "/var/cache/phoenix";
/// The toolkit repository's signing key (ASCII-armoured: apt takes `.asc` for signed-by).
pub const TOOLKIT_KEY: &str = "/etc/apt/keyrings/nvidia-container-toolkit.asc";
pub const TOOLKIT_LIST: &str = "/etc/apt/sources.list.d/nvidia-container-toolkit.list";
/// NVIDIA's repository for the container toolkit (one for every Debian-based release).
pub const TOOLKIT_REPOSITORY: &str = "https://nvidia.github.io/libnvidia-container/stable/deb/amd64";

/// The driver version a runfile URL names (`.../NVIDIA-Linux-x86_64-580.76.05.run`).
pub fn driver_version(url: &str) -> Option<&str> {
    let file = url.rsplit('/').next()?;
    let version = file.strip_prefix("NVIDIA-Linux-x86_64-")?.strip_suffix(".run")?;
    version.split('.').all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_digit())).then_some(version)
}

pub fn nvidia(model: &Model) -> Result<Vec<Resource>, String> {
    let driver = model
        .software
        .get("nvidia_driver")
        .ok_or("no verified source for the NVIDIA driver: give software.nvidia_driver the runfile's url (nvidia_runfile_url) and its sha256")?;
    let version = driver_version(&driver.url.value)
        .ok_or_else(|| format!("software.nvidia_driver's url {} is not an NVIDIA-Linux-x86_64-<version>.run", driver.url.value))?;
    let key = model
        .software
        .get("nvidia_container_toolkit")
        .ok_or("no verified signing key for NVIDIA's container toolkit repository: give software.nvidia_container_toolkit its url (https://nvidia.github.io/libnvidia-container/gpgkey) and sha256")?;
    let runfile = format!("{RUNFILE_DIR}/NVIDIA-Linux-x86_64-{version}.run");
    let download = |path: &str, url: &str, sha256: &str, mode: u32| {
        Resource::Download(Download { path: path.into(), url: url.into(), sha256: sha256.into(), owner: "root:root".into(), mode })
    };
    // User space only: the node's kernel module serves the container (`--no-kernel-module`).
    let install = GuardedCommand {
        name: "nvidia-driver".into(),
        run: format!("sh {runfile} --silent --no-questions --ui=none --no-kernel-module --no-nouveau-check"),
        done_when: Some(format!("[ -e /usr/lib/x86_64-linux-gnu/libnvidia-ml.so.{version} ]")),
        after: vec![runfile.clone()],
        log: Some(format!("{}/nvidia-driver.log", super::features::LOG_DIR)),
    };
    let list = format!("# Rendered by phoenix; do not edit: phoenix sync overwrites it.\ndeb [signed-by={TOOLKIT_KEY}] {TOOLKIT_REPOSITORY} /\n");
    Ok(vec![
        download(&runfile, &driver.url.value, &driver.sha256, 0o755),
        Resource::Command(install),
        download(TOOLKIT_KEY, &key.url.value, &key.sha256, 0o644),
        Resource::File(ManagedFile::new(TOOLKIT_LIST, list, 0o644)),
        Resource::Packages { names: vec!["nvidia-container-toolkit".into()] },
    ])
}

/// Docker's `nvidia` runtime, as `nvidia-ctk runtime configure --runtime=docker` writes it, for
/// the docker feature's daemon.json (one owner of that file).
pub fn docker_runtime() -> serde_json::Value {
    serde_json::json!({ "nvidia": { "path": "nvidia-container-runtime", "args": [] } })
}
