//! Loading a configuration folder: read each file through a [`Source`], parse it with spans,
//! move misplaced sections, check it against phoenix's schema, decode it tolerantly, and build
//! the normalised [`Model`]. Only an unreadable file or a JSON syntax error stops loading
//! (then no model is built and the file's diagnostic says where).
//! Must not touch the filesystem or environment directly: the [`Source`] does, so tests can
//! load from memory and the core stays pure.

mod build_bridges;
mod build_guests;
mod build_host;
mod build_manifest;
mod build_rules;
mod build_spec;
mod build_volumes;
mod build_stacks;
mod decode;
mod derived_dns;
mod misplaced;
mod rule_refusals;

use crate::diag::{Diagnostic, Diagnostics};
use crate::facts::Facts;
use crate::json::{self, JsonDoc};
use crate::model::Model;
use crate::raw;
use crate::schema::{self, FileKind};
use crate::source::{SourceMap, Span};
use std::path::Path;

pub use build_stacks::compose_errors;
pub use decode::decode;

/// Where configuration files, scripts and environment variables come from.
pub trait Source {
    /// The file's text. `ErrorKind::NotFound` means absent.
    fn read_to_string(&self, path: &Path) -> std::io::Result<String>;
    fn is_file(&self, path: &Path) -> bool;
    /// Whether an environment variable is set (its value is never asked for here).
    fn env_is_set(&self, name: &str) -> bool;
    /// Where `path` really is, symbolic links resolved (`None`: unknown or absent).
    fn canonical(&self, _path: &Path) -> Option<std::path::PathBuf> {
        None
    }
    /// Whether files the configuration names may lie outside the installation's tree (the
    /// user's `--allow-outside-tree`); never the configuration's own choice.
    fn allows_outside_tree(&self) -> bool {
        false
    }
}

/// What loading produced.
#[derive(Debug)]
pub struct Loaded {
    pub sources: SourceMap,
    /// `None` when a required file could not be read or parsed.
    pub model: Option<Model>,
    pub diagnostics: Diagnostics,
    /// Facts the loader probed for validation: files found, environment variables set.
    pub facts: Facts,
}

/// The parsed documents, by kind.
pub(crate) struct Docs {
    pub hypervisor: JsonDoc,
    pub lxc: JsonDoc,
    pub vm: JsonDoc,
    /// Absent in the later revisions, whose stacks live in `stacks/<name>/` only.
    pub stacks: Option<JsonDoc>,
    pub manifest: Option<JsonDoc>,
}

/// Invalid-value pointers per document, from the schema check.
pub(crate) struct Invalid {
    by_kind: Vec<(FileKind, Vec<String>)>,
}

impl Invalid {
    /// Pointers at or under `base`, made relative to it.
    pub fn under(&self, kind: FileKind, base: &str) -> Vec<String> {
        self.by_kind
            .iter()
            .filter(|(k, _)| *k == kind)
            .flat_map(|(_, pointers)| pointers.iter())
            .filter_map(|p| {
                let rest = p.strip_prefix(base)?;
                (rest.is_empty() || rest.starts_with('/')).then(|| rest.to_string())
            })
            .collect()
    }
}

/// Shared state of the model builders.
pub(crate) struct Ctx<'a> {
    pub sources: &'a mut SourceMap,
    pub diags: &'a mut Diagnostics,
    pub source: &'a dyn Source,
    pub facts: &'a mut Facts,
    pub invalid: &'a Invalid,
}

impl Ctx<'_> {
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.diags.push(diagnostic);
    }

    /// Decodes the value at `pointer` of `doc`, dropping what the schema check flagged.
    /// A value that cannot be decoded at all is reported once and skipped.
    /// As [`Ctx::decode`], for a file no schema checked first (a stack folder's phoenix.json):
    /// what does not fit is reported and left out.
    pub fn decode_unchecked<T: serde::de::DeserializeOwned>(&mut self, doc: &JsonDoc, pointer: &str) -> Option<T> {
        self.decode_pruned(doc, pointer, &[])
    }

    pub fn decode<T: serde::de::DeserializeOwned>(&mut self, doc: &JsonDoc, kind: FileKind, pointer: &str) -> Option<T> {
        let prune = self.invalid.under(kind, pointer);
        self.decode_pruned(doc, pointer, &prune)
    }

    /// Decodes the value at `pointer` without what the schema check found invalid (`prune`,
    /// already reported); what else does not fit is reported here.
    fn decode_pruned<T: serde::de::DeserializeOwned>(&mut self, doc: &JsonDoc, pointer: &str, prune: &[String]) -> Option<T> {
        let value = doc.value.pointer(pointer)?;
        let (decoded, removed) = decode::<T>(value, prune);
        for extra in removed {
            let at = format!("{pointer}{extra}");
            self.push(Diagnostic::at("PHX-SCHEMA-001", doc.span(&at), format!("`{at}` has an unexpected form and is ignored")));
        }
        if decoded.is_none() && !prune.iter().any(|p| p.is_empty()) {
            self.push(Diagnostic::at("PHX-SCHEMA-001", doc.span(pointer), format!("`{pointer}` cannot be read and is ignored")));
        }
        decoded
    }

    /// Probes whether `path` is a file, remembering the answer for validation.
    pub fn probe_file(&mut self, path: &Path) -> bool {
        let found = self.source.is_file(path);
        if found {
            self.facts.existing_files.insert(path.to_path_buf());
        }
        found
    }

    pub fn probe_env(&mut self, name: &str) {
        if self.source.env_is_set(name) {
            self.facts.env_set.insert(name.to_string());
        }
    }
}

