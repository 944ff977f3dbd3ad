//! How each provisioning change runs in a guest: a `sh -c` script with its values as
//! arguments (never spliced into it) and, for a file, its content on standard input, so a
//! secret never appears on a command line. Pure: the driver hands these to `pct exec`,
//! `qm guest exec` or `lxc-attach`.

use super::plan::Action;
use super::resource::GuardedCommand;

/// A script for `sh -c`, its arguments (`$1`...) and its standard input.
#[derive(Clone, PartialEq, Eq)]
pub struct Shell {
    pub script: String,
    pub args: Vec<String>,
    pub stdin: Option<Vec<u8>>,
}

impl std::fmt::Debug for Shell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let stdin = self.stdin.as_ref().map(|s| format!("<{} bytes>", s.len()));
        f.debug_struct("Shell").field("script", &self.script).field("args", &self.args).field("stdin", &stdin).finish()
    }
}

fn shell(script: &str, args: &[&str]) -> Shell {
    Shell { script: script.to_string(), args: args.iter().map(|a| a.to_string()).collect(), stdin: None }
}

/// apt without questions; a failed `apt-get update` (a guest without a network) leaves the
/// lists it has, and the install then says which package it cannot find.
const APT_INSTALL: &str = r#"export DEBIAN_FRONTEND=noninteractive LC_ALL=C
apt-get -q update >/dev/null 2>&1 || echo "apt-get update failed; installing from the package lists the guest has" >&2
# Waits for another apt (unattended-upgrades at a cloud image's first boot); keeps a changed
# configuration file (the gateway's nginx.conf is phoenix's) instead of asking.
apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=600 \
  -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold -- "$@""#;

/// The new file beside the old one (same filesystem, so the rename is atomic), created with
/// umask 077 and given its owner and mode before it replaces the old (missing folders 0755, so
/// a service's own user can reach its files); then the validation,
/// which on failure puts the old file back (or removes the new one) and fails.
const WRITE_FILE: &str = r#"set -e
p=$1; new="$p.phoenix-new"; old="$p.phoenix-old"
(umask 022; mkdir -p -- "$(dirname -- "$p")")
umask 077
cat > "$new"; chown -- "$2" "$new"; chmod -- "$3" "$new"
had=0; if [ -e "$p" ]; then cp -p -- "$p" "$old"; had=1; fi
mv -f -- "$new" "$p"
if [ -n "$4" ] && ! out=$(sh -c "$4" 2>&1); then
  if [ $had = 1 ]; then mv -f -- "$old" "$p"; else rm -f -- "$p"; fi
  printf '%s\n' "validation failed, previous file kept: $out" >&2; exit 1
fi
rm -f -- "$old""#;

/// The command, its output kept in its log when it has one (the last lines in the error).
const RUN_LOGGED: &str = r#"if [ -z "$2" ]; then exec sh -c "$1"; fi
(umask 022; mkdir -p -- "$(dirname -- "$2")")
# The log may hold what the script printed of its secrets: root's alone.
(umask 077; : > "$2")
sh -c "$1" > "$2" 2>&1 </dev/null; status=$?
if [ $status = 0 ]; then exit 0; fi
tail -n 5 -- "$2" >&2; echo "(the whole output is in $2)" >&2; exit $status"#;

impl Action {
    /// The script that performs the change.
    pub fn shell(&self) -> Shell {
        match self {
            Action::InstallPackages { names } => {
                Shell { script: APT_INSTALL.into(), args: names.clone(), stdin: None }
            }
            Action::CreateGroup { name } => shell(r#"getent group "$1" >/dev/null || groupadd --system -- "$1""#, &[name]),
            Action::CreateUser { name, group, home } => shell(
                r#"getent passwd "$1" >/dev/null || useradd --system --gid "$2" --home-dir "$3" --no-create-home --shell /usr/sbin/nologin -- "$1""#,
                &[name, group, home],
            ),
            Action::WriteFile { file } => {
                let validate = file.file.validate.clone().unwrap_or_default();
                let mut out = shell(WRITE_FILE, &[&file.path, &file.owner, &file.mode, &validate]);
                out.stdin = Some(file.file.content.clone());
                out
            }
            // The content is the download's, which the executor fetches and checks first.
            Action::Download { path, owner, mode, .. } => shell(WRITE_FILE, &[path, owner, mode, ""]),
            Action::RunCommand { command, .. } => run(command),
            Action::EnableService { unit } => shell(r#"systemctl enable --quiet -- "$1""#, &[unit]),
            Action::StartService { unit } => shell(STARTED, &[unit, "start"]),
            Action::RestartService { unit } => shell(STARTED, &[unit, "restart"]),
            Action::ReloadService { unit } => shell(r#"systemctl reload -- "$1""#, &[unit]),
        }
    }
}

/// Starts (or restarts) a unit and fails, with its last journal lines, when it is not active
/// afterwards. systemd counts a `Type=simple` (or `exec`, `idle`) unit as started as soon as its
/// process is forked, so one whose program exits at once (`ExecStart=/bin/false`) can still read
/// `active` right after `systemctl start`: such a unit must stay active, without a restart, for a
/// second before it counts as started. Other types return from `start` once they are up.
const STARTED: &str = r#"if systemctl "$2" -- "$1"; then
  case "$(systemctl show --value --property=Type -- "$1")" in simple|exec|idle) settle=1 ;; *) settle=0 ;; esac
  restarts="$(systemctl show --value --property=NRestarts -- "$1")"
  sleep "$settle"
  if systemctl is-active --quiet -- "$1" && [ "$(systemctl show --value --property=NRestarts -- "$1")" = "$restarts" ]; then exit 0; fi
fi
systemctl status --no-pager --lines=5 -- "$1" >&2 || true; exit 1"#;

/// `check` until it succeeds, once a second, at most `tries` times: the last try's status is the
/// script's (a service's readiness after it was started).
pub fn retried(check: &str, tries: u32) -> String {
    format!("for i in $(seq {tries}); do {check} && exit 0; sleep 1; done; {check}")
}

/// `text` as one word for `sh`: in single quotes, each `'` written as `'\''`.
pub fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

fn run(command: &GuardedCommand) -> Shell {
    shell(RUN_LOGGED, &[&command.run, command.log.as_deref().unwrap_or_default()])
}

/// A health check's one try.
pub fn health_check(command: &str) -> Shell {
    shell(r#"exec sh -c "$1" </dev/null"#, &[command])
}
