//! [`phoenix_exec::Target`] for the machine phoenix runs on. Host paths are local files. Guest
//! paths go through `pct` (containers) or `qm guest exec` (VMs, through the QEMU guest agent)
//! on a Proxmox node, through `lxc-attach` to real containers (the lab), or, for a rehearsal and the tests, to a folder per guest
//! (`<root>/guest-<vmid>/<path>`, whose own etc/passwd and etc/group name owners when present). Writes are atomic in every case: a temporary file beside the
//! target, then a rename inside the same filesystem.

use super::owners::{resolve_owner, Owner};
use super::runner::{CommandOutput, CommandRunner};
use phoenix_core::deploy::{FileMeta, FileWrite, Place, PostAction};
use phoenix_core::provision::shell::Shell;
use phoenix_exec::traits::ShellOutput;
use phoenix_exec::{DriverError, Target};
use phoenix_model::model::{GuestId, GuestKind};
use std::path::{Path, PathBuf};

/// How guests' files are reached.
#[derive(Debug, Clone)]
pub enum GuestAccess {
    /// `pct push`/`pct exec` and `qm guest exec`, run on this Proxmox node.
    Pve,
    /// Each guest is the folder `<root>/guest-<vmid>` (rehearsals, tests), the layout of
    /// `phoenix render --out`.
    Folders(PathBuf),
    /// Each guest is a real container of Debian's `lxc`, named by its vmid under this lxc path
    /// (`lxc-attach -P <path> -n <vmid>`): the lab's guests and the provisioning tests. `pct`
    /// drives the same runtime on a Proxmox node.
    Lxc(PathBuf),
}

#[derive(Debug, Clone)]
pub struct HostTarget<R: CommandRunner> {
    pub guests: GuestAccess,
    /// When set, host paths live under this folder instead of `/` (a rehearsal).
    pub host_root: Option<PathBuf>,
    /// The Proxmox node is not this machine: its files are reached through the runner (an
    /// [`SshRunner`](super::SshRunner)) like a guest's.
    pub remote_host: bool,
    /// A guest on another node of the cluster: that node's ssh destination (`root@address`).
    /// Its `pct`/`qm` commands run there, from the node phoenix reaches: a cluster's nodes let
    /// each other's root in (`pvecm` keeps their keys in /etc/pve/priv/authorized_keys).
    pub guest_nodes: std::collections::BTreeMap<GuestId, String>,
    pub runner: R,
}

impl<R: CommandRunner> HostTarget<R> {
    pub fn new(guests: GuestAccess, runner: R) -> HostTarget<R> {
        HostTarget { guests, host_root: None, remote_host: false, guest_nodes: Default::default(), runner }
    }

    /// Routes the guests declared on another node than the first through that node (see
    /// `guest_nodes`); the first node's guests stay local.
    pub fn with_cluster(mut self, model: &phoenix_model::model::Model) -> HostTarget<R> {
        self.guest_nodes = cluster_routes(model);
        self
    }
}

/// The ssh destination of each guest's node, for the guests declared on another node than the
/// first that has a management address.
pub fn cluster_routes(model: &phoenix_model::model::Model) -> std::collections::BTreeMap<GuestId, String> {
    let first = model.host.node_name.as_str();
    model
        .guests
        .values()
        .filter(|g| g.node.value != first)
        .filter_map(|g| Some((g.id, format!("root@{}", model.host.node(&g.node.value)?.address.as_ref()?.value))))
        .collect()
}

/// A guest's folder in a rehearsal.
pub fn guest_folder(root: &Path, id: GuestId) -> PathBuf {
    root.join(format!("guest-{id}"))
}

fn error(place: &Place, what: impl std::fmt::Display) -> DriverError {
    DriverError::new(format!("{place}: {what}"))
}

/// A temporary name beside `path`, in the same folder so the rename is atomic.
fn staging(path: &str) -> String {
    format!("{path}.phoenix-new")
}

fn argv(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|p| p.to_string()).collect()
}

