//! The edge as hops, derived once from the model so that the NGINX and Traefik generators
//! (and, later, the analyzer) cannot disagree: for every router, the host names clients use,
//! how the gateway treats TLS, which guest, port and scheme Traefik sends to, the name it
//! checks, and the client certificate it presents. Host names defined twice are reported and
//! the first definition wins; they are never merged.
//! Must not render text or judge flows.

use phoenix_model::diag::Diagnostic;
use phoenix_model::model::edge::{route_table, router_of, Route, RouteOrigin};
use phoenix_model::model::{CertUsage, Certificate, GatewayTls, GuestId, Model, San, Scheme};
use phoenix_model::validate::duplicate_route;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// Files of a certificate as installed on its guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFiles {
    pub name: String,
    pub cert_path: String,
    pub key_path: String,
}

impl CertFiles {
    fn of(cert: &Certificate) -> Option<CertFiles> {
        Some(CertFiles { name: cert.name.clone(), cert_path: cert.cert_path.clone()?, key_path: cert.key_path.clone()? })
    }
}

/// The backend behind a router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    pub guest: GuestId,
    pub address: Ipv4Addr,
    pub port: u16,
    pub scheme: Scheme,
    /// The name Traefik sends as SNI and checks against the backend's certificate (https only).
    pub server_name: Option<String>,
    /// The certificate Traefik presents to the backend (mTLS).
    pub client_certificate: Option<CertFiles>,
    pub requires_client_certificate: bool,
}

/// One Traefik router and how the gateway treats its names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeRoute {
    /// Unique router (and service) name.
    pub name: String,
    pub hosts: Vec<String>,
    pub backend: Backend,
    pub gateway_tls: GatewayTls,
    pub origin: RouteOrigin,
}

/// A guest playing an edge role, with its address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleGuest {
    pub id: GuestId,
    pub address: Ipv4Addr,
}

/// The whole edge.
#[derive(Debug, Clone, Default)]
pub struct Edge {
    pub routes: Vec<EdgeRoute>,
    pub gateway: Option<RoleGuest>,
    pub traefik: Option<RoleGuest>,
    pub step_ca: Option<RoleGuest>,
    /// Findings: host names defined twice, routes without a usable backend.
    pub notes: Vec<Diagnostic>,
}

fn role(model: &Model, id: Option<GuestId>) -> Option<RoleGuest> {
    let id = id?;
    Some(RoleGuest { id, address: model.guests.get(&id)?.address()? })
}

/// The server certificate installed on `guest` that covers `host`, if any.
pub fn server_certificate_for<'m>(model: &'m Model, guest: GuestId, host: &str) -> Option<&'m Certificate> {
    model
        .certificates
        .iter()
        .filter(|c| c.guest.as_ref().is_some_and(|g| g.value == guest) && c.usage != CertUsage::Client)
        .find(|c| covers(c, host))
}

/// Whether a certificate's names cover `host` (exact, or a one-label wildcard).
pub fn covers(cert: &Certificate, host: &str) -> bool {
    let names = std::iter::once(cert.common_name.value.as_str()).chain(cert.sans.iter().filter_map(|s| match &s.value {
        San::Dns(name) => Some(name.as_str()),
        San::Ip(_) => None,
    }));
    names.into_iter().any(|name| match name.strip_prefix("*.") {
        Some(suffix) => host.split_once('.').is_some_and(|(_, rest)| rest == suffix),
        None => name == host,
    })
}

/// Derives the edge from the model.
pub fn edge(model: &Model) -> Edge {
    let mut out = Edge {
        gateway: role(model, model.edge.gateway),
        traefik: role(model, model.edge.traefik),
        step_ca: role(model, model.edge.step_ca),
        ..Edge::default()
    };
    let table = route_table(model);
    out.notes.extend(table.duplicates.iter().map(|(later, first)| duplicate_route(later, first)));
    let mut grouped: Vec<(String, String, Vec<Route>)> = Vec::new();
    for route in table.kept {
        let (key, name) = router_of(&route, model);
        match grouped.iter_mut().find(|(k, _, _)| *k == key) {
            Some((_, _, routes)) => routes.push(route),
            None => grouped.push((key, name, vec![route])),
        }
    }
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    for (_, name, group) in grouped {
        let first = &group[0];
        let guest = &model.guests[&first.guest];
        let (Some(address), Some(port)) = (guest.address(), first.port) else { continue };
        let service = guest.traefik_service.as_ref().filter(|_| first.origin == RouteOrigin::Service);
        let client_certificate = service
            .and_then(|s| s.client_certificate.as_ref())
            .and_then(|wanted| model.certificates.iter().find(|c| c.name == wanted.value))
            .and_then(CertFiles::of);
        let count = names.entry(name.clone()).or_default();
        *count += 1;
        let unique = if *count == 1 { name } else { format!("{name}-{count}") };
        out.routes.push(EdgeRoute {
            name: unique,
            hosts: group.iter().map(|r| r.host.clone()).collect(),
            backend: Backend {
                guest: guest.id,
                address,
                port,
                scheme: first.scheme,
                server_name: (first.scheme == Scheme::Https)
                    .then(|| service.and_then(|s| s.server_name.clone()).unwrap_or_else(|| first.host.clone())),
                client_certificate,
                requires_client_certificate: service.is_some_and(|s| s.requires_client_certificate),
            },
            gateway_tls: service.map_or(GatewayTls::Terminate, |s| s.gateway_tls),
            origin: first.origin.clone(),
        });
    }
    out
}
