//! `phoenix status`: each described guest's state, uptime, lock and drift (what `sync guests`
//! would change), read from the Proxmox VE API, then each guest's features (with `--probe`:
//! what `sync features` would change and its health check); as tables or JSON.

use crate::commands::TextOrJson;
use crate::context;
use crate::exit::{Failure, Outcome};
use clap::Args;
use phoenix_core::plan::guests;

#[derive(Args)]
pub struct StatusArgs {
    #[command(flatten)]
    config: context::ConfigArg,
    #[command(flatten)]
    pve: crate::connect::PveArgs,
    #[arg(long, value_enum, default_value_t = TextOrJson::Text)]
    format: TextOrJson,
    /// Also probe each running guest's features (what `sync features` would change) and run
    /// its health check, through `pct exec` and `qm guest exec` on this node (or the node
    /// `--ssh` names). Without it the features are listed as declared.
    #[arg(long)]
    probe: bool,
    /// Reach the Proxmox node over SSH (`root@pve`) for `pct` and `qm guest exec`.
    #[arg(long, value_name = "USER@HOST", requires = "probe")]
    ssh: Option<String>,
    /// phoenix's certificate store (the CA root trusted_ca installs).
    #[arg(long, value_name = "DIR", default_value = phoenix_model::paths::DEFAULT_STORE)]
    certs: std::path::PathBuf,
}

pub fn run(args: StatusArgs) -> Result<Outcome, Failure> {
    let node = crate::connect::observe_guests(&args.config.config, &args.pve)?;
    let rows = guests::status(&node.model, &node.rendered, &node.observed);
    let features = features(&args, &node)?;
    match args.format {
        TextOrJson::Text => print!("{}\n{}", guests::status_text(&rows), phoenix_exec::provision::report_text(&features)),
        TextOrJson::Json => {
            let report = serde_json::json!({ "schema_version": 1, "guests": rows, "features": features });
            println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default())
        }
    }
    // Drift, a guest not running, a feature out of place or a failing health check is "the
    // thing checked is wrong".
    let converged = rows.iter().all(|r| r.drift.is_empty() && r.lock.is_none() && matches!(r.state.as_str(), "running" | "template"))
        && features.iter().all(|f| f.converged());
    Ok(if converged { Outcome::Ok } else { Outcome::Wrong })
}

/// Each provisioned guest's features; probed and health-checked with `--probe`.
fn features(args: &StatusArgs, node: &crate::connect::GuestsObserved) -> Result<Vec<phoenix_exec::provision::GuestReport>, Failure> {
    use phoenix_drivers::host::{GuestAccess, HostTarget, NodeRunner, SshRunner, SystemRunner};
    let root_ca_pem = phoenix_drivers::host::read_optional(&args.certs.join(phoenix_model::paths::STORE_ROOT_FILE)).ok().flatten();
    let inputs = phoenix_drivers::host::feature_inputs(&node.model)
        .map_err(|error| Failure::could_not_run("cannot read the application scripts").because(error))?;
    let desired = phoenix_core::provision::desired(&node.model, &phoenix_core::provision::Inputs { root_ca_pem, ..inputs });
    let running: std::collections::BTreeSet<u32> = match args.probe {
        true => node.observed.guest_states.iter().filter(|(_, s)| s.status == "running").map(|(id, _)| *id).collect(),
        false => Default::default(),
    };
    let runner = match &args.ssh {
        Some(destination) => NodeRunner::Ssh(SshRunner::new(destination.clone())),
        None => NodeRunner::Local(SystemRunner),
    };
    let target = HostTarget::new(GuestAccess::Pve, runner).with_cluster(&node.model);
    let sleep = |d| tokio::time::sleep(d);
    Ok(node.runtime.block_on(phoenix_exec::provision::report(&target, &desired, &running, sleep)))
}
