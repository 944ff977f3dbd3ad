//! The lab's probes (TCP connect, DNS lookup, TLS handshake, UDP request and reply), all
//! bounded in time, and the runner that probes every hop from inside its source namespace.
//! `probe_targets` runs inside a namespace (`phoenix lab probe`); `probe_lab` runs outside and enters each namespace with `ip netns exec`.

use crate::LabError;
use futures_util::stream::{self, StreamExt};
use hickory_proto::rr::{DNSClass, RecordType};
use phoenix_drivers::dns;
use phoenix_core::lab::{LabSpec, Probe};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a probe waits for a connection or a reply: a dropped packet is a failure after this.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(600);

/// One destination of a probe run: address, port and protocol, and what to ask there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeTarget {
    pub address: Ipv4Addr,
    pub port: u16,
    pub proto: u8,
    /// Look this name up at this server first.
    pub dns: Option<(String, Ipv4Addr)>,
    /// Then make a TLS handshake sending this name, presenting this client certificate.
    pub tls: Option<(String, Option<String>)>,
    /// And ask for `https://<host>/` over it: is the answer 200?
    pub http: Option<String>,
}

/// What a probe found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Found {
    pub connects: bool,
    /// Whether the lookup (when one was asked for) answered exactly the target's address.
    pub dns_answers_ok: Option<bool>,
    pub tls: Option<bool>,
    pub http: Option<bool>,
    /// The subjects of the chain the server presented, leaf first (when a handshake was made).
    #[serde(default)]
    pub chain: Vec<String>,
}

/// Whether a DNS server at `address` answers: a question dnsmasq answers itself (CHAOS TXT
/// `version.bind`, whatever its upstreams); the stand-in echoes it.
async fn dns_answers(address: SocketAddr) -> bool {
    let Some(query) = dns::question("version.bind", RecordType::TXT, DNSClass::CH) else { return false };
    dns::ask(address, query, PROBE_TIMEOUT).await.is_some()
}

/// The A answers for `name` from `server` (UDP 53).
async fn lookup(name: &str, server: Ipv4Addr) -> Option<Vec<Ipv4Addr>> {
    let query = dns::question(name, RecordType::A, DNSClass::IN)?;
    dns::ask(SocketAddr::from((server, 53)), query, PROBE_TIMEOUT).await.map(|records| dns::addresses(&records))
}

/// A TLS handshake sending `server_name`, then `GET /` for `host`: whether TLS held and the
/// answer's status. TLS holds when the handshake completes and no alert follows (TLS 1.3
/// servers refuse a client certificate with an alert after the handshake); a slow answer (a
/// proxy still waiting for its upstream) is not a TLS failure, only no status.
/// The subjects of a presented chain, leaf first.
fn subjects(chain: Option<&[rustls::pki_types::CertificateDer<'_>]>) -> Vec<String> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let read = |der: &rustls::pki_types::CertificateDer<'_>| {
        X509Certificate::from_der(der.as_ref()).map_or_else(|_| "(unreadable)".to_string(), |(_, c)| c.subject().to_string())
    };
    chain.unwrap_or_default().iter().map(read).collect()
}

async fn handshake(
    address: SocketAddr,
    server_name: &str,
    client: Option<&str>,
    store: &Path,
    host: &str,
) -> (bool, Option<u16>, Vec<String>) {
    let (Ok(config), Some(name)) = (crate::tls::client_config(store, client), crate::tls::server_name(server_name)) else {
        return (false, None, Vec::new());
    };
    let connect = async {
        let stream = TcpStream::connect(address).await.ok()?;
        tokio_rustls::TlsConnector::from(config).connect(name, stream).await.ok()
    };
    let Ok(Some(mut tls)) = tokio::time::timeout(PROBE_TIMEOUT * 2, connect).await else { return (false, None, Vec::new()) };
    let chain = subjects(tls.get_ref().1.peer_certificates());
    if tls.write_all(format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes()).await.is_err() {
        return (false, None, chain);
    }
    let mut answer = Vec::new();
    match tokio::time::timeout(PROBE_TIMEOUT * 3, tls.read_to_end(&mut answer)).await {
        Err(_) => (true, None, chain),
        Ok(Err(_)) if answer.is_empty() => (false, None, chain),
        Ok(_) => {
            let text = String::from_utf8_lossy(&answer);
            (true, text.strip_prefix("HTTP/1.1 ").and_then(|rest| rest.get(..3)).and_then(|code| code.parse::<u16>().ok()), chain)
        }
    }
}

async fn reachable(address: SocketAddr, proto: u8) -> bool {
    if proto == 17 {
        return dns_answers(address).await;
    }
    matches!(tokio::time::timeout(PROBE_TIMEOUT, TcpStream::connect(address)).await, Ok(Ok(_)))
}

async fn probe_one(target: &ProbeTarget, store: Option<&Path>) -> Found {
    let address = SocketAddr::from((target.address, target.port));
    let dns_answers_ok = match &target.dns {
        Some((name, server)) => {
            Some(lookup(name, *server).await.is_some_and(|answers| !answers.is_empty() && answers.iter().all(|a| *a == target.address)))
        }
        None => None,
    };
    // Port 0: a lookup only, made here for a hop from elsewhere.
    let connects = target.port != 0 && reachable(address, target.proto).await;
    let (tls, http, chain) = match (&target.tls, store, connects) {
        (Some((name, client)), Some(store), true) => {
            let host = target.http.clone().unwrap_or_else(|| name.clone());
            let (held, status, chain) = handshake(address, name, client.as_deref(), store, &host).await;
            (Some(held), target.http.as_ref().map(|_| status == Some(200)), chain)
        }
        _ => (None, None, Vec::new()),
    };
    Found { connects, dns_answers_ok, tls, http, chain }
}

/// Probes every target concurrently (at most 64 at once).
pub async fn probe_targets(targets: &[ProbeTarget], store: Option<&Path>) -> Vec<Found> {
    stream::iter(targets.iter().map(|t| probe_one(t, store))).buffered(64).collect().await
}

/// A hop's live results next to its static verdicts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Observation {
    #[serde(flatten)]
    pub probe: Probe,
    pub live: bool,
    pub live_dns: Option<bool>,
    /// Only when the connection came through (a blocked hop has no handshake to judge).
    pub live_tls: Option<bool>,
    /// The request through the gateway answered 200.
    pub live_http: Option<bool>,
    /// What the server presented (subjects, leaf first).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub live_chain: Vec<String>,
}

