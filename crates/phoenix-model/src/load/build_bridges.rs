//! The node's bridges besides its management bridge, as the original's
//! `hypervisor_feature_setup_macvlan.sh` (late November 2025) made them from `network`:
//! `vmbr0.<macvlan_vlan_tag>` and `vmbr0.<public_vlan_tag>` as VLAN interfaces of the
//! VLAN-aware `vmbr0`, and `internal_bridge.name` holding `.1` of `internal_bridge.subnet`
//! (always with prefix /24, as that script wrote it). Only what the file names is made: an
//! older file without these keys has no further bridges.

use super::build_host::cidr;
use super::Ctx;
use crate::diag::Diagnostic;
use crate::json::JsonDoc;
use crate::model::{Bridge, BridgeRole, Located};
use crate::raw::{self, StrOrNum};
use ipnet::Ipv4Net;

/// The parent of the VLAN interfaces: that script wrote `vmbr0` whatever the configuration said.
const VLAN_PARENT: &str = "vmbr0";

pub fn bridges(network: &raw::RawNetwork, doc: &JsonDoc, ctx: &mut Ctx<'_>) -> Vec<Bridge> {
    let mut out = Vec::new();
    for (key, tag) in [("macvlan_vlan_tag", &network.macvlan_vlan_tag), ("public_vlan_tag", &network.public_vlan_tag)] {
        let Some(tag) = tag else { continue };
        let span = doc.span(&format!("/network/{key}"));
        match vlan_tag(tag) {
            Some(vlan) => out.push(Bridge {
                name: format!("{VLAN_PARENT}.{vlan}"),
                role: BridgeRole::Public,
                subnet: None,
                address: None,
                vlan: Some(vlan),
                span,
            }),
            None => ctx.push(
                Diagnostic::at("PHX-SCHEMA-004", span, format!("`{tag}` is not a VLAN tag (1-4094)"))
                    .help("write the VLAN's number, e.g. 20"),
            ),
        }
    }
    if let Some(internal) = &network.internal_bridge {
        let span = doc.span("/network/internal_bridge");
        let subnet = internal.subnet.as_deref().and_then(|s| cidr(doc.span("/network/internal_bridge/subnet"), s, ctx));
        let subnet = subnet.map(|s| Located::new(s.value.trunc(), s.span));
        let address = subnet.as_ref().and_then(|s| {
            let octets = s.value.network().octets();
            let first = std::net::Ipv4Addr::new(octets[0], octets[1], octets[2], 1);
            Ipv4Net::new(first, 24).ok().map(|net| Located::new(net, s.span))
        });
        let name = internal.name.clone().unwrap_or_else(|| "vmbr100".into());
        out.push(Bridge { name, role: BridgeRole::Internal, subnet, address, vlan: None, span });
    }
    out
}

fn vlan_tag(value: &StrOrNum) -> Option<u16> {
    value.to_string().trim().parse::<u16>().ok().filter(|t| (1..=4094).contains(t))
}
