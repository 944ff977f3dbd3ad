//! Turns diagnostics into text: compiler-style human output with the offending source
//! lines (secrets masked), and the versioned JSON document.
//! Must not decide where output goes or whether colour is wanted: callers pass that in.

use super::{Diagnostic, Severity};
use crate::source::{SourceMap, Span};
use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};

/// Version of the JSON document produced by [`to_json`]; bumped on incompatible change.
pub const DIAGNOSTICS_SCHEMA_VERSION: u32 = 1;

/// Human output for every diagnostic, followed by a summary line.
pub fn to_human(diagnostics: &[Diagnostic], sources: &SourceMap, color: bool) -> String {
    let renderer = if color { Renderer::styled() } else { Renderer::plain() };
    let mut out = String::new();
    for diagnostic in diagnostics {
        out.push_str(&render_one(diagnostic, sources, &renderer));
        out.push_str("\n\n");
    }
    out.push_str(&summary_line(diagnostics));
    out.push('\n');
    out
}

fn count(diagnostics: &[Diagnostic], severity: Severity) -> usize {
    diagnostics.iter().filter(|d| d.severity == severity).count()
}

/// `2 errors, 1 warning`, and `, 3 info` when something is said for information.
pub fn summary_line(diagnostics: &[Diagnostic]) -> String {
    let (errors, warnings, info) =
        (count(diagnostics, Severity::Error), count(diagnostics, Severity::Warning), count(diagnostics, Severity::Info));
    let mut line = format!("{errors} error{}, {warnings} warning{}", plural(errors), plural(warnings));
    if info > 0 {
        line.push_str(&format!(", {info} info"));
    }
    line
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn render_one(diagnostic: &Diagnostic, sources: &SourceMap, renderer: &Renderer) -> String {
    let level = match diagnostic.severity {
        Severity::Error => Level::ERROR,
        Severity::Warning => Level::WARNING,
        Severity::Info => Level::INFO,
    };
    let title = level.primary_title(diagnostic.message.as_str()).id(diagnostic.code);
    let mut excerpts = Vec::new();
    if let Some(span) = diagnostic.span {
        excerpts.push(Excerpt::new(sources, span, AnnotationKind::Primary, String::new()));
    }
    for (span, label) in &diagnostic.related {
        excerpts.push(Excerpt::new(sources, *span, AnnotationKind::Context, label.clone()));
    }
    let mut group = Group::with_title(title);
    for excerpt in &excerpts {
        group = group.element(excerpt.snippet());
    }
    if let Some(help) = &diagnostic.help {
        group = group.element(Level::HELP.message(help.as_str()));
    }
    renderer.render(&[group])
}

/// The lines around one span, cut out of the masked file text so offsets stay small.
struct Excerpt {
    path: String,
    text: String,
    first_line: usize,
    range: std::ops::Range<usize>,
    kind: AnnotationKind,
    label: String,
}

impl Excerpt {
    fn new(sources: &SourceMap, span: Span, kind: AnnotationKind, label: String) -> Self {
        let file = sources.file(span.file);
        let masked = file.masked_text();
        // Spans come from byte offsets; never cut a character in half when showing them.
        let mut start = (span.start as usize).min(masked.len());
        while !masked.is_char_boundary(start) {
            start -= 1;
        }
        let mut end = (span.end as usize).clamp(start, masked.len());
        while !masked.is_char_boundary(end) {
            end += 1;
        }
        let line_start = masked[..start].rfind('\n').map_or(0, |i| i + 1);
        // Show at most the first three lines of a long span (an object spanning a page adds nothing).
        let mut line_end = end;
        let mut lines = 0;
        for (i, ch) in masked[start..].char_indices() {
            if ch == '\n' {
                lines += 1;
                if start + i >= end || lines >= 3 {
                    line_end = start + i;
                    break;
                }
            }
            line_end = start + i + ch.len_utf8();
        }
        let text = masked[line_start..line_end].to_string();
        let range_end = end.min(line_end).max(start) - line_start;
        Excerpt {
            path: file.path.display().to_string(),
            first_line: file.line_col(line_start as u32).line,
            range: (start - line_start)..range_end,
            text,
            kind,
            label,
        }
    }

    fn snippet(&self) -> Snippet<'_, annotate_snippets::Annotation<'_>> {
        let mut annotation = self.kind.span(self.range.clone());
        if !self.label.is_empty() {
            annotation = annotation.label(self.label.as_str());
        }
        Snippet::source(self.text.as_str()).line_start(self.first_line).path(self.path.as_str()).annotation(annotation)
    }
}

/// The versioned JSON document for `phoenix validate --format json`.
pub fn to_json(diagnostics: &[Diagnostic], sources: &SourceMap) -> serde_json::Value {
    let items: Vec<serde_json::Value> = diagnostics.iter().map(|d| diagnostic_json(d, sources)).collect();
    let (errors, warnings, info) =
        (count(diagnostics, Severity::Error), count(diagnostics, Severity::Warning), count(diagnostics, Severity::Info));
    serde_json::json!({
        "schema_version": DIAGNOSTICS_SCHEMA_VERSION,
        "summary": { "errors": errors, "warnings": warnings, "info": info },
        "diagnostics": items,
    })
}

fn location_json(sources: &SourceMap, span: Span) -> serde_json::Value {
    let file = sources.file(span.file);
    let start = file.line_col(span.start);
    let end = file.line_col(span.end);
    serde_json::json!({
        "file": file.path.display().to_string(),
        "line": start.line,
        "column": start.column,
        "end_line": end.line,
        "end_column": end.column,
    })
}

fn diagnostic_json(d: &Diagnostic, sources: &SourceMap) -> serde_json::Value {
    let related: Vec<serde_json::Value> =
        d.related.iter().map(|(span, label)| serde_json::json!({ "location": location_json(sources, *span), "label": label })).collect();
    serde_json::json!({
        "code": d.code,
        "severity": d.severity,
        "message": d.message,
        "help": d.help,
        "location": d.span.map(|s| location_json(sources, s)),
        "related": related,
    })
}
