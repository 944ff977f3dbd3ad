//! `phoenix lab up|reload|down|status|check`, and the two commands the lab runs inside its
//! namespaces (`lab serve`, `lab probe`, hidden). The lab itself is phoenix-lab's; its data is
//! phoenix-core's.

use crate::{print, ConfigArg, Format, Status};
use clap::Subcommand;
use phoenix_core::lab::LabSpec;
use phoenix_lab::probe::{self, Observation};
use phoenix_lab::serve;
use phoenix_model::model::Model;
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum LabCommand {
    /// Build the lab for a configuration: one network namespace per guest with a static
    /// address, one for the Proxmox host and one for an outside client, on one bridge; the
    /// Proxmox firewall compiled to nftables in each; dnsmasq with phoenix's rendered DNS
    /// configuration; nginx as the gateway and in Traefik's place; Pebble as Step-CA's ACME
    /// endpoint (when installed); stand-in services on every other port a hop connects to,
    /// speaking TLS with the manifest's certificates (and demanding client certificates) where
    /// the hop model says. Needs root, iproute2, nftables, dnsmasq and nginx.
    Up {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long, default_value = "lab")]
        name: String,
        /// A certificate store to use (root_ca.crt, <name>.crt, <name>.key); default: a lab CA
        /// issues every manifest certificate.
        #[arg(long, value_name = "DIR", conflicts_with = "bare")]
        certs: Option<PathBuf>,
        /// Stand in for a node nothing was deployed to yet: guests without the firewall flag,
        /// no firewall, DNS, gateway or certificates, only the lab CA's root in the store.
        /// `phoenix sync --lab NAME` then deploys to it, and the lab runs what was deployed.
        #[arg(long)]
        bare: bool,
    },
    /// Load a configuration's firewall, DNS, certificates and services into a running lab.
    Reload {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long, default_value = "lab")]
        name: String,
        /// As for `lab up`; default: the store the lab uses now.
        #[arg(long, value_name = "DIR")]
        certs: Option<PathBuf>,
    },
    /// Remove every namespace, process and file the lab created (also after a crash).
    Down {
        #[arg(long, default_value = "lab")]
        name: String,
    },
    /// Whether the lab is up: its namespaces and processes. Exit 1 when it is not.
    Status {
        #[arg(long, default_value = "lab")]
        name: String,
    },
    /// Probe every hop in the lab (connection, DNS lookup, TLS handshake) and compare with the
    /// static verdicts; exit 1 on any drift. `phoenix assess --live --lab NAME` is the same.
    Check {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long, default_value = "lab")]
        name: String,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    #[command(hide = true)]
    Serve {
        #[arg(long)]
        config_file: PathBuf,
    },
    #[command(hide = true)]
    Probe {
        #[arg(long)]
        certs: Option<PathBuf>,
    },
}

fn runtime() -> Result<tokio::runtime::Runtime, Status> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| {
        eprintln!("phoenix: cannot start the async runtime: {e}");
        Status::CouldNotRun
    })
}

fn phoenix_binary() -> PathBuf {
    std::env::current_exe().unwrap_or_else(|_| "phoenix".into())
}

fn failed(error: phoenix_lab::LabError) -> Status {
    eprintln!("phoenix: {error}");
    Status::CouldNotRun
}

/// The configuration's model. Like `phoenix assess`, the lab takes a configuration with
/// errors too: proving what they break is its point.
fn lab_model(dir: &Path) -> Result<Model, Status> {
    Ok(crate::loaded(dir)?.model.expect("loaded() returns a model"))
}

/// The lab's data for `model`, its certificates judged from `store`.
pub fn spec_for(model: &Model, store: &Path) -> Result<LabSpec, Status> {
    phoenix_lab::spec::for_config(model, store, crate::parse_now(None)?).map_err(failed)
}

/// A bare lab's data: what was deployed to it (see `sync --lab`).
fn bare_spec(name: &str, model: &Model, store: &Path) -> Result<LabSpec, Status> {
    let now = crate::parse_now(None)?;
    runtime()?.block_on(phoenix_lab::spec::for_bare(name, model, store, phoenix_model::paths::DEFAULT_STORE, now)).map_err(failed)
}

