//! The edge as data: Traefik routes derived from every traefik_service and from the stacks'
//! Traefik labels (the deployed Traefik reads files, not Docker labels, so labels are
//! translated), and the discovery of which guests play the gateway, Traefik and Step-CA roles.
//! Must not render configuration or judge flows: generators and checks consume these routes.

use super::*;

/// Where a route was declared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteOrigin {
    /// A guest's traefik_service.
    Service,
    /// A stack's Traefik labels.
    Label { stack: String, environment: String, service: String, router: String },
}

/// One host name Traefik routes to one backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub host: String,
    pub guest: GuestId,
    pub port: Option<u16>,
    pub scheme: Scheme,
    pub origin: RouteOrigin,
    /// Where the route's host name (or port) is declared.
    pub span: Span,
    /// Where the port is declared, when it is.
    pub port_span: Option<Span>,
}

/// Routers and services read from one compose service's labels.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelConfig {
    /// Router name to (host names, rule span, explicit service name).
    pub routers: BTreeMap<String, (Vec<String>, Span, Option<String>)>,
    /// Service name to (port and its span, scheme).
    pub services: BTreeMap<String, (Option<Located<u16>>, Option<Scheme>)>,
    /// Labels phoenix could not read.
    pub unreadable: Vec<Located<String>>,
}

/// Host names in a rule such as ``Host(`a`) || Host(`b`, `c`)``.
pub fn rule_hosts(rule: &str) -> Vec<String> {
    let mut hosts = Vec::new();
    let mut rest = rule;
    while let Some(start) = rest.find("Host(") {
        rest = &rest[start + 5..];
        let Some(end) = rest.find(')') else { break };
        for part in rest[..end].split(',') {
            let host = part.trim().trim_matches('`').trim_matches('"').to_ascii_lowercase();
            if !host.is_empty() {
                hosts.push(host);
            }
        }
        rest = &rest[end..];
    }
    hosts
}

/// Reads the Traefik labels of one compose service.
pub fn parse_labels(labels: &[Located<String>]) -> LabelConfig {
    let mut config = LabelConfig::default();
    for label in labels {
        let Some((key, value)) = label.value.split_once('=') else {
            config.unreadable.push(label.clone());
            continue;
        };
        let parts: Vec<&str> = key.trim().split('.').collect();
        match parts.as_slice() {
            ["traefik", "http", "routers", router, "rule"] => {
                let hosts = rule_hosts(value);
                if hosts.is_empty() {
                    config.unreadable.push(label.clone());
                }
                let entry = config.routers.entry(router.to_string()).or_insert((Vec::new(), label.span, None));
                entry.0 = hosts;
                entry.1 = label.span;
            }
            ["traefik", "http", "routers", router, "service"] => {
                config.routers.entry(router.to_string()).or_insert((Vec::new(), label.span, None)).2 = Some(value.trim().to_string());
            }
            ["traefik", "http", "services", service, "loadbalancer", "server", "port"] => {
                let entry = config.services.entry(service.to_string()).or_default();
                match value.trim().parse::<u16>() {
                    Ok(port) => entry.0 = Some(Located::new(port, label.span)),
                    Err(_) => config.unreadable.push(label.clone()),
                }
            }
            ["traefik", "http", "services", service, "loadbalancer", "server", "scheme"] => {
                let scheme = match value.trim() {
                    "http" => Some(Scheme::Http),
                    "https" => Some(Scheme::Https),
                    _ => {
                        config.unreadable.push(label.clone());
                        None
                    }
                };
                config.services.entry(service.to_string()).or_default().1 = scheme;
            }
            _ => {}
        }
    }
    config
}

impl LabelConfig {
    /// The service a router sends to: its explicit service, else the only service, else the
    /// service of the same name (Traefik's Docker provider rules).
    pub fn service_of(&self, router: &str) -> Option<(&String, &(Option<Located<u16>>, Option<Scheme>))> {
        let explicit = self.routers.get(router).and_then(|r| r.2.as_deref());
        match explicit {
            Some(name) => self.services.get_key_value(name),
            None if self.services.len() == 1 => self.services.iter().next(),
            None => self.services.get_key_value(router),
        }
    }
}

/// Default host names of a traefik_service: `<name>.<zone>` for each authoritative zone,
/// or `<name>.<domain>` when there is no zone.
pub fn default_service_hostnames(name: &str, zones: &[String], domain: Option<&str>) -> Vec<String> {
    let name = name.to_ascii_lowercase();
    if zones.is_empty() {
        return domain.map(|d| vec![format!("{name}.{d}")]).unwrap_or_default();
    }
    zones.iter().map(|zone| format!("{name}.{zone}")).collect()
}

