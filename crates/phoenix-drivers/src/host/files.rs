//! Local files and environment variables: the configuration source, atomic writes.
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

/// Every readable text file under `root`, keyed by its path relative to `root` (`a/b.fw`).
pub fn read_tree(root: &Path) -> std::io::Result<std::collections::BTreeMap<String, String>> {
    let mut files = std::collections::BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(text) = std::fs::read_to_string(&path) {
                let relative = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().to_string();
                files.insert(relative, text);
            }
        }
    }
    Ok(files)
}

/// Reads a file that may be absent: `Ok(None)` when it does not exist.
pub fn read_optional(path: &Path) -> std::io::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error),
    }
}

/// Writes `content` to `path` atomically: a temporary file beside it, fsync, then rename, so a
/// reader sees the old file or the new one, never half of one.
pub fn write_atomic(path: &Path, content: &[u8], mode: u32) -> std::io::Result<()> {
    write_atomic_owned(path, content, mode, None)
}

/// [`write_atomic`], and the file belongs to `owner` (uid, gid). The temporary file is created
/// with `mode` and chowned before any content is written, so a key is never readable by others.
pub fn write_atomic_owned(path: &Path, content: &[u8], mode: u32, owner: Option<(u32, u32)>) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let parent = path.parent().ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "path has no parent"))?;
    std::fs::create_dir_all(parent)?;
    let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let temporary = parent.join(format!(".{name}.phoenix-{}", std::process::id()));
    // A leftover from a crashed run with the same process id.
    let _ = std::fs::remove_file(&temporary);
    let result = (|| {
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(mode & 0o700).open(&temporary)?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::fchown(&file, Some(uid), Some(gid))?;
        }
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        file.write_all(content)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)?;
        std::fs::File::open(parent)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result
}

#[cfg(test)]
mod write_tests {
    use super::*;

    #[test]
    fn atomic_writes_replace_and_set_the_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("phoenix-write-{}", std::process::id()));
        let path = dir.join("sub/file.conf");
        write_atomic(&path, b"one", 0o600).unwrap();
        write_atomic(&path, b"two", 0o640).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o640);
        assert_eq!(read_optional(&dir.join("missing")).unwrap(), None);
        assert_eq!(std::fs::read_dir(dir.join("sub")).unwrap().count(), 1, "no temporary file left");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// The value of a secret: an environment variable, or a file's content (trailing newline
/// removed). A literal in the configuration is not kept by the model, so it has no value here.
pub fn resolve_secret(secret: &phoenix_model::model::SecretRef) -> Option<String> {
    use phoenix_model::model::SecretRef;
    match secret {
        SecretRef::Env(name) => std::env::var(name).ok().filter(|v| !v.is_empty()),
        SecretRef::File(path) => std::fs::read_to_string(path).ok().map(|t| t.trim_end_matches(['\n', '\r']).to_string()),
        SecretRef::Literal => None,
    }
}

/// A file under a tree folder that could not be read or written, and why.
#[derive(Debug)]
pub struct TreeError {
    pub path: std::path::PathBuf,
    pub error: std::io::Error,
}

impl std::fmt::Display for TreeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.path.display())
    }
}

impl std::error::Error for TreeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// `render --out DIR`: every rendered file written atomically under `out`, laid out as on the
/// real system (`host/...`, `guest-<id>/...`).
pub fn write_rendered(out: &Path, files: &[phoenix_core::render::RenderedFile]) -> Result<(), TreeError> {
    for file in files {
        let path = out.join(file.tree_path());
        write_atomic(&path, file.content.as_bytes(), file.mode).map_err(|error| TreeError { path, error })?;
    }
    Ok(())
}

/// `render --diff DIR`: what `tree` holds at each rendered file's place (`None`: absent).
pub fn read_rendered_places(
    tree: &Path,
    files: &[phoenix_core::render::RenderedFile],
) -> Result<std::collections::BTreeMap<String, Option<String>>, TreeError> {
    let mut deployed = std::collections::BTreeMap::new();
    for file in files {
        let path = tree.join(file.tree_path());
        let content = read_optional(&path).map_err(|error| TreeError { path, error })?;
        deployed.insert(file.tree_path(), content);
    }
    Ok(deployed)
}
