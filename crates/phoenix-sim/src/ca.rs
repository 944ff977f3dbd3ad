//! A throw-away certificate authority for tests and the lab: a root, and leaf certificates with
//! chosen names, key usages and validity, all as PEM. Made with rcgen (ring). The lab keeps
//! its CA between commands ([`TestCa::save`], [`TestCa::load`]) and issues from names it did
//! not choose, so every operation it uses returns errors instead of panicking.

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

impl Leaf {
    /// A TLS server (rustls, ring) presenting this leaf, without client authentication.
    pub fn tls_acceptor(&self) -> tokio_rustls::TlsAcceptor {
        self.acceptor(None)
    }

    /// A TLS server presenting this leaf that demands a client certificate chaining to `client_root_pem`.
    pub fn tls_acceptor_requiring(&self, client_root_pem: &str) -> tokio_rustls::TlsAcceptor {
        self.acceptor(Some(client_root_pem))
    }

    fn acceptor(&self, client_root_pem: Option<&str>) -> tokio_rustls::TlsAcceptor {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(self.cert_pem.as_bytes()).collect::<Result<_, _>>().expect("the leaf's PEM");
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).expect("the leaf's key");
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("ring's protocol versions");
        let builder = match client_root_pem {
            None => builder.with_no_client_auth(),
            Some(pem) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                    roots.add(cert.expect("the client root's PEM")).expect("a root certificate");
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(std::sync::Arc::new(roots), provider)
                    .build()
                    .expect("a client verifier");
                builder.with_client_cert_verifier(verifier)
            }
        };
        let config = builder.with_single_cert(certs, key).expect("a leaf and its key");
        tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config))
    }
}

/// A test root CA.
pub struct TestCa {
    pub cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// The root's parameters. The same name gives the same issuer name, so a CA loaded from its
/// key signs leaves that chain to the root saved with it.
fn root_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    params
}

const SAVED_ROOT: &str = "ca.crt";
const SAVED_KEY: &str = "ca.key";
const SAVED_NAME: &str = "ca.name";

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        TestCa::try_new(name).expect("a new root")
    }

    pub fn try_new(name: &str) -> Result<TestCa, rcgen::Error> {
        let params = root_params(name);
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        Ok(TestCa { cert_pem: cert.pem(), issuer: Issuer::new(params, key) })
    }

    /// Keeps the CA in `dir` (created; the key readable by its owner only) as `name`.
    pub fn save(&self, dir: &std::path::Path, name: &str) -> std::io::Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join(SAVED_ROOT), &self.cert_pem)?;
        std::fs::write(dir.join(SAVED_NAME), name)?;
        let mut key = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(dir.join(SAVED_KEY))?;
        std::io::Write::write_all(&mut key, self.issuer.key().serialize_pem().as_bytes())
    }

    /// The CA [`save`](TestCa::save) kept in `dir`.
    pub fn load(dir: &std::path::Path) -> std::io::Result<TestCa> {
        let read = |file: &str| std::fs::read_to_string(dir.join(file));
        let key = KeyPair::from_pem(&read(SAVED_KEY)?).map_err(std::io::Error::other)?;
        Ok(TestCa { cert_pem: read(SAVED_ROOT)?, issuer: Issuer::new(root_params(read(SAVED_NAME)?.trim()), key) })
    }

    /// A leaf for `names` (DNS names and IP addresses mixed), with rcgen's default (very long) validity.
    pub fn issue(&self, names: &[&str], usage: Usage) -> Leaf {
        self.issue_with(names, usage, |_| {})
    }

    /// A leaf whose parameters `adjust` may change (validity, names...).
    pub fn issue_with(&self, names: &[&str], usage: Usage, adjust: impl FnOnce(&mut CertificateParams)) -> Leaf {
        self.try_issue_with(names, usage, adjust).expect("a valid leaf")
    }

    /// [`issue`](TestCa::issue), with an error for a name that cannot be a SAN.
    pub fn try_issue(&self, names: &[&str], usage: Usage) -> Result<Leaf, rcgen::Error> {
        self.try_issue_with(names, usage, |_| {})
    }

    fn try_issue_with(&self, names: &[&str], usage: Usage, adjust: impl FnOnce(&mut CertificateParams)) -> Result<Leaf, rcgen::Error> {
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, names.first().copied().unwrap_or("leaf"));
        params.subject_alt_names = names
            .iter()
            .map(|n| match n.parse::<std::net::IpAddr>() {
                Ok(ip) => Ok(SanType::IpAddress(ip)),
                Err(_) => Ok(SanType::DnsName((*n).try_into()?)),
            })
            .collect::<Result<_, rcgen::Error>>()?;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        params.extended_key_usages = match usage {
            Usage::Server => vec![ExtendedKeyUsagePurpose::ServerAuth],
            Usage::Client => vec![ExtendedKeyUsagePurpose::ClientAuth],
            Usage::Both => vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth],
        };
        adjust(&mut params);
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Leaf { cert_pem: cert.pem(), key_pem: key.serialize_pem() })
    }
}

/// Fills a certificate store for `model`'s manifest from one test CA: `root_ca.crt`, and per
/// entry `<name>.crt` (leaf, then the root as its chain) and `<name>.key`, all valid now.
pub fn write_manifest_store(store: &std::path::Path, model: &phoenix_model::model::Model) -> std::io::Result<()> {
    write_manifest_store_from(&TestCa::new("phoenix test root"), store, model)
}

/// The names (common name first) and usage of a manifest entry, as TestCa takes them.
pub fn manifest_names(cert: &phoenix_model::model::Certificate) -> (Vec<String>, Usage) {
    use phoenix_model::model::San;
    let mut names = vec![cert.common_name.value.clone()];
    names.extend(cert.sans.iter().map(|s| match &s.value {
        San::Dns(n) => n.clone(),
        San::Ip(ip) => ip.to_string(),
    }));
    (names, cert.usage.into())
}

impl From<phoenix_model::model::CertUsage> for Usage {
    fn from(usage: phoenix_model::model::CertUsage) -> Usage {
        use phoenix_model::model::CertUsage;
        match usage {
            CertUsage::Server => Usage::Server,
            CertUsage::Client => Usage::Client,
            CertUsage::Both => Usage::Both,
        }
    }
}

/// [`write_manifest_store`] with a given CA, so a test can issue variants from the same root.
pub fn write_manifest_store_from(ca: &TestCa, store: &std::path::Path, model: &phoenix_model::model::Model) -> std::io::Result<()> {
    std::fs::create_dir_all(store)?;
    std::fs::write(store.join("root_ca.crt"), &ca.cert_pem)?;
    for cert in &model.certificates {
        let (names, usage) = manifest_names(cert);
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let leaf = ca.try_issue(&refs, usage).map_err(|e| std::io::Error::other(format!("{}: {e}", cert.name)))?;
        std::fs::write(store.join(format!("{}.crt", cert.name)), format!("{}{}", leaf.cert_pem, ca.cert_pem))?;
        std::fs::write(store.join(format!("{}.key", cert.name)), &leaf.key_pem)?;
    }
    Ok(())
}