/// Every route the configuration declares, traefik_service routes first, in guest order.
pub fn routes(model: &Model) -> Vec<Route> {
    let mut routes = Vec::new();
    for guest in model.guests.values() {
        if let Some(service) = &guest.traefik_service {
            for host in &service.hostnames {
                routes.push(Route {
                    host: host.clone(),
                    guest: guest.id,
                    port: service.port.as_ref().map(|p| p.value),
                    scheme: service.scheme,
                    origin: RouteOrigin::Service,
                    span: service.name.span,
                    port_span: service.port.as_ref().map(|p| p.span),
                });
            }
        }
    }
    for guest in model.guests.values() {
        for assignment in &guest.stacks {
            let Some(stack) = model.stacks.get(&assignment.name.value) else {
                continue;
            };
            let Some(environment) = stack.environments.get(&assignment.environment.value) else {
                continue;
            };
            for service in &environment.services {
                let labels = parse_labels(&service.labels);
                for (router, (hosts, rule_span, _)) in &labels.routers {
                    let backend = labels.service_of(router);
                    let port = backend.and_then(|(_, (p, _))| p.clone());
                    let scheme = backend.and_then(|(_, (_, s))| *s).unwrap_or(Scheme::Http);
                    for host in hosts {
                        routes.push(Route {
                            host: host.clone(),
                            guest: guest.id,
                            port: port.as_ref().map(|p| p.value),
                            scheme,
                            origin: RouteOrigin::Label {
                                stack: stack.name.clone(),
                                environment: environment.name.clone(),
                                service: service.service.clone(),
                                router: router.clone(),
                            },
                            span: *rule_span,
                            port_span: port.as_ref().map(|p| p.span),
                        });
                    }
                }
            }
        }
    }
    routes
}

/// Which router a route belongs to: one traefik_service, or one label router of one stack
/// environment on one guest. Returns (identity, router name).
pub fn router_of(route: &Route, model: &Model) -> (String, String) {
    match &route.origin {
        RouteOrigin::Service => {
            let name = model.guests[&route.guest].traefik_service.as_ref().map_or("service".to_string(), |s| s.name.value.clone());
            (format!("service/{}/{name}", route.guest), name)
        }
        RouteOrigin::Label { stack, environment, router, .. } => {
            (format!("label/{stack}/{environment}/{router}/{}", route.guest), router.clone())
        }
    }
}

/// Routes after resolving host names claimed by more than one router: the first definition
/// (traefik_service before labels, in guest order) keeps the name; the others are listed.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    pub kept: Vec<Route>,
    /// (the later definition, the one that keeps the name)
    pub duplicates: Vec<(Route, Route)>,
}

pub fn route_table(model: &Model) -> RouteTable {
    resolve_routes(routes(model), model)
}

/// [`route_table`] over routes the caller already derived.
pub fn resolve_routes(all: Vec<Route>, model: &Model) -> RouteTable {
    let mut table = RouteTable::default();
    let mut claimed: std::collections::HashMap<String, (String, usize)> = std::collections::HashMap::new();
    for route in all {
        let (router, _) = router_of(&route, model);
        match claimed.get(&route.host) {
            Some((owner, first)) if *owner != router => table.duplicates.push((route, table.kept[*first].clone())),
            Some(_) => {}
            None => {
                claimed.insert(route.host.clone(), (router, table.kept.len()));
                table.kept.push(route);
            }
        }
    }
    table
}

/// The guest playing a role when the configuration does not say: the first (lowest id)
/// guest matching `predicate`, templates excluded.
pub fn discover_role(guests: &BTreeMap<GuestId, Guest>, predicate: impl Fn(&Guest) -> bool) -> Option<GuestId> {
    guests.values().filter(|g| !g.is_template).find(|g| predicate(g)).map(|g| g.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_hosts_reads_every_host_matcher() {
        assert_eq!(rule_hosts("Host(`a.example`) || Host(`b.example`, `C.example`)"), vec!["a.example", "b.example", "c.example"]);
        assert!(rule_hosts("PathPrefix(`/x`)").is_empty());
    }

    #[test]
    fn labels_link_routers_to_services() {
        let span = Span::new(crate::source::FileId(0), 0, 0);
        let labels: Vec<Located<String>> = [
            "traefik.enable=true",
            "traefik.http.routers.p.rule=Host(`p.example`)",
            "traefik.http.services.p.loadbalancer.server.port=9000",
            "traefik.http.services.p.loadbalancer.server.scheme=http",
        ]
        .iter()
        .map(|s| Located::new(s.to_string(), span))
        .collect();
        let config = parse_labels(&labels);
        let (_, (port, scheme)) = config.service_of("p").unwrap();
        assert_eq!(port.as_ref().unwrap().value, 9000);
        assert_eq!(*scheme, Some(Scheme::Http));
        assert!(config.unreadable.is_empty());
    }
}
