//! Certificates as X.509 data, shared by the assessment's certificate checks and certificate
//! status and renewal: the PEM files of a store by name ([`CertStore`]), chains parsed and
//! verified to a root with rustls-webpki, and the names a certificate covers. Pure: file
//! contents and the time come in.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, UnixTime};
use std::collections::BTreeMap;
use std::time::Duration;
use x509_parser::prelude::{GeneralName, X509Certificate};

/// PEM texts found in the certificates folder, by file name.
#[derive(Debug, Clone, Default)]
pub struct CertStore {
    pub files: BTreeMap<String, String>,
}

pub(crate) fn parse_chain(pem: &str) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(pem.as_bytes()).filter_map(Result::ok).collect()
}

/// The SHA-256 fingerprint of the first certificate in `pem` (of its DER, lower-case hex);
/// `None` when `pem` holds no certificate.
pub fn fingerprint(pem: &str) -> Option<String> {
    parse_chain(pem).first().map(|der| crate::provision::resource::sha256_hex(der.as_ref()))
}

/// Why a chain could not be verified.
pub(crate) enum ChainError {
    /// The root is not a usable trust anchor.
    BadRoot,
    /// The leaf cannot be parsed.
    BadLeaf,
    /// rustls-webpki refused the chain (issuer, time, EKU...).
    Rejected(webpki::Error),
}

/// Verifies `chain` (leaf first, then intermediates) against `root` for client or server use at
/// `seconds` since the epoch, and returns the leaf for further checks (names).
pub(crate) fn verify_chain<'c>(
    chain: &'c [CertificateDer<'static>],
    root: &CertificateDer<'_>,
    client: bool,
    seconds: u64,
) -> Result<webpki::EndEntityCert<'c>, ChainError> {
    let anchor = webpki::anchor_from_trusted_cert(root).map_err(|_| ChainError::BadRoot)?;
    let leaf = chain.first().ok_or(ChainError::BadLeaf)?;
    let end_entity = webpki::EndEntityCert::try_from(leaf).map_err(|_| ChainError::BadLeaf)?;
    let usage = if client { webpki::KeyUsage::client_auth() } else { webpki::KeyUsage::server_auth() };
    let time = UnixTime::since_unix_epoch(Duration::from_secs(seconds));
    end_entity
        .verify_for_usage(webpki::ALL_VERIFICATION_ALGS, &[anchor], &chain[1..], time, usage, None, None)
        .map_err(ChainError::Rejected)?;
    Ok(end_entity)
}

/// DNS names and IP addresses of a certificate's SAN extension, sorted.
pub(crate) fn san_strings(leaf: &X509Certificate<'_>) -> Vec<String> {
    let mut names: Vec<String> = leaf
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|ext| {
            ext.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::DNSName(d) => Some(d.to_ascii_lowercase()),
                    GeneralName::IPAddress(ip) if ip.len() == 4 => Some(std::net::Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3]).to_string()),
                    GeneralName::IPAddress(ip) if ip.len() == 16 => {
                        let bytes: [u8; 16] = (*ip).try_into().ok()?;
                        Some(std::net::Ipv6Addr::from(bytes).to_string())
                    }
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names.dedup();
    names
}
