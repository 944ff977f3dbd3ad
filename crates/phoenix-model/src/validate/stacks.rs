//! Stacks: assignments to undefined stacks or environments, missing compose and stack files.

use crate::diag::Diagnostic;
use crate::facts::Facts;
use crate::model::Model;
use crate::schema::did_you_mean;

pub fn check(model: &Model, facts: &Facts) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for guest in model.guests.values() {
        for assignment in &guest.stacks {
            let Some(stack) = model.stacks.get(&assignment.name.value) else {
                let diagnostic = Diagnostic::at(
                    "PHX-STACK-001",
                    assignment.name.span,
                    format!(
                        "{} is assigned stack `{}`, which phoenix_stacks_config.json does not define",
                        guest.label(),
                        assignment.name.value
                    ),
                );
                out.push(match did_you_mean(&assignment.name.value, model.stacks.keys().map(String::as_str)) {
                    Some(name) => diagnostic.help(format!("did you mean `{name}`?")),
                    None => diagnostic,
                });
                continue;
            };
            if !stack.environments.contains_key(&assignment.environment.value) {
                let known: Vec<&str> = stack.environments.keys().map(String::as_str).collect();
                out.push(
                    Diagnostic::at(
                        "PHX-STACK-002",
                        assignment.environment.span,
                        format!("stack `{}` has no environment `{}`", stack.name, assignment.environment.value),
                    )
                    .related(stack.span, "stack defined here")
                    .help(format!("defined environments: {}", known.join(", "))),
                );
            }
        }
    }
    for stack in model.stacks.values() {
        if let Some(compose) = &stack.compose {
            if !facts.existing_files.contains(&compose.path) {
                out.push(
                    Diagnostic::at(
                        "PHX-STACK-003",
                        compose.relative.span,
                        format!("compose file {} does not exist", compose.path.display()),
                    )
                    .help("compose_file_path is resolved against the parent of the configuration folder"),
                );
            }
        }
        for environment in stack.environments.values() {
            for file in &environment.files {
                let path = model.root_dir.join(&file.source.value);
                if !facts.existing_files.contains(&path) {
                    out.push(Diagnostic::at("PHX-STACK-005", file.source.span, format!("stack file {} does not exist", path.display())));
                }
            }
        }
    }
    out
}
