//! The flows a configuration implies, each a chain of hops: clients through DNS, the gateway and
//! Traefik to every routed backend; ACME between Traefik, the gateway and Step-CA (and, in
//! `challenges`, Step-CA's validation of each certificate phoenix orders); Portainer to
//! its agents; every guest to the DNS server; NFS clients to the NFS server.
//! Must not judge: verdicts are computed in `assess`.

use super::firewall::Endpoint;
use crate::edge::{Edge, EdgeRoute};
use phoenix_model::model::{GatewayTls, Model, PortainerRole, Scheme};
use serde::Serialize;
use std::net::{IpAddr, Ipv4Addr};

pub const TCP: u8 = 6;
pub const UDP: u8 = 17;

/// A client outside the node, for flows "from anywhere" (TEST-NET-3: documentation only, never contacted).
pub const EXTERNAL_CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 10));

/// What TLS on a hop should look like.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlsHop {
    /// The name sent as SNI and checked against the certificate.
    pub server_name: String,
    /// The guest presenting the server certificate.
    pub server: u32,
    /// False when the hop carries a TLS stream another hop already judged (passthrough).
    pub terminated_here: bool,
    /// Where TLS ends, for people: "terminated at the gateway", "passed through the gateway to Traefik".
    pub mode: String,
    /// Whether the connecting side verifies the server certificate at all.
    pub verified: bool,
    /// Name of the certificate the client presents (mTLS), if any.
    pub client_certificate: Option<String>,
    pub client_certificate_required: bool,
    /// Whether the hop is where mutual TLS is in question (a proxy to its backend), so the
    /// verdict states whether there is any.
    pub mutual_in_question: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hop {
    pub from: Endpoint,
    pub to: Endpoint,
    /// The DNS name the connecting side uses for `to`, when it uses one.
    pub name: Option<String>,
    pub port: u16,
    pub proto: u8,
    /// e.g. "HTTPS (TCP/443)".
    pub protocol: String,
    pub purpose: String,
    pub tls: Option<TlsHop>,
    /// Why nothing at `to` does what the hop is for (no one there answers phoenix's ACME
    /// challenge), when the flow's shape already shows it; `assess` fails the hop with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dead_end: Option<String>,
    /// When the hop works only under a condition the configuration cannot show (the gateway
    /// relaying the challenge of its own certificate works once it runs); a warning in `assess`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caveat: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Flow {
    pub id: String,
    pub title: String,
    pub hops: Vec<Hop>,
}

fn protocol(name: &str, proto: u8, port: u16) -> String {
    format!("{name} ({}/{port})", if proto == UDP { "UDP" } else { "TCP" })
}

pub(super) fn hop(
    from: Endpoint,
    to: Endpoint,
    name: Option<&str>,
    port: u16,
    proto: u8,
    label: &str,
    purpose: String,
    tls: Option<TlsHop>,
) -> Hop {
    Hop { from, to, name: name.map(str::to_string), port, proto, protocol: protocol(label, proto, port), purpose, tls, dead_end: None, caveat: None }
}

