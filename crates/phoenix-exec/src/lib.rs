//! phoenix-exec: the traits phoenix's drivers implement (where files go and commands run, who
//! issues certificates) and the operations that carry a decision of the pure core out through
//! them. It decides nothing the core can decide, and it touches the world only through the
//! traits, so every operation runs against fakes in tests.

pub mod certs;
pub mod install;
pub mod sync;
pub mod traits;

pub use traits::{DriverError, Issued, Issuer, PortainerApi, PveApi, Target};
