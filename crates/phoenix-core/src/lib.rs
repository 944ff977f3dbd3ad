//! phoenix-core: the pure middle of phoenix's pipeline: the edge as hops ([`edge`]), every
//! file phoenix manages rendered from the model ([`render`]), the assessment of every flow
//! ([`analyze`]), certificate status and renewal plans ([`certificates`]), the sync planner
//! ([`plan`]), in-guest provisioning as resources ([`provision`]) and the lab as data ([`lab`]); and the vocabulary they share: where files go and
//! what runs after them ([`deploy`]), pve-firewall's `.fw` format ([`pve_fw`]).
//! Nothing here does I/O; the clock, file contents and observations come in as arguments.

pub mod analyze;
pub mod certificates;
pub mod deploy;
pub mod edge;
pub mod lab;
pub mod pki;
pub mod plan;
pub mod provision;
pub mod pve_fw;
pub mod render;
