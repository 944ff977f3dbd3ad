//! The host side of the model from phoenix_hypervisor_config.json: host and network, the
//! host-level firewall, DNS, Step-CA, Portainer API, external systems, NFS, secrets, and the
//! edge roles.

use super::{build_rules, Ctx};
use crate::diag::Diagnostic;
use crate::json::{join, JsonDoc};
use crate::model::edge::discover_role;
use crate::model::*;
use crate::pve::fw_names::NameKind;
use crate::raw::{self, RawHypervisorConfig, SecretValue, StrOrNum};
use crate::source::Span;
use ipnet::{IpNet, Ipv4Net};
use std::net::{IpAddr, Ipv4Addr};

pub fn build(model: &mut Model, raw: &RawHypervisorConfig, doc: &JsonDoc, ctx: &mut Ctx<'_>) {
    model.domain = raw.domain_name.clone().map(|d| d.to_ascii_lowercase());
    model.host.node_name = match raw.proxmox.as_ref().and_then(|p| p.node_name.clone()) {
        Some(name) if crate::pve::names::dns_name(&name) => name,
        // The name becomes a path (/etc/pve/nodes/<node>/host.fw): an invalid one is reported
        // and never used.
        Some(name) => {
            let shown: String = name.chars().take(64).collect();
            ctx.push(
                Diagnostic::at(
                    "PHX-NAME-001",
                    doc.span("/proxmox/node_name"),
                    format!("node name `{shown}` is not a Proxmox VE node name"),
                )
                .help("a node name is a host name: letters, digits and inner hyphens (pve-node), as `hostname` prints it on the node"),
            );
            "pve".to_string()
        }
        None => "pve".to_string(),
    };
    model.host.timezone = raw.timezone.as_ref().and_then(|tz| timezone(tz, doc, ctx));
    model.software = raw.software.iter().filter_map(|(name, value)| Some((name.clone(), software(name, value, doc, ctx)?))).collect();
    model.host.api_url = raw.proxmox.as_ref().and_then(|p| p.api_url.clone());
    model.host.token_id = raw.proxmox.as_ref().and_then(|p| p.token_id.clone());
    if let Some(network) = &raw.network {
        build_network(model, network, doc, ctx);
    }
    build_nodes(model, raw.proxmox.as_ref().map_or(&[][..], |p| &p.nodes[..]), doc, ctx);
    if let Some(firewall) = &raw.firewall {
        build_firewall(model, firewall, doc, ctx);
    }
    if let Some(dns) = &raw.dns_server {
        build_dns(model, dns, doc, ctx);
    }
    build_services(model, raw, doc, ctx);
    build_flows(model, raw, doc, ctx);
    build_externals(model, raw, doc, ctx);
    if let Some(nfs) = &raw.nfs {
        for (i, export) in nfs.exports.iter().enumerate() {
            let Some(export) = export else { continue };
            let pointer = format!("/nfs/exports/{i}");
            let clients =
                export.clients.iter().enumerate().filter_map(|(j, c)| ip(doc.span(&join(&join(&pointer, "clients"), j)), c, ctx)).collect();
            let options = export
                .options
                .iter()
                .enumerate()
                .map(|(j, o)| Located { value: o.clone(), span: doc.span(&join(&join(&pointer, "options"), j)) })
                .collect();
            let path = export.path.clone().unwrap_or_default();
            model.nfs_exports.push(NfsExport { path, clients, options, span: doc.span(&pointer) });
        }
    }
}

