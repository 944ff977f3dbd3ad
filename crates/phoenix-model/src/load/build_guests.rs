//! Guests from phoenix_lxc_configs.json and phoenix_vm_configs.json into one id namespace.
//! A duplicate id keeps the first definition and reports the second. Spans are taken through
//! one cursor per guest, so building stays linear in the size of the files.

use super::build_host::{cidr, ipv4, nameservers, policy, port};
use super::{build_rules, Ctx};
use crate::diag::Diagnostic;
use crate::json::{join, Cursor, JsonDoc};
use crate::model::edge::default_service_hostnames;
use crate::model::*;
use crate::paths::{application_script_candidates, feature_script, KNOWN_FEATURES};
use crate::raw::{self, RawGuestCommon, StrOrNum};
use crate::schema::FileKind;
use crate::source::Span;

/// Proxmox's VMID range.
const VMID_RANGE: std::ops::RangeInclusive<u64> = 100..=999_999_999;

fn parse_id(text: &str) -> Option<GuestId> {
    text.trim().parse::<u64>().ok().filter(|id| VMID_RANGE.contains(id)).map(|id| id as GuestId)
}

fn invalid_id(span: Span, text: &str) -> Diagnostic {
    Diagnostic::at("PHX-GUEST-002", span, format!("`{text}` is not a valid guest id (100-999999999)"))
}

/// A reference to another guest (dependency or clone source); the referent is checked later.
fn guest_ref(span: Span, value: &StrOrNum, ctx: &mut Ctx<'_>) -> Option<Located<GuestId>> {
    let text = value.to_string();
    match parse_id(&text) {
        Some(id) => Some(Located::new(id, span)),
        None => {
            ctx.push(invalid_id(span, &text));
            None
        }
    }
}

/// Where a guest is in its file: its pointer (for decoding) and cursor (for spans).
pub(super) struct At<'d> {
    pointer: String,
    cursor: Option<Cursor<'d>>,
    pub(super) fallback: Span,
}

impl<'d> At<'d> {
    fn new(doc: &'d JsonDoc, pointer: String) -> Self {
        let cursor = doc.cursor(&pointer);
        let fallback = cursor.map_or_else(|| doc.span(&pointer), |c| c.span());
        At { pointer, cursor, fallback }
    }

    fn child(&self, key: &str) -> Option<Cursor<'d>> {
        self.cursor.and_then(|c| c.get(key))
    }

    pub(super) fn span(&self, key: &str) -> Span {
        self.child(key).map_or(self.fallback, |c| c.span())
    }

    /// Span of `key`'s member `inner`, or of the nearest existing parent.
    pub(super) fn member(&self, key: &str, inner: &str) -> Span {
        self.child(key).and_then(|c| c.get(inner)).or(self.child(key)).map_or(self.fallback, |c| c.span())
    }

    /// Span of `key`'s `index`th item, or of the nearest existing parent.
    pub(super) fn item(&self, key: &str, index: usize) -> Span {
        self.cursor.map_or(self.fallback, |c| c.item_span(key, index))
    }
}

pub fn build_lxcs(model: &mut Model, doc: &JsonDoc, ctx: &mut Ctx<'_>) {
    // The file's own keys were checked by the schema; each guest is decoded on its own.
    let Some(configs) = doc.value.get("lxc_configs").and_then(|v| v.as_object()) else { return };
    for key in configs.keys() {
        let at = At::new(doc, join("/lxc_configs", key));
        let Some(id) = parse_id(key) else {
            ctx.push(invalid_id(doc.key_span(&at.pointer), key));
            continue;
        };
        let Some(shared) = ctx.decode::<RawGuestCommon>(doc, FileKind::Lxc, &at.pointer) else { continue };
        let Some(own) = ctx.decode::<raw::RawLxcFields>(doc, FileKind::Lxc, &at.pointer) else { continue };
        let sections = [("network_config", &own.network_config), ("secondary_network_config", &own.secondary_network_config)];
        let mut nics = Vec::new();
        for (key, raw) in sections {
            let Some(raw) = raw else { continue };
            let net = At::new(doc, join(&at.pointer, key));
            let index = nics.len() as u32;
            let mut nic = Nic { index, name: raw.name.clone(), bridge: raw.bridge.clone(), firewall: raw.firewall, ..Nic::default() };
            nic.span = Some(net.fallback);
            nic.mac = raw.hwaddr.as_deref().and_then(|m| mac(net.span("hwaddr"), m, ctx));
            fill_nic(&mut nic, &net, raw.ip.as_deref(), raw.gw.as_deref(), raw.nameservers.as_ref(), "nameservers", doc, ctx);
            nics.push(nic);
        }
        let mut guest = common(model, &at, id, GuestKind::Lxc, &shared, nics, ctx);
        guest.id_span = doc.key_span(&at.pointer);
        guest.clone_from = own.clone_from_ctid.as_ref().and_then(|c| guest_ref(at.span("clone_from_ctid"), c, ctx));
        guest.is_template = own.is_template.unwrap_or(false);
        guest.spec = super::build_spec::lxc_spec(&at, &shared, &own, guest.clone_from.as_ref(), ctx);
        insert(model, guest, ctx);
    }
}

