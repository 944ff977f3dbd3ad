//! `phoenix render --diff DIR`: unified diffs between rendered files and the files found in a
//! tree laid out as on the real system (`host/...`, `guest-<id>/...`).
//! Must not read the tree: the caller hands in what it found.

use super::RenderedFile;
use std::collections::BTreeMap;

/// One file that differs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDiff {
    pub tree_path: String,
    /// Unified diff from the deployed file (or nothing) to the rendered one.
    pub unified: String,
}

/// Diffs for every rendered file whose deployed copy (`deployed[tree_path]`, `None` when
/// absent) differs.
pub fn diff(files: &[RenderedFile], deployed: &BTreeMap<String, Option<String>>) -> Vec<FileDiff> {
    files
        .iter()
        .filter_map(|file| {
            let path = file.tree_path();
            let old = deployed.get(&path).cloned().flatten();
            if old.as_deref() == Some(file.content.as_str()) {
                return None;
            }
            let unified = unified(&old.unwrap_or_default(), &file.content, &format!("deployed/{path}"), &format!("rendered/{path}"), 3);
            Some(FileDiff { tree_path: path, unified })
        })
        .collect()
}

/// The unified diff from `old` to `new` with `context` lines around each change. A new file
/// (`old` empty) is every line added, written directly: diffing against nothing costs
/// quadratic time in the line count for the large files of a big inventory.
pub fn unified(old: &str, new: &str, from: &str, to: &str, context: usize) -> String {
    if !old.is_empty() || new.is_empty() {
        return similar::TextDiff::from_lines(old, new).unified_diff().context_radius(context).header(from, to).to_string();
    }
    let lines: Vec<&str> = new.split_inclusive('\n').collect();
    // A one-line range is written without its length (GNU diff's and similar's convention).
    let range = if lines.len() == 1 { "1".to_string() } else { format!("1,{}", lines.len()) };
    let mut out = format!("--- {from}\n+++ {to}\n@@ -0,0 +{range} @@\n");
    for line in lines {
        out.push('+');
        out.push_str(line);
        if !line.ends_with('\n') {
            out.push_str("\n\\ No newline at end of file\n");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::Machine;

    #[test]
    fn only_changed_or_missing_files_are_reported() {
        let files = vec![
            RenderedFile::new(Machine::Host, "/etc/a", "one\ntwo\n".into()),
            RenderedFile::new(Machine::Guest(101), "/etc/b", "same\n".into()),
            RenderedFile::new(Machine::Host, "/etc/c", "new\n".into()),
        ];
        let deployed = BTreeMap::from([
            ("host/etc/a".to_string(), Some("one\nthree\n".to_string())),
            ("guest-101/etc/b".to_string(), Some("same\n".to_string())),
            ("host/etc/c".to_string(), None),
        ]);
        let diffs = diff(&files, &deployed);
        assert_eq!(diffs.iter().map(|d| d.tree_path.as_str()).collect::<Vec<_>>(), vec!["host/etc/a", "host/etc/c"]);
        assert!(diffs[0].unified.contains("-three\n+two\n"));
        assert!(diffs[0].unified.starts_with("--- deployed/host/etc/a\n+++ rendered/host/etc/a\n"));
    }

    #[test]
    fn a_new_file_is_the_diff_similar_writes() {
        for new in ["one\ntwo\n", "one\ntwo", "x\n"] {
            let expected = similar::TextDiff::from_lines("", new).unified_diff().context_radius(2).header("a", "b").to_string();
            assert_eq!(unified("", new, "a", "b", 2), expected, "{new:?}");
        }
    }
}