/// Client -> gateway -> Traefik -> backend for one host name of one route.
fn route_flow(model: &Model, edge: &Edge, route: &EdgeRoute, host: &str, client: Endpoint, client_label: &str) -> Option<Flow> {
    let gateway = edge.gateway?;
    let traefik = edge.traefik?;
    let backend = &route.backend;
    let backend_name = model.guests.get(&backend.guest).map_or(String::new(), |g| g.label());
    let passthrough = route.gateway_tls == GatewayTls::Passthrough;
    let mut hops = vec![hop(
        client,
        Endpoint::Guest(gateway.id),
        Some(host),
        443,
        TCP,
        "HTTPS",
        format!("{client_label} opens https://{host}/"),
        Some(TlsHop {
            server_name: host.to_string(),
            server: if passthrough { traefik.id } else { gateway.id },
            terminated_here: true,
            mode: if passthrough { "passed through the gateway, terminated at Traefik".into() } else { "terminated at the gateway".into() },
            verified: true,
            client_certificate: None,
            client_certificate_required: false,
            mutual_in_question: false,
        }),
    )];
    hops.push(hop(
        Endpoint::Guest(gateway.id),
        Endpoint::Guest(traefik.id),
        None,
        443,
        TCP,
        "HTTPS",
        if passthrough {
            format!("the gateway passes the TLS stream for {host} to Traefik")
        } else {
            format!("the gateway forwards the request for {host} to Traefik")
        },
        Some(TlsHop {
            server_name: host.to_string(),
            server: traefik.id,
            terminated_here: !passthrough,
            mode: if passthrough {
                "the client's TLS stream, passed through untouched".into()
            } else {
                "a new TLS connection, terminated at Traefik".into()
            },
            verified: true,
            client_certificate: None,
            client_certificate_required: false,
            mutual_in_question: false,
        }),
    ));
    let scheme_label = if backend.scheme == Scheme::Https { "HTTPS" } else { "HTTP" };
    let tls = (backend.scheme == Scheme::Https).then(|| TlsHop {
        server_name: backend.server_name.clone().unwrap_or_else(|| host.to_string()),
        server: backend.guest,
        terminated_here: true,
        mode: "a new TLS connection, terminated at the backend".into(),
        verified: true,
        client_certificate: backend.client_certificate.as_ref().map(|c| c.name.clone()),
        client_certificate_required: backend.requires_client_certificate,
        mutual_in_question: true,
    });
    hops.push(hop(
        Endpoint::Guest(traefik.id),
        Endpoint::Guest(backend.guest),
        None,
        backend.port,
        TCP,
        scheme_label,
        format!("Traefik routes {host} to {backend_name}"),
        tls,
    ));
    let id = format!("route:{host}:{}", if client == Endpoint::Host { "host" } else { "external" });
    Some(Flow { id, title: format!("{client_label} to {host}"), hops })
}

/// Every flow the configuration implies, in a stable order.
pub fn flows(model: &Model, edge: &Edge) -> Vec<Flow> {
    let mut out = Vec::new();
    let portainer_host = model.portainer.as_ref().and_then(|p| p.hostname.as_ref()).map(|h| h.value.clone());
    for route in &edge.routes {
        for host in &route.hosts {
            let label =
                if portainer_host.as_deref() == Some(host) { "the Proxmox host (phoenix, Portainer API)" } else { "the Proxmox host" };
            out.extend(route_flow(model, edge, route, host, Endpoint::Host, label));
            out.extend(route_flow(model, edge, route, host, Endpoint::Outside(EXTERNAL_CLIENT), "an external client"));
        }
    }
    acme_flows(model, edge, &mut out);
    super::challenges::challenge_flows(model, edge, &mut out);
    portainer_flows(model, &mut out);
    dns_flows(model, &mut out);
    nfs_flows(model, &mut out);
    declared_flows(model, &mut out);
    out
}

/// Flows the user declared under `flows`; endpoints that name nothing are skipped here
/// (the configuration's own check reports nothing for them, so they appear as a flow without hops).
fn declared_flows(model: &Model, out: &mut Vec<Flow>) {
    for (i, flow) in model.flows.iter().enumerate() {
        let endpoints = (super::firewall::parse_endpoint(model, &flow.from), super::firewall::parse_endpoint(model, &flow.to));
        let hops = match endpoints {
            (Ok(from), Ok(to)) => vec![hop(from, to, flow.name.as_deref(), flow.port, flow.proto, "declared", flow.title.clone(), None)],
            _ => Vec::new(),
        };
        out.push(Flow { id: format!("declared:{i}"), title: flow.title.clone(), hops });
    }
}

