//! Semantic checks over a loaded model: each module checks one kind of resource and returns
//! diagnostics. Must not do I/O: facts about files and environment come from the loader's probes.

mod addresses;
mod certs;
mod claims;
mod compose;
mod dns;
mod exposure;
mod firewall;
mod flows;
mod graph;
mod guests;
mod names;
mod network;
mod rule_meaning;
mod scripts;
mod secrets;
mod stacks;
mod traefik;

use crate::diag::Diagnostic;
use crate::facts::Facts;
use crate::model::Model;

pub use firewall::cluster_rules_for_guests;
pub use guests::template_storage;
pub use traefik::duplicate_route;

/// The DNS findings alone (records no one owns, names with two addresses, service names that
/// point at the wrong guest, names sent to the gateway without a route), for the assessment.
pub fn dns_findings(model: &Model) -> Vec<Diagnostic> {
    dns::check(model)
}

/// Every semantic diagnostic for `model`.
pub fn validate(model: &Model, facts: &Facts) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    out.extend(names::check(model));
    out.extend(network::check(model));
    out.extend(graph::check(model));
    out.extend(guests::check(model));
    out.extend(stacks::check(model, facts));
    out.extend(traefik::check(model));
    out.extend(firewall::check(model));
    out.extend(dns::check(model));
    out.extend(secrets::check(model, facts));
    out.extend(scripts::check(model, facts));
    out.extend(certs::check(model));
    out.extend(flows::check(model));
    out.extend(claims::check(model));
    out.extend(rule_meaning::check(model));
    out.extend(addresses::check(model));
    out.extend(exposure::check(model));
    out.extend(compose::check(model));
    out
}
