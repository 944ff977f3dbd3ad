//! Strict JSON parsing that remembers where every value came from.
//! Produces a `serde_json::Value` for typed decoding and schema checks, and a span tree
//! that answers "where is /lxc_configs/101/firewall/rules/3?" for diagnostics.
//! Must not interpret the content: that is the loader's job.

use crate::diag::Diagnostic;
use crate::source::{FileId, Span};
use jsonc_parser::ast;
use jsonc_parser::common::Ranged;
use std::collections::HashMap;

/// Deepest nesting accepted; deeper input is refused before parsing, so a hostile file
/// cannot exhaust the stack of the recursive parser.
pub const MAX_DEPTH: usize = 128;

/// Objects with more keys than this get a hash index for span lookups.
const INDEX_THRESHOLD: usize = 16;

/// A parsed JSON file: its value and where each part of it is.
#[derive(Debug, Clone)]
pub struct JsonDoc {
    pub file: FileId,
    pub value: serde_json::Value,
    root: SpanNode,
    /// Sections that were found elsewhere and moved: (pointer used now, pointer in the file).
    relocations: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
struct SpanNode {
    start: u32,
    end: u32,
    kind: SpanKind,
}

#[derive(Debug, Clone)]
enum SpanKind {
    Leaf,
    Array(Vec<SpanNode>),
    Object(SpanObject),
}

#[derive(Debug, Clone)]
struct SpanObject {
    /// Key, key span, value; the last of duplicate keys wins, as in the value.
    entries: Vec<(String, (u32, u32), SpanNode)>,
    index: Option<HashMap<String, usize>>,
}

impl SpanObject {
    fn get(&self, key: &str) -> Option<&(String, (u32, u32), SpanNode)> {
        match &self.index {
            Some(index) => index.get(key).map(|&i| &self.entries[i]),
            None => self.entries.iter().rev().find(|(k, _, _)| k == key),
        }
    }
}

/// Escapes one JSON Pointer segment (RFC 6901).
pub fn escape_segment(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// Appends a segment to a JSON Pointer.
pub fn join(pointer: &str, segment: impl std::fmt::Display) -> String {
    format!("{pointer}/{}", escape_segment(&segment.to_string()))
}

fn split_pointer(pointer: &str) -> impl Iterator<Item = String> + '_ {
    pointer
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
}

impl JsonDoc {
    /// Span of the value at `pointer`; falls back to the nearest existing ancestor.
    pub fn span(&self, pointer: &str) -> Span {
        let (start, end) = self.lookup(pointer, false);
        Span {
            file: self.file,
            start,
            end,
        }
    }

    /// Span of the key naming the value at `pointer` (the value's span for array items and the root).
    pub fn key_span(&self, pointer: &str) -> Span {
        let (start, end) = self.lookup(pointer, true);
        Span {
            file: self.file,
            start,
            end,
        }
    }

    /// Whether `pointer` names a value in the file.
    pub fn contains(&self, pointer: &str) -> bool {
        self.value.pointer(pointer).is_some()
    }

    fn lookup(&self, pointer: &str, want_key: bool) -> (u32, u32) {
        let pointer = self.relocated(pointer);
        let mut node = &self.root;
        let mut found = (node.start, node.end);
        for segment in split_pointer(&pointer) {
            let next = match &node.kind {
                SpanKind::Object(object) => {
                    object.get(&segment).map(|(_, key, value)| (*key, value))
                }
                SpanKind::Array(items) => segment
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| items.get(i))
                    .map(|value| ((value.start, value.end), value)),
                SpanKind::Leaf => None,
            };
            match next {
                Some((key, value)) => {
                    node = value;
                    found = if want_key {
                        key
                    } else {
                        (value.start, value.end)
                    };
                }
                None => return (node.start, node.end),
            }
        }
        found
    }

    fn relocated(&self, pointer: &str) -> String {
        for (now, original) in &self.relocations {
            if pointer == now || pointer.starts_with(&format!("{now}/")) {
                return format!("{original}{}", &pointer[now.len()..]);
            }
        }
        pointer.to_string()
    }