/// The cluster's nodes: `node_name` (at the host's address) first, then `proxmox.nodes`, each
/// named once (PHX-NODE-002) with a node name (PHX-NAME-001) and an address that parses.
fn build_nodes(model: &mut Model, raw: &[raw::RawClusterNode], doc: &JsonDoc, ctx: &mut Ctx<'_>) {
    let first = ClusterNode {
        name: model.host.node_name.clone(),
        address: model.host.address.as_ref().map(|a| Located::new(a.value.addr(), a.span)),
        api_url: model.host.api_url.clone(),
        span: doc.span("/proxmox"),
    };
    model.host.nodes = vec![first];
    for (i, node) in raw.iter().enumerate() {
        let pointer = format!("/proxmox/nodes/{i}");
        let span = doc.span(&join(&pointer, "name"));
        let shown: String = node.name.chars().take(64).collect();
        if !crate::pve::names::dns_name(&node.name) {
            ctx.push(
                Diagnostic::at("PHX-NAME-001", span, format!("node name `{shown}` is not a Proxmox VE node name"))
                    .help("a node name is a host name: letters, digits and inner hyphens (pve-node), as `hostname` prints it on the node"),
            );
            continue;
        }
        if model.host.node(&node.name).is_some() {
            // The first node may be listed again (with its address): that entry adds nothing.
            if node.name != model.host.node_name {
                ctx.push(
                    Diagnostic::at("PHX-NODE-002", span, format!("node `{shown}` is listed twice"))
                        .help("name each node of the cluster once in `proxmox.nodes`"),
                );
            }
            continue;
        }
        let address = node.address.as_deref().and_then(|a| address_at(doc.span(&join(&pointer, "address")), a, "an IPv4 address", ctx));
        model.host.nodes.push(ClusterNode { name: node.name.clone(), address, api_url: node.api_url.clone(), span: doc.span(&pointer) });
    }
}

/// Parses `text` written at `span` as `what` (e.g. "an IP address"), reporting PHX-NET-005.
fn address_at<T: std::str::FromStr>(span: Span, text: &str, what: &str, ctx: &mut Ctx<'_>) -> Option<Located<T>> {
    match text.trim().parse::<T>() {
        Ok(addr) => Some(Located::new(addr, span)),
        Err(_) => {
            ctx.push(Diagnostic::at("PHX-NET-005", span, format!("`{text}` is not {what}")));
            None
        }
    }
}

pub fn ip(span: Span, text: &str, ctx: &mut Ctx<'_>) -> Option<Located<IpAddr>> {
    address_at(span, text, "an IP address", ctx)
}

pub fn ipv4(span: Span, text: &str, ctx: &mut Ctx<'_>) -> Option<Located<Ipv4Addr>> {
    address_at(span, text, "an IPv4 address", ctx)
}

/// Parses `a.b.c.d/len`, reporting PHX-NET-005 when malformed or without a prefix.
pub fn cidr(span: Span, text: &str, ctx: &mut Ctx<'_>) -> Option<Located<Ipv4Net>> {
    match text.trim().parse::<Ipv4Net>() {
        Ok(net) => Some(Located::new(net, span)),
        Err(_) => {
            let help = if text.parse::<Ipv4Addr>().is_ok() {
                "add the prefix length, e.g. /24"
            } else {
                "write an address with prefix, e.g. 10.0.0.12/24"
            };
            ctx.push(Diagnostic::at("PHX-NET-005", span, format!("`{text}` is not an IPv4 address with prefix")).help(help));
            None
        }
    }
}

pub fn port(span: Span, value: &StrOrNum, ctx: &mut Ctx<'_>) -> Option<Located<u16>> {
    match value.to_string().trim().parse::<u16>() {
        Ok(p) if p > 0 => Some(Located::new(p, span)),
        _ => {
            ctx.push(Diagnostic::at("PHX-SCHEMA-004", span, format!("`{value}` is not a port (1-65535)")));
            None
        }
    }
}