/// Makes a bare lab run what is deployed to it now (after `phoenix sync --lab`).
pub fn reload_bare(name: &str, model: &Model) -> Status {
    let store = phoenix_lab::deployed::store(name, phoenix_model::paths::DEFAULT_STORE);
    match bare_spec(name, model, &store).map(|spec| phoenix_lab::reload(name, &spec, &phoenix_binary(), &store)) {
        Ok(Ok(_)) => {
            eprintln!("lab {name} now runs what was deployed to it");
            Status::Ok
        }
        Ok(Err(error)) => failed(error),
        Err(status) => status,
    }
}

/// The store a lab uses: the one given; else the running lab's; else (for `up`) certificates a
/// lab CA issues now into the lab's folder.
fn store_for(name: &str, model: &Model, given: Option<PathBuf>, issue: bool) -> Result<PathBuf, Status> {
    if let Some(store) = given {
        return std::path::absolute(&store).map_err(|e| {
            eprintln!("phoenix: {}: {e}", store.display());
            Status::CouldNotRun
        });
    }
    if !issue {
        return phoenix_lab::read_state(name).and_then(|s| s.store).ok_or_else(|| {
            eprintln!("phoenix: lab {name} is not up (phoenix lab up --name {name})");
            Status::CouldNotRun
        });
    }
    phoenix_lab::check_name(name).map_err(failed)?;
    let store = phoenix_lab::state_dir(name).join("certs");
    let _ = std::fs::remove_dir_all(&store);
    phoenix_lab::certs::issue_store(model, &store, &format!("phoenix lab {name} root")).map_err(failed)?;
    Ok(store)
}

fn up(dir: &Path, name: &str, certs: Option<PathBuf>, bare: bool) -> Status {
    if phoenix_lab::read_state(name).is_some() {
        return failed(phoenix_lab::LabError(format!("lab {name} is already up (phoenix lab down --name {name} first)")));
    }
    if let Err(error) = phoenix_lab::preflight() {
        return failed(error);
    }
    let model = match lab_model(dir) {
        Ok(model) => model,
        Err(status) => return status,
    };
    let prepared = match bare {
        true => phoenix_lab::check_name(name)
            .and_then(|()| {
                let rendered = phoenix_core::render::render_all(&model);
                phoenix_lab::deployed::prepare(name, &model, &rendered, phoenix_model::paths::DEFAULT_STORE)
            })
            .map_err(failed)
            .and_then(|store| Ok((bare_spec(name, &model, &store)?, store))),
        false => store_for(name, &model, certs, true).and_then(|store| Ok((spec_for(&model, &store)?, store))),
    };
    let (spec, store) = match prepared {
        Ok(prepared) => prepared,
        Err(status) => return status,
    };
    match phoenix_lab::up(name, &spec, &phoenix_binary(), &store, bare) {
        Ok(state) => print(&format!(
            "lab {name} is up: {} namespaces, {} processes, {} hops to probe\n",
            state.namespaces.len(),
            state.pids.len(),
            spec.probes.len()
        )),
        Err(error) => failed(error),
    }
}

fn reload(dir: &Path, name: &str, certs: Option<PathBuf>) -> Status {
    let model = match lab_model(dir) {
        Ok(model) => model,
        Err(status) => return status,
    };
    if phoenix_lab::read_state(name).is_some_and(|s| s.bare) {
        if certs.is_some() {
            return failed(phoenix_lab::LabError(format!("lab {name} is bare: its certificates are the ones deployed to it")));
        }
        return reload_bare(name, &model);
    }
    let store = match store_for(name, &model, certs, false) {
        Ok(store) => store,
        Err(status) => return status,
    };
    match spec_for(&model, &store).map(|spec| phoenix_lab::reload(name, &spec, &phoenix_binary(), &store)) {
        Ok(Ok(_)) => print(&format!("lab {name} reloaded\n")),
        Ok(Err(error)) => failed(error),
        Err(status) => status,
    }
}

fn serve(config_file: &Path) -> Status {
    let Some(config) = std::fs::read_to_string(config_file).ok().and_then(|t| serde_json::from_str::<serve::ServeConfig>(&t).ok()) else {
        println!("error: cannot read {}", config_file.display());
        return Status::CouldNotRun;
    };
    match runtime().map(|runtime| runtime.block_on(phoenix_lab::serve::serve(&config))) {
        Ok(Ok(())) => Status::Ok,
        Ok(Err(error)) => {
            println!("error: {error}");
            Status::CouldNotRun
        }
        Err(status) => status,
    }
}

