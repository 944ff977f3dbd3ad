//! Strict JSON parsing that remembers where every value came from.
//! Produces a `serde_json::Value` for typed decoding and schema checks, and a span tree
//! that answers "where is /lxc_configs/101/firewall/rules/3?" for diagnostics.
//! Must not interpret the content: that is the loader's job.

use crate::diag::Diagnostic;
use crate::source::{FileId, Span};
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
    Array(Box<[SpanNode]>),
    // Boxed so that the common case, a leaf, keeps SpanNode at 24 bytes.
    Object(Box<SpanObject>),
}

#[derive(Debug, Clone)]
struct SpanObject {
    /// Key, key span, value; the last of duplicate keys wins, as in the value.
    entries: Box<[(Box<str>, (u32, u32), SpanNode)]>,
    index: Option<HashMap<Box<str>, usize>>,
}

impl SpanObject {
    fn get(&self, key: &str) -> Option<&(Box<str>, (u32, u32), SpanNode)> {
        match &self.index {
            Some(index) => index.get(key).map(|&i| &self.entries[i]),
            None => self.entries.iter().rev().find(|(k, _, _)| k.as_ref() == key),
        }
    }
}

/// Escapes one JSON Pointer segment (RFC 6901).
pub fn escape_segment(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// Appends a segment to a JSON Pointer.
pub fn join(pointer: &str, segment: impl std::fmt::Display) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(pointer.len() + 16);
    out.push_str(pointer);
    out.push('/');
    let start = out.len();
    let _ = write!(out, "{segment}");
    if out[start..].contains(['~', '/']) {
        let escaped = escape_segment(&out[start..]);
        out.truncate(start);
        out.push_str(&escaped);
    }
    out
}

fn split_pointer(pointer: &str) -> impl Iterator<Item = std::borrow::Cow<'_, str>> + '_ {
    pointer.split('/').skip(1).map(|s| {
        if s.contains('~') {
            std::borrow::Cow::Owned(s.replace("~1", "/").replace("~0", "~"))
        } else {
            std::borrow::Cow::Borrowed(s)
        }
    })
}

/// A position in a parsed document, for looking up children without walking from the root.
#[derive(Clone, Copy)]
pub struct Cursor<'d> {
    file: FileId,
    node: &'d SpanNode,
    key: (u32, u32),
}

impl<'d> Cursor<'d> {
    pub fn span(&self) -> Span {
        Span { file: self.file, start: self.node.start, end: self.node.end }
    }

    /// The span of the key naming this value (the value's span for array items).
    pub fn key_span(&self) -> Span {
        Span { file: self.file, start: self.key.0, end: self.key.1 }
    }

    pub fn get(&self, key: &str) -> Option<Cursor<'d>> {
        match &self.node.kind {
            SpanKind::Object(object) => object.get(key).map(|(_, k, v)| Cursor { file: self.file, node: v, key: *k }),
            _ => None,
        }
    }

    pub fn at(&self, index: usize) -> Option<Cursor<'d>> {
        match &self.node.kind {
            SpanKind::Array(items) => items.get(index).map(|v| Cursor { file: self.file, node: v, key: (v.start, v.end) }),
            _ => None,
        }
    }

    /// The child named by one pointer segment: an index in arrays, a key in objects.
    fn child(&self, segment: &str) -> Option<Cursor<'d>> {
        match &self.node.kind {
            SpanKind::Array(_) => self.at(segment.parse().ok()?),
            _ => self.get(segment),
        }
    }

    /// Span of item `index` of child `key`, falling back to the child, then to this value.
    pub fn item_span(&self, key: &str, index: usize) -> Span {
        match self.get(key) {
            Some(list) => list.at(index).map_or(list.span(), |item| item.span()),
            None => self.span(),
        }
    }

    /// Span of a child, or this value's span when the child is absent.
    pub fn span_of(&self, key: &str) -> Span {
        self.get(key).map_or(self.span(), |c| c.span())
    }
}

