//! A throw-away certificate authority for tests: a root, and leaf certificates with chosen
//! names, key usages and validity, all as PEM. Made with rcgen (ring), fresh per test.

pub use rcgen;
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType};

/// What a leaf certificate may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    Server,
    Client,
    Both,
}

/// A leaf certificate and its key, PEM-encoded.
#[derive(Debug, Clone)]
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
}

/// A test root CA.
pub struct TestCa {
    pub cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("empty SAN list is valid");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate().expect("key generation");
        let cert = params.self_signed(&key).expect("self-signed root");
        TestCa { cert_pem: cert.pem(), issuer: Issuer::new(params, key) }
    }

    /// A leaf for `names` (DNS names and IP addresses mixed), with rcgen's default (very long) validity.
    pub fn issue(&self, names: &[&str], usage: Usage) -> Leaf {
        self.issue_with(names, usage, |_| {})
    }

    /// A leaf whose parameters `adjust` may change (validity, names...).
    pub fn issue_with(&self, names: &[&str], usage: Usage, adjust: impl FnOnce(&mut CertificateParams)) -> Leaf {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name.push(DnType::CommonName, names.first().copied().unwrap_or("leaf"));
        params.subject_alt_names = names
            .iter()
            .map(|n| match n.parse::<std::net::IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName((*n).try_into().expect("valid DNS name")),
            })
            .collect();
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        params.extended_key_usages = match usage {
            Usage::Server => vec![ExtendedKeyUsagePurpose::ServerAuth],
            Usage::Client => vec![ExtendedKeyUsagePurpose::ClientAuth],
            Usage::Both => vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth],
        };
        adjust(&mut params);
        let key = KeyPair::generate().expect("key generation");
        let cert = params.signed_by(&key, &self.issuer).expect("signing");
        Leaf { cert_pem: cert.pem(), key_pem: key.serialize_pem() }
    }
}

/// Fills a certificate store for `model`'s manifest from one test CA: `root_ca.crt`, and per
/// entry `<name>.crt` (leaf, then the root as its chain) and `<name>.key`, all valid now.
pub fn write_manifest_store(store: &std::path::Path, model: &phoenix_model::model::Model) -> std::io::Result<()> {
    write_manifest_store_from(&TestCa::new("phoenix test root"), store, model)
}

/// The names (common name first) and usage of a manifest entry, as TestCa takes them.
pub fn manifest_names(cert: &phoenix_model::model::Certificate) -> (Vec<String>, Usage) {
    use phoenix_model::model::{CertUsage, San};
    let mut names = vec![cert.common_name.value.clone()];
    names.extend(cert.sans.iter().map(|s| match &s.value {
        San::Dns(n) => n.clone(),
        San::Ip(ip) => ip.to_string(),
    }));
    let usage = match cert.usage {
        CertUsage::Server => Usage::Server,
        CertUsage::Client => Usage::Client,
        CertUsage::Both => Usage::Both,
    };
    (names, usage)
}

/// [`write_manifest_store`] with a given CA, so a test can issue variants from the same root.
pub fn write_manifest_store_from(ca: &TestCa, store: &std::path::Path, model: &phoenix_model::model::Model) -> std::io::Result<()> {
    std::fs::create_dir_all(store)?;
    std::fs::write(store.join("root_ca.crt"), &ca.cert_pem)?;
    for cert in &model.certificates {
        let (names, usage) = manifest_names(cert);
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let leaf = ca.issue(&refs, usage);
        std::fs::write(store.join(format!("{}.crt", cert.name)), format!("{}{}", leaf.cert_pem, ca.cert_pem))?;
        std::fs::write(store.join(format!("{}.key", cert.name)), &leaf.key_pem)?;
    }
    Ok(())
}
