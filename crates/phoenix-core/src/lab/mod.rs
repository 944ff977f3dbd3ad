//! The lab, as data: the network namespaces that stand for the Proxmox host, each guest with a
//! static address and an outside client, joined by one bridge in a namespace of its own; the
//! nftables ruleset of each (compiled from the same Proxmox firewall files the evaluator reads);
//! the ports each namespace listens on (every hop's destination); and the probes, one per hop,
//! each with the verdict the static analysis gives. phoenix-lab builds and probes it. Pure.

pub mod accounts;
pub mod deployed;
pub mod nft;
pub mod traefik;

pub use accounts::guest_accounts;

use crate::analyze::assess::{FlowVerdict, HopVerdict};
use crate::analyze::firewall::{evaluate, evaluate_between, Endpoint, FirewallState, Packet};
use crate::analyze::flows::EXTERNAL_CLIENT;
use crate::analyze::verdict::Status;
use crate::deploy::Machine;
use crate::render::Rendered;
use phoenix_model::model::{GuestId, Model};
use phoenix_model::paths::TRUSTED_ROOT_PATH;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

/// One namespace of the lab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Namespace {
    /// `host`, `guest-<vmid>` or `outside`; the netns name is `phx-<lab>-<key>`.
    pub key: String,
    /// The interface inside (Proxmox's names: the host's bridge, a guest's `net0`).
    pub iface: String,
    pub address: Ipv4Addr,
    pub prefix: u8,
    /// The nft ruleset to load (`nft -f`).
    pub ruleset: String,
    pub tcp: BTreeSet<u16>,
    pub udp: BTreeSet<u16>,
    /// TCP ports that speak TLS, with what they present.
    pub tls: BTreeMap<u16, TlsPort>,
    /// dnsmasq's configuration, when phoenix's DNS server runs here (it then serves port 53).
    pub dnsmasq: Option<String>,
    /// The rendered nginx.conf, when this is the gateway (a real nginx then serves 80 and 443);
    /// for Traefik's guest, the nginx standing in for Traefik where its binary is missing.
    pub nginx: Option<String>,
    /// Traefik's rendered static and dynamic files, when this is Traefik's guest (the real
    /// Traefik then serves 80 and 443).
    #[serde(default)]
    pub traefik: Option<(String, String)>,
    /// Files the guest needs in place, from the certificate store: (path in the guest, store file).
    pub files: Vec<(String, String)>,
    /// When this is Step-CA: the port its ACME directory is served on (Pebble stands in).
    pub acme_port: Option<u16>,
    /// The resolver Step-CA's validation asks (its guest's first nameserver), when Pebble
    /// validates for real (a bare lab, which `sync --lab` orders from); else it answers every
    /// validation as valid.
    #[serde(default)]
    pub acme_resolver: Option<Ipv4Addr>,
    /// The resolvers the guest is configured with (its resolv.conf in the lab).
    pub nameservers: Vec<Ipv4Addr>,
    /// Its further interfaces: a guest's other addressed NICs, the host's addresses on its other
    /// bridges. `iface`/`address` above are the first.
    #[serde(default)]
    pub more_nics: Vec<LabNic>,
}

/// A further interface of a namespace, plugged into the lab switch's bridge standing for the
/// Proxmox bridge it is on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabNic {
    pub iface: String,
    /// The switch's bridge: `br0` for the node's main bridge, `b-<name>` for another.
    pub switch_bridge: String,
    pub address: Ipv4Addr,
    pub prefix: u8,
}

impl Namespace {
    /// Its address on switch bridge `bridge`, when it has an interface there (every namespace's
    /// first interface is on `br0`).
    pub fn on_bridge(&self, bridge: &str) -> Option<Ipv4Addr> {
        if bridge == "br0" {
            return Some(self.address);
        }
        self.more_nics.iter().find(|n| n.switch_bridge == bridge).map(|n| n.address)
    }

    /// Nothing runs here (a guest that does not exist or is not started yet): its network
    /// stays, its services go.
    pub fn without_services(&mut self) {
        self.tcp.clear();
        self.udp.clear();
        self.tls.clear();
        self.dnsmasq = None;
        self.nginx = None;
        self.traefik = None;
        self.files.clear();
        self.acme_port = None;
        self.acme_resolver = None;
    }
}

