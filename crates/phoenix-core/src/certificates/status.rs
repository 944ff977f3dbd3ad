//! `phoenix certs status`: for each certificate of the manifest, what is installed (subject,
//! SANs, issuer, chain, EKU, validity, whether the key matches) and whether it needs renewal,
//! as stable reason codes, with the time the next renewal is due (two thirds of the lifetime,
//! Step-CA's and cert-manager's default). Pure: file contents and the clock come in.

use crate::pki::{parse_chain, san_strings, verify_chain, CertStore, ChainError};
use phoenix_model::model::{CertUsage, Certificate, San};
use phoenix_model::paths::STORE_ROOT_FILE;
use rustls_pki_types::CertificateDer;
use serde::Serialize;
use x509_parser::prelude::*;

/// Why a certificate needs to be (re)issued. The codes are a stable contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// No certificate (or no key) is installed.
    Missing,
    /// Two thirds of the lifetime have passed (or it has expired).
    ExpiresSoon,
    /// The installed names differ from the manifest's.
    SanMismatch,
    /// It does not chain to the current root (the CA was rotated, or another CA issued it).
    IssuerChanged,
    /// The installed key is not the certificate's.
    KeyMismatch,
    /// The manifest asks for the CA chain in the file (include_ca) and it is not there.
    ChainIncomplete,
    /// The certificate's extended key usage lacks what the manifest's cert_type needs
    /// (serverAuth for server, clientAuth for client, both for both).
    UsageMismatch,
}

impl Reason {
    pub fn code(self) -> &'static str {
        match self {
            Reason::Missing => "missing",
            Reason::ExpiresSoon => "expires-soon",
            Reason::SanMismatch => "san-mismatch",
            Reason::IssuerChanged => "issuer-changed",
            Reason::KeyMismatch => "key-mismatch",
            Reason::ChainIncomplete => "chain-incomplete",
            Reason::UsageMismatch => "usage-mismatch",
        }
    }
}

/// What is installed for one certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Installed {
    pub subject: String,
    pub issuer: String,
    pub sans: Vec<String>,
    pub eku: Vec<String>,
    /// Seconds since the epoch.
    pub not_before: i64,
    pub not_after: i64,
    /// Certificates in the file (leaf first).
    pub chain_length: usize,
    pub key_matches: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertStatus {
    pub name: String,
    pub installed: Option<Installed>,
    pub reasons: Vec<Reason>,
    /// When renewal is due (seconds since the epoch): two thirds of the lifetime.
    pub renew_at: Option<i64>,
}

impl CertStatus {
    pub fn needs_renewal(&self) -> bool {
        !self.reasons.is_empty()
    }
}

/// The leaf's not-before and not-after (seconds since the epoch) of a PEM chain.
pub fn validity(chain_pem: &str) -> Option<(i64, i64)> {
    let chain = parse_chain(chain_pem);
    let (_, leaf) = X509Certificate::from_der(chain.first()?.as_ref()).ok()?;
    Some((leaf.validity().not_before.timestamp(), leaf.validity().not_after.timestamp()))
}

/// Two thirds of the way from `not_before` to `not_after`.
pub fn renewal_time(not_before: i64, not_after: i64) -> i64 {
    not_before + (not_after - not_before) * 2 / 3
}

fn wanted_names(cert: &Certificate) -> Vec<String> {
    let mut names = vec![cert.common_name.value.clone()];
    for san in &cert.sans {
        names.push(match &san.value {
            San::Dns(name) => name.clone(),
            San::Ip(ip) => ip.to_string(),
        });
    }
    names.sort();
    names.dedup();
    names
}

fn eku_strings(leaf: &X509Certificate<'_>) -> Vec<String> {
    let Ok(Some(eku)) = leaf.extended_key_usage() else { return Vec::new() };
    let mut out = Vec::new();
    if eku.value.server_auth {
        out.push("serverAuth".to_string());
    }
    if eku.value.client_auth {
        out.push("clientAuth".to_string());
    }
    if out.is_empty() {
        // The extension is there but allows neither TLS use: keep it distinguishable from "no extension".
        out.push("other".to_string());
    }
    out
}

