//! The systemd units that keep certificates renewed without phoenix running all the time: a
//! oneshot service running `phoenix certs renew` and a timer starting it every 15 minutes.
//! Step-CA's certificates live 24 hours and are renewed at two thirds, so a check every 15
//! minutes leaves about 8 hours to recover from a failure. Pure text.

use crate::deploy::{FileWrite, Place};

pub const SERVICE: &str = "phoenix-certs-renew.service";
pub const TIMER: &str = "phoenix-certs-renew.timer";

/// Quotes an ExecStart argument when systemd would split it (systemd.service(5), "Command lines").
fn argument(text: &str) -> String {
    if text.chars().any(|c| c.is_whitespace() || c == '"' || c == '\\' || c == '\'') {
        format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        text.to_string()
    }
}

/// The two unit files for `dir` (normally /etc/systemd/system).
pub fn units(dir: &str, phoenix: &str, config_dir: &str, store_dir: &str) -> Vec<FileWrite> {
    let exec = ["certs", "renew", "--config", config_dir, "--certs", store_dir].iter().map(|a| argument(a)).collect::<Vec<_>>().join(" ");
    let service = format!(
        "# Written by phoenix (`phoenix certs timer`).\n[Unit]\nDescription=phoenix: renew the certificates that are due\nWants=network-online.target\nAfter=network-online.target\n\n[Service]\nType=oneshot\nExecStart={} {exec}\n",
        argument(phoenix)
    );
    let timer = format!(
        "# Written by phoenix (`phoenix certs timer`).\n[Unit]\nDescription=phoenix: check the certificates every 15 minutes\n\n[Timer]\nOnBootSec=2min\nOnUnitActiveSec=15min\nRandomizedDelaySec=60\nPersistent=true\nUnit={SERVICE}\n\n[Install]\nWantedBy=timers.target\n"
    );
    let dir = dir.trim_end_matches('/');
    [(SERVICE, service), (TIMER, timer)]
        .into_iter()
        .map(|(name, text)| FileWrite { place: Place::host(format!("{dir}/{name}")), content: text.into_bytes(), owner: None, mode: 0o644 })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_with_spaces_are_quoted() {
        let files = units("/etc/systemd/system/", "/usr/local/bin/phoenix", "/srv/my config", "/var/lib/phoenix/certs");
        assert_eq!(files[0].place.path, "/etc/systemd/system/phoenix-certs-renew.service");
        let service = String::from_utf8(files[0].content.clone()).unwrap();
        assert!(
            service.contains("ExecStart=/usr/local/bin/phoenix certs renew --config \"/srv/my config\" --certs /var/lib/phoenix/certs\n"),
            "{service}"
        );
        let timer = String::from_utf8(files[1].content.clone()).unwrap();
        assert!(timer.contains("OnUnitActiveSec=15min") && timer.contains("WantedBy=timers.target"));
    }
}
