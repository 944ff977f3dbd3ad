//! dnsmasq on the DNS server (the host, unless `edge.dns_guest` names a guest): authoritative
//! for every configured zone (`local=` so unknown names in them are NXDOMAIN, not forwarded),
//! one `host-record` per name and address, the upstream resolvers, and the listen addresses.
//! Internal and external views are kept in separate, labelled blocks as the config separates them.

use super::{Machine, Rendered, RenderedFile};
use phoenix_model::model::{DnsView, Model};
use std::collections::BTreeSet;
use std::fmt::Write;
use std::net::IpAddr;

pub const PATH: &str = "/etc/dnsmasq.d/phoenix.conf";
/// Where ACME dns-01 records live while an order runs (its own file: the rendered one is
/// never touched by an order).
pub const ACME_RECORDS_PATH: &str = "/etc/dnsmasq.d/phoenix-acme.conf";
/// dnsmasq reads its whole configuration (including dnsmasq.d) and checks it.
pub const VALIDATE: &str = "dnsmasq --test";
/// dnsmasq rereads its configuration only on restart (SIGHUP reloads hosts files, not this).
pub const RELOAD: &str = "systemctl restart dnsmasq";

/// The addresses dnsmasq listens on: as configured, else the DNS server's own address and
/// its other addresses that a guest NIC names as its resolver (a guest on the internal bridge
/// asks the node at `.1` there). With `bind-interfaces`, dnsmasq answers on these only.
pub fn listen_addresses(model: &Model) -> Vec<IpAddr> {
    if !model.dns.listen_addresses.is_empty() {
        return model.dns.listen_addresses.iter().map(|a| a.value).collect();
    }
    let (own, others): (Option<std::net::Ipv4Addr>, Vec<std::net::Ipv4Addr>) = match model.edge.dns {
        Some(id) => match model.guests.get(&id) {
            Some(guest) => (guest.address(), guest.addresses().skip(1).collect()),
            None => (None, Vec::new()),
        },
        None => (model.host.ip(), model.host.bridges.iter().filter_map(|b| b.address.as_ref().map(|a| a.value.addr())).collect()),
    };
    let named: BTreeSet<IpAddr> = model.guests.values().flat_map(|g| &g.nics).flat_map(|n| &n.nameservers).map(|n| n.value).collect();
    let asked = others.into_iter().map(IpAddr::V4).filter(|a| named.contains(a) && Some(*a) != own.map(IpAddr::V4));
    own.map(IpAddr::V4).into_iter().chain(asked.collect::<BTreeSet<_>>()).collect()
}

pub fn render(model: &Model, out: &mut Rendered) {
    if !model.dns.enabled {
        return;
    }
    let mut text =
        String::from("# Rendered by phoenix from dns_server in phoenix_hypervisor_config.json. Do not edit: phoenix sync overwrites it.\n");
    text.push_str("no-resolv\nno-hosts\ndomain-needed\nbogus-priv\nbind-interfaces\n");
    for address in listen_addresses(model) {
        let _ = writeln!(text, "listen-address={address}");
    }
    for upstream in &model.dns.upstreams {
        let _ = writeln!(text, "server={}", upstream.value);
    }
    for view in [DnsView::Internal, DnsView::External] {
        let label = match view {
            DnsView::Internal => "internal",
            DnsView::External => "external",
        };
        let zones: BTreeSet<&str> = model.dns.records.iter().filter(|r| r.view == view).map(|r| r.zone.as_str()).collect();
        if zones.is_empty() {
            continue;
        }
        let _ = writeln!(text, "\n# {label} view");
        for zone in zones {
            let _ = writeln!(text, "local=/{zone}/");
            let mut seen = BTreeSet::new();
            for record in model.dns.records.iter().filter(|r| r.view == view && r.zone == zone) {
                if seen.insert((&record.fqdn, record.address)) {
                    let _ = writeln!(text, "host-record={},{}", record.fqdn, record.address);
                }
            }
        }
    }
    let target = model.edge.dns.map_or(Machine::Host, Machine::Guest);
    out.files.push(RenderedFile::new(target, PATH, text).validated_by(VALIDATE).reloaded_by(RELOAD));
}
