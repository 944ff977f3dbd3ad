//! `phoenix lab up|reload|down|status|check`, and the two commands the lab runs inside its
//! namespaces (`lab serve`, `lab probe`, hidden). The lab itself is phoenix-lab's; its data is
//! phoenix-core's.

use crate::{print, ConfigArg, Format, Status};
use clap::Subcommand;
use phoenix_core::lab::LabSpec;
use phoenix_lab::probe::{self, Observation};

#[derive(Subcommand)]
pub enum LabCommand {
    /// Build the lab for a configuration: one network namespace per guest with a static
    /// address, one for the Proxmox host and one for an outside client, on one bridge; the
    /// Proxmox firewall compiled to nftables in each; stand-in listeners on every port a hop
    /// connects to. Needs root, iproute2 and nftables.
    Up {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long, default_value = "lab")]
        name: String,
    },
    /// Load a configuration's firewall and listeners into a running lab.
    Reload {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long, default_value = "lab")]
        name: String,
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
    /// Probe every hop in the lab and compare with the static verdict; exit 1 on any drift.
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
        #[arg(long, value_delimiter = ',')]
        tcp: Vec<u16>,
        #[arg(long, value_delimiter = ',')]
        udp: Vec<u16>,
    },
    #[command(hide = true)]
    Probe,
}

fn runtime() -> Result<tokio::runtime::Runtime, Status> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| {
        eprintln!("phoenix: cannot start the async runtime: {e}");
        Status::CouldNotRun
    })
}

fn phoenix_binary() -> std::path::PathBuf {
    std::env::current_exe().unwrap_or_else(|_| "phoenix".into())
}

/// The lab's data for a configuration without errors.
pub fn spec_for(dir: &std::path::Path) -> Result<LabSpec, Status> {
    let model = crate::certs::valid_model(dir)?;
    let rendered = phoenix_core::render::render_firewall(&model);
    let state = phoenix_core::analyze::firewall::FirewallState::from_rendered(&rendered, &model);
    let flows = phoenix_core::analyze::flows::flows(&model, &phoenix_core::edge::edge(&model));
    Ok(phoenix_core::lab::spec(&model, &state, &flows))
}

fn failed(error: phoenix_lab::LabError) -> Status {
    eprintln!("phoenix: {error}");
    Status::CouldNotRun
}

pub fn run(command: LabCommand) -> Status {
    match command {
        LabCommand::Up { config, name } => match spec_for(&config.config) {
            Ok(spec) => match phoenix_lab::up(&name, &spec, &phoenix_binary()) {
                Ok(state) => print(&format!(
                    "lab {name} is up: {} namespaces, {} listener processes, {} hops to probe\n",
                    state.namespaces.len(),
                    state.pids.len(),
                    spec.probes.len()
                )),
                Err(error) => failed(error),
            },
            Err(status) => status,
        },
        LabCommand::Reload { config, name } => match spec_for(&config.config) {
            Ok(spec) => match phoenix_lab::reload(&name, &spec, &phoenix_binary()) {
                Ok(_) => print(&format!("lab {name} reloaded\n")),
                Err(error) => failed(error),
            },
            Err(status) => status,
        },
        LabCommand::Down { name } => match phoenix_lab::down(&name) {
            Ok(report) => print(&format!(
                "lab {name} is down: removed {} namespaces, stopped {} processes\n",
                report.namespaces.len(),
                report.processes
            )),
            Err(error) => failed(error),
        },
        LabCommand::Status { name } => match phoenix_lab::status(&name) {
            Ok(report) => {
                let text = format!("{:#}\n", serde_json::to_value(&report).expect("serializes"));
                match print(&text) {
                    Status::Ok if !report.up => Status::Failed,
                    status => status,
                }
            }
            Err(error) => failed(error),
        },
        LabCommand::Check { config, name, format } => check(&config.config, &name, format),
        LabCommand::Serve { tcp, udp } => match runtime() {
            Ok(runtime) => match runtime.block_on(probe::serve(&tcp, &udp)) {
                Ok(()) => Status::Ok,
                Err(error) => {
                    println!("error: {error}");
                    Status::CouldNotRun
                }
            },
            Err(status) => status,
        },
        LabCommand::Probe => {
            let mut input = String::new();
            if std::io::Read::read_to_string(&mut std::io::stdin(), &mut input).is_err() {
                return Status::CouldNotRun;
            }
            let Ok(targets) = serde_json::from_str::<Vec<probe::Target>>(&input) else {
                eprintln!("phoenix: lab probe reads a JSON list of targets on stdin");
                return Status::CouldNotRun;
            };
            match runtime() {
                Ok(runtime) => {
                    print(&format!("{}\n", serde_json::to_string(&runtime.block_on(probe::probe_targets(&targets))).expect("serializes")))
                }
                Err(status) => status,
            }
        }
    }
}

/// Live next to static for every hop, from the lab `name` (also `phoenix assess --live`).
pub fn check(dir: &std::path::Path, name: &str, format: Format) -> Status {
    let spec = match spec_for(dir) {
        Ok(spec) => spec,
        Err(status) => return status,
    };
    if phoenix_lab::read_state(name).is_none() {
        eprintln!("phoenix: lab {name} is not up (phoenix lab up --name {name})");
        return Status::CouldNotRun;
    }
    let observations = match probe::probe_lab(name, &spec, &phoenix_binary()) {
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

fn human(observations: &[Observation], drift: usize) -> String {
    let mut out = String::from("hop                                              static   live\n");
    for o in observations {
        let hop = format!(
            "{} -> {} {}:{}/{}",
            o.probe.from,
            o.probe.to,
            o.probe.address,
            o.probe.port,
            if o.probe.proto == 17 { "udp" } else { "tcp" }
        );
        let mark = if o.agrees() { "" } else { "  DRIFT" };
        out.push_str(&format!("{hop:<48} {:<8} {}{mark}\n", verdict(o.probe.expected), verdict(o.live)));
    }
    out.push_str(&format!("{} hops, {drift} drift\n", observations.len()));
    out
}