fn build_network(model: &mut Model, network: &raw::RawNetwork, doc: &JsonDoc, ctx: &mut Ctx<'_>) {
    if let Some(interface) = &network.interfaces {
        model.host.bridge = interface.name.clone();
        model.host.address = interface.address.as_deref().and_then(|a| cidr(doc.span("/network/interfaces/address"), a, ctx));
        model.host.gateway = interface.gateway.as_deref().and_then(|g| ipv4(doc.span("/network/interfaces/gateway"), g, ctx));
        if let Some(list) = &interface.dns_nameservers {
            model.host.nameservers = nameservers(doc, "/network/interfaces/dns_nameservers", list, ctx);
        }
    }
    model.host.subnet = network.default_subnet.as_deref().and_then(|s| {
        let net = cidr(doc.span("/network/default_subnet"), s, ctx)?;
        Some(Located::new(net.value.trunc(), net.span))
    });
    model.host.bridges = super::build_bridges::bridges(network, doc, ctx);
    let port_or = |value: &Option<StrOrNum>, pointer: &str, default: u16, ctx: &mut Ctx<'_>| {
        value.as_ref().and_then(|v| port(doc.span(pointer), v, ctx)).map_or(default, |p| p.value)
    };
    model.portainer = Some(PortainerApi {
        hostname: None,
        server_ip: network.portainer_server_ip.as_deref().and_then(|s| ipv4(doc.span("/network/portainer_server_ip"), s, ctx)),
        server_port: port_or(&network.portainer_server_port, "/network/portainer_server_port", 9443, ctx),
        agent_port: port_or(&network.portainer_agent_port, "/network/portainer_agent_port", 9001, ctx),
        admin_user: None,
    });
}

/// Parses a nameserver list written as a string or array.
pub fn nameservers(doc: &JsonDoc, pointer: &str, list: &raw::StrOrList, ctx: &mut Ctx<'_>) -> Vec<Located<IpAddr>> {
    let one_string = matches!(list, raw::StrOrList::One(_));
    list.items()
        .iter()
        .enumerate()
        .filter_map(|(i, item)| {
            let at = if one_string { pointer.to_string() } else { join(pointer, i) };
            ip(doc.span(&at), item, ctx)
        })
        .collect()
}

/// Parses a firewall policy written at `span` (the default when absent), reporting PHX-FW-004.
pub fn policy(span: Span, value: Option<&str>, default: Action, ctx: &mut Ctx<'_>) -> Action {
    match value {
        None => default,
        Some(text) => Action::parse(text).unwrap_or_else(|| {
            ctx.push(Diagnostic::at("PHX-FW-004", span, format!("`{text}` is not a policy")).help("use ACCEPT, DROP or REJECT"));
            default
        }),
    }
}

fn build_firewall(model: &mut Model, raw: &raw::RawFirewall, doc: &JsonDoc, ctx: &mut Ctx<'_>) {
    let defaults = ClusterOptions::default();
    model.firewall.cluster = ClusterOptions {
        enabled: raw.enabled.unwrap_or(false),
        policy_in: policy(doc.span("/firewall/default_input_policy"), raw.default_input_policy.as_deref(), defaults.policy_in, ctx),
        policy_out: policy(doc.span("/firewall/default_output_policy"), raw.default_output_policy.as_deref(), defaults.policy_out, ctx),
        span: Some(doc.key_span("/firewall")),
    };
    model.firewall.cluster_rules =
        build_rules::build_at(doc, "/firewall/global_firewall_rules", &raw.global_firewall_rules, &Scope::Cluster, ctx);
    model.firewall.host_rules = build_rules::build_at(doc, "/firewall/host_rules", &raw.host_rules, &Scope::Host, ctx);
    for (name, value) in &raw.aliases {
        let pointer = join("/firewall/aliases", name);
        firewall_name(NameKind::Alias, name, doc.key_span(&pointer), ctx);
        match value.parse::<IpNet>().or_else(|_| value.parse::<IpAddr>().map(IpNet::from)) {
            Ok(net) => {
                model.firewall.aliases.insert(name.to_ascii_lowercase(), (net, doc.span(&pointer)));
            }
            Err(_) => ctx.push(Diagnostic::at("PHX-FW-001", doc.span(&pointer), format!("alias `{name}` is not an IP or CIDR"))),
        }
    }
    for (name, entries) in &raw.ipsets {
        let pointer = join("/firewall/ipsets", name);
        firewall_name(NameKind::IpSet, name, doc.key_span(&pointer), ctx);
        let mut nets = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            match entry.parse::<IpNet>().or_else(|_| entry.parse::<IpAddr>().map(IpNet::from)) {
                Ok(net) => nets.push(net),
                Err(_) => ctx.push(Diagnostic::at(
                    "PHX-FW-001",
                    doc.span(&join(&pointer, i)),
                    format!("ipset entry `{entry}` is not an IP or CIDR"),
                )),
            }
        }
        model.firewall.ipsets.insert(name.to_ascii_lowercase(), (nets, doc.span(&pointer)));
    }
    for (name, rules) in &raw.security_groups {
        let pointer = join("/firewall/security_groups", name);
        firewall_name(NameKind::SecurityGroup, name, doc.key_span(&pointer), ctx);
        // pve-firewall reads group names in lower case (generic_fw_config_parser).
        let lower = name.to_ascii_lowercase();
        let scope = Scope::Group(lower.clone());
        let built = build_rules::build_at(doc, &pointer, rules, &scope, ctx);
        if model.firewall.groups.insert(lower.clone(), built).is_some() {
            ctx.push(
                Diagnostic::at(
                    "PHX-FW-011",
                    doc.key_span(&pointer),
                    format!("security group `{name}` is `{lower}` to pve-firewall, like another one"),
                )
                .help("give the groups names that differ in more than case"),
            );
        }
    }
}

