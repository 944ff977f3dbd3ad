//! References between guests: dangling dependencies and clone sources, clone sources that are
//! not templates, and dependency cycles.

use crate::diag::Diagnostic;
use crate::graph;
use crate::model::{GuestKind, Model};

pub fn check(model: &Model) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for guest in model.guests.values() {
        for dependency in &guest.dependencies {
            if !model.guests.contains_key(&dependency.value) {
                out.push(
                    Diagnostic::at(
                        "PHX-GRAPH-001",
                        dependency.span,
                        format!("{} depends on guest {}, which is not defined", guest.label(), dependency.value),
                    )
                    .help("define the guest in phoenix_lxc_configs.json or phoenix_vm_configs.json, or remove the dependency"),
                );
            }
        }
        let Some(source_ref) = &guest.clone_from else {
            continue;
        };
        let Some(source) = model.guests.get(&source_ref.value) else {
            out.push(Diagnostic::at(
                "PHX-GRAPH-002",
                source_ref.span,
                format!("{} clones from guest {}, which is not defined", guest.label(), source_ref.value),
            ));
            continue;
        };
        let problem = if source.kind != guest.kind {
            Some(format!("it is a{} {}, not a{} {}", article(source.kind), source.kind.label(), article(guest.kind), guest.kind.label()))
        } else {
            match guest.kind {
                GuestKind::Vm if !source.is_template => Some("it is not marked \"is_template\": true".to_string()),
                GuestKind::Lxc if !source.is_template && source.template_snapshot.is_none() => {
                    Some("it has no template_snapshot_name to clone from".to_string())
                }
                _ => None,
            }
        };
        if let Some(problem) = problem {
            out.push(
                Diagnostic::at(
                    "PHX-GRAPH-004",
                    source_ref.span,
                    format!("{} clones from {}, but {problem}", guest.label(), source.label()),
                )
                .related(source.id_span, "source defined here"),
            );
        }
    }
    for cycle in graph::build(model).cycles {
        let first = &model.guests[&cycle.walk[0]];
        out.push(
            Diagnostic::at("PHX-GRAPH-003", first.id_span, format!("dependency cycle: {}", graph::describe_cycle(&cycle)))
                .help("remove one dependency or clone source of the cycle"),
        );
    }
    out
}

fn article(kind: GuestKind) -> &'static str {
    match kind {
        GuestKind::Lxc => "n",
        GuestKind::Vm => "",
    }
}