pub fn build_vms(model: &mut Model, doc: &JsonDoc, ctx: &mut Ctx<'_>) {
    let Some(vms) = doc.value.get("vms").and_then(|v| v.as_array()) else { return };
    let defaults: raw::RawVmDefaults = match doc.value.get("vm_defaults") {
        Some(_) => ctx.decode(doc, FileKind::Vm, "/vm_defaults").unwrap_or_default(),
        None => raw::RawVmDefaults::default(),
    };
    for index in 0..vms.len() {
        let at = At::new(doc, join("/vms", index));
        let Some(shared) = ctx.decode::<RawGuestCommon>(doc, FileKind::Vm, &at.pointer) else { continue };
        let Some(own) = ctx.decode::<raw::RawVmFields>(doc, FileKind::Vm, &at.pointer) else { continue };
        let Some(vmid) = &own.vmid else { continue };
        let Some(id) = parse_id(&vmid.to_string()) else {
            ctx.push(invalid_id(at.span("vmid"), &vmid.to_string()));
            continue;
        };
        let mut nics = Vec::new();
        if let Some(raw) = &own.network_config {
            let net = At::new(doc, join(&at.pointer, "network_config"));
            let mut nic = Nic { firewall: raw.firewall, span: Some(net.fallback), ..Nic::default() };
            nic.bridge = own.network_bridge.clone().or(defaults.network_bridge.clone());
            fill_nic(&mut nic, &net, raw.ip.as_deref(), raw.gw.as_deref(), raw.nameserver.as_ref(), "nameserver", doc, ctx);
            nics.push(nic);
        }
        let mut guest = common(model, &at, id, GuestKind::Vm, &shared, nics, ctx);
        guest.id_span = at.span("vmid");
        guest.clone_from = own.clone_from_vmid.as_ref().and_then(|c| guest_ref(at.span("clone_from_vmid"), c, ctx));
        guest.is_template = own.is_template.unwrap_or(false);
        let default_span = |key: &str| doc.span(&join("/vm_defaults", key));
        guest.spec = super::build_spec::vm_spec(&at, &shared, &own, &defaults, &default_span, guest.clone_from.as_ref());
        guest.nfs_volumes = super::build_volumes::nfs_volumes(doc, &join(&at.pointer, "volumes"), &own.volumes, ctx);
        guest.agent_hostname =
            own.portainer_agent_hostname.as_ref().map(|h| Located::new(h.to_ascii_lowercase(), at.span("portainer_agent_hostname")));
        insert(model, guest, ctx);
    }
}

fn insert(model: &mut Model, guest: Guest, ctx: &mut Ctx<'_>) {
    probe_scripts(model, &guest, ctx);
    if let Some(first) = model.guests.get(&guest.id) {
        ctx.push(
            Diagnostic::at("PHX-GUEST-001", guest.id_span, format!("guest id {} is already used by {}", guest.id, first.label()))
                .related(first.id_span, "first defined here")
                .help("LXC containers and VMs share one id namespace; choose a free id"),
        );
        return;
    }
    model.guests.insert(guest.id, guest);
}

/// Records which of the guest's scripts exist, for validation.
fn probe_scripts(model: &Model, guest: &Guest, ctx: &mut Ctx<'_>) {
    if let Some(script) = guest
        .application_script
        .as_ref()
        .filter(|s| super::build_stacks::outside_refused(&model.root_dir, &s.value, s.span, "application_script", ctx))
    {
        for candidate in application_script_candidates(&model.root_dir, guest.kind, &script.value) {
            ctx.probe_file(&candidate);
        }
    }
    for feature in guest.features.iter().filter(|f| !KNOWN_FEATURES.contains(&f.value.as_str())) {
        ctx.probe_file(&feature_script(&model.root_dir, &feature.value));
    }
}

fn mac(span: Span, text: &str, ctx: &mut Ctx<'_>) -> Option<Located<String>> {
    let parts: Vec<&str> = text.split(':').collect();
    let valid = parts.len() == 6 && parts.iter().all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()));
    if !valid {
        ctx.push(
            Diagnostic::at("PHX-NET-005", span, format!("`{text}` is not a MAC address"))
                .help("write six hex pairs, e.g. 52:54:00:AA:BB:CC"),
        );
        return None;
    }
    Some(Located::new(text.to_ascii_uppercase(), span))
}

