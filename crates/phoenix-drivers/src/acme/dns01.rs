//! dns-01 (RFC 8555 section 8.4) through phoenix's own dnsmasq: the challenge's TXT records
//! `_acme-challenge.<name>` go into a dnsmasq configuration file of their own (beside
//! phoenix.conf, written atomically), dnsmasq is checked and restarted, and the order waits
//! until dnsmasq answers every record; afterwards the file is emptied again, also after a
//! failure, and a run that finds records left by an interrupted one empties them first.
//! dnsmasq reads `txt-record` only when it starts: SIGHUP re-reads hosts files, not the
//! configuration (dnsmasq(8), SIGHUP), so the change takes a restart. A check or restart that
//! fails puts the previous file back.

use crate::dns;
use hickory_proto::rr::{DNSClass, RecordType};
use phoenix_exec::DriverError;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Where the records go and how dnsmasq takes them.
#[derive(Debug, Clone)]
pub struct Dns01Settings {
    /// phoenix's file for challenge records, e.g. `/etc/dnsmasq.d/phoenix-acme.conf`.
    pub conf_file: PathBuf,
    /// Checks the configuration with the new file before it is used (`dnsmasq --test`);
    /// empty: no check.
    pub check: Vec<String>,
    /// Makes dnsmasq read its configuration again (`systemctl restart dnsmasq`).
    pub restart: Vec<String>,
    /// The DNS server the ACME server asks (dnsmasq's address), asked until it answers.
    pub resolver: SocketAddr,
    /// How long dnsmasq may take to answer the records after the restart.
    pub wait: Duration,
}

const HEADER: &str = "# phoenix: ACME dns-01 challenge records while an order runs; emptied afterwards. Do not edit.\n";

/// One challenge record: the name it proves (without `*.`) and the key authorization's digest.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TxtRecord {
    pub name: String,
    pub value: String,
}

impl TxtRecord {
    fn owner(&self) -> String {
        format!("_acme-challenge.{}", self.name.trim_end_matches('.'))
    }
}

fn render(records: &[TxtRecord]) -> String {
    let mut text = HEADER.to_string();
    for record in records {
        // The value is base64url (RFC 4648 section 5): nothing dnsmasq would have to quote.
        text.push_str(&format!("txt-record={},\"{}\"\n", record.owner(), record.value));
    }
    text
}

pub struct Dns01 {
    settings: Dns01Settings,
}

impl Dns01 {
    pub fn new(settings: Dns01Settings) -> Dns01 {
        Dns01 { settings }
    }

    /// Writes `records`, has dnsmasq take them and waits until it answers each one.
    pub async fn publish(&self, records: &[TxtRecord]) -> Result<(), DriverError> {
        self.install(&render(records)).await?;
        self.wait_for(records).await
    }

    /// Empties the file when it holds records (left by this order or an interrupted one).
    pub async fn clear(&self) -> Result<(), DriverError> {
        match std::fs::read_to_string(&self.settings.conf_file) {
            Ok(text) if text.lines().any(|l| l.starts_with("txt-record=")) => self.install(HEADER).await,
            _ => Ok(()),
        }
    }

    /// The file with `text`, checked and taken by dnsmasq; the previous file back on failure.
    async fn install(&self, text: &str) -> Result<(), DriverError> {
        let file = &self.settings.conf_file;
        let previous = std::fs::read(file).ok();
        crate::host::write_atomic(file, text.as_bytes(), 0o644)
            .map_err(|e| DriverError::new(format!("cannot write the dns-01 records to {}: {e}", file.display())))?;
        let applied = match run(&self.settings.check, "checking dnsmasq's configuration").await {
            Ok(()) => run(&self.settings.restart, "restarting dnsmasq").await,
            Err(refused) => Err(refused),
        };
        let Err(failure) = applied else { return Ok(()) };
        let restored = match &previous {
            Some(bytes) => crate::host::write_atomic(file, bytes, 0o644).is_ok(),
            None => std::fs::remove_file(file).is_ok(),
        };
        let _ = run(&self.settings.restart, "restarting dnsmasq").await;
        let state = if restored { "the previous file is back" } else { "the previous file could not be put back" };
        Err(DriverError::new(format!("{} ({state}: {})", failure.message, file.display())))
    }

    /// Asks the resolver until it answers every record with its value: bounded in time
    /// (`wait`) and in count.
    async fn wait_for(&self, records: &[TxtRecord]) -> Result<(), DriverError> {
        let started = Instant::now();
        let mut missing: Vec<&TxtRecord> = records.iter().collect();
        for _ in 0..200 {
            let mut still = Vec::new();
            for record in missing {
                if !served(self.settings.resolver, &record.owner()).await.contains(&record.value) {
                    still.push(record);
                }
            }
            missing = still;
            if missing.is_empty() {
                return Ok(());
            }
            if started.elapsed() > self.settings.wait {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let names: Vec<String> = missing.iter().map(|r| r.owner()).collect();
        Err(DriverError::new(format!(
            "dnsmasq at {} did not answer the TXT record(s) {} within {} s after its restart: does it read {}?",
            self.settings.resolver,
            names.join(", "),
            self.settings.wait.as_secs(),
            self.settings.conf_file.display()
        )))
    }
}

/// Runs `argv` (nothing when empty); its output is the error when it fails.
async fn run(argv: &[String], doing: &str) -> Result<(), DriverError> {
    let Some((program, args)) = argv.split_first() else { return Ok(()) };
    let output = tokio::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| DriverError::new(format!("{doing}: cannot run {program}: {e}")))?;
    if output.status.success() {
        return Ok(());
    }
    let said = String::from_utf8_lossy(&output.stderr).trim().to_string();
    Err(DriverError::new(format!("{doing}: `{}` failed ({}): {said}", argv.join(" "), output.status)))
}

/// The TXT values `resolver` serves for `name` now (none when it does not answer in a second).
async fn served(resolver: SocketAddr, name: &str) -> Vec<String> {
    let Some(query) = dns::question(name, RecordType::TXT, DNSClass::IN) else { return Vec::new() };
    dns::ask(resolver, query, Duration::from_secs(1)).await.map(|records| dns::texts(&records)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_one_line_each_under_the_challenge_name() {
        let records = [TxtRecord { name: "internal.example".into(), value: "abc-_123".into() }];
        assert_eq!(render(&records), format!("{HEADER}txt-record=_acme-challenge.internal.example,\"abc-_123\"\n"));
        assert_eq!(render(&[]), HEADER);
    }
}
