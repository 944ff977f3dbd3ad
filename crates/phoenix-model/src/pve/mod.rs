//! Proxmox VE's own vocabulary as data, transcribed from its sources so that every crate
//! (validation, the evaluator, the simulator) reads one copy: pve-firewall's macros and the
//! limits its API puts on names. Owns facts only; what phoenix does with them lives with the
//! checks that use them.

pub mod addresses;
pub mod fw_names;
pub mod macros;
pub mod names;

/// The host's management ports pve-firewall opens on its own, inbound from the `management`
/// ipset (`src/PVE/Firewall.pm`, `enable_host_firewall`): the web UI, VNC consoles, SPICE,
/// SSH and the migration range.
pub const MANAGEMENT_PORTS_IN: &[(u16, u16)] = &[(8006, 8006), (5900, 5999), (3128, 3128), (22, 22), (60000, 60050)];

/// The same ports outbound to the local network (`enable_host_firewall`).
pub const MANAGEMENT_PORTS_OUT: &[(u16, u16)] = &[(8006, 8006), (22, 22), (5900, 5999), (3128, 3128)];
