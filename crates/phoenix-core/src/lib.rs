//! phoenix-core: the pure middle of phoenix's pipeline. Today: rendering every file phoenix
//! manages from the model. Later: the hop model's analysis, planning and reports.
//! Nothing here does I/O; the clock, file contents and observations come in as arguments.

pub mod analyze;
pub mod certificates;
pub mod deploy;
pub mod edge;
pub mod lab;
pub mod plan;
pub mod pve_fw;
pub mod render;
