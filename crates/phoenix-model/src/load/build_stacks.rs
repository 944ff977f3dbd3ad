//! Stacks, with their compose and env files.
//! Compose and env files are read through the [`Source`](super::Source) and added to the
//! source map, so their problems point at their own lines.

use super::build_host::secret;
use super::Ctx;
use crate::diag::Diagnostic;
use crate::json::{join, JsonDoc};
use crate::model::*;
use crate::raw::{self, SecretValue};
use crate::schema::FileKind;
use crate::source::{FileId, Span};
use std::sync::OnceLock;

/// Variable names whose values are secrets.
pub fn looks_secret(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    ["PASS", "SECRET", "TOKEN", "PRIVATE_KEY", "API_KEY", "CREDENTIAL"].iter().any(|w| upper.contains(w))
}

pub fn build(model: &mut Model, doc: &JsonDoc, ctx: &mut Ctx<'_>) {
    let Some(file) = ctx.decode::<raw::RawStacksFile>(doc, FileKind::Stacks, "") else {
        return;
    };
    for name in file.docker_stacks.keys() {
        let pointer = join("/docker_stacks", name);
        let Some(raw) = ctx.decode::<raw::RawStack>(doc, FileKind::Stacks, &pointer) else {
            continue;
        };
        let compose = raw.compose_file_path.as_ref().map(|relative| {
            let span = doc.span(&join(&pointer, "compose_file_path"));
            load_compose(model, relative, span, ctx)
        });
        let mut environments = std::collections::BTreeMap::new();
        for (env_name, env) in &raw.environments {
            let env_pointer = join(&join(&pointer, "environments"), env_name);
            environments.insert(env_name.clone(), environment(model, doc, &env_pointer, name, env_name, env, ctx));
        }
        let stack = Stack { name: name.clone(), span: doc.key_span(&pointer), description: raw.description.clone(), compose, environments };
        model.stacks.insert(name.clone(), stack);
    }
}

fn environment(
    model: &mut Model,
    doc: &JsonDoc,
    pointer: &str,
    stack: &str,
    name: &str,
    raw: &raw::RawStackEnvironment,
    ctx: &mut Ctx<'_>,
) -> StackEnvironment {
    let mut variables = Vec::new();
    for (i, variable) in raw.variables.iter().enumerate() {
        let Some(variable) = variable else { continue };
        let Some(var_name) = variable.name.clone() else {
            continue;
        };
        let at = join(&join(pointer, "variables"), i);
        let value_pointer = join(&at, "value");
        let value = match &variable.value {
            None => None,
            Some(SecretValue::Literal(text)) if !looks_secret(&var_name) => Some(VariableValue::Plain(text.clone())),
            Some(secret_value) => {
                let what = format!("stack {stack} ({name}) variable {var_name}");
                secret(model, doc, &value_pointer, &what, secret_value, ctx);
                model.secrets.last().map(|site| VariableValue::Secret(site.reference.clone()))
            }
        };
        variables.push(Variable { name: var_name, value, span: doc.span(&at) });
    }
    let mut files = Vec::new();
    for (i, file) in raw.files.iter().enumerate() {
        let Some(file) = file else { continue };
        let Some(source) = file.source.clone() else {
            continue;
        };
        let span = doc.span(&join(&join(&join(pointer, "files"), i), "source"));
        let path = model.root_dir.join(&source);
        if outside_refused(&model.root_dir, &source, span, "files[].source", ctx) && ctx.probe_file(&path) && source.ends_with(".env") {
            scan_env_file(model, &path, &format!("stack {stack} ({name}) file {source}"), ctx);
        }
        files.push(StackFile { source: Located::new(source, span), destination: file.destination_in_container.clone() });
    }
    let services = raw
        .services
        .iter()
        .map(|(service, labels)| {
            let base = join(&join(&join(pointer, "services"), service), "traefik_labels");
            let labels =
                labels.traefik_labels.iter().enumerate().map(|(i, l)| Located::new(l.clone(), doc.span(&join(&base, i)))).collect();
            ServiceLabels { service: service.clone(), labels }
        })
        .collect();
    // Built once for the stack (their problems said once); each guest running it gets them.
    let rules_pointer = join(pointer, "firewall_rules");
    let firewall_rules = super::build_rules::build_at(doc, &rules_pointer, &raw.firewall_rules, &Scope::Guest(0), ctx);
    StackEnvironment { name: name.to_string(), span: doc.key_span(pointer), variables, files, services, firewall_rules }
}

