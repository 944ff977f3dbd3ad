//! Real containers on this machine: Debian's `lxc` (the runtime `pct` drives on a Proxmox
//! node) running systemd in a root file system built by `scripts/lab-rootfs` (mmdebstrap).
//! Each container's root is an overlay (`lxc.rootfs.path = overlay:<lower>:<upper>`) on that
//! shared folder, which is never written. It owns starting, waiting for, attaching to and
//! stopping containers; what runs inside is the provisioning's, and where (which network
//! namespace) the caller's.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The file in a container's folder naming the network namespace it was started in.
const NETNS_FILE: &str = "netns";

/// How long a container's systemd may take to come up.
const BOOT_LIMIT: Duration = Duration::from_secs(90);

/// One container, named by its vmid under its own lxc path (`lxc-* -P <path> -n <vmid>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LxcContainer {
    pub lxc_path: PathBuf,
    pub vmid: u32,
}

/// How a container is set up before it starts.
#[derive(Debug, Clone)]
pub struct ContainerSpec<'a> {
    /// The shared, read-only root file system (the overlay's lower layer).
    pub rootfs: &'a Path,
    pub hostname: &'a str,
    /// Start it inside this named network namespace (/run/netns/<name>) and share it
    /// (`lxc.net.0.type = none`); without, it gets no network (`empty`).
    pub netns: Option<&'a str>,
    /// `/etc/resolv.conf` as the container starts with it, as pve-container writes it from the
    /// guest's `nameserver`/`searchdomain` on every start (PVE::LXC::Setup::Base::set_dns).
    pub resolv_conf: Option<String>,
}

impl LxcContainer {
    pub fn new(lxc_path: &Path, vmid: u32) -> LxcContainer {
        LxcContainer { lxc_path: lxc_path.to_path_buf(), vmid }
    }

    fn home(&self) -> PathBuf {
        self.lxc_path.join(self.vmid.to_string())
    }

    /// Whether this container has been set up (its config exists).
    pub fn exists(&self) -> bool {
        self.home().join("config").is_file()
    }

    /// The command line running lxc's `program` on this container, with `rest`. A container
    /// started in a network namespace is reached from inside it: lxc's command socket is an
    /// abstract unix socket, and those belong to a network namespace.
    pub fn argv(&self, program: &str, rest: &[&str]) -> Vec<String> {
        let mut argv = Vec::new();
        if let Ok(netns) = std::fs::read_to_string(self.home().join(NETNS_FILE)) {
            argv.extend(["nsenter".to_string(), format!("--net=/run/netns/{}", netns.trim())]);
        }
        argv.extend([program.to_string(), "-P".into(), self.lxc_path.to_string_lossy().into_owned(), "-n".into(), self.vmid.to_string()]);
        argv.extend(rest.iter().map(|r| r.to_string()));
        argv
    }

    fn lxc(&self, program: &str, rest: &[&str]) -> Result<Output, String> {
        let argv = self.argv(program, rest);
        let package = if argv[0] == "nsenter" { "util-linux" } else { "Debian's lxc package" };
        Command::new(&argv[0]).args(&argv[1..]).output().map_err(|e| format!("cannot run {} ({package}): {e}", argv[0]))
    }

