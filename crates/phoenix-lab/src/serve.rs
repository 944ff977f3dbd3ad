//! The lab's stand-in services: what one namespace listens on ([`ServeConfig`]: TCP accept,
//! TLS with the configured certificates and client-certificate checks, UDP echo) and the
//! server that listens so (`phoenix lab serve`, inside the namespace). Must not probe: the
//! probes are in [`crate::probe`].

use phoenix_core::lab::TlsPort;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

/// What one namespace's stand-in serves.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServeConfig {
    pub tcp: BTreeSet<u16>,
    pub udp: BTreeSet<u16>,
    pub tls: BTreeMap<u16, TlsPort>,
    pub store: Option<PathBuf>,
}

async fn serve_tls(listener: TcpListener, config: std::sync::Arc<rustls::ServerConfig>) {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    while let Ok((stream, _)) = listener.accept().await {
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            // After the handshake (client certificate checked) it answers one HTTP request with 200,
            // as the service it stands in for would.
            let serve = async { answer_http(acceptor.accept(stream).await.ok()?).await };
            let _ = tokio::time::timeout(Duration::from_secs(5), serve).await;
        });
    }
}

/// Reads one HTTP request (headers only, bounded) and answers 200, on any stream.
async fn answer_http<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(mut stream: S) -> Option<()> {
    let mut request = Vec::new();
    let mut buffer = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16 * 1024 {
        let n = stream.read(&mut buffer).await.ok()?;
        if n == 0 {
            return None;
        }
        request.extend_from_slice(&buffer[..n]);
    }
    stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n").await.ok()?;
    stream.shutdown().await.ok()
}

/// Listens as `config` says until killed; prints "ready" once every port is bound.
pub async fn serve(config: &ServeConfig) -> std::io::Result<()> {
    let mut tasks = Vec::new();
    for &port in &config.tcp {
        let listener = TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)).await?;
        match (config.tls.get(&port), &config.store) {
            (Some(tls), Some(store)) => {
                let server = crate::tls::server_config(store, tls)?;
                tasks.push(tokio::spawn(serve_tls(listener, server)));
            }
            _ => tasks.push(tokio::spawn(async move {
                // A completed handshake is what a TCP probe checks; an HTTP request (a proxy
                // forwarding to a plain-HTTP backend) gets 200.
                while let Ok((stream, _)) = listener.accept().await {
                    tokio::spawn(async move {
                        let _ = tokio::time::timeout(Duration::from_secs(5), answer_http(stream)).await;
                    });
                }
            })),
        }
    }
    for &port in &config.udp {
        let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, port)).await?;
        tasks.push(tokio::spawn(async move {
            let mut buffer = [0u8; 512];
            while let Ok((n, from)) = socket.recv_from(&mut buffer).await {
                let _ = socket.send_to(&buffer[..n], from).await;
            }
        }));
    }
    println!("ready");
    for task in tasks {
        let _ = task.await;
    }
    Ok(())
}
