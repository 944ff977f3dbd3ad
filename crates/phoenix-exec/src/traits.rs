//! The driver traits, all in one place: where files go and commands run ([`Target`]), who
//! issues certificates ([`Issuer`]), the Proxmox VE API ([`PveApi`]) and the Portainer API
//! ([`PortainerApi`]), and the error they report ([`DriverError`]). Implementations live in
//! phoenix-drivers (real systems), phoenix-lab and tests (fakes); nothing here does I/O.
//! Every method is asynchronous, so a driver that must block (a file write, an ssh or pct
//! process) does it off the applier's thread and concurrent API steps go on meanwhile.

use phoenix_core::certificates::renewal::OrderRequest;
use phoenix_core::deploy::{FileMeta, FileWrite, Place, PostAction};
use phoenix_core::plan::portainer::{EndpointObserved, Operation, StackObserved};
use phoenix_core::plan::pve::ApiRequest;
use phoenix_core::provision::shell::Shell;
use phoenix_model::model::{GuestId, GuestKind};
use serde_json::Value;
use std::future::Future;

/// A failure reported by a driver, in words for the user: what failed, the error that caused
/// it (a TLS or connection error, an I/O error; printed as `caused by:`), and what to do.
/// phoenix-exec's one error type: the operations pass it on with their own words in front.
#[derive(Debug, Clone)]
pub struct DriverError {
    pub message: String,
    pub hint: Option<String>,
    cause: Option<std::sync::Arc<dyn std::error::Error + Send + Sync>>,
}

impl DriverError {
    pub fn new(message: impl Into<String>) -> DriverError {
        DriverError { message: message.into(), hint: None, cause: None }
    }

    /// `message`, caused by `cause`.
    pub fn caused_by(message: impl Into<String>, cause: impl std::error::Error + Send + Sync + 'static) -> DriverError {
        DriverError { message: message.into(), hint: None, cause: Some(std::sync::Arc::new(cause)) }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> DriverError {
        self.hint = Some(hint.into());
        self
    }
}

/// Equal when they say the same (the cause is an explanation, not an identity).
impl PartialEq for DriverError {
    fn eq(&self, other: &DriverError) -> bool {
        (&self.message, &self.hint) == (&other.message, &other.hint)
    }
}

impl Eq for DriverError {}

impl std::fmt::Display for DriverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DriverError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Where files are installed and post-renewal actions run, and provisioning's scripts: the
/// machine phoenix runs on and its guests.
pub trait Target {
    /// The file's content, `None` when it does not exist.
    fn read(&self, place: &Place) -> impl Future<Output = Result<Option<Vec<u8>>, DriverError>>;
    /// Replaces the file atomically (a reader sees the old or the new content), with the owner
    /// and mode given; the content is never readable with looser permissions on the way.
    fn write(&self, file: &FileWrite) -> impl Future<Output = Result<(), DriverError>>;
    fn remove(&self, place: &Place) -> impl Future<Output = Result<(), DriverError>>;
    fn run(&self, action: &PostAction) -> impl Future<Output = Result<(), DriverError>>;
    /// The file's mode and owner; `None` when it is absent or the target cannot tell (then
    /// only its content is compared).
    fn stat(&self, _place: &Place) -> impl Future<Output = Result<Option<FileMeta>, DriverError>> {
        async { Ok(None) }
    }
    /// Whether [`Target::shell`] can run scripts in guest `guest` (its provisioning is observed
    /// and planned only then): not where guests are folders, nor the lab's VMs.
    fn runs_scripts(&self, guest: GuestId, kind: GuestKind) -> bool {
        let _ = (guest, kind);
        false
    }
    /// Runs `shell` by `sh -c` in a guest (provisioning, health checks: `pct exec` for
    /// containers and `qm guest exec` for VMs on the node, `lxc-attach` for the lab's real
    /// containers) and returns how it ended: a failing script is an answer, not an error; an
    /// error is a guest that cannot be reached.
    fn shell(&self, guest: GuestId, kind: GuestKind, shell: &Shell) -> impl Future<Output = Result<ShellOutput, DriverError>> {
        let _ = (kind, shell);
        async move { Err(DriverError::new(format!("cannot run scripts in guest {guest} here"))) }
    }
    /// What `url` serves (a program's source: https, http, or file:/// on the machine phoenix
    /// runs on), fetched by phoenix, never by the guest.
    fn fetch(&self, url: &str) -> impl Future<Output = Result<Vec<u8>, DriverError>> {
        let url = url.to_string();
        async move { Err(DriverError::new(format!("cannot fetch {url} here"))) }
    }
}

/// How a script ended: its exit code (`None` when a signal ended it) and its output.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShellOutput {
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl ShellOutput {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// The last lines of stderr (where apt, systemctl and phoenix's scripts say why), or
    /// the exit status, for an error message.
    pub fn summary(&self) -> String {
        let stderr = String::from_utf8_lossy(&self.stderr);
        let lines: Vec<&str> = stderr.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        match (lines.len(), self.code) {
            (0, Some(code)) => format!("exit status {code}"),
            (0, None) => "ended by a signal".to_string(),
            (n, _) => lines[n.saturating_sub(3)..].join("; "),
        }
    }
}

/// A certificate and its key, as PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct Issued {
    /// The leaf first, then the intermediates.
    pub chain_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key is a secret: never print it.
        f.debug_struct("Issued").field("chain_pem", &self.chain_pem).field("key_pem", &"<secret>").finish()
    }
}

