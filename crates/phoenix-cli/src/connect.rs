//! How phoenix reaches the Proxmox VE API: the arguments every command that talks to the node
//! takes (`sync`, `status`), and the client they make. TLS is always verified.

use crate::exit::Failure;
use clap::Args;
use phoenix_drivers::host::resolve_secret;
use phoenix_drivers::http::Trust;
use phoenix_drivers::pve::{PveClient, PveSettings};
use phoenix_model::model::Model;
use phoenix_model::secret::Secret;
use std::path::PathBuf;

#[derive(Args, Clone)]
pub struct PveArgs {
    /// The Proxmox VE API; default proxmox.api_url from the configuration, else
    /// https://<the host's address>:8006/api2/json. This flag (or PHOENIX_PVE_URL) wins.
    #[arg(long, env = "PHOENIX_PVE_URL", value_name = "URL")]
    pve_url: Option<String>,
    /// The API token, `USER@REALM!TOKENID=SECRET`; default proxmox.token_id with
    /// proxmox.token_secret from the configuration. Prefer the environment variable: a flag's
    /// value is visible to every user of the machine in the process list.
    #[arg(long, env = "PHOENIX_PVE_TOKEN", hide_env_values = true, value_name = "TOKEN")]
    pve_token: Option<Secret>,
    /// The CA that signed the node's certificate (PEM) ...
    #[arg(long, value_name = "FILE", conflicts_with = "pve_fingerprint")]
    pve_ca: Option<PathBuf>,
    /// ... or the SHA-256 fingerprint of the node's certificate (`pvenode cert info`).
    #[arg(long, env = "PHOENIX_PVE_FINGERPRINT", value_name = "HEX")]
    pve_fingerprint: Option<String>,
}

/// `proxmox.api_url` as the client calls it: the API's base ends in `/api2/json`.
fn api_base(url: &str) -> String {
    let url = url.trim_end_matches('/');
    if url.ends_with("/api2/json") {
        url.to_string()
    } else {
        format!("{url}/api2/json")
    }
}

/// The configuration's token: `proxmox.token_id` and the secret `proxmox.token_secret` names.
fn configured_token(model: &Model) -> Option<Secret> {
    let secret = resolve_secret(model.secret_for("proxmox.token_secret")?)?;
    Some(Secret::new(format!("{}={secret}", model.host.token_id.as_deref()?)))
}

pub fn pve_client(args: &PveArgs, model: &Model) -> Result<PveClient, Failure> {
    let url = match (&args.pve_url, &model.host.api_url, model.host.ip()) {
        (Some(url), _, _) => url.clone(),
        (None, Some(url), _) => api_base(url),
        (None, None, Some(ip)) => format!("https://{ip}:8006/api2/json"),
        (None, None, None) => {
            return Err(Failure::could_not_run("no Proxmox VE API address")
                .hint("set --pve-url, proxmox.api_url or the host's address in the configuration"))
        }
    };
    let token = args.pve_token.clone().or_else(|| configured_token(model)).ok_or_else(|| {
        Failure::could_not_run("no Proxmox VE API token")
            .hint("set PHOENIX_PVE_TOKEN to USER@REALM!TOKENID=SECRET, or proxmox.token_id and proxmox.token_secret")
    })?;
    let trust = match (&args.pve_ca, &args.pve_fingerprint) {
        (Some(ca), _) => Trust::Ca(ca.clone()),
        (None, Some(fingerprint)) => Trust::Fingerprint(fingerprint.clone()),
        (None, None) => {
            return Err(Failure::could_not_run("no way to verify the Proxmox VE node's certificate (TLS verification is never off)")
                .hint("set --pve-ca FILE or --pve-fingerprint HEX (`pvenode cert info`)"))
        }
    };
    PveClient::new(PveSettings::new(url, token, trust))
        .map_err(|error| Failure::could_not_run("cannot set up the Proxmox VE client").because(error))
}

/// What the guest commands start from: the valid model, its rendering, the client, a runtime,
/// and the node's guests as observed.
pub struct GuestsObserved {
    pub model: Model,
    pub rendered: phoenix_core::render::Rendered,
    pub client: PveClient,
    pub runtime: tokio::runtime::Runtime,
    pub observed: phoenix_core::plan::PveObserved,
}

pub fn observe_guests(config: &std::path::Path, args: &PveArgs) -> Result<GuestsObserved, Failure> {
    let model = crate::context::valid_model(config)?;
    let rendered = phoenix_core::render::render_all(&model);
    let client = pve_client(args, &model)?;
    let runtime = crate::context::runtime()?;
    let observed = runtime
        .block_on(phoenix_exec::sync::observe::guests_observed(&client, &model, &model.host.node_name))
        .map_err(|error| Failure::could_not_run("cannot observe the Proxmox VE node").because(error))?;
    Ok(GuestsObserved { model, rendered, client, runtime, observed })
}

/// dns-01 through the node's dnsmasq, when phoenix runs on the node whose dnsmasq it
/// configures (the records file is written and dnsmasq restarted here); `None` elsewhere (a
/// DNS guest, `--ssh`, a rehearsal), where an order that needs dns-01 is refused.
pub fn dns01_on_this_node(model: &Model) -> Option<phoenix_drivers::acme::dns01::Dns01Settings> {
    use phoenix_core::render::dnsmasq;
    if !model.dns.enabled || model.edge.dns.is_some() {
        return None;
    }
    let resolver = *dnsmasq::listen_addresses(model).first()?;
    let argv = |command: &str| command.split_whitespace().map(str::to_string).collect();
    Some(phoenix_drivers::acme::dns01::Dns01Settings {
        conf_file: dnsmasq::ACME_RECORDS_PATH.into(),
        check: argv(dnsmasq::VALIDATE),
        restart: argv(dnsmasq::RELOAD),
        resolver: std::net::SocketAddr::new(resolver, 53),
        wait: std::time::Duration::from_secs(30),
    })
}
