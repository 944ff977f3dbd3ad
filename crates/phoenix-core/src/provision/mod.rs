//! In-guest provisioning: the features a guest declares (`base_setup`, `trusted_ca`,
//! `docker`, ...), the gateway role and the guest's application script, as typed resources
//! ([`resource`], built by [`features`]), observed in one probe per guest ([`probe`]), planned
//! as ordered changes with reasons ([`plan`]) and run as `sh -c` scripts ([`shell`]). Pure:
//! the drivers run the scripts and the executor walks the plan; a second run plans nothing.

pub mod features;
pub mod mounts;
pub mod nvidia;
pub mod plan;
pub mod portainer;
pub mod probe;
pub mod resource;
pub mod shell;
pub mod step_ca;

pub use features::Inputs;
pub use plan::{desired, plan, Action, Change, Desired, GuestPlan};
pub use resource::{GuestState, ManagedFile, Resource};
