//! Names and paths that become names on the node or paths on disk: a guest's name is a host
//! name (Proxmox's `dns-name`, at most 255 characters), a stack's and an environment's name is
//! one path component (they name folders under /opt/phoenix/stacks), and a certificate's
//! `cert_path`/`key_path` is a normalised absolute path in its guest. Values are shown cut
//! short: a name can be any length.

use crate::diag::Diagnostic;
use crate::model::Model;
use crate::paths::{guest_path_problem, one_component};
use crate::pve::names::dns_name;

/// At most this much of an offending value is quoted.
const SHOWN: usize = 64;

fn shown(text: &str) -> String {
    let cut: String = text.chars().take(SHOWN).collect();
    if cut.len() < text.len() {
        format!("{cut}... ({} bytes)", text.len())
    } else {
        cut
    }
}

pub fn check(model: &Model) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for guest in model.guests.values() {
        if !dns_name(&guest.name) {
            out.push(
                Diagnostic::at(
                    "PHX-NAME-001",
                    guest.span,
                    format!("{} is named `{}`, which is not a host name", guest.label(), shown(&guest.name)),
                )
                .help("Proxmox VE takes letters, digits and inner hyphens, dot-separated labels of at most 63, 255 in all (dns-name)"),
            );
        }
    }
    for stack in model.stacks.values() {
        let names = std::iter::once(("stack", &stack.name, stack.span))
            .chain(stack.environments.values().map(|e| ("environment", &e.name, e.span)));
        for (what, name, span) in names {
            if !one_component(name) {
                out.push(
                    Diagnostic::at("PHX-NAME-001", span, format!("{what} name `{}` cannot name a folder", shown(name)))
                        .help("use letters, digits, `-`, `_` or `.`, without `/` and other than `.` or `..`"),
                );
            }
        }
    }
    for cert in &model.certificates {
        for (key, path) in [("cert_path", &cert.cert_path), ("key_path", &cert.key_path)] {
            if let Some(problem) = path.as_deref().and_then(guest_path_problem) {
                let path = shown(path.as_deref().unwrap_or_default());
                out.push(
                    Diagnostic::at("PHX-PATH-001", cert.span, format!("certificate {}: {key} `{path}` {problem}", cert.name))
                        .help("write the absolute path in the guest, e.g. /etc/nginx/ssl/gateway.key"),
                );
            }
        }
    }
    out
}
