//! Diagnostics: what is wrong with a configuration, where, and what to do about it.
//! Owns the diagnostic type, the collector and the stable code registry.
//! Must not print: rendering lives in [`render`], and the CLI decides where output goes.

pub mod codes;
pub mod render;

use crate::source::{SourceMap, Span};
pub use codes::{explain, CodeInfo, CODES};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    /// Said for the user's information (a key read but not acted on yet).
    Info,
}

/// One finding about the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub code: &'static str,
    pub severity: Severity,
    pub span: Option<Span>,
    pub message: String,
    pub help: Option<String>,
    /// Other places that explain the finding (e.g. "first defined here").
    pub related: Vec<(Span, String)>,
}

impl Diagnostic {
    /// A diagnostic with the default severity of `code`.
    ///
    /// # Panics
    /// In debug builds, when `code` is not in the registry (a programming error caught by tests).
    pub fn new(code: &'static str, span: Option<Span>, message: impl Into<String>) -> Self {
        let severity = codes::lookup(code).map(|c| c.severity).unwrap_or(Severity::Error);
        debug_assert!(codes::lookup(code).is_some(), "unregistered diagnostic code {code}");
        Diagnostic { code, severity, span, message: message.into(), help: None, related: Vec::new() }
    }

    pub fn at(code: &'static str, span: Span, message: impl Into<String>) -> Self {
        Self::new(code, Some(span), message)
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn related(mut self, span: Span, label: impl Into<String>) -> Self {
        self.related.push((span, label.into()));
        self
    }

    pub fn severity(mut self, severity: Severity) -> Self {
        self.severity = severity;
        self
    }
}

/// Collects diagnostics from every stage of one run.
#[derive(Debug, Default, Clone)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.items.push(diagnostic);
    }

    pub fn extend(&mut self, other: impl IntoIterator<Item = Diagnostic>) {
        self.items.extend(other);
    }

    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn error_count(&self) -> usize {
        self.items.iter().filter(|d| d.severity == Severity::Error).count()
    }

    pub fn warning_count(&self) -> usize {
        self.items.iter().filter(|d| d.severity == Severity::Warning).count()
    }

    pub fn has_errors(&self) -> bool {
        self.error_count() > 0
    }

    pub fn has_code(&self, code: &str) -> bool {
        self.items.iter().any(|d| d.code == code)
    }

    /// Orders by file, position and code, and drops generic schema findings where a
    /// specific check reported the same place, so each problem is said once.
    pub fn finish(mut self, sources: &SourceMap) -> Vec<Diagnostic> {
        let specific: std::collections::HashSet<Span> =
            self.items.iter().filter(|d| !d.code.starts_with("PHX-SCHEMA")).filter_map(|d| d.span).collect();
        self.items.retain(|d| !(d.code.starts_with("PHX-SCHEMA") && d.span.is_some_and(|s| specific.contains(&s))));
        self.items.sort_by(|a, b| {
            let key = |d: &Diagnostic| {
                let path = d.span.map(|s| sources.path(s.file).to_path_buf());
                (path, d.span.map(|s| s.start), d.code, d.message.clone())
            };
            key(a).cmp(&key(b))
        });
        self.items.dedup();
        self.items
    }
}