impl Observation {
    pub fn agrees(&self) -> bool {
        let dns = match (&self.probe.dns, self.live_dns) {
            (Some(dns), Some(live)) => dns.expected == live,
            _ => true,
        };
        let tls = match (&self.probe.tls, self.live_tls) {
            (Some(tls), Some(live)) => tls.expected == live,
            _ => true,
        };
        let http = match (&self.probe.http, self.live_http) {
            (Some(http), Some(live)) => http.expected == live,
            _ => true,
        };
        self.probe.expected == self.live && dns && tls && http
    }
}

/// Probes every hop of `spec` from inside its source namespace of lab `lab`.
pub fn probe_lab(lab: &str, spec: &LabSpec, phoenix: &Path, store: &Path) -> Result<Vec<Observation>, LabError> {
    let enter = |source: &str| Some(vec!["ip".to_string(), "netns".into(), "exec".into(), crate::net::netns(lab, source)]);
    probe_all(spec, &enter, phoenix, store)
}

/// Probes every hop of `spec` whose source `enter` can reach: it gives the command prefix that
/// runs a program in that source's network namespace (`ip netns exec NAME`, `nsenter
/// --net=PATH --`), `None` for sources that cannot be entered (their hops are left out).
pub fn probe_all(
    spec: &LabSpec,
    enter: &(dyn Fn(&str) -> Option<Vec<String>> + Sync),
    phoenix: &Path,
    store: &Path,
) -> Result<Vec<Observation>, LabError> {
    let mut sources: Vec<&str> = spec
        .probes
        .iter()
        .map(|p| p.from.as_str())
        .chain(spec.probes.iter().filter_map(|p| p.dns.as_ref().map(|d| d.from.as_str())))
        .collect();
    sources.sort();
    sources.dedup();
    let entered: Vec<(&str, Vec<String>)> = sources.iter().filter_map(|s| Some((*s, enter(s)?))).collect();
    // One prober per source namespace, all at once: a dropped packet costs PROBE_TIMEOUT once.
    type Run = Result<(Vec<Observation>, Vec<Lookup>), LabError>;
    let runs: Vec<Run> = std::thread::scope(|scope| {
        let handles: Vec<_> =
            entered.iter().map(|(source, prefix)| scope.spawn(move || probe_from(prefix, spec, phoenix, store, source))).collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(LabError("a prober panicked".into())))).collect()
    });
    let mut observations = Vec::new();
    let mut lookups = std::collections::BTreeMap::new();
    for run in runs {
        let (found, delegated) = run?;
        observations.extend(found);
        lookups.extend(delegated);
    }
    // Lookups made next to dnsmasq on another namespace's behalf.
    for observation in observations.iter_mut().filter(|o| o.live_dns.is_none()) {
        if let Some(dns) = &observation.probe.dns {
            observation.live_dns = lookups.get(&(dns.name.clone(), dns.want)).copied();
        }
    }
    Ok(observations)
}

