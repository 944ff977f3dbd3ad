//! The node's host.fw: host options and host rules (evaluated before cluster rules).

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
    out.files.push(RenderedFile::new(Machine::Host, path(&model.host.node_name), file.to_text()).validated_by(VALIDATE));
}
