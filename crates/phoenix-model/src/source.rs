//! The source map: every file phoenix read, its text, and how byte offsets map to
//! line and column. Owns secret masking of displayed source lines.
//! Must not read files itself: texts are handed in by the loader.

use std::path::{Path, PathBuf};

/// Index of a file in the [`SourceMap`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileId(pub u32);

/// A byte range in one source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span {
    pub file: FileId,
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn new(file: FileId, start: usize, end: usize) -> Self {
        Span { file, start: start as u32, end: end.max(start) as u32 }
    }
}

/// One loaded file.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The path as phoenix shows it (as given on the command line, joined).
    pub path: PathBuf,
    pub text: String,
    line_starts: Vec<u32>,
    /// Byte ranges holding secret values; they are masked wherever a line is shown.
    secret_ranges: Vec<(u32, u32)>,
}

/// 1-based line and column (column counted in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct LineCol {
    pub line: usize,
    pub column: usize,
}

impl SourceFile {
    fn new(path: PathBuf, text: String) -> Self {
        let mut line_starts = vec![0u32];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| (i + 1) as u32));
        SourceFile { path, text, line_starts, secret_ranges: Vec::new() }
    }

    pub fn line_col(&self, offset: u32) -> LineCol {
        let offset = offset.min(self.text.len() as u32);
        let line_index = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let line_start = self.line_starts[line_index] as usize;
        let mut end = offset as usize;
        while !self.text.is_char_boundary(end) {
            end -= 1;
        }
        let column = self.text[line_start..end].chars().count() + 1;
        LineCol { line: line_index + 1, column }
    }

    /// Byte offset of a 1-based line and column (column in characters), clamped to the text.
    pub fn offset_of(&self, line: usize, column: usize) -> u32 {
        let Some(&start) = self.line_starts.get(line.saturating_sub(1)) else {
            return self.text.len() as u32;
        };
        let rest = &self.text[start as usize..];
        let within = rest.char_indices().nth(column.saturating_sub(1)).map_or(rest.len(), |(i, _)| i);
        start + within as u32
    }

    /// The text with every secret range replaced by asterisks of the same byte length,
    /// so offsets stay valid for snippet rendering.
    pub fn masked_text(&self) -> std::borrow::Cow<'_, str> {
        if self.secret_ranges.is_empty() {
            return std::borrow::Cow::Borrowed(&self.text);
        }
        let mut bytes = self.text.clone().into_bytes();
        for &(start, end) in &self.secret_ranges {
            let (start, end) = (start as usize, (end as usize).min(bytes.len()));
            for b in &mut bytes[start..end] {
                // Keep UTF-8 valid: every byte of the range becomes an ASCII '*'.
                *b = b'*';
            }
        }
        std::borrow::Cow::Owned(String::from_utf8(bytes).unwrap_or_default())
    }

    pub fn is_secret(&self, start: u32, end: u32) -> bool {
        self.secret_ranges.iter().any(|&(s, e)| s < end && start < e)
    }
}

/// All files read in one run.
#[derive(Debug, Default, Clone)]
pub struct SourceMap {
    files: Vec<SourceFile>,
}

impl SourceMap {
    pub fn add(&mut self, path: impl Into<PathBuf>, text: String) -> FileId {
        self.files.push(SourceFile::new(path.into(), text));
        FileId(self.files.len() as u32 - 1)
    }

    /// Registers a path that could not be read, so diagnostics can still name it.
    pub fn add_unreadable(&mut self, path: impl Into<PathBuf>) -> FileId {
        self.add(path, String::new())
    }

    pub fn file(&self, id: FileId) -> &SourceFile {
        &self.files[id.0 as usize]
    }

    pub fn path(&self, id: FileId) -> &Path {
        &self.file(id).path
    }

    pub fn text(&self, id: FileId) -> &str {
        &self.file(id).text
    }

    /// Marks `span` as holding a secret: it is never shown.
    pub fn mark_secret(&mut self, span: Span) {
        let file = &mut self.files[span.file.0 as usize];
        file.secret_ranges.push((span.start, span.end));
    }

    pub fn line_col(&self, span: Span) -> LineCol {
        self.file(span.file).line_col(span.start)
    }

    pub fn files(&self) -> impl Iterator<Item = (FileId, &SourceFile)> {
        self.files.iter().enumerate().map(|(i, f)| (FileId(i as u32), f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based_and_count_characters() {
        let mut map = SourceMap::default();
        let id = map.add("a.json", "{\n  \"é\": 1\n}".to_string());
        let pos = map.file(id).text.find('1').unwrap() as u32;
        assert_eq!(map.file(id).line_col(pos), LineCol { line: 2, column: 8 });
        assert_eq!(map.file(id).line_col(0), LineCol { line: 1, column: 1 });
    }

    #[test]
    fn masking_hides_secret_bytes_and_keeps_offsets() {
        let mut map = SourceMap::default();
        let id = map.add("a.json", "{\"p\": \"hunter2\"}".to_string());
        map.mark_secret(Span::new(id, 7, 14));
        let masked = map.file(id).masked_text();
        assert!(!masked.contains("hunter2"));
        assert_eq!(masked.len(), map.text(id).len());
    }
}
