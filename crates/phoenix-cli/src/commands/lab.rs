//! `phoenix lab up|reload|down|status|check`, and the two commands the lab runs inside its
//! namespaces (`lab serve`, `lab probe`, hidden). The lab itself is phoenix-lab's; its data is
//! phoenix-core's.

use crate::context::{self, ConfigArg, Format};
use crate::exit::{Failure, Outcome};
use clap::Subcommand;
use phoenix_core::lab::LabSpec;
use phoenix_lab::{probe, report, serve, LabError};
use phoenix_model::model::Model;
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum LabCommand {
    /// Build the lab for a configuration: one network namespace per guest with a static
    /// address, one for the Proxmox host and one for an outside client, on a bridge per Proxmox
    /// bridge (a guest's second NIC and the host's address on an internal bridge get their own
    /// interfaces); the Proxmox firewall compiled to nftables in each, per NIC; dnsmasq with phoenix's rendered DNS
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
        /// Like --bare, for a node with no guests yet (its storages only): `phoenix sync all
        /// --lab NAME` creates them through the lab's Proxmox VE, and the lab runs each guest's
        /// services once it exists (until then its namespace is dark).
        #[arg(long, conflicts_with = "certs")]
        empty: bool,
        /// With --empty: the LXC guests are real containers (Debian's lxc, systemd inside),
        /// each in its guest's namespace, started from the root file system ROOTFS when the
        /// lab's Proxmox VE starts the guest; `sync features` then provisions them for real
        /// (packages from the archive copy the root file system carries). VMs stay namespaces
        /// with stand-ins. `bash scripts/lab-rootfs ROOTFS` builds one.
        #[arg(long, value_name = "ROOTFS", requires = "empty")]
        containers: Option<PathBuf>,
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
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
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

fn phoenix_binary() -> PathBuf {
    std::env::current_exe().unwrap_or_else(|_| "phoenix".into())
}

fn failed(error: LabError) -> Failure {
    Failure::could_not_run(error.0)
}

/// The configuration's model. Like `phoenix assess`, the lab takes a configuration with
/// errors too: proving what they break is its point.
fn lab_model(dir: &Path) -> Result<Model, Failure> {
    Ok(context::loaded(dir)?.model.expect("loaded() returns a model"))
}

/// The lab's data for `model`, its certificates judged from `store`.
fn spec_for(model: &Model, store: &Path) -> Result<LabSpec, Failure> {
    phoenix_lab::spec::for_config(model, store, context::parse_now(None)?).map_err(failed)
}

/// A bare lab's data: what was deployed to it (see `sync --lab`).
fn bare_spec(name: &str, model: &Model, store: &Path) -> Result<LabSpec, Failure> {
    let now = context::parse_now(None)?;
    context::runtime()?.block_on(phoenix_lab::spec::for_bare(name, model, store, phoenix_model::paths::DEFAULT_STORE, now)).map_err(failed)
}

/// Makes a bare lab run what is deployed to it now (after `phoenix sync --lab`).
pub fn reload_bare(name: &str, model: &Model) -> Result<Outcome, Failure> {
    let store = phoenix_lab::deployed::store(name, phoenix_model::paths::DEFAULT_STORE);
    let spec = bare_spec(name, model, &store)?;
    phoenix_lab::reload(name, &spec, &phoenix_binary(), &store).map_err(failed)?;
    eprintln!("lab {name} now runs what was deployed to it");
    Ok(Outcome::Ok)
}

/// The store a lab uses: the one given; else the running lab's; else (for `up`) certificates a
/// lab CA issues now into the lab's folder.
fn store_for(name: &str, model: &Model, given: Option<PathBuf>, issue: bool) -> Result<PathBuf, Failure> {
    if let Some(store) = given {
        return std::path::absolute(&store).map_err(|error| Failure::could_not_run(format!("{}", store.display())).because(error));
    }
    if !issue {
        return phoenix_lab::read_state(name)
            .and_then(|s| s.store)
            .ok_or_else(|| Failure::could_not_run(format!("lab {name} is not up")).hint(format!("phoenix lab up --name {name}")));
    }
    phoenix_lab::check_name(name).map_err(failed)?;
    let store = phoenix_lab::state_dir(name).join("certs");
    let _ = std::fs::remove_dir_all(&store);
    phoenix_lab::certs::issue_store(model, &store, &format!("phoenix lab {name} root")).map_err(failed)?;
    Ok(store)
}

fn up(dir: &Path, name: &str, certs: Option<PathBuf>, bare: bool, empty: bool, containers: Option<PathBuf>) -> Result<Outcome, Failure> {
    let bare = bare || empty;
    if phoenix_lab::read_state(name).is_some() {
        return Err(Failure::could_not_run(format!("lab {name} is already up")).hint(format!("phoenix lab down --name {name} first")));
    }
    phoenix_lab::preflight().map_err(failed)?;
    let model = lab_model(dir)?;
    let (spec, store) = if bare {
        phoenix_lab::check_name(name).map_err(failed)?;
        let rendered = phoenix_core::render::render_all(&model);
        let store = phoenix_lab::deployed::prepare(name, &model, &rendered, phoenix_model::paths::DEFAULT_STORE, empty).map_err(failed)?;
        (bare_spec(name, &model, &store)?, store)
    } else {
        let store = store_for(name, &model, certs, true)?;
        (spec_for(&model, &store)?, store)
    };
    let containers = containers.map(|rootfs| std::path::absolute(&rootfs).unwrap_or(rootfs));
    let state = phoenix_lab::up(name, &spec, &phoenix_binary(), &store, bare, containers.as_deref()).map_err(failed)?;
    let mut text = format!(
        "lab {name} is up: {} namespaces, {} processes, {} hops to probe\n",
        state.namespaces.len(),
        state.pids.len(),
        spec.probes.len()
    );
    if let Some(traefik) = &state.traefik {
        text.push_str(&format!("Traefik: {traefik}\n"));
    }
    if let Some(rootfs) = &state.containers {
        text.push_str(&format!("containers: real (Debian's lxc) from {}, started as the lab's Proxmox VE starts them\n", rootfs.display()));
    }
    context::report(&text, false)
}

fn reload(dir: &Path, name: &str, certs: Option<PathBuf>) -> Result<Outcome, Failure> {
    let model = lab_model(dir)?;
    if phoenix_lab::read_state(name).is_some_and(|s| s.bare) {
        if certs.is_some() {
            return Err(Failure::could_not_run(format!("lab {name} is bare: its certificates are the ones deployed to it")));
        }
        return reload_bare(name, &model);
    }
    let store = store_for(name, &model, certs, false)?;
    let spec = spec_for(&model, &store)?;
    phoenix_lab::reload(name, &spec, &phoenix_binary(), &store).map_err(failed)?;
    context::report(&format!("lab {name} reloaded\n"), false)
}

/// Inside a namespace: its stand-in services. Errors go to stdout, which the lab reads.
fn serve(config_file: &Path) -> Result<Outcome, Failure> {
    let Some(config) = std::fs::read_to_string(config_file).ok().and_then(|t| serde_json::from_str::<serve::ServeConfig>(&t).ok()) else {
        println!("error: cannot read {}", config_file.display());
        return Err(Failure::could_not_run(format!("cannot read {}", config_file.display())));
    };
    context::runtime()?.block_on(serve::serve(&config)).map_err(|error| {
        println!("error: {error}");
        Failure::could_not_run("the stand-in services stopped").because(error)
    })?;
    Ok(Outcome::Ok)
}

/// Inside a namespace: probes the targets given on stdin and prints what it found.
fn probe_here(certs: Option<&Path>) -> Result<Outcome, Failure> {
    let mut input = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut input)
        .map_err(|error| Failure::could_not_run("cannot read the targets on stdin").because(error))?;
    let targets = serde_json::from_str::<Vec<probe::ProbeTarget>>(&input)
        .map_err(|error| Failure::could_not_run("lab probe reads a JSON list of targets on stdin").because(error))?;
    let found = context::runtime()?.block_on(probe::probe_targets(&targets, certs));
    context::report(&format!("{}\n", serde_json::to_string(&found).expect("serializes")), false)
}

