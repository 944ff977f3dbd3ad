//! The Proxmox VE firewall, evaluated as pve-firewall and proxmox-firewall apply it (DESIGN.md):
//! - guest traffic passes the source guest's OUT chain, then the destination guest's IN chain;
//!   a guest chain applies only when the cluster is enabled, the guest's `.fw` enables it and
//!   the NIC has `firewall=1`; its own rules (and security groups it includes) decide, first
//!   match, then its policy; cluster rules never filter guest traffic;
//! - host traffic passes host.fw rules, then cluster.fw rules, then the cluster policy.
//! A hop that passes only because a chain is not in force is reported as unprotected, never as
//! allowed by a rule. Evaluation works on parsed `.fw` files, so rendered and deployed
//! configurations are judged the same way, and every verdict cites file, line and rule text.

mod evaluate;
mod matching;
mod state;

pub use evaluate::{evaluate, ChainVerdict, Decision, Endpoint, FirewallVerdict, Packet};
pub use state::{FirewallState, FwSource, StateError};
