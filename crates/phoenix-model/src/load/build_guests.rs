//! Guests from phoenix_lxc_configs.json and phoenix_vm_configs.json into one id namespace.
//! A duplicate id keeps the first definition and reports the second.

use super::build_host::{cidr, ipv4, nameservers, port};
use super::{build_rules, Ctx};
use crate::diag::Diagnostic;
use crate::json::{join, JsonDoc};
use crate::model::edge::default_service_hostnames;
use crate::model::*;
use crate::raw::{self, RawGuestCommon, StrOrNum};
use crate::schema::FileKind;
use crate::validate::{application_script_candidates, feature_script, KNOWN_FEATURES};

/// Proxmox's VMID range.
const VMID_RANGE: std::ops::RangeInclusive<u64> = 100..=999_999_999;

fn guest_id(doc: &JsonDoc, pointer: &str, text: &str, ctx: &mut Ctx<'_>) -> Option<GuestId> {
    match text.trim().parse::<u64>() {
        Ok(id) if VMID_RANGE.contains(&id) => Some(id as GuestId),
        _ => {
            ctx.push(Diagnostic::at(
                "PHX-GUEST-002",
                doc.key_span(pointer),
                format!("`{text}` is not a valid guest id (100-999999999)"),
            ));
            None
        }
    }
}

/// A reference to another guest (dependency or clone source); the referent is checked later.
fn guest_ref(
    doc: &JsonDoc,
    pointer: &str,
    value: &StrOrNum,
    ctx: &mut Ctx<'_>,
) -> Option<Located<GuestId>> {
    let span = doc.span(pointer);
    match value.to_string().trim().parse::<u64>() {
        Ok(id) if VMID_RANGE.contains(&id) => Some(Located::new(id as GuestId, span)),
        _ => {
            ctx.push(Diagnostic::at(
                "PHX-GUEST-002",
                span,
                format!("`{value}` is not a valid guest id (100-999999999)"),
            ));
            None
        }
    }
}

pub fn build_lxcs(model: &mut Model, doc: &JsonDoc, ctx: &mut Ctx<'_>) {
    let Some(file) = ctx.decode::<raw::RawLxcFile>(doc, FileKind::Lxc, "") else {
        return;
    };
    for key in file.lxc_configs.keys() {
        let pointer = join("/lxc_configs", key);
        let Some(id) = guest_id(doc, &pointer, key, ctx) else {
            continue;
        };
        let Some(raw) = ctx.decode::<raw::RawLxc>(doc, FileKind::Lxc, &pointer) else {
            continue;
        };
        let nic = raw
            .network_config
            .as_ref()
            .map(|n| {
                lxc_nic(
                    doc,
                    &join(&pointer, "network_config"),
                    n,
                    raw.common.mac_address.as_deref(),
                    ctx,
                )
            })
            .unwrap_or_default();
        let mut guest = common(
            model,
            doc,
            &pointer,
            id,
            GuestKind::Lxc,
            &raw.common,
            nic,
            ctx,
        );
        guest.clone_from = raw
            .clone_from_ctid
            .as_ref()
            .and_then(|c| guest_ref(doc, &join(&pointer, "clone_from_ctid"), c, ctx));
        guest.is_template = raw.is_template.unwrap_or(false);
        insert(model, guest, ctx);
    }
}

pub fn build_vms(model: &mut Model, doc: &JsonDoc, ctx: &mut Ctx<'_>) {
    let Some(file) = ctx.decode::<raw::RawVmFile>(doc, FileKind::Vm, "") else {
        return;
    };
    for index in 0..file.vms.len() {
        let pointer = join("/vms", index);
        let Some(raw) = ctx.decode::<raw::RawVm>(doc, FileKind::Vm, &pointer) else {
            continue;
        };
        let Some(vmid) = &raw.vmid else { continue };
        let Some(id) = guest_id(doc, &join(&pointer, "vmid"), &vmid.to_string(), ctx) else {
            continue;
        };
        let nic = raw
            .network_config
            .as_ref()
            .map(|n| {
                vm_nic(
                    doc,
                    &join(&pointer, "network_config"),
                    n,
                    raw.common.mac_address.as_deref(),
                    ctx,
                )
            })
            .unwrap_or_default();
        let mut guest = common(
            model,
            doc,
            &pointer,
            id,
            GuestKind::Vm,
            &raw.common,
            nic,
            ctx,
        );
        guest.id_span = doc.span(&join(&pointer, "vmid"));
        guest.clone_from = raw
            .clone_from_vmid
            .as_ref()
            .and_then(|c| guest_ref(doc, &join(&pointer, "clone_from_vmid"), c, ctx));
        guest.is_template = raw.is_template.unwrap_or(false);
        guest.agent_hostname = raw.portainer_agent_hostname.as_ref().map(|h| {
            Located::new(
                h.to_ascii_lowercase(),
                doc.span(&join(&pointer, "portainer_agent_hostname")),
            )
        });
        insert(model, guest, ctx);
    }
}