/// The stacks guests name that `phoenix_stacks_config.json` does not define, from their own
/// folder (the shape from November 2025): `stacks/<name>/docker-compose.yml`, and beside it an
/// optional `phoenix.json` with the stack's description and environments.
pub fn build_folders(model: &mut Model, ctx: &mut Ctx<'_>) {
    // Each name once, at the first place a guest names it.
    let mut named: std::collections::BTreeMap<String, Span> = std::collections::BTreeMap::new();
    for assignment in model.guests.values().flat_map(|g| &g.stacks).filter(|s| !model.stacks.contains_key(&s.name.value)) {
        named.entry(assignment.name.value.clone()).or_insert(assignment.name.span);
    }
    for (name, span) in named {
        if !crate::paths::within_tree(&name) || name.contains('/') {
            continue;
        }
        let compose_relative = format!("stacks/{name}/docker-compose.yml");
        if !ctx.probe_file(&model.root_dir.join(&compose_relative)) {
            continue;
        }
        let compose = Some(load_compose(model, &compose_relative, span, ctx));
        let mut stack = Stack { name: name.clone(), span, description: None, compose, environments: Default::default() };
        if let Some(doc) = read_stack_json(model, &format!("stacks/{name}/phoenix.json"), ctx) {
            if let Some(raw) = ctx.decode_unchecked::<raw::RawStackDir>(&doc, "") {
                stack.description = raw.description.clone();
                for (env_name, env) in &raw.environments {
                    let env_pointer = join("/environments", env_name);
                    stack.environments.insert(env_name.clone(), environment(model, &doc, &env_pointer, &name, env_name, env, ctx));
                }
            }
        } else {
            // A stack without phoenix.json is deployed as its compose file says.
            let env = StackEnvironment {
                name: DEFAULT_STACK_ENVIRONMENT.into(),
                span,
                variables: Vec::new(),
                files: Vec::new(),
                services: Vec::new(),
                firewall_rules: Vec::new(),
            };
            stack.environments.insert(DEFAULT_STACK_ENVIRONMENT.into(), env);
        }
        model.stacks.insert(name, stack);
    }
}

/// A stack folder's `phoenix.json`, parsed and added to the source map; `None` when absent
/// (or unreadable JSON, which is reported).
fn read_stack_json(model: &Model, relative: &str, ctx: &mut Ctx<'_>) -> Option<JsonDoc> {
    let path = model.root_dir.join(relative);
    if !ctx.probe_file(&path) {
        return None;
    }
    let text = ctx.source.read_to_string(&path).ok()?;
    let file = ctx.sources.add(&path, text);
    match crate::json::parse(file, ctx.sources.text(file)) {
        Ok((doc, duplicates)) => {
            ctx.diags.extend(duplicates);
            Some(doc)
        }
        Err(diagnostic) => {
            ctx.push(diagnostic);
            None
        }
    }
}

/// Each guest gets the firewall rules of the stacks it runs, after its own, in their order.
pub fn apply_stack_rules(model: &mut Model) {
    let stacks = &model.stacks;
    for guest in model.guests.values_mut() {
        let mut position = guest.firewall.rules.len();
        for assignment in &guest.stacks {
            let Some(env) = stacks.get(&assignment.name.value).and_then(|s| s.environments.get(&assignment.environment.value)) else {
                continue;
            };
            for rule in &env.firewall_rules {
                let mut rule = rule.clone();
                rule.scope = Scope::Guest(guest.id);
                rule.position = position;
                position += 1;
                guest.firewall.rules.push(rule);
            }
        }
    }
}