/// Obtains certificates (over ACME in phoenix-drivers).
pub trait Issuer {
    /// Orders `order`. An http-01 order into a guest's web root (`order.webroot`) writes its
    /// tokens there through `target`, and removes them afterwards.
    fn issue<T: Target>(&self, order: &OrderRequest, target: &T) -> impl Future<Output = Result<Issued, DriverError>>;
}

/// The Proxmox VE API (phoenix-drivers: HTTPS with an API token, retries, task polling).
pub trait PveApi {
    /// Runs one request and returns its `data`; a task's UPID is waited for until it ends
    /// (its warnings, when it ended `WARNINGS: n`, come with the reply).
    fn call(&self, request: &ApiRequest) -> impl Future<Output = Result<PveReply, DriverError>>;

    /// As `call`, telling `watch` the newest line of a task's log while the task runs (its
    /// progress: a clone's `transferred ...`, a download's percentage). A driver that cannot
    /// read the log tells nothing.
    fn call_watched(&self, request: &ApiRequest, watch: &Watch) -> impl Future<Output = Result<PveReply, DriverError>> {
        let _ = watch;
        self.call(request)
    }
}

/// What hears a running task's progress lines.
pub type Watch = dyn Fn(&str) + Send + Sync;

/// A successful answer: its `data`, and the warnings of the task it waited for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PveReply {
    pub data: Value,
    pub warnings: Vec<String>,
}

impl From<Value> for PveReply {
    fn from(data: Value) -> PveReply {
        PveReply { data, warnings: Vec::new() }
    }
}

/// The Portainer API (phoenix-drivers: X-API-Key, bootstrap on a fresh instance).
pub trait PortainerApi {
    /// Whether an administrator exists.
    fn initialized(&self) -> impl Future<Output = Result<bool, DriverError>>;
    fn endpoints(&self) -> impl Future<Output = Result<Vec<EndpointObserved>, DriverError>>;
    /// Stacks with their compose file content.
    fn stacks(&self) -> impl Future<Output = Result<Vec<StackObserved>, DriverError>>;
    fn apply(&self, operation: &Operation) -> impl Future<Output = Result<(), DriverError>>;
}

/// The driver given for what a command or system does not have (the guest verbs talk to
/// Proxmox VE alone, the lab runs no Portainer): any call is an error, and none is made.
pub struct NotUsed;

fn not_used<T>() -> Result<T, DriverError> {
    Err(DriverError::new("not available here: this command or system does not use it"))
}

impl Target for NotUsed {
    async fn read(&self, _: &Place) -> Result<Option<Vec<u8>>, DriverError> {
        not_used()
    }
    async fn write(&self, _: &FileWrite) -> Result<(), DriverError> {
        not_used()
    }
    async fn remove(&self, _: &Place) -> Result<(), DriverError> {
        not_used()
    }
    async fn run(&self, _: &PostAction) -> Result<(), DriverError> {
        not_used()
    }
}

impl Issuer for NotUsed {
    async fn issue<T: Target>(&self, _: &OrderRequest, _: &T) -> Result<Issued, DriverError> {
        not_used()
    }
}

impl PortainerApi for NotUsed {
    async fn initialized(&self) -> Result<bool, DriverError> {
        not_used()
    }
    async fn endpoints(&self) -> Result<Vec<EndpointObserved>, DriverError> {
        not_used()
    }
    async fn stacks(&self) -> Result<Vec<StackObserved>, DriverError> {
        not_used()
    }
    async fn apply(&self, _: &Operation) -> Result<(), DriverError> {
        not_used()
    }
}
