//! `phoenix sync`: arguments, the drivers' settings, confirmation, progress and the summary.
//! Observing, planning and applying are phoenix-exec's.

use crate::context::{self, parse_now};
use crate::exit::{Failure, Outcome};
use clap::{Args, ValueEnum};
use phoenix_core::plan::{Domain, Plan};
use phoenix_drivers::acme::{AcmeIssuer, AcmeSettings};
use phoenix_drivers::host::{resolve_secret, GuestAccess, HostTarget, NodeRunner, SshRunner, SystemRunner};
use phoenix_drivers::http::{Backoff, Trust};
use phoenix_drivers::portainer::{PortainerClient, PortainerSettings};
use phoenix_exec::sync::observe::ObserveInput;
use phoenix_exec::sync::{apply, plan_sync, ApplyOptions, Drivers, PortainerApi, PveApi};
use phoenix_exec::{Issuer, Target};
use phoenix_model::model::Model;
use phoenix_model::secret::Secret;
use std::collections::BTreeSet;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone, Copy, ValueEnum)]
pub enum What {
    /// Everything, in order: guests, features, trust, dns, firewall, certs, gateway, portainer,
    /// stacks (guests are started after their firewall is in place, and provisioned once they
    /// run).
    All,
    /// The guests: created (from a template, a cloud image or a clone) or converged, templates
    /// converted, then started in boot order.
    Guests,
    /// What runs inside the guests: their features (base_setup, trusted_ca, docker), the
    /// gateway's nginx and their application scripts, then their health checks. Probed in
    /// each running guest (pct exec, qm guest exec); not in a rehearsal (guests are folders).
    Features,
    Trust,
    Dns,
    Firewall,
    Certs,
    /// Traefik's and NGINX's files.
    Gateway,
    /// Portainer's environments (and its bootstrap on a fresh instance).
    Portainer,
    Stacks,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum SyncFormat {
    Human,
    /// The plan as JSON (with --dry-run), else JSON Lines: one event per step start and end,
    /// then the summary.
    Json,
}

#[derive(Args)]
pub struct SyncArgs {
    /// What to bring to the described state.
    #[arg(value_enum)]
    what: What,
    #[command(flatten)]
    options: SyncOptions,
}

/// Everything `sync` takes but what it syncs (`letsgo` takes the same).
#[derive(Args)]
pub struct SyncOptions {
    #[command(flatten)]
    config: crate::context::ConfigArg,
    /// Print the plan and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Apply without asking (needed when stdin is not a terminal).
    #[arg(long)]
    yes: bool,
    #[arg(long, value_enum, default_value_t = SyncFormat::Human)]
    format: SyncFormat,
    #[command(flatten)]
    pve: crate::connect::PveArgs,
    /// Portainer; default https://<portainer.server_ip>:<portainer.server_port>.
    #[arg(long, env = "PHOENIX_PORTAINER_URL", value_name = "URL")]
    portainer_url: Option<String>,
    /// The CA that signed Portainer's certificate; default the store's root_ca.crt.
    #[arg(long, value_name = "FILE")]
    portainer_ca: Option<PathBuf>,
    /// phoenix's certificate store.
    #[arg(long, value_name = "DIR", default_value = phoenix_model::paths::DEFAULT_STORE)]
    certs: String,
    /// Where the host keeps local CA certificates.
    #[arg(long, value_name = "FILE", default_value = phoenix_model::paths::TRUSTED_ROOT_PATH)]
    trust_file: String,
    /// Rehearse in a folder: host files under DIR/host (the store too), guests as
    /// DIR/guest-<vmid>; validate and reload commands do not run.
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Reach the Proxmox node over SSH (`root@pve`) for what only exists there: its files
    /// (dnsmasq's), `pct` and `qm guest exec`. Default: phoenix runs on the node.
    #[arg(long, value_name = "USER@HOST", conflicts_with = "root")]
    ssh: Option<String>,
    /// How long to wait for another sync of the same target (the node, the rehearsal folder
    /// or the lab) to finish before giving up; one sync applies to a target at a time.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    lock_wait: u64,
    /// Start guests in boot order without waiting each one's boot_delay (Proxmox VE still
    /// waits it when the node boots).
    #[arg(long)]
    no_boot_delay: bool,
    /// Steps running at once.
    #[arg(long, default_value_t = 512)]
    parallel: usize,
    /// Steps that take a node lock (guest configuration changes) running at once per node.
    #[arg(long, default_value_t = 8)]
    node_parallel: usize,
    /// How long a stack deploy may take: Portainer answers a stack's creation or update only
    /// once its images are pulled and its containers run. A deploy cut by it is not sent again.
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    deploy_timeout: u64,
    /// How long creating an agent environment waits for the Portainer server to reach the
    /// agent (Portainer refuses the environment while its agent does not answer).
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    agent_wait: u64,
    /// Where phoenix answers ACME http-01 challenges when certificates are renewed (the
    /// gateway relays the challenges of http-01 names to the Proxmox host on this port).
    #[arg(long, value_name = "ADDR", default_value_t = std::net::SocketAddr::from(([0, 0, 0, 0], phoenix_core::certificates::RESPONDER_HTTP01_PORT)))]
    http01_listen: std::net::SocketAddr,
    /// Deploy to the lab NAME (`phoenix lab up --bare`) instead: its folder, its Proxmox VE
    /// API and its CA; afterwards the lab runs what was deployed. Certificates are validated
    /// by Pebble at Step-CA's address through the lab's DNS and firewall, so what comes before
    /// them is applied and running first (two plans). The lab has no Portainer.
    #[arg(long, value_name = "NAME", conflicts_with_all = ["root", "ssh", "pve_url", "portainer_url", "certs"])]
    lab: Option<String>,
}

fn domains(what: What) -> BTreeSet<Domain> {
    match what {
        What::All => Domain::ALL.into_iter().collect(),
        What::Guests => [Domain::Guests].into(),
        What::Features => [Domain::Features].into(),
        What::Trust => [Domain::Trust].into(),
        What::Dns => [Domain::Dns].into(),
        What::Firewall => [Domain::Firewall].into(),
        What::Certs => [Domain::Certs].into(),
        What::Gateway => [Domain::Gateway].into(),
        What::Portainer => [Domain::Portainer].into(),
        What::Stacks => [Domain::Stacks].into(),
    }
}

/// The store as the target sees it (under DIR/host in a rehearsal).
fn local_store(args: &SyncOptions) -> PathBuf {
    match &args.root {
        Some(root) => root.join("host").join(args.certs.trim_start_matches('/')),
        None => PathBuf::from(&args.certs),
    }
}

fn portainer_client(args: &SyncOptions, model: &Model) -> Result<PortainerClient, Failure> {
    let url = match (&args.portainer_url, model.portainer.as_ref()) {
        (Some(url), _) => url.clone(),
        (None, Some(p)) if p.server_ip.is_some() => {
            format!("https://{}:{}", p.server_ip.as_ref().map(|i| i.value.to_string()).unwrap_or_default(), p.server_port)
        }
        _ => {
            return Err(
                Failure::could_not_run("no Portainer address").hint("set --portainer-url or portainer.server_ip in the configuration")
            )
        }
    };
    let store = local_store(args);
    let ca = args.portainer_ca.clone().unwrap_or_else(|| store.join(phoenix_model::paths::STORE_ROOT_FILE));
    let settings = PortainerSettings {
        url,
        trust: Trust::Ca(ca.clone()),
        api_key: std::env::var("PHOENIX_PORTAINER_API_KEY")
            .ok()
            .filter(|k| !k.is_empty())
            .or_else(|| resolve_secret(model.secret_for("portainer_api.api_key")?))
            .map(Secret::new),
        key_file: store.join("portainer-api-key"),
        admin_user: model.portainer.as_ref().and_then(|p| p.admin_user.clone()).unwrap_or_else(|| "admin".into()),
        admin_password: std::env::var("PHOENIX_PORTAINER_ADMIN_PASSWORD")
            .ok()
            .filter(|p| !p.is_empty())
            .or_else(|| resolve_secret(model.secret_for("portainer_api.admin_password")?))
            .map(Secret::new),
        timeout: Duration::from_secs(60),
        deploy_timeout: Duration::from_secs(args.deploy_timeout),
        agent_wait: Duration::from_secs(args.agent_wait),
        backoff: Backoff::default(),
    };
    PortainerClient::new(settings).map_err(|error| {
        Failure::could_not_run("cannot set up the Portainer client")
            .because(error)
            .hint(format!("Portainer's certificate is verified with {}; give its CA with --portainer-ca FILE", ca.display()))
    })
}

/// A held sync lock, local or on the node over SSH: held while it lives, never read.
#[allow(dead_code)]
enum HeldLock {
    Local(phoenix_drivers::host::lock::SyncLock),
    Node(phoenix_drivers::host::lock::RemoteLock),
}

/// The lock of the target this sync applies to: the lab, the rehearsal folder, or the node
/// (on the node itself with `--ssh`, so runs from other machines are kept out too).
fn sync_lock(args: &SyncOptions, node: &str) -> Result<HeldLock, Failure> {
    use phoenix_drivers::host::lock;
    let node_lock = format!("/run/lock/phoenix/sync-{node}.lock");
    let (path, what) = match (&args.lab, &args.root) {
        (Some(lab), _) => (phoenix_lab::state_dir(lab).join("sync.lock"), format!("sync of lab {lab}")),
        (None, Some(root)) => (root.join(".phoenix-sync.lock"), format!("sync rehearsing in {}", root.display())),
        (None, None) => (PathBuf::from(&node_lock), format!("sync of node {node}")),
    };
    let what = format!("{what}, started {}", context::rfc3339(parse_now(None)? as i64));
    let wait = Duration::from_secs(args.lock_wait);
    let held = match &args.ssh {
        Some(destination) if args.root.is_none() => {
            lock::acquire_remote(&SshRunner::new(destination.clone()), &node_lock, wait, &what).map(HeldLock::Node)
        }
        _ => lock::acquire(&path, wait, &what).map(HeldLock::Local),
    };
    held.map_err(|error| {
        Failure::could_not_run("another sync is applying to the same target")
            .because(error)
            .hint("wait for it to finish (phoenix sync waits --lock-wait seconds), then run sync again: it plans from what is there then")
    })
}

fn confirm(plan: &Plan) -> bool {
    eprint!("Apply these {} step(s)? [y/N] ", plan.steps.len());
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).is_ok() && matches!(answer.trim(), "y" | "Y" | "yes")
}

