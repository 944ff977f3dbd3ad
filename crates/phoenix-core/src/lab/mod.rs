//! The lab, as data: the network namespaces that stand for the Proxmox host, each guest with a
//! static address and an outside client, joined by one bridge in a namespace of its own; the
//! nftables ruleset of each (compiled from the same Proxmox firewall files the evaluator reads);
//! the ports each namespace listens on (every hop's destination); and the probes, one per hop,
//! each with the verdict the static analysis gives. phoenix-lab builds and probes it. Pure.

pub mod nft;

use crate::analyze::assess::{FlowVerdict, HopVerdict, Status};
use crate::analyze::firewall::{evaluate, Endpoint, FirewallState, Packet};
use crate::analyze::flows::EXTERNAL_CLIENT;
use phoenix_model::model::{GuestId, Model};
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
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabSpec {
    pub namespaces: Vec<Namespace>,
    pub probes: Vec<Probe>,
}

pub fn key(endpoint: Endpoint) -> Option<String> {
    match endpoint {
        Endpoint::Host => Some("host".into()),
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
/// `dnsmasq` is the rendered DNS configuration.
pub fn spec(model: &Model, state: &FirewallState, verdicts: &[FlowVerdict], dnsmasq: Option<String>) -> LabSpec {
    let prefix = model.host.subnet.as_ref().map(|s| s.value.prefix_len()).unwrap_or(24);
    let bridge = model.host.bridge.clone().unwrap_or_else(|| "vmbr0".into());
    let mut namespaces: BTreeMap<String, Namespace> = BTreeMap::new();
    let mut add = |key: String, iface: &str, address: Ipv4Addr, ruleset: String| {
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
        };
        namespaces.insert(key, namespace);
    };
    if let Some(ip) = model.host.ip() {
        add("host".into(), &bridge, ip, nft::ruleset(state, nft::Node::Host));
    }
    for guest in model.guests.values() {
        if let Some(ip) = guest.address() {
            add(format!("guest-{}", guest.id), nft::GUEST_IFACE, ip, nft::ruleset(state, nft::Node::Guest(guest.id)));
        }
    }
    if let std::net::IpAddr::V4(outside) = EXTERNAL_CLIENT {
        // The outside client has no Proxmox firewall of its own.
        add("outside".into(), "eth0", outside, "flush ruleset\n".into());
    }
    let dns_key = match model.edge.dns {
        Some(id) => format!("guest-{id}"),
        None => "host".to_string(),
    };
    let dns_server = namespaces.get(&dns_key).map(|n| n.address);
    if let (Some(namespace), Some(conf)) = (namespaces.get_mut(&dns_key), dnsmasq) {
        namespace.dnsmasq = Some(conf);
    }
    let mut probes = Vec::new();
    for flow in verdicts {
        for judged in &flow.hops {
            let hop = &judged.hop;
            let (Some(from), Some(to), Some(address)) = (key(hop.from), key(hop.to), v4(model, hop.to)) else { continue };
            let Some(target) = namespaces.get_mut(&to) else { continue };
            if !endpoints_known(&from) {
                continue;
            }
            let verdict = evaluate(state, model, hop.from, hop.to, Packet { proto: hop.proto, dport: Some(hop.port) });
            let dns = match (&hop.name, &judged.dns, dns_server) {
                (Some(name), Some(check), Some(server)) => {
                    let from = if from == "outside" { dns_key.clone() } else { from.clone() };
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
            probes.push(Probe {
                flow: flow.id.clone(),
                from,
                to,
                address,
                port: hop.port,
                proto: hop.proto,
                expected: verdict.passes,
                dns,
                tls,
            });
        }
    }
    probes.retain(|p| namespaces.contains_key(&p.from));
    // Every other namespace tries every port a namespace listens on: connections nobody
    // declared, which the firewall should mostly refuse, so both verdicts get tested.
    let endpoints: BTreeMap<String, Endpoint> = namespaces
        .keys()
        .filter_map(|k| {
            let endpoint = match k.as_str() {
                "host" => Endpoint::Host,
                "outside" => Endpoint::Outside(EXTERNAL_CLIENT),
                guest => Endpoint::Guest(guest.strip_prefix("guest-")?.parse().ok()?),
            };
            Some((k.clone(), endpoint))
        })
        .collect();
    for (to, target) in &namespaces {
        for (from, source) in endpoints.iter().filter(|(from, _)| *from != to) {
            let listening = target.tcp.iter().map(|p| (*p, 6u8)).chain(target.udp.iter().map(|p| (*p, 17u8)));
            for (port, proto) in listening {
                let declared = probes.iter().any(|p| &p.from == from && &p.to == to && p.port == port && p.proto == proto);
                if declared {
                    continue;
                }
                let verdict = evaluate(state, model, *source, endpoints[to], Packet { proto, dport: Some(port) });
                let (from, to, address) = (from.clone(), to.clone(), target.address);
                probes.push(Probe {
                    flow: "undeclared".into(),
                    from,
                    to,
                    address,
                    port,
                    proto,
                    expected: verdict.passes,
                    dns: None,
                    tls: None,
                });
            }
        }
    }
    let identity = |p: &Probe| {
        (
            p.from.clone(),
            p.to.clone(),
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

/// Whether a probe source is one of the lab's kinds of namespace.
fn endpoints_known(key: &str) -> bool {
    key == "host" || key == "outside" || key.starts_with("guest-")
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