/// A lookup made on another namespace's behalf: (name, wanted address) and whether it matched.
type Lookup = ((String, Ipv4Addr), bool);

/// The lookups made in `source` on behalf of hops from elsewhere (the outside client's).
fn lookups_for(spec: &LabSpec, source: &str) -> Vec<ProbeTarget> {
    spec.probes
        .iter()
        .filter_map(|p| p.dns.as_ref().filter(|d| d.from == source && p.from != source))
        .map(|d| ProbeTarget { address: d.want, port: 0, proto: 0, dns: Some((d.name.clone(), d.server)), tls: None, http: None })
        .collect()
}

fn probe_from(
    prefix: &[String],
    spec: &LabSpec,
    phoenix: &Path,
    store: &Path,
    source: &str,
) -> Result<(Vec<Observation>, Vec<Lookup>), LabError> {
    let probes: Vec<&Probe> = spec.probes.iter().filter(|p| p.from == source).collect();
    let mut targets: Vec<ProbeTarget> = probes
        .iter()
        .map(|p| ProbeTarget {
            address: p.address,
            port: p.port,
            proto: p.proto,
            dns: p.dns.as_ref().filter(|d| d.from == source).map(|d| (d.name.clone(), d.server)),
            tls: p.tls.as_ref().map(|t| (t.server_name.clone(), t.client_certificate.clone())),
            http: p.http.as_ref().map(|h| h.host.clone()),
        })
        .collect();
    targets.extend(lookups_for(spec, source));
    let name = source;
    let input = serde_json::to_string(&targets).map_err(|e| LabError(e.to_string()))?;
    let output = run_probe(prefix, name, phoenix, store, &input)?;
    let results: Vec<Found> = serde_json::from_str(&output).map_err(|e| LabError(format!("probe output from {name}: {e}")))?;
    if results.len() != targets.len() {
        return Err(LabError(format!("probe in {name} answered {} of {} targets", results.len(), targets.len())));
    }
    let (own, delegated) = results.split_at(probes.len());
    let observations = probes
        .iter()
        .zip(own)
        .map(|(probe, found)| Observation {
            probe: (*probe).clone(),
            live: found.connects,
            live_dns: found.dns_answers_ok,
            live_tls: found.tls,
            live_http: found.http,
            live_chain: found.chain.clone(),
        })
        .collect();
    let lookups = targets[probes.len()..]
        .iter()
        .zip(delegated)
        .filter_map(|(t, f)| Some(((t.dns.as_ref()?.0.clone(), t.address), f.dns_answers_ok?)))
        .collect();
    Ok((observations, lookups))
}

