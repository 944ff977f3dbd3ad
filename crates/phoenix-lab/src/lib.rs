//! phoenix-lab: the described topology on one Linux machine. Every namespace it creates is
//! named `phx-<lab>-<key>`; the bridge lives in `phx-<lab>-sw`, so nothing is added to the
//! host's own namespace and no route leaves the lab. What it created (namespaces, processes) is
//! recorded in `/run/phoenix-lab/<lab>/state.json` before it is created, so `down` removes
//! everything, also after a crash (the one process it does not record, a dnsmasq a dns-01 order
//! restarted, lives in a lab namespace: `down` stops every process there, and the next start of
//! the lab's dnsmasq replaces it). Programs: `ip` and `ss` (iproute2), `nft` (nftables),
//! dnsmasq and nginx.
//! The lab's data (namespaces, rulesets, listeners, probes) comes from phoenix-core::lab.

pub mod acme;
pub mod certs;
pub mod containers;
pub mod deployed;
pub mod net;
pub mod node;
pub mod probe;
pub mod report;
pub mod serve;
pub mod spec;
pub mod target;
pub mod tls;

use phoenix_core::lab::LabSpec;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What went wrong, for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabError(pub String);

impl std::fmt::Display for LabError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The lab's one error type: its message already says what failed and where.
impl std::error::Error for LabError {}

/// What a lab created, written before each creation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabState {
    pub name: String,
    pub namespaces: Vec<String>,
    pub pids: Vec<u32>,
    pub spec: Option<LabSpec>,
    /// The certificate store the TLS stand-ins and the static assessment use.
    pub store: Option<PathBuf>,
    /// A bare lab runs what was deployed to its folder (`deployed`), not the configuration.
    #[serde(default)]
    pub bare: bool,
    /// What serves Traefik's guest: the real Traefik, or nginx standing in for it and why.
    #[serde(default)]
    pub traefik: Option<String>,
    /// The root file system of the lab's real containers, when its LXC guests are real
    /// containers ([`containers`]); else they are namespaces with stand-ins.
    #[serde(default)]
    pub containers: Option<PathBuf>,
}

pub fn state_dir(name: &str) -> PathBuf {
    Path::new("/run/phoenix-lab").join(name)
}

fn state_file(name: &str) -> PathBuf {
    state_dir(name).join("state.json")
}

pub fn read_state(name: &str) -> Option<LabState> {
    serde_json::from_str(&std::fs::read_to_string(state_file(name)).ok()?).ok()
}

fn save(state: &LabState) -> Result<(), LabError> {
    std::fs::create_dir_all(state_dir(&state.name))
        .map_err(|e| LabError(format!("cannot create {}: {e}", state_dir(&state.name).display())))?;
    let text = serde_json::to_string_pretty(state).map_err(|e| LabError(e.to_string()))?;
    std::fs::write(state_file(&state.name), text).map_err(|e| LabError(format!("cannot record the lab's state: {e}")))
}

/// A lab name is part of namespace names: short, lowercase letters, digits and `-`.
pub fn check_name(name: &str) -> Result<(), LabError> {
    let ok = !name.is_empty() && name.len() <= 16 && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(LabError(format!("lab name `{name}`: use 1 to 16 lowercase letters, digits or -")))
    }
}

/// Root and the programs the lab needs; the error names what is missing.
pub fn preflight() -> Result<(), LabError> {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).and_then(|l| l.split_whitespace().nth(1)).map(str::to_string));
    if uid.as_deref() != Some("0") {
        return Err(LabError("the lab needs root (it creates network namespaces and loads nftables rules): run it with sudo".into()));
    }
    let missing: Vec<&str> = [("ip", "iproute2"), ("nft", "nftables"), ("dnsmasq", "dnsmasq-base"), ("nginx", "nginx")]
        .into_iter()
        .filter(|(program, _)| !["/usr/sbin", "/usr/bin", "/sbin", "/bin"].iter().any(|d| Path::new(d).join(program).is_file()))
        .map(|(_, package)| package)
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(LabError(format!("the lab needs {} (apt-get install {})", missing.join(" and "), missing.join(" "))))
    }
}

