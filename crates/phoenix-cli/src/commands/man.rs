//! `phoenix man`: the manual pages, generated from the same clap definitions as the parser
//! (clap_mangen): phoenix(1) on stdout, or one page per command into a folder.

use crate::context;
use crate::exit::{Failure, Outcome};
use clap::CommandFactory;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Write phoenix.1 and a page per command (phoenix-sync.1, ...) into DIR instead.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<Outcome, Failure> {
    let command = crate::Cli::command();
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir)
            .and_then(|_| clap_mangen::generate_to(command, dir))
            .map_err(|error| Failure::could_not_run(format!("cannot write the manual pages to {}", dir.display())).because(error))?;
        return Ok(Outcome::Ok);
    }
    let mut page = Vec::new();
    clap_mangen::Man::new(command)
        .render(&mut page)
        .map_err(|error| Failure::could_not_run("cannot render the manual page").because(error))?;
    context::report(&String::from_utf8_lossy(&page), false)
}
