//! phoenix's own JSON Schema of the configuration files, generated from the `raw` types,
//! and the check of a parsed file against it (type, required, enum, unknown keys).
//! Must not decode or interpret values: it only reports where a file departs from the schema.
//! Messages never quote the offending value, so a misplaced secret cannot leak through them.

use crate::diag::Diagnostic;
use crate::json::{join, JsonDoc};
use crate::raw;
use jsonschema::error::{TypeKind, ValidationErrorKind};
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::OnceLock;

/// The files phoenix reads, each with its own schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FileKind {
    Hypervisor,
    Lxc,
    Vm,
    Stacks,
    Manifest,
}

impl FileKind {
    pub const ALL: [FileKind; 5] = [FileKind::Hypervisor, FileKind::Lxc, FileKind::Vm, FileKind::Stacks, FileKind::Manifest];

    pub fn file_name(self) -> &'static str {
        match self {
            FileKind::Hypervisor => "phoenix_hypervisor_config.json",
            FileKind::Lxc => "phoenix_lxc_configs.json",
            FileKind::Vm => "phoenix_vm_configs.json",
            FileKind::Stacks => "phoenix_stacks_config.json",
            FileKind::Manifest => "certificate-manifest.json",
        }
    }

    /// Name of the published schema file.
    pub fn schema_file_name(self) -> String {
        self.file_name().replace(".json", ".phoenix.schema.json")
    }
}

/// Keys that must be present, by type. Kept here rather than as non-Option fields so a
/// missing key is a diagnostic, never a decoding failure.
const REQUIRED: &[(&str, &[&str])] = &[
    ("RawZone", &["zone_name"]),
    ("RawRecord", &["hostname"]),
    ("RawStack", &["compose_file_path"]),
    ("RawVm", &["vmid"]),
    ("RawVmFields", &["vmid"]),
    ("RawStackAssignment", &["name", "environment"]),
    ("RawVariable", &["name"]),
    ("RawExternalSystem", &["name"]),
    ("RawFlow", &["from", "to", "port"]),
    ("RawTraefikService", &["name", "port"]),
    // Later manifests leave guest_id out: the guest is where cert_path lies.
    ("RawCertificate", &["common_name", "cert_path", "key_path"]),
];

/// The generated JSON Schema for one file.
pub fn schema_for(kind: FileKind) -> Value {
    let mut schema = match kind {
        FileKind::Hypervisor => schemars::schema_for!(raw::RawHypervisorConfig),
        FileKind::Lxc => schemars::schema_for!(raw::RawLxcFile),
        FileKind::Vm => schemars::schema_for!(raw::RawVmFile),
        FileKind::Stacks => schemars::schema_for!(raw::RawStacksFile),
        FileKind::Manifest => schemars::schema_for!(raw::RawManifest),
    }
    .to_value();
    if let Some(defs) = schema.get_mut("$defs").and_then(Value::as_object_mut) {
        for (name, keys) in REQUIRED {
            if let Some(def) = defs.get_mut(*name).and_then(Value::as_object_mut) {
                def.insert("required".into(), Value::from(keys.to_vec()));
            }
        }
    }
    schema
}

struct Checker {
    validators: Vec<(FileKind, jsonschema::Validator)>,
    known_keys: Vec<String>,
}

fn checker() -> &'static Checker {
    static CHECKER: OnceLock<Checker> = OnceLock::new();
    CHECKER.get_or_init(|| {
        let mut known = BTreeSet::new();
        let validators = FileKind::ALL
            .iter()
            .map(|&kind| {
                let schema = schema_for(kind);
                collect_property_names(&schema, &mut known);
                // The schema is generated from our own types: failing to compile it is a bug.
                let validator =
                    jsonschema::options().should_validate_formats(false).build(&schema).expect("phoenix's generated schema compiles");
                (kind, validator)
            })
            .collect();
        Checker { validators, known_keys: known.into_iter().collect() }
    })
}

