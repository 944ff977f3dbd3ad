//! TLS in the lab: the stand-in servers (the certificate for the name asked, client
//! certificates demanded where the hop model says, verified against the store's root) and the
//! client side of a probe (the name sent, the store's root, the client certificate the hop
//! presents). rustls with ring, verification always on.

use phoenix_core::lab::TlsPort;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn chain(store: &Path, name: &str) -> std::io::Result<Vec<CertificateDer<'static>>> {
    let pem = std::fs::read(store.join(format!("{name}.crt")))?;
    Ok(CertificateDer::pem_slice_iter(&pem).filter_map(Result::ok).collect())
}

fn key(store: &Path, name: &str) -> std::io::Result<PrivateKeyDer<'static>> {
    let pem = std::fs::read(store.join(format!("{name}.key")))?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| std::io::Error::other(format!("{name}.key: {e:?}")))
}

fn roots(store: &Path) -> std::io::Result<rustls::RootCertStore> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&std::fs::read(store.join(phoenix_model::paths::STORE_ROOT_FILE))?).filter_map(Result::ok) {
        roots.add(cert).map_err(std::io::Error::other)?;
    }
    Ok(roots)
}

fn certified(store: &Path, name: &str) -> std::io::Result<Arc<CertifiedKey>> {
    let signer = rustls::crypto::ring::sign::any_supported_type(&key(store, name)?).map_err(std::io::Error::other)?;
    Ok(Arc::new(CertifiedKey::new(chain(store, name)?, signer)))
}

/// Picks the certificate by SNI, or the installed one for any other name.
#[derive(Debug)]
struct BySni {
    by_name: BTreeMap<String, Arc<CertifiedKey>>,
    fallback: Option<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for BySni {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        hello.server_name().and_then(|n| self.by_name.get(&n.to_ascii_lowercase())).cloned().or_else(|| self.fallback.clone())
    }
}

/// The server side of one TLS port. Missing certificate files leave the name out (the
/// handshake then fails, as a service without its certificate would).
pub fn server_config(store: &Path, port: &TlsPort) -> std::io::Result<Arc<rustls::ServerConfig>> {
    let by_name = port.by_name.iter().filter_map(|(sni, cert)| Some((sni.to_ascii_lowercase(), certified(store, cert).ok()?))).collect();
    let fallback = port.fallback.as_ref().and_then(|cert| certified(store, cert).ok());
    let builder =
        rustls::ServerConfig::builder_with_provider(provider()).with_safe_default_protocol_versions().map_err(std::io::Error::other)?;
    let builder = if port.client_required {
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots(store)?), provider()).build().map_err(std::io::Error::other)?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    Ok(Arc::new(builder.with_cert_resolver(Arc::new(BySni { by_name, fallback }))))
}

/// The client side of a probe: verify against the store's root for `server_name`, present
/// `client_certificate` when given.
pub fn client_config(store: &Path, client_certificate: Option<&str>) -> std::io::Result<Arc<rustls::ClientConfig>> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .with_root_certificates(roots(store)?);
    let config = match client_certificate {
        Some(name) => builder.with_client_auth_cert(chain(store, name)?, key(store, name)?).map_err(std::io::Error::other)?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

pub fn server_name(name: &str) -> Option<ServerName<'static>> {
    ServerName::try_from(name.to_string()).ok()
}