    /// Moves the value at `from` to `to` (a missing `to` parent is not created), keeping
    /// spans pointing at the original place. Returns false when nothing was moved.
    pub fn relocate(&mut self, from: &str, to: &str) -> bool {
        let Some(value) = take_pointer(&mut self.value, from) else {
            return false;
        };
        let (parent, key) = match to.rfind('/') {
            Some(i) => (&to[..i], split_pointer(&to[i..]).next().unwrap_or_default()),
            None => return false,
        };
        match self
            .value
            .pointer_mut(parent)
            .and_then(|p| p.as_object_mut())
        {
            Some(object) => {
                object.insert(key, value);
                self.relocations
                    .push((to.to_string(), self.relocated(from)));
                true
            }
            None => false,
        }
    }
}

/// Removes and returns the value at `pointer`.
pub fn take_pointer(root: &mut serde_json::Value, pointer: &str) -> Option<serde_json::Value> {
    let i = pointer.rfind('/')?;
    let key = split_pointer(&pointer[i..]).next()?;
    match root.pointer_mut(&pointer[..i])? {
        serde_json::Value::Object(object) => object.shift_remove(&key),
        serde_json::Value::Array(items) => {
            let index = key.parse::<usize>().ok().filter(|&i| i < items.len())?;
            // Keep indices stable for span lookups: replace with null instead of shifting.
            Some(std::mem::replace(
                &mut items[index],
                serde_json::Value::Null,
            ))
        }
        _ => None,
    }
}

/// Parses `text` as strict JSON. On a syntax error, returns the diagnostic and no document.
pub fn parse(file: FileId, text: &str) -> Result<(JsonDoc, Vec<Diagnostic>), Diagnostic> {
    if let Some(offset) = too_deep(text) {
        return Err(Diagnostic::at(
            "PHX-JSON-003",
            Span::new(file, offset, offset + 1),
            format!("nesting deeper than {MAX_DEPTH} levels"),
        ));
    }
    let options = ast_strict_options();
    let collect = jsonc_parser::CollectOptions {
        comments: jsonc_parser::CommentCollectionStrategy::Off,
        tokens: false,
    };
    let parsed = jsonc_parser::parse_to_ast(text, &collect, &options).map_err(|error| {
        let range = error.range();
        Diagnostic::at(
            "PHX-JSON-001",
            Span::new(file, range.start, range.end.max(range.start + 1)),
            error.kind().to_string(),
        )
        .help("this file must be plain JSON (RFC 8259): no comments, no trailing commas")
    })?;
    let Some(root) = parsed.value else {
        return Err(Diagnostic::at(
            "PHX-JSON-001",
            Span::new(file, 0, 0),
            "the file holds no JSON value",
        ));
    };
    let mut duplicates = Vec::new();
    let (value, spans) = convert(file, root, &mut duplicates);
    Ok((
        JsonDoc {
            file,
            value,
            root: spans,
            relocations: Vec::new(),
        },
        duplicates,
    ))
}

fn ast_strict_options() -> jsonc_parser::ParseOptions {
    jsonc_parser::ParseOptions {
        allow_comments: false,
        allow_loose_object_property_names: false,
        allow_trailing_commas: false,
        allow_missing_commas: false,
        allow_single_quoted_strings: false,
        allow_hexadecimal_numbers: false,
        allow_unary_plus_numbers: false,
        allow_bare_decimal_point_numbers: false,
        allow_non_finite_numbers: false,
        allow_extended_string_escapes: false,
    }
}

/// Byte offset where nesting first exceeds [`MAX_DEPTH`], ignoring brackets inside strings.
fn too_deep(text: &str) -> Option<usize> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (i, b) in text.bytes().enumerate() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Some(i);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

