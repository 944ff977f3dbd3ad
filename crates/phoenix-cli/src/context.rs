//! What every command needs before its library operation: the one configuration loader (with
//! its refusals: no folder, no model, errors where a valid model is required), the one async
//! runtime builder, the clock (`--now`), and stdout. Must not decide anything a command's
//! library operation decides.

use crate::exit::Failure;
use phoenix_drivers::host::LocalHost;
use phoenix_model::diag::render;
use phoenix_model::model::Model;
use phoenix_model::Checked;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct ConfigArg {
    /// The configuration folder (the original's etc folder).
    #[arg(long, env = "PHOENIX_CONFIG_DIR", default_value = phoenix_model::paths::DEFAULT_CONFIG_DIR)]
    pub config: PathBuf,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Human,
    Json,
}

/// `--allow-outside-tree`, set once by `main` from the command line (never from the
/// configuration, which must not widen what phoenix reads).
pub static ALLOW_OUTSIDE_TREE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Loads and checks `dir`, diagnostics and all; refused only when the folder is missing.
pub fn checked(dir: &Path) -> Result<Checked, Failure> {
    if !dir.is_dir() {
        return Err(Failure::could_not_run(format!("configuration folder {} does not exist", dir.display()))
            .hint("set --config or PHOENIX_CONFIG_DIR to the folder holding phoenix_hypervisor_config.json"));
    }
    let source = LocalHost { allow_outside_tree: ALLOW_OUTSIDE_TREE.load(std::sync::atomic::Ordering::Relaxed) };
    Ok(phoenix_model::check(dir, &source))
}

/// Loads `dir`; refused (with the diagnostics) when no model can be built.
pub fn loaded(dir: &Path) -> Result<Checked, Failure> {
    let checked = checked(dir)?;
    if checked.model.is_none() {
        return Err(Failure::wrong(format!("no model could be built from {}", dir.display())).detail(render::to_human(
            &checked.diagnostics,
            &checked.sources,
            false,
        )));
    }
    Ok(checked)
}

/// The model of a configuration without errors (changing a system from a broken one is refused).
pub fn valid_model(dir: &Path) -> Result<Model, Failure> {
    let checked = loaded(dir)?;
    if checked.has_errors() {
        return Err(Failure::wrong(format!("the configuration has errors ({})", render::summary_line(&checked.diagnostics)))
            .detail(render::to_human(&checked.diagnostics, &checked.sources, false))
            .hint("fix them first (phoenix validate)"));
    }
    Ok(checked.model.expect("loaded() returns a model"))
}

/// The runtime every asynchronous operation runs on: one thread, timers and I/O enabled.
pub fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| Failure::could_not_run("cannot start the async runtime").because(error))
}

/// `--now` as seconds since the epoch (the machine's clock when absent).
pub fn parse_now(now: Option<&str>) -> Result<u64, Failure> {
    let time = match now {
        None => std::time::SystemTime::now(),
        Some(text) => humantime::parse_rfc3339_weak(text).map_err(|error| {
            Failure::could_not_run(format!("--now {text}: not a time")).because(error).hint("write e.g. 2026-11-26T12:00:00Z")
        })?,
    };
    Ok(time.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()))
}

pub fn rfc3339(seconds: i64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds.max(0) as u64);
    humantime::format_rfc3339_seconds(time).to_string()
}

pub fn color_wanted() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Writes `text` to stdout. A closed pipe (`| head`) is not phoenix's failure.
pub fn print(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Failure::could_not_run("cannot write the output").because(error))
        }
        _ => Ok(()),
    }
}

/// Prints `text`, then says whether what it shows is wrong.
pub fn report(text: &str, wrong: bool) -> Result<crate::exit::Outcome, Failure> {
    print(text)?;
    Ok(if wrong { crate::exit::Outcome::Wrong } else { crate::exit::Outcome::Ok })
}