/// PHX-FW-011 for a name pve-firewall refuses.
fn firewall_name(kind: NameKind, name: &str, span: Span, ctx: &mut Ctx<'_>) {
    if let Some(problem) = crate::pve::fw_names::refusal(kind, name) {
        ctx.push(
            Diagnostic::at("PHX-FW-011", span, problem)
                .help("a letter, then letters, digits, `-` or `_`; see `phoenix explain PHX-FW-011`"),
        );
    }
}

fn build_dns(model: &mut Model, raw: &raw::RawDnsServer, doc: &JsonDoc, ctx: &mut Ctx<'_>) {
    model.dns.enabled = raw.enabled.unwrap_or(false);
    model.dns.upstreams = raw
        .upstream_servers
        .iter()
        .enumerate()
        .filter_map(|(i, s)| ip(doc.span(&join("/dns_server/upstream_servers", i)), s, ctx))
        .collect();
    if let Some(listen) = &raw.listen_addresses {
        model.dns.listen_addresses =
            listen.iter().enumerate().filter_map(|(i, s)| ip(doc.span(&join("/dns_server/listen_addresses", i)), s, ctx)).collect();
    }
    for (z, zone) in raw.authoritative_zones.iter().enumerate() {
        let Some(zone) = zone else { continue };
        let zone_pointer = join("/dns_server/authoritative_zones", z);
        let Some(zone_name) = zone.zone_name.as_deref().map(|n| n.trim_end_matches('.').to_ascii_lowercase()) else {
            continue;
        };
        if !valid_dns_name(&zone_name) {
            ctx.push(Diagnostic::at(
                "PHX-DNS-004",
                doc.span(&join(&zone_pointer, "zone_name")),
                format!("`{zone_name}` is not a valid DNS name"),
            ));
            continue;
        }
        model.dns.zones.push(Located::new(zone_name.clone(), doc.span(&join(&zone_pointer, "zone_name"))));
        for (r, record) in zone.records.iter().enumerate() {
            let Some(record) = record else { continue };
            let pointer = join(&join(&zone_pointer, "records"), r);
            build_record(model, doc, &pointer, &zone_name, record, ctx);
        }
    }
}

