//! cluster.fw: cluster options, datacenter aliases and ipsets, cluster rules (host traffic
//! only) and security groups. Rules that can only concern guests are rendered where declared
//! and reported (PHX-FW-009), because moving them would change what the user wrote.

use super::{flag, rule_lines, VALIDATE};
use crate::deploy::Machine;
use crate::pve_fw::{FwAlias, FwFile, FwGroup, FwIpSet, FwIpSetEntry};
use crate::render::{Rendered, RenderedFile};
use phoenix_model::model::Model;
use phoenix_model::pve::addresses;

pub const PATH: &str = phoenix_model::paths::CLUSTER_FW;

pub fn render(model: &Model, out: &mut Rendered) {
    let firewall = &model.firewall;
    let mut file = FwFile::default();
    file.options.insert("enable".into(), flag(firewall.cluster.enabled));
    file.options.insert("policy_in".into(), firewall.cluster.policy_in.as_pve().into());
    file.options.insert("policy_out".into(), firewall.cluster.policy_out.as_pve().into());
    // Addresses in the form pve-firewall reads them back (phoenix_model::pve::addresses).
    file.aliases = firewall
        .aliases
        .iter()
        .map(|(name, (net, _))| FwAlias { name: name.clone(), cidr: addresses::alias(net), comment: None })
        .collect();
    file.ipsets = firewall
        .ipsets
        .iter()
        .map(|(name, (nets, _))| FwIpSet { name: name.clone(), comment: None, entries: ipset_entries(nets) })
        .collect();
    file.rules = rule_lines(&firewall.cluster_rules);
    file.groups =
        firewall.groups.iter().map(|(name, rules)| FwGroup { name: name.clone(), comment: None, rules: rule_lines(rules) }).collect();
    out.files.push(RenderedFile::new(Machine::Host, PATH, file.to_text()).validated_by(VALIDATE));
    out.notes.extend(phoenix_model::validate::cluster_rules_for_guests(model));
}

/// An ipset's entries as pve-firewall stores them: masked, bare hosts, each once, in the
/// order its writer prints them (sorted by address text).
fn ipset_entries(nets: &[ipnet::IpNet]) -> Vec<FwIpSetEntry> {
    let cidrs: std::collections::BTreeSet<String> = nets.iter().map(addresses::ipset_entry).collect();
    cidrs.into_iter().map(|cidr| FwIpSetEntry { negated: false, cidr, comment: None }).collect()
}