fn acme_flows(model: &Model, edge: &Edge, out: &mut Vec<Flow>) {
    let (Some(ca), Some(step)) = (edge.step_ca, model.step_ca.as_ref()) else { return };
    let ca_name = step.dns_name.as_ref().map(|n| n.value.clone());
    let tls = || {
        ca_name.clone().map(|name| TlsHop {
            server_name: name,
            server: ca.id,
            terminated_here: true,
            mode: "terminated at Step-CA".into(),
            verified: true,
            client_certificate: None,
            client_certificate_required: false,
            mutual_in_question: false,
        })
    };
    let order = |client: Endpoint, label: &str| {
        let purpose = format!("{label}'s ACME client talks to Step-CA's ACME directory");
        hop(client, Endpoint::Guest(ca.id), ca_name.as_deref(), step.port, TCP, "HTTPS", purpose, tls())
    };
    for (client, label) in [(edge.traefik, "Traefik"), (edge.gateway, "the NGINX gateway")] {
        let Some(client) = client else { continue };
        out.push(Flow {
            id: format!("acme:{}", client.id),
            title: format!("{label} orders certificates from Step-CA"),
            hops: vec![order(Endpoint::Guest(client.id), label)],
        });
    }
    // phoenix orders the manifest's certificates where it runs, on the node.
    if !model.certificates.is_empty() {
        out.push(Flow {
            id: "acme:host".into(),
            title: "phoenix (on the Proxmox host) orders the manifest's certificates from Step-CA".into(),
            hops: vec![order(Endpoint::Host, "phoenix")],
        });
    }
    if let (Some(gateway), Some(traefik)) = (edge.gateway, edge.traefik) {
        out.push(Flow {
            id: "acme:http-01".into(),
            title: "Step-CA validates http-01 challenges".into(),
            hops: vec![
                hop(
                    Endpoint::Guest(ca.id),
                    Endpoint::Guest(gateway.id),
                    None,
                    80,
                    TCP,
                    "HTTP",
                    "Step-CA fetches /.well-known/acme-challenge/ from the gateway".into(),
                    None,
                ),
                hop(
                    Endpoint::Guest(gateway.id),
                    Endpoint::Guest(traefik.id),
                    None,
                    80,
                    TCP,
                    "HTTP",
                    "the gateway passes the challenge to Traefik's resolver".into(),
                    None,
                ),
            ],
        });
    }
}

fn portainer_flows(model: &Model, out: &mut Vec<Flow>) {
    let port = model.portainer.as_ref().map_or(9001, |p| p.agent_port);
    let servers: Vec<_> = model.guests.values().filter(|g| g.portainer_role == PortainerRole::Primary).collect();
    for server in &servers {
        for agent in model.guests.values().filter(|g| g.portainer_role == PortainerRole::Agent) {
            let name = agent.agent_hostname.as_ref().map(|h| h.value.clone());
            // Portainer registers agents with TLSSkipVerify (their certificates are self-signed).
            let tls = Some(TlsHop {
                server_name: name.clone().unwrap_or_default(),
                server: agent.id,
                terminated_here: true,
                mode: "terminated at the agent".into(),
                verified: false,
                client_certificate: None,
                client_certificate_required: false,
                mutual_in_question: false,
            });
            out.push(Flow {
                id: format!("portainer:{}:{}", server.id, agent.id),
                title: format!("Portainer ({}) drives its agent on {}", server.label(), agent.label()),
                hops: vec![hop(
                    Endpoint::Guest(server.id),
                    Endpoint::Guest(agent.id),
                    name.as_deref(),
                    port,
                    TCP,
                    "HTTPS",
                    "Portainer deploys stacks through the agent".into(),
                    tls,
                )],
            });
        }
    }
}

/// Where phoenix's DNS server runs: the host's dnsmasq, or the guest `edge.dns` names.
pub fn dns_server(model: &Model) -> Endpoint {
    model.edge.dns.map_or(Endpoint::Host, Endpoint::Guest)
}

fn dns_flows(model: &Model, out: &mut Vec<Flow>) {
    if !model.dns.enabled {
        return;
    }
    let server = dns_server(model);
    for guest in model.guests.values().filter(|g| !g.is_template && g.address().is_some()) {
        if Endpoint::Guest(guest.id) == server {
            continue;
        }
        let hops = [UDP, TCP]
            .iter()
            .map(|&proto| hop(Endpoint::Guest(guest.id), server, None, 53, proto, "DNS", format!("{} resolves names", guest.label()), None))
            .collect();
        out.push(Flow { id: format!("dns:{}", guest.id), title: format!("{} asks the DNS server", guest.label()), hops });
    }
}

fn nfs_flows(model: &Model, out: &mut Vec<Flow>) {
    let index = model.address_index();
    for export in &model.nfs_exports {
        for client in &export.clients {
            let Some(guest) = index.guest(client.value) else { continue };
            out.push(Flow {
                id: format!("nfs:{}:{}", guest.id, export.path),
                title: format!("{} mounts {}", guest.label(), export.path),
                hops: vec![hop(
                    Endpoint::Guest(guest.id),
                    Endpoint::Host,
                    None,
                    2049,
                    TCP,
                    "NFS",
                    format!("NFS mount of {}", export.path),
                    None,
                )],
            });
        }
    }
}