fn build_record(model: &mut Model, doc: &JsonDoc, pointer: &str, zone: &str, record: &raw::RawRecord, ctx: &mut Ctx<'_>) {
    let Some(label) = record.hostname.as_deref() else {
        return;
    };
    let label = label.trim_end_matches('.').to_ascii_lowercase();
    let fqdn = if label == "@" { zone.to_string() } else { format!("{label}.{zone}") };
    if !valid_dns_name(&fqdn) {
        ctx.push(Diagnostic::at("PHX-DNS-004", doc.span(&join(pointer, "hostname")), format!("`{fqdn}` is not a valid DNS name")));
        return;
    }
    let views = [("ip_internal", DnsView::Internal, &record.ip_internal), ("ip_external", DnsView::External, &record.ip_external)];
    let mut any = false;
    for (field, view, value) in views {
        let (field, value) = match (value, &record.ip) {
            (Some(v), _) => (field, v),
            (None, Some(v)) => ("ip", v),
            (None, None) => continue,
        };
        any = true;
        let at = join(pointer, field);
        match value.trim().parse::<IpAddr>() {
            Ok(address) => model.dns.records.push(DnsRecord {
                fqdn: fqdn.clone(),
                zone: zone.to_string(),
                view,
                address,
                derived: None,
                span: doc.span(pointer),
                address_span: doc.span(&at),
            }),
            Err(_) => ctx.push(Diagnostic::at("PHX-DNS-004", doc.span(&at), format!("`{value}` is not an IP address"))),
        }
    }
    if !any {
        ctx.push(
            Diagnostic::at("PHX-DNS-004", doc.span(pointer), format!("record `{fqdn}` has no address"))
                .help("add ip_internal, ip_external or ip"),
        );
    }
}

