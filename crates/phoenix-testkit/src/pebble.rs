//! A real Pebble (Let's Encrypt's ACME test server, Debian package `pebble`) on loopback for
//! tests, with pebble-challtestsrv as its DNS server answering 127.0.0.1 for every name, so
//! Pebble really validates http-01 and tls-alpn-01 against phoenix's responders on loopback and
//! never tries to reach a guest's real (private) address. Ports are picked free per instance;
//! both processes are killed when the value is dropped.

use crate::free_port;
use crate::pki::{TestCa, Usage};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Pebble {
    pub directory: String,
    /// The management API (`/roots/0`, `/intermediates/0`).
    pub management: SocketAddr,
    /// PEM of the root that signed Pebble's own HTTPS certificate (not the ACME issuing root).
    pub server_root: PathBuf,
    /// Where Pebble sends http-01 and tls-alpn-01 validation (port on 127.0.0.1).
    pub http01: SocketAddr,
    pub tls_alpn01: SocketAddr,
    pub dir: PathBuf,
    children: std::sync::Mutex<Vec<Child>>,
}

impl Drop for Pebble {
    fn drop(&mut self) {
        for child in self.children.get_mut().unwrap_or_else(|p| p.into_inner()) {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn program(name: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/local/bin", "/usr/sbin"] {
        let path = Path::new(dir).join(name);
        if path.is_file() {
            return path;
        }
    }
    panic!("{name} is not installed: install the Debian package `pebble` (scripts/test does)");
}

/// Waits until `child` listens on `address`; `Err` when it exited first (a port another test
/// took between our pick and its bind).
fn wait_for_port(address: SocketAddr, child: &mut Child, what: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("{what} exited early with {status}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not listen on {address} within 15 s");
}

/// How often Pebble is started with fresh ports when one was taken meanwhile.
const START_ATTEMPTS: usize = 3;

impl Pebble {
    /// Starts Pebble with `env` added (e.g. `PEBBLE_VA_ALWAYS_VALID`). Validation does not sleep,
    /// no nonce is rejected and no authorization is reused unless `env` says otherwise.
    pub fn start(tag: &str, env: &[(&str, &str)]) -> Pebble {
        Pebble::start_with(tag, env, None)
    }

    /// Starts Pebble asking `dns` (a real dnsmasq) for every name instead of
    /// pebble-challtestsrv: dns-01 is then validated against what that server answers.
    pub fn start_with_dns(tag: &str, env: &[(&str, &str)], dns: SocketAddr) -> Pebble {
        Pebble::start_with(tag, env, Some(dns))
    }

    fn start_with(tag: &str, env: &[(&str, &str)], dns: Option<SocketAddr>) -> Pebble {
        let mut last = String::new();
        for _ in 0..START_ATTEMPTS {
            match Pebble::try_start(tag, env, dns) {
                Ok(pebble) => return pebble,
                Err(why) => last = why,
            }
        }
        panic!("{last} ({START_ATTEMPTS} attempts with fresh ports)");
    }

    fn try_start(tag: &str, env: &[(&str, &str)], dns_server: Option<SocketAddr>) -> Result<Pebble, String> {
        let dir = std::env::temp_dir().join(format!("phoenix-pebble-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("pebble folder");
        let ca = TestCa::new("phoenix test: Pebble's HTTPS root");
        let listener = ca.issue(&["localhost", "127.0.0.1"], Usage::Server);
        std::fs::write(dir.join("server.crt"), &listener.cert_pem).unwrap();
        std::fs::write(dir.join("server.key"), &listener.key_pem).unwrap();
        std::fs::write(dir.join("server-root.crt"), &ca.cert_pem).unwrap();
        let (acme, management, dns, dns_management) = (free_port(), free_port(), free_port(), free_port());
        let (http01, tls_alpn01) = (free_port(), free_port());
        let config = serde_json::json!({ "pebble": {
            "listenAddress": format!("127.0.0.1:{acme}"),
            "managementListenAddress": format!("127.0.0.1:{management}"),
            "certificate": dir.join("server.crt"),
            "privateKey": dir.join("server.key"),
            "httpPort": http01,
            "tlsPort": tls_alpn01,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
        }});
        std::fs::write(dir.join("pebble.json"), serde_json::to_vec_pretty(&config).unwrap()).unwrap();
        let log = |name: &str| std::fs::File::create(dir.join(name)).map(Stdio::from).unwrap_or_else(|_| Stdio::null());
        let stop = |mut child: Child| {
            let _ = child.kill();
            let _ = child.wait();
        };
        let mut children = Vec::new();
        if dns_server.is_none() {
            let mut challtestsrv = Command::new(program("pebble-challtestsrv"))
                .args(["-dns01", &format!("127.0.0.1:{dns}"), "-http01", "", "-https01", "", "-tlsalpn01", ""])
                .args(["-management", &format!("127.0.0.1:{dns_management}"), "-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
                .stdout(log("challtestsrv.log"))
                .stderr(log("challtestsrv.err"))
                .spawn()
                .expect("start pebble-challtestsrv");
            if let Err(why) =
                wait_for_port(format!("127.0.0.1:{dns_management}").parse().unwrap(), &mut challtestsrv, "pebble-challtestsrv")
            {
                stop(challtestsrv);
                return Err(why);
            }
            children.push(challtestsrv);
        }
        let dns_server = dns_server.unwrap_or_else(|| format!("127.0.0.1:{dns}").parse().unwrap());
        let mut command = Command::new(program("pebble"));
        command
            .args(["-config", &dir.join("pebble.json").to_string_lossy(), "-dnsserver", &dns_server.to_string(), "-strict=false"])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            // Every order is validated: a reused authorization would hide a failing challenge.
            .env("PEBBLE_AUTHZREUSE", "0")
            .stdout(log("pebble.log"))
            .stderr(log("pebble.err"));
        for (key, value) in env {
            command.env(key, value);
        }
        let mut pebble = command.spawn().expect("start pebble");
        let ready = wait_for_port(format!("127.0.0.1:{acme}").parse().unwrap(), &mut pebble, "pebble")
            .and_then(|()| wait_for_port(format!("127.0.0.1:{management}").parse().unwrap(), &mut pebble, "pebble management"));
        if let Err(why) = ready {
            stop(pebble);
            children.into_iter().for_each(stop);
            return Err(why);
        }
        children.push(pebble);
        Ok(Pebble {
            directory: format!("https://127.0.0.1:{acme}/dir"),
            management: format!("127.0.0.1:{management}").parse().unwrap(),
            server_root: dir.join("server-root.crt"),
            http01: format!("127.0.0.1:{http01}").parse().unwrap(),
            tls_alpn01: format!("127.0.0.1:{tls_alpn01}").parse().unwrap(),
            dir,
            children: std::sync::Mutex::new(children),
        })
    }

    /// Stops the ACME server (a CA failing in the middle of an order).
    pub fn kill(&self) {
        if let Some(child) = self.children.lock().unwrap_or_else(|p| p.into_inner()).last_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Pebble's log so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("pebble.log")).unwrap_or_default()
    }
}

impl Pebble {
    /// The root that signs the certificates Pebble issues (regenerated at every start).
    pub async fn issuing_root(&self) -> String {
        let server_root = std::fs::read(&self.server_root).expect("Pebble's HTTPS root");
        let client = reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&server_root).expect("PEM root"))
            .timeout(Duration::from_secs(10))
            .build()
            .expect("HTTPS client");
        let url = format!("https://{}/roots/0", self.management);
        let response = client.get(&url).send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
        assert!(response.status().is_success(), "GET {url}: {}", response.status());
        response.text().await.expect("root PEM")
    }
}
