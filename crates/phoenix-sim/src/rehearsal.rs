//! A rehearsal's guests as folders (`<root>/guest-<vmid>`), as they are once provisioned: the
//! accounts their files are owned by exist in their own `etc/passwd` and `etc/group`. The
//! `phoenix-sim` binary, the bare lab and the test rigs prepare their folders with it.

use phoenix_core::render::Rendered;
use phoenix_model::model::Model;
use std::path::Path;

/// Gives every guest folder under `root` (`guest-<vmid>`) the accounts its files are owned
/// by, as a guest has them once its services are installed (see
/// [`phoenix_core::lab::guest_accounts`]).
pub fn write_guest_accounts(root: &Path, model: &Model, rendered: &Rendered) -> std::io::Result<()> {
    for (id, (passwd, group)) in phoenix_core::lab::guest_accounts(model, rendered) {
        let etc = root.join(format!("guest-{id}")).join("etc");
        std::fs::create_dir_all(&etc)?;
        std::fs::write(etc.join("passwd"), passwd)?;
        std::fs::write(etc.join("group"), group)?;
    }
    Ok(())
}