impl<R: CommandRunner> HostTarget<R> {
    /// The local path of a place, when it is a local file (host paths, and guests as folders).
    /// In a rehearsal the path stays below its folder whatever it says (no `..`, no symlink
    /// followed: [`under_root`](crate::host::under_root)).
    fn local_path(&self, place: &Place) -> Result<Option<PathBuf>, DriverError> {
        let rooted = |root: &Path| crate::host::under_root(root, &place.path).map(Some).map_err(|e| error(place, e));
        match (&place.guest, &self.guests) {
            (None, _) if self.remote_host => Ok(None),
            (None, _) => match &self.host_root {
                Some(root) => rooted(root),
                None => Ok(Some(PathBuf::from(&place.path))),
            },
            (Some((id, _)), GuestAccess::Folders(root)) => rooted(&guest_folder(root, *id)),
            (Some(_), GuestAccess::Pve | GuestAccess::Lxc(_)) => Ok(None),
        }
    }

    /// The passwd and group files of the system that holds `place` (a guest folder's own when
    /// it has them).
    fn account_files(&self, place: &Place) -> (String, String) {
        let system_root = match (&place.guest, &self.guests) {
            (Some((id, _)), GuestAccess::Folders(root)) if guest_folder(root, *id).join("etc/passwd").is_file() => guest_folder(root, *id),
            _ => PathBuf::from("/"),
        };
        let read = |file: &str| std::fs::read_to_string(system_root.join(file)).unwrap_or_default();
        (read("etc/passwd"), read("etc/group"))
    }

