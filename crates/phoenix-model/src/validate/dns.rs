//! DNS records: addresses no one owns, one name with two addresses, names of services that
//! point at a guest which does not serve them, and names sent to the gateway without a route.
//!
//! Who serves a name, most explicit first: a guest's own `hostnames`, a Portainer agent's
//! hostname, Step-CA's dns_name, Traefik's own name (`traefik.<zone>`); then a Traefik route
//! (served through the gateway); then a guest's own name (`<name>.<zone>`, as the original's
//! DNS script generated it).

use crate::diag::Diagnostic;
use crate::model::edge::{routes, Route};
use crate::model::*;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Why a name should resolve to a guest.
struct Expectation {
    guest: GuestId,
    /// Another guest that serves it as well: Traefik itself, for a name it routes (the
    /// original's internal-mesh DNS sent those names to Traefik, past the gateway).
    also: Option<GuestId>,
    why: String,
}

/// The zones of derived records, whose era declared none: there a guest's own name is only
/// known, not required (the internal-mesh script sent most of them to Traefik on purpose), so
/// it keeps a record at its guest from being taken for a name without a route.
fn own_names_of_derived_zones(model: &Model) -> BTreeMap<String, GuestId> {
    let zones: std::collections::BTreeSet<&str> =
        model.dns.records.iter().filter(|r| r.derived.is_some()).map(|r| r.zone.as_str()).collect();
    let mut names = BTreeMap::new();
    for guest in model.guests.values() {
        for zone in &zones {
            names.insert(format!("{}.{zone}", guest.name.to_ascii_lowercase()), guest.id);
        }
    }
    names
}

fn expectations(model: &Model, routes: &[Route]) -> BTreeMap<String, Expectation> {
    let mut expected: BTreeMap<String, Expectation> = BTreeMap::new();
    let zones: Vec<&str> = model.dns.zones.iter().map(|z| z.value.as_str()).collect();
    // Lowest priority first; later inserts win.
    for guest in model.guests.values().filter(|g| !g.is_template) {
        let label = guest.name.to_ascii_lowercase();
        for zone in &zones {
            expected.insert(
                format!("{label}.{zone}"),
                Expectation { guest: guest.id, also: None, why: format!("it is the name of {}", guest.label()) },
            );
        }
    }
    let front = model.edge.gateway.or(model.edge.traefik);
    if let Some(front) = front {
        for route in routes {
            let why = format!(
                "Traefik routes it to {}, behind the {}",
                model.guests[&route.guest].label(),
                if model.edge.gateway.is_some() { "gateway" } else { "Traefik guest" }
            );
            expected.insert(route.host.clone(), Expectation { guest: front, also: model.edge.traefik, why });
        }
    }
    if let Some(traefik) = model.edge.traefik {
        for zone in &zones {
            expected.insert(
                format!("traefik.{zone}"),
                Expectation {
                    guest: traefik,
                    also: None,
                    why: format!("it is Traefik's own name, and Traefik runs on {}", model.guests[&traefik].label()),
                },
            );
        }
    }
    if let (Some(ca), Some(name)) = (model.edge.step_ca, model.step_ca.as_ref().and_then(|s| s.dns_name.as_ref())) {
        expected.insert(
            name.value.clone(),
            Expectation {
                guest: ca,
                also: None,
                why: format!("it is step_ca.dns_name, and Step-CA runs on {}", model.guests[&ca].label()),
            },
        );
    }
    for guest in model.guests.values() {
        if let Some(agent) = &guest.agent_hostname {
            expected.insert(
                agent.value.clone(),
                Expectation {
                    guest: guest.id,
                    also: None,
                    why: format!("it is the Portainer agent hostname of {}, which Portainer reaches on port 9001", guest.label()),
                },
            );
        }
        for name in &guest.hostnames {
            expected.insert(
                name.value.clone(),
                Expectation { guest: guest.id, also: None, why: format!("{} declares it in hostnames", guest.label()) },
            );
        }
    }
    expected
}

pub fn check(model: &Model) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let index = model.address_index();
    let mut first: BTreeMap<&str, &DnsRecord> = BTreeMap::new();
    for record in &model.dns.records {
        if index.owner_of(record.address).is_none() {
            out.push(
                Diagnostic::at(
                    "PHX-DNS-001",
                    record.address_span,
                    format!(
                        "{} points at {}, which belongs to no guest, host or external system{}",
                        record.fqdn,
                        record.address,
                        record.origin()
                    ),
                )
                .help("correct the address, or declare the system under `external_systems`"),
            );
        }
        match first.get(record.fqdn.as_str()) {
            Some(earlier) if earlier.address != record.address => out.push(
                Diagnostic::at(
                    "PHX-DNS-002",
                    record.address_span,
                    format!("{} points at {} here and at {} elsewhere{}", record.fqdn, record.address, earlier.address, record.origin()),
                )
                .related(earlier.address_span, "first address"),
            ),
            Some(_) => {}
            None => {
                first.insert(&record.fqdn, record);
            }
        }
    }
    let all_routes = routes(model);
    let expected = expectations(model, &all_routes);
    let routed: std::collections::BTreeSet<&str> = all_routes.iter().map(|r| r.host.as_str()).collect();
    let own_names = own_names_of_derived_zones(model);
    let gateway_ip = model.edge.gateway.and_then(|g| model.guests[&g].address()).map(IpAddr::V4);
    for record in &model.dns.records {
        match expected.get(&record.fqdn) {
            Some(expectation) => {
                let guest = &model.guests[&expectation.guest];
                let Some(want) = guest.address().map(IpAddr::V4) else { continue };
                let also = expectation.also.and_then(|g| model.guests.get(&g)).and_then(Guest::address).map(IpAddr::V4);
                if want != record.address && also != Some(record.address) {
                    let actual = match index.owner_of(record.address) {
                        Some(Owner::Guest(g)) => g.label(),
                        Some(Owner::Host) => "the Proxmox host".to_string(),
                        Some(Owner::External(e)) => e.name.clone(),
                        None => "no known system".to_string(),
                    };
                    out.push(
                        Diagnostic::at(
                            "PHX-DNS-003",
                            record.address_span,
                            format!("{} points at {} ({actual}), but {}{}", record.fqdn, record.address, expectation.why, record.origin()),
                        )
                        .help(format!("point it at {want} ({})", guest.label())),
                    );
                }
            }
            None if Some(record.address) == gateway_ip
                && !routed.contains(record.fqdn.as_str())
                && own_names.get(&record.fqdn) != model.edge.gateway.as_ref() =>
            {
                out.push(
                    Diagnostic::at(
                        "PHX-DNS-005",
                        record.address_span,
                        format!(
                            "{} points at the gateway, but no Traefik route serves it (clients get 404){}",
                            record.fqdn,
                            record.origin()
                        ),
                    )
                    .help("add a traefik_service or stack label for it, or remove the record"),
                )
            }
            None => {}
        }
    }
    out
}