/// An HTTPS request through the gateway, as a client makes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpProbe {
    pub host: String,
    /// Whether every hop of the route's flow (client to gateway, gateway to Traefik, Traefik to
    /// the backend) passes `phoenix assess`: then the answer, from the backend, is 200.
    pub expected: bool,
}

/// A TLS stand-in: the certificates it presents (by SNI) and whether it demands a client certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsPort {
    /// Server name -> certificate name in the store; `fallback` for any other name.
    pub by_name: BTreeMap<String, String>,
    pub fallback: Option<String>,
    pub client_required: bool,
}

/// A DNS lookup a hop depends on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsProbe {
    pub name: String,
    pub server: Ipv4Addr,
    /// The address the name must resolve to (the hop's destination).
    pub want: Ipv4Addr,
    /// Where the lookup is made: the hop's source, except for the outside client, whose
    /// resolver is not phoenix's dnsmasq behind the host firewall but holds phoenix's external
    /// view: its lookup is made next to dnsmasq (what the static check judges: the records).
    pub from: String,
    /// `phoenix assess`'s DNS verdict.
    pub expected: bool,
}

/// A TLS handshake a hop makes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsProbe {
    pub server_name: String,
    /// The certificate the client presents (a store name).
    pub client_certificate: Option<String>,
    /// `phoenix assess`'s TLS verdict.
    pub expected: bool,
}

/// One connection to try, with what the static analysis says of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    pub flow: String,
    pub from: String,
    pub to: String,
    pub address: Ipv4Addr,
    pub port: u16,
    pub proto: u8,
    /// The evaluator's verdict: both chains pass.
    pub expected: bool,
    pub dns: Option<DnsProbe>,
    pub tls: Option<TlsProbe>,
    pub http: Option<HttpProbe>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabSpec {
    pub namespaces: Vec<Namespace>,
    pub probes: Vec<Probe>,
}

pub fn key(endpoint: Endpoint) -> Option<String> {
    match endpoint {
        Endpoint::Host => Some("host".into()),
        Endpoint::Node(index) => Some(format!("node-{index}")),
        Endpoint::Guest(id) => Some(format!("guest-{id}")),
        Endpoint::Outside(ip) if ip == EXTERNAL_CLIENT => Some("outside".into()),
        Endpoint::Outside(_) => None,
    }
}

fn v4(model: &Model, endpoint: Endpoint) -> Option<Ipv4Addr> {
    match endpoint.ip(model)? {
        std::net::IpAddr::V4(ip) => Some(ip),
        std::net::IpAddr::V6(_) => None,
    }
}

/// The lab for `model`, its firewall as `state` says, probing every hop of `verdicts` (from
/// `phoenix assess`, certificates judged from the lab's store) whose ends are in the lab.
/// `rendered` gives dnsmasq's and the gateway's configurations.
pub fn spec(model: &Model, state: &FirewallState, verdicts: &[FlowVerdict], rendered: &Rendered) -> LabSpec {
    let mut namespaces = namespaces(model, state);
    let services = place_services(model, rendered, &mut namespaces);
    let mut probes = declared_probes(model, state, verdicts, &services, &mut namespaces);
    probes.retain(|p| namespaces.contains_key(&p.from));
    probes.extend(undeclared_probes(model, state, &namespaces, &probes));
    let identity = |p: &Probe| {
        (
            p.from.clone(),
            p.to.clone(),
            p.address,
            p.port,
            p.proto,
            p.dns.as_ref().map(|d| d.name.clone()),
            p.tls.as_ref().map(|t| (t.server_name.clone(), t.client_certificate.clone())),
        )
    };
    probes.sort_by_key(identity);
    probes.dedup_by_key(|p| identity(p));
    LabSpec { namespaces: namespaces.into_values().collect(), probes }
}

/// The lab switch's bridge standing for Proxmox bridge `bridge` (the node's main one when none
/// is named). Linux interface names have at most 15 bytes.
pub fn switch_bridge(model: &Model, bridge: Option<&str>) -> String {
    let main = model.host.bridge.as_deref().unwrap_or("vmbr0");
    match bridge {
        None => "br0".into(),
        Some(name) if name == main => "br0".into(),
        Some(name) => format!("b-{}", name.chars().take(13).collect::<String>()),
    }
}