    /// Writes its configuration and upper layer (kept between starts: what was installed
    /// stays), then starts it and waits until systemd says the system is up.
    pub fn start(&self, spec: &ContainerSpec<'_>) -> Result<(), String> {
        let home = self.home();
        let upper = home.join("upper");
        let io = |e: std::io::Error| format!("container {}: {}: {e}", self.vmid, home.display());
        std::fs::create_dir_all(upper.join("etc")).map_err(io)?;
        let net = if spec.netns.is_some() { "none" } else { "empty" };
        let config = format!(
            "lxc.uts.name = {}\nlxc.rootfs.path = overlay:{}:{}\nlxc.net.0.type = {net}\n\
             lxc.include = /usr/share/lxc/config/common.conf\nlxc.apparmor.profile = unconfined\nlxc.init.cmd = /sbin/init\n",
            spec.hostname,
            spec.rootfs.display(),
            upper.display()
        );
        std::fs::write(home.join("config"), config).map_err(io)?;
        if let Some(text) = &spec.resolv_conf {
            let resolv = upper.join("etc/resolv.conf");
            let _ = std::fs::remove_file(&resolv);
            std::fs::write(&resolv, text).map_err(io)?;
        }
        // The namespace is recorded first: every later lxc command enters it (see `argv`).
        // `nsenter --net`, not `ip netns exec`: the latter also mounts a fresh /sys, without
        // the cgroup file system lxc-start sets the container's limits in.
        let netns = home.join(NETNS_FILE);
        match spec.netns {
            Some(name) => std::fs::write(&netns, name).map_err(io)?,
            None => {
                let _ = std::fs::remove_file(&netns);
            }
        }
        let log = home.join("lxc.log").to_string_lossy().into_owned();
        let started = self.lxc("lxc-start", &["-l", "INFO", "-o", &log])?;
        if !started.status.success() {
            return Err(format!("lxc-start {}: {} (see {log})", self.vmid, String::from_utf8_lossy(&started.stderr).trim()));
        }
        self.wait_until_up(BOOT_LIMIT)
    }

    fn wait_until_up(&self, limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        let mut last = String::new();
        while Instant::now() < deadline {
            match self.attach(&["systemctl", "is-system-running"]) {
                Ok(out) => {
                    let said = String::from_utf8_lossy(&out.stdout).trim().to_string();
                    if said == "running" || said == "degraded" {
                        return Ok(());
                    }
                    last = format!("systemd says `{said}` {}", String::from_utf8_lossy(&out.stderr).trim());
                }
                Err(error) => last = error,
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let log = self.home().join("lxc.log");
        Err(format!("container {} did not come up within {limit:?}: {} (see {})", self.vmid, last.trim(), log.display()))
    }

    /// Whether it runs now (`lxc-info -s`). One started in a network namespace that no longer
    /// exists does not: deleting a namespace stops what runs in it (the lab's `down` does).
    pub fn running(&self) -> bool {
        if let Ok(netns) = std::fs::read_to_string(self.home().join(NETNS_FILE)) {
            if !Path::new("/run/netns").join(netns.trim()).exists() {
                return false;
            }
        }
        self.exists() && self.lxc("lxc-info", &["-s"]).is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("RUNNING"))
    }

    /// Runs `argv` in it as root, in a clean environment (as `pct exec` does).
    pub fn attach(&self, argv: &[&str]) -> Result<Output, String> {
        let mut rest = vec!["--clear-env", "--set-var", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "--"];
        rest.extend_from_slice(argv);
        self.lxc("lxc-attach", &rest)
    }

    /// Stops it at once (`lxc-stop -k`); its upper layer stays.
    pub fn stop(&self) -> Result<(), String> {
        if !self.running() {
            return Ok(());
        }
        let out = self.lxc("lxc-stop", &["-k"])?;
        match out.status.success() {
            true => Ok(()),
            false => Err(format!("lxc-stop {}: {}", self.vmid, String::from_utf8_lossy(&out.stderr).trim())),
        }
    }

    /// Stops it and removes its configuration and upper layer.
    pub fn destroy(&self) -> Result<(), String> {
        self.stop()?;
        std::fs::remove_dir_all(self.home()).or_else(|e| if e.kind() == std::io::ErrorKind::NotFound { Ok(()) } else { Err(e) })
            .map_err(|e| format!("container {}: {e}", self.vmid))
    }

    /// The containers set up under `lxc_path`.
    pub fn all(lxc_path: &Path) -> Vec<LxcContainer> {
        let entries = std::fs::read_dir(lxc_path).into_iter().flatten().flatten();
        let mut found: Vec<LxcContainer> =
            entries.filter_map(|e| e.file_name().to_str()?.parse().ok()).map(|vmid| LxcContainer::new(lxc_path, vmid)).collect();
        found.sort_by_key(|c| c.vmid);
        found
    }
}
