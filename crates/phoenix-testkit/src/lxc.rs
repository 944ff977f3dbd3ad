//! The root file system real containers start from in tests (phoenix_drivers::host::lxc runs
//! them): the folder `scripts/lab-rootfs` built with mmdebstrap (scripts/test builds it once
//! and names it in PHOENIX_ROOTFS). apt inside installs from the copy of the archive it carries.

use std::path::PathBuf;

/// The root file system folder: PHOENIX_ROOTFS, else the one scripts/test built in the cache.
pub fn rootfs() -> PathBuf {
    if let Some(path) = std::env::var_os("PHOENIX_ROOTFS") {
        return PathBuf::from(path);
    }
    let cache = PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/phoenix");
    let found = std::fs::read_dir(&cache)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            // A `.part` folder is a build that did not finish.
            p.is_dir() && name.starts_with("rootfs-") && !name.ends_with(".part")
        });
    found.unwrap_or_else(|| panic!("no container root file system in {}: scripts/test builds it (need_rootfs in scripts/lib.sh)", cache.display()))
}
