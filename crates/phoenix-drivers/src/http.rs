//! HTTPS clients for the APIs phoenix drives (Proxmox VE, Portainer): verification is always
//! on, against a CA file or a pinned SHA-256 certificate fingerprint (Proxmox's self-signed node
//! certificate is usually pinned by fingerprint, as `pvesh` and Terraform's provider do), and a
//! bounded retry with exponential backoff.

use phoenix_exec::DriverError;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How the server's certificate is checked.
#[derive(Debug, Clone)]
pub enum Trust {
    /// A PEM file with the CA that signed the server certificate.
    Ca(PathBuf),
    /// The SHA-256 fingerprint of the server's own certificate (hex, colons allowed).
    Fingerprint(String),
}

/// Accepts exactly the certificate with the pinned fingerprint; signatures are still checked.
#[derive(Debug)]
struct PinnedCertificate {
    fingerprint: Vec<u8>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for PinnedCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let digest = ring::digest::digest(&ring::digest::SHA256, end_entity.as_ref());
        if digest.as_ref() == self.fingerprint.as_slice() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General("the server certificate does not match the pinned fingerprint".into()))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

fn parse_fingerprint(text: &str) -> Result<Vec<u8>, DriverError> {
    let hex: String = text.chars().filter(|c| *c != ':').collect();
    if hex.len() != 64 {
        return Err(DriverError::new(format!("fingerprint `{text}` is not a SHA-256 fingerprint (64 hex digits)")));
    }
    (0..64)
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| DriverError::new(format!("fingerprint `{text}` is not hex"))))
        .collect()
}

/// A client that verifies the server as `trust` says, with `timeout` per request.
pub fn client(trust: &Trust, timeout: Duration) -> Result<reqwest::Client, DriverError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| DriverError::new(e.to_string()))?;
    let config = match trust {
        Trust::Ca(path) => {
            let pem =
                std::fs::read(path).map_err(|e| DriverError::caused_by(format!("cannot read the CA certificate {}", path.display()), e))?;
            let mut roots = rustls::RootCertStore::empty();
            for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| DriverError::new(format!("{}: {e:?}", path.display())))?;
                roots.add(cert).map_err(|e| DriverError::new(format!("{}: {e}", path.display())))?;
            }
            if roots.is_empty() {
                return Err(DriverError::new(format!("{} holds no certificate", path.display())));
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        Trust::Fingerprint(text) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedCertificate { fingerprint: parse_fingerprint(text)?, provider }))
            .with_no_client_auth(),
    };
    // Credentials travel in headers: no plain HTTP, and no redirect that could carry them to
    // another host (a 3xx is answered to the caller as the failure it is).
    reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .https_only(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .build()
        .map_err(|e| DriverError::new(format!("cannot build the HTTPS client: {e}")))
}

/// Retries: how many attempts, and the first delay (doubled each time).
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub attempts: u32,
    pub first_delay: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff { attempts: 5, first_delay: Duration::from_millis(100) }
    }
}

impl Backoff {
    pub fn delay(&self, attempt: u32) -> Duration {
        self.first_delay * 2u32.saturating_pow(attempt.min(10))
    }
}

use rustls::pki_types::pem::PemObject;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_parse_with_or_without_colons() {
        let hex = "AB".repeat(32);
        assert_eq!(parse_fingerprint(&hex).unwrap(), vec![0xAB; 32]);
        let colons: Vec<String> = (0..32).map(|_| "ab".to_string()).collect();
        assert_eq!(parse_fingerprint(&colons.join(":")).unwrap(), vec![0xAB; 32]);
        assert!(parse_fingerprint("abcd").is_err());
        assert_eq!(Backoff::default().delay(3), Duration::from_millis(800));
    }
}

/// An error with every cause after it: reqwest's "error sending request for url (...)" says
/// neither that the connection failed nor why; its sources do (hyper's "client error
/// (Connect)", then the I/O error or rustls's reason, e.g. "invalid peer certificate:
/// UnknownIssuer").
pub fn with_causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(next) = cause {
        let said = next.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        cause = next.source();
    }
    text
}

/// Refuses a URL that is not `https://`: the API token or key would travel in cleartext.
pub fn require_https(url: &str, what: &str) -> Result<(), DriverError> {
    if url.get(..8).is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://")) {
        Ok(())
    } else {
        Err(DriverError::new(format!("{what} URL `{url}` is not https://: phoenix sends its credentials over TLS only"))
            .hint("give the https:// address (Proxmox VE serves its API on https://<node>:8006)"))
    }
}

/// Whether `error` is a TLS verification refusal (rustls said no: unknown issuer, name
/// mismatch, expired, a pinned fingerprint that differs). Such a failure is final: asking
/// again meets the same certificate, so it is never retried.
pub fn is_tls_refusal(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        // reqwest hands rustls's error inside io::Errors (Other, then InvalidData), whose
        // source() skips the error they wrap: unwrap them by hand.
        let mut inner = Some(error);
        while let Some(layer) = inner {
            if layer.is::<rustls::Error>() {
                return true;
            }
            inner = layer.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()).map(|e| e as &(dyn std::error::Error + 'static));
        }
        cause = error.source();
    }
    false
}
