//! The compose file of every stack environment a guest runs, as phoenix sends it to
//! Portainer: the user's file with phoenix's labels applied (ownership labels on every service,
//! and the environment's Traefik labels on theirs), edited in place so comments, formatting
//! and unknown keys stay as written; and the environment's variables as an env file (secret
//! values are references resolved at sync, never written here).

use super::{Machine, Rendered, RenderedFile};
use phoenix_model::diag::Diagnostic;
use phoenix_model::model::{GuestId, Model, Stack, StackEnvironment, VariableValue};
use std::borrow::Cow;
use std::fmt::Write;
use yamlpatch::{Op, Patch};

pub const VALIDATE: &str = "docker-compose -f {file} config -q";

/// Where stack files are rendered in a guest (Portainer receives their content; phoenix
/// keeps the rendered copy for `render --diff`).
pub const STACKS_ROOT: &str = "/opt/phoenix/stacks";

pub fn stack_dir(stack: &str, environment: &str) -> String {
    format!("{STACKS_ROOT}/{stack}/{environment}")
}

/// Labels phoenix puts on every service of a stack it deploys (how sync knows what it owns).
pub fn ownership_labels(stack: &str, environment: &str) -> Vec<String> {
    vec!["phoenix.managed=true".to_string(), format!("phoenix.stack={stack}"), format!("phoenix.environment={environment}")]
}

fn yaml_string(text: &str) -> yaml_serde::Value {
    yaml_serde::Value::String(text.to_string())
}

/// The patches that add `labels` to one service.
fn label_patches<'a>(doc: &yamlpath::Document, service: &'a str, labels: &[String]) -> Vec<Patch<'a>> {
    let labels_route = yamlpath::route!("services", service, "labels");
    match doc.query_exact(&labels_route) {
        Ok(Some(feature)) if feature.kind() == yamlpath::FeatureKind::BlockMapping => {
            let updates = labels
                .iter()
                .map(|l| {
                    let (k, v) = l.split_once('=').unwrap_or((l, ""));
                    (k.to_string(), yaml_string(v))
                })
                .collect();
            vec![Patch { route: yamlpath::route!("services", service), operation: Op::MergeInto { key: "labels".into(), updates } }]
        }
        Ok(Some(feature)) if feature.kind() == yamlpath::FeatureKind::BlockSequence => {
            labels.iter().map(|l| Patch { route: labels_route.clone(), operation: Op::Append { value: yaml_string(l) } }).collect()
        }
        Ok(Some(_)) => {
            // A flow-style list or mapping: rewrite that one node, as a block list.
            let mut merged: Vec<yaml_serde::Value> = Vec::new();
            if let Ok(existing) =
                yaml_serde::from_str::<yaml_serde::Value>(doc.extract(&doc.query_exact(&labels_route).ok().flatten().expect("exists")))
            {
                match existing {
                    yaml_serde::Value::Sequence(items) => merged.extend(items),
                    yaml_serde::Value::Mapping(map) => merged.extend(map.into_iter().map(|(k, v)| {
                        let key = k.as_str().unwrap_or_default().to_string();
                        yaml_string(&format!("{key}={}", v.as_str().map(Cow::Borrowed).unwrap_or_else(|| Cow::Owned(format!("{v:?}")))))
                    })),
                    _ => {}
                }
            }
            merged.extend(labels.iter().map(|l| yaml_string(l)));
            vec![Patch { route: labels_route, operation: Op::Replace(yaml_serde::Value::Sequence(merged)) }]
        }
        _ => vec![Patch {
            route: yamlpath::route!("services", service),
            operation: Op::Add {
                key: "labels".into(),
                value: yaml_serde::Value::Sequence(labels.iter().map(|l| yaml_string(l)).collect()),
            },
        }],
    }
}

/// The compose text with phoenix's labels, or a note saying why it could not be produced.
pub fn compose_text(stack: &Stack, environment: &StackEnvironment) -> Result<String, String> {
    let compose = stack.compose.as_ref().ok_or("the stack names no compose file")?;
    let text = compose.text.as_ref().ok_or_else(|| format!("{} does not exist", compose.path.display()))?;
    let services: Vec<String> = compose
        .content
        .as_ref()
        .and_then(|c| c.get("services"))
        .and_then(|s| s.as_object())
        .map(|s| s.keys().cloned().collect())
        .ok_or("the compose file has no services")?;
    let mut document = yamlpath::Document::new(text.clone()).map_err(|e| format!("cannot edit the compose file: {e}"))?;
    for service in &services {
        let mut labels = ownership_labels(&stack.name, &environment.name);
        if let Some(declared) = environment.services.iter().find(|s| &s.service == service) {
            labels.extend(declared.labels.iter().map(|l| l.value.clone()));
        }
        let patches = label_patches(&document, service, &labels);
        document = yamlpatch::apply_yaml_patches(&document, &patches).map_err(|e| format!("cannot label service {service}: {e}"))?;
    }
    Ok(document.source().to_string())
}

/// `NAME=value` lines; secrets appear as comments naming where sync reads them.
pub fn env_file(environment: &StackEnvironment) -> String {
    let mut out = String::from("# Rendered by phoenix: the stack's variables (Portainer env). Secrets are filled in by phoenix sync.\n");
    for variable in &environment.variables {
        match &variable.value {
            Some(VariableValue::Plain(value)) => {
                let _ = writeln!(out, "{}={value}", variable.name);
            }
            Some(VariableValue::Secret(reference)) => {
                let _ = writeln!(out, "# {} is a secret ({reference:?})", variable.name);
            }
            None => {
                let _ = writeln!(out, "{}=", variable.name);
            }
        }
    }
    out
}

pub fn render(model: &Model, out: &mut Rendered) {
    for guest in model.guests.values() {
        for assignment in &guest.stacks {
            let Some(stack) = model.stacks.get(&assignment.name.value) else { continue };
            let Some(environment) = stack.environments.get(&assignment.environment.value) else { continue };
            render_one(guest.id, stack, environment, assignment.name.span, out);
        }
    }
}

fn render_one(guest: GuestId, stack: &Stack, environment: &StackEnvironment, span: phoenix_model::Span, out: &mut Rendered) {
    let dir = stack_dir(&stack.name, &environment.name);
    match compose_text(stack, environment) {
        Ok(text) => {
            let path = format!("{dir}/docker-compose.yml");
            let validate = VALIDATE.replace("{file}", &path);
            out.files.push(RenderedFile::new(Machine::Guest(guest), path, text).validated_by(&validate));
            let mut env = RenderedFile::new(Machine::Guest(guest), format!("{dir}/stack.env"), env_file(environment));
            env.mode = 0o600;
            out.files.push(env);
        }
        Err(reason) => out.notes.push(Diagnostic::at(
            "PHX-STACK-004",
            span,
            format!("stack {} ({}) is not rendered: {reason}", stack.name, environment.name),
        )),
    }
}
