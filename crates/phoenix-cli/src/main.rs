//! The `phoenix` command: parses arguments, calls one library operation, prints its result
//! and maps it to an exit code. No logic of its own lives here.

mod certs;
mod lab;
mod progress;
mod sync;

use clap::{Parser, Subcommand, ValueEnum};
use phoenix_drivers::host::LocalHost;
use phoenix_model::diag::{self, render};
use phoenix_model::schema::FileKind;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// phoenix: run a Proxmox VE homelab from one declarative description.
#[derive(Parser)]
#[command(name = "phoenix", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
pub(crate) struct ConfigArg {
    /// The configuration folder (the original's etc folder).
    #[arg(long, env = "PHOENIX_CONFIG_DIR", default_value = phoenix_model::paths::DEFAULT_CONFIG_DIR)]
    pub(crate) config: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// Check the configuration and report every problem at once.
    Validate {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// Render every file phoenix manages (pure: from the configuration alone).
    ///
    /// Without --out or --diff, lists the files (target, path, owner, mode, validate and reload
    /// commands) and the NIC settings. A configuration with errors is refused unless --allow-errors.
    Render {
        #[command(flatten)]
        config: ConfigArg,
        /// Write the files into DIR, laid out as on the real system (host/..., guest-<id>/...).
        #[arg(long, value_name = "DIR", conflicts_with = "diff")]
        out: Option<PathBuf>,
        /// Compare with the files in DIR (same layout); exit 3 when they differ.
        #[arg(long, value_name = "DIR")]
        diff: Option<PathBuf>,
        /// Render even when the configuration has errors (what can be rendered is).
        #[arg(long)]
        allow_errors: bool,
        #[arg(long, value_enum, default_value_t = GraphFormat::Text)]
        format: GraphFormat,
    },
    /// Prove, hop by hop, that every flow the configuration implies passes its firewalls,
    /// resolves to the guest that serves it, and presents the right certificates.
    ///
    /// Judges the files phoenix would render, or with --deployed a copy of /etc/pve (firewall
    /// files and the guests' .conf files for their NIC flags). Exit 1 when any hop fails.
    Assess {
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
    },
    /// Bring the system to the described state: observe, plan, confirm, apply.
    ///
    /// Order: trust the CA; DNS; firewall (through the Proxmox VE API); certificates; the
    /// gateway's files; Portainer environments; stacks. Independent steps run in parallel; a
    /// failed step skips only what depends on it. Exit 1 when a step failed or was skipped,
    /// 2 when the system could not be observed.
    Sync(sync::SyncArgs),
    /// The lab: the described topology in network namespaces on this machine, for rehearsals
    /// and for comparing the static verdicts with real traffic.
    #[command(subcommand)]
    Lab(lab::LabCommand),
    /// Certificates of the manifest: status, renewal over ACME, the CA root, the renewal timer.
    #[command(subcommand)]
    Certs(certs::CertsCommand),
    /// Explain a diagnostic code (e.g. PHX-FW-009); without a code, list them all.
    Explain { code: Option<String> },
    /// Print the guest graph: creation order (prerequisites first), cycles, boot order.
    Graph {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long, value_enum, default_value_t = GraphFormat::Text)]
        format: GraphFormat,
    },
    /// Print phoenix's JSON Schema of a configuration file, or write all of them into a folder.
    Schema {
        /// File name, e.g. phoenix_lxc_configs.json.
        file: Option<String>,
        /// Write every schema into this folder instead.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum Format {
    Human,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum AssessFormat {
    Md,
    Json,
    Human,
}

#[derive(Clone, Copy, ValueEnum)]
enum GraphFormat {
    Text,
    Json,
}

/// phoenix's exit statuses (see README).
#[derive(Clone, Copy)]
pub(crate) enum Status {
    Ok = 0,
    /// Something the user can fix: an invalid configuration, a failed assessment.
    Failed = 1,
    /// phoenix could not do its job: bad arguments, unreadable folder, a bug.
    CouldNotRun = 2,
    /// `render --diff`: the deployed files differ from the rendered ones.
    Differs = 3,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return ExitCode::from(if error.use_stderr() { Status::CouldNotRun as u8 } else { Status::Ok as u8 });
        }
    };
    let status = match cli.command {
        Command::Validate { config, format } => validate(&config.config, format),
        Command::Explain { code } => explain(code.as_deref()),
        Command::Certs(command) => certs::run(command),
        Command::Sync(args) => sync::run(args),
        Command::Lab(command) => lab::run(command),
        Command::Assess { config, live: true, node: true, certs, netns_prefix, format, .. } => {
            let store = certs.unwrap_or_else(|| PathBuf::from(phoenix_model::paths::DEFAULT_STORE));
            lab::check_node(
                &config.config,
                &store,
                netns_prefix.as_deref(),
                if matches!(format, AssessFormat::Json) { Format::Json } else { Format::Human },
            )
        }
        Command::Assess { config, live: true, lab, format, .. } => {
            lab::check(&config.config, &lab, if matches!(format, AssessFormat::Json) { Format::Json } else { Format::Human })
        }
        Command::Assess { config, deployed, certs, now, format, trace, .. } => {
            assess(&config.config, deployed.as_deref(), certs.as_deref(), now.as_deref(), format, trace.as_deref())
        }
        Command::Render { config, out, diff, allow_errors, format } => {
            render(&config.config, out.as_deref(), diff.as_deref(), allow_errors, format)
        }
        Command::Graph { config, format } => graph(&config.config, format),
        Command::Schema { file, out } => schema(file.as_deref(), out.as_deref()),
    };
    ExitCode::from(status as u8)
}