/// Whether a file the configuration names (relative to the installation root) stays inside
/// it; one that does not is reported and never read, so no line of it can reach a diagnostic.
pub(super) fn outside_refused(root: &std::path::Path, relative: &str, span: Span, what: &str, ctx: &mut Ctx<'_>) -> bool {
    if ctx.source.allows_outside_tree() {
        return true;
    }
    let problem = if !crate::paths::within_tree(relative) {
        "names a file outside the installation's tree"
    } else {
        // Lexically inside; a symbolic link on the way may still lead out.
        match (ctx.source.canonical(root), ctx.source.canonical(&root.join(relative))) {
            (Some(root), Some(target)) if !target.starts_with(&root) => "leads outside the installation's tree through a symbolic link",
            _ => return true,
        }
    };
    ctx.push(
        Diagnostic::at("PHX-PATH-002", span, format!("{what} `{relative}` {problem}"))
            .help("name a file inside the folder above the configuration folder (or run with --allow-outside-tree)"),
    );
    false
}

/// Reports secret-looking `KEY=value` lines of a dotenv file as literal secrets.
fn scan_env_file(model: &mut Model, path: &std::path::Path, what: &str, ctx: &mut Ctx<'_>) {
    let Ok(text) = ctx.source.read_to_string(path) else {
        return;
    };
    let file = ctx.sources.add(path, text);
    let mut sites = Vec::new();
    let mut offset = 0usize;
    for line in ctx.sources.text(file).split_inclusive('\n') {
        let trimmed = line.trim_end_matches(['\n', '\r']);
        if let Some((key, value)) = trimmed.split_once('=') {
            let key = key.trim().trim_start_matches("export ").trim();
            if looks_secret(key) && !value.trim().is_empty() {
                let start = offset + key.len() + 1 + (trimmed.len() - trimmed.trim_start().len());
                sites.push((key.to_string(), Span::new(file, start, offset + trimmed.len())));
            }
        }
        offset += line.len();
    }
    for (key, span) in sites {
        ctx.sources.mark_secret(span);
        model.secrets.push(SecretSite { what: format!("{what}: {key}"), reference: SecretRef::Literal, span });
    }
}

fn compose_validator() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../../schemas/compose-spec.schema.json")).expect("bundled compose schema is JSON");
        jsonschema::options().should_validate_formats(false).build(&schema).expect("bundled compose schema compiles")
    })
}

/// Where `value` departs from the Compose Specification (empty when it conforms).
pub fn compose_errors(value: &serde_json::Value) -> Vec<String> {
    compose_validator()
        .iter_errors(value)
        .map(|e| {
            let at = e.instance_path().as_str().to_string();
            format!("`{}` violates `{}`", if at.is_empty() { "/" } else { &at }, e.kind().keyword())
        })
        .collect()
}

fn load_compose(model: &Model, relative: &str, span: Span, ctx: &mut Ctx<'_>) -> ComposeFile {
    let path = model.root_dir.join(relative);
    let mut compose = ComposeFile { relative: Located::new(relative.to_string(), span), path: path.clone(), content: None, text: None };
    if !outside_refused(&model.root_dir, relative, span, "compose_file_path", ctx) {
        return compose;
    }
    let Ok(text) = ctx.source.read_to_string(&path) else {
        return compose;
    };
    ctx.facts.existing_files.insert(path.clone());
    compose.text = Some(text.clone());
    let file = ctx.sources.add(&path, text);
    match serde_saphyr::from_str::<serde_json::Value>(ctx.sources.text(file)) {
        Ok(value) => {
            let errors = compose_errors(&value);
            if !errors.is_empty() {
                ctx.push(
                    Diagnostic::at(
                        "PHX-STACK-004",
                        Span::new(file, 0, 0),
                        format!("compose file does not satisfy the Compose Specification: {}", errors.join("; ")),
                    )
                    .related(span, "named here"),
                );
            }
            compose.content = Some(value);
        }
        Err(error) => {
            let at = yaml_error_span(ctx, file, &error);
            let message = error.to_string().lines().next().unwrap_or("invalid YAML").to_string();
            ctx.push(Diagnostic::at("PHX-STACK-004", at, format!("compose file is not valid YAML: {message}")).related(span, "named here"));
        }
    }
    compose
}

fn yaml_error_span(ctx: &Ctx<'_>, file: FileId, error: &serde_saphyr::Error) -> Span {
    let source = ctx.sources.file(file);
    let offset = error.location().map_or(0, |l| source.offset_of(l.line() as usize, l.column() as usize));
    Span { file, start: offset, end: offset }
}