/// Whether the extended key usages allow `usage`. No EKU extension at all allows any use
/// (RFC 5280 section 4.2.1.12; rustls-webpki agrees).
fn usage_allowed(eku: &[String], usage: CertUsage) -> bool {
    let has = |name: &str| eku.is_empty() || eku.iter().any(|e| e == name);
    match usage {
        CertUsage::Server => has("serverAuth"),
        CertUsage::Client => has("clientAuth"),
        CertUsage::Both => has("serverAuth") && has("clientAuth"),
    }
}

fn key_matches(leaf: &X509Certificate<'_>, key_pem: Option<&String>) -> bool {
    let Some(pem) = key_pem else { return false };
    let Ok(key) = rcgen::KeyPair::from_pem(pem) else { return false };
    key.public_key_raw() == leaf.public_key().subject_public_key.data.as_ref()
}

fn chains_to_root(chain: &[CertificateDer<'static>], root_pem: Option<&String>, usage: CertUsage) -> bool {
    let Some(root) = root_pem.and_then(|pem| parse_chain(pem).into_iter().next()) else { return false };
    // Validity is judged separately (expires-soon); check the chain at the certificate's own midpoint.
    let Some(Ok((_, parsed))) = chain.first().map(|leaf| X509Certificate::from_der(leaf.as_ref())) else { return false };
    let middle = (parsed.validity().not_before.timestamp() + parsed.validity().not_after.timestamp()) / 2;
    match verify_chain(chain, &root, usage == CertUsage::Client, middle.max(0) as u64) {
        Ok(_) => true,
        // A wrong EKU is not an issuer change; that certificate still chains.
        Err(ChainError::Rejected(webpki::Error::RequiredEkuNotFoundContext(_))) => true,
        Err(_) => false,
    }
}

/// The status of manifest entry `cert` given the installed files (`<name>.crt`, `<name>.key`,
/// and the current `root_ca.crt`) at `now` (seconds since the epoch).
pub fn status(cert: &Certificate, files: &CertStore, now: u64) -> CertStatus {
    let missing = CertStatus { name: cert.name.clone(), installed: None, reasons: vec![Reason::Missing], renew_at: None };
    let Some(pem) = files.files.get(&format!("{}.crt", cert.name)) else { return missing };
    let chain = parse_chain(pem);
    let Some(leaf_der) = chain.first() else { return missing };
    let Ok((_, leaf)) = X509Certificate::from_der(leaf_der.as_ref()) else { return missing };
    let key = files.files.get(&format!("{}.key", cert.name));
    let installed = Installed {
        subject: leaf.subject().to_string(),
        issuer: leaf.issuer().to_string(),
        sans: san_strings(&leaf),
        eku: eku_strings(&leaf),
        not_before: leaf.validity().not_before.timestamp(),
        not_after: leaf.validity().not_after.timestamp(),
        chain_length: chain.len(),
        key_matches: key_matches(&leaf, key),
    };
    let mut reasons = Vec::new();
    if key.is_none() {
        reasons.push(Reason::Missing);
    }
    let renew_at = renewal_time(installed.not_before, installed.not_after);
    if now as i64 >= renew_at {
        reasons.push(Reason::ExpiresSoon);
    }
    let wanted = wanted_names(cert);
    if wanted.iter().any(|n| !installed.sans.contains(n)) {
        reasons.push(Reason::SanMismatch);
    }
    if !chains_to_root(&chain, files.files.get(STORE_ROOT_FILE), cert.usage) {
        reasons.push(Reason::IssuerChanged);
    }
    if key.is_some() && !installed.key_matches {
        reasons.push(Reason::KeyMismatch);
    }
    if cert.include_ca && chain.len() < 2 {
        reasons.push(Reason::ChainIncomplete);
    }
    if !usage_allowed(&installed.eku, cert.usage) {
        reasons.push(Reason::UsageMismatch);
    }
    reasons.sort();
    reasons.dedup();
    CertStatus { name: cert.name.clone(), installed: Some(installed), reasons, renew_at: Some(renew_at) }
}
