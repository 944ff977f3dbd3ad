//! phoenix-sim: simulators of what cannot run beside phoenix, faithful to the real services'
//! schemas and handlers, each behaviour citing the source it follows. A product component:
//! the tests, `scripts/run-example` (the `phoenix-sim` binary) and the bare lab use them.
//!
//! - [`pve`]: a Proxmox VE 9.1.3 node (the API schema as router and validator; firewall and
//!   guest configuration kept as the cluster file system's files), [`pve_server`] its HTTPS front;
//! - [`portainer`]: Portainer's API;
//! - [`ca`]: a certificate authority standing in for Step-CA's issuing (and for the servers'
//!   own certificates);
//! - [`server`]: the HTTPS front with fault injection.

pub mod ca;
pub mod portainer;
pub mod pve;
pub mod pve_server;
pub mod rehearsal;
pub mod server;
