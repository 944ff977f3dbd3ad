//! The lab's certificates: a fresh lab CA issues every entry of the certificate manifest, laid
//! out as phoenix's store (`root_ca.crt`, `<name>.crt` with the chain, `<name>.key`), so the
//! static assessment (`--certs`) and the lab's TLS stand-ins use the very same files.

use phoenix_model::model::{CertUsage, Model, San};
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType};
use std::path::Path;

fn error(e: impl std::fmt::Display) -> crate::LabError {
    crate::LabError(format!("cannot issue the lab's certificates: {e}"))
}

/// Issues every manifest certificate from a new CA named `ca_name` into `dir`.
pub fn issue_store(model: &Model, dir: &Path, ca_name: &str) -> Result<(), crate::LabError> {
    std::fs::create_dir_all(dir).map_err(error)?;
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(error)?;
    params.distinguished_name.push(DnType::CommonName, ca_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let ca_key = KeyPair::generate().map_err(error)?;
    let root = params.self_signed(&ca_key).map_err(error)?;
    std::fs::write(dir.join("root_ca.crt"), root.pem()).map_err(error)?;
    let issuer = Issuer::new(params, ca_key);
    for cert in &model.certificates {
        let mut leaf = CertificateParams::new(Vec::<String>::new()).map_err(error)?;
        leaf.distinguished_name.push(DnType::CommonName, cert.common_name.value.clone());
        let names = std::iter::once(San::Dns(cert.common_name.value.clone())).chain(cert.sans.iter().map(|s| s.value.clone()));
        for name in names {
            leaf.subject_alt_names.push(match name {
                San::Dns(dns) => match dns.parse::<std::net::IpAddr>() {
                    Ok(ip) => SanType::IpAddress(ip),
                    Err(_) => SanType::DnsName(dns.try_into().map_err(error)?),
                },
                San::Ip(ip) => SanType::IpAddress(ip),
            });
        }
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        leaf.extended_key_usages = match cert.usage {
            CertUsage::Server => vec![ExtendedKeyUsagePurpose::ServerAuth],
            CertUsage::Client => vec![ExtendedKeyUsagePurpose::ClientAuth],
            CertUsage::Both => vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth],
        };
        let key = KeyPair::generate().map_err(error)?;
        let signed = leaf.signed_by(&key, &issuer).map_err(error)?;
        std::fs::write(dir.join(format!("{}.crt", cert.name)), format!("{}{}", signed.pem(), root.pem())).map_err(error)?;
        std::fs::write(dir.join(format!("{}.key", cert.name)), key.serialize_pem()).map_err(error)?;
    }
    Ok(())
}

/// A self-signed serving certificate for `name` (a service of the lab's own, like the Pebble
/// standing in for Step-CA, whose certificate no hop verifies).
pub fn serving_certificate(cert: &Path, key: &Path, name: &str) -> Result<(), crate::LabError> {
    let pair = KeyPair::generate().map_err(error)?;
    let params = CertificateParams::new(vec![name.to_string(), "localhost".to_string()]).map_err(error)?;
    let signed = params.self_signed(&pair).map_err(error)?;
    std::fs::write(cert, signed.pem()).map_err(error)?;
    std::fs::write(key, pair.serialize_pem()).map_err(error)
}