/// One namespace per addressed guest, the host and the outside client, each with its
/// compiled ruleset and the guest's name servers; nothing listens yet.
fn namespaces(model: &Model, state: &FirewallState) -> BTreeMap<String, Namespace> {
    let prefix = model.host.subnet.as_ref().map(|s| s.value.prefix_len()).unwrap_or(24);
    let bridge = model.host.bridge.clone().unwrap_or_else(|| "vmbr0".into());
    let mut namespaces: BTreeMap<String, Namespace> = BTreeMap::new();
    let mut add = |key: String, iface: &str, address: Ipv4Addr, ruleset: String, nameservers: Vec<Ipv4Addr>, more_nics| {
        let namespace = Namespace {
            key: key.clone(),
            iface: iface.to_string(),
            address,
            prefix,
            ruleset,
            tcp: BTreeSet::new(),
            udp: BTreeSet::new(),
            tls: BTreeMap::new(),
            dnsmasq: None,
            nginx: None,
            traefik: None,
            files: Vec::new(),
            acme_port: None,
            acme_resolver: None,
            nameservers,
            more_nics,
        };
        namespaces.insert(key, namespace);
    };
    if let Some(ip) = model.host.ip() {
        add("host".into(), &bridge, ip, nft::ruleset(state, nft::Node::Host), Vec::new(), host_nics(model));
    }
    // The cluster's other nodes, on the same bridge (a cluster's nodes share their management
    // network: the lab's switch is its uplink), each with its own host firewall.
    for (index, node) in model.host.nodes.iter().enumerate().skip(1) {
        let (Some(address), Some(peer)) = (&node.address, state.peers.get(&(index as u8))) else { continue };
        add(format!("node-{index}"), &bridge, address.value, nft::ruleset(peer, nft::Node::Host), Vec::new(), Vec::new());
    }
    for guest in model.guests.values() {
        let nics = guest_nics(model, guest);
        let Some((first, rest)) = nics.split_first() else { continue };
        let nameservers = guest
            .nic()
            .nameservers
            .iter()
            .filter_map(|n| match n.value {
                std::net::IpAddr::V4(v4) => Some(v4),
                std::net::IpAddr::V6(_) => None,
            })
            .collect();
        let addressed: Vec<(String, std::net::IpAddr)> = nics.iter().map(|n| (n.iface.clone(), std::net::IpAddr::V4(n.address))).collect();
        let ruleset = nft::ruleset(state, nft::Node::Guest(guest.id, &addressed));
        add(format!("guest-{}", guest.id), &first.iface, first.address, ruleset, nameservers, rest.to_vec());
    }
    if let std::net::IpAddr::V4(outside) = EXTERNAL_CLIENT {
        // The outside client has no Proxmox firewall of its own.
        add("outside".into(), "eth0", outside, "flush ruleset\n".into(), Vec::new(), Vec::new());
    }
    namespaces
}

impl LabNic {
    /// Interface `iface` with `address`, on the switch bridge standing for Proxmox bridge `bridge`.
    fn on(model: &Model, iface: String, bridge: Option<&str>, address: ipnet::Ipv4Net) -> LabNic {
        LabNic { iface, switch_bridge: switch_bridge(model, bridge), address: address.addr(), prefix: address.prefix_len() }
    }
}

/// A guest's NICs with a static address, each under its Proxmox key (`net0`, `net1`).
fn guest_nics(model: &Model, guest: &phoenix_model::model::Guest) -> Vec<LabNic> {
    guest.nics.iter().filter_map(|nic| Some(LabNic::on(model, nic.key(), nic.bridge.as_deref(), nic.address.as_ref()?.value))).collect()
}

/// The host's addresses on its other bridges (the internal bridge's `.1`), each on an
/// interface named after the bridge, as on the node.
fn host_nics(model: &Model) -> Vec<LabNic> {
    let nics = model.host.bridges.iter().filter_map(|b| Some(LabNic::on(model, b.name.clone(), Some(&b.name), b.address.as_ref()?.value)));
    nics.filter(|nic| nic.switch_bridge != "br0").collect()
}

