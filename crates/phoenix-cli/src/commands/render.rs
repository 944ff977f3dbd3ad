//! `phoenix render`: list, write (`--out`) or compare (`--diff`) every file phoenix manages.

use crate::context::{self, ConfigArg};
use crate::exit::{Failure, Outcome};
use phoenix_core::render;
use phoenix_model::diag::render as diag;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: ConfigArg,
    /// Write the files into DIR, laid out as on the real system (host/..., guest-<id>/...).
    #[arg(long, value_name = "DIR", conflicts_with = "diff")]
    out: Option<PathBuf>,
    /// Compare with the files in DIR (same layout); exit 3 when they differ.
    #[arg(long, value_name = "DIR")]
    diff: Option<PathBuf>,
    /// Render even when the configuration has errors (what can be rendered is).
    #[arg(long)]
    allow_errors: bool,
    #[arg(long, value_enum, default_value_t = super::TextOrJson::Text)]
    format: super::TextOrJson,
}

pub fn run(args: Args) -> Result<Outcome, Failure> {
    let checked = context::loaded(&args.config.config)?;
    let errors = checked.diagnostics.iter().filter(|d| d.severity == phoenix_model::Severity::Error).count();
    if errors > 0 && !args.allow_errors {
        return Err(Failure::wrong(format!("not rendering a configuration with errors ({})", diag::summary_line(&checked.diagnostics)))
            .detail(diag::to_human(&checked.diagnostics, &checked.sources, false))
            .hint("fix them (phoenix validate), or pass --allow-errors to render what can be rendered"));
    }
    if errors > 0 {
        eprintln!("phoenix: rendering despite {errors} error(s) in the configuration (--allow-errors)");
    }
    let model = checked.model.as_ref().expect("loaded() returns a model");
    let rendered = render::render_all(model);
    if !rendered.notes.is_empty() {
        eprint!("{}", diag::to_human(&rendered.notes, &checked.sources, false));
    }
    if let Some(out) = &args.out {
        phoenix_drivers::host::write_rendered(out, &rendered.files)
            .map_err(|error| Failure::could_not_run("cannot write the rendered files").because(error))?;
        eprintln!("phoenix: wrote {} files under {}", rendered.files.len(), out.display());
        return Ok(Outcome::Ok);
    }
    if let Some(tree) = &args.diff {
        if !tree.is_dir() {
            return Err(Failure::could_not_run(format!("{} does not exist: there is nothing to compare with", tree.display()))
                .hint("give the folder a `render --out` wrote, or a copy of the deployed files in that layout"));
        }
        let deployed = phoenix_drivers::host::read_rendered_places(tree, &rendered.files)
            .map_err(|error| Failure::could_not_run("cannot read the deployed files").because(error))?;
        let diffs = render::diff::diff(&rendered.files, &deployed);
        let text: String = diffs.iter().map(|d| d.unified.clone()).collect();
        context::print(&text)?;
        return Ok(if diffs.is_empty() { Outcome::Ok } else { Outcome::Differs });
    }
    let text = match args.format {
        super::TextOrJson::Text => render::listing(&rendered),
        super::TextOrJson::Json => format!("{:#}\n", render::to_json(&rendered)),
    };
    context::report(&text, false)
}
