//! `phoenix graph`: the guests' creation order, cycles and boot order.

use crate::context::{self, ConfigArg};
use crate::exit::{Failure, Outcome};
use phoenix_model::graph;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: ConfigArg,
    #[arg(long, value_enum, default_value_t = super::TextOrJson::Text)]
    format: super::TextOrJson,
}

pub fn run(args: Args) -> Result<Outcome, Failure> {
    let checked = context::loaded(&args.config.config)?;
    let model = checked.model.as_ref().expect("loaded() returns a model");
    let graph = graph::build(model);
    let text = match args.format {
        super::TextOrJson::Text => graph::to_text(&graph, model),
        super::TextOrJson::Json => format!("{:#}\n", graph::to_json(&graph, model)),
    };
    context::report(&text, !graph.cycles.is_empty())
}
