//! What the loader probed on the machine (which files exist, which environment variables are
//! set), handed to validation so that validation needs no I/O. Must not probe anything itself.

use std::collections::BTreeSet;
use std::path::PathBuf;

/// Results of the loader's probes, so validation needs no I/O.
#[derive(Debug, Default, Clone)]
pub struct Facts {
    pub existing_files: BTreeSet<PathBuf>,
    pub env_set: BTreeSet<String>,
}
