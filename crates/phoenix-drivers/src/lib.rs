//! phoenix-drivers: the I/O behind phoenix's pure core, one module per outside system.
//! Today: the host's filesystem and environment as a configuration [`phoenix_model::Source`].

pub mod host;