fn color_wanted() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

pub(crate) fn print(text: &str) -> Status {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Ok(()) => Status::Ok,
        // A closed pipe (e.g. `| head`) is not phoenix's failure.
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Status::Ok,
        Err(error) => {
            eprintln!("phoenix: cannot write output: {error}");
            Status::CouldNotRun
        }
    }
}

fn config_folder_ok(dir: &Path) -> bool {
    if dir.is_dir() {
        return true;
    }
    eprintln!("phoenix: configuration folder {} does not exist (set --config or PHOENIX_CONFIG_DIR)", dir.display());
    false
}

/// Loads and checks `dir`. When no model can be built, prints why and returns the exit status.
pub(crate) fn loaded(dir: &Path) -> Result<phoenix_model::Checked, Status> {
    if !config_folder_ok(dir) {
        return Err(Status::CouldNotRun);
    }
    let checked = phoenix_model::check(dir, &LocalHost);
    if checked.model.is_none() {
        eprint!("{}", render::to_human(&checked.diagnostics, &checked.sources, false));
        return Err(Status::Failed);
    }
    Ok(checked)
}

fn validate(dir: &Path, format: Format) -> Status {
    if !config_folder_ok(dir) {
        return Status::CouldNotRun;
    }
    let checked = phoenix_model::check(dir, &LocalHost);
    let text = match format {
        Format::Human => render::to_human(&checked.diagnostics, &checked.sources, color_wanted()),
        Format::Json => format!("{:#}\n", render::to_json(&checked.diagnostics, &checked.sources)),
    };
    match print(&text) {
        Status::Ok if checked.has_errors() => Status::Failed,
        status => status,
    }
}

