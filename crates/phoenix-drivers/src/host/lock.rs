//! One sync at a time per target: an exclusive lock on a file (flock(2) through std's
//! `File::lock`), held by the running process for the whole observe, plan and apply, and
//! released by the kernel when the process ends, however it ends. The file says who holds it,
//! so a second run can name the holder. Waiting is bounded.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A held sync lock; dropping it releases the lock.
#[derive(Debug)]
pub struct SyncLock {
    _file: File,
    pub path: PathBuf,
}

/// Why the lock could not be taken.
#[derive(Debug)]
pub enum LockError {
    /// Another run held it for the whole wait; its line says who (pid and start).
    Held {
        path: PathBuf,
        holder: String,
    },
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
}

impl std::fmt::Display for LockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LockError::Held { path, holder } => write!(f, "another phoenix sync holds {} ({holder})", path.display()),
            LockError::Io { path, error } => write!(f, "cannot lock {}: {error}", path.display()),
        }
    }
}

impl std::error::Error for LockError {}

/// Takes the lock at `path`, waiting at most `wait` for another holder; `what` is written
/// into the file for the next run to read (with this process's id).
pub fn acquire(path: &Path, wait: Duration, what: &str) -> Result<SyncLock, LockError> {
    let io = |error| LockError::Io { path: path.to_path_buf(), error };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let mut file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path).map_err(io)?;
    let deadline = Instant::now() + wait;
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(TryLockError::WouldBlock) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim().to_string();
                return Err(LockError::Held {
                    path: path.to_path_buf(),
                    holder: if holder.is_empty() { "unknown".into() } else { holder },
                });
            }
            Err(TryLockError::Error(error)) => return Err(io(error)),
        }
    }
    let line = format!("pid {}, {what}\n", std::process::id());
    file.set_len(0).and_then(|()| file.rewind()).and_then(|()| file.write_all(line.as_bytes())).map_err(io)?;
    Ok(SyncLock { _file: file, path: path.to_path_buf() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_waits_then_is_told_who_holds_it() {
        let path = std::env::temp_dir().join(format!("phoenix-lock-{}/sync.lock", std::process::id()));
        let held = acquire(&path, Duration::ZERO, "sync all of node pve").unwrap();
        let refused = acquire(&path, Duration::from_millis(250), "another").unwrap_err();
        assert!(refused.to_string().contains(&format!("pid {}, sync all of node pve", std::process::id())), "{refused}");
        drop(held);
        assert!(acquire(&path, Duration::ZERO, "again").is_ok(), "released when the holder goes");
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }
}

/// The node's sync lock taken over SSH (`sync --ssh`): `flock` on the node holds it while
/// the ssh session lives, so a run from another machine is kept out too. The session ends,
/// and the node's kernel releases the lock, when this process ends however it ends (its end
/// of the session closes).
#[derive(Debug)]
pub struct RemoteLock {
    session: std::process::Child,
    pub path: String,
}

impl Drop for RemoteLock {
    fn drop(&mut self) {
        let _ = self.session.kill();
        let _ = self.session.wait();
    }
}

/// `flock`'s exit status when `-n` finds the lock taken (our choice of `-E`).
const TAKEN: i32 = 75;

/// Takes `path` on the node `ssh` reaches, waiting at most `wait`; `what` is left beside it in
/// `<path>.holder` for the next run to name.
pub fn acquire_remote(ssh: &super::SshRunner, path: &str, wait: Duration, what: &str) -> Result<RemoteLock, LockError> {
    use std::io::BufRead;
    let io = |error| LockError::Io { path: PathBuf::from(path), error };
    let holder = format!("{path}.holder");
    let line = format!("pid {} on this machine's peer, {what}", std::process::id());
    let hold = [
        "sh",
        "-c",
        r#"mkdir -p -- "$(dirname -- "$1")" && exec flock -n -E 75 "$1" sh -c 'printf "%s\n" "$2" > "$1.holder"; echo locked; exec cat' sh "$1" "$2""#,
        "sh",
        path,
        &line,
    ];
    let line = ssh.command_line(&hold.map(String::from));
    let deadline = Instant::now() + wait;
    loop {
        let mut session = std::process::Command::new(&line[0])
            .args(&line[1..])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(io)?;
        let mut first = String::new();
        let _ = std::io::BufReader::new(session.stdout.take().expect("piped")).read_line(&mut first);
        if first.trim() == "locked" {
            return Ok(RemoteLock { session, path: path.to_string() });
        }
        let status = session.wait().map_err(io)?;
        if status.code() != Some(TAKEN) {
            return Err(io(std::io::Error::other(format!("`flock` on {} ended with {status}", ssh.destination))));
        }
        if Instant::now() >= deadline {
            let read = super::CommandRunner::run(ssh, &["cat".to_string(), holder.clone()], None);
            let holder = read.ok().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).filter(|h| !h.is_empty());
            return Err(LockError::Held {
                path: PathBuf::from(format!("{}:{path}", ssh.destination)),
                holder: holder.unwrap_or_else(|| "unknown".into()),
            });
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[cfg(test)]
mod remote_tests {
    use super::*;

    #[test]
    fn the_node_s_lock_is_held_while_the_session_lives() {
        let dir = std::env::temp_dir().join(format!("phoenix-remote-lock-{}", std::process::id()));
        let ssh = super::super::SshRunner::stand_in(&dir);
        let path = dir.join("lock/sync-pve.lock").to_string_lossy().into_owned();
        let held = acquire_remote(&ssh, &path, Duration::ZERO, "sync of node pve").unwrap();
        let refused = acquire_remote(&ssh, &path, Duration::from_millis(300), "another").unwrap_err();
        assert!(refused.to_string().contains("sync of node pve"), "{refused}");
        drop(held);
        assert!(acquire_remote(&ssh, &path, Duration::from_secs(2), "again").is_ok(), "released when the session ends");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
