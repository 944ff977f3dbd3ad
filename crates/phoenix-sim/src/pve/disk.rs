//! A simulated node's cluster file system kept in a folder laid out as `/etc/pve` (the bare
//! lab keeps it at `<lab>/deployed/host/etc/pve`, where `phoenix assess --deployed` can read
//! it too). Loading re-seeds the MAC generator from the content, so MACs keep differing across
//! runs.

use super::guest::MacSource;
use super::PveSim;
use std::path::Path;

impl PveSim {
    /// The node's state from `dir` (an empty or missing folder: a node with nothing on it).
    pub fn load_dir(node: &str, dir: &Path) -> std::io::Result<PveSim> {
        let mut sim = PveSim::new(node);
        let mut stack = vec![dir.to_path_buf()];
        while let Some(folder) = stack.pop() {
            let entries = match std::fs::read_dir(&folder) {
                Ok(entries) => entries,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
                Err(error) => return Err(error),
            };
            for entry in entries {
                let path = entry?.path();
                if path.is_dir() {
                    stack.push(path);
                } else if let Ok(relative) = path.strip_prefix(dir) {
                    sim.files.insert(relative.to_string_lossy().into_owned(), std::fs::read_to_string(&path)?);
                }
            }
        }
        let all: String = sim.files.iter().map(|(k, v)| format!("{k}\n{v}")).collect();
        let seed = super::fw::text_digest(&all).bytes().fold(0u64, |acc, b| acc.rotate_left(5) ^ u64::from(b));
        sim.reseed(MacSource::new(seed));
        Ok(sim)
    }

    /// Writes the state to `dir`: every file, and files the node no longer has removed.
    pub fn save_dir(&self, dir: &Path) -> std::io::Result<()> {
        let stale = PveSim::load_dir(&self.node, dir)?;
        for path in stale.files.keys().filter(|p| !self.files.contains_key(*p)) {
            std::fs::remove_file(dir.join(path))?;
        }
        for (path, text) in &self.files {
            let target = dir.join(path);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let temporary = target.with_extension("tmp~");
            std::fs::write(&temporary, text)?;
            std::fs::rename(&temporary, &target)?;
        }
        Ok(())
    }
}
