//! Certificates phoenix issues and keeps renewed: what is installed and whether it is due
//! ([`status`]), and what a renewal orders, writes and runs ([`renewal`]). Pure: file contents
//! and the clock come in; the ACME exchange and the writes happen in phoenix-exec's drivers.

pub mod renewal;
mod status;
pub mod timer;

pub use status::*;
