//! The guest verbs: `create`, `converge`, `start`, `stop`, `restart`, `delete`, `migrate` on
//! the guests named (dependency-resolved: prerequisites first, for `stop` dependents first),
//! and `letsgo` (everything from nothing: `sync all`, which creates, deploys and starts in boot
//! order). The plans are phoenix-core's (`plan::verbs`); here the arguments, the confirmation
//! and the apply.

use crate::context;
use crate::exit::{Failure, Outcome};
use clap::Args;
use phoenix_core::plan::verbs::{self, Verb};
use phoenix_core::plan::Plan;
use phoenix_drivers::host::{GuestAccess, HostTarget, NodeRunner, SshRunner, SystemRunner};
use phoenix_exec::sync::{apply, ApplyOptions, Drivers};
use phoenix_exec::NotUsed;
use std::io::{IsTerminal, Write};

#[derive(Args)]
pub struct VerbArgs {
    /// The guests (their VMIDs).
    #[arg(required = true, value_name = "ID")]
    ids: Vec<u32>,
    #[command(flatten)]
    config: context::ConfigArg,
    #[command(flatten)]
    pve: crate::connect::PveArgs,
    /// Print the plan and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Apply without asking (needed when stdin is not a terminal; `delete` asks on a terminal
    /// anyway).
    #[arg(long)]
    yes: bool,
    /// Start guests in boot order without waiting each one's boot_delay.
    #[arg(long)]
    no_boot_delay: bool,
    /// Steps that take a node lock (creating and cloning guests) running at once.
    #[arg(long, default_value_t = 8)]
    node_parallel: usize,
    /// Reach the Proxmox node over SSH (`root@pve`) for what only its root may change (a
    /// container's .conf). Default: phoenix runs on the node.
    #[arg(long, value_name = "USER@HOST")]
    ssh: Option<String>,
}

#[derive(Args)]
pub struct DeleteArgs {
    #[command(flatten)]
    verb: VerbArgs,
    /// Delete even a guest other described guests need, one phoenix did not create, or one
    /// holding disks nothing describes.
    #[arg(long)]
    force: bool,
}

fn ask(plan: &Plan) -> bool {
    eprint!("Apply these {} step(s)? [y/N] ", plan.steps.len());
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).is_ok() && matches!(answer.trim(), "y" | "Y" | "yes")
}

pub fn delete(args: DeleteArgs) -> Result<Outcome, Failure> {
    run(args.verb, Verb::Delete { force: args.force })
}

pub fn run(args: VerbArgs, verb: Verb) -> Result<Outcome, Failure> {
    let crate::connect::GuestsObserved { model, rendered, client, runtime, observed } =
        crate::connect::observe_guests(&args.config.config, &args.pve)?;
    let plan = verbs::plan(&model, &rendered, &observed, verb, &args.ids, !args.no_boot_delay)
        .map_err(|reason| Failure::wrong(format!("refused: {reason}")))?;
    if args.dry_run || plan.is_empty() {
        context::print(&plan.to_text())?;
        return Ok(Outcome::Ok);
    }
    eprint!("{}", plan.to_text());
    let terminal = std::io::stdin().is_terminal();
    // A delete is confirmed on a terminal even with --yes.
    let must_ask = !args.yes || matches!(verb, Verb::Delete { .. }) && terminal;
    if must_ask {
        if !terminal {
            return Err(Failure::could_not_run("not applying without confirmation: stdin is not a terminal").hint("pass --yes"));
        }
        if !ask(&plan) {
            return Err(Failure::wrong("nothing applied"));
        }
    }
    let runner = match &args.ssh {
        Some(destination) => NodeRunner::Ssh(SshRunner::new(destination.clone())),
        None => NodeRunner::Local(SystemRunner),
    };
    let mut target = HostTarget::new(GuestAccess::Pve, runner).with_cluster(&model);
    target.remote_host = args.ssh.is_some();
    let drivers = Drivers { model: &model, pve: &client, portainer: &NotUsed, target: &target, issuer: &NotUsed };
    let options = ApplyOptions {
        parallel: 512,
        node_parallel: args.node_parallel,
        run_commands: false,
        store_dir: String::new(),
        host_trust_file: String::new(),
        now: context::parse_now(None)?,
    };
    let mut progress = crate::progress::Progress::new(false, std::io::stderr().is_terminal(), plan.steps.len());
    let summary = runtime.block_on(apply(&plan, &drivers, &options, &mut |event| progress.event(event)));
    progress.finish();
    context::report(&summary.to_text(), summary.failed + summary.skipped > 0)
}
