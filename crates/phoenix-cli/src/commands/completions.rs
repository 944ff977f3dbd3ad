//! `phoenix completions SHELL`: the shell completion script, generated from the same clap
//! definitions as the parser (clap_complete), so it cannot miss a flag.

use crate::context;
use crate::exit::{Failure, Outcome};
use clap::CommandFactory;

#[derive(clap::Args)]
pub struct Args {
    /// The shell to complete for, e.g. `phoenix completions bash > /etc/bash_completion.d/phoenix`.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

pub fn run(args: Args) -> Result<Outcome, Failure> {
    let mut command = crate::Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "phoenix", &mut script);
    context::report(&String::from_utf8_lossy(&script), false)
}
