//! DNS records of the era whose configuration declares its authoritative zones empty (from
//! mid-November 2025): the original's `hypervisor_feature_setup_dns_server.sh` then generated
//! every record from the guests and the stacks, the first record of a name winning
//! (`unique_by(.hostname)`). The script changed twice within its version 12.0.0; the
//! configuration says which one ran:
//!
//! **Before the internal bridge** (the script at 0385ea2):
//! 1. each `Host(...)` of a router rule in a stack's production labels, at the gateway;
//! 2. each container's `traefik_service` as `<name>.<domain>`, at the container (the name
//!    `ca` at 10.0.0.10, written into the script);
//! 3. each VM's `traefik_service`, at the gateway (`portainer-agent` at the VM);
//! 4. each guest's own name, lower case, at the guest (VMs with a static address only);
//! 5. each agent's `portainer_agent_hostname`, at the VM;
//! 6. `portainer.<domain>` and `traefik.<domain>`, at the gateway.
//!
//! **With `network.internal_bridge`** (the script at 35c465b, the internal mesh):
//! 1. stack router labels, 2. container and 3. VM `traefik_service`s, 4. `portainer.` and
//!    `traefik.<domain>`: all at Traefik;
//! 5. each container's own name (one with a static address on a NIC): Step-CA and Traefik at
//!    their first NIC, the gateway at its second, every other container at Traefik;
//! 6. each VM's own name (any with `network_config.ip`, DHCP too) and 7. each agent
//!    hostname: at Traefik.
//!
//! The script found the gateway, Traefik and Step-CA by their names (`Nginx-Phoenix`,
//! `Traefik-Internal`, `Step-CA`); phoenix takes the guests of those roles. It wrote
//! `internal.thinkheads.ai`, the users' `domain_name` of that era. Each record says what it
//! was derived from and is checked like a declared one; this module derives and judges nothing.

use crate::model::edge::rule_hosts;
use crate::model::*;
use crate::source::Span;
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

/// Where a record points: an address and the span that says so.
type Target = Option<(IpAddr, Span)>;

/// One generated record before the first-wins rule: name, its span, target, origin.
type Candidate = (String, Span, Target, String);

pub fn derive(model: &mut Model, zones_span: Span) {
    let Some(zone) = model.domain.clone() else { return };
    let mesh = model.host.bridges.iter().any(|b| b.role == BridgeRole::Internal);
    let candidates = if mesh { mesh_era(model, &zone, zones_span) } else { gateway_era(model, &zone, zones_span) };
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for (fqdn, span, target, from) in candidates {
        let Some((address, address_span)) = target else { continue };
        if seen.insert(fqdn.clone()) {
            let record = DnsRecord { fqdn, zone: zone.clone(), view: DnsView::Internal, address, span, address_span, derived: Some(from) };
            model.dns.records.push(record);
        }
    }
}

fn gateway_era(model: &Model, zone: &str, zones_span: Span) -> Vec<Candidate> {
    let gateway = role_nic(model, model.edge.gateway);
    let mut out = stack_hosts(model, gateway);
    let ca = Some((IpAddr::V4(Ipv4Addr::new(10, 0, 0, 10)), zones_span));
    for guest in by_kind(model) {
        let Some(service) = &guest.traefik_service else { continue };
        let target = match (guest.kind, service.name.value.as_str()) {
            (GuestKind::Lxc, "ca") => ca,
            (GuestKind::Lxc, _) | (GuestKind::Vm, "portainer-agent") => nic(guest, 0),
            (GuestKind::Vm, _) => gateway,
        };
        out.push(service_record(guest, service, zone, target));
    }
    for guest in by_kind(model) {
        out.push((own_name(guest, zone), guest.id_span, nic(guest, 0), format!("the name of {}", guest.label())));
    }
    out.extend(agents(model, |guest| nic(guest, 0)));
    out.extend(static_names(zone, zones_span, gateway));
    out
}

