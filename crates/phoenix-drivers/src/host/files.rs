//! Local files and environment variables: the configuration source, atomic writes.
//! Must not interpret what it reads: it hands text to the model.

use phoenix_model::Source;
use std::path::Path;

/// Reads configuration from the local filesystem and environment.
#[derive(Debug, Default, Clone, Copy)]
pub struct LocalHost {
    /// `--allow-outside-tree`: files the configuration names may lie anywhere.
    pub allow_outside_tree: bool,
}

/// The largest configuration, compose or stack file phoenix reads. The users' largest is
/// tens of kilobytes; anything far beyond is a mistake (or `/dev/zero` behind a symlink).
pub const MAX_INPUT_BYTES: u64 = 16 * 1024 * 1024;

/// Reads a file the configuration consists of or names: only a regular file (a FIFO would
/// block phoenix, a device never ends) and at most [`MAX_INPUT_BYTES`]; the error says why a
/// file was refused.
pub fn read_input(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let refuse = |why: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, why);
    let metadata = std::fs::metadata(path)?;
    if metadata.is_dir() {
        return Err(refuse("is a directory".into()));
    }
    if !metadata.is_file() {
        return Err(refuse("is not a regular file (a FIFO, socket or device): phoenix reads only regular files".into()));
    }
    if metadata.len() > MAX_INPUT_BYTES {
        return Err(refuse(format!("is {} bytes, more than the {} phoenix reads", metadata.len(), MAX_INPUT_BYTES)));
    }
    // Opened without blocking (a FIFO swapped in after the check would block open(2)).
    let file = std::fs::OpenOptions::new().read(true).custom_flags_nonblocking().open(path)?;
    let mut bytes = Vec::new();
    file.take(MAX_INPUT_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(refuse(format!("grew past the {MAX_INPUT_BYTES} bytes phoenix reads while it was read")));
    }
    String::from_utf8(bytes).map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "is not UTF-8 text"))
}

/// `O_NONBLOCK` on open, so that opening a FIFO returns at once.
trait NonBlocking {
    fn custom_flags_nonblocking(&mut self) -> &mut Self;
}

impl NonBlocking for std::fs::OpenOptions {
    fn custom_flags_nonblocking(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        // O_NONBLOCK on Linux (asm-generic/fcntl.h).
        self.custom_flags(0o4000)
    }
}

impl Source for LocalHost {
    fn read_to_string(&self, path: &Path) -> std::io::Result<String> {
        read_input(path)
    }

    fn is_file(&self, path: &Path) -> bool {
        path.is_file()
    }

    fn env_is_set(&self, name: &str) -> bool {
        std::env::var_os(name).is_some_and(|v| !v.is_empty())
    }

    fn canonical(&self, path: &Path) -> Option<std::path::PathBuf> {
        std::fs::canonicalize(path).ok()
    }