fn convert(
    file: FileId,
    node: ast::Value<'_>,
    duplicates: &mut Vec<Diagnostic>,
) -> (serde_json::Value, SpanNode) {
    use serde_json::Value as J;
    let leaf = |range: jsonc_parser::common::Range| SpanNode {
        start: range.start as u32,
        end: range.end as u32,
        kind: SpanKind::Leaf,
    };
    match node {
        ast::Value::NullKeyword(n) => (J::Null, leaf(n.range)),
        ast::Value::BooleanLit(b) => (J::Bool(b.value), leaf(b.range)),
        ast::Value::StringLit(s) => (J::String(s.value.into_owned()), leaf(s.range)),
        ast::Value::NumberLit(n) => (parse_number(n.value), leaf(n.range)),
        ast::Value::Array(array) => {
            let (mut values, mut spans) = (
                Vec::with_capacity(array.elements.len()),
                Vec::with_capacity(array.elements.len()),
            );
            for element in array.elements {
                let (v, s) = convert(file, element, duplicates);
                values.push(v);
                spans.push(s);
            }
            (
                J::Array(values),
                SpanNode {
                    start: array.range.start as u32,
                    end: array.range.end as u32,
                    kind: SpanKind::Array(spans),
                },
            )
        }
        ast::Value::Object(object) => {
            let mut map = serde_json::Map::with_capacity(object.properties.len());
            let mut entries: Vec<(String, (u32, u32), SpanNode)> =
                Vec::with_capacity(object.properties.len());
            let mut first_seen: HashMap<String, Span> = HashMap::new();
            for property in object.properties {
                let key_range = property.name.range();
                let key_span = Span::new(file, key_range.start, key_range.end);
                let key = property.name.into_string();
                if let Some(first) = first_seen.get(&key) {
                    duplicates.push(
                        Diagnostic::at(
                            "PHX-JSON-002",
                            key_span,
                            format!("duplicate key `{key}`; the last value is used"),
                        )
                        .related(*first, "first defined here"),
                    );
                } else {
                    first_seen.insert(key.clone(), key_span);
                }
                let (v, s) = convert(file, property.value, duplicates);
                map.insert(key.clone(), v);
                entries.push((key, (key_span.start, key_span.end), s));
            }
            let index = (entries.len() > INDEX_THRESHOLD).then(|| {
                entries
                    .iter()
                    .enumerate()
                    .map(|(i, (k, _, _))| (k.clone(), i))
                    .collect()
            });
            let node = SpanNode {
                start: object.range.start as u32,
                end: object.range.end as u32,
                kind: SpanKind::Object(SpanObject { entries, index }),
            };
            (J::Object(map), node)
        }
    }
}

fn parse_number(text: &str) -> serde_json::Value {
    serde_json::from_str::<serde_json::Number>(text)
        .map(serde_json::Value::Number)
        .unwrap_or_else(|_| serde_json::Value::String(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> JsonDoc {
        parse(FileId(0), text).expect("valid").0
    }

    #[test]
    fn spans_point_at_values_and_keys() {
        let text = r#"{"a": {"b": [1, {"c": "x"}]}}"#;
        let d = doc(text);
        let span = d.span("/a/b/1/c");
        assert_eq!(&text[span.start as usize..span.end as usize], "\"x\"");
        let key = d.key_span("/a/b/1/c");
        assert_eq!(&text[key.start as usize..key.end as usize], "\"c\"");
        // A missing child falls back to its nearest ancestor.
        let fallback = d.span("/a/missing");
        assert_eq!(
            &text[fallback.start as usize..fallback.end as usize],
            r#"{"b": [1, {"c": "x"}]}"#
        );
    }

    #[test]
    fn syntax_errors_carry_a_position() {
        let err = parse(FileId(0), "{\n  \"a\": 1,\n}").unwrap_err();
        assert_eq!(err.code, "PHX-JSON-001");
        assert!(err.span.unwrap().start >= 10);
    }

    #[test]
    fn comments_are_refused() {
        assert!(parse(FileId(0), "{ // c\n}").is_err());
    }

    #[test]
    fn duplicate_keys_are_reported_and_last_wins() {
        let (d, dups) = parse(FileId(0), r#"{"a": 1, "a": 2}"#).unwrap();
        assert_eq!(d.value["a"], 2);
        assert_eq!(dups.len(), 1);
        assert_eq!(dups[0].code, "PHX-JSON-002");
    }

    #[test]
    fn deep_nesting_is_refused_without_recursion() {
        let text = "[".repeat(100_000);
        assert_eq!(parse(FileId(0), &text).unwrap_err().code, "PHX-JSON-003");
    }

    #[test]
    fn relocation_keeps_original_spans() {
        let text = r#"{"x": {"fw": {"on": true}}}"#;
        let mut d = doc(text);
        assert!(d.relocate("/x/fw", "/fw"));
        assert_eq!(d.value["fw"]["on"], true);
        let span = d.span("/fw/on");
        assert_eq!(&text[span.start as usize..span.end as usize], "true");
    }

    #[test]
    fn big_objects_are_indexed() {
        let body: Vec<String> = (0..100).map(|i| format!("\"k{i}\": {i}")).collect();
        let text = format!("{{{}}}", body.join(","));
        let d = doc(&text);
        let span = d.span("/k77");
        assert_eq!(&text[span.start as usize..span.end as usize], "77");
    }
}