fn probe_here(certs: Option<&Path>) -> Status {
    let mut input = String::new();
    if std::io::Read::read_to_string(&mut std::io::stdin(), &mut input).is_err() {
        return Status::CouldNotRun;
    }
    let Ok(targets) = serde_json::from_str::<Vec<probe::ProbeTarget>>(&input) else {
        eprintln!("phoenix: lab probe reads a JSON list of targets on stdin");
        return Status::CouldNotRun;
    };
    match runtime() {
        Ok(runtime) => {
            let found = runtime.block_on(probe::probe_targets(&targets, certs));
            print(&format!("{}\n", serde_json::to_string(&found).expect("serializes")))
        }
        Err(status) => status,
    }
}

pub fn run(command: LabCommand) -> Status {
    match command {
        LabCommand::Up { config, name, certs, bare } => up(&config.config, &name, certs, bare),
        LabCommand::Reload { config, name, certs } => reload(&config.config, &name, certs),
        LabCommand::Down { name } => match phoenix_lab::down(&name) {
            Ok(report) => print(&format!(
                "lab {name} is down: removed {} namespaces, stopped {} processes\n",
                report.namespaces.len(),
                report.processes
            )),
            Err(error) => failed(error),
        },
        LabCommand::Status { name } => match phoenix_lab::status(&name) {
            Ok(report) => match print(&format!("{:#}\n", serde_json::to_value(&report).expect("serializes"))) {
                Status::Ok if !report.up => Status::Failed,
                status => status,
            },
            Err(error) => failed(error),
        },
        LabCommand::Check { config, name, format } => check(&config.config, &name, format),
        LabCommand::Serve { config_file } => serve(&config_file),
        LabCommand::Probe { certs } => probe_here(certs.as_deref()),
    }
}

/// Live next to static for every hop, from the lab `name` (also `phoenix assess --live`).
pub fn check(dir: &Path, name: &str, format: Format) -> Status {
    let model = match lab_model(dir) {
        Ok(model) => model,
        Err(status) => return status,
    };
    let store = match store_for(name, &model, None, false) {
        Ok(store) => store,
        Err(status) => return status,
    };
    let spec = match spec_for(&model, &store) {
        Ok(spec) => spec,
        Err(status) => return status,
    };
    let observations = match probe::probe_lab(name, &spec, &phoenix_binary(), &store) {
        Ok(observations) => observations,
        Err(error) => return failed(error),
    };
    let drift = observations.iter().filter(|o| !o.agrees()).count();
    let text = match format {
        Format::Json => format!("{:#}\n", serde_json::json!({ "schema_version": 1, "lab": name, "drift": drift, "hops": observations })),
        Format::Human => human(&observations, drift),
    };
    match print(&text) {
        Status::Ok if drift > 0 => Status::Failed,
        status => status,
    }
}

fn verdict(passes: bool) -> &'static str {
    if passes {
        "passes"
    } else {
        "blocked"
    }
}

fn pair(expected: Option<bool>, live: Option<bool>) -> String {
    match (expected, live) {
        (Some(e), Some(l)) => format!("{}/{}", verdict(e), verdict(l)),
        (Some(e), None) => format!("{}/-", verdict(e)),
        _ => "-".into(),
    }
}

fn human(observations: &[Observation], drift: usize) -> String {
    let mut out = format!("{:<46} {:<17} {:<17} {:<17} {}\n", "hop (static/live)", "firewall", "dns", "tls", "https via the gateway");
    for o in observations {
        let p = &o.probe;
        let hop = format!("{} -> {} {}:{}/{}", p.from, p.to, p.address, p.port, if p.proto == 17 { "udp" } else { "tcp" });
        let firewall = pair(Some(p.expected), Some(o.live));
        let dns = pair(p.dns.as_ref().map(|d| d.expected), o.live_dns);
        let tls = pair(p.tls.as_ref().map(|t| t.expected), o.live_tls);
        let http = match &p.http {
            Some(h) => format!("{} {}", h.host, pair(Some(h.expected), o.live_http)),
            None => "-".into(),
        };
        let mark = if o.agrees() { "" } else { "  DRIFT" };
        out.push_str(&format!("{hop:<46} {firewall:<17} {dns:<17} {tls:<17} {http}{mark}\n"));
    }
    out.push_str(&format!("{} hops, {drift} drift\n", observations.len()));
    out
}