fn mesh_era(model: &Model, zone: &str, zones_span: Span) -> Vec<Candidate> {
    let traefik = role_nic(model, model.edge.traefik);
    let mut out = stack_hosts(model, traefik);
    for guest in by_kind(model) {
        if let Some(service) = &guest.traefik_service {
            out.push(service_record(guest, service, zone, traefik));
        }
    }
    out.extend(static_names(zone, zones_span, traefik));
    for guest in model.guests.values().filter(|g| g.kind == GuestKind::Lxc && g.address().is_some()) {
        let target = match Some(guest.id) {
            id if id == model.edge.step_ca || id == model.edge.traefik => nic(guest, 0),
            id if id == model.edge.gateway => nic(guest, 1),
            _ => traefik,
        };
        out.push((own_name(guest, zone), guest.id_span, target, format!("the name of {}", guest.label())));
    }
    for guest in model.guests.values().filter(|g| g.kind == GuestKind::Vm && (g.nic().address.is_some() || g.nic().dhcp)) {
        out.push((own_name(guest, zone), guest.id_span, traefik, format!("the name of {}", guest.label())));
    }
    out.extend(agents(model, |_| traefik));
    out
}

/// Containers first, then VMs, each in id order (the script read the LXC file, then the VMs).
fn by_kind(model: &Model) -> impl Iterator<Item = &Guest> {
    let of = move |kind| model.guests.values().filter(move |g| g.kind == kind);
    of(GuestKind::Lxc).chain(of(GuestKind::Vm))
}

fn stack_hosts(model: &Model, target: Target) -> Vec<Candidate> {
    let mut out = Vec::new();
    for stack in model.stacks.values() {
        let Some(production) = stack.environments.get(DEFAULT_STACK_ENVIRONMENT) else { continue };
        for label in production.services.iter().flat_map(|s| &s.labels) {
            let Some((key, rule)) = label.value.split_once('=') else { continue };
            if key.starts_with("traefik.http.routers.") && key.ends_with(".rule") {
                let from = format!("a router label of stack {}", stack.name);
                out.extend(rule_hosts(rule).into_iter().map(|host| (host, label.span, target, from.clone())));
            }
        }
    }
    out
}

fn service_record(guest: &Guest, service: &TraefikService, zone: &str, target: Target) -> Candidate {
    let fqdn = format!("{}.{zone}", service.name.value.to_ascii_lowercase());
    (fqdn, service.name.span, target, format!("the traefik_service of {}", guest.label()))
}

fn agents(model: &Model, target: impl Fn(&Guest) -> Target) -> Vec<Candidate> {
    let agents = model.guests.values().filter(|g| g.kind == GuestKind::Vm && g.portainer_role == PortainerRole::Agent);
    agents
        .filter_map(|guest| {
            let agent = guest.agent_hostname.as_ref()?;
            Some((agent.value.clone(), agent.span, target(guest), format!("the agent hostname of {}", guest.label())))
        })
        .collect()
}

fn static_names(zone: &str, zones_span: Span, target: Target) -> Vec<Candidate> {
    ["portainer", "traefik"]
        .into_iter()
        .map(|name| (format!("{name}.{zone}"), zones_span, target, "the names the script always wrote".into()))
        .collect()
}

fn own_name(guest: &Guest, zone: &str) -> String {
    format!("{}.{zone}", guest.name.to_ascii_lowercase())
}

/// The static address of a guest's NIC number `index` (what the script read from
/// `network_config` or `secondary_network_config`).
fn nic(guest: &Guest, index: usize) -> Target {
    let address = guest.nics.get(index)?.address.as_ref()?;
    Some((IpAddr::V4(address.value.addr()), address.span))
}

/// The gateway's address in the script: its second NIC when it has one, else its first; any
/// other role's first NIC.
fn role_nic(model: &Model, role: Option<GuestId>) -> Target {
    let guest = model.guests.get(&role?)?;
    let second = Some(guest.id) == model.edge.gateway && guest.nics.len() > 1;
    nic(guest, usize::from(second))
}
