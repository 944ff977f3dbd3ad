//! The node's host.fw: host options and host rules (evaluated before cluster rules).

use super::format::FwFile;
use super::{rule_lines, VALIDATE};
use crate::render::{Rendered, RenderedFile, Target};
use phoenix_model::model::Model;

pub fn path(node: &str) -> String {
    format!("/etc/pve/nodes/{node}/host.fw")
}

pub fn render(model: &Model, out: &mut Rendered) {
    let mut file = FwFile::default();
    file.options.insert("enable".into(), "1".into());
    file.rules = rule_lines(&model.firewall.host_rules);
    out.files.push(RenderedFile::new(Target::Host, path(&model.host.node_name), file.to_text()).validated_by(VALIDATE));
}