fn insert(model: &mut Model, guest: Guest, ctx: &mut Ctx<'_>) {
    probe_scripts(model, &guest, ctx);
    if let Some(first) = model.guests.get(&guest.id) {
        ctx.push(
            Diagnostic::at(
                "PHX-GUEST-001",
                guest.id_span,
                format!("guest id {} is already used by {}", guest.id, first.label()),
            )
            .related(first.id_span, "first defined here")
            .help("LXC containers and VMs share one id namespace; choose a free id"),
        );
        return;
    }
    model.guests.insert(guest.id, guest);
}

/// Records which of the guest's scripts exist, for validation.
fn probe_scripts(model: &Model, guest: &Guest, ctx: &mut Ctx<'_>) {
    if let Some(script) = &guest.application_script {
        for candidate in application_script_candidates(&model.root_dir, guest.kind, &script.value) {
            ctx.probe_file(&candidate);
        }
    }
    for feature in guest
        .features
        .iter()
        .filter(|f| !KNOWN_FEATURES.contains(&f.value.as_str()))
    {
        ctx.probe_file(&feature_script(&model.root_dir, &feature.value));
    }
}

fn mac(doc: &JsonDoc, pointer: &str, text: &str, ctx: &mut Ctx<'_>) -> Option<Located<String>> {
    let parts: Vec<&str> = text.split(':').collect();
    let valid = parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()));
    if !valid {
        ctx.push(
            Diagnostic::at(
                "PHX-NET-005",
                doc.span(pointer),
                format!("`{text}` is not a MAC address"),
            )
            .help("write six hex pairs, e.g. 52:54:00:AA:BB:CC"),
        );
        return None;
    }
    Some(Located::new(text.to_ascii_uppercase(), doc.span(pointer)))
}

fn address(doc: &JsonDoc, pointer: &str, text: Option<&str>, nic: &mut Nic, ctx: &mut Ctx<'_>) {
    match text {
        Some(t) if t.eq_ignore_ascii_case("dhcp") => nic.dhcp = true,
        Some(t) => nic.address = cidr(doc, pointer, t, ctx),
        None => {}
    }
}

fn lxc_nic(
    doc: &JsonDoc,
    pointer: &str,
    raw: &raw::RawLxcNetwork,
    mac_text: Option<&str>,
    ctx: &mut Ctx<'_>,
) -> Nic {
    let mut nic = Nic {
        bridge: raw.bridge.clone(),
        firewall: raw.firewall,
        span: Some(doc.span(pointer)),
        ..Nic::default()
    };
    address(doc, &join(pointer, "ip"), raw.ip.as_deref(), &mut nic, ctx);
    nic.gateway = raw
        .gw
        .as_deref()
        .and_then(|g| ipv4(doc, &join(pointer, "gw"), g, ctx));
    nic.nameservers = raw
        .nameservers
        .as_ref()
        .map(|n| nameservers(doc, &join(pointer, "nameservers"), n, ctx))
        .unwrap_or_default();
    let mac_pointer = pointer
        .rsplit_once('/')
        .map(|(p, _)| join(p, "mac_address"))
        .unwrap_or_default();
    nic.mac = mac_text.and_then(|m| mac(doc, &mac_pointer, m, ctx));
    nic
}

fn vm_nic(
    doc: &JsonDoc,
    pointer: &str,
    raw: &raw::RawVmNetwork,
    mac_text: Option<&str>,
    ctx: &mut Ctx<'_>,
) -> Nic {
    let mut nic = Nic {
        firewall: raw.firewall,
        span: Some(doc.span(pointer)),
        ..Nic::default()
    };
    address(doc, &join(pointer, "ip"), raw.ip.as_deref(), &mut nic, ctx);
    nic.gateway = raw
        .gw
        .as_deref()
        .and_then(|g| ipv4(doc, &join(pointer, "gw"), g, ctx));
    nic.nameservers = raw
        .nameserver
        .as_ref()
        .map(|n| nameservers(doc, &join(pointer, "nameserver"), n, ctx))
        .unwrap_or_default();
    let mac_pointer = pointer
        .rsplit_once('/')
        .map(|(p, _)| join(p, "mac_address"))
        .unwrap_or_default();
    nic.mac = mac_text.and_then(|m| mac(doc, &mac_pointer, m, ctx));
    nic
}

