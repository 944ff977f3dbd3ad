//! A real dnsmasq on loopback for tests, authoritative for nothing but what its configuration
//! says (no upstream, no /etc/hosts), reading phoenix's challenge-record file through
//! `conf-file`. It runs as a daemon with a pid file, so a test can hand phoenix the same
//! restart a node's `systemctl restart dnsmasq` does: stop it, wait until it is gone, start it.
//! Killed when the value is dropped.

use crate::free_port;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

pub struct Dnsmasq {
    pub address: SocketAddr,
    pub dir: PathBuf,
    /// The file dnsmasq includes for phoenix's dns-01 records.
    pub records_file: PathBuf,
    /// `dnsmasq --test` on the whole configuration.
    pub check: Vec<String>,
    /// Stops dnsmasq and starts it again (bounded wait for the old one to go).
    pub restart: Vec<String>,
}

impl Dnsmasq {
    pub fn start(tag: &str) -> Dnsmasq {
        Dnsmasq::start_with(tag, "")
    }

    /// Started with `extra` lines in its configuration (e.g. `host-record=name,127.0.0.153`).
    pub fn start_with(tag: &str, extra: &str) -> Dnsmasq {
        let dir = std::env::temp_dir().join(format!("phoenix-dnsmasq-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dnsmasq folder");
        let port = free_port();
        let (main, records, pid) = (dir.join("dnsmasq.conf"), dir.join("phoenix-acme.conf"), dir.join("dnsmasq.pid"));
        std::fs::write(&records, "").unwrap();
        let conf = format!(
            "port={port}\nlisten-address=127.0.0.1\nbind-interfaces\nno-resolv\nno-hosts\nuser=root\npid-file={}\nlog-facility={}\nconf-file={}\n{extra}",
            pid.display(),
            dir.join("dnsmasq.log").display(),
            records.display()
        );
        std::fs::write(&main, conf).unwrap();
        let program = ["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq"]
            .into_iter()
            .find(|p| std::path::Path::new(p).is_file())
            .expect("dnsmasq is not installed: install the Debian package `dnsmasq-base` (scripts/test does)");
        let conf_arg = format!("--conf-file={}", main.display());
        let script = format!(
            "p=$(cat {pid} 2>/dev/null); [ -n \"$p\" ] && kill $p; for i in $(seq 100); do [ -n \"$p\" ] && kill -0 $p 2>/dev/null || break; sleep 0.05; done; exec {program} {conf_arg}",
            pid = pid.display()
        );
        let restart = vec!["sh".to_string(), "-c".to_string(), script];
        let dnsmasq = Dnsmasq {
            address: format!("127.0.0.1:{port}").parse().unwrap(),
            dir,
            records_file: records,
            check: vec![program.to_string(), "--test".to_string(), conf_arg],
            restart,
        };
        let status = Command::new(&dnsmasq.restart[0]).args(&dnsmasq.restart[1..]).status().expect("start dnsmasq");
        assert!(status.success(), "dnsmasq did not start: see {}", dnsmasq.dir.join("dnsmasq.log").display());
        dnsmasq.wait_for_pid();
        dnsmasq
    }

    fn wait_for_pid(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && !self.dir.join("dnsmasq.pid").is_file() {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.dir.join("dnsmasq.pid")) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
