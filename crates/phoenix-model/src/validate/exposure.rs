//! Exposure and TLS policy: a guest behind the gateway that accepts connections from any
//! source (only the front, the gateway or Traefik, must), Traefik told to skip verifying a
//! backend's certificate, and NFS exports that let a client's root act as root on the node.
//! Readable private keys are `certs`' (PHX-CERT-003).

use crate::diag::Diagnostic;
use crate::model::*;
use crate::source::Span;

const DNS_PORT: u16 = 53;

pub fn check(model: &Model) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for guest in model.guests.values() {
        out.extend(open_to_anyone(model, guest));
    }
    for stack in model.stacks.values() {
        out.extend(unverified_backends(stack));
    }
    for export in &model.nfs_exports {
        out.extend(root_squash_off(export));
    }
    out
}

/// PHX-EXPOSE-001: an IN ACCEPT from anywhere on a firewalled guest that is not the front.
fn open_to_anyone(model: &Model, guest: &Guest) -> Vec<Diagnostic> {
    let front = model.edge.gateway.or(model.edge.traefik);
    if !guest.firewall.enabled || front.is_none() || front == Some(guest.id) {
        return Vec::new();
    }
    let serves_dns = model.edge.dns == Some(guest.id);
    let front = &model.guests[&front.unwrap_or_default()];
    guest
        .firewall
        .rules
        .iter()
        .filter(|r| r.in_force() && r.direction == Direction::In && r.verdict == Verdict::Action(Action::Accept))
        .filter(|r| r.from_anywhere())
        .filter(|r| !(serves_dns && r.dport.as_ref().is_some_and(|p| p.0 == [(DNS_PORT, DNS_PORT)])))
        .map(|rule| {
            let ports = rule.dport.as_ref().map_or("every port".to_string(), |p| format!("port {}", p.to_pve()));
            Diagnostic::at(
                "PHX-EXPOSE-001",
                rule.span,
                format!(
                    "{} accepts {ports} from any source, but only {} needs to be reachable from everywhere; routes reach it through the front",
                    guest.label(),
                    front.label()
                ),
            )
            .help("give the rule the sources that need it (the front's address, the LAN)")
        })
        .collect()
}

/// Whether a Traefik label or compose label turns verification of a backend off.
fn skips_verification(label: &str) -> bool {
    let (key, value) = label.split_once('=').unwrap_or((label, "true"));
    key.to_ascii_lowercase().ends_with("insecureskipverify") && value.trim().eq_ignore_ascii_case("true")
}

/// PHX-TLS-001 in a stack's Traefik labels (with their place) and its compose file's labels.
fn unverified_backends(stack: &Stack) -> Vec<Diagnostic> {
    let mut found: Vec<(String, Span)> = Vec::new();
    for environment in stack.environments.values() {
        for service in &environment.services {
            found.extend(service.labels.iter().filter(|l| skips_verification(&l.value)).map(|l| (service.service.clone(), l.span)));
        }
    }
    if let Some(compose) = &stack.compose {
        for service in compose.services() {
            if service.labels().iter().any(|l| skips_verification(l)) {
                found.push((service.name.to_string(), compose.relative.span));
            }
        }
    }
    found
        .into_iter()
        .map(|(service, span)| {
            Diagnostic::at(
                "PHX-TLS-001",
                span,
                format!(
                    "service {service} of stack {} tells Traefik not to verify the backend's certificate (insecureSkipVerify)",
                    stack.name
                ),
            )
            .help("trust the Step-CA root in Traefik (rootCAs of a serversTransport) and let it verify")
        })
        .collect()
}

/// PHX-NFS-001.
fn root_squash_off(export: &NfsExport) -> Option<Diagnostic> {
    let option = export.options.iter().find(|o| o.value.trim() == "no_root_squash")?;
    Some(
        Diagnostic::at(
            "PHX-NFS-001",
            option.span,
            format!("NFS export {} has no_root_squash: root in any client guest is root over these files on the node", export.path),
        )
        .help("drop it (root_squash is the default) and give the files the owner the clients' services run as"),
    )
}