#[allow(clippy::too_many_arguments)]
fn common(
    model: &Model,
    doc: &JsonDoc,
    pointer: &str,
    id: GuestId,
    kind: GuestKind,
    raw: &RawGuestCommon,
    nic: Nic,
    ctx: &mut Ctx<'_>,
) -> Guest {
    let list = |field: &str, items: &[String]| -> Vec<Located<String>> {
        let base = join(pointer, field);
        items
            .iter()
            .enumerate()
            .map(|(i, v)| Located::new(v.clone(), doc.span(&join(&base, i))))
            .collect()
    };
    let dependencies = raw
        .dependencies
        .iter()
        .enumerate()
        .filter_map(|(i, d)| guest_ref(doc, &join(&join(pointer, "dependencies"), i), d, ctx))
        .collect();
    let stacks = raw
        .docker_stacks
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let s = s.as_ref()?;
            let at = join(&join(pointer, "docker_stacks"), i);
            Some(StackAssignment {
                name: Located::new(s.name.clone()?, doc.span(&join(&at, "name"))),
                environment: Located::new(
                    s.environment.clone()?,
                    doc.span(&join(&at, "environment")),
                ),
            })
        })
        .collect();
    Guest {
        id,
        kind,
        name: raw.name.clone().unwrap_or_else(|| format!("guest-{id}")),
        span: doc.span(pointer),
        id_span: doc.key_span(pointer),
        nic,
        is_template: false,
        template_snapshot: raw.template_snapshot_name.clone(),
        clone_from: None,
        dependencies,
        features: list("features", &raw.features),
        application_script: raw
            .application_script
            .as_ref()
            .map(|s| Located::new(s.clone(), doc.span(&join(pointer, "application_script")))),
        firewall: guest_firewall(
            doc,
            &join(pointer, "firewall"),
            raw.firewall.as_ref(),
            id,
            ctx,
        ),
        traefik_service: raw
            .traefik_service
            .as_ref()
            .and_then(|t| traefik_service(model, doc, &join(pointer, "traefik_service"), t, ctx)),
        stacks,
        portainer_role: match raw.portainer_role {
            Some(raw::RawPortainerRole::Infrastructure) => PortainerRole::Infrastructure,
            Some(raw::RawPortainerRole::Primary) => PortainerRole::Primary,
            Some(raw::RawPortainerRole::Agent) => PortainerRole::Agent,
            _ => PortainerRole::None,
        },
        agent_hostname: None,
        hostnames: list("hostnames", &raw.hostnames)
            .into_iter()
            .map(|h| Located::new(h.value.to_ascii_lowercase(), h.span))
            .collect(),
        boot: Boot {
            start_at_boot: raw.start_at_boot.unwrap_or(false),
            order: raw.boot_order,
            delay: raw.boot_delay,
        },
    }
}

fn guest_firewall(
    doc: &JsonDoc,
    pointer: &str,
    raw: Option<&raw::RawGuestFirewall>,
    id: GuestId,
    ctx: &mut Ctx<'_>,
) -> GuestFirewall {
    let Some(raw) = raw else {
        return GuestFirewall::default();
    };
    let defaults = GuestFirewall::default();
    let policy =
        |field: &str, value: &Option<String>, default: Action, ctx: &mut Ctx<'_>| match value
            .as_deref()
        {
            None => default,
            Some(text) => Action::parse(text).unwrap_or_else(|| {
                ctx.push(
                    Diagnostic::at(
                        "PHX-FW-004",
                        doc.span(&join(pointer, field)),
                        format!("`{text}` is not a policy"),
                    )
                    .help("use ACCEPT, DROP or REJECT"),
                );
                default
            }),
        };
    GuestFirewall {
        enabled: raw.enabled.unwrap_or(false),
        policy_in: policy("policy_in", &raw.policy_in, defaults.policy_in, ctx),
        policy_out: policy("policy_out", &raw.policy_out, defaults.policy_out, ctx),
        rules: build_rules::build_list(
            doc,
            &join(pointer, "rules"),
            &raw.rules,
            &Scope::Guest(id),
            ctx,
        ),
        span: Some(doc.key_span(pointer)),
    }
}

fn traefik_service(
    model: &Model,
    doc: &JsonDoc,
    pointer: &str,
    raw: &raw::RawTraefikService,
    ctx: &mut Ctx<'_>,
) -> Option<TraefikService> {
    let name = raw.name.as_ref()?;
    let port = raw
        .port
        .as_ref()
        .and_then(|p| port(doc, &join(pointer, "port"), p, ctx));
    let zones: Vec<String> = model.dns.zones.iter().map(|z| z.value.clone()).collect();
    let hostnames = match &raw.hostnames {
        Some(list) => list.iter().map(|h| h.to_ascii_lowercase()).collect(),
        None => default_service_hostnames(name, &zones, model.domain.as_deref()),
    };
    let scheme = match raw.scheme {
        Some(raw::RawScheme::Http) => Scheme::Http,
        Some(raw::RawScheme::Https) => Scheme::Https,
        None => port
            .as_ref()
            .map_or(Scheme::Http, |p| Scheme::default_for_port(p.value)),
    };
    Some(TraefikService {
        name: Located::new(name.clone(), doc.span(&join(pointer, "name"))),
        port,
        scheme,
        server_name: raw
            .server_name
            .clone()
            .or_else(|| hostnames.first().cloned()),
        hostnames,
        client_certificate: raw
            .client_certificate
            .as_ref()
            .map(|c| Located::new(c.clone(), doc.span(&join(pointer, "client_certificate")))),
        requires_client_certificate: raw.requires_client_certificate.unwrap_or(false),
        gateway_tls: match raw.gateway_tls {
            Some(raw::RawGatewayTls::Passthrough) => GatewayTls::Passthrough,
            _ => GatewayTls::Terminate,
        },
        span: doc.span(pointer),
    })
}