fn collect_property_names(schema: &Value, out: &mut BTreeSet<String>) {
    match schema {
        Value::Object(map) => {
            if let Some(Value::Object(props)) = map.get("properties") {
                out.extend(props.keys().cloned());
            }
            map.values().for_each(|v| collect_property_names(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_property_names(v, out)),
        _ => {}
    }
}

/// The known key closest to `unknown`, if any is close enough to be a likely typo.
pub fn did_you_mean<'a>(unknown: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(unknown, c), c))
        .filter(|(score, _)| *score >= 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// Result of checking one file against its schema.
#[derive(Debug, Default)]
pub struct SchemaReport {
    pub diagnostics: Vec<Diagnostic>,
    /// Pointers of values that do not fit their type: decoding removes them first.
    pub invalid_values: Vec<String>,
}

/// Checks `doc` against phoenix's schema for `kind`.
/// Keys the users' files carried at some revision, where phoenix has no key of its own, that
/// phoenix reads but does not act on yet: from November 2025 a `firewall` where phoenix has
/// none, the bootstrap CA's URL, id maps, a template file, Swarm roles and node labels; from
/// the early revisions the hypervisor file's `vms` stub, a container's `volumes`, its
/// integration tests and the vLLM settings (`vllm`, `vllm_*`), a VM's `qm_options`,
/// `portainer_config`, `docker_compose_files`, `docker_firewall_rules` and Portainer admin
/// credentials.
pub const KEYS_NOT_ACTED_ON: &[&str] = &[
    "firewall",
    "bootstrap_ca_url",
    "id_maps",
    "template_file",
    "swarm_role",
    "node_labels",
    "vms",
    "volumes",
    "integration_tests",
    "run_integration_tests",
    "vllm",
    "qm_options",
    "portainer_config",
    "docker_compose_files",
    "docker_firewall_rules",
    "portainer_admin_user",
    "portainer_admin_password",
];

/// Whether phoenix reads `key` without acting on it (see [`KEYS_NOT_ACTED_ON`]).
pub fn not_acted_on(key: &str) -> bool {
    KEYS_NOT_ACTED_ON.contains(&key) || key.starts_with("vllm_")
}

/// One PHX-KEY-003 per key over all files: the first place, and how many there are.
pub fn once_per_later_key(diagnostics: Vec<Diagnostic>) -> Vec<Diagnostic> {
    let mut counts: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for d in diagnostics.iter().filter(|d| d.code == "PHX-KEY-003") {
        *counts.entry(d.message.clone()).or_default() += 1;
    }
    let mut said = std::collections::BTreeSet::new();
    diagnostics
        .into_iter()
        .filter_map(|mut d| {
            if d.code != "PHX-KEY-003" {
                return Some(d);
            }
            if !said.insert(d.message.clone()) {
                return None;
            }
            let count = counts[&d.message];
            if count > 1 {
                d.message.push_str(&format!(" ({count} places; this is the first)"));
            }
            Some(d)
        })
        .collect()
}

pub fn check(doc: &JsonDoc, file_kind: FileKind) -> SchemaReport {
    let checker = checker();
    let validator = &checker.validators.iter().find(|(k, _)| *k == file_kind).expect("every kind has a validator").1;
    let mut report = SchemaReport::default();
    for (pointer, kind) in validator.iter_errors(&doc.value).flat_map(best_match) {
        // Enum violations keep their value: it still decodes as a string, and the specific
        // check (e.g. PHX-FW-005) can then quote it.
        if !matches!(
            kind,
            ValidationErrorKind::Required { .. }
                | ValidationErrorKind::Enum { .. }
                | ValidationErrorKind::AdditionalProperties { .. }
                | ValidationErrorKind::UnevaluatedProperties { .. }
        ) {
            report.invalid_values.push(pointer.clone());
        }
        report.diagnostics.extend(diagnose(doc, &pointer, &kind, &checker.known_keys, file_kind));
    }
    report
}

/// Replaces an anyOf/oneOf failure by the errors of the branch the value was meant for
/// (the only one that does not reject it by type at the same place), so `Option<T>` fields
/// report the real problem inside `T`. Returns (instance pointer, kind) pairs.
fn best_match(error: jsonschema::ValidationError<'_>) -> Vec<(String, ValidationErrorKind)> {
    let parts = error.into_parts();
    let here = parts.instance_path.as_str().to_string();
    let context = match parts.kind {
        ValidationErrorKind::AnyOf { context } | ValidationErrorKind::OneOfNotValid { context } => context,
        kind => return vec![(here, kind)],
    };
    let rejected_by_type = |branch: &Vec<jsonschema::ValidationError<'static>>| {
        branch.iter().any(|e| e.instance_path().as_str() == here && matches!(e.kind(), ValidationErrorKind::Type { .. }))
    };
    let fitting = context.iter().filter(|b| !b.is_empty() && !rejected_by_type(b)).count();
    if fitting == 1 {
        let branch = context.into_iter().find(|b| !b.is_empty() && !rejected_by_type(b)).expect("counted above");
        return branch.into_iter().flat_map(best_match).collect();
    }
    vec![(here, ValidationErrorKind::AnyOf { context: Vec::new() })]
}

fn json_type_name(value: Option<&Value>) -> &'static str {
    match value {
        None | Some(Value::Null) => "null",
        Some(Value::Bool(_)) => "a boolean",
        Some(Value::Number(_)) => "a number",
        Some(Value::String(_)) => "a string",
        Some(Value::Array(_)) => "an array",
        Some(Value::Object(_)) => "an object",
    }
}

fn describe_type(kind: &TypeKind) -> String {
    match kind {
        TypeKind::Single(t) => t.to_string(),
        TypeKind::Multiple(set) => set.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(" or "),
    }
}

fn diagnose(doc: &JsonDoc, pointer: &str, kind: &ValidationErrorKind, known: &[String], file: FileKind) -> Vec<Diagnostic> {
    let found = json_type_name(doc.value.pointer(pointer));
    let at = doc.span(pointer);
    let here = if pointer.is_empty() { "the file".to_string() } else { format!("`{pointer}`") };
    match kind {
        ValidationErrorKind::Type { kind } => {
            vec![Diagnostic::at("PHX-SCHEMA-001", at, format!("{here} must be {}, found {found}", describe_type(kind)))
                .help(format!("see `phoenix schema {}`", file.file_name()))]
        }
        ValidationErrorKind::AnyOf { .. } | ValidationErrorKind::OneOfNotValid { .. } => {
            vec![Diagnostic::at("PHX-SCHEMA-001", at, format!("{here} has none of the accepted forms (found {found})"))
                .help(format!("see `phoenix schema {}` for the accepted forms", file.file_name()))]
        }
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().unwrap_or_default();
            vec![Diagnostic::at("PHX-SCHEMA-002", at, format!("{here} lacks the required key `{name}`")).help(format!("add \"{name}\""))]
        }
        ValidationErrorKind::Enum { options } => {
            let allowed: Vec<String> = options.as_array().into_iter().flatten().map(|o| o.to_string()).collect();
            vec![Diagnostic::at("PHX-SCHEMA-003", at, format!("{here} is not an allowed value"))
                .help(format!("use one of: {}", allowed.join(", ")))]
        }
        ValidationErrorKind::AdditionalProperties { unexpected } | ValidationErrorKind::UnevaluatedProperties { unexpected } => unexpected
            .iter()
            .map(|key| {
                let span = doc.key_span(&join(pointer, key));
                if not_acted_on(key) {
                    return Diagnostic::at("PHX-KEY-003", span, format!("`{key}` is read, but phoenix does not act on it yet"));
                }
                let diagnostic = Diagnostic::at("PHX-KEY-001", span, format!("unknown key `{key}` in {here}; it has no effect"));
                match did_you_mean(key, known.iter().map(String::as_str)) {
                    Some(suggestion) => diagnostic.help(format!("did you mean `{suggestion}`?")),
                    None => diagnostic.help(format!("see `phoenix schema {}` for the known keys", file.file_name())),
                }
            })
            .collect(),
        other => vec![Diagnostic::at("PHX-SCHEMA-004", at, format!("{here} violates the schema keyword `{}`", other.keyword()))],
    }
}