    /// A file's mode and `user:group`, by metadata here or `stat` where the file lives.
    pub fn stat_now(&self, place: &Place) -> Result<Option<FileMeta>, DriverError> {
        use std::os::unix::fs::MetadataExt;
        if let Some(path) = self.local_path(place)? {
            let metadata = match std::fs::symlink_metadata(&path) {
                Ok(metadata) => metadata,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(error(place, e)),
            };
            let (passwd, group) = self.account_files(place);
            let user = super::owners::name_of(metadata.uid(), &passwd).unwrap_or_else(|| metadata.uid().to_string());
            let group = super::owners::name_of(metadata.gid(), &group).unwrap_or_else(|| metadata.gid().to_string());
            return Ok(Some(FileMeta { mode: metadata.mode() & 0o7777, owner: format!("{user}:{group}") }));
        }
        let output = self.shell_at(place, r#"test -e "$1" || exit 3; stat -c '%a %U:%G' -- "$1""#, &[&place.path], None)?;
        match output.code {
            Some(0) => {
                let text = String::from_utf8_lossy(&output.stdout);
                let (mode, owner) =
                    text.trim().split_once(' ').ok_or_else(|| error(place, format!("unexpected stat output `{}`", text.trim())))?;
                let mode = u32::from_str_radix(mode, 8).map_err(|_| error(place, format!("unexpected mode `{mode}`")))?;
                Ok(Some(FileMeta { mode, owner: owner.to_string() }))
            }
            Some(3) => Ok(None),
            _ => Err(error(place, output.summary())),
        }
    }

    /// The ids of `owner` on the system that holds `place`.
    fn local_owner(&self, place: &Place, owner: &str) -> Result<Owner, DriverError> {
        let (passwd, group) = self.account_files(place);
        resolve_owner(owner, &passwd, &group).map_err(|e| error(place, format!("owner {owner}: {e}")))
    }

    /// Runs `script` with `args` by `sh -c` where `place` lives (the node, or a guest); `stdin`
    /// is passed through.
    pub fn shell_at(&self, place: &Place, script: &str, args: &[&str], stdin: Option<&[u8]>) -> Result<CommandOutput, DriverError> {
        match place.guest {
            Some((id, kind)) => self.guest_shell(id, kind, script, args, stdin),
            None => {
                let mut command = argv(&["sh", "-c", script, "sh"]);
                command.extend(args.iter().map(|a| a.to_string()));
                self.runner.run(&command, stdin)
            }
        }
    }

    /// Runs `script` with `args` by `sh -c` inside the guest; `stdin` is passed through.
    fn guest_shell(
        &self,
        id: GuestId,
        kind: GuestKind,
        script: &str,
        args: &[&str],
        stdin: Option<&[u8]>,
    ) -> Result<CommandOutput, DriverError> {
        let id = id.to_string();
        let mut command = match (kind, &self.guests) {
            (_, GuestAccess::Lxc(path)) => {
                // A clean environment, as `pct exec` gives: the caller's variables stay here.
                let clean = ["--clear-env", "--set-var", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"];
                let rest: Vec<&str> = clean.into_iter().chain(["--", "sh", "-c", script, "sh"]).collect();
                let vmid = id.parse().map_err(|_| DriverError::new(format!("guest {id}: not a vmid")))?;
                super::lxc::LxcContainer::new(path, vmid).argv("lxc-attach", &rest)
            }
            (GuestKind::Lxc, _) => argv(&["pct", "exec", &id, "--", "sh", "-c", script, "sh"]),
            (GuestKind::Vm, _) => {
                // The agent's exec takes at most 64 KiB of input (`input-data`, maxLength 65536,
                // in PVE 9.1.3's /nodes/{node}/qemu/{vmid}/agent/exec schema).
                if stdin.is_some_and(|s| s.len() > VM_INPUT_LIMIT) {
                    let size = stdin.map_or(0, <[u8]>::len);
                    return Err(DriverError::new(format!("guest {id}: {size} bytes cannot reach a VM through its guest agent (at most {VM_INPUT_LIMIT})"))
                        .hint("install it from inside the VM (a package, or an application script that fetches it), or run this guest as a container"));
                }
                // `--timeout 0`: wait for the command however long it takes (qm's default, 30 s,
                // returns while apt still runs).
                let mut vm = argv(&["qm", "guest", "exec", &id, "--timeout", "0"]);
                if stdin.is_some() {
                    vm.extend(argv(&["--pass-stdin", "1"]));
                }
                vm.extend(argv(&["--", "sh", "-c", script, "sh"]));
                vm
            }
        };
        command.extend(args.iter().map(|a| a.to_string()));
        if let (GuestAccess::Pve, Some(node)) = (&self.guests, self.guest_nodes.get(&id.parse::<GuestId>().unwrap_or_default())) {
            command = super::SshRunner::new(node.clone()).command_line(&command);
        }
        let output = self.runner.run(&command, stdin)?;
        match (kind, &self.guests) {
            (GuestKind::Vm, GuestAccess::Pve) => qm_exec_result(&output),
            _ => Ok(output),
        }
    }

    fn guest_checked(&self, place: &Place, script: &str, args: &[&str], stdin: Option<&[u8]>) -> Result<CommandOutput, DriverError> {
        let output = self.shell_at(place, script, args, stdin)?;
        if output.success() {
            Ok(output)
        } else {
            Err(error(place, output.summary()))
        }
    }
}

/// What a VM's guest agent takes on standard input at most.
const VM_INPUT_LIMIT: usize = 65536;

/// `qm guest exec` prints the agent's JSON: `exited`, `exitcode`, `out-data`, `err-data`.
fn qm_exec_result(output: &CommandOutput) -> Result<CommandOutput, DriverError> {
    if !output.success() {
        return Ok(output.clone());
    }
    let value: serde_json::Value =
        serde_json::from_slice(&output.stdout).map_err(|e| DriverError::new(format!("unexpected output from qm guest exec: {e}")))?;
    if value.get("exitcode").is_none() && value.get("exited").and_then(|e| e.as_i64()) != Some(1) {
        return Err(DriverError::new("qm guest exec returned before the command ended (no exit code)")
            .hint("the command may still run in the VM; wait for it, then run phoenix again"));
    }
    let text = |key: &str| value.get(key).and_then(|v| v.as_str()).unwrap_or_default().as_bytes().to_vec();
    Ok(CommandOutput {
        code: value.get("exitcode").and_then(|c| c.as_i64()).map(|c| c as i32),
        stdout: text("out-data"),
        stderr: text("err-data"),
    })
}

/// Each operation is blocking file I/O or a process (`pct`, `qm`, `ssh`): it runs on tokio's
/// blocking pool, on a copy of the target, so the applier's other steps go on meanwhile.
impl<R: CommandRunner + Clone + Send + Sync + 'static> Target for HostTarget<R> {
    async fn read(&self, place: &Place) -> Result<Option<Vec<u8>>, DriverError> {
        let (target, place) = (self.clone(), place.clone());
        off_thread(move || target.read_now(&place)).await
    }

    async fn write(&self, file: &FileWrite) -> Result<(), DriverError> {
        let (target, file) = (self.clone(), file.clone());
        off_thread(move || target.write_now(&file)).await
    }

    async fn remove(&self, place: &Place) -> Result<(), DriverError> {
        let (target, place) = (self.clone(), place.clone());
        off_thread(move || target.remove_now(&place)).await
    }

    async fn run(&self, action: &PostAction) -> Result<(), DriverError> {
        let (target, action) = (self.clone(), action.clone());
        off_thread(move || target.run_now(&action)).await
    }

    async fn stat(&self, place: &Place) -> Result<Option<FileMeta>, DriverError> {
        let (target, place) = (self.clone(), place.clone());
        off_thread(move || target.stat_now(&place)).await
    }

    /// Guests that are folders run nothing.
    fn runs_scripts(&self, _: GuestId, _: GuestKind) -> bool {
        !matches!(self.guests, GuestAccess::Folders(_))
    }

    async fn shell(&self, guest: GuestId, kind: GuestKind, shell: &Shell) -> Result<ShellOutput, DriverError> {
        let (target, shell) = (self.clone(), shell.clone());
        off_thread(move || target.shell_now(guest, kind, &shell)).await
    }

    /// A file:/// URL is a file of this machine; https is verified against this machine's
    /// trust store (Debian's ca-certificates bundle).
    async fn fetch(&self, url: &str) -> Result<Vec<u8>, DriverError> {
        if let Some(path) = url.strip_prefix("file://") {
            let (path, url) = (path.to_string(), url.to_string());
            return off_thread(move || std::fs::read(&path).map_err(|e| DriverError::caused_by(format!("cannot read {url}"), e))).await;
        }
        let trust = crate::http::Trust::Ca(SYSTEM_ROOTS.into());
        let client = crate::http::client(&trust, std::time::Duration::from_secs(900))?;
        let fetched = async { client.get(url).send().await?.error_for_status()?.bytes().await };
        match fetched.await {
            Ok(bytes) => Ok(bytes.to_vec()),
            Err(e) => Err(DriverError::caused_by(format!("cannot download {url}"), e)),
        }
    }
}

/// This machine's CA bundle (Debian's ca-certificates), what a download from a public source
/// is verified against.
const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Runs blocking `work` on tokio's blocking pool.
async fn off_thread<T: Send + 'static>(work: impl FnOnce() -> Result<T, DriverError> + Send + 'static) -> Result<T, DriverError> {
    tokio::task::spawn_blocking(work).await.unwrap_or_else(|error| Err(DriverError::new(format!("a file operation stopped: {error}"))))
}

