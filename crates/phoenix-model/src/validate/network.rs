//! Addresses of every NIC: duplicate IPs and MACs, addresses outside the subnet of their
//! bridge, gateways outside their network.

use crate::diag::Diagnostic;
use crate::model::{Guest, Model, Nic};
use crate::source::Span;
use std::collections::HashMap;
use std::net::Ipv4Addr;

pub fn check(model: &Model) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let mut seen_ip: HashMap<Ipv4Addr, (String, Span)> = HashMap::new();
    if let Some(host) = &model.host.address {
        seen_ip.insert(host.value.addr(), ("the Proxmox host".to_string(), host.span));
    }
    let mut seen_mac: HashMap<&str, (String, Span)> = HashMap::new();
    for guest in model.guests.values() {
        for nic in &guest.nics {
            check_nic(model, guest, nic, &mut seen_ip, &mut seen_mac, &mut out);
        }
    }
    if let (Some(address), Some(gateway)) = (&model.host.address, &model.host.gateway) {
        if !address.value.trunc().contains(&gateway.value) {
            out.push(Diagnostic::at(
                "PHX-NET-004",
                gateway.span,
                format!("the host's gateway {} is outside {}", gateway.value, address.value.trunc()),
            ));
        }
    }
    out
}

type Seen<'m, K> = HashMap<K, (String, Span)>;

/// One NIC: its address unique and inside the subnet of its bridge, its gateway inside its own
/// network, its MAC unique.
fn check_nic<'m>(
    model: &'m Model,
    guest: &Guest,
    nic: &'m Nic,
    seen_ip: &mut Seen<'m, Ipv4Addr>,
    seen_mac: &mut Seen<'m, &'m str>,
    out: &mut Vec<Diagnostic>,
) {
    if let Some(address) = &nic.address {
        let ip = address.value.addr();
        match seen_ip.get(&ip) {
            Some((owner, first)) => out.push(
                Diagnostic::at("PHX-NET-001", address.span, format!("{ip} of {} is already used by {owner}", guest.label()))
                    .related(*first, "first used here")
                    .help("give each guest its own address"),
            ),
            None => {
                seen_ip.insert(ip, (guest.label(), address.span));
            }
        }
        if let Some(subnet) = model.host.subnet_of(nic.bridge.as_deref()) {
            if !subnet.value.contains(&ip) {
                out.push(
                    Diagnostic::at(
                        "PHX-NET-003",
                        address.span,
                        format!("{ip} of {} is outside the subnet {}", guest.label(), subnet.value),
                    )
                    .related(subnet.span, "subnet declared here"),
                );
            }
        }
        if let Some(gateway) = &nic.gateway {
            if !address.value.trunc().contains(&gateway.value) {
                out.push(Diagnostic::at(
                    "PHX-NET-004",
                    gateway.span,
                    format!("gateway {} of {} is outside its subnet {}", gateway.value, guest.label(), address.value.trunc()),
                ));
            }
        }
    }
    if let Some(mac) = &nic.mac {
        match seen_mac.get(mac.value.as_str()) {
            Some((owner, first)) => out.push(
                Diagnostic::at("PHX-NET-002", mac.span, format!("MAC {} of {} is already used by {owner}", mac.value, guest.label()))
                    .related(*first, "first used here"),
            ),
            None => {
                seen_mac.insert(&mac.value, (guest.label(), mac.span));
            }
        }
    }
}
