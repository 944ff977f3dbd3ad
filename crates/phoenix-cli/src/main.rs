//! The `phoenix` command: parses arguments, runs one command (see `commands`), prints what
//! stopped it with its causes and hint, and maps the end to an exit status through one table
//! (`exit::status`). No logic of its own lives here.

mod commands;
mod connect;
mod context;
mod exit;
mod progress;

use clap::{Parser, Subcommand};
use commands::*;
use std::process::ExitCode;

/// Run a Proxmox VE homelab or cluster from one declarative description.
///
/// phoenix reads the phoenix_hypervisor configuration (guests, firewall rules, DNS,
/// certificates, the NGINX gateway in front of Traefik, Docker stacks in Portainer), checks it,
/// proves flow by flow that it works (`assess`), and brings the real system to it (`sync`).
///
/// Exit status: 0 ok; 1 the thing checked is wrong (configuration errors, a failed hop, a
/// failed or skipped step); 2 phoenix could not run (bad arguments, an unknown code or file,
/// an unreachable system); 3 `render --diff` found differences.
#[derive(Parser)]
#[command(name = "phoenix", version)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Read files the configuration names (compose files, stack files, application scripts)
    /// even outside the installation's tree, the folder above the configuration folder.
    #[arg(long, global = true)]
    allow_outside_tree: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Check the configuration and report every problem at once.
    Validate(validate::Args),
    /// Render every file phoenix manages (pure: from the configuration alone).
    ///
    /// Without --out or --diff, lists the files (target, path, owner, mode, validate and reload
    /// commands) and the NIC settings. A configuration with errors is refused unless --allow-errors.
    Render(render::Args),
    /// Prove, hop by hop, that every flow the configuration implies passes its firewalls,
    /// resolves to the guest that serves it, and presents the right certificates.
    ///
    /// Judges the files phoenix would render, or with --deployed a copy of /etc/pve (firewall
    /// files and the guests' .conf files for their NIC flags). Exit 1 when any hop fails.
    Assess(assess::Args),
    /// Bring the system to the described state: observe, plan, confirm, apply.
    ///
    /// Order: the guests (created or converged; started once their firewall is in place); trust
    /// the CA; DNS; firewall (through the Proxmox VE API); certificates; the gateway's files;
    /// Portainer environments; stacks. Independent steps run in parallel; a
    /// failed step skips only what depends on it. Exit 1 when a step failed or was skipped,
    /// 2 when the system could not be observed.
    Sync(sync::SyncArgs),
    /// Show each described guest: its state, uptime, lock and drift (what `sync guests` would
    /// change). Exit 1 when a guest is absent, stopped, locked or drifted.
    Status(status::StatusArgs),
    /// Create the guests named and every prerequisite that does not exist (clone sources,
    /// dependencies), then start them.
    Create(guest::VerbArgs),
    /// Bring the guests named and their prerequisites to their description (created when
    /// missing), then start them.
    Converge(guest::VerbArgs),
    /// Start the guests named, their dependencies first, in boot order.
    Start(guest::VerbArgs),
    /// Stop the guests named, the guests that depend on them first (shutdown, stopped after 60 s).
    Stop(guest::VerbArgs),
    /// Stop the guests named (dependents first), then start them again in boot order.
    Restart(guest::VerbArgs),
    /// Delete the guests named with their disks; refused while other described guests need
    /// them, for guests phoenix did not create, or holding disks nothing describes, unless
    /// --force; asks on a terminal even with --yes.
    Delete(guest::DeleteArgs),
    /// Move the guests named to the node they are declared on: through HA when HA manages them
    /// (`/cluster/ha/resources/{sid}/migrate`, waiting until HA has moved them; `sync` leaves
    /// such a guest where HA put it), otherwise as `sync` migrates (offline, online or restart
    /// mode).
    Migrate(guest::VerbArgs),
    /// Everything from nothing: `sync all` (guests created, deployed, started in boot order).
    Letsgo(sync::SyncOptions),
    /// The lab: the described topology in network namespaces on this machine, for rehearsals
    /// and for comparing the static verdicts with real traffic.
    #[command(subcommand)]
    Lab(lab::LabCommand),
    /// Certificates of the manifest: status, renewal over ACME, the CA root, the renewal timer.
    #[command(subcommand)]
    Certs(certs::CertsCommand),
    /// Explain a diagnostic code (e.g. PHX-FW-009); without a code, list them all.
    Explain(explain::Args),
    /// Print the guest graph: creation order (prerequisites first), cycles, boot order.
    Graph(graph::Args),
    /// Print phoenix's JSON Schema of a configuration file, or write all of them into a folder.
    Schema(schema::Args),
    /// Print the completion script for a shell (bash, zsh, fish, elvish, powershell).
    Completions(completions::Args),
    /// Print phoenix's manual page, or write a page per command into a folder.
    Man(man::Args),
}

fn run(command: Command) -> Result<exit::Outcome, exit::Failure> {
    match command {
        Command::Validate(args) => validate::run(args),
        Command::Render(args) => render::run(args),
        Command::Assess(args) => assess::run(args),
        Command::Sync(args) => sync::run(args),
        Command::Status(args) => status::run(args),
        Command::Create(args) => guest::run(args, phoenix_core::plan::verbs::Verb::Create),
        Command::Converge(args) => guest::run(args, phoenix_core::plan::verbs::Verb::Converge),
        Command::Start(args) => guest::run(args, phoenix_core::plan::verbs::Verb::Start),
        Command::Stop(args) => guest::run(args, phoenix_core::plan::verbs::Verb::Stop),
        Command::Restart(args) => guest::run(args, phoenix_core::plan::verbs::Verb::Restart),
        Command::Delete(args) => guest::delete(args),
        Command::Migrate(args) => guest::run(args, phoenix_core::plan::verbs::Verb::Migrate),
        Command::Letsgo(options) => sync::run_what(sync::What::All, options),
        Command::Lab(command) => lab::run(command),
        Command::Certs(command) => certs::run(command),
        Command::Explain(args) => explain::run(args),
        Command::Graph(args) => graph::run(args),
        Command::Schema(args) => schema::run(args),
        Command::Completions(args) => completions::run(args),
        Command::Man(args) => man::run(args),
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            // --help and --version end well; a bad argument is "could not run".
            let result = if error.use_stderr() { Err(exit::Failure::could_not_run(error.to_string())) } else { Ok(exit::Outcome::Ok) };
            return ExitCode::from(exit::status(&result));
        }
    };
    context::ALLOW_OUTSIDE_TREE.store(cli.allow_outside_tree, std::sync::atomic::Ordering::Relaxed);
    let result = run(cli.command);
    if let Err(failure) = &result {
        eprint!("{}", failure.report());
    }
    ExitCode::from(exit::status(&result))
}