/// `phoenix assess --live --node`: the declared hops probed on this Proxmox node, from the node
/// itself and from inside each running container's network namespace with phoenix's prober,
/// from inside VMs with a shell script through `qm guest exec` (TCP hops), with the store's
/// certificates; what cannot be probed (UDP from VMs, the outside client) is listed.
pub fn check_node(dir: &Path, store: &Path, netns_prefix: Option<&str>, format: Format) -> Status {
    let model = match lab_model(dir) {
        Ok(model) => model,
        Err(status) => return status,
    };
    let mut spec = match spec_for(&model, store) {
        Ok(spec) => spec,
        Err(status) => return status,
    };
    spec.probes.retain(|p| p.flow != "undeclared");
    let lxc = |key: &str| {
        key.strip_prefix("guest-")
            .and_then(|id| id.parse::<u32>().ok())
            .and_then(|id| model.guests.get(&id))
            .is_some_and(|g| g.kind == phoenix_model::model::GuestKind::Lxc)
    };
    let enter = |key: &str| probe::node_entry(key, lxc(key), netns_prefix);
    let mut skipped: Vec<String> = spec.probes.iter().map(|p| p.from.clone()).filter(|from| enter(from).is_none()).collect();
    skipped.sort();
    skipped.dedup();
    let mut observations = match probe::probe_all(&spec, &enter, &phoenix_binary(), store) {
        Ok(observations) => observations,
        Err(error) => return failed(error),
    };
    let vms: Vec<String> = skipped.iter().filter(|k| k.starts_with("guest-")).cloned().collect();
    let client_files =
        model.certificates.iter().filter_map(|c| Some((c.name.clone(), (c.cert_path.clone()?, c.key_path.clone()?)))).collect();
    let exec = |key: &str, script: &str| -> Result<String, phoenix_lab::LabError> {
        let error = |e: String| phoenix_lab::LabError(format!("probing from {key}: {e}"));
        let output = match netns_prefix {
            // The lab standing in for the node: the VM is a namespace.
            Some(prefix) => std::process::Command::new("ip")
                .args(["netns", "exec", &format!("{prefix}{key}"), "sh", "-c", script])
                .output()
                .map(|o| o.stdout)
                .map_err(|e| error(e.to_string()))?,
            None => {
                let id: u32 = key.strip_prefix("guest-").and_then(|i| i.parse().ok()).ok_or_else(|| error("not a guest".into()))?;
                let target =
                    phoenix_drivers::host::HostTarget::new(phoenix_drivers::host::GuestAccess::Pve, phoenix_drivers::host::SystemRunner);
                let place = phoenix_core::deploy::Place {
                    guest: Some((id, phoenix_model::model::GuestKind::Vm)),
                    path: String::new(),
                };
                target.shell_at(&place, script, &[], None).map(|o| o.stdout).map_err(|e| error(e.message))?
            }
        };
        Ok(String::from_utf8_lossy(&output).into_owned())
    };
    match probe::probe_vms(&spec, &vms, phoenix_model::paths::TRUSTED_ROOT_PATH, &client_files, &exec) {
        Ok(found) => {
            skipped.retain(|k| k == "outside" || !found.iter().any(|o| &o.probe.from == k));
            observations.extend(found);
        }
        Err(error) => return failed(error),
    }
    let drift = observations.iter().filter(|o| !o.agrees()).count();
    let not_probed = spec.probes.len() - observations.len();
    let text = match format {
        Format::Json => format!(
            "{:#}\n",
            serde_json::json!({ "schema_version": 1, "node": true, "drift": drift, "hops": observations, "not_probed": not_probed, "not_entered": skipped })
        ),
        Format::Human => {
            format!("{}{not_probed} hops not probed (UDP from VMs; every hop from: {})\n", human(&observations, drift), skipped.join(", "))
        }
    };
    match print(&text) {
        Status::Ok if drift > 0 => Status::Failed,
        status => status,
    }
}
