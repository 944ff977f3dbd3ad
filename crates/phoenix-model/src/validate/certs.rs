//! Certificate manifest entries for guests that do not exist or are of another kind, modes
//! that let every user of the machine read a private key, and names the entry's ACME
//! challenge cannot prove.

use crate::diag::Diagnostic;
use crate::model::{AcmeChallenge, Certificate, Model, San};

pub fn check(model: &Model) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for cert in &model.certificates {
        out.extend(readable_key(cert));
        out.extend(unprovable_names(cert));
        out.extend(webroot(cert));
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

/// A web root for http-01 tokens must be an absolute folder in the entry's guest, and the
/// entry's challenge http-01 (the tokens are files; no other challenge reads them).
fn webroot(cert: &Certificate) -> Option<Diagnostic> {
    let root = cert.http01_webroot.as_ref()?;
    let why = if cert.guest.is_none() {
        "the entry names no guest to write the tokens into"
    } else if !root.value.starts_with('/') {
        "it is not an absolute path in the guest"
    } else if cert.challenge != AcmeChallenge::Http01 {
        "only http-01 reads tokens from files, and the entry's challenge is another"
    } else {
        return None;
    };
    Some(
        Diagnostic::at("PHX-CERT-006", root.span, format!("certificate {}: http01_webroot {}: {why}", cert.name, root.value))
            .help("give the entry a guest_id and an absolute folder its web server serves at / on port 80, and leave challenge out (or write http-01)"),
    )
}

/// Names the challenge cannot prove: a wildcard is proven only in DNS (RFC 8555 section
/// 7.1.3: dns-01), an IP address never in DNS (RFC 8738 section 7: http-01 or tls-alpn-01).
fn unprovable_names(cert: &Certificate) -> Vec<Diagnostic> {
    let challenge = cert.challenge.as_str();
    let mut out = Vec::new();
    // The common name is ordered too (first of the identifiers).
    let common = cert.common_name.value.parse().map(San::Ip).unwrap_or_else(|_| San::Dns(cert.common_name.value.clone()));
    let common = crate::model::Located::new(common, cert.common_name.span);
    for san in std::iter::once(&common).chain(&cert.sans) {
        let why = match (&san.value, cert.challenge) {
            (San::Dns(name), AcmeChallenge::Http01 | AcmeChallenge::TlsAlpn01) if name.starts_with("*.") => (
                format!("the wildcard {name}"),
                "an ACME server proves a wildcard only in DNS",
                "write \"challenge\": \"dns-01\" (or leave challenge out)",
            ),
            (San::Ip(ip), AcmeChallenge::Dns01) => (
                format!("the address {ip}"),
                "an address has no DNS name to hold the TXT record",
                "give the address its own entry with \"challenge\": \"http-01\"",
            ),
            _ => continue,
        };
        out.push(
            Diagnostic::at(
                "PHX-CERT-004",
                san.span,
                format!("certificate {} cannot prove {} with {challenge}: {}", cert.name, why.0, why.1),
            )
            .help(why.2),
        );
    }
    out
}
