//! Sections found nested where they do not belong (the reference configuration has its
//! `firewall` under `shared_volumes`). They are moved to their place, used from there, and
//! reported, because the original scripts used them as written.

use crate::diag::Diagnostic;
use crate::json::{join, JsonDoc};

/// Top-level sections of phoenix_hypervisor_config.json that hold objects.
const SECTIONS: &[&str] = &["firewall", "dns_server", "step_ca", "portainer_api", "network", "nfs", "edge", "proxmox"];

/// Moves misplaced sections of the hypervisor file to the top level.
pub fn relocate_sections(doc: &mut JsonDoc) -> Vec<Diagnostic> {
    let Some(top) = doc.value.as_object() else {
        return Vec::new();
    };
    let mut moves = Vec::new();
    for (parent, value) in top {
        let Some(children) = value.as_object() else {
            continue;
        };
        for (key, child) in children {
            let is_section = SECTIONS.contains(&key.as_str());
            if is_section && key != parent && child.is_object() && !top.contains_key(key) {
                moves.push((parent.clone(), key.clone()));
            }
        }
    }
    let mut out = Vec::new();
    for (parent, key) in moves {
        let from = join(&join("", &parent), &key);
        let span = doc.key_span(&from);
        if doc.relocate(&from, &join("", &key)) {
            out.push(
                Diagnostic::at("PHX-KEY-002", span, format!("section `{key}` is nested under `{parent}`"))
                    .help(format!("move `{key}` to the top level of the file; phoenix uses it from here, as the original scripts did")),
            );
        }
    }
    out
}