/// The operations themselves, blocking.
impl<R: CommandRunner> HostTarget<R> {
    pub fn read_now(&self, place: &Place) -> Result<Option<Vec<u8>>, DriverError> {
        if let Some(path) = self.local_path(place)? {
            // What a killed run left beside the file goes the next time it is looked at.
            crate::host::clean_interrupted(&path);
            return match std::fs::read(&path) {
                Ok(bytes) => Ok(Some(bytes)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(error(place, e)),
            };
        }
        // Exit status 3 means "absent", told apart from a failing cat.
        let output = self.shell_at(place, r#"test -e "$1" || exit 3; cat -- "$1""#, &[&place.path], None)?;
        match output.code {
            Some(0) => Ok(Some(output.stdout)),
            Some(3) => Ok(None),
            _ => Err(error(place, output.summary())),
        }
    }

    pub fn write_now(&self, file: &FileWrite) -> Result<(), DriverError> {
        let place = &file.place;
        if let Some(path) = self.local_path(place)? {
            let owner = file.owner.as_deref().map(|o| self.local_owner(place, o)).transpose()?;
            return crate::host::write_atomic_owned(&path, &file.content, file.mode, owner).map_err(|e| error(place, e));
        }
        let mode = format!("{:o}", file.mode);
        let owner = file.owner.clone().unwrap_or_else(|| "root:root".into());
        // Created with umask 077 and chowned before the rename: the content is never readable by
        // others. Missing folders are made 0755 first (under umask 077 they would be 0700 and
        // root's alone: the real Traefik, running as its own user, could not read its files).
        let script = r#"set -e; d=$(dirname -- "$1"); (umask 022; mkdir -p -- "$d"); umask 077; cat > "$2"; chown -- "$3" "$2"; chmod -- "$4" "$2"; mv -f -- "$2" "$1""#;
        self.guest_checked(place, script, &[&place.path, &staging(&place.path), &owner, &mode], Some(&file.content)).map(drop)
    }

    pub fn remove_now(&self, place: &Place) -> Result<(), DriverError> {
        if let Some(path) = self.local_path(place)? {
            return match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(error(place, e)),
                _ => Ok(()),
            };
        }
        self.guest_checked(place, r#"rm -f -- "$1""#, &[&place.path], None).map(drop)
    }

    pub fn run_now(&self, action: &PostAction) -> Result<(), DriverError> {
        match action {
            PostAction::Shell { command } | PostAction::Command { guest: None, command } => {
                self.on_node(&["sh", "-c", command], &format!("`{command}`"))
            }
            PostAction::UpdateTrust { guest: None } => self.on_node(&["update-ca-certificates"], "update-ca-certificates"),
            // `try-reload-or-restart` (systemctl(1)): a running service reloads (or restarts when its
            // unit cannot reload: Traefik's has no ExecReload); a stopped one is left to read the
            // new files when it starts. A plain `reload` fails on an inactive unit, and a
            // certificate is often installed before its service first starts.
            PostAction::Reload { guest, guest_kind, service } => self.in_guest(
                (*guest, *guest_kind),
                r#"systemctl try-reload-or-restart -- "$1""#,
                &[service],
                &format!("reload {service}"),
                " (--skip-post-actions rehearses without it)",
            ),
            PostAction::UpdateTrust { guest: Some(guest) } => {
                self.in_guest(*guest, "update-ca-certificates", &[], "run update-ca-certificates", "")
            }
            PostAction::Command { guest: Some(guest), command } => self.in_guest(*guest, command, &[], &format!("run `{command}`"), ""),
            PostAction::Touch { place } => match self.local_path(place)? {
                Some(path) => touch(&path).map_err(|e| error(place, e)),
                None => self.guest_checked(place, r#"touch -c -- "$1""#, &[&place.path], None).map(drop),
            },
        }
    }
}

impl<R: CommandRunner> HostTarget<R> {
    /// Runs `command` on the node (here, or through the runner's SSH); `what` names it in the error.
    fn on_node(&self, command: &[&str], what: &str) -> Result<(), DriverError> {
        let output = self.runner.run(&argv(command), None)?;
        if output.success() {
            Ok(())
        } else {
            Err(DriverError::new(format!("{what}: {}", output.summary())))
        }
    }

    /// Runs `script` with `args` inside a guest. Guests that are folders run nothing: the error
    /// says what was asked (`what`) and `hint`.
    fn in_guest(&self, guest: (GuestId, GuestKind), script: &str, args: &[&str], what: &str, hint: &str) -> Result<(), DriverError> {
        match &self.guests {
            GuestAccess::Pve | GuestAccess::Lxc(_) => {
                let place = Place { guest: Some(guest), path: String::new() };
                self.guest_checked(&place, script, args, None).map(drop)
            }
            GuestAccess::Folders(root) => {
                Err(DriverError::new(format!("cannot {what} in guest {}: guests are folders under {} here{hint}", guest.0, root.display())))
            }
        }
    }
}

/// Sets a file's modification time to now, when it exists (like `touch -c`).
fn touch(path: &Path) -> std::io::Result<()> {
    match std::fs::File::options().append(true).open(path) {
        Ok(file) => file.set_modified(std::time::SystemTime::now()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

impl<R: CommandRunner> HostTarget<R> {
    /// Runs a provisioning script in a guest, blocking: `pct exec`, `qm guest exec` (its JSON
    /// read back into an exit code and output) or `lxc-attach`.
    pub fn shell_now(&self, guest: GuestId, kind: GuestKind, shell: &Shell) -> Result<ShellOutput, DriverError> {
        if let GuestAccess::Folders(root) = &self.guests {
            return Err(DriverError::new(format!("cannot run scripts in guest {guest}: guests are folders under {} here", root.display())));
        }
        let args: Vec<&str> = shell.args.iter().map(String::as_str).collect();
        let output = self.guest_shell(guest, kind, &shell.script, &args, shell.stdin.as_deref())?;
        Ok(ShellOutput { code: output.code, stdout: output.stdout, stderr: output.stderr })
    }
}