/// RFC 1123 host name (labels of letters, digits and hyphens; a leading `*.` wildcard allowed).
pub fn valid_dns_name(name: &str) -> bool {
    let name = name.strip_prefix("*.").unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

/// Records a secret site; a literal's span is masked so it is never shown.
pub fn secret(model: &mut Model, doc: &JsonDoc, pointer: &str, what: &str, value: &SecretValue, ctx: &mut Ctx<'_>) {
    let span = doc.span(pointer);
    let reference = match value {
        SecretValue::Env { env } => {
            ctx.probe_env(env);
            SecretRef::Env(env.clone())
        }
        SecretValue::File { file } => {
            // One rule for validate and sync: a relative path is the configuration folder's,
            // and it must stay in the installation's tree (its content may be sent on).
            let path = model.config_dir.join(file);
            let relative = path.strip_prefix(&model.root_dir).map(|p| p.to_string_lossy().into_owned()).unwrap_or_else(|_| file.clone());
            if super::build_stacks::outside_refused(&model.root_dir, &relative, span, what, ctx) {
                ctx.probe_file(&path);
                SecretRef::File(path.to_string_lossy().into_owned())
            } else {
                SecretRef::Refused(file.clone())
            }
        }
        SecretValue::Literal(_) => {
            ctx.sources.mark_secret(span);
            SecretRef::Literal
        }
    };
    model.secrets.push(SecretSite { what: what.to_string(), reference, span });
}

fn build_services(model: &mut Model, raw: &RawHypervisorConfig, doc: &JsonDoc, ctx: &mut Ctx<'_>) {
    if let Some(step_ca) = &raw.step_ca {
        model.step_ca = Some(StepCa {
            dns_name: step_ca.dns_name.as_ref().map(|n| Located::new(n.to_ascii_lowercase(), doc.span("/step_ca/dns_name"))),
            port: step_ca.port.as_ref().and_then(|p| port(doc.span("/step_ca/port"), p, ctx)).map_or(9000, |p| p.value),
            root_ca_name: step_ca.root_ca_name.clone(),
            intermediate_ca_name: step_ca.intermediate_ca_name.clone(),
            acme_provisioner: step_ca.acme_provisioner.clone().unwrap_or_else(|| "acme".to_string()),
        });
    }
    if let Some(api) = &raw.portainer_api {
        let hostname =
            api.portainer_hostname.as_ref().map(|h| Located::new(h.to_ascii_lowercase(), doc.span("/portainer_api/portainer_hostname")));
        let admin_user = api.admin_user.clone().filter(|u| !u.trim().is_empty());
        match &mut model.portainer {
            Some(portainer) => {
                portainer.hostname = hostname;
                portainer.admin_user = admin_user;
            }
            None => model.portainer = Some(PortainerApi { hostname, server_ip: None, server_port: 9443, agent_port: 9001, admin_user }),
        }
        let secrets = [("admin_password", &api.admin_password), ("api_key", &api.api_key), ("agent_secret", &api.agent_secret)];
        for (field, value) in secrets {
            if let Some(value) = value {
                secret(model, doc, &join("/portainer_api", field), &format!("portainer_api.{field}"), value, ctx);
            }
        }
    }
    if let Some(value) = raw.proxmox.as_ref().and_then(|p| p.token_secret.clone()) {
        secret(model, doc, "/proxmox/token_secret", "proxmox.token_secret", &value, ctx);
    }
}

fn build_flows(model: &mut Model, raw: &RawHypervisorConfig, doc: &JsonDoc, ctx: &mut Ctx<'_>) {
    for (i, flow) in raw.flows.iter().enumerate() {
        let Some(flow) = flow else { continue };
        let pointer = join("/flows", i);
        let (Some(from), Some(to), Some(port_value)) = (&flow.from, &flow.to, &flow.port) else { continue };
        let Some(port) = port(doc.span(&join(&pointer, "port")), port_value, ctx) else { continue };
        let proto = match flow.proto.as_deref() {
            None | Some("tcp") => 6,
            Some("udp") => 17,
            Some(other) => {
                ctx.push(Diagnostic::at(
                    "PHX-SCHEMA-003",
                    doc.span(&join(&pointer, "proto")),
                    format!("flow protocol `{other}` is not tcp or udp"),
                ));
                continue;
            }
        };
        model.flows.push(DeclaredFlow {
            title: flow.title.clone().unwrap_or_else(|| format!("{from} to {to} on {}", port.value)),
            from: from.to_string(),
            to: to.to_string(),
            port: port.value,
            proto,
            name: flow.name.as_ref().map(|n| n.to_ascii_lowercase()),
            span: doc.span(&pointer),
        });
    }
}

fn build_externals(model: &mut Model, raw: &RawHypervisorConfig, doc: &JsonDoc, ctx: &mut Ctx<'_>) {
    for (i, system) in raw.external_systems.iter().enumerate() {
        let Some(system) = system else { continue };
        let pointer = join("/external_systems", i);
        let mut addresses = Vec::new();
        for (j, text) in system.addresses.iter().enumerate() {
            match text.parse::<IpNet>().or_else(|_| text.parse::<IpAddr>().map(IpNet::from)) {
                Ok(net) => addresses.push(net),
                Err(_) => ctx.push(Diagnostic::at(
                    "PHX-NET-005",
                    doc.span(&join(&join(&pointer, "addresses"), j)),
                    format!("`{text}` is not an IP or CIDR"),
                )),
            }
        }
        model.externals.push(ExternalSystem { name: system.name.clone().unwrap_or_default(), addresses, span: Some(doc.span(&pointer)) });
    }
    // Systems the legacy format names implicitly: the router, upstream and fallback resolvers.
    let mut implicit = |name: &str, addresses: Vec<IpAddr>| {
        if !addresses.is_empty() {
            model.externals.push(ExternalSystem {
                name: name.to_string(),
                addresses: addresses.into_iter().map(IpNet::from).collect(),
                span: None,
            });
        }
    };
    implicit("router (network.interfaces.gateway)", model.host.gateway.iter().map(|g| IpAddr::V4(g.value)).collect());
    implicit("upstream resolvers (dns_server.upstream_servers)", model.dns.upstreams.iter().map(|u| u.value).collect());
    let fallback = raw.network.as_ref().and_then(|n| n.fallback_dns.as_deref()).and_then(|f| f.parse::<IpAddr>().ok());
    implicit("fallback resolver (network.fallback_dns)", fallback.into_iter().collect());
}

/// Resolves the edge roles: explicit `edge` keys first, then discovery.
pub fn resolve_edge(model: &mut Model, raw: &RawHypervisorConfig, doc: &JsonDoc, ctx: &mut Ctx<'_>) {
    let edge = raw.edge.clone().unwrap_or_default();
    let explicit = |field: &str, value: &Option<StrOrNum>, ctx: &mut Ctx<'_>| -> Option<Option<GuestId>> {
        let value = value.as_ref()?;
        let id = value.to_string().parse::<GuestId>().ok().filter(|id| model.guests.contains_key(id));
        if id.is_none() {
            ctx.push(Diagnostic::at(
                "PHX-ROLE-001",
                doc.span(&join("/edge", field)),
                format!("edge.{field} names `{value}`, which is not a defined guest"),
            ));
        }
        Some(id)
    };
    let gateway = explicit("gateway_guest", &edge.gateway_guest, ctx);
    let traefik = explicit("traefik_guest", &edge.traefik_guest, ctx);
    let step_ca = explicit("step_ca_guest", &edge.step_ca_guest, ctx);
    let dns = explicit("dns_guest", &edge.dns_guest, ctx);
    model.edge = EdgeRoles {
        gateway: gateway.unwrap_or_else(|| discover_role(&model.guests, |g| g.name.to_ascii_lowercase().contains("nginx"))),
        traefik: traefik.unwrap_or_else(|| discover_role(&model.guests, |g| g.has_feature("traefik"))),
        step_ca: step_ca.unwrap_or_else(|| discover_role(&model.guests, |g| g.has_feature("step_ca"))),
        dns: dns.flatten(),
    };
}