pub fn run(args: SyncArgs) -> Result<Outcome, Failure> {
    run_what(args.what, args.options)
}

/// `sync WHAT` (and `letsgo`, which is `sync all`).
pub fn run_what(what: What, args: SyncOptions) -> Result<Outcome, Failure> {
    let model = context::valid_model(&args.config.config)?;
    let rendered = phoenix_core::render::render_all(&model);
    if let Some(name) = args.lab.clone() {
        return lab(&args, what, &name, &model, &rendered);
    }
    let (pve, portainer) = (crate::connect::pve_client(&args.pve, &model)?, portainer_client(&args, &model)?);
    let runner = match &args.ssh {
        Some(destination) => NodeRunner::Ssh(SshRunner::new(destination.clone())),
        None => NodeRunner::Local(SystemRunner),
    };
    let mut target = HostTarget::new(
        match &args.root {
            Some(root) => GuestAccess::Folders(root.clone()),
            None => GuestAccess::Pve,
        },
        runner,
    )
    .with_cluster(&model);
    target.host_root = args.root.as_ref().map(|root| root.join("host"));
    target.remote_host = args.ssh.is_some();
    let mut acme = AcmeSettings::for_store(
        phoenix_core::render::traefik::acme_directory(&model).unwrap_or_default(),
        &local_store(&args),
        args.http01_listen,
        std::net::SocketAddr::from(([0, 0, 0, 0], phoenix_core::certificates::RESPONDER_TLS_ALPN01_PORT)),
    );
    if args.root.is_none() && args.ssh.is_none() {
        acme.dns01 = crate::connect::dns01_on_this_node(&model);
    }
    let issuer = AcmeIssuer::new(acme);
    let drivers = Drivers { model: &model, pve: &pve, portainer: &portainer, target: &target, issuer: &issuer };
    sync_with(&args, domains(what), &rendered, &drivers, args.root.is_none()).map(|(outcome, _)| outcome)
}

