//! The lab, as data: the network namespaces that stand for the Proxmox host, each guest with a
//! static address and an outside client, joined by one bridge in a namespace of its own; the
//! nftables ruleset of each (compiled from the same Proxmox firewall files the evaluator reads);
//! the ports each namespace listens on (every hop's destination); and the probes, one per hop,
//! each with the verdict the static analysis gives. phoenix-lab builds and probes it. Pure.

pub mod nft;

use crate::analyze::firewall::{evaluate, Endpoint, FirewallState, Packet};
use crate::analyze::flows::{Flow, EXTERNAL_CLIENT};
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

/// The lab for `model`, its firewall as `state` says, probing every hop of `flows` whose ends
/// are in the lab.
pub fn spec(model: &Model, state: &FirewallState, flows: &[Flow]) -> LabSpec {
    let prefix = model.host.subnet.as_ref().map(|s| s.value.prefix_len()).unwrap_or(24);
    let bridge = model.host.bridge.clone().unwrap_or_else(|| "vmbr0".into());
    let mut namespaces: BTreeMap<String, Namespace> = BTreeMap::new();
    let mut add = |key: String, iface: &str, address: Ipv4Addr, ruleset: String| {
        namespaces.insert(
            key.clone(),
            Namespace { key, iface: iface.to_string(), address, prefix, ruleset, tcp: BTreeSet::new(), udp: BTreeSet::new() },
        );
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
    let mut probes = Vec::new();
    for flow in flows {
        for hop in &flow.hops {
            let (Some(from), Some(to), Some(address)) = (key(hop.from), key(hop.to), v4(model, hop.to)) else { continue };
            if !namespaces.contains_key(&from) || !namespaces.contains_key(&to) {
                continue;
            }
            let verdict = evaluate(state, model, hop.from, hop.to, Packet { proto: hop.proto, dport: Some(hop.port) });
            let target = namespaces.get_mut(&to).expect("checked above");
            if hop.proto == 17 {
                target.udp.insert(hop.port);
            } else {
                target.tcp.insert(hop.port);
            }
            probes.push(Probe { flow: flow.id.clone(), from, to, address, port: hop.port, proto: hop.proto, expected: verdict.passes });
        }
    }
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
                let verdict = evaluate(state, model, *source, endpoints[to], Packet { proto, dport: Some(port) });
                let address = target.address;
                probes.push(Probe {
                    flow: "undeclared".into(),
                    from: from.clone(),
                    to: to.clone(),
                    address,
                    port,
                    proto,
                    expected: verdict.passes,
                });
            }
        }
    }
    // Declared hops first in each group, so dedup keeps their flow name.
    probes.sort_by(|a, b| {
        (&a.from, &a.to, a.port, a.proto, a.flow == "undeclared").cmp(&(&b.from, &b.to, b.port, b.proto, b.flow == "undeclared"))
    });
    probes.dedup_by(|a, b| (&a.from, &a.to, a.port, a.proto) == (&b.from, &b.to, b.port, b.proto));
    LabSpec { namespaces: namespaces.into_values().collect(), probes }
}

/// Guests of the model the lab leaves out (no static address: DHCP, templates without one).
pub fn left_out(model: &Model) -> Vec<GuestId> {
    model.guests.values().filter(|g| g.address().is_none()).map(|g| g.id).collect()
}
