//! DNS records of the era whose configuration declares its authoritative zones empty (from
//! mid-November 2025): the original's `hypervisor_feature_setup_dns_server.sh` (version 12)
//! then generated every record from the guests and the stacks, in this order, the first
//! record of a name winning (`unique_by(.hostname)`):
//! 1. each `Host(...)` of a router rule in a stack's production labels, at the gateway;
//! 2. each container's `traefik_service` as `<name>.<domain>`, at the container (the
//!    name `ca` at 10.0.0.10, written into the script);
//! 3. each VM's `traefik_service`, at the gateway (`portainer-agent` at the VM);
//! 4. each guest's own name, lower case, at the guest (VMs with a static address only);
//! 5. each agent's `portainer_agent_hostname`, at the VM;
//! 6. `portainer.<domain>` and `traefik.<domain>`, at the gateway.
//!
//! The script wrote `internal.thinkheads.ai`, the users' `domain_name` of that era. Each record says what it was derived from, and is checked like a declared
//! one; this module derives and judges nothing.

use crate::model::edge::rule_hosts;
use crate::model::*;
use crate::source::Span;
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

/// Where the generator's records point: an address and the span that says so.
type Target = (IpAddr, Span);

pub fn derive(model: &mut Model, zones_span: Span) {
    let Some(zone) = model.domain.clone() else { return };
    let gateway = model.edge.gateway.and_then(|id| first_nic(&model.guests[&id]));
    let mut records: Vec<DnsRecord> = Vec::new();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut add = |fqdn: String, span: Span, target: Option<Target>, from: String| {
        let Some((address, address_span)) = target else { return };
        if seen.insert(fqdn.clone()) {
            let zone = zone.clone();
            records.push(DnsRecord { fqdn, zone, view: DnsView::Internal, address, span, address_span, derived: Some(from) });
        }
    };
    for stack in model.stacks.values() {
        let Some(production) = stack.environments.get(DEFAULT_STACK_ENVIRONMENT) else { continue };
        for label in production.services.iter().flat_map(|s| &s.labels) {
            let Some((key, rule)) = label.value.split_once('=') else { continue };
            if key.starts_with("traefik.http.routers.") && key.ends_with(".rule") {
                for host in rule_hosts(rule) {
                    add(host, label.span, gateway, format!("a router label of stack {}", stack.name));
                }
            }
        }
    }
    let ca = (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 10)), zones_span);
    for kind in [GuestKind::Lxc, GuestKind::Vm] {
        for guest in model.guests.values().filter(|g| g.kind == kind) {
            let Some(service) = &guest.traefik_service else { continue };
            let target = match (kind, service.name.value.as_str()) {
                (GuestKind::Lxc, "ca") => Some(ca),
                (GuestKind::Lxc, _) | (GuestKind::Vm, "portainer-agent") => first_nic(guest),
                (GuestKind::Vm, _) => gateway,
            };
            let fqdn = format!("{}.{zone}", service.name.value.to_ascii_lowercase());
            add(fqdn, service.name.span, target, format!("the traefik_service of {}", guest.label()));
        }
    }
    for kind in [GuestKind::Lxc, GuestKind::Vm] {
        for guest in model.guests.values().filter(|g| g.kind == kind) {
            let fqdn = format!("{}.{zone}", guest.name.to_ascii_lowercase());
            add(fqdn, guest.id_span, first_nic(guest), format!("the name of {}", guest.label()));
        }
    }
    for guest in model.guests.values().filter(|g| g.kind == GuestKind::Vm && g.portainer_role == PortainerRole::Agent) {
        if let Some(agent) = &guest.agent_hostname {
            add(agent.value.clone(), agent.span, first_nic(guest), format!("the agent hostname of {}", guest.label()));
        }
    }
    for name in ["portainer", "traefik"] {
        add(format!("{name}.{zone}"), zones_span, gateway, "the names the script always wrote".to_string());
    }
    model.dns.records.extend(records);
}

/// The address the script read (`.network_config.ip`): the first NIC's, when static.
fn first_nic(guest: &Guest) -> Option<Target> {
    guest.nic().address.as_ref().map(|a| (IpAddr::V4(a.value.addr()), a.span))
}
