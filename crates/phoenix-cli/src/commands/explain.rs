//! `phoenix explain [CODE]`: a diagnostic code's documentation, or the list of codes.

use crate::context;
use crate::exit::{Failure, Outcome};
use phoenix_model::diag;

#[derive(clap::Args)]
pub struct Args {
    /// A code such as PHX-FW-009; without one, every code is listed.
    code: Option<String>,
}

pub fn run(args: Args) -> Result<Outcome, Failure> {
    let text = match args.code.as_deref() {
        None => diag::CODES.iter().map(|c| format!("{:<16} {}\n", c.code, c.title)).collect(),
        Some(code) => diag::explain(code)
            .ok_or_else(|| Failure::could_not_run(format!("unknown code {code}")).hint("`phoenix explain` lists every code"))?,
    };
    context::report(&text, false)
}
