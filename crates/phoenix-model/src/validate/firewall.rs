//! Firewall rules: duplicates and shadowed rules within one list, rules naming addresses no
//! one owns, and cluster rules that can only concern guest traffic (which cluster.fw never
//! filters; see DESIGN.md).

use crate::diag::Diagnostic;
use crate::model::*;
use ipnet::IpNet;
use std::collections::HashMap;
use std::net::IpAddr;

/// Above this many rules in one list, only exact duplicates are looked for (pairwise shadowing is quadratic).
const PAIRWISE_LIMIT: usize = 2000;

pub fn check(model: &Model) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let mut lists: Vec<(String, &[Rule])> =
        vec![("cluster rules".to_string(), &model.firewall.cluster_rules), ("host rules".to_string(), &model.firewall.host_rules)];
    for guest in model.guests.values() {
        lists.push((format!("rules of {}", guest.label()), &guest.firewall.rules));
    }
    for (name, rules) in &model.firewall.groups {
        lists.push((format!("security group {name}"), rules));
    }
    let index = model.address_index();
    for (list, rules) in &lists {
        out.extend(redundant(list, rules));
        for rule in rules.iter() {
            out.extend(unowned(&index, rule));
        }
    }
    out.extend(cluster_rules_for_guests(model));
    out
}

fn active(rule: &Rule) -> bool {
    rule.in_force() && rule.macro_name.is_none() && matches!(rule.verdict, Verdict::Action(_))
}

fn describe(rule: &Rule) -> String {
    rule.comment.clone().map_or_else(|| format!("rule {}", rule.position + 1), |c| format!("rule {} (\"{c}\")", rule.position + 1))
}

fn redundant(list: &str, rules: &[Rule]) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let candidates: Vec<&Rule> = rules.iter().filter(|r| active(r)).collect();
    if candidates.len() > PAIRWISE_LIMIT {
        let mut first: HashMap<_, &Rule> = HashMap::new();
        for rule in candidates {
            match first.get(&rule.match_key()) {
                Some(earlier) => out.push(duplicate(list, earlier, rule)),
                None => {
                    first.insert(rule.match_key(), rule);
                }
            }
        }
        return out;
    }
    for (j, later) in candidates.iter().enumerate() {
        let earlier_rules = &candidates[..j];
        // An exact repeat is the more useful finding, even when a broader rule comes first.
        if let Some(earlier) = earlier_rules.iter().find(|e| e.match_key() == later.match_key() && e.verdict == later.verdict) {
            out.push(duplicate(list, earlier, later));
            continue;
        }
        let Some(earlier) = earlier_rules.iter().find(|earlier| covers(earlier, later)) else { continue };
        let differs = if earlier.verdict != later.verdict {
            "; its action differs, so the configuration does not do what this rule says"
        } else {
            ""
        };
        out.push(
            Diagnostic::at(
                "PHX-FW-007",
                later.span,
                format!("in the {list}, {} is never reached: {} matches first{differs}", describe(later), describe(earlier)),
            )
            .related(earlier.span, "this rule matches first")
            .help("reorder or remove the rules"),
        );
    }
    out
}

fn duplicate(list: &str, earlier: &Rule, later: &Rule) -> Diagnostic {
    Diagnostic::at("PHX-FW-006", later.span, format!("in the {list}, {} repeats {}", describe(later), describe(earlier)))
        .related(earlier.span, "first written here")
        .help("delete the duplicate")
}

/// Whether every packet `later` matches is matched by `earlier`.
fn covers(earlier: &Rule, later: &Rule) -> bool {
    fn optional<T>(a: &Option<T>, b: &Option<T>, f: impl Fn(&T, &T) -> bool) -> bool {
        match (a, b) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(a), Some(b)) => f(a, b),
        }
    }
    earlier.direction == later.direction
        && optional(&earlier.proto, &later.proto, |a, b| a.number == b.number)
        && optional(&earlier.dport, &later.dport, PortSet::covers)
        && optional(&earlier.sport, &later.sport, PortSet::covers)
        && optional(&earlier.source, &later.source, addr_covers)
        && optional(&earlier.dest, &later.dest, addr_covers)
        && optional(&earlier.iface, &later.iface, |a, b| a == b)
}

fn addr_covers(a: &AddrSpec, b: &AddrSpec) -> bool {
    b.0.iter().all(|entry| {
        a.0.iter().any(|outer| match (outer, entry) {
            (AddrEntry::Net(o), AddrEntry::Net(n)) => o.contains(n),
            (AddrEntry::Net(IpNet::V4(o)), AddrEntry::Range(x, y)) => o.contains(x) && o.contains(y),
            (o, e) => o == e,
        })
    })
}

fn unowned(index: &AddressIndex<'_>, rule: &Rule) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let fields = [("source", &rule.source, rule.spans.source), ("dest", &rule.dest, rule.spans.dest)];
    for (field, spec, span) in fields {
        let Some(ip) = spec.as_ref().and_then(AddrSpec::single_address) else {
            continue;
        };
        if index.owner_of(ip).is_none() {
            out.push(
                Diagnostic::at(
                    "PHX-FW-008",
                    span.unwrap_or(rule.span),
                    format!("{field} {ip} of {} belongs to no guest, host or external system", describe(rule)),
                )
                .help("correct the address, or declare the system under `external_systems`"),
            );
        }
    }
    out
}

/// Guest addresses a spec names, when it names only guests (never the host).
fn only_guests<'m>(model: &'m Model, spec: &AddrSpec) -> Option<Vec<&'m Guest>> {
    let host = model.host.ip().map(IpAddr::V4);
    let nets: Vec<IpNet> = spec.literal_nets().collect();
    if nets.len() != spec.0.len() || host.is_some_and(|h| nets.iter().any(|n| n.contains(&h))) {
        return None;
    }
    let guests: Vec<&Guest> =
        model.guests.values().filter(|g| g.address().is_some_and(|a| nets.iter().any(|n| n.contains(&IpAddr::V4(a))))).collect();
    (!guests.is_empty()).then_some(guests)
}

/// PHX-FW-009 for every cluster rule whose address side names only guests (render reports them too).
pub fn cluster_rules_for_guests(model: &Model) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for rule in model.firewall.cluster_rules.iter().filter(|r| !r.malformed) {
        // IN rules of cluster.fw see traffic to the host, OUT rules traffic from it.
        let (field, spec, span) = match rule.direction {
            Direction::In => ("dest", &rule.dest, rule.spans.dest),
            Direction::Out => ("source", &rule.source, rule.spans.source),
        };
        let Some(guests) = spec.as_ref().and_then(|s| only_guests(model, s)) else {
            continue;
        };
        let names: Vec<String> = guests.iter().map(|g| g.label()).collect();
        out.push(
            Diagnostic::at(
                "PHX-FW-009",
                span.unwrap_or(rule.span),
                format!(
                    "cluster {} has {field} {}, so it can only concern traffic of {}; cluster.fw never filters guest traffic",
                    describe(rule),
                    spec.as_ref().map(AddrSpec::to_pve).unwrap_or_default(),
                    names.join(", ")
                ),
            )
            .help(format!("move it into the firewall.rules of {}", names.join(" and "))),
        );
    }
    out
}
