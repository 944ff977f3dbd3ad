//! What changed in a simulated node's backing folder since it was last read, told by
//! inotify(7): the node re-reads only those files before a request, as pmxcfs serves each file
//! from memory instead of a whole-tree read per request (which made every request cost the size
//! of the cluster). It owns the watches and the reading of changed paths; what the files mean is
//! the simulator's.
//!
//! inotify queues an event before the writer's `close`/`rename` returns (fsnotify runs inside
//! the syscall), and the queue is read here without blocking, so a file written before a
//! request is seen by it. A new folder is watched before it is read, so nothing made in it is
//! missed; a full queue (`IN_Q_OVERFLOW`), the folder itself removed, or inotify unavailable
//! means one full read, as before.

use inotify::{EventMask, Inotify, WatchMask};
use std::collections::{BTreeMap, BTreeSet};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// A backing folder and the watches on it and its subfolders.
pub(super) struct Watched {
    pub(super) dir: PathBuf,
    inotify: Option<Inotify>,
    /// Each watch's folder, relative to `dir` (`""` for `dir` itself).
    folders: BTreeMap<i32, String>,
    /// How many times the whole folder was read.
    full_reads: usize,
}

impl std::fmt::Debug for Watched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watched")
            .field("dir", &self.dir)
            .field("folders", &self.folders.len())
            .field("full_reads", &self.full_reads)
            .finish()
    }
}

/// What is watched: anything that adds, replaces, changes or removes an entry.
fn mask() -> WatchMask {
    WatchMask::CLOSE_WRITE
        | WatchMask::MODIFY
        | WatchMask::CREATE
        | WatchMask::DELETE
        | WatchMask::MOVED_FROM
        | WatchMask::MOVED_TO
        | WatchMask::DELETE_SELF
        | WatchMask::MOVE_SELF
}

/// A writer's temporary (`.name.phoenix-<pid>`, the simulator's `*.tmp~`) is not the node's yet.
fn is_temporary(name: &str) -> bool {
    name.starts_with('.') || name.ends_with("tmp~")
}

impl Watched {
    /// Watches `dir` and reads all of it into `files` (replacing what was there).
    pub(super) fn start(dir: &Path, files: &mut BTreeMap<String, String>) -> std::io::Result<Watched> {
        let mut watched = Watched { dir: dir.to_path_buf(), inotify: None, folders: BTreeMap::new(), full_reads: 0 };
        watched.read_all(files)?;
        Ok(watched)
    }

    /// Brings `files` up to date with the folder: the changed paths only, or all of it when the
    /// changes cannot be told.
    pub(super) fn refresh(&mut self, files: &mut BTreeMap<String, String>) -> std::io::Result<()> {
        match self.changed() {
            Some(paths) => paths.iter().try_for_each(|path| self.read_path(path, files)),
            None => self.read_all(files),
        }
    }

    /// The relative paths with events since the last call; `None` when a full read is needed.
    fn changed(&mut self) -> Option<BTreeSet<String>> {
        let inotify = self.inotify.as_mut()?;
        let mut buffer = [0u8; 16384];
        let mut paths = BTreeSet::new();
        loop {
            let events = match inotify.read_events(&mut buffer) {
                Ok(events) => events,
                Err(error) if error.kind() == ErrorKind::WouldBlock => return Some(paths),
                Err(_) => return None,
            };
            for event in events {
                let id = event.wd.get_watch_descriptor_id();
                if event.mask.contains(EventMask::Q_OVERFLOW) {
                    return None;
                }
                if event.mask.intersects(EventMask::IGNORED | EventMask::DELETE_SELF | EventMask::MOVE_SELF) {
                    // A watched folder went away or moved: its entries are told by its parent's
                    // watch (a moved folder is read where it lands), unless it is `dir` itself.
                    if self.folders.remove(&id).is_some_and(|folder| folder.is_empty()) {
                        return None;
                    }
                    let _ = inotify.watches().remove(event.wd.clone());
                    continue;
                }
                let (Some(folder), Some(name)) = (self.folders.get(&id), event.name.and_then(|n| n.to_str())) else { continue };
                if !is_temporary(name) {
                    paths.insert(join(folder, name));
                }
            }
        }
    }

    /// Reads the whole folder afresh under fresh watches (the old ones may name folders that are
    /// gone), each subfolder watched before it is read.
    fn read_all(&mut self, files: &mut BTreeMap<String, String>) -> std::io::Result<()> {
        self.full_reads += 1;
        self.folders.clear();
        self.inotify = Inotify::init().ok();
        files.clear();
        self.read_folder("", files)
    }

    /// One changed path: a folder is watched and read, a file read, a missing path removed with
    /// everything under it.
    fn read_path(&mut self, path: &str, files: &mut BTreeMap<String, String>) -> std::io::Result<()> {
        let full = self.dir.join(path);
        let text = match std::fs::metadata(&full) {
            Ok(meta) if meta.is_dir() => return self.read_folder(path, files),
            Ok(_) => std::fs::read_to_string(&full),
            Err(error) => Err(error),
        };
        match text {
            Ok(text) => {
                files.insert(path.to_string(), text);
                Ok(())
            }
            Err(error) if error.kind() == ErrorKind::NotFound => Ok(forget(path, files)),
            Err(error) => Err(error),
        }
    }

