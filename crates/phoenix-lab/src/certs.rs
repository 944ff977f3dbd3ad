//! The lab's certificates. A lab CA stands in for Step-CA: it issues every entry of the
//! certificate manifest at `lab up`, laid out as phoenix's store (`root_ca.crt`, `<name>.crt`
//! with the chain, `<name>.key`), so the static assessment (`--certs`) and the lab's TLS
//! stand-ins use the very same files; and it answers `phoenix sync --lab` as its issuer.

use phoenix_model::model::{CertUsage, Model, San};
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType};
use std::path::Path;

fn error(e: impl std::fmt::Display) -> crate::LabError {
    crate::LabError(format!("cannot issue the lab's certificates: {e}"))
}

/// A self-signed root and its key.
pub struct LabCa {
    root_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// The root's parameters: the same name gives the same issuer name, so a CA loaded from its
/// key signs certificates that chain to the root saved with it.
fn ca_params(name: &str) -> Result<CertificateParams, crate::LabError> {
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(error)?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    Ok(params)
}

const ROOT_FILE: &str = "lab-ca.crt";
const KEY_FILE: &str = "lab-ca.key";
const NAME_FILE: &str = "lab-ca.name";

impl LabCa {
    pub fn new(name: &str) -> Result<LabCa, crate::LabError> {
        let params = ca_params(name)?;
        let key = KeyPair::generate().map_err(error)?;
        let root_pem = params.self_signed(&key).map_err(error)?.pem();
        Ok(LabCa { root_pem, issuer: Issuer::new(params, key) })
    }

    /// Keeps the CA in `dir` (the key readable by root only), for issuing later.
    pub fn save(&self, dir: &Path, name: &str) -> Result<(), crate::LabError> {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::create_dir_all(dir).map_err(error)?;
        std::fs::write(dir.join(ROOT_FILE), &self.root_pem).map_err(error)?;
        std::fs::write(dir.join(NAME_FILE), name).map_err(error)?;
        let mut file =
            std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(dir.join(KEY_FILE)).map_err(error)?;
        std::io::Write::write_all(&mut file, self.issuer.key().serialize_pem().as_bytes()).map_err(error)
    }

    pub fn load(dir: &Path) -> Result<LabCa, crate::LabError> {
        let read = |file: &str| std::fs::read_to_string(dir.join(file)).map_err(|e| error(format!("{}: {e}", dir.join(file).display())));
        let key = KeyPair::from_pem(&read(KEY_FILE)?).map_err(error)?;
        Ok(LabCa { root_pem: read(ROOT_FILE)?, issuer: Issuer::new(ca_params(read(NAME_FILE)?.trim())?, key) })
    }

    pub fn root_pem(&self) -> &str {
        &self.root_pem
    }

    /// A leaf for `common_name` and `sans` with the EKU `usage` asks for: the chain (leaf, then
    /// the root) and the key, as PEM.
    pub fn sign(&self, common_name: &str, sans: &[San], usage: CertUsage) -> Result<(String, String), crate::LabError> {
        let mut leaf = CertificateParams::new(Vec::<String>::new()).map_err(error)?;
        leaf.distinguished_name.push(DnType::CommonName, common_name);
        for name in sans {
            leaf.subject_alt_names.push(match name {
                San::Dns(dns) => match dns.parse::<std::net::IpAddr>() {
                    Ok(ip) => SanType::IpAddress(ip),
                    Err(_) => SanType::DnsName(dns.clone().try_into().map_err(error)?),
                },
                San::Ip(ip) => SanType::IpAddress(*ip),
            });
        }
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        leaf.extended_key_usages = match usage {
            CertUsage::Server => vec![ExtendedKeyUsagePurpose::ServerAuth],
            CertUsage::Client => vec![ExtendedKeyUsagePurpose::ClientAuth],
            CertUsage::Both => vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth],
        };
        let key = KeyPair::generate().map_err(error)?;
        let signed = leaf.signed_by(&key, &self.issuer).map_err(error)?;
        Ok((format!("{}{}", signed.pem(), self.root_pem), key.serialize_pem()))
    }
}

/// Issues every manifest certificate from a new CA named `ca_name` into `dir`.
pub fn issue_store(model: &Model, dir: &Path, ca_name: &str) -> Result<(), crate::LabError> {
    std::fs::create_dir_all(dir).map_err(error)?;
    let ca = LabCa::new(ca_name)?;
    std::fs::write(dir.join("root_ca.crt"), ca.root_pem()).map_err(error)?;
    for cert in &model.certificates {
        let sans: Vec<San> =
            std::iter::once(San::Dns(cert.common_name.value.clone())).chain(cert.sans.iter().map(|s| s.value.clone())).collect();
        let (chain, key) = ca.sign(&cert.common_name.value, &sans, cert.usage)?;
        std::fs::write(dir.join(format!("{}.crt", cert.name)), chain).map_err(error)?;
        std::fs::write(dir.join(format!("{}.key", cert.name)), key).map_err(error)?;
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
