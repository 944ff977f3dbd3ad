//! `phoenix assess`: every flow hop by hop, statically (rendered or deployed files), one
//! connection traced rule by rule, or live in the lab or on a node.

use crate::context::{self, ConfigArg, Format};
use crate::exit::{Failure, Outcome};
use phoenix_core::analyze::firewall::{self, FirewallState};
use phoenix_core::analyze::{assess, report};
use phoenix_core::pki::CertStore;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, clap::ValueEnum)]
enum AssessFormat {
    Md,
    Json,
    Human,
}

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: ConfigArg,
    /// A copy of /etc/pve to judge instead of the rendered files.
    #[arg(long, value_name = "DIR")]
    deployed: Option<PathBuf>,
    /// Certificate files to inspect: `<name>.crt` and `<name>.key` per manifest entry, and
    /// `root_ca.crt`, the configured root. Without it certificates are judged from the manifest.
    #[arg(long, value_name = "DIR")]
    certs: Option<PathBuf>,
    /// The time to judge validity at (RFC 3339, e.g. 2026-11-26T12:00:00Z); default now.
    #[arg(long, value_name = "TIME")]
    now: Option<String>,
    #[arg(long, value_enum, default_value_t = AssessFormat::Md)]
    format: AssessFormat,
    /// Trace one connection rule by rule instead: SRC and DST are `host`, a guest id or an
    /// IP address; PORT is `443`, `443/tcp`, `53/udp` or `icmp`. Exit 1 when it is blocked.
    #[arg(long, num_args = 3, value_names = ["SRC", "DST", "PORT"])]
    trace: Option<Vec<String>>,
    /// Also probe every hop for real and show the static and the live verdicts side by
    /// side; every disagreement is drift (exit 1). In the lab (`phoenix lab up`) by default;
    /// with --node on this Proxmox node, from the node and inside each running container
    /// (hops from VMs and from outside are listed as not probed).
    #[arg(long, conflicts_with_all = ["trace", "deployed"])]
    live: bool,
    /// The lab to probe with --live.
    #[arg(long, default_value = "lab", requires = "live")]
    lab: String,
    /// Probe this Proxmox node instead of the lab; --certs is the certificate store
    /// (default /var/lib/phoenix/certs).
    #[arg(long, requires = "live")]
    node: bool,
    /// (tests) Enter the named namespaces `<PREFIX>host` and `<PREFIX>guest-<vmid>` instead
    /// of looking containers up with lxc-info.
    #[arg(long, hide = true, requires = "node")]
    netns_prefix: Option<String>,
}

pub fn run(args: Args) -> Result<Outcome, Failure> {
    let live_format = if matches!(args.format, AssessFormat::Json) { Format::Json } else { Format::Human };
    if args.live && args.node {
        let store = args.certs.unwrap_or_else(|| PathBuf::from(phoenix_model::paths::DEFAULT_STORE));
        return super::lab::check_node(&args.config.config, &store, args.netns_prefix.as_deref(), live_format);
    }
    if args.live {
        return super::lab::check(&args.config.config, &args.lab, live_format);
    }
    let checked = context::loaded(&args.config.config)?;
    let model = checked.model.as_ref().expect("loaded() returns a model");
    if checked.has_errors() {
        eprintln!(
            "phoenix: the configuration has errors ({}); the assessment judges what can be read",
            phoenix_model::diag::render::summary_line(&checked.diagnostics)
        );
    }
    let now = context::parse_now(args.now.as_deref())?;
    let mut state = match &args.deployed {
        None => FirewallState::from_rendered(&phoenix_core::render::render_firewall(model), model),
        Some(tree) => deployed_state(tree, model)?,
    };
    // A cluster.fw `enable: <time stamp>` is judged at the same time as the certificates.
    state.now = i64::try_from(now).ok();
    if let Some([src, dst, port]) = args.trace.as_deref() {
        let traced = firewall::trace_connection(&state, model, src, dst, port).map_err(|errors| {
            Failure::could_not_run(errors.join("; "))
                .hint("SRC and DST are `host`, a guest id or an IP address; PORT is `443`, `443/tcp`, `53/udp`, `icmp` or `icmp/<type>`")
        })?;
        return context::report(&traced.text, !traced.passes);
    }
    let mut options = assess::Options { certs: None, now };
    if let Some(folder) = &args.certs {
        let files = phoenix_drivers::host::read_tree(folder)
            .map_err(|error| Failure::could_not_run(format!("cannot read {}", folder.display())).because(error))?;
        options.certs = Some(CertStore { files });
    }
    let assessment = phoenix_core::analyze::assessment(model, &state, &options);
    let flows = &assessment.flows;
    let text = match args.format {
        AssessFormat::Md => report::to_markdown(model, flows, &state),
        AssessFormat::Json => serde_json::to_string_pretty(&report::to_json(model, flows, &state)).expect("the report serialises") + "\n",
        AssessFormat::Human => report::to_human(model, flows, &state),
    };
    context::report(&text, assessment.failing)
}

/// The firewall a copy of /etc/pve holds, read as pve-firewall reads it: a line it skips is
/// reported with the verdicts, never a reason to judge nothing.
fn deployed_state(tree: &Path, model: &phoenix_model::Model) -> Result<FirewallState, Failure> {
    let files = phoenix_drivers::host::read_tree(tree)
        .map_err(|error| Failure::could_not_run(format!("cannot read {}", tree.display())).because(error))?;
    let origin = format!("the deployed files in {}", tree.display());
    Ok(FirewallState::from_pve_tree(&files, model, &origin))
}
