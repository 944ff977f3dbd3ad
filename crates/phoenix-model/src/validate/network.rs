//! Addresses: duplicate IPs and MACs, addresses and gateways outside their subnet.

use crate::diag::Diagnostic;
use crate::model::Model;
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
        if let Some(address) = &guest.nic.address {
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
            if let Some(subnet) = &model.host.subnet {
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
            if let Some(gateway) = &guest.nic.gateway {
                if !address.value.trunc().contains(&gateway.value) {
                    out.push(Diagnostic::at(
                        "PHX-NET-004",
                        gateway.span,
                        format!("gateway {} of {} is outside its subnet {}", gateway.value, guest.label(), address.value.trunc()),
                    ));
                }
            }
        }
        if let Some(mac) = &guest.nic.mac {
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