/// Reads and parses one file. `Ok(None)` when an optional file is absent.
fn read_doc(
    dir: &Path,
    kind: FileKind,
    source: &dyn Source,
    sources: &mut SourceMap,
    diags: &mut Diagnostics,
) -> Result<Option<JsonDoc>, ()> {
    let path = dir.join(kind.file_name());
    let text = match source.read_to_string(&path) {
        Ok(text) => text,
        // The manifest came later; the stacks file went when stacks moved to their folders.
        Err(error) if error.kind() == std::io::ErrorKind::NotFound && matches!(kind, FileKind::Manifest | FileKind::Stacks) => {
            return Ok(None)
        }
        Err(error) => {
            let file = sources.add_unreadable(&path);
            diags.push(
                Diagnostic::at("PHX-IO-001", Span::new(file, 0, 0), format!("cannot read {}: {error}", kind.file_name()))
                    .help("check --config (or $PHOENIX_CONFIG_DIR) and the file's permissions"),
            );
            return Err(());
        }
    };
    let file = sources.add(&path, text);
    match json::parse(file, sources.text(file)) {
        Ok((doc, duplicates)) => {
            diags.extend(duplicates);
            Ok(Some(doc))
        }
        Err(diagnostic) => {
            diags.push(diagnostic);
            Err(())
        }
    }
}

/// Loads the configuration in `config_dir` (the etc folder).
pub fn load(config_dir: &Path, source: &dyn Source) -> Loaded {
    let mut sources = SourceMap::default();
    let mut diags = Diagnostics::default();
    let mut facts = Facts::default();
    let mut docs: Vec<(FileKind, Option<JsonDoc>)> = Vec::new();
    let mut fatal = false;
    for kind in FileKind::ALL {
        match read_doc(config_dir, kind, source, &mut sources, &mut diags) {
            Ok(doc) => docs.push((kind, doc)),
            Err(()) => fatal = true,
        }
    }
    let mut invalid = Invalid { by_kind: Vec::new() };
    let mut found = Vec::new();
    for (kind, doc) in docs.iter_mut() {
        let Some(doc) = doc else { continue };
        if *kind == FileKind::Hypervisor {
            diags.extend(misplaced::relocate_sections(doc));
        }
        let report = schema::check(doc, *kind);
        found.extend(report.diagnostics);
        invalid.by_kind.push((*kind, report.invalid_values));
    }
    diags.extend(schema::once_per_later_key(found));
    if fatal {
        return Loaded { sources, model: None, diagnostics: diags, facts };
    }
    let mut take = |kind: FileKind| docs.iter_mut().find(|(k, _)| *k == kind).and_then(|(_, d)| d.take());
    let parsed = Docs {
        hypervisor: take(FileKind::Hypervisor).expect("read above"),
        lxc: take(FileKind::Lxc).expect("read above"),
        vm: take(FileKind::Vm).expect("read above"),
        stacks: take(FileKind::Stacks),
        manifest: take(FileKind::Manifest),
    };
    let mut ctx = Ctx { sources: &mut sources, diags: &mut diags, source, facts: &mut facts, invalid: &invalid };
    let model = build(config_dir, &parsed, &mut ctx);
    Loaded { sources, model: Some(model), diagnostics: diags, facts }
}

fn build(config_dir: &Path, docs: &Docs, ctx: &mut Ctx<'_>) -> Model {
    let root_dir = config_dir.parent().map(Path::to_path_buf).unwrap_or_default();
    let hypervisor: raw::RawHypervisorConfig = ctx.decode(&docs.hypervisor, FileKind::Hypervisor, "").unwrap_or_default();
    let mut model = Model { config_dir: config_dir.to_path_buf(), root_dir, ..Model::default() };
    build_host::build(&mut model, &hypervisor, &docs.hypervisor, ctx);
    build_guests::build_lxcs(&mut model, &docs.lxc, ctx);
    build_guests::build_vms(&mut model, &docs.vm, ctx);
    build_spec::resolve_clone_snapshots(&mut model);
    build_spec::storages(&mut model, hypervisor.zfs.as_ref(), &docs.hypervisor);
    model.host.ubuntu_release =
        hypervisor.vm_defaults.as_ref().and_then(|d| d.get("ubuntu_release")).and_then(|r| r.as_str()).map(str::to_string);
    if let Some(stacks) = &docs.stacks {
        build_stacks::build(&mut model, stacks, ctx);
    }
    build_stacks::build_folders(&mut model, ctx);
    build_stacks::apply_stack_rules(&mut model);
    if let Some(manifest) = &docs.manifest {
        // Whether phoenix's DNS runs on the node, where phoenix writes dns-01 records.
        let dns_on_node = model.dns.enabled && hypervisor.edge.as_ref().is_none_or(|e| e.dns_guest.is_none());
        build_manifest::build_manifest(&mut model, manifest, dns_on_node, ctx);
    }
    build_host::resolve_edge(&mut model, &hypervisor, &docs.hypervisor, ctx);
    // Zones declared and empty: the era whose DNS script generated every record.
    let zones = "/dns_server/authoritative_zones";
    let declared_empty = docs.hypervisor.value.pointer(zones).and_then(|z| z.as_array()).is_some_and(|z| z.is_empty());
    if model.dns.enabled && declared_empty {
        derived_dns::derive(&mut model, docs.hypervisor.span(zones));
    }
    model
}
