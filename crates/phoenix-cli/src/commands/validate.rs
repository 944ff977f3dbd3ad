//! `phoenix validate`: every problem of the configuration at once.

use crate::context::{self, ConfigArg, Format};
use crate::exit::{Failure, Outcome};
use phoenix_model::diag::render;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: ConfigArg,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

pub fn run(args: Args) -> Result<Outcome, Failure> {
    let mut checked = context::checked(&args.config.config)?;
    // Whether Step-CA can complete each certificate's challenge takes the firewall and DNS
    // analysis, which lives in phoenix-core; judged only on a model without errors of its own.
    if let (Some(model), false) = (&checked.model, checked.has_errors()) {
        checked.diagnostics.extend(phoenix_core::analyze::challenges::diagnostics(model));
    }
    let text = match args.format {
        Format::Human => render::to_human(&checked.diagnostics, &checked.sources, context::color_wanted()),
        Format::Json => format!("{:#}\n", render::to_json(&checked.diagnostics, &checked.sources)),
    };
    context::report(&text, checked.has_errors())
}
