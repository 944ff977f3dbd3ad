//! Names claimed twice: a name a guest answers for itself (a Portainer agent's hostname, a
//! guest's declared `hostnames`, Step-CA's `dns_name`) that a Traefik route claims as well.
//! DNS can send a name to one place only; the users' history shows both ways it broke: the
//! agent's name sent to Traefik (Portainer then reaches Traefik on 9001, not the agent), and
//! the CA's name routed through the proxy that gets its own certificates from that CA, so the
//! proxy cannot start until the CA is reachable through the proxy (a bootstrap cycle).
//! Must not decide which claim is right: it says both and where they are.

use crate::diag::Diagnostic;
use crate::model::edge::{routes, Route};
use crate::model::*;
use crate::source::Span;
use std::collections::BTreeMap;

/// A name a guest serves itself, with why and where it is declared.
struct OwnClaim {
    guest: GuestId,
    why: &'static str,
    span: Span,
}

fn own_claims(model: &Model) -> BTreeMap<&str, OwnClaim> {
    let mut claims = BTreeMap::new();
    for guest in model.guests.values() {
        if let Some(agent) = &guest.agent_hostname {
            claims.insert(agent.value.as_str(), OwnClaim { guest: guest.id, why: "its Portainer agent hostname", span: agent.span });
        }
        for name in &guest.hostnames {
            claims.insert(name.value.as_str(), OwnClaim { guest: guest.id, why: "one of its hostnames", span: name.span });
        }
    }
    claims
}

fn describe(route: &Route, model: &Model) -> String {
    format!("{} is routed through Traefik to {}", route.host, model.guests[&route.guest].label())
}

pub fn check(model: &Model) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let claims = own_claims(model);
    let ca_name = model.step_ca.as_ref().and_then(|s| s.dns_name.as_ref());
    let ca_guest = model.edge.step_ca.and_then(|id| model.guests.get(&id));
    for route in routes(model) {
        if let (Some(name), Some(ca)) = (ca_name, ca_guest) {
            if route.host == name.value {
                out.push(
                    Diagnostic::at(
                        "PHX-NAME-003",
                        route.span,
                        format!(
                            "{}, but it is Step-CA's own name (step_ca.dns_name, served by {}); Traefik and the gateway get \
                             their certificates from Step-CA, so the CA would be reachable only through a proxy that needs \
                             the CA to start",
                            describe(&route, model),
                            ca.label()
                        ),
                    )
                    .related(name.span, "Step-CA's name")
                    .help(format!("remove the route; clients reach Step-CA directly at {name}", name = name.value)),
                );
                continue;
            }
        }
        if let Some(claim) = claims.get(route.host.as_str()) {
            let owner = model.guests[&claim.guest].label();
            out.push(
                Diagnostic::at(
                    "PHX-NAME-002",
                    route.span,
                    format!("{}, but it is {} of {owner}: DNS can send it to one of them only", describe(&route, model), claim.why),
                )
                .related(claim.span, "claimed by the guest here")
                .help("give the route a name of its own, or drop the guest's claim"),
            );
        }
    }
    out
}