pub fn run(command: LabCommand) -> Result<Outcome, Failure> {
    match command {
        LabCommand::Up { config, name, certs, bare, empty, containers } => {
            up(&config.config, &name, certs, bare, empty, containers.filter(|_| empty))
        }
        LabCommand::Reload { config, name, certs } => reload(&config.config, &name, certs),
        LabCommand::Down { name } => {
            let report = phoenix_lab::down(&name).map_err(failed)?;
            let text =
                format!("lab {name} is down: removed {} namespaces, stopped {} processes\n", report.namespaces.len(), report.processes);
            context::report(&text, false)
        }
        LabCommand::Status { name, format } => {
            let status = phoenix_lab::status(&name).map_err(failed)?;
            let text = match format {
                Format::Json => format!("{:#}\n", serde_json::to_value(&status).expect("serializes")),
                Format::Human => report::status_text(&status),
            };
            context::report(&text, !status.up)
        }
        LabCommand::Check { config, name, format } => check(&config.config, &name, format),
        LabCommand::Serve { config_file } => serve(&config_file),
        LabCommand::Probe { certs } => probe_here(certs.as_deref()),
    }
}

/// Live next to static for every hop, from the lab `name` (also `phoenix assess --live`).
pub fn check(dir: &Path, name: &str, format: Format) -> Result<Outcome, Failure> {
    let model = lab_model(dir)?;
    let store = store_for(name, &model, None, false)?;
    let spec = spec_for(&model, &store)?;
    let observations = probe::probe_lab(name, &spec, &phoenix_binary(), &store).map_err(failed)?;
    let drift = observations.iter().filter(|o| !o.agrees()).count();
    let text = match format {
        Format::Json => format!("{:#}\n", serde_json::json!({ "schema_version": 1, "lab": name, "drift": drift, "hops": observations })),
        Format::Human => report::hop_table(&model, &observations, drift),
    };
    context::report(&text, drift > 0)
}

/// `phoenix assess --live --node` (see phoenix_lab::node).
pub fn check_node(dir: &Path, store: &Path, netns_prefix: Option<&str>, format: Format) -> Result<Outcome, Failure> {
    let model = lab_model(dir)?;
    let found = phoenix_lab::node::check(&model, store, netns_prefix, &phoenix_binary(), context::parse_now(None)?).map_err(failed)?;
    let drift = found.drift();
    let text = match format {
        Format::Json => format!(
            "{:#}\n",
            serde_json::json!({ "schema_version": 1, "node": true, "drift": drift, "hops": found.observations, "not_probed": found.not_probed, "not_entered": found.not_entered })
        ),
        Format::Human => format!(
            "{}{} hops not probed (UDP from VMs; every hop from: {})\n",
            report::hop_table(&model, &found.observations, drift),
            found.not_probed,
            found.not_entered.join(", ")
        ),
    };
    context::report(&text, drift > 0)
}
