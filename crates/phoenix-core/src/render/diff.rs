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
            let old_text = old.unwrap_or_default();
            let text = similar::TextDiff::from_lines(&old_text, &file.content);
            let unified =
                text.unified_diff().context_radius(3).header(&format!("deployed/{path}"), &format!("rendered/{path}")).to_string();
            Some(FileDiff { tree_path: path, unified })
        })
        .collect()
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
}
