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
            let path = dir.join(kind.schema_file_name());
            std::fs::create_dir_all(dir)
                .and_then(|_| std::fs::write(&path, text))
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
