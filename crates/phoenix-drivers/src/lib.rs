//! phoenix-drivers: the I/O behind phoenix's traits, one module per outside system: the
//! machine phoenix runs on and its guests (`host`), and ACME certificate authorities (`acme`).

pub mod acme;
pub mod host;