    /// Watches the folder `relative` and reads its files and subfolders.
    fn read_folder(&mut self, relative: &str, files: &mut BTreeMap<String, String>) -> std::io::Result<()> {
        let folder = self.dir.join(relative);
        if let Some(inotify) = &self.inotify {
            match inotify.watches().add(&folder, mask()) {
                Ok(watch) => {
                    self.folders.insert(watch.get_watch_descriptor_id(), relative.to_string());
                }
                // No folder yet: nothing to watch, so the next refresh reads it all again.
                Err(error) if error.kind() == ErrorKind::NotFound && relative.is_empty() => {
                    self.inotify = None;
                    return Ok(());
                }
                Err(error) if error.kind() == ErrorKind::NotFound => return Ok(()),
                // Out of watches: nothing can be told from now on.
                Err(_) => self.inotify = None,
            }
        }
        let entries = match std::fs::read_dir(&folder) {
            Ok(entries) => entries,
            Err(error) if error.kind() == ErrorKind::NotFound => return Ok(()),
            Err(error) => return Err(error),
        };
        for entry in entries {
            let entry = entry?;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else { continue };
            if !is_temporary(&name) {
                self.read_path(&join(relative, &name), files)?;
            }
        }
        Ok(())
    }
}

/// Every file under `dir` (temporaries left out), read once, nothing watched: the same walk
/// the watched reads make.
pub(super) fn read_tree(dir: &Path) -> std::io::Result<BTreeMap<String, String>> {
    let mut unwatched = Watched { dir: dir.to_path_buf(), inotify: None, folders: BTreeMap::new(), full_reads: 0 };
    let mut files = BTreeMap::new();
    unwatched.read_folder("", &mut files)?;
    Ok(files)
}

fn join(folder: &str, name: &str) -> String {
    if folder.is_empty() {
        name.to_string()
    } else {
        format!("{folder}/{name}")
    }
}

/// Removes `path` and, were it a folder, everything under it.
fn forget(path: &str, files: &mut BTreeMap<String, String>) {
    files.remove(path);
    let prefix = format!("{path}/");
    files.retain(|key, _| !key.starts_with(&prefix));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// After each kind of outside change, the watched files equal a whole-tree read.
    #[test]
    fn every_change_made_beside_the_node_is_seen_as_a_full_read_would_see_it() {
        let dir = std::env::temp_dir().join(format!("phoenix-sim-watch-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("nodes/pve/lxc")).unwrap();
        std::fs::write(dir.join("nodes/pve/lxc/100.conf"), "hostname: a\n").unwrap();
        let mut files = BTreeMap::new();
        let mut watched = Watched::start(&dir, &mut files).unwrap();
        assert!(watched.inotify.is_some(), "inotify is available here");
        let full = |dir: &Path| crate::pve::PveSim::load_dir("pve", dir).unwrap().files;
        assert_eq!(files, full(&dir));
        let steps: Vec<(&str, Box<dyn Fn(&Path)>)> = vec![
            ("written in place", Box::new(|d: &Path| std::fs::write(d.join("nodes/pve/lxc/100.conf"), "hostname: b\n").unwrap())),
            (
                "replaced by rename",
                Box::new(|d: &Path| {
                    std::fs::write(d.join("nodes/pve/lxc/.100.conf.phoenix-1"), "hostname: c\n").unwrap();
                    std::fs::rename(d.join("nodes/pve/lxc/.100.conf.phoenix-1"), d.join("nodes/pve/lxc/100.conf")).unwrap();
                }),
            ),
            (
                "a new folder with a file",
                Box::new(|d: &Path| {
                    std::fs::create_dir_all(d.join("firewall/sub")).unwrap();
                    std::fs::write(d.join("firewall/sub/100.fw"), "[OPTIONS]\n").unwrap();
                }),
            ),
            (
                "moved to another folder",
                Box::new(|d: &Path| {
                    std::fs::create_dir_all(d.join("nodes/pve2/lxc")).unwrap();
                    std::fs::rename(d.join("nodes/pve/lxc/100.conf"), d.join("nodes/pve2/lxc/100.conf")).unwrap();
                }),
            ),
            ("a folder moved", Box::new(|d: &Path| std::fs::rename(d.join("firewall/sub"), d.join("firewall/moved")).unwrap())),
            ("a file in the moved folder", Box::new(|d: &Path| std::fs::write(d.join("firewall/moved/101.fw"), "x\n").unwrap())),
            ("a folder removed", Box::new(|d: &Path| std::fs::remove_dir_all(d.join("firewall")).unwrap())),
            (
                "the folder itself removed and made again",
                Box::new(|d: &Path| {
                    std::fs::remove_dir_all(d).unwrap();
                    std::fs::create_dir_all(d.join("nodes/pve/qemu-server")).unwrap();
                    std::fs::write(d.join("nodes/pve/qemu-server/200.conf"), "name: vm\n").unwrap();
                }),
            ),
            ("a file after it was made again", Box::new(|d: &Path| std::fs::write(d.join("user.cfg"), "user:root@pam\n").unwrap())),
        ];
        for (what, change) in steps {
            let reads = watched.full_reads;
            change(&dir);
            watched.refresh(&mut files).unwrap();
            assert_eq!(files, full(&dir), "{what}");
            let whole = what == "the folder itself removed and made again";
            assert_eq!(watched.full_reads - reads, usize::from(whole), "{what}: read whole only when the folder itself went");
        }
        assert_eq!(files.keys().collect::<Vec<_>>(), ["nodes/pve/qemu-server/200.conf", "user.cfg"]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