impl JsonDoc {
    /// A cursor at `pointer`, when the pointer names a value (relocations applied).
    pub fn cursor(&self, pointer: &str) -> Option<Cursor<'_>> {
        let (cursor, complete) = self.deepest(pointer);
        complete.then_some(cursor)
    }

    /// Walks `pointer` as far as it leads: the deepest value reached, and whether all of it was.
    fn deepest(&self, pointer: &str) -> (Cursor<'_>, bool) {
        let pointer = self.relocated(pointer);
        let mut cursor = Cursor { file: self.file, node: &self.root, key: (self.root.start, self.root.end) };
        for segment in split_pointer(&pointer) {
            match cursor.child(&segment) {
                Some(next) => cursor = next,
                None => return (cursor, false),
            }
        }
        (cursor, true)
    }

    /// Span of the value at `pointer`; falls back to the nearest existing ancestor.
    pub fn span(&self, pointer: &str) -> Span {
        let (start, end) = self.lookup(pointer, false);
        Span { file: self.file, start, end }
    }

    /// Span of the key naming the value at `pointer` (the value's span for array items and the root).
    pub fn key_span(&self, pointer: &str) -> Span {
        let (start, end) = self.lookup(pointer, true);
        Span { file: self.file, start, end }
    }

    /// Whether `pointer` names a value in the file.
    pub fn contains(&self, pointer: &str) -> bool {
        self.value.pointer(pointer).is_some()
    }

    fn lookup(&self, pointer: &str, want_key: bool) -> (u32, u32) {
        let (cursor, complete) = self.deepest(pointer);
        let span = if complete && want_key { cursor.key_span() } else { cursor.span() };
        (span.start, span.end)
    }

    fn relocated<'p>(&self, pointer: &'p str) -> std::borrow::Cow<'p, str> {
        for (now, original) in &self.relocations {
            let rest = pointer.strip_prefix(now.as_str());
            if let Some(rest) = rest.filter(|r| r.is_empty() || r.starts_with('/')) {
                return std::borrow::Cow::Owned(format!("{original}{rest}"));
            }
        }
        std::borrow::Cow::Borrowed(pointer)
    }

    /// Moves the value at `from` to `to` (a missing `to` parent is not created), keeping
    /// spans pointing at the original place. Returns false when nothing was moved.
    pub fn relocate(&mut self, from: &str, to: &str) -> bool {
        let Some(value) = take_pointer(&mut self.value, from) else {
            return false;
        };
        let (parent, key) = match to.rfind('/') {
            Some(i) => (&to[..i], split_pointer(&to[i..]).next().map(|k| k.into_owned()).unwrap_or_default()),
            None => return false,
        };
        match self.value.pointer_mut(parent).and_then(|p| p.as_object_mut()) {
            Some(object) => {
                object.insert(key, value);
                let original = self.relocated(from).into_owned();
                self.relocations.push((to.to_string(), original));
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
        serde_json::Value::Object(object) => object.remove(key.as_ref()),
        serde_json::Value::Array(items) => {
            let index = key.parse::<usize>().ok().filter(|&i| i < items.len())?;
            // Keep indices stable for span lookups: replace with null instead of shifting.
            Some(std::mem::replace(&mut items[index], serde_json::Value::Null))
        }
        _ => None,
    }
}

/// Parses `text` as strict JSON (RFC 8259, as jq reads it). On a syntax error, returns the
/// diagnostic and no document.
///
/// The value comes from serde_json (strict, depth-limited); the span tree from a second pass
/// over jsonc-parser's tokens, which only runs on text already known to be valid.
pub fn parse(file: FileId, text: &str) -> Result<(JsonDoc, Vec<Diagnostic>), Diagnostic> {
    if text.starts_with('\u{feff}') {
        return Err(Diagnostic::at("PHX-JSON-001", Span::new(file, 0, 3), "the file starts with a UTF-8 byte order mark (BOM)")
            .help("save the file as UTF-8 without a BOM: JSON text must not begin with one (RFC 8259, section 8.1)"));
    }
    if let Some(offset) = too_deep(text) {
        return Err(Diagnostic::at("PHX-JSON-003", Span::new(file, offset, offset + 1), format!("nesting deeper than {MAX_DEPTH} levels")));
    }
    let value: serde_json::Value = serde_json::from_str(text).map_err(|error| syntax_error(file, text, &error))?;
    let mut duplicates = Vec::new();
    let root = span_tree(file, text, &mut duplicates)?;
    Ok((JsonDoc { file, value, root, relocations: Vec::new() }, duplicates))
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

fn syntax_error(file: FileId, text: &str, error: &serde_json::Error) -> Diagnostic {
    let offset = offset_of(text, error.line(), error.column());
    let message = error.to_string();
    let message = message.split(" at line ").next().unwrap_or(&message).to_string();
    let mut end = (offset + 1).min(text.len()).max(offset);
    while !text.is_char_boundary(end) {
        end += 1;
    }
    Diagnostic::at("PHX-JSON-001", Span::new(file, offset, end), message)
        .help("this file must be plain JSON (RFC 8259): no comments, no trailing commas, double-quoted keys")
}

/// Byte offset of serde_json's 1-based line and column (column counts bytes; 0 means line start).
fn offset_of(text: &str, line: usize, column: usize) -> usize {
    let line_start = text.split_inclusive('\n').take(line.saturating_sub(1)).map(str::len).sum::<usize>();
    let mut offset = (line_start + column.saturating_sub(1)).min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// Reports duplicate keys and keeps only the last of each, as the value does.
fn report_duplicates(file: FileId, entries: &mut Vec<(Box<str>, (u32, u32), SpanNode)>, duplicates: &mut Vec<Diagnostic>) {
    if entries.len() < 2 {
        return;
    }
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(entries.len());
    let mut superseded = Vec::new();
    for (i, (key, range, _)) in entries.iter().enumerate() {
        if let Some(&first) = seen.get(key.as_ref()) {
            let (first_start, first_end) = entries[first].1;
            duplicates.push(
                Diagnostic::at(
                    "PHX-JSON-002",
                    Span::new(file, range.0 as usize, range.1 as usize),
                    format!("duplicate key `{key}`; the last value is used"),
                )
                .related(Span::new(file, first_start as usize, first_end as usize), "first defined here"),
            );
            superseded.push(first);
        }
        seen.insert(key, i);
    }
    if !superseded.is_empty() {
        let mut index = 0;
        entries.retain(|_| {
            index += 1;
            !superseded.contains(&(index - 1))
        });
    }
}

/// An object or array being assembled while tokens stream by.
enum Frame {
    Object { start: u32, entries: Vec<(Box<str>, (u32, u32), SpanNode)>, key: Option<(Box<str>, (u32, u32))> },
    Array { start: u32, items: Vec<SpanNode> },
}

fn span_tree(file: FileId, text: &str, duplicates: &mut Vec<Diagnostic>) -> Result<SpanNode, Diagnostic> {
    let mut scanner = jsonc_parser::Scanner::new(text, &jsonc_parser::ScannerOptions::default());
    let mut stack: Vec<Frame> = Vec::new();
    let mut root = None;
    let invalid = |at: usize| Diagnostic::at("PHX-JSON-001", Span::new(file, at, at + 1), "unexpected token");
    loop {
        let token = scanner.scan().map_err(|e| invalid(e.range().start))?;
        let Some(token) = token else { break };
        let (start, end) = (scanner.token_start() as u32, scanner.token_end() as u32);
        use jsonc_parser::tokens::Token;
        let node = match token {
            Token::OpenBrace => {
                stack.push(Frame::Object { start, entries: Vec::new(), key: None });
                continue;
            }
            Token::OpenBracket => {
                stack.push(Frame::Array { start, items: Vec::new() });
                continue;
            }
            Token::CloseBrace | Token::CloseBracket => match stack.pop() {
                Some(Frame::Object { start, mut entries, .. }) => {
                    report_duplicates(file, &mut entries, duplicates);
                    let index = (entries.len() > INDEX_THRESHOLD)
                        .then(|| entries.iter().enumerate().map(|(i, (k, _, _))| (k.clone(), i)).collect());
                    let object = SpanObject { entries: entries.into_boxed_slice(), index };
                    SpanNode { start, end, kind: SpanKind::Object(Box::new(object)) }
                }
                Some(Frame::Array { start, items }) => SpanNode { start, end, kind: SpanKind::Array(items.into_boxed_slice()) },
                None => return Err(invalid(start as usize)),
            },
            Token::Comma | Token::Colon | Token::CommentLine(_) | Token::CommentBlock(_) => continue,
            Token::String(value) => {
                if let Some(Frame::Object { key: key @ None, .. }) = stack.last_mut() {
                    *key = Some((value.into_owned().into_boxed_str(), (start, end)));
                    continue;
                }
                SpanNode { start, end, kind: SpanKind::Leaf }
            }
            Token::Word(_) | Token::Boolean(_) | Token::Number(_) | Token::Null => SpanNode { start, end, kind: SpanKind::Leaf },
        };
        match stack.last_mut() {
            Some(Frame::Object { entries, key, .. }) => {
                let (name, key_range) = key.take().ok_or_else(|| invalid(node.start as usize))?;
                entries.push((name, key_range, node));
            }
            Some(Frame::Array { items, .. }) => items.push(node),
            None => root = Some(node),
        }
    }
    root.ok_or_else(|| Diagnostic::at("PHX-JSON-001", Span::new(file, 0, 0), "the file holds no JSON value"))
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
        assert_eq!(&text[fallback.start as usize..fallback.end as usize], r#"{"b": [1, {"c": "x"}]}"#);
    }

    #[test]
    fn a_byte_order_mark_is_named() {
        let err = parse(FileId(0), "\u{feff}{}").unwrap_err();
        assert_eq!((err.code, err.span.unwrap().start), ("PHX-JSON-001", 0));
        assert!(err.message.contains("byte order mark"), "{}", err.message);
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
