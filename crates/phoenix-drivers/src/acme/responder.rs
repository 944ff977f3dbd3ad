//! Answers ACME challenges while an order runs: http-01 (RFC 8555 section 8.3: `GET
//! /.well-known/acme-challenge/<token>` returns the key authorization) or tls-alpn-01 (RFC 8737:
//! a handshake offering `acme-tls/1` gets a self-signed certificate for the name carrying the
//! SHA-256 of the key authorization in the critical acmeIdentifier extension; RFC 8738 for IP
//! addresses). The listener stops when the responder is dropped.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use rcgen::{CertificateParams, CustomExtension, KeyPair};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";
const HTTP01_PREFIX: &str = "/.well-known/acme-challenge/";

#[derive(Default)]
struct Answers {
    /// http-01: token -> key authorization.
    tokens: BTreeMap<String, String>,
    /// tls-alpn-01: SNI name -> the challenge certificate.
    certificates: BTreeMap<String, Arc<CertifiedKey>>,
}

pub struct Responder {
    answers: Arc<Mutex<Answers>>,
    task: Option<JoinHandle<()>>,
    pub local_addr: SocketAddr,
}

impl Drop for Responder {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

impl Responder {
    pub async fn http01(listen: SocketAddr) -> std::io::Result<Responder> {
        let listener = TcpListener::bind(listen).await?;
        let local_addr = listener.local_addr()?;
        let answers = Arc::new(Mutex::new(Answers::default()));
        let shared = answers.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let answers = shared.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let answers = answers.clone();
                        async move { Ok::<_, std::convert::Infallible>(http01_answer(&answers, &request)) }
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
                });
            }
        });
        Ok(Responder { answers, task: Some(task), local_addr })
    }

    pub async fn tls_alpn01(listen: SocketAddr) -> std::io::Result<Responder> {
        let listener = TcpListener::bind(listen).await?;
        let local_addr = listener.local_addr()?;
        let answers = Arc::new(Mutex::new(Answers::default()));
        let resolver = Arc::new(ChallengeCertificates(answers.clone()));
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(std::io::Error::other)?
            .with_no_client_auth()
            .with_cert_resolver(resolver);
        config.alpn_protocols = vec![ACME_TLS_ALPN.to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                // The CA only needs the handshake; the connection is dropped right after.
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(stream)).await;
                });
            }
        });
        Ok(Responder { answers, task: Some(task), local_addr })
    }

    /// Stops listening and waits until the port is free again (dropping only schedules that).
    pub async fn stop(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    /// Publishes the answer for `identifier` (a DNS name or an IP address).
    pub fn publish(&self, identifier: &str, token: &str, key_authorization: &str, digest: &[u8]) {
        let mut answers = self.answers.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        answers.tokens.insert(token.to_string(), key_authorization.to_string());
        if let Some(certificate) = challenge_certificate(identifier, digest) {
            answers.certificates.insert(sni_name(identifier), certificate);
        }
    }
}

fn http01_answer(answers: &Mutex<Answers>, request: &Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let answers = answers.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let found = request.uri().path().strip_prefix(HTTP01_PREFIX).and_then(|token| answers.tokens.get(token));
    let (status, body) = match found {
        Some(key_authorization) => (StatusCode::OK, key_authorization.clone()),
        None => (StatusCode::NOT_FOUND, String::new()),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}

/// The SNI a CA sends for an identifier: the name itself, or for an IP address its reverse
/// mapping name (RFC 8738 section 6).
fn sni_name(identifier: &str) -> String {
    match identifier.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => {
            let o = ip.octets();
            format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
        }
        Ok(IpAddr::V6(ip)) => {
            let nibbles: Vec<String> = ip.octets().iter().rev().flat_map(|b| [format!("{:x}", b & 0xf), format!("{:x}", b >> 4)]).collect();
            format!("{}.ip6.arpa", nibbles.join("."))
        }
        Err(_) => identifier.to_ascii_lowercase(),
    }
}

fn challenge_certificate(identifier: &str, digest: &[u8]) -> Option<Arc<CertifiedKey>> {
    let key = KeyPair::generate().ok()?;
    let mut params = CertificateParams::new(vec![identifier.to_string()]).ok()?;
    params.custom_extensions.push(CustomExtension::new_acme_identifier(digest));
    let certificate = params.self_signed(&key).ok()?;
    let der_key = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).ok()?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&der_key).ok()?;
    Some(Arc::new(CertifiedKey::new(vec![certificate.der().clone()], signer)))
}

#[derive(Debug)]
struct ChallengeCertificates(Arc<Mutex<Answers>>);

impl std::fmt::Debug for Answers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answers").field("tokens", &self.tokens.len()).field("certificates", &self.certificates.len()).finish()
    }
}

impl ResolvesServerCert for ChallengeCertificates {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        // Only the acme-tls/1 protocol gets a challenge certificate (RFC 8737 section 3).
        if !hello.alpn()?.any(|protocol| protocol == ACME_TLS_ALPN) {
            return None;
        }
        let answers = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match hello.server_name() {
            Some(name) => answers.certificates.get(&name.to_ascii_lowercase()).cloned(),
            None if answers.certificates.len() == 1 => answers.certificates.values().next().cloned(),
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_identifiers_use_their_reverse_names() {
        assert_eq!(sni_name("127.0.0.1"), "1.0.0.127.in-addr.arpa");
        assert_eq!(sni_name("Gateway.Example"), "gateway.example");
        assert!(sni_name("::1").starts_with("1.0.0.0.0.0.0.0"));
        assert!(sni_name("::1").ends_with(".ip6.arpa"));
    }
}
