//! phoenix-model: the configuration as data.
//!
//! Loading the legacy phoenix_hypervisor files (and phoenix's extensions) with a source map,
//! the typed model, phoenix's JSON Schema, diagnostics with stable codes, validation, and the
//! guest dependency graph. Everything here is pure: file contents, file existence and
//! environment come in through [`load::Source`].

pub mod diag;
pub mod facts;
pub mod graph;
pub mod json;
pub mod load;
pub mod model;
pub mod paths;
pub mod pve;
pub mod raw;
pub mod schema;
pub mod secret;
pub mod source;
pub mod validate;

pub use diag::{Diagnostic, Diagnostics, Severity};
pub use load::{load, Loaded, Source};
pub use model::Model;
pub use source::{SourceMap, Span};

/// The result of `phoenix validate`: everything loaded and every diagnostic, ordered.
#[derive(Debug)]
pub struct Checked {
    pub sources: SourceMap,
    pub model: Option<Model>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Checked {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(|d| d.severity == Severity::Error)
    }
}

/// Loads and validates the configuration in `config_dir`.
pub fn check(config_dir: &std::path::Path, source: &dyn Source) -> Checked {
    let Loaded { sources, model, mut diagnostics, facts } = load(config_dir, source);
    if let Some(model) = &model {
        diagnostics.extend(validate::validate(model, &facts));
    }
    let diagnostics = diagnostics.finish(&sources);
    Checked { sources, model, diagnostics }
}
