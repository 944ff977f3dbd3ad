//! phoenix-exec: the traits phoenix's drivers implement ([`traits`]: where files go and
//! commands run, who issues certificates, the Proxmox VE and Portainer APIs) and the operations
//! that carry a decision of the pure core out through them (sync's observe and apply, provisioning,
//! certificate renewal and trust, installs with rollback). It decides nothing the core can decide, and it touches the world only through the
//! traits, so every operation runs against fakes in tests.

pub mod certs;
pub mod install;
pub mod provision;
pub mod sync;
pub mod traits;

pub use traits::{DriverError, Issued, Issuer, NotUsed, PortainerApi, PveApi, PveReply, Target, Watch};