/// `timezone`: an IANA zone name, which becomes a path (`/usr/share/zoneinfo/<zone>`) in every
/// guest, so only names of letters, digits, `_`, `+`, `-` joined by single `/` are taken; others
/// are reported and not used.
fn timezone(zone: &str, doc: &JsonDoc, ctx: &mut Ctx<'_>) -> Option<Located<String>> {
    let span = doc.span("/timezone");
    let part = |p: &str| !p.is_empty() && p != "." && p != ".." && p.chars().all(|c| c.is_ascii_alphanumeric() || "_+-.".contains(c));
    if zone.len() <= 64 && !zone.starts_with('.') && zone.split('/').all(part) {
        return Some(Located::new(zone.to_string(), span));
    }
    let shown: String = zone.chars().take(64).collect();
    ctx.push(
        Diagnostic::at("PHX-NAME-001", span, format!("timezone `{shown}` is not a time zone name"))
            .help("write an IANA zone name such as America/New_York or UTC (a file under /usr/share/zoneinfo)"),
    );
    None
}

/// One `software` entry: a URL phoenix can fetch (https, http, file) and a SHA-256 of 64 hex
/// digits; anything else is reported (PHX-SRC-001) and the program waits for a source.
fn software(name: &str, value: &serde_json::Value, doc: &JsonDoc, ctx: &mut Ctx<'_>) -> Option<SoftwareSource> {
    let span = doc.span(&format!("/software/{}", crate::json::escape_segment(name)));
    let url = value.get("url").and_then(|u| u.as_str()).filter(|u| ["https://", "http://", "file:///"].iter().any(|s| u.starts_with(s)));
    let sha256 = value
        .get("sha256")
        .and_then(|s| s.as_str())
        .map(|s| s.to_ascii_lowercase())
        .filter(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()));
    match (url, sha256) {
        (Some(url), Some(sha256)) if !url.contains(char::is_whitespace) => {
            Some(SoftwareSource { url: Located::new(url.to_string(), span), sha256 })
        }
        _ => {
            ctx.push(
                Diagnostic::at("PHX-SRC-001", span, format!("software `{name}` needs a url and the sha256 of what it serves"))
                    .help(r#"write {"url": "https://.../traefik", "sha256": "<64 hex digits, as sha256sum prints>"}; the url is https, http or file:///"#),
            );
            None
        }
    }
}
