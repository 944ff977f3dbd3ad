//! Proxmox VE's own vocabulary as data, transcribed from its sources so that every crate
//! (validation, the evaluator, the simulator) reads one copy: pve-firewall's macros and the
//! limits its API puts on names. Owns facts only; what phoenix does with them lives with the
//! checks that use them.

pub mod addresses;
pub mod fw_names;
pub mod macros;
pub mod names;
