//! Real Debian containers for tests: Debian's `lxc` (the runtime `pct` drives on a Proxmox
//! node) starting systemd in a root file system `scripts/lab-rootfs` built with mmdebstrap
//! (scripts/test builds it once and names it in PHOENIX_ROOTFS). Each container's root is an
//! overlay on that shared, read-only folder, so starting one copies nothing and the tests
//! never change the folder. No network (`lxc.net.0.type = empty`): apt inside installs from
//! the copy of the archive the folder carries. Stopped and removed when dropped.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

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

/// One running container, named by a vmid under its own lxc path.
pub struct Container {
    /// The lxc path (`lxc-attach -P`), one per container so tests never see each other's.
    pub lxc_path: PathBuf,
    pub vmid: u32,
}

fn lxc(program: &str, lxc_path: &Path, vmid: u32, rest: &[&str]) -> std::process::Output {
    Command::new(program)
        .arg("-P")
        .arg(lxc_path)
        .args(["-n", &vmid.to_string()])
        .args(rest)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} (Debian's lxc package; scripts/test installs it): {e}"))
}

impl Container {
    /// Starts container `vmid` in a fresh lxc path under `dir` and waits (at most 60 s) until
    /// systemd says the system is up.
    pub fn start(dir: &Path, vmid: u32) -> Container {
        let lxc_path = dir.join("lxc");
        let home = lxc_path.join(vmid.to_string());
        std::fs::create_dir_all(home.join("upper")).unwrap();
        let config = format!(
            "lxc.uts.name = guest-{vmid}\n\
             lxc.rootfs.path = overlay:{}:{}\n\
             lxc.net.0.type = empty\n\
             lxc.include = /usr/share/lxc/config/common.conf\n\
             lxc.apparmor.profile = unconfined\n\
             lxc.init.cmd = /sbin/init\n",
            rootfs().display(),
            home.join("upper").display()
        );
        std::fs::write(home.join("config"), config).unwrap();
        let container = Container { lxc_path, vmid };
        let started = lxc("lxc-start", &container.lxc_path, vmid, &["-l", "INFO", "-o", &home.join("lxc.log").to_string_lossy()]);
        assert!(started.status.success(), "lxc-start: {}", String::from_utf8_lossy(&started.stderr));
        container.wait_until_up(Duration::from_secs(60));
        container
    }

    fn wait_until_up(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        let mut last = String::new();
        while Instant::now() < deadline {
            let out = self.attach(&["systemctl", "is-system-running"]);
            last = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if last == "running" || last == "degraded" {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("container {} did not come up within {limit:?} (systemd says `{last}`)", self.vmid);
    }

    /// Runs `argv` in the container (as root, a clean environment).
    pub fn attach(&self, argv: &[&str]) -> std::process::Output {
        let mut rest = vec!["--clear-env", "--set-var", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "--"];
        rest.extend_from_slice(argv);
        lxc("lxc-attach", &self.lxc_path, self.vmid, &rest)
    }

    /// `sh -c script` in the container; its stdout, asserting it succeeded.
    pub fn sh(&self, script: &str) -> String {
        let out = self.attach(&["sh", "-c", script]);
        assert!(out.status.success(), "`{script}` in container {}: {}", self.vmid, String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = lxc("lxc-stop", &self.lxc_path, self.vmid, &["-k"]);
        let _ = std::fs::remove_dir_all(self.lxc_path.join(self.vmid.to_string()));
    }
}
