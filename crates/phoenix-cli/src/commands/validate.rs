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
    let checked = context::checked(&args.config.config)?;
    let text = match args.format {
        Format::Human => render::to_human(&checked.diagnostics, &checked.sources, context::color_wanted()),
        Format::Json => format!("{:#}\n", render::to_json(&checked.diagnostics, &checked.sources)),
    };
    context::report(&text, checked.has_errors())
}