/// Where the lab's real services run.
struct Services {
    /// The namespace serving DNS and its address.
    dns_key: String,
    dns_server: Option<Ipv4Addr>,
    /// The gateway's namespace.
    gateway_key: Option<String>,
}

/// Puts dnsmasq, the gateway's nginx, Step-CA's ACME port and Traefik (with its stand-in) into their
/// namespaces.
fn place_services(model: &Model, rendered: &Rendered, namespaces: &mut BTreeMap<String, Namespace>) -> Services {
    let dns_key = match model.edge.dns {
        Some(id) => format!("guest-{id}"),
        None => "host".to_string(),
    };
    let dns_server = namespaces.get(&dns_key).map(|n| n.address);
    let dnsmasq = rendered.files.iter().find(|f| f.path.starts_with("/etc/dnsmasq")).map(|f| f.content.clone());
    if let (Some(namespace), Some(conf)) = (namespaces.get_mut(&dns_key), dnsmasq) {
        namespace.dnsmasq = Some(conf);
    }
    let gateway_key = model.edge.gateway.map(|id| format!("guest-{id}"));
    if let Some((namespace, id)) = gateway_key.as_ref().and_then(|k| namespaces.get_mut(k)).zip(model.edge.gateway) {
        namespace.nginx = rendered
            .files
            .iter()
            .find(|f| f.target == Machine::Guest(id) && f.path == crate::render::nginx::PATH)
            .map(|f| f.content.clone());
        namespace.files = guest_files(model, id);
    }
    let edge = crate::edge::edge(model);
    if let (Some(ca), Some(settings)) = (edge.step_ca, &model.step_ca) {
        if let Some(namespace) = namespaces.get_mut(&format!("guest-{}", ca.id)) {
            namespace.acme_port = Some(settings.port);
        }
    }
    // Traefik's stand-in runs where Traefik's configuration is (a bare lab has none yet).
    let configured = |id: GuestId| rendered.files.iter().any(|f| f.target == Machine::Guest(id));
    if let Some(traefik) = edge.traefik.filter(|t| Some(t.id) != model.edge.gateway && configured(t.id)) {
        if let Some(namespace) = namespaces.get_mut(&format!("guest-{}", traefik.id)) {
            namespace.nginx = traefik::proxy(model, &edge);
            namespace.traefik = traefik::rendered_files(rendered, traefik.id);
            namespace.files = guest_files(model, traefik.id);
        }
    }
    Services { dns_key, dns_server, gateway_key }
}

/// A probe per judged hop, with the static verdicts it must agree with; each destination
/// namespace learns the ports (and TLS certificates) it must listen with.
fn declared_probes(
    model: &Model,
    state: &FirewallState,
    verdicts: &[FlowVerdict],
    services: &Services,
    namespaces: &mut BTreeMap<String, Namespace>,
) -> Vec<Probe> {
    let mut probes = Vec::new();
    // Step-CA's validation paths are shown by validating for real (a bare lab's `sync --lab`),
    // not probed: what answers there (phoenix's responders, a guest's web root) answers only
    // while an order runs, so nothing may listen there in their place.
    for flow in verdicts.iter().filter(|f| !f.id.starts_with(crate::analyze::challenges::FLOW_PREFIX)) {
        for judged in &flow.hops {
            let hop = &judged.hop;
            let (Some(from), Some(to), Some(address)) = (key(hop.from), key(hop.to), v4(model, hop.to)) else { continue };
            let Some(target) = namespaces.get_mut(&to) else { continue };
            if !endpoints_known(&from) {
                continue;
            }
            let verdict = evaluate(state, model, hop.from, hop.to, Packet::to(hop.proto, hop.port));
            let dns = match (&hop.name, &judged.dns, services.dns_server) {
                (Some(name), Some(check), Some(server)) => {
                    let from = if from == "outside" { services.dns_key.clone() } else { from.clone() };
                    Some(DnsProbe { name: name.clone(), server, want: address, from, expected: check.status == Status::Ok })
                }
                _ => None,
            };
            let tls = tls_probe(model, judged).map(|(probe, covering, installed)| {
                let port = target.tls.entry(hop.port).or_default();
                if let Some(cert) = covering {
                    port.by_name.insert(probe.server_name.clone(), cert);
                }
                port.fallback = port.fallback.clone().or(Some(installed));
                port.client_required |= hop.tls.as_ref().is_some_and(|t| t.client_certificate_required);
                probe
            });
            if hop.proto == 17 {
                target.udp.insert(hop.port);
            } else {
                target.tcp.insert(hop.port);
            }
            let first = std::ptr::eq(judged, &flow.hops[0]);
            let http = (flow.id.starts_with("route:") && first && Some(&to) == services.gateway_key.as_ref()).then(|| HttpProbe {
                host: hop.name.clone().unwrap_or_default(),
                expected: flow.hops.iter().all(|h| h.status != Status::Fail),
            });
            let (port, proto, expected) = (hop.port, hop.proto, verdict.passes);
            probes.push(Probe { flow: flow.id.clone(), from, to, address, port, proto, expected, dns, tls, http });
        }
    }
    probes
}

