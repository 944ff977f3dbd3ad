//! Loopback HTTP and HTTPS peers for tests of real proxies (nginx, Traefik): backends that
//! answer every request with the Host header they saw, optionally demanding a client
//! certificate, and an HTTPS client that trusts one root and sends a chosen name. Every
//! socket is on 127.0.0.1.

use crate::pki::Leaf;
use rustls::pki_types::pem::PemObject;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Reads one request and answers `backend saw host <Host>`.
async fn answer<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S) {
    let mut request = Vec::new();
    let mut buffer = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buffer[..n]),
        }
    }
    let text = String::from_utf8_lossy(&request);
    let host = text.lines().find_map(|l| l.strip_prefix("Host: ").or_else(|| l.strip_prefix("host: "))).unwrap_or("-").to_string();
    let body = format!("backend saw host {host}");
    let response = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// A TLS backend presenting `leaf`; with `client_root`, it demands a client certificate from that root.
pub async fn tls_backend(leaf: &Leaf, client_root: Option<&str>) -> u16 {
    let acceptor = match client_root {
        Some(root) => leaf.tls_acceptor_requiring(root),
        None => leaf.tls_acceptor(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
    let port = listener.local_addr().expect("a bound port").port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(stream).await {
                    answer(tls).await;
                }
            });
        }
    });
    port
}

/// A plain HTTP backend.
pub async fn http_backend() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
    let port = listener.local_addr().expect("a bound port").port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(answer(stream));
        }
    });
    port
}

/// An HTTPS GET to 127.0.0.1:`port`, trusting `root_pem`, sending `host` as SNI and Host: the
/// whole response, or `None` when the connection or handshake fails.
pub async fn https_get(port: u16, host: &str, root_pem: &str) -> Option<String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(root_pem.as_bytes()) {
        roots.add(cert.ok()?).ok()?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .ok()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    let name = rustls::pki_types::ServerName::try_from(host.to_string()).ok()?;
    let mut tls = connector.connect(name, stream).await.ok()?;
    tls.write_all(format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes()).await.ok()?;
    let mut response = String::new();
    let _ = tls.read_to_string(&mut response).await;
    Some(response)
}

/// [`https_get`] retried until it answers or `timeout` passes (a proxy still starting).
pub async fn https_get_within(port: u16, host: &str, root_pem: &str, timeout: Duration) -> Option<String> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(response) = https_get(port, host, root_pem).await {
            return Some(response);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
