//! `phoenix status`: each described guest's state, uptime, lock and drift (what `sync guests`
//! would change), read from the Proxmox VE API; as a table or JSON.

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
}

pub fn run(args: StatusArgs) -> Result<Outcome, Failure> {
    let node = crate::connect::observe_guests(&args.config.config, &args.pve)?;
    let rows = guests::status(&node.model, &node.rendered, &node.observed);
    match args.format {
        TextOrJson::Text => print!("{}", guests::status_text(&rows)),
        TextOrJson::Json => {
            println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "schema_version": 1, "guests": rows })).unwrap_or_default())
        }
    }
    // Drift or a guest not running is "the thing checked is wrong".
    let converged = rows.iter().all(|r| r.drift.is_empty() && r.lock.is_none() && matches!(r.state.as_str(), "running" | "template"));
    Ok(if converged { Outcome::Ok } else { Outcome::Wrong })
}