/// Address, gateway and nameservers, shared by the LXC and VM network sections.
#[allow(clippy::too_many_arguments)]
fn fill_nic(
    nic: &mut Nic,
    net: &At<'_>,
    ip: Option<&str>,
    gw: Option<&str>,
    servers: Option<&raw::StrOrList>,
    servers_key: &str,
    doc: &JsonDoc,
    ctx: &mut Ctx<'_>,
) {
    match ip {
        Some(t) if t.eq_ignore_ascii_case("dhcp") => nic.dhcp = true,
        Some(t) => nic.address = cidr(net.span("ip"), t, ctx),
        None => {}
    }
    nic.gateway = gw.and_then(|g| ipv4(net.span("gw"), g, ctx));
    nic.nameservers = servers.map(|n| nameservers(doc, &join(&net.pointer, servers_key), n, ctx)).unwrap_or_default();
}

#[allow(clippy::too_many_arguments)]
fn common(model: &Model, at: &At<'_>, id: GuestId, kind: GuestKind, raw: &RawGuestCommon, mut nics: Vec<Nic>, ctx: &mut Ctx<'_>) -> Guest {
    // The guest's `mac_address` is its first NIC's (the original passed it as net0's hwaddr).
    if let Some(first) = nics.first_mut().filter(|n| n.mac.is_none()) {
        first.mac = raw.mac_address.as_deref().and_then(|m| mac(at.span("mac_address"), m, ctx));
    }
    let list = |field: &str, items: &[String]| -> Vec<Located<String>> {
        items.iter().enumerate().map(|(i, v)| Located::new(v.clone(), at.item(field, i))).collect()
    };
    let dependencies = raw.dependencies.iter().enumerate().filter_map(|(i, d)| guest_ref(at.item("dependencies", i), d, ctx)).collect();
    let stacks = raw
        .docker_stacks
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let item = at.child("docker_stacks").and_then(|list| list.at(i));
            let span = |key: &str| item.map_or(at.fallback, |c| c.span_of(key));
            let whole = item.map_or(at.fallback, |c| c.span());
            // No environment named: `production`, as the original's vm-manager took it.
            let production = || Located::new(DEFAULT_STACK_ENVIRONMENT.to_string(), whole);
            Some(match s.as_ref()? {
                raw::RawStackRef::Name(name) => StackAssignment { name: Located::new(name.clone(), whole), environment: production() },
                raw::RawStackRef::Assignment(s) => StackAssignment {
                    name: Located::new(s.name.clone()?, span("name")),
                    environment: s.environment.clone().map_or_else(production, |e| Located::new(e, span("environment"))),
                },
            })
        })
        .collect();
    Guest {
        id,
        kind,
        name: raw.name.clone().unwrap_or_else(|| format!("guest-{id}")),
        span: at.fallback,
        id_span: at.fallback,
        nics,
        node: guest_node(model, at, raw.node.as_deref(), ctx),
        is_template: false,
        template_snapshot: raw.template_snapshot_name.clone(),
        clone_from: None,
        dependencies,
        features: list("features", &raw.features),
        application_script: raw.application_script.as_ref().map(|s| Located::new(s.clone(), at.span("application_script"))),
        health_check: raw.health_check.as_ref().and_then(|h| health_check(at, h, ctx)),
        nfs_volumes: Vec::new(),
        firewall: raw.firewall.as_ref().map(|f| guest_firewall(at, f, id, ctx)).unwrap_or_default(),
        traefik_service: raw.traefik_service.as_ref().and_then(|t| traefik_service(model, at, t, ctx)),
        stacks,
        portainer_role: match raw.portainer_role {
            Some(raw::RawPortainerRole::Infrastructure) => PortainerRole::Infrastructure,
            Some(raw::RawPortainerRole::Primary | raw::RawPortainerRole::Server) => PortainerRole::Primary,
            Some(raw::RawPortainerRole::Agent) => PortainerRole::Agent,
            _ => PortainerRole::None,
        },
        agent_hostname: None,
        hostnames: list("hostnames", &raw.hostnames).into_iter().map(|h| Located::new(h.value.to_ascii_lowercase(), h.span)).collect(),
        boot: Boot { start_at_boot: raw.start_at_boot.unwrap_or(false), order: raw.boot_order, delay: raw.boot_delay },
        spec: GuestSpec::default(),
    }
}