    fn allows_outside_tree(&self) -> bool {
        self.allow_outside_tree
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_of_bounded_size_are_read() {
        let dir = std::env::temp_dir().join(format!("phoenix-read-input-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("fifo.json");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let zero = dir.join("zero.json");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        let big = dir.join("big.json");
        std::fs::File::create(&big).unwrap().set_len(MAX_INPUT_BYTES + 1).unwrap();
        for (path, why) in [(&fifo, "not a regular file"), (&zero, "not a regular file"), (&big, "more than the")] {
            let error = LocalHost::default().read_to_string(path).unwrap_err();
            assert!(error.to_string().contains(why), "{}: {error}", path.display());
        }
        std::fs::write(dir.join("ok.json"), "{}").unwrap();
        assert_eq!(LocalHost::default().read_to_string(&dir.join("ok.json")).unwrap(), "{}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn directories_and_missing_files_are_errors() {
        let dir = std::env::temp_dir();
        assert!(LocalHost::default().read_to_string(&dir).is_err());
        let missing = LocalHost::default().read_to_string(&dir.join("phoenix-no-such-file")).unwrap_err();
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
    } else {
        remove_stale_temporaries(parent, &name);
    }
    result
}

/// Removes what interrupted runs left beside `path` (see [`remove_stale_temporaries`]); the
/// rehearsal target calls it whenever it reads or writes a file.
pub fn clean_interrupted(path: &Path) {
    if let (Some(dir), Some(name)) = (path.parent(), path.file_name()) {
        remove_stale_temporaries(dir, &name.to_string_lossy());
    }
}

/// Removes what interrupted runs left beside `name`: `.NAME.phoenix-PID` files whose process
/// is gone (killed between write and rename). A running writer's file is left alone.
fn remove_stale_temporaries(dir: &Path, name: &str) {
    let prefix = format!(".{name}.phoenix-");
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().to_string();
        let Some(pid) = file.strip_prefix(&prefix).and_then(|p| p.parse::<u32>().ok()) else { continue };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod write_tests {
    use super::*;

    #[test]
    fn a_write_removes_what_an_interrupted_writer_left_and_spares_a_running_one() {
        let dir = std::env::temp_dir().join(format!("phoenix-stale-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // pid_max on Linux is at most 4194304: this process cannot exist; pid 1 always does.
        let (dead, alive) = (dir.join(".f.conf.phoenix-4194305"), dir.join(".f.conf.phoenix-1"));
        std::fs::write(&dead, "half").unwrap();
        std::fs::write(&alive, "busy").unwrap();
        write_atomic(&dir.join("f.conf"), b"whole", 0o644).unwrap();
        assert!(!dead.exists() && alive.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn writes_stay_below_their_root_whatever_the_path_and_the_links_say() {
        let dir = std::env::temp_dir().join(format!("phoenix-under-root-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (root, outside) = (dir.join("root"), dir.join("outside"));
        std::fs::create_dir_all(root.join("host")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("host/etc")).unwrap();
        std::os::unix::fs::symlink(outside.join("x"), root.join("file")).unwrap();
        for path in ["../outside/x", "/host/../../outside/x", "host/etc/pve/host.fw", "file"] {
            assert!(under_root(&root, path).is_err(), "{path}");
        }
        assert_eq!(under_root(&root, "/host/new/dir/f").unwrap(), root.join("host/new/dir/f"));
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

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
        // The loader made the path the configuration folder's; only a regular file is read.
        SecretRef::File(path) => read_input(Path::new(path)).ok().map(|t| t.trim_end_matches(['\n', '\r']).to_string()),
        SecretRef::Literal | SecretRef::Refused(_) => None,
    }
}

/// `root` joined with `path` (absolute or relative, taken as below `root`), for a write that
/// must stay there whatever the path says: a `..` component is refused, and so is a symlink
/// anywhere below `root` on the way (a planted one would carry the write elsewhere). What
/// exists is checked component by component, as an `openat` walk would.
pub fn under_root(root: &Path, path: &str) -> std::io::Result<std::path::PathBuf> {
    use std::path::Component;
    let refuse = |why: String| std::io::Error::new(std::io::ErrorKind::PermissionDenied, why);
    let mut parts = Vec::new();
    for component in Path::new(path.trim_start_matches('/')).components() {
        match component {
            Component::Normal(part) => parts.push(part),
            Component::CurDir => {}
            _ => return Err(refuse(format!("`{path}` climbs out of {}", root.display()))),
        }
    }
    let mut joined = root.to_path_buf();
    let mut existing = true;
    for part in parts {
        joined.push(part);
        if !existing {
            continue;
        }
        match std::fs::symlink_metadata(&joined) {
            Ok(metadata) if metadata.file_type().is_symlink() => {
                return Err(refuse(format!("{} is a symbolic link: phoenix does not write through links", joined.display())))
            }
            Ok(_) => {}
            // Nothing further exists, so nothing further can be a link.
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => existing = false,
            Err(error) => return Err(error),
        }
    }
    Ok(joined)
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
    // Every place is checked before the first write: a refused one leaves nothing half-written.
    let mut places = Vec::new();
    for file in files {
        let place = under_root(out, &file.tree_path()).map_err(|error| TreeError { path: out.join(file.tree_path()), error })?;
        places.push((place, file));
    }
    for (path, file) in places {
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
        let content =
            under_root(tree, &file.tree_path()).and_then(|path| read_optional(&path)).map_err(|error| TreeError { path, error })?;
        deployed.insert(file.tree_path(), content);
    }
    Ok(deployed)
}

/// What provisioning needs from this machine (see [`phoenix_core::provision::Inputs`]): the
/// application scripts and the resolved agent secret; `root_ca_pem` is left to the caller.
pub fn feature_inputs(model: &phoenix_model::Model) -> std::io::Result<phoenix_core::provision::Inputs> {
    let agent_secret = model.secret_for("portainer_api.agent_secret").and_then(resolve_secret).map(phoenix_model::secret::Secret::new);
    Ok(phoenix_core::provision::Inputs { root_ca_pem: None, scripts: application_scripts(model)?, agent_secret })
}

/// Each guest's application script, read from the installation where the original keeps it
/// (`bin/lxc_setup/` or `bin/vm_setup/`, else `bin/`), by the guest's kind and the name it gives. Validation
/// has refused names that leave the installation (PHX-PATH-002) or do not exist (PHX-APP-001).
pub fn application_scripts(model: &phoenix_model::Model) -> std::io::Result<phoenix_core::provision::features::Scripts> {
    let mut scripts = std::collections::BTreeMap::new();
    for guest in model.guests.values() {
        let Some(script) = &guest.application_script else { continue };
        let candidates = phoenix_model::paths::application_script_candidates(&model.root_dir, guest.kind, &script.value);
        if let Some(path) = candidates.iter().find(|p| p.is_file()) {
            let content = std::fs::read(path).map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
            scripts.insert((guest.kind, script.value.clone()), content);
        }
    }
    Ok(scripts)
}
