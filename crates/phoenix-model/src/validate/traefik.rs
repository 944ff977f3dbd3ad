//! Traefik: labels phoenix cannot read, and label routes that disagree with the hosting
//! guest's traefik_service on port or scheme for the same host name.

use crate::diag::Diagnostic;
use crate::model::edge::{parse_labels, resolve_routes, routes, Route, RouteOrigin};
use crate::model::Model;

pub fn check(model: &Model) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for stack in model.stacks.values() {
        for environment in stack.environments.values() {
            for service in &environment.services {
                for label in parse_labels(&service.labels).unreadable {
                    out.push(Diagnostic::at(
                        "PHX-TRAEFIK-002",
                        label.span,
                        format!("phoenix cannot read the Traefik label `{}`", label.value),
                    ));
                }
            }
        }
    }
    let all = routes(model);
    for (later, first) in resolve_routes(all.clone(), model).duplicates {
        out.push(duplicate_route(&later, &first));
    }
    for label_route in all.iter().filter(|r| matches!(r.origin, RouteOrigin::Label { .. })) {
        let declared = all.iter().find(|r| r.origin == RouteOrigin::Service && r.host == label_route.host && r.guest == label_route.guest);
        let Some(service_route) = declared else {
            continue;
        };
        let mut differences = Vec::new();
        if label_route.port != service_route.port {
            let show = |p: Option<u16>| p.map_or("no port".to_string(), |p| format!("port {p}"));
            differences.push(format!("{} instead of {}", show(label_route.port), show(service_route.port)));
        }
        if label_route.scheme != service_route.scheme {
            differences.push(format!("scheme {} instead of {}", label_route.scheme.as_str(), service_route.scheme.as_str()));
        }
        if differences.is_empty() {
            continue;
        }
        let guest = &model.guests[&label_route.guest];
        out.push(
            Diagnostic::at(
                "PHX-TRAEFIK-001",
                label_route.port_span.unwrap_or(label_route.span),
                format!("the Traefik labels route {} to {}: {}", label_route.host, guest.label(), differences.join(", ")),
            )
            .related(service_route.port_span.unwrap_or(service_route.span), "the guest's traefik_service says this")
            .help(format!(
                "make the label's loadbalancer.server.port {} and scheme {}, or change the traefik_service",
                service_route.port.map_or("-".to_string(), |p| p.to_string()),
                service_route.scheme.as_str()
            )),
        );
    }
    out
}

/// PHX-TRAEFIK-003 for a host name a later router claims again.
pub fn duplicate_route(later: &Route, first: &Route) -> Diagnostic {
    Diagnostic::at("PHX-TRAEFIK-003", later.span, format!("{} is routed twice; phoenix keeps the first definition", later.host))
        .related(first.span, "first defined here")
        .help("remove one of the two definitions")
}
