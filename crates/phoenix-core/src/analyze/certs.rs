//! Certificates as files: `phoenix assess --certs DIR` reads `<name>.crt` (leaf, then any
//! intermediates) and `<name>.key` for every certificate-manifest entry, and `root_ca.crt`, the
//! configured root. A certificate passes when it chains to that root, is valid at `now`, has the
//! extended key usage the hop needs, and (for servers) covers the name the client sends.
//! Verification is rustls-webpki's; x509-parser supplies the details shown as evidence.
//! Must not read files: the caller hands in their texts.

use super::verdict::{Check, Status};
use crate::pki::{parse_chain, san_strings, verify_chain, CertStore, ChainError};
use phoenix_model::paths::STORE_ROOT_FILE;
use rustls_pki_types::{CertificateDer, ServerName};

/// What a certificate is checked for.
#[derive(Debug, Clone, Copy)]
pub enum Purpose<'a> {
    /// A server certificate presented for `name` (a DNS name or an IP address).
    Server(&'a str),
    Client,
}

/// Subject, SANs and validity of a DER certificate, for evidence.
fn describe(der: &CertificateDer<'_>) -> String {
    use x509_parser::prelude::*;
    let Ok((_, cert)) = X509Certificate::from_der(der.as_ref()) else { return "unparsable certificate".into() };
    let sans = san_strings(&cert);
    format!(
        "subject {}, issuer {}, SANs [{}], valid {} to {}",
        cert.subject(),
        cert.issuer(),
        sans.join(", "),
        cert.validity().not_before.to_rfc2822().unwrap_or_default(),
        cert.validity().not_after.to_rfc2822().unwrap_or_default()
    )
}

fn explain(error: &webpki::Error, purpose: Purpose<'_>) -> String {
    use webpki::Error as E;
    match error {
        E::CertExpired { .. } => "has expired".into(),
        E::CertNotValidYet { .. } => "is not valid yet".into(),
        E::UnknownIssuer => "does not chain to the configured root".into(),
        E::RequiredEkuNotFoundContext(_) => match purpose {
            Purpose::Server(_) => "lacks the serverAuth extended key usage".into(),
            Purpose::Client => "lacks the clientAuth extended key usage".into(),
        },
        E::CertNotValidForName(_) => "does not cover the name".into(),
        other => format!("fails verification ({other:?})"),
    }
}

/// Checks certificate `name` from `store` for `purpose` at `now` (seconds since the epoch).
pub fn check(store: &CertStore, name: &str, purpose: Purpose<'_>, now: u64) -> Check {
    let fail = |summary: String, evidence: Vec<String>| Check { status: Status::Fail, summary, evidence };
    let Some(pem) = store.files.get(&format!("{name}.crt")) else {
        return fail(format!("certificate {name}: {name}.crt is not in the certificates folder"), Vec::new());
    };
    if !store.files.contains_key(&format!("{name}.key")) {
        return fail(format!("certificate {name}: its key {name}.key is missing"), Vec::new());
    }
    let Some(root_pem) = store.files.get(STORE_ROOT_FILE) else {
        return fail(format!("certificate {name} cannot be verified: {STORE_ROOT_FILE} (the configured root) is missing"), Vec::new());
    };
    let chain = parse_chain(pem);
    let roots = parse_chain(root_pem);
    let (Some(leaf), Some(root)) = (chain.first(), roots.first()) else {
        return fail(format!("certificate {name}: no PEM certificate in {name}.crt or {STORE_ROOT_FILE}"), Vec::new());
    };
    let evidence = vec![format!("{name}.crt: {}", describe(leaf))];
    let end_entity = match verify_chain(&chain, root, matches!(purpose, Purpose::Client), now) {
        Ok(end_entity) => end_entity,
        Err(ChainError::BadRoot) => return fail(format!("{STORE_ROOT_FILE} is not a usable trust anchor"), evidence),
        Err(ChainError::BadLeaf) => return fail(format!("certificate {name} cannot be parsed"), evidence),
        Err(ChainError::Rejected(error)) => return fail(format!("certificate {name} {}", explain(&error, purpose)), evidence),
    };
    if let Purpose::Server(server_name) = purpose {
        let covered =
            ServerName::try_from(server_name.to_string()).ok().is_some_and(|n| end_entity.verify_is_valid_for_subject_name(&n).is_ok());
        if !covered {
            return fail(format!("certificate {name} does not cover {server_name}"), evidence);
        }
    }
    let what = match purpose {
        Purpose::Server(n) => format!("covers {n}, serverAuth"),
        Purpose::Client => "clientAuth".into(),
    };
    Check { status: Status::Ok, summary: format!("certificate {name} chains to the configured root, is valid now, {what}"), evidence }
}