/// `sync --lab NAME`: the lab's folder, Proxmox VE API and CA; then the lab reloads with what
/// was deployed, so `phoenix assess --live --lab NAME` probes it.
fn lab(args: &SyncOptions, what: What, name: &str, model: &Model, rendered: &phoenix_core::render::Rendered) -> Result<Outcome, Failure> {
    let mut wanted = domains(what);
    if matches!(what, What::Portainer | What::Stacks) {
        return Err(Failure::could_not_run("the lab has no Portainer").hint("sync portainer and stacks against a real one"));
    }
    wanted.retain(|d| !matches!(d, Domain::Portainer | Domain::Stacks));
    match phoenix_lab::read_state(name) {
        Some(state) if state.bare => {}
        Some(_) => {
            return Err(Failure::could_not_run(format!("lab {name} runs the configuration itself"))
                .hint("deploy to a lab started with `phoenix lab up --bare`"))
        }
        None => return Err(Failure::could_not_run(format!("lab {name} is not up")).hint(format!("phoenix lab up --bare --name {name}"))),
    }
    // Certificates are validated through the lab's DNS and firewall as they run, like a node's
    // once deployed: what comes before them is applied and running first.
    let later: BTreeSet<Domain> = [Domain::Certs, Domain::Gateway].into();
    let (first, second): (BTreeSet<Domain>, BTreeSet<Domain>) = wanted.into_iter().partition(|d| !later.contains(d));
    let phases = match (args.dry_run, first.is_empty() || second.is_empty()) {
        (false, false) => vec![first, second],
        _ => vec![first.into_iter().chain(second).collect()],
    };
    let mut outcome = Outcome::Ok;
    for phase in phases {
        outcome = lab_phase(args, phase, name, model, rendered)?;
        if outcome != Outcome::Ok {
            break;
        }
    }
    Ok(outcome)
}

