//! phoenix-drivers: the I/O behind phoenix's traits, one module per outside system: the
//! machine phoenix runs on and its guests (`host`), ACME certificate authorities (`acme`), the
//! Proxmox VE API (`pve`) and the Portainer API (`portainer`), over one HTTPS setup (`http`).

pub mod acme;
pub mod dns;
pub mod host;
pub mod http;
pub mod portainer;
pub mod pve;