/// Every other namespace tries every port a namespace listens on: connections nobody
/// declared, which the firewall should mostly refuse, so both verdicts get tested.
fn undeclared_probes(model: &Model, state: &FirewallState, namespaces: &BTreeMap<String, Namespace>, declared: &[Probe]) -> Vec<Probe> {
    let endpoints: BTreeMap<String, Endpoint> = namespaces
        .keys()
        .filter_map(|k| {
            let endpoint = match k.as_str() {
                "host" => Endpoint::Host,
                "outside" => Endpoint::Outside(EXTERNAL_CLIENT),
                node if node.starts_with("node-") => Endpoint::Node(node.strip_prefix("node-")?.parse().ok()?),
                guest => Endpoint::Guest(guest.strip_prefix("guest-")?.parse().ok()?),
            };
            Some((k.clone(), endpoint))
        })
        .collect();
    let dns_addresses = crate::render::dnsmasq::listen_addresses(model);
    let mut probes = Vec::new();
    for (to, target) in namespaces {
        let listening: Vec<(u16, u8)> = target.tcp.iter().map(|p| (*p, 6u8)).chain(target.udp.iter().map(|p| (*p, 17u8))).collect();
        for (from, source) in endpoints.iter().filter(|(from, _)| *from != to) {
            for &(port, proto) in &listening {
                if declared.iter().any(|p| &p.from == from && &p.to == to && p.port == port && p.proto == proto) {
                    continue;
                }
                let verdict = evaluate(state, model, *source, endpoints[to], Packet::to(proto, port));
                probes.push(undeclared(from, to, target.address, port, proto, verdict.passes));
            }
            // A further NIC is reached from the namespaces on its bridge, from their address there,
            // on the ports that listen on it (dnsmasq binds its listen addresses only).
            for nic in &target.more_nics {
                let Some(own) = namespaces[from].on_bridge(&nic.switch_bridge) else { continue };
                let dns_listens = dns_addresses.contains(&nic.address.into());
                for &(port, proto) in listening.iter().filter(|(port, _)| *port != 53 || target.dnsmasq.is_none() || dns_listens) {
                    let (src, dst) = ((*source, own.into()), (endpoints[to], nic.address.into()));
                    let verdict = evaluate_between(state, model, src, dst, Packet::to(proto, port));
                    probes.push(undeclared(from, to, nic.address, port, proto, verdict.passes));
                }
            }
        }
    }
    probes
}

fn undeclared(from: &str, to: &str, address: Ipv4Addr, port: u16, proto: u8, expected: bool) -> Probe {
    let (flow, from, to) = ("undeclared".into(), from.to_string(), to.to_string());
    Probe { flow, from, to, address, port, proto, expected, dns: None, tls: None, http: None }
}

/// Whether a probe source is one of the lab's kinds of namespace.
fn endpoints_known(key: &str) -> bool {
    key == "host" || key == "outside" || key.starts_with("guest-") || key.starts_with("node-")
}

/// Guests of the model the lab leaves out (no static address: DHCP, templates without one).
pub fn left_out(model: &Model) -> Vec<GuestId> {
    model.guests.values().filter(|g| g.address().is_none()).map(|g| g.id).collect()
}

