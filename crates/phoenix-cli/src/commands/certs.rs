//! `phoenix certs status|renew|trust|timer`: arguments, wiring of the drivers, printing and
//! exit codes. The decisions are phoenix-core's, the operations phoenix-exec's.

use crate::context::{self, parse_now, rfc3339, valid_model, ConfigArg, Format};
use crate::exit::{Failure, Outcome};
use clap::{Args, Subcommand};
use phoenix_core::certificates::{timer, RESPONDER_HTTP01_PORT, RESPONDER_TLS_ALPN01_PORT};
use phoenix_drivers::acme::{AcmeIssuer, AcmeSettings};
use phoenix_drivers::host::{GuestAccess, HostTarget, SystemRunner};
use phoenix_exec::certs::{self, RenewRequest};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct StoreArg {
    /// phoenix's certificate store: `<name>.crt` (certificate, then chain), `<name>.key`, and
    /// `root_ca.crt`, the CA root.
    #[arg(long, value_name = "DIR", default_value = phoenix_model::paths::DEFAULT_STORE)]
    certs: PathBuf,
}

#[derive(Args)]
pub struct GuestsArg {
    /// Treat each guest as the folder DIR/guest-<vmid> (the layout of render --out) instead of reaching it with pct/qm (a
    /// rehearsal away from Proxmox; reloads and trust-store updates in guests cannot run then).
    #[arg(long, value_name = "DIR")]
    guests_root: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum CertsCommand {
    /// For each certificate: subject, SANs, issuer, chain, EKU, validity, whether the key
    /// matches, whether it needs renewal (reason codes: missing, expires-soon, san-mismatch,
    /// issuer-changed, key-mismatch, chain-incomplete, usage-mismatch) and when renewal is due
    /// (two thirds of the lifetime). Exit 1 when any certificate needs renewal.
    Status {
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        store: StoreArg,
        /// The time to judge at (RFC 3339); default now.
        #[arg(long, value_name = "TIME")]
        now: Option<String>,
        /// Judge the files installed in the guests (cert_path, key_path), read with pct/qm or
        /// from --guests-root, instead of the store's copies.
        #[arg(long)]
        installed: bool,
        #[command(flatten)]
        guests: GuestsArg,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// Renew the certificates that are due (or all given with --force) over ACME, install
    /// them atomically with their owner and mode, then run their post-renewal actions; when an
    /// action fails the previous files are restored. Exit 1 when any renewal failed.
    Renew(RenewArgs),
    /// Install the CA root: into the store (root_ca.crt), the host's trust store, and the
    /// gateway's and Traefik's, then rebuild those trust stores (update-ca-certificates).
    Trust {
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        store: StoreArg,
        /// The CA root (PEM), e.g. Step-CA's roots.pem.
        #[arg(long, value_name = "FILE")]
        root: PathBuf,
        /// Where the host keeps local CA certificates.
        #[arg(long, value_name = "FILE", default_value = phoenix_model::paths::TRUSTED_ROOT_PATH)]
        trust_file: String,
        /// Only copy the files; do not run update-ca-certificates.
        #[arg(long)]
        no_update: bool,
        #[command(flatten)]
        guests: GuestsArg,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// Write the systemd service and timer that run `phoenix certs renew` every 15 minutes.
    Timer {
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        store: StoreArg,
        /// Where the units go.
        #[arg(long, value_name = "DIR", default_value = "/etc/systemd/system")]
        dir: String,
        /// Also run `systemctl daemon-reload` and `systemctl enable --now` on the timer.
        #[arg(long)]
        enable: bool,
    },
}

#[derive(Args)]
pub struct RenewArgs {
    #[command(flatten)]
    config: ConfigArg,
    #[command(flatten)]
    store: StoreArg,
    /// Only these manifest entries (by name); all when none are given.
    names: Vec<String>,
    /// Renew even when the installed certificate is fine.
    #[arg(long)]
    force: bool,
    /// The time to judge at (RFC 3339); default now.
    #[arg(long, value_name = "TIME", conflicts_with = "watch")]
    now: Option<String>,
    /// Keep running: renew each certificate when it is due, retry failures after 5 minutes.
    #[arg(long)]
    watch: bool,
    /// The ACME directory; default: Step-CA's ACME provisioner from the configuration.
    #[arg(long, value_name = "URL")]
    acme_directory: Option<String>,
    /// The root that signed the ACME server's HTTPS certificate; default: the store's
    /// root_ca.crt (Step-CA serves with a certificate from its own root).
    #[arg(long, value_name = "FILE")]
    acme_root: Option<PathBuf>,
    /// Where the ACME account is kept (mode 0600); default: acme-account.json in the store.
    #[arg(long, value_name = "FILE")]
    account: Option<PathBuf>,
    /// Where phoenix answers http-01 challenges (the gateway relays the challenges of http-01
    /// names to the Proxmox host on this port).
    #[arg(long, value_name = "ADDR", default_value_t = SocketAddr::from(([0, 0, 0, 0], RESPONDER_HTTP01_PORT)))]
    http01_listen: SocketAddr,
    /// Where phoenix answers tls-alpn-01 challenges.
    #[arg(long, value_name = "ADDR", default_value_t = SocketAddr::from(([0, 0, 0, 0], RESPONDER_TLS_ALPN01_PORT)))]
    tls_alpn01_listen: SocketAddr,
    /// Do not run post-renewal actions (reloads, post_renewal_command).
    #[arg(long)]
    skip_post_actions: bool,
    #[command(flatten)]
    guests: GuestsArg,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

pub fn run(command: CertsCommand) -> Result<Outcome, Failure> {
    match command {
        CertsCommand::Status { config, store, now, installed, guests, format } => {
            status(&config.config, &store.certs, now.as_deref(), installed.then_some(guests), format)
        }
        CertsCommand::Renew(args) => renew(args),
        CertsCommand::Trust { config, store, root, trust_file, no_update, guests, format } => {
            trust(&config.config, &store.certs, &root, &trust_file, !no_update, guests, format)
        }
        CertsCommand::Timer { config, store, dir, enable } => install_timer(&config.config, &store.certs, &dir, enable),
    }
}

/// The target the guests' files are reached through; with the model, a guest on another node
/// of the cluster through that node.
fn target(guests: GuestsArg, model: Option<&phoenix_model::model::Model>) -> HostTarget<SystemRunner> {
    let guests = match guests.guests_root {
        Some(root) => GuestAccess::Folders(root),
        None => GuestAccess::Pve,
    };
    let target = HostTarget::new(guests, SystemRunner);
    match model {
        Some(model) => target.with_cluster(model),
        None => target,
    }
}

fn store_text(store: &Path) -> String {
    store.to_string_lossy().into_owned()
}

/// `installed`: read the guests' files (reached as `GuestsArg` says) instead of the store's.
fn status(dir: &Path, store: &Path, now: Option<&str>, installed: Option<GuestsArg>, format: Format) -> Result<Outcome, Failure> {
    let model = context::loaded(dir)?.model.expect("loaded() returns a model");
    let now = parse_now(now)?;
    if !store.is_dir() {
        return Err(Failure::could_not_run(format!("certificate store {} does not exist", store.display()))
            .hint("give phoenix's store with --certs DIR"));
    }
    let from_guests = installed.is_some();
    let target = target(installed.unwrap_or(GuestsArg { guests_root: None }), Some(&model));
    let runtime = context::runtime()?;
    let mut statuses = Vec::new();
    for cert in &model.certificates {
        let files = if from_guests {
            runtime.block_on(certs::read_installed(cert, &store_text(store), &target))
        } else {
            runtime.block_on(certs::read_store(cert, &store_text(store), &target))
        };
        let files = files.map_err(|error| Failure::could_not_run(format!("cannot read certificate {}", cert.name)).because(error))?;
        statuses.push(phoenix_core::certificates::status(cert, &files, now));
    }
    let text = match format {
        Format::Json => format!("{:#}\n", serde_json::json!({ "schema_version": 1, "now": rfc3339(now as i64), "certificates": statuses })),
        Format::Human => statuses.iter().map(status_text).collect(),
    };
    context::report(&text, statuses.iter().any(|s| s.needs_renewal()))
}

fn status_text(s: &phoenix_core::certificates::CertStatus) -> String {
    let verdict = if s.reasons.is_empty() {
        "ok".to_string()
    } else {
        format!("needs renewal: {}", s.reasons.iter().map(|r| r.code()).collect::<Vec<_>>().join(", "))
    };
    let mut out = format!("{}: {verdict}\n", s.name);
    if let Some(i) = &s.installed {
        out.push_str(&format!(
            "  subject {}; issuer {}\n  SANs {}\n  EKU {}; chain of {}; key {}\n  valid {} to {}\n",
            i.subject,
            i.issuer,
            i.sans.join(", "),
            i.eku.join(", "),
            i.chain_length,
            if i.key_matches { "matches" } else { "does not match" },
            rfc3339(i.not_before),
            rfc3339(i.not_after)
        ));
    }
    if let Some(at) = s.renew_at {
        out.push_str(&format!("  renewal due {}\n", rfc3339(at)));
    }
    out
}

fn issuer(args: &RenewArgs, model: &phoenix_model::model::Model) -> Result<AcmeIssuer, Failure> {
    let Some(directory) = args.acme_directory.clone().or_else(|| phoenix_core::render::traefik::acme_directory(model)) else {
        return Err(Failure::could_not_run("no ACME directory: the configuration names no Step-CA").hint("set --acme-directory URL"));
    };
    let mut settings = AcmeSettings::for_store(directory, &args.store.certs, args.http01_listen, args.tls_alpn01_listen);
    if let Some(root) = &args.acme_root {
        settings.server_root = Some(root.clone());
    }
    if let Some(account) = &args.account {
        settings.account_file = account.clone();
    }
    settings.dns01 = crate::connect::dns01_on_this_node(model);
    Ok(AcmeIssuer::new(settings))
}

fn renew(args: RenewArgs) -> Result<Outcome, Failure> {
    let model = valid_model(&args.config.config)?;
    if let Err(certs::UnknownNames(names)) = certs::select(&model, &args.names) {
        let known: Vec<&str> = model.certificates.iter().map(|c| c.name.as_str()).collect();
        return Err(Failure::could_not_run(format!("not in the certificate manifest: {} (known: {})", names.join(", "), known.join(", ")))
            .hint("name manifest entries (`name` in phoenix_certificates_manifest.json), or none to renew every one that is due"));
    }
    let issuer = issuer(&args, &model)?;
    let runtime = context::runtime()?;
    let target = target(GuestsArg { guests_root: args.guests.guests_root.clone() }, Some(&model));
    let mut request = RenewRequest {
        store_dir: store_text(&args.store.certs),
        names: args.names.clone(),
        force: args.force,
        now: 0,
        skip_post_actions: args.skip_post_actions,
    };
    loop {
        request.now = parse_now(args.now.as_deref())?;
        let report = runtime.block_on(certs::renew(&model, &request, &issuer, &target)).expect("names were checked");
        let text = match args.format {
            Format::Json => format!("{}\n", serde_json::to_string(&report).expect("report serializes")),
            Format::Human => certs::to_human(&report),
        };
        if !args.watch {
            return context::report(&text, report.failed());
        }
        context::print(&text)?;
        // --force applies to the first pass only; after that, renew when due.
        request.force = false;
        let wake = certs::next_wake(&report, request.now, 300, 3600);
        std::thread::sleep(std::time::Duration::from_secs(wake.saturating_sub(request.now)));
    }
}

fn trust(
    dir: &Path,
    store: &Path,
    root: &Path,
    trust_file: &str,
    update: bool,
    guests: GuestsArg,
    format: Format,
) -> Result<Outcome, Failure> {
    let model = valid_model(dir)?;
    let root_pem =
        std::fs::read_to_string(root).map_err(|error| Failure::could_not_run(format!("cannot read {}", root.display())).because(error))?;
    let trusted = context::runtime()?.block_on(certs::trust(&model, &root_pem, &store_text(store), trust_file, update, &target(guests, Some(&model))));
    match trusted {
        Ok(report) => context::report(
            &match format {
                Format::Json => format!("{}\n", serde_json::to_string(&report).expect("report serializes")),
                Format::Human => {
                    let places: Vec<String> = report.installed.iter().map(|p| p.to_string()).collect();
                    format!("trusted {}: {}; ran {} trust-store update(s)\n", report.subject, places.join(", "), report.actions.len())
                }
            },
            false,
        ),
        Err(error) => {
            let state = certs::restored_state(error.restored);
            Err(Failure::wrong(format!("{} [{state}]", error.message)))
        }
    }
}

fn install_timer(dir: &Path, store: &Path, unit_dir: &str, enable: bool) -> Result<Outcome, Failure> {
    valid_model(dir)?;
    let absolute = |path: &Path| std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()).to_string_lossy().into_owned();
    let phoenix = std::env::current_exe().map(|p| p.to_string_lossy().into_owned()).unwrap_or_else(|_| "/usr/local/bin/phoenix".into());
    let files = timer::units(unit_dir, &phoenix, &absolute(dir), &absolute(store));
    let actions: Vec<phoenix_core::deploy::PostAction> = if enable {
        ["systemctl daemon-reload", &format!("systemctl enable --now {}", timer::TIMER)]
            .iter()
            .map(|command| phoenix_core::deploy::PostAction::Shell { command: command.to_string() })
            .collect()
    } else {
        Vec::new()
    };
    match context::runtime()?.block_on(certs::apply_change(&target(GuestsArg { guests_root: None }, None), &files, &actions)) {
        Ok(()) => {
            let places: Vec<String> = files.iter().map(|f| f.place.to_string()).collect();
            let next = if enable {
                "enabled".to_string()
            } else {
                format!("enable with: systemctl daemon-reload && systemctl enable --now {}", timer::TIMER)
            };
            context::report(&format!("wrote {}; {next}\n", places.join(", ")), false)
        }
        Err(error) => Err(Failure::wrong(error.message)),
    }
}
