//! Certificate manifest entries for guests that do not exist or are of another kind, and
//! modes that let every user of the machine read a private key.

use crate::diag::Diagnostic;
use crate::model::Model;

pub fn check(model: &Model) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for cert in &model.certificates {
        out.extend(readable_key(cert));
        let Some(guest_ref) = &cert.guest else {
            continue;
        };
        match model.guests.get(&guest_ref.value) {
            None => out.push(
                Diagnostic::at(
                    "PHX-CERT-001",
                    guest_ref.span,
                    match cert.guest_from_path {
                        false => format!("certificate {} is for guest {}, which is not defined", cert.name, guest_ref.value),
                        true => format!(
                            "certificate {} lies in the persistent-data folder of guest {}, which is not defined",
                            cert.name, guest_ref.value
                        ),
                    },
                )
                .help(if cert.guest_from_path { "correct cert_path" } else { "correct guest_id" }),
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

/// The original's certificate manager gave `permissions` to the key as well as the
/// certificate, so `644` made the key readable by everyone; phoenix does as written, and says so.
fn readable_key(cert: &crate::model::Certificate) -> Option<Diagnostic> {
    let mode = cert.permissions.as_ref()?;
    (mode.value & 0o004 != 0 && cert.key_path.is_some()).then(|| {
        Diagnostic::at(
            "PHX-CERT-003",
            mode.span,
            format!("permissions {:o} make the private key of certificate {} readable by every user", mode.value, cert.name),
        )
        .help("the mode applies to the key too: write \"640\" (group readable) or \"600\"")
    })
}
