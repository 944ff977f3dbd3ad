//! Each node's host.fw: host options and host rules (evaluated before cluster rules). The host
//! rules of the configuration are every node's: a cluster's nodes are managed alike.

use super::{rule_lines, VALIDATE};
use crate::deploy::Machine;
use crate::pve_fw::FwFile;
use crate::render::{Rendered, RenderedFile};
use phoenix_model::model::Model;

pub fn path(node: &str) -> String {
    phoenix_model::paths::host_fw(node)
}

pub fn render(model: &Model, out: &mut Rendered) {
    let mut file = FwFile::default();
    file.options.insert("enable".into(), "1".into());
    file.rules = rule_lines(&model.firewall.host_rules);
    for node in model.host.node_names() {
        out.files.push(RenderedFile::new(Machine::Host, path(node), file.to_text()).validated_by(VALIDATE));
    }
}
