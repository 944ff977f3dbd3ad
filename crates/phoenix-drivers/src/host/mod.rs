//! The machine phoenix runs on: its files and environment variables.
//! Must not interpret what it reads: it hands text to the model.

use phoenix_model::Source;
use std::path::Path;

/// Reads configuration from the local filesystem and environment.
#[derive(Debug, Default, Clone, Copy)]
pub struct LocalHost;

impl Source for LocalHost {
    fn read_to_string(&self, path: &Path) -> std::io::Result<String> {
        if path.is_dir() {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "is a directory"));
        }
        std::fs::read_to_string(path)
    }

    fn is_file(&self, path: &Path) -> bool {
        path.is_file()
    }

    fn env_is_set(&self, name: &str) -> bool {
        std::env::var_os(name).is_some_and(|v| !v.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_and_missing_files_are_errors() {
        let dir = std::env::temp_dir();
        assert!(LocalHost.read_to_string(&dir).is_err());
        let missing = LocalHost.read_to_string(&dir.join("phoenix-no-such-file")).unwrap_err();
        assert_eq!(missing.kind(), std::io::ErrorKind::NotFound);
    }
}
