//! `phoenix schema`: phoenix's JSON Schema of a configuration file, or all of them.

use crate::context;
use crate::exit::{Failure, Outcome};
use phoenix_model::schema::{self, FileKind};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// File name, e.g. phoenix_lxc_configs.json (default phoenix_hypervisor_config.json).
    file: Option<String>,
    /// Write every schema into this folder instead.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<Outcome, Failure> {
    if let Some(dir) = &args.out {
        for kind in FileKind::ALL {
            let text = format!("{:#}\n", schema::schema_for(kind));
            // Atomic, and never through a planted link: a link in the folder is refused.
            let path = dir.join(kind.schema_file_name());
            phoenix_drivers::host::under_root(dir, &kind.schema_file_name())
                .and_then(|path| phoenix_drivers::host::write_atomic(&path, text.as_bytes(), 0o644))
                .map_err(|error| Failure::could_not_run(format!("cannot write {}", path.display())).because(error))?;
        }
        return Ok(Outcome::Ok);
    }
    let name = args.file.as_deref().unwrap_or("phoenix_hypervisor_config.json");
    let Some(kind) = FileKind::ALL.iter().find(|k| k.file_name() == name) else {
        let names: Vec<&str> = FileKind::ALL.iter().map(|k| k.file_name()).collect();
        return Err(Failure::could_not_run(format!("no schema for {name}")).hint(format!("known files: {}", names.join(", "))));
    };
    context::report(&format!("{:#}\n", schema::schema_for(*kind)), false)
}