/// Builds the lab. `phoenix` is the binary that serves the stand-in listeners; `store` holds
/// the certificates they present.
/// `bare`: the lab stands in for a node nothing was deployed to yet (see [`deployed`]).
/// `containers`: its LXC guests are real containers started from this root file system.
pub fn up(name: &str, spec: &LabSpec, phoenix: &Path, store: &Path, bare: bool, containers: Option<&Path>) -> Result<LabState, LabError> {
    check_name(name)?;
    preflight()?;
    if let Some(rootfs) = containers {
        containers::preflight(rootfs)?;
    }
    if read_state(name).is_some() || !net::lab_namespaces(name).is_empty() {
        return Err(LabError(format!("lab {name} is already up (phoenix lab down --name {name} first)")));
    }
    let mut state = LabState {
        name: name.to_string(),
        spec: Some(spec.clone()),
        store: Some(store.to_path_buf()),
        bare,
        containers: containers.map(Path::to_path_buf),
        ..LabState::default()
    };
    let result = net::build(&mut state, spec, phoenix, &mut |s| save(s));
    if let Err(error) = result {
        let _ = down(name);
        return Err(error);
    }
    save(&state)?;
    Ok(state)
}

/// Replaces the firewall rulesets, the certificates and the listeners of a running lab with
/// `spec`'s and `store`'s. A service that refuses to start is reported, and the rest of the lab
/// runs on (as a node does with one service down).
pub fn reload(name: &str, spec: &LabSpec, phoenix: &Path, store: &Path) -> Result<LabState, LabError> {
    let mut state = read_state(name).ok_or_else(|| LabError(format!("lab {name} is not up")))?;
    net::stop_processes(&state.pids);
    state.pids.clear();
    state.store = Some(store.to_path_buf());
    let configured = net::configure(&mut state, spec, phoenix, &mut |s| save(s));
    state.spec = Some(spec.clone());
    save(&state)?;
    configured.map(|()| state)
}

/// What `down` removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DownReport {
    pub namespaces: Vec<String>,
    pub processes: usize,
}

/// Removes everything the lab created: its processes, its namespaces (also ones the state file
/// missed, by name), and its state.
pub fn down(name: &str) -> Result<DownReport, LabError> {
    check_name(name)?;
    let state = read_state(name).unwrap_or_default();
    net::stop_processes(&state.pids);
    // Containers before their namespaces (found by their folders, also after a crash); one that
    // does not stop keeps the lab's state and namespaces, so that a second `down` finds it.
    let stuck = containers::stop_all(name);
    if !stuck.is_empty() {
        return Err(LabError(format!("could not stop containers (the lab is left as it is; run down again): {}", stuck.join("; "))));
    }
    let mut namespaces: Vec<String> = state.namespaces.clone();
    for found in net::lab_namespaces(name) {
        if !namespaces.contains(&found) {
            namespaces.push(found);
        }
    }
    // Guests first, the switch last (its veth ends go with the guests).
    namespaces.sort_by_key(|n| n.ends_with("-sw"));
    for namespace in &namespaces {
        net::delete_namespace(namespace);
    }
    let _ = std::fs::remove_dir_all(state_dir(name));
    let left = net::lab_namespaces(name);
    if !left.is_empty() {
        return Err(LabError(format!("could not remove namespaces {}", left.join(", "))));
    }
    Ok(DownReport { namespaces, processes: state.pids.len() })
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusReport {
    pub name: String,
    pub up: bool,
    pub namespaces: Vec<(String, bool)>,
    pub processes: Vec<(u32, bool)>,
}

pub fn status(name: &str) -> Result<StatusReport, LabError> {
    check_name(name)?;
    let Some(state) = read_state(name) else {
        let stray = net::lab_namespaces(name);
        return Ok(StatusReport {
            name: name.to_string(),
            up: false,
            namespaces: stray.into_iter().map(|n| (n, true)).collect(),
            processes: Vec::new(),
        });
    };
    let present = net::lab_namespaces(name);
    let namespaces: Vec<(String, bool)> = state.namespaces.iter().map(|n| (n.clone(), present.contains(n))).collect();
    let processes: Vec<(u32, bool)> = state.pids.iter().map(|p| (*p, Path::new(&format!("/proc/{p}")).exists())).collect();
    let up = namespaces.iter().all(|(_, ok)| *ok) && processes.iter().all(|(_, ok)| *ok);
    Ok(StatusReport { name: name.to_string(), up, namespaces, processes })
}