fn render(dir: &Path, out: Option<&Path>, diff: Option<&Path>, allow_errors: bool, format: GraphFormat) -> Status {
    let checked = match loaded(dir) {
        Ok(checked) => checked,
        Err(status) => return status,
    };
    if checked.has_errors() && !allow_errors {
        eprint!("{}", render::to_human(&checked.diagnostics, &checked.sources, false));
        eprintln!("phoenix: not rendering a configuration with errors (see above; --allow-errors renders anyway)");
        return Status::Failed;
    }
    let model = checked.model.as_ref().expect("loaded() returns a model");
    let rendered = phoenix_core::render::render_all(model);
    if !rendered.notes.is_empty() {
        eprint!("{}", render::to_human(&rendered.notes, &checked.sources, false));
    }
    if let Some(out) = out {
        for file in &rendered.files {
            let path = out.join(file.tree_path());
            if let Err(error) = phoenix_drivers::host::write_atomic(&path, file.content.as_bytes(), file.mode) {
                eprintln!("phoenix: cannot write {}: {error}", path.display());
                return Status::CouldNotRun;
            }
        }
        eprintln!("phoenix: wrote {} files under {}", rendered.files.len(), out.display());
        return Status::Ok;
    }
    if let Some(tree) = diff {
        let mut deployed = std::collections::BTreeMap::new();
        for file in &rendered.files {
            match phoenix_drivers::host::read_optional(&tree.join(file.tree_path())) {
                Ok(content) => deployed.insert(file.tree_path(), content),
                Err(error) => {
                    eprintln!("phoenix: cannot read {}: {error}", tree.join(file.tree_path()).display());
                    return Status::CouldNotRun;
                }
            };
        }
        let diffs = phoenix_core::render::diff::diff(&rendered.files, &deployed);
        let text: String = diffs.iter().map(|d| d.unified.clone()).collect();
        return match print(&text) {
            Status::Ok if !diffs.is_empty() => Status::Differs,
            status => status,
        };
    }
    let text = match format {
        GraphFormat::Text => phoenix_core::render::listing(&rendered),
        GraphFormat::Json => format!("{:#}\n", phoenix_core::render::to_json(&rendered)),
    };
    print(&text)
}

fn assess(
    dir: &Path,
    deployed: Option<&Path>,
    certs: Option<&Path>,
    now: Option<&str>,
    format: AssessFormat,
    trace: Option<&[String]>,
) -> Status {
    use phoenix_core::analyze::{assess, firewall::FirewallState, report};
    let checked = match loaded(dir) {
        Ok(checked) => checked,
        Err(status) => return status,
    };
    let model = checked.model.as_ref().expect("loaded() returns a model");
    if checked.has_errors() {
        eprintln!(
            "phoenix: the configuration has errors ({}); the assessment judges what can be read",
            render::summary_line(&checked.diagnostics)
        );
    }
    let state = match deployed {
        None => FirewallState::from_rendered(&phoenix_core::render::render_firewall(model), model),
        Some(tree) => {
            let files = match phoenix_drivers::host::read_tree(tree) {
                Ok(files) => files,
                Err(error) => {
                    eprintln!("phoenix: cannot read {}: {error}", tree.display());
                    return Status::CouldNotRun;
                }
            };
            let origin = format!("the deployed files in {}", tree.display());
            match FirewallState::from_pve_tree(&files, model, &origin) {
                Ok(state) => state,
                Err(errors) => {
                    for error in errors {
                        for e in error.errors {
                            eprintln!("{}/{}:{}: {}", tree.display(), error.path.trim_start_matches("/etc/pve/"), e.line, e.message);
                        }
                    }
                    return Status::Failed;
                }
            }
        }
    };
    if let Some([src, dst, port]) = trace {
        use phoenix_core::analyze::firewall;
        let parsed = (firewall::parse_endpoint(model, src), firewall::parse_endpoint(model, dst), firewall::parse_packet(port));
        let (src, dst, packet) = match parsed {
            (Ok(s), Ok(d), Ok(p)) => (s, d, p),
            (s, d, p) => {
                for error in [s.err(), d.err(), p.err()].into_iter().flatten() {
                    eprintln!("phoenix: {error}");
                }
                return Status::CouldNotRun;
            }
        };
        let (verdict, lines) = firewall::trace(&state, model, src, dst, packet);
        let mut text = format!("Judged: {}\n", state.origin);
        for line in lines {
            text.push_str(&line);
            text.push('\n');
        }
        let outcome = if !verdict.passes {
            "BLOCKED"
        } else if verdict.unprotected {
            "PASSES, UNPROTECTED"
        } else {
            "PASSES"
        };
        text.push_str(&format!("{outcome}\n"));
        return match print(&text) {
            Status::Ok if !verdict.passes => Status::Failed,
            status => status,
        };
    }
    let now = match parse_now(now) {
        Ok(now) => now,
        Err(status) => return status,
    };
    let mut options = assess::Options { certs: None, now };
    if let Some(folder) = certs {
        match phoenix_drivers::host::read_tree(folder) {
            Ok(files) => options.certs = Some(phoenix_core::analyze::certs::CertStore { files }),
            Err(error) => {
                eprintln!("phoenix: cannot read {}: {error}", folder.display());
                return Status::CouldNotRun;
            }
        }
    }
    let edge = phoenix_core::edge::edge(model);
    let flows = assess::assess(model, &edge, &state, &options);
    let text = match format {
        AssessFormat::Md => report::to_markdown(model, &flows, &state.origin),
        AssessFormat::Json => {
            serde_json::to_string_pretty(&report::to_json(model, &flows, &state.origin)).expect("the report serialises") + "\n"
        }
        AssessFormat::Human => report::to_human(model, &flows, &state.origin),
    };
    let failing = flows.iter().any(|f| f.status == phoenix_core::analyze::verdict::Status::Fail)
        || report::dns_findings(model).iter().any(|(s, _)| *s == phoenix_core::analyze::verdict::Status::Fail);
    match print(&text) {
        Status::Ok if failing => Status::Failed,
        status => status,
    }
}

