//! The configuration files as written: the legacy phoenix_hypervisor format plus phoenix's
//! optional extension keys (each documented where it is declared, with the default that
//! reproduces the original scripts). These types are what serde decodes and what the
//! published JSON Schema is generated from.
//! Must not hold interpretation: meaning is given in `model`, checks live in `validate`.

pub mod common;
pub mod guests;
pub mod hypervisor;
pub mod manifest;
pub mod stacks;

pub use common::*;
pub use guests::*;
pub use hypervisor::*;
pub use manifest::*;
pub use stacks::*;
