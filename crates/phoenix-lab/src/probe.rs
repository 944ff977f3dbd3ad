//! The lab's traffic: stand-in listeners (TCP accept, UDP echo) and probes (TCP connect, UDP
//! request and reply), both bounded in time, and the runner that probes every hop from inside
//! its source namespace. `serve` and `probe_targets` run inside a namespace (`phoenix lab serve`,
//! `phoenix lab probe`); `probe_lab` runs outside and enters each namespace with `ip netns exec`.

use crate::LabError;
use futures_util::stream::{self, StreamExt};
use phoenix_core::lab::{LabSpec, Probe};
use serde::{Deserialize, Serialize};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;
use tokio::net::{TcpListener, UdpSocket};

/// How long a probe waits for a connection or a reply: a dropped packet is a failure after this.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(600);

/// Listens on every port given until killed; prints "ready" once all are bound.
pub async fn serve(tcp: &[u16], udp: &[u16]) -> std::io::Result<()> {
    let mut tasks = Vec::new();
    for &port in tcp {
        let listener = TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)).await?;
        tasks.push(tokio::spawn(async move {
            // Accept and close: a completed handshake is what a probe checks.
            while let Ok((stream, _)) = listener.accept().await {
                drop(stream);
            }
        }));
    }
    for &port in udp {
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

/// One target of a probe run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub address: Ipv4Addr,
    pub port: u16,
    pub proto: u8,
}

async fn reachable(target: Target) -> bool {
    let address = SocketAddr::from((target.address, target.port));
    if target.proto == 17 {
        let Ok(socket) = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).await else { return false };
        if socket.send_to(b"phoenix-probe", address).await.is_err() {
            return false;
        }
        let mut buffer = [0u8; 64];
        return matches!(tokio::time::timeout(PROBE_TIMEOUT, socket.recv_from(&mut buffer)).await, Ok(Ok(_)));
    }
    matches!(tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect(address)).await, Ok(Ok(_)))
}

/// Probes every target concurrently (at most 64 at once); `true` where the connection (or the
/// UDP reply) came through.
pub async fn probe_targets(targets: &[Target]) -> Vec<bool> {
    stream::iter(targets.iter().map(|t| reachable(*t))).buffered(64).collect().await
}

/// A hop's live result next to its static verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Observation {
    #[serde(flatten)]
    pub probe: Probe,
    pub live: bool,
}

impl Observation {
    pub fn agrees(&self) -> bool {
        self.probe.expected == self.live
    }
}

/// Probes every hop of `spec` from inside its source namespace of lab `lab`.
pub fn probe_lab(lab: &str, spec: &LabSpec, phoenix: &Path) -> Result<Vec<Observation>, LabError> {
    let mut sources: Vec<&str> = spec.probes.iter().map(|p| p.from.as_str()).collect();
    sources.sort();
    sources.dedup();
    // One prober per source namespace, all at once: a dropped packet costs PROBE_TIMEOUT once.
    let runs: Vec<Result<Vec<Observation>, LabError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = sources.iter().map(|source| scope.spawn(move || probe_from(lab, spec, phoenix, source))).collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(LabError("a prober panicked".into())))).collect()
    });
    let mut observations = Vec::new();
    for run in runs {
        observations.extend(run?);
    }
    Ok(observations)
}

fn probe_from(lab: &str, spec: &LabSpec, phoenix: &Path, source: &str) -> Result<Vec<Observation>, LabError> {
    let probes: Vec<&Probe> = spec.probes.iter().filter(|p| p.from == source).collect();
    let targets: Vec<Target> = probes.iter().map(|p| Target { address: p.address, port: p.port, proto: p.proto }).collect();
    let name = crate::net::netns(lab, source);
    let input = serde_json::to_string(&targets).map_err(|e| LabError(e.to_string()))?;
    let output = run_probe(&name, phoenix, &input)?;
    let results: Vec<bool> = serde_json::from_str(&output).map_err(|e| LabError(format!("probe output from {name}: {e}")))?;
    if results.len() != probes.len() {
        return Err(LabError(format!("probe in {name} answered {} of {} targets", results.len(), probes.len())));
    }
    Ok(probes.into_iter().zip(results).map(|(probe, live)| Observation { probe: probe.clone(), live }).collect())
}

fn run_probe(namespace: &str, phoenix: &Path, input: &str) -> Result<String, LabError> {
    use std::io::Write;
    let mut child = std::process::Command::new("ip")
        .args(["netns", "exec", namespace, &phoenix.to_string_lossy(), "lab", "probe"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| LabError(format!("cannot probe from {namespace}: {e}")))?;
    child.stdin.take().ok_or_else(|| LabError("no stdin".into()))?.write_all(input.as_bytes()).map_err(|e| LabError(e.to_string()))?;
    let output = child.wait_with_output().map_err(|e| LabError(e.to_string()))?;
    if !output.status.success() {
        return Err(LabError(format!("probe in {namespace} failed: {}", String::from_utf8_lossy(&output.stderr).trim())));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