fn run_probe(prefix: &[String], namespace: &str, phoenix: &Path, store: &Path, input: &str) -> Result<String, LabError> {
    use std::io::Write;
    let (program, args) = prefix.split_first().ok_or_else(|| LabError("no way into the namespace".into()))?;
    let mut child = std::process::Command::new(program)
        .args(args)
        .args([&*phoenix.to_string_lossy(), "lab", "probe", "--certs", &store.to_string_lossy()])
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

/// How the Proxmox node enters a source's network namespace to probe from there: the node
/// itself in place; a container through its init process (`lxc-info -p`, then `nsenter`); a VM
/// not at all (its network stack is inside QEMU). `netns_prefix` replaces the lookup with named
/// namespaces `<prefix><key>` (the lab standing in for a node, in tests).
pub fn node_entry(key: &str, lxc: bool, netns_prefix: Option<&str>) -> Option<Vec<String>> {
    let nsenter = |path: String| Some(vec!["nsenter".to_string(), format!("--net={path}"), "--".to_string()]);
    match (key, netns_prefix) {
        ("outside", _) => None,
        (_, Some(prefix)) if key == "host" || lxc => nsenter(format!("/run/netns/{prefix}{key}")),
        ("host", None) => Some(vec!["env".to_string()]),
        (guest, None) if lxc => {
            let id = guest.strip_prefix("guest-")?;
            let output = std::process::Command::new("lxc-info").args(["-n", id, "-p", "-H"]).output().ok()?;
            let pid = String::from_utf8_lossy(&output.stdout).trim().to_string();
            (output.status.success() && !pid.is_empty()).then(|| format!("/proc/{pid}/ns/net")).and_then(nsenter)
        }
        _ => None,
    }
}

/// The shell script that probes `targets` from inside a VM (through `qm guest exec`, where
/// phoenix's prober cannot run): a TCP connection with bash's /dev/tcp, the lookup with
/// `getent` (the VM's own resolver configuration), the TLS handshake with curl against the CA
/// root at `root_path` presenting the client certificate files `client_files` names. One line
/// per target: `<index> <connects 0|1> <answers|none|-> <tls 0|1|->`. UDP targets are not
/// probed this way (a datagram socket cannot tell a drop from a silence).
pub fn vm_script(targets: &[ProbeTarget], root_path: &str, client_files: &BTreeMap<String, (String, String)>) -> String {
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let mut script = String::new();
    for (index, target) in targets.iter().enumerate() {
        let connect = format!("exec 3<>/dev/tcp/{}/{}", target.address, target.port);
        script.push_str(&format!("c=0; timeout 2 bash -c {} 2>/dev/null && c=1\n", quote(&connect)));
        match &target.dns {
            Some((name, _)) => script.push_str(&format!(
                "d=$(getent ahostsv4 {} | awk '{{print $1}}' | sort -u | paste -sd, -); [ -n \"$d\" ] || d=none\n",
                quote(name)
            )),
            None => script.push_str("d=-\n"),
        }
        match &target.tls {
            Some((name, client)) => {
                let mut curl = format!(
                    "curl -s -o /dev/null --max-time 3 --cacert {} --resolve {}:{}:{}",
                    quote(root_path),
                    quote(name),
                    target.port,
                    target.address
                );
                if let Some((cert, key)) = client.as_ref().and_then(|c| client_files.get(c)) {
                    curl.push_str(&format!(" --cert {} --key {}", quote(cert), quote(key)));
                }
                curl.push_str(&format!(" {}", quote(&format!("https://{name}:{}/", target.port))));
                script.push_str(&format!("t=-; [ $c = 1 ] && {{ t=0; {curl} && t=1; }}\n"));
            }
            None => script.push_str("t=-\n"),
        }
        script.push_str(&format!("echo \"{index} $c $d $t\"\n"));
    }
    script
}

/// Reads [`vm_script`]'s output back, `want` being each target's expected address.
pub fn parse_vm_output(text: &str, targets: &[ProbeTarget]) -> Vec<Found> {
    let mut found = vec![Found { connects: false, dns_answers_ok: None, tls: None, http: None, chain: Vec::new() }; targets.len()];
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [index, connects, dns, tls] = fields[..] else { continue };
        let Some(target) = index.parse::<usize>().ok().and_then(|i| targets.get(i).map(|t| (i, t))) else { continue };
        let (i, target) = target;
        let answers: Vec<&str> = if dns == "none" { Vec::new() } else { dns.split(',').collect() };
        found[i] = Found {
            connects: connects == "1",
            dns_answers_ok: (dns != "-").then(|| !answers.is_empty() && answers.iter().all(|a| *a == target.address.to_string())),
            tls: (tls != "-").then_some(tls == "1"),
            http: None,
            chain: Vec::new(),
        };
    }
    found
}

/// Probes the TCP hops from each VM in `sources` by running [`vm_script`] through `exec`
/// (`qm guest exec` on a node), returning their observations.
pub fn probe_vms(
    spec: &LabSpec,
    sources: &[String],
    root_path: &str,
    client_files: &BTreeMap<String, (String, String)>,
    exec: &dyn Fn(&str, &str) -> Result<String, LabError>,
) -> Result<Vec<Observation>, LabError> {
    let mut observations = Vec::new();
    for source in sources {
        let probes: Vec<&Probe> = spec.probes.iter().filter(|p| &p.from == source && p.proto == 6).collect();
        let targets: Vec<ProbeTarget> = probes
            .iter()
            .map(|p| ProbeTarget {
                address: p.address,
                port: p.port,
                proto: p.proto,
                dns: p.dns.as_ref().filter(|d| &d.from == source).map(|d| (d.name.clone(), d.server)),
                tls: p.tls.as_ref().map(|t| (t.server_name.clone(), t.client_certificate.clone())),
                http: None,
            })
            .collect();
        if targets.is_empty() {
            continue;
        }
        let output = exec(source, &vm_script(&targets, root_path, client_files))?;
        let found = parse_vm_output(&output, &targets);
        observations.extend(probes.into_iter().zip(found).map(|(probe, f)| Observation {
            probe: Probe { http: None, ..probe.clone() },
            live: f.connects,
            live_dns: f.dns_answers_ok,
            live_tls: f.tls,
            live_http: None,
            live_chain: Vec::new(),
        }));
    }
    Ok(observations)
}
