//! Step-CA's validation in a bare lab: before the lab CA signs what `sync --lab` orders, the
//! same order goes to Pebble at Step-CA's address, which validates for real (see
//! `net::start_pebble`): it resolves each name through Step-CA's resolver and reaches the
//! answer through the lab's firewall. The order is placed from the lab's host namespace, where
//! phoenix runs on a node: phoenix's http-01 and tls-alpn-01 responders listen there, and
//! dns-01 records go into the records file the lab's dnsmasq includes, which is then checked and
//! restarted in its namespace, as `systemctl restart dnsmasq` does on a node.
//! The certificate installed is still the lab CA's: Pebble makes a new root each time it
//! starts, while the lab's store, trust and probes hold one root.
//! Must not sign (`deployed::LabIssuer` does) and must not touch the host's own network.

use crate::net::{self, DnsmasqFiles};
use crate::LabError;
use phoenix_core::certificates::renewal::OrderRequest;
use phoenix_core::certificates::{RESPONDER_HTTP01_PORT, RESPONDER_TLS_ALPN01_PORT};
use phoenix_core::lab::LabSpec;
use phoenix_drivers::acme::dns01::Dns01Settings;
use phoenix_drivers::acme::{AcmeIssuer, AcmeSettings};
use phoenix_core::deploy::{FileWrite, Place, PostAction};
use phoenix_exec::{DriverError, Issuer, Target};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

/// How a lab's orders are validated: where from, and against which ACME endpoint.
#[derive(Debug, Clone)]
pub struct Validation {
    /// The netns phoenix's side of the exchange runs in (the lab's host).
    netns: String,
    settings: AcmeSettings,
    /// One validation at a time, as phoenix's issuer orders (fixed ports, one records file).
    turn: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl Validation {
    /// For a bare lab running a Step-CA: how its orders are validated; `Ok(None)` when no
    /// Step-CA runs there (no guest of it, or not started yet); an error when one runs but
    /// cannot validate as Step-CA would (so that nothing is signed unproven, silently).
    pub fn for_lab(name: &str, spec: &LabSpec) -> Result<Option<Validation>, String> {
        let Some(ca) = spec.namespaces.iter().find(|n| n.acme_port.is_some()) else { return Ok(None) };
        if !net::pebble_installed() {
            return Err("Pebble is not installed (apt-get install pebble): the lab cannot validate as Step-CA would".into());
        }
        if ca.acme_resolver.is_none() {
            return Err("Step-CA's guest has no IPv4 resolver in the lab, so Pebble cannot resolve as Step-CA would".into());
        }
        let Some(port) = ca.acme_port else { return Ok(None) };
        let dir = crate::state_dir(name);
        let any = |port| SocketAddr::from((Ipv4Addr::UNSPECIFIED, port));
        let settings = AcmeSettings {
            directory: format!("https://{}:{port}/dir", ca.address),
            server_root: Some(dir.join(&ca.key).join(net::PEBBLE_CERT)),
            // Pebble forgets accounts when it restarts; the issuer then registers again.
            account_file: dir.join("acme-account.json"),
            http01_listen: any(RESPONDER_HTTP01_PORT),
            tls_alpn01_listen: any(RESPONDER_TLS_ALPN01_PORT),
            order_timeout: Duration::from_secs(30),
            dns01: dns01(name, spec, &dir),
        };
        Ok(Some(Validation { netns: net::netns(name, "host"), settings, turn: Default::default() }))
    }

    /// Orders `order` from the lab's Step-CA and waits until it is valid; the certificate it
    /// yields is dropped.
    pub async fn validate(&self, order: &OrderRequest) -> Result<(), DriverError> {
        let _turn = self.turn.lock().await;
        let (settings, order, netns) = (self.settings.clone(), order.clone(), self.netns.clone());
        let work = move || {
            in_namespace(&netns, move || {
                let runtime =
                    tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| DriverError::new(e.to_string()))?;
                runtime.block_on(AcmeIssuer::new(settings).issue(&order, &NoWebRoots)).map(|_| ())
            })
        };
        let result = tokio::task::spawn_blocking(work).await.map_err(|e| DriverError::new(e.to_string()))?;
        result.map_err(|e| DriverError::new(e.0))?
    }
}

/// dns-01 through the lab's dnsmasq, when phoenix's DNS runs in the lab's host namespace.
fn dns01(name: &str, spec: &LabSpec, dir: &Path) -> Option<Dns01Settings> {
    let server = spec.namespaces.iter().find(|n| n.key == "host" && n.dnsmasq.is_some())?;
    let netns = net::netns(name, &server.key);
    let files = DnsmasqFiles::of(dir, &netns);
    let program = net::program("dnsmasq", "dnsmasq-base").ok()?;
    let in_netns = |argv: Vec<String>| [vec!["ip".to_string(), "netns".into(), "exec".into(), netns.clone()], argv].concat();
    let check = in_netns(vec![program.clone(), "--test".into(), format!("--conf-file={}", files.conf.display())]);
    // The restarted dnsmasq runs as a daemon (the lab's next start replaces it: net::start_dnsmasq).
    // Values go as arguments, never into the script; the pid is stopped only when it is a
    // number and that process is this dnsmasq (its command line names this configuration).
    let stop_then_start = r#"p=$(cat "$1" 2>/dev/null); case "$p" in ''|*[!0-9]*) p= ;; esac
if [ -n "$p" ] && tr '\0' '\n' < "/proc/$p/cmdline" 2>/dev/null | grep -qxF -- "$2"; then
    kill "$p"; for i in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
fi
shift 2; exec "$@""#;
    let conf_arg = format!("--conf-file={}", files.conf.display());
    let mut restart = vec!["sh".into(), "-c".into(), stop_then_start.into(), "sh".into(), files.pid.display().to_string(), conf_arg];
    restart.extend(in_netns(files.argv(&program, false)));
    Some(Dns01Settings {
        conf_file: files.records,
        check,
        restart,
        resolver: SocketAddr::from((server.address, 53)),
        wait: Duration::from_secs(10),
    })
}

/// Runs `work` on a thread of its own that first enters network namespace `netns` (setns(2)
/// on that thread only: the rest of the process stays where it is).
fn in_namespace<T: Send + 'static>(netns: &str, work: impl FnOnce() -> T + Send + 'static) -> Result<T, LabError> {
    let path = Path::new("/run/netns").join(netns);
    let joined = std::thread::spawn(move || {
        let file = std::fs::File::open(&path).map_err(|e| LabError(format!("cannot open {}: {e}", path.display())))?;
        rustix::thread::move_into_link_name_space(std::os::fd::AsFd::as_fd(&file), Some(rustix::thread::LinkNameSpaceType::Network))
            .map_err(|e| LabError(format!("cannot enter {}: {e}", path.display())))?;
        Ok(work())
    })
    .join();
    joined.map_err(|_| LabError(format!("the work inside {netns} panicked")))?
}

/// The guests as the validating thread sees them: none (the lab's guests are folders of the
/// process outside), so an order into a guest's web root is refused there, with the reason.
struct NoWebRoots;

impl Target for NoWebRoots {
    async fn read(&self, _: &Place) -> Result<Option<Vec<u8>>, DriverError> {
        Ok(None)
    }
    async fn write(&self, file: &FileWrite) -> Result<(), DriverError> {
        Err(DriverError::new(format!("the lab does not write http-01 tokens into guests' web roots ({})", file.place)))
    }
    async fn remove(&self, _: &Place) -> Result<(), DriverError> {
        Ok(())
    }
    async fn run(&self, _: &PostAction) -> Result<(), DriverError> {
        Ok(())
    }
}
