//! The machine phoenix runs on: its files, environment and commands, and the guests reached
//! from it (through `pct`/`qm` on a Proxmox node, or as folders in a rehearsal).

mod files;
pub mod lock;
pub mod lxc;
mod owners;
mod runner;
mod target;

pub use files::*;
pub use owners::{resolve_owner, Owner};
pub use runner::{CommandOutput, CommandRunner, NodeRunner, SshRunner, SystemRunner};
pub use target::{guest_folder, GuestAccess, HostTarget};
