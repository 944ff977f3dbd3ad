//! A simulated node's cluster file system kept in a folder laid out as `/etc/pve` (the bare
//! lab keeps it at `<lab>/deployed/host/etc/pve`, where `phoenix assess --deployed` can read
//! it too). Loading re-seeds the MAC generator from the content, so MACs keep differing across
//! runs.

use super::guest::MacSource;
use super::watch::{read_tree, Watched};
use super::PveSim;
use std::path::Path;

impl PveSim {
    /// Keeps the cluster file system in `dir`: brought up to date before every request (a file
    /// the node's root wrote there is seen, as on pmxcfs), written after one that changed it.
    pub fn backed_by(mut self, dir: &Path) -> std::io::Result<PveSim> {
        if dir.is_dir() {
            self.files = PveSim::load_dir(&self.node, dir)?.files;
        }
        self.save_dir(dir)?;
        self.backing = Some(Watched::start(dir, &mut self.files)?);
        Ok(self)
    }

    pub(super) fn reload_backing(&mut self) {
        if let Some(backing) = &mut self.backing {
            if let Err(error) = backing.refresh(&mut self.files) {
                self.gaps.push(format!("phoenix-sim: cannot read {}: {error}", backing.dir.display()));
            }
        }
    }

    /// Writes to the folder only the files a request changed (others may be written there by
    /// the node's root meanwhile: they are not overwritten with what was read before).
    pub(super) fn save_changes(&mut self, before: &std::collections::BTreeMap<String, String>) {
        let Some(dir) = self.backing.as_ref().map(|b| b.dir.clone()) else { return };
        let result = (|| -> std::io::Result<()> {
            for path in before.keys().filter(|p| !self.files.contains_key(*p)) {
                match std::fs::remove_file(dir.join(path)) {
                    Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error),
                    _ => {}
                }
            }
            for (path, text) in self.files.iter().filter(|(p, t)| before.get(*p) != Some(*t)) {
                write_file(&dir.join(path), text)?;
            }
            Ok(())
        })();
        if let Err(error) = result {
            self.gaps.push(format!("phoenix-sim: cannot write {}: {error}", dir.display()));
        }
    }

    /// Writes the state to its folder now (after a test changed `files` directly).
    pub fn save_backing(&mut self) {
        if let Some(dir) = self.backing.as_ref().map(|b| b.dir.clone()) {
            if let Err(error) = self.save_dir(&dir) {
                self.gaps.push(format!("phoenix-sim: cannot write {}: {error}", dir.display()));
            }
        }
    }

    /// The node's state from `dir` (an empty or missing folder: a node with nothing on it).
    pub fn load_dir(node: &str, dir: &Path) -> std::io::Result<PveSim> {
        let mut sim = PveSim::new(node);
        // A writer's temporary is not the node's yet: neither read nor, by `save_dir`, removed.
        sim.files = read_tree(dir)?;
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
            write_file(&dir.join(path), text)?;
        }
        Ok(())
    }
}

/// Replaces a file atomically.
fn write_file(target: &Path, text: &str) -> std::io::Result<()> {
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let temporary = target.with_extension("tmp~");
    std::fs::write(&temporary, text)?;
    std::fs::rename(&temporary, target)
}