/// `--now` as seconds since the epoch (the machine's clock when absent).
pub(crate) fn parse_now(now: Option<&str>) -> Result<u64, Status> {
    let time = match now {
        None => std::time::SystemTime::now(),
        Some(text) => humantime::parse_rfc3339_weak(text).map_err(|error| {
            eprintln!("phoenix: --now {text}: {error} (write e.g. 2026-11-26T12:00:00Z)");
            Status::CouldNotRun
        })?,
    };
    Ok(time.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()))
}

pub(crate) fn rfc3339(seconds: i64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds.max(0) as u64);
    humantime::format_rfc3339_seconds(time).to_string()
}

fn explain(code: Option<&str>) -> Status {
    match code {
        None => {
            let list: String = diag::CODES.iter().map(|c| format!("{:<16} {}\n", c.code, c.title)).collect();
            print(&list)
        }
        Some(code) => match diag::explain(code) {
            Some(text) => print(&text),
            None => {
                eprintln!("phoenix: unknown code {code}; `phoenix explain` lists them");
                Status::Failed
            }
        },
    }
}

fn graph(dir: &Path, format: GraphFormat) -> Status {
    let checked = match loaded(dir) {
        Ok(checked) => checked,
        Err(status) => return status,
    };
    let model = checked.model.as_ref().expect("loaded() returns a model");
    let graph = phoenix_model::graph::build(model);
    let text = match format {
        GraphFormat::Text => phoenix_model::graph::to_text(&graph, model),
        GraphFormat::Json => format!("{:#}\n", phoenix_model::graph::to_json(&graph, model)),
    };
    match print(&text) {
        Status::Ok if !graph.cycles.is_empty() => Status::Failed,
        status => status,
    }
}

fn schema(file: Option<&str>, out: Option<&Path>) -> Status {
    if let Some(dir) = out {
        for kind in FileKind::ALL {
            let text = format!("{:#}\n", phoenix_model::schema::schema_for(kind));
            if let Err(error) = std::fs::create_dir_all(dir).and_then(|_| std::fs::write(dir.join(kind.schema_file_name()), text)) {
                eprintln!("phoenix: cannot write schemas to {}: {error}", dir.display());
                return Status::CouldNotRun;
            }
        }
        return Status::Ok;
    }
    let name = file.unwrap_or("phoenix_hypervisor_config.json");
    match FileKind::ALL.iter().find(|k| k.file_name() == name) {
        Some(kind) => print(&format!("{:#}\n", phoenix_model::schema::schema_for(*kind))),
        None => {
            let names: Vec<&str> = FileKind::ALL.iter().map(|k| k.file_name()).collect();
            eprintln!("phoenix: no schema for {name}; known files: {}", names.join(", "));
            Status::CouldNotRun
        }
    }
}