/// One sync of `domains` to lab `name`, then the lab runs what it deployed.
fn lab_phase(
    args: &SyncOptions,
    domains: BTreeSet<Domain>,
    name: &str,
    model: &Model,
    rendered: &phoenix_core::render::Rendered,
) -> Result<Outcome, Failure> {
    use phoenix_lab::deployed;
    let opened = deployed::LabPve::open(name, model).and_then(|pve| Ok((pve, deployed::LabIssuer::open(name)?)));
    let (pve, issuer) = opened.map_err(|error| Failure::could_not_run(format!("cannot reach lab {name}")).because(error.0))?;
    let target = phoenix_lab::target::LabTarget::new(phoenix_lab::spec::deploy_target(name), name, model);
    let drivers = Drivers { model, pve: &pve, portainer: &phoenix_exec::NotUsed, target: &target, issuer: &issuer };
    let (outcome, applied) = sync_with(args, domains, rendered, &drivers, true)?;
    if !applied {
        return Ok(outcome);
    }
    // A failed step is the first thing to tell; a service the lab could not start is printed.
    match (outcome, super::lab::reload_bare(name, model)) {
        (Outcome::Ok, reloaded) => reloaded,
        (outcome, _) => Ok(outcome),
    }
}

/// Observes, plans, prints, asks, applies and summarizes; also whether anything was applied.
fn sync_with<P: PveApi, Q: PortainerApi, T: Target, I: Issuer>(
    args: &SyncOptions,
    domains: BTreeSet<Domain>,
    rendered: &phoenix_core::render::Rendered,
    drivers: &Drivers<'_, P, Q, T, I>,
    run_commands: bool,
) -> Result<(Outcome, bool), Failure> {
    let (model, pve, portainer, target) = (drivers.model, drivers.pve, drivers.portainer, drivers.target);
    let now = parse_now(None)?;
    let runtime = context::runtime()?;
    // Held from observing to the last step: a second run plans from what the first applied.
    let _lock = if args.dry_run { None } else { Some(sync_lock(args, &model.host.node_name)?) };
    let feature_inputs = phoenix_drivers::host::feature_inputs(model)
        .map_err(|error| Failure::could_not_run("cannot read the application scripts").because(error))?;
    let input = ObserveInput {
        model,
        rendered,
        domains: &domains,
        pve,
        portainer,
        target,
        node: &model.host.node_name,
        store_dir: &args.certs,
        host_trust_file: &args.trust_file,
        now,
        boot_delays: !args.no_boot_delay,
        feature_inputs: &feature_inputs,
    };
    let plan = runtime
        .block_on(plan_sync(&input, &resolve_secret))
        .map_err(|error| Failure::could_not_run("cannot observe the system").because(error))?;
    if args.dry_run || plan.is_empty() {
        let text = match args.format {
            SyncFormat::Json => format!("{}\n", serde_json::to_string(&plan).expect("plans serialize")),
            SyncFormat::Human => plan.to_text(),
        };
        context::print(&text)?;
        return Ok((Outcome::Ok, false));
    }
    if matches!(args.format, SyncFormat::Human) {
        eprint!("{}", plan.to_text());
    }
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            return Err(Failure::could_not_run("not applying without confirmation: stdin is not a terminal").hint("pass --yes"));
        }
        if !confirm(&plan) {
            return Err(Failure::wrong("nothing applied"));
        }
    }
    let options = ApplyOptions {
        parallel: args.parallel,
        node_parallel: args.node_parallel,
        run_commands,
        store_dir: args.certs.clone(),
        host_trust_file: args.trust_file.clone(),
        now,
    };
    let json = matches!(args.format, SyncFormat::Json);
    let mut progress = crate::progress::Progress::new(json, std::io::stderr().is_terminal(), plan.steps.len());
    let summary = runtime.block_on(apply(&plan, drivers, &options, &mut |event| progress.event(event)));
    progress.finish();
    let text = match args.format {
        SyncFormat::Json => format!("{}\n", serde_json::json!({ "event": "summary", "summary": summary })),
        SyncFormat::Human => summary.to_text(),
    };
    let outcome = context::report(&text, summary.failed + summary.skipped > 0)?;
    Ok((outcome, true))
}