/// The TLS handshake a hop makes, when the lab can stand in for its server: TLS verified and
/// ending at this hop's destination, which has a server certificate in the manifest (names
/// Traefik gets over ACME, and agents Portainer does not verify, are left to the firewall
/// probe). With the certificate that covers the name, if one does, and the one installed.
fn tls_probe(model: &Model, judged: &HopVerdict) -> Option<(TlsProbe, Option<String>, String)> {
    let tls = judged.hop.tls.as_ref()?;
    let check = judged.tls.as_ref()?;
    let installed = model
        .certificates
        .iter()
        .find(|c| c.guest.as_ref().is_some_and(|g| g.value == tls.server) && c.usage != phoenix_model::model::CertUsage::Client)?;
    if !tls.verified || !tls.terminated_here {
        return None;
    }
    let covering = crate::edge::server_certificate_for(model, tls.server, &tls.server_name).map(|c| c.name.clone());
    let probe = TlsProbe {
        server_name: tls.server_name.clone(),
        client_certificate: tls.client_certificate.clone(),
        expected: check.status != Status::Fail,
    };
    Some((probe, covering, installed.name.clone()))
}

/// The certificate files a guest's services read (its manifest entries' `cert_path` and
/// `key_path`), and the CA root where the rendered configurations expect it.
pub fn guest_files(model: &Model, id: GuestId) -> Vec<(String, String)> {
    let mut files = vec![(TRUSTED_ROOT_PATH.to_string(), phoenix_model::paths::STORE_ROOT_FILE.to_string())];
    for cert in model.certificates.iter().filter(|c| c.guest.as_ref().is_some_and(|g| g.value == id)) {
        files.extend(cert.cert_path.clone().map(|p| (p, format!("{}.crt", cert.name))));
        files.extend(cert.key_path.clone().map(|p| (p, format!("{}.key", cert.name))));
    }
    files
}

/// The rendered nginx.conf as the lab runs it: the files it names (certificates, keys, the
/// root, pid, logs) under `root`, the guest's folder; no `user` switch (the lab runs as root).
/// A client certificate whose file is `missing` is not presented (as a proxy that cannot load
/// it presents none) rather than keeping nginx from starting. Everything else (listen,
/// proxy_pass, verification) is exactly as rendered.
pub fn nginx_for_lab(conf: &str, root: &str, missing: &[String]) -> String {
    const PATHS: &[&str] = &[
        "ssl_certificate",
        "ssl_certificate_key",
        "ssl_client_certificate",
        "proxy_ssl_trusted_certificate",
        "proxy_ssl_certificate",
        "proxy_ssl_certificate_key",
        "pid",
        "error_log",
        "access_log",
    ];
    let root = root.trim_end_matches('/');
    let client_file = |line: &str| {
        let mut words = line.split_whitespace();
        matches!(words.next(), Some("proxy_ssl_certificate" | "proxy_ssl_certificate_key"))
            && words.next().is_some_and(|p| missing.iter().any(|m| p.trim_end_matches(';') == m))
    };
    conf.lines()
        .filter(|line| line.trim() != "user www-data;" && !client_file(line))
        .map(|line| {
            let trimmed = line.trim_start();
            let directive = trimmed.split_whitespace().next().unwrap_or_default();
            match (PATHS.contains(&directive), trimmed.split_whitespace().nth(1)) {
                (true, Some(path)) if path.starts_with('/') => line.replacen(path, &format!("{root}{path}"), 1),
                _ => line.to_string(),
            }
        })
        .map(|line| line + "\n")
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lab_moves_the_gateways_files_into_its_folder() {
        let conf = "user www-data;\npid /run/nginx.pid;\n  ssl_certificate /etc/nginx/ssl/gateway.crt;\n  proxy_ssl_trusted_certificate /usr/local/x.crt;\n  proxy_pass https://10.0.0.12:443;\n";
        let lab = nginx_for_lab(conf, "/run/phoenix-lab/t/guest-101/", &[]);
        assert_eq!(
            lab,
            "pid /run/phoenix-lab/t/guest-101/run/nginx.pid;\n  ssl_certificate /run/phoenix-lab/t/guest-101/etc/nginx/ssl/gateway.crt;\n  proxy_ssl_trusted_certificate /run/phoenix-lab/t/guest-101/usr/local/x.crt;\n  proxy_pass https://10.0.0.12:443;\n"
        );
    }
}
