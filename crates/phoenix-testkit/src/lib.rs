//! phoenix-testkit: what phoenix's tests share. Sources that serve configuration from memory
//! or from fixture folders, the paths of the bundled example and the reference system, a
//! helper that loads a mutated copy of a configuration, and synthetic inventories of any size.
//! Test support may do I/O; nothing here is linked into the `phoenix` binary (scripts/test
//! checks that). The simulators themselves live in phoenix-sim.

pub mod corrected;
pub mod dnsmasq;
pub mod lxc;
pub mod nginx;
pub mod pebble;
pub mod synth;
pub mod tls;
pub mod traefik;

/// The throw-away CA (phoenix-sim's, which the lab shares).
pub use phoenix_sim::ca as pki;

use phoenix_model::Source;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Error, ErrorKind};
use std::path::{Path, PathBuf};

/// A loopback TCP port free at the time of asking (a test server binds it next).
///
/// Picked below Linux's ephemeral range (`ip_local_port_range`, 32768-60999 by default): a port
/// the kernel handed out with `bind(:0)` is released here and can then become the local port of
/// any outgoing connection, so a server started on it later finds it taken (seen as
/// "Address already in use" when the ACME tests' http-01 responder started).
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let seed = std::process::id().wrapping_mul(7919)
        ^ std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    for _ in 0..1000 {
        let n = NEXT.fetch_add(1, Ordering::Relaxed).wrapping_mul(2_654_435_761).wrapping_add(seed);
        let port = 10_000 + (n % 22_000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() && std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free loopback port")
}

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root exists")
}

/// The bundled example's configuration folder.
pub fn example_config() -> PathBuf {
    workspace_root().join("examples/homelab/etc")
}

/// The reference system's configuration folder (../shared beside the workspace).
pub fn reference_config() -> PathBuf {
    let path = workspace_root().join("../shared/reference/phoenix-2025-10-27/etc");
    path.canonicalize().unwrap_or(path)
}

/// Configuration files held in memory, keyed by path; environment variables by name.
#[derive(Debug, Default, Clone)]
pub struct MemorySource {
    pub files: BTreeMap<PathBuf, String>,
    pub env: BTreeSet<String>,
}

impl MemorySource {
    /// Every file under `root` (recursively), so a fixture can be copied into memory and mutated.
    pub fn from_dir(root: &Path) -> MemorySource {
        let mut source = MemorySource::default();
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).expect("fixture folder is readable") {
                let path = entry.expect("fixture entry").path();
                if path.is_dir() {
                    stack.push(path);
                } else if let Ok(text) = std::fs::read_to_string(&path) {
                    source.files.insert(path, text);
                }
            }
        }
        source
    }

    pub fn set_env(mut self, names: &[&str]) -> Self {
        self.env.extend(names.iter().map(|n| n.to_string()));
        self
    }

    /// Edits a JSON file in place through `edit`, writing it back pretty-printed.
    pub fn edit_json(&mut self, path: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
        let text = self.files.get(path).unwrap_or_else(|| panic!("no file {}", path.display()));
        let mut value: serde_json::Value = serde_json::from_str(text).expect("fixture is JSON");
        edit(&mut value);
        self.files.insert(path.to_path_buf(), serde_json::to_string_pretty(&value).expect("serialisable"));
    }
}

impl Source for MemorySource {
    fn read_to_string(&self, path: &Path) -> std::io::Result<String> {
        self.files.get(path).cloned().ok_or_else(|| Error::new(ErrorKind::NotFound, "not found"))
    }

    fn is_file(&self, path: &Path) -> bool {
        self.files.contains_key(path)
    }

    fn env_is_set(&self, name: &str) -> bool {
        self.env.contains(name)
    }
}

/// Every environment variable the bundled example reads.
pub const EXAMPLE_ENV: &[&str] = &[
    "PHOENIX_PVE_TOKEN_SECRET",
    "PHOENIX_PORTAINER_PASSWORD",
    "PHOENIX_PORTAINER_API_KEY",
    "PHOENIX_PORTAINER_AGENT_SECRET",
    "PHOENIX_QDRANT_API_KEY",
];

/// The bundled example (config folder and the files beside it) in memory, its variables set.
pub fn example_source() -> MemorySource {
    MemorySource::from_dir(&workspace_root().join("examples/homelab")).set_env(EXAMPLE_ENV)
}

/// Copies the folder `from` into `to` (created), recursively: a configuration tests may edit on disk.
pub fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// A command running `program` (a phoenix binary) as the CLI tests run it: from the workspace
/// root, without `PHOENIX_CONFIG_DIR`, with the example's secret variables set to `secrets`
/// (removed when `None`).
pub fn cli_command(program: &str, secrets: Option<&str>) -> std::process::Command {
    let mut command = std::process::Command::new(program);
    command.current_dir(workspace_root()).env_remove("PHOENIX_CONFIG_DIR");
    for name in EXAMPLE_ENV {
        match secrets {
            Some(value) => command.env(name, value),
            None => command.env_remove(name),
        };
    }
    command
}

/// What a command printed, stdout then stderr (for assertion messages).
pub fn output_text(output: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}
