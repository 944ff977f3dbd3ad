//! Certificate manifest entries for guests that do not exist or are of another kind.

use crate::diag::Diagnostic;
use crate::model::Model;

pub fn check(model: &Model) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for cert in &model.certificates {
        let Some(guest_ref) = &cert.guest else {
            continue;
        };
        match model.guests.get(&guest_ref.value) {
            None => out.push(
                Diagnostic::at(
                    "PHX-CERT-001",
                    guest_ref.span,
                    format!("certificate {} is for guest {}, which is not defined", cert.name, guest_ref.value),
                )
                .help("correct guest_id"),
            ),
            Some(guest) if cert.guest_kind.is_some_and(|k| k != guest.kind) => out.push(
                Diagnostic::at(
                    "PHX-CERT-001",
                    guest_ref.span,
                    format!(
                        "certificate {} says guest_type {}, but {} is not one",
                        cert.name,
                        cert.guest_kind.map_or("", |k| k.type_name()),
                        guest.label()
                    ),
                )
                .help(format!("write \"guest_type\": \"{}\"", guest.kind.type_name())),
            ),
            Some(_) => {}
        }
    }
    out
}