/// The guest's `node`: one of the cluster's (PHX-NODE-001 otherwise, and the first node is
/// assumed so the rest of the checks go on).
fn guest_node(model: &Model, at: &At<'_>, name: Option<&str>, ctx: &mut Ctx<'_>) -> Located<String> {
    let first = || Located::new(model.host.node_name.clone(), at.fallback);
    let Some(name) = name else { return first() };
    let span = at.span("node");
    if model.host.node(name).is_some() {
        return Located::new(name.to_string(), span);
    }
    let known: Vec<&str> = model.host.nodes.iter().map(|n| n.name.as_str()).collect();
    let shown: String = name.chars().take(64).collect();
    ctx.push(
        Diagnostic::at("PHX-NODE-001", span, format!("guest's node `{shown}` is not a node of the cluster"))
            .help(format!("the cluster's nodes are {} (`proxmox.node_name` and `proxmox.nodes`)", known.join(", "))),
    );
    first()
}

/// `health_check`: `{"command": "...", "retries": n, "interval": s}`; one without a command, or
/// with counts that are not small whole numbers, is reported (PHX-APP-003) and not run.
fn health_check(at: &At<'_>, raw: &serde_json::Value, ctx: &mut Ctx<'_>) -> Option<HealthCheck> {
    let span = at.span("health_check");
    let count = |key: &str, default: u32| match raw.get(key) {
        None => Some(default),
        Some(v) => v.as_u64().filter(|n| (1..=3600).contains(n)).map(|n| n as u32),
    };
    let command = raw.get("command").and_then(|c| c.as_str()).filter(|c| !c.trim().is_empty());
    match (command, count("retries", HealthCheck::DEFAULT_RETRIES), count("interval", HealthCheck::DEFAULT_INTERVAL_SECS)) {
        (Some(command), Some(retries), Some(interval_secs)) => {
            Some(HealthCheck { command: Located::new(command.to_string(), span), retries, interval_secs })
        }
        _ => {
            ctx.push(
                Diagnostic::at("PHX-APP-003", span, "health_check is not a command with retries and an interval")
                    .help(r#"write {"command": "nc -z localhost 9000", "retries": 30, "interval": 10}: a non-empty command, retries and interval whole numbers from 1 to 3600"#),
            );
            None
        }
    }
}

fn guest_firewall(at: &At<'_>, raw: &raw::RawGuestFirewall, id: GuestId, ctx: &mut Ctx<'_>) -> GuestFirewall {
    let section = at.child("firewall");
    let defaults = GuestFirewall::default();
    let span = |field: &str| section.map_or(at.fallback, |c| c.span_of(field));
    let rules_list = section.and_then(|c| c.get("rules"));
    GuestFirewall {
        enabled: raw.enabled.unwrap_or(false),
        policy_in: policy(span("policy_in"), raw.policy_in.as_deref(), defaults.policy_in, ctx),
        policy_out: policy(span("policy_out"), raw.policy_out.as_deref(), defaults.policy_out, ctx),
        rules: build_rules::build_list(rules_list, at.fallback, &raw.rules, &Scope::Guest(id), ctx),
        span: Some(section.map_or(at.fallback, |c| c.key_span())),
    }
}

fn traefik_service(model: &Model, at: &At<'_>, raw: &raw::RawTraefikService, ctx: &mut Ctx<'_>) -> Option<TraefikService> {
    let name = raw.name.as_ref()?;
    let section = at.child("traefik_service");
    let span = |key: &str| section.map_or(at.fallback, |c| c.span_of(key));
    let port = raw.port.as_ref().and_then(|p| port(span("port"), p, ctx));
    let zones: Vec<String> = model.dns.zones.iter().map(|z| z.value.clone()).collect();
    let hostnames = match &raw.hostnames {
        Some(list) => list.iter().map(|h| h.to_ascii_lowercase()).collect(),
        None => default_service_hostnames(name, &zones, model.domain.as_deref()),
    };
    let scheme = match raw.scheme {
        Some(raw::RawScheme::Http) => Scheme::Http,
        Some(raw::RawScheme::Https) => Scheme::Https,
        None => port.as_ref().map_or(Scheme::Http, |p| Scheme::default_for_port(p.value)),
    };
    Some(TraefikService {
        name: Located::new(name.clone(), span("name")),
        port,
        scheme,
        server_name: raw.server_name.clone().or_else(|| hostnames.first().cloned()),
        hostnames,
        client_certificate: raw.client_certificate.as_ref().map(|c| Located::new(c.clone(), span("client_certificate"))),
        requires_client_certificate: raw.requires_client_certificate.unwrap_or(false),
        gateway_tls: match raw.gateway_tls {
            Some(raw::RawGatewayTls::Passthrough) => GatewayTls::Passthrough,
            _ => GatewayTls::Terminate,
        },
        span: section.map_or(at.fallback, |c| c.span()),
    })
}
