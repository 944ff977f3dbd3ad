//! Addresses outside rules and records (those are `firewall`'s and `dns`'s): resolvers of the
//! host, of each guest NIC and of each compose service (`dns`) that nobody owns or that are a guest running no DNS server,
//! certificate IP SANs that are not their guest's, and mounts of persistent-data folders of
//! guests that do not exist. Each broke the users' system once after a renumbering.

use crate::diag::Diagnostic;
use crate::model::*;
use crate::paths::persistent_data_guest;
use crate::source::Span;
use std::net::IpAddr;

pub fn check(model: &Model) -> Vec<Diagnostic> {
    let index = model.address_index();
    let mut out = Vec::new();
    let host_resolvers = model.host.nameservers.iter().map(|ns| ("the Proxmox host".to_string(), ns));
    let guest_resolvers = model.guests.values().flat_map(|g| {
        g.nics.iter().flat_map(move |nic| nic.nameservers.iter().map(move |ns| (format!("{} ({})", g.label(), nic.key()), ns)))
    });
    for (who, resolver) in host_resolvers.chain(guest_resolvers) {
        out.extend(resolver_problem(model, &index, &who, resolver));
    }
    // A compose service's `dns` is the resolver Docker gives that container.
    for stack in model.stacks.values() {
        let Some(compose) = &stack.compose else { continue };
        for service in compose.services() {
            for resolver in service.dns().into_iter().filter_map(|text| text.parse().ok()) {
                let who = format!("service {} of stack {}", service.name, stack.name);
                out.extend(resolver_problem(model, &index, &who, &Located::new(resolver, compose.relative.span)));
            }
        }
    }
    for certificate in &model.certificates {
        out.extend(foreign_ip_sans(model, &index, certificate));
    }
    for guest in model.guests.values() {
        out.extend(mounts_of_missing_guests(model, guest));
    }
    out
}

/// Addresses that stay on the LAN: an owner is expected for them (a public resolver is not ours).
fn local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xfe00) == 0xfc00,
    }
}

/// Whether the system at `owner` answers DNS: the guest phoenix's DNS runs on (the host when
/// none) or any external system (phoenix cannot know what those run).
fn serves_dns(model: &Model, owner: &Owner<'_>) -> bool {
    match owner {
        Owner::Guest(guest) => model.edge.dns == Some(guest.id),
        Owner::Host => model.edge.dns.is_none(),
        Owner::External(_) => true,
    }
}

/// PHX-ADDR-001.
fn resolver_problem(model: &Model, index: &AddressIndex<'_>, who: &str, resolver: &Located<IpAddr>) -> Option<Diagnostic> {
    let ip = resolver.value;
    let router = model.host.gateway.as_ref().is_some_and(|g| IpAddr::V4(g.value) == ip);
    if !local(ip) || router {
        return None;
    }
    let problem = match index.owner_of(ip) {
        None => "which belongs to no guest, host or external system".to_string(),
        Some(owner) if model.dns.enabled && !serves_dns(model, &owner) => {
            let name = match owner {
                Owner::Guest(g) => g.label(),
                _ => "the Proxmox host".to_string(),
            };
            format!("which is {name}, and phoenix's DNS server runs elsewhere")
        }
        Some(_) => return None,
    };
    let dns_at = match model.edge.dns.and_then(|id| model.guests.get(&id)) {
        Some(guest) => guest.address().map_or_else(|| guest.label(), |a| a.to_string()),
        None => model.host.ip().map_or_else(|| "the Proxmox host".to_string(), |a| a.to_string()),
    };
    Some(
        Diagnostic::at("PHX-ADDR-001", resolver.span, format!("{who} resolves names through {ip}, {problem}"))
            .help(format!("name the DNS server phoenix runs ({dns_at}), or declare the resolver under `external_systems`")),
    )
}

/// PHX-ADDR-002: an IP SAN that another system (or none) answers at, so the certificate can
/// never match a client that connects to it there.
fn foreign_ip_sans(model: &Model, index: &AddressIndex<'_>, certificate: &Certificate) -> Vec<Diagnostic> {
    let Some(guest) = certificate.guest.as_ref().and_then(|g| model.guests.get(&g.value)) else { return Vec::new() };
    certificate
        .sans
        .iter()
        .filter_map(|san| {
            let San::Ip(ip) = san.value else { return None };
            // Loopback is every system's own (a client on the guest itself); a public address
            // may be the guest's behind NAT: only LAN addresses have an owner to compare.
            if !local(ip) {
                return None;
            }
            let actual = match index.owner_of(ip) {
                Some(Owner::Guest(owner)) if owner.id == guest.id => return None,
                Some(Owner::Guest(owner)) => format!("{}'s", owner.label()),
                Some(Owner::Host) => "the Proxmox host's".to_string(),
                Some(Owner::External(e)) => format!("{}'s", e.name),
                None => "no known system's".to_string(),
            };
            Some(
                Diagnostic::at(
                    "PHX-ADDR-002",
                    san.span,
                    format!("certificate {} for {} names IP {ip}, which is {actual}", certificate.name, guest.label()),
                )
                .help(format!("use the guest's own address{}", guest.address().map_or(String::new(), |a| format!(" ({a})")))),
            )
        })
        .collect()
}

/// PHX-ADDR-003: a bind mount of `.../lxc-persistent-data/<id>` or `vm-persistent-data/<id>`
/// for an id no guest of that kind has.
fn mounts_of_missing_guests(model: &Model, guest: &Guest) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for mount in &guest.spec.mounts {
        let MountSource::Bind(host) = &mount.source else { continue };
        let Some((id, kind)) = persistent_data_guest(&host.value) else { continue };
        if model.guests.get(&id).is_some_and(|g| g.kind == kind) {
            continue;
        }
        out.push(missing_guest_mount(guest, host.span, id, kind));
    }
    out
}

fn missing_guest_mount(guest: &Guest, span: Span, id: GuestId, kind: GuestKind) -> Diagnostic {
    Diagnostic::at(
        "PHX-ADDR-003",
        span,
        format!("{} mounts the persistent-data folder of {} {id}, which does not exist", guest.label(), kind.label()),
    )
    .help(format!("mount the folder of the guest meant (its own is {}-persistent-data/{})", guest.kind.type_name(), guest.id))
}
