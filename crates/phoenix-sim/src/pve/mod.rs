//! A Proxmox VE node (PVE 9.1.3) as its API behaves, for what phoenix drives: guests and their
//! configuration, every firewall scope, and worker tasks. The API schema is the router and the
//! parameter validator (`schema`, `jsonschema`); state is kept the way PVE keeps it, as the
//! files of the cluster file system (`firewall/cluster.fw`, `nodes/<node>/host.fw`,
//! `firewall/<vmid>.fw`, `nodes/<node>/{lxc,qemu-server}/<vmid>.conf`), re-parsed on every
//! read, so normalisations happen because the formats make them. Each handler names the Perl
//! it follows. Refusals: parameter errors 400 (pve-common `PVE::Exception::raise_param_exc`,
//! body `{"data":null,"errors":{..},"message":"Parameter verification failed.\n"}`), a
//! handler's `die` 500 with its first line as the reason phrase (pve-manager
//! `PVE/HTTPServer.pm` `rest_handler`), no such path or method 501.
//! What it must not do: network I/O (the HTTPS front is `crate::pve_server`); files only in
//! `disk`, where a node's state is kept in a folder.

pub mod cluster;
mod disk;
pub mod formats;
pub mod fw;
pub mod guest;
pub mod jsonschema;
pub mod lifecycle;
pub mod pending;
mod power;
pub mod schema;
pub mod storage;
pub mod tasks;
mod watch;

use fw::api::{RuleList, Scope};
use fw::rule::RuleEnv;
use guest::{GuestConf, GuestKind, MacSource};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// A call's parameters after validation, as the handlers see them (Perl scalars).
pub type Params = BTreeMap<String, String>;

/// Why a handler did not answer with data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// `raise_param_exc`: 400 with these errors.
    Param(BTreeMap<String, String>),
    /// A plain `die`: 500 with this message.
    Die(String),
    /// `raise_perm_exc`: 403 (what only `root@pam` may do, refused to the API token).
    Perm(String),
    /// The schema has the path, the simulator not the handler: 501, and a recorded gap.
    NotImplemented,
}

/// The cluster file system as the handlers use it: read a file, replace it (empty: remove).
pub trait Store {
    fn read(&self, path: &str) -> Option<String>;
    fn write(&mut self, path: &str, text: &str);
}

impl Store for BTreeMap<String, String> {
    fn read(&self, path: &str) -> Option<String> {
        self.get(path).cloned()
    }

    fn write(&mut self, path: &str, text: &str) {
        if text.is_empty() {
            self.remove(path);
        } else {
            self.insert(path.to_string(), text.to_string());
        }
    }
}

/// An answer: HTTP status, reason phrase, JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub reason: String,
    pub body: Value,
}

impl Reply {
    fn ok(data: Value) -> Reply {
        Reply { status: 200, reason: "OK".into(), body: json!({ "data": data }) }
    }

    fn error(status: u16, message: &str, errors: Option<&BTreeMap<String, String>>) -> Reply {
        let reason = message.lines().next().unwrap_or_default().to_string();
        let mut body = json!({ "data": null, "message": message });
        if let Some(errors) = errors.filter(|e| !e.is_empty()) {
            body["errors"] = json!(errors);
        }
        Reply { status, reason, body }
    }

    /// The `data` of a success.
    pub fn data(&self) -> &Value {
        &self.body["data"]
    }
}

/// A request that must wait for a lock (another writer or a running task holds it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy {
    pub until: Instant,
}

/// Timings and injected behaviour.
#[derive(Debug)]
pub struct Settings {
    /// How long a worker task runs, unless `durations` names its type.
    pub task_duration: Duration,
    /// How long tasks of a type run (`vzclone`, `qmclone`, `qmstart`, ...).
    pub durations: BTreeMap<String, Duration>,
    /// How long after a VM started its guest agent answers.
    pub agent_delay: Duration,
    /// Each storage's size in bytes (else `default_capacity`).
    pub capacity: BTreeMap<String, u64>,
    pub default_capacity: u64,
    /// The size of a downloaded file, by file name (else 512 MiB).
    pub download_bytes: BTreeMap<String, u64>,
    /// How long a writer waits for a lock before "got timeout" (PVE: 10 s).
    pub lock_timeout: Duration,
    /// The clock's epoch seconds (UPIDs, the cluster's timestamp `enable`); `None`: the system clock.
    pub epoch: Option<u64>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            task_duration: Duration::from_millis(30),
            durations: BTreeMap::new(),
            agent_delay: Duration::from_millis(30),
            capacity: BTreeMap::new(),
            default_capacity: 4 << 40,
            download_bytes: BTreeMap::new(),
            lock_timeout: Duration::from_secs(10),
            epoch: None,
        }
    }
}

impl Settings {
    /// Typical figures of a homelab node (SSD-backed ZFS): an LXC create or clone a few
    /// seconds, a VM's full clone of a 32 GB disk about a minute, a start a few seconds, the
    /// guest agent some 20 s after a VM started. For benchmarks and rehearsals in real time.
    pub fn typical() -> Settings {
        let seconds = |pairs: &[(&str, f64)]| pairs.iter().map(|(k, s)| (k.to_string(), Duration::from_secs_f64(*s))).collect();
        Settings {
            task_duration: Duration::from_secs(1),
            durations: seconds(&[
                ("vzcreate", 15.0),
                ("vzclone", 4.0),
                ("qmcreate", 20.0),
                ("qmclone", 60.0),
                ("vzstart", 3.0),
                ("qmstart", 5.0),
                ("vzstop", 2.0),
                ("qmstop", 3.0),
                ("vzshutdown", 5.0),
                ("qmshutdown", 10.0),
                ("vztemplate", 2.0),
                ("qmtemplate", 3.0),
                ("resize", 2.0),
                ("vzsnapshot", 2.0),
                ("qmsnapshot", 3.0),
                ("download", 30.0),
                ("vzdestroy", 3.0),
                ("qmdestroy", 4.0),
                // An offline move of a container's 8 GB and a VM's 32 GB disk over 1 GbE
                // (`zfs send` or a storage copy), a live one of a VM on shared storage.
                ("vzmigrate", 70.0),
                ("qmigrate", 280.0),
            ]),
            agent_delay: Duration::from_secs(20),
            ..Settings::default()
        }
    }

    /// How long a task of this type runs.
    pub fn duration(&self, kind: &str) -> Duration {
        self.durations.get(kind).copied().unwrap_or(self.task_duration)
    }
}

/// The simulated node.
#[derive(Debug)]
pub struct PveSim {
    /// The node the current request runs on (between requests: the one the API is reached on).
    pub node: String,
    /// The cluster file system, by path below `/etc/pve`.
    pub files: BTreeMap<String, String>,
    pub running: BTreeSet<u32>,
    /// When each running guest started.
    pub started: BTreeMap<u32, Instant>,
    pub tasks: tasks::Tasks,
    pub settings: Settings,
    /// Locks held from outside (another client's long operation), until when.
    held: BTreeMap<String, Instant>,
    macs: MacSource,
    /// Requests that changed something (a write answered 2xx).
    pub writes: usize,
    /// What the simulator could not check or do; a test that meets one fails.
    pub gaps: Vec<String>,
    /// Writers that gave up waiting for a lock ("got timeout").
    pub lock_timeouts: usize,
    /// Where the cluster file system is kept between requests (see `backed_by`).
    backing: Option<watch::Watched>,
    /// `corosync.conf`'s text and the nodelist read from it, read again only when it changed
    /// (every request asks for the members; pmxcfs keeps them in memory too).
    members_read: std::cell::RefCell<(String, BTreeSet<String>)>,
    /// The node's bridges (its /etc/network/interfaces, outside /etc/pve): a guest whose NIC
    /// names another cannot start. A fresh installation has `vmbr0`.
    pub bridges: BTreeSet<String>,
}

/// The token user recorded in tasks.
pub(crate) const TASK_USER: &str = "root@pam!phoenix";

impl PveSim {
    pub fn new(node: &str) -> PveSim {
        PveSim {
            node: node.to_string(),
            files: BTreeMap::new(),
            running: BTreeSet::new(),
            started: BTreeMap::new(),
            tasks: tasks::Tasks::default(),
            settings: Settings::default(),
            held: BTreeMap::new(),
            macs: MacSource::new(0x5eed),
            writes: 0,
            gaps: Vec::new(),
            lock_timeouts: 0,
            backing: None,
            members_read: Default::default(),
            bridges: BTreeSet::from(["vmbr0".to_string()]),
        }
    }

    /// Adds a guest as creating it would leave it: its `net0` normalised (a MAC generated when
    /// none is given), plus any other `key: value` pairs.
    pub fn add_guest(&mut self, vmid: u32, kind: GuestKind, net0: &str, extra: &[(&str, &str)]) -> Result<(), String> {
        let nics: &[(&str, &str)] = if net0.is_empty() { &[] } else { &[("net0", net0)] };
        self.add_guest_with_nics(vmid, kind, nics, extra)
    }

    /// A guest with several NICs (`netN` key and value each), normalised as the API stores them.
    pub fn add_guest_with_nics(&mut self, vmid: u32, kind: GuestKind, nics: &[(&str, &str)], extra: &[(&str, &str)]) -> Result<(), String> {
        let node = self.node.clone();
        self.add_guest_on(&node, vmid, kind, nics, extra)
    }

    /// A guest on a node of the cluster, its NICs normalised as the API stores them.
    pub fn add_guest_on(&mut self, node: &str, vmid: u32, kind: GuestKind, nics: &[(&str, &str)], extra: &[(&str, &str)]) -> Result<(), String> {
        let mut conf = GuestConf::default();
        for (key, value) in nics {
            let format = nic_format(kind).ok_or("the schema has no net[n] format")?;
            conf.keys.insert(key.to_string(), guest::normalise_nic(kind, format, key, value, &mut self.macs)?);
        }
        for (key, value) in extra {
            conf.keys.insert(key.to_string(), value.to_string());
        }
        self.files.insert(kind.config_path(node, vmid), conf.to_text());
        Ok(())
    }

    fn reseed(&mut self, macs: MacSource) {
        self.macs = macs;
    }

    /// A guest's config key as stored.
    pub fn guest_key(&self, vmid: u32, key: &str) -> Option<String> {
        let node = self.node_of(vmid)?;
        self.guest_on(&node, vmid).and_then(|(_, conf)| conf.keys.get(key).cloned())
    }

    /// Holds a lock from outside for `duration` (`firewall-cluster`, `firewall-vm-<vmid>`,
    /// `config-<vmid>`): writers needing it wait, and time out after `lock_timeout`.
    pub fn hold_lock(&mut self, key: &str, duration: Duration) {
        self.held.insert(key.to_string(), Instant::now() + duration);
    }

    pub(crate) fn epoch(&self) -> u64 {
        self.settings
            .epoch
            .unwrap_or_else(|| std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0))
    }

    /// Answers one authenticated request, waiting (blocking) for locks: for in-process use.
    pub fn request(&mut self, method: &str, path: &str, params: BTreeMap<String, Value>) -> Reply {
        let started = Instant::now();
        loop {
            match self.try_request(method, path, params.clone(), started) {
                Ok(reply) => return reply,
                Err(busy) => std::thread::sleep(busy.until.saturating_duration_since(Instant::now()).min(Duration::from_millis(50))),
            }
        }
    }

    /// Answers one request, or says until when it must wait for a lock; `started` is when the
    /// request arrived (its lock wait times out `lock_timeout` after).
    pub fn try_request(&mut self, method: &str, path: &str, params: BTreeMap<String, Value>, started: Instant) -> Result<Reply, Busy> {
        self.reload_backing();
        let before = self.backing.is_some().then(|| self.files.clone());
        let reply = self.answer(method, path, params, started);
        if let Some(before) = before.filter(|b| *b != self.files) {
            self.save_changes(&before);
        }
        let reply = reply?;
        if method != "GET" && (200..300).contains(&reply.status) {
            self.writes += 1;
        }
        Ok(reply)
    }

    fn answer(&mut self, method: &str, path: &str, mut params: BTreeMap<String, Value>, started: Instant) -> Result<Reply, Busy> {
        self.settle();
        let route = match admit(method, path, &mut params, Some(&self.members())) {
            Ok(route) => route,
            Err(Refused::NoRoute) => return Ok(Reply::error(501, &format!("Method '{method} {path}' not implemented"), None)),
            Err(Refused::Invalid(errors)) => return Ok(Reply::error(400, "Parameter verification failed.\n", Some(&errors))),
            Err(Refused::UnknownNode(node)) => {
                let message =
                    format!("hostname lookup '{node}' failed - failed to get address info for: {node}: Name or service not known\n");
                return Ok(Reply::error(500, &message, None));
            }
            Err(Refused::Gaps(template, gaps)) => return Ok(self.gap(template, gaps.join("; "))),
        };
        let params: Params = params.iter().filter_map(|(k, v)| Some((k.clone(), jsonschema::scalar(v)?))).collect();
        // qemu-server forks the config worker first and takes the lock inside it (a task that
        // ends "can't lock file"); every other write waits for its lock here.
        let in_task = method == "POST" && route.template == "/nodes/{node}/qemu/{vmid}/config";
        if method != "GET" && !in_task {
            if let Some((key, message)) = self.lock_for(route.template, &params) {
                let until = self.lock_busy_until(&key);
                if let Some(until) = until.filter(|u| *u > Instant::now()) {
                    if until.saturating_duration_since(started) > self.settings.lock_timeout {
                        if started.elapsed() >= self.settings.lock_timeout {
                            self.lock_timeouts += 1;
                            return Ok(Reply::error(500, &message, None));
                        }
                        return Err(Busy { until: started + self.settings.lock_timeout });
                    }
                    return Err(Busy { until });
                }
            }
        }
        // The schema is static: its templates and definitions outlive the request.
        let (template, definition): (&'static str, &'static Value) = (route.template, route.method);
        // `proxyto => 'node'`: the handler runs on the node the path names.
        let entry = route.path_params.get("node").map(|asked| std::mem::replace(&mut self.node, asked.clone()));
        let handled = self.handle(method, template, &params, definition);
        if let Some(entry) = entry {
            self.node = entry;
        }
        Ok(match handled {
            Ok(data) => {
                let data = typed_tree(data, &definition["returns"]);
                match check_answer(&data, &definition["returns"], "") {
                    Ok(()) => Reply::ok(data),
                    Err(problem) => self.gap(template, format!("the answer does not match the schema's returns: {problem}")),
                }
            }
            Err(Failure::Param(errors)) => Reply::error(400, "Parameter verification failed.\n", Some(&errors)),
            Err(Failure::Die(message)) => Reply::error(500, &format!("{}\n", message.trim_end_matches('\n')), None),
            Err(Failure::Perm(message)) => Reply::error(403, &format!("{}\n", message.trim_end_matches('\n')), None),
            Err(Failure::NotImplemented) => self.gap(template, format!("{method} is not simulated")),
        })
    }

    fn gap(&mut self, template: &str, what: String) -> Reply {
        let message = format!("phoenix-sim: {template}: {what}");
        self.gaps.push(message.clone());
        Reply::error(501, &message, None)
    }

    /// The lock a write takes and the message of its timeout: cfs locks for firewall files
    /// (pve-cluster `$cfs_lock`), the guest's flock for its config (`lock_config`).
    fn lock_for(&self, template: &str, params: &Params) -> Option<(String, String)> {
        let vmid = params.get("vmid").cloned().unwrap_or_default();
        let cfs = |id: &str| Some((id.to_string(), format!("cfs-lock '{id}' error: got lock request timeout\n")));
        if template.starts_with("/cluster/firewall") {
            return cfs("firewall-cluster");
        }
        if template.starts_with("/nodes/{node}/firewall") {
            return cfs(&format!("firewall-host-{}", self.node));
        }
        if template.contains("/{vmid}/firewall") {
            return cfs(&format!("firewall-vm-{vmid}"));
        }
        if template.ends_with("/{vmid}/config") {
            let file = if template.contains("/qemu/") {
                format!("/var/lock/qemu-server/lock-{vmid}.conf")
            } else {
                format!("/run/lock/lxc/pve-config-{vmid}.lock")
            };
            return Some((format!("config-{vmid}"), format!("can't lock file '{file}' - got timeout\n")));
        }
        None
    }

    fn lock_busy_until(&self, key: &str) -> Option<Instant> {
        let held = self.held.get(key).copied();
        let task = key.strip_prefix("config-").and_then(|vmid| self.tasks.busy_until(vmid));
        held.into_iter().chain(task).max()
    }

    fn handle(&mut self, method: &str, template: &str, params: &Params, definition: &Value) -> Result<Value, Failure> {
        let parts: Vec<&str> = template.trim_start_matches('/').split('/').collect();
        let vmid = || params.get("vmid").and_then(|v| v.parse::<u32>().ok()).unwrap_or_default();
        let pos = || params.get("pos").and_then(|v| v.parse::<usize>().ok());
        let now = self.epoch();
        match parts.as_slice() {
            ["nodes", "{node}", kind @ ("lxc" | "qemu")] if method == "GET" => Ok(self.list_guests(guest_kind(kind))),
            ["nodes", "{node}", kind @ ("lxc" | "qemu")] if method == "POST" => {
                let empty = Map::new();
                let properties = definition["parameters"]["properties"].as_object().unwrap_or(&empty);
                self.create_guest(guest_kind(kind), params, properties)
            }
            ["nodes", "{node}", kind @ ("lxc" | "qemu"), "{vmid}"] if method == "DELETE" => self.destroy(guest_kind(kind), vmid(), params),
            ["nodes", "{node}", kind @ ("lxc" | "qemu"), "{vmid}", "clone"] => self.clone_guest(guest_kind(kind), vmid(), params),
            ["nodes", "{node}", kind @ ("lxc" | "qemu"), "{vmid}", "template"] => self.template(guest_kind(kind), vmid()),
            ["nodes", "{node}", kind @ ("lxc" | "qemu"), "{vmid}", "resize"] => self.resize(guest_kind(kind), vmid(), params),
            ["nodes", "{node}", kind @ ("lxc" | "qemu"), "{vmid}", "status", "current"] => self.status_current(guest_kind(kind), vmid()),
            ["nodes", "{node}", kind @ ("lxc" | "qemu"), "{vmid}", "status", action @ ("start" | "stop" | "shutdown" | "reboot")] => {
                self.power(guest_kind(kind), vmid(), action)
            }
            ["nodes", "{node}", kind @ ("lxc" | "qemu"), "{vmid}", "snapshot"] if method != "DELETE" => {
                self.snapshot(guest_kind(kind), vmid(), method, params)
            }
            ["nodes", "{node}", kind @ ("lxc" | "qemu"), "{vmid}", "snapshot", "{snapname}"] if method == "DELETE" => {
                self.snapshot(guest_kind(kind), vmid(), method, params)
            }
            ["nodes", "{node}", "qemu", "{vmid}", "agent", "ping"] => self.agent_ping(vmid()),
            ["nodes", "{node}", "storage"] if method == "GET" => self.storage_index(params),
            ["nodes", "{node}", "storage", "{storage}", "content"] if method == "GET" => self.storage_content(params),
            ["nodes", "{node}", "storage", "{storage}", "download-url"] => self.download(params, false),
            ["nodes", "{node}", "aplinfo"] if method == "POST" => self.download(params, true),
            ["cluster", "nextid"] => self.next_id(params),
            ["cluster", "resources"] => self.resources(params),
            ["cluster", "ha", "resources"] if method == "GET" => self.ha_index(params),
            ["cluster", "ha", "resources"] if method == "POST" => self.ha_add(params),
            ["cluster", "ha", "resources", "{sid}", action @ ("migrate" | "relocate")] => self.ha_move(params, *action == "relocate"),
            ["nodes", "{node}", kind @ ("lxc" | "qemu"), "{vmid}", "migrate"] if method == "POST" => {
                self.migrate(guest_kind(kind), vmid(), params)
            }
            ["nodes", "{node}", "tasks"] if method == "GET" => {
                Ok(self.tasks.list(&self.node, &tasks::TaskFilter::from_params(params)))
            }
            // pve-manager `PVE/API2/Nodes.pm` (Nodeinfo's `time`): the node's clock.
            ["nodes", "{node}", "time"] if method == "GET" => {
                let now = self.epoch();
                Ok(json!({ "time": now, "localtime": now, "timezone": "UTC" }))
            }
            ["nodes", "{node}", kind @ ("lxc" | "qemu"), "{vmid}", "config"] => {
                self.guest_config(guest_kind(kind), vmid(), method, params, definition)
            }
            ["nodes", "{node}", kind @ ("lxc" | "qemu"), "{vmid}", "pending"] if method == "GET" => {
                let text = self.config_text(&guest_kind(kind).config_path(&self.node, vmid()))?;
                Ok(pending::list(&GuestConf::parse(text), &fw::text_digest(text)))
            }
            ["nodes", "{node}", "tasks", "{upid}", leaf @ ("status" | "log")] if method == "GET" => {
                let upid = params.get("upid").cloned().unwrap_or_default();
                match self.tasks.get(&upid) {
                    Some(task) if *leaf == "status" => Ok(task.status(&upid)),
                    Some(task) => {
                        let number = |key: &str, default: usize| params.get(key).and_then(|v| v.parse().ok()).unwrap_or(default);
                        Ok(task.log(number("start", 0), number("limit", 50)))
                    }
                    None => Err(Failure::Param(BTreeMap::from([("upid".into(), "no such task".into())]))),
                }
            }
            ["cluster", "firewall", "groups"] => fw::api::groups(&mut self.files, method, None, params),
            ["cluster", "firewall", "groups", "{group}"] if method == "DELETE" => {
                fw::api::groups(&mut self.files, method, params.get("group").map(String::as_str), params)
            }
            ["cluster", "firewall", "groups", "{group}", rest @ ..] => {
                let list = RuleList::Group(params.get("group").cloned().unwrap_or_default());
                fw::api::rules(&mut self.files, &list, method, if rest.is_empty() { None } else { pos() }, params)
            }
            ["cluster", "firewall", rest @ ..] => self.firewall(Scope::Cluster, method, rest, params, definition, now),
            ["nodes", "{node}", "firewall", rest @ ..] => {
                self.firewall(Scope::Host(self.node.clone()), method, rest, params, definition, now)
            }
            ["nodes", "{node}", kind @ ("lxc" | "qemu"), "{vmid}", "firewall", rest @ ..] => {
                let env = if *kind == "lxc" { RuleEnv::Ct } else { RuleEnv::Vm };
                self.firewall(Scope::Guest(vmid(), env), method, rest, params, definition, now)
            }
            _ => Err(Failure::NotImplemented),
        }
    }

    fn firewall(
        &mut self,
        scope: Scope,
        method: &str,
        rest: &[&str],
        params: &Params,
        definition: &Value,
        now: u64,
    ) -> Result<Value, Failure> {
        let name = params.get("name").map(String::as_str);
        let store = &mut self.files;
        match rest {
            ["rules"] => fw::api::rules(store, &RuleList::Scope(scope), method, None, params),
            ["rules", "{pos}"] => {
                let pos = params.get("pos").and_then(|p| p.parse().ok());
                fw::api::rules(store, &RuleList::Scope(scope), method, pos, params)
            }
            ["options"] => fw::api::options(store, &scope, method, params, definition, now),
            ["aliases"] => fw::api::aliases(store, &scope, method, None, params),
            ["aliases", "{name}"] => fw::api::aliases(store, &scope, method, name, params),
            ["ipset"] => fw::api::ipsets(store, &scope, method, None, None, params),
            ["ipset", "{name}"] => fw::api::ipsets(store, &scope, method, name, None, params),
            ["ipset", "{name}", "{cidr}"] => fw::api::ipsets(store, &scope, method, name, params.get("cidr").map(String::as_str), params),
            _ => Err(Failure::NotImplemented),
        }
    }

    /// `GET /nodes/{node}/{lxc,qemu}` (`vmlist`): every guest of that type (unsorted in PVE;
    /// here by id), LXC entries with `type: lxc`.
    fn list_guests(&self, kind: GuestKind) -> Value {
        let prefix = format!("nodes/{}/{}/", self.node, kind.folder());
        let mut list = Vec::new();
        for path in self.files.keys().filter(|p| p.starts_with(&prefix) && p.ends_with(".conf")) {
            let Some(vmid) = path[prefix.len()..].trim_end_matches(".conf").parse::<u32>().ok() else { continue };
            let conf = GuestConf::parse(&self.files[path]);
            let status = if self.running.contains(&vmid) { "running" } else { "stopped" };
            let name = match kind {
                GuestKind::Lxc => conf.keys.get("hostname").cloned().unwrap_or_else(|| format!("CT{vmid}")),
                GuestKind::Qemu => conf.keys.get("name").cloned().unwrap_or_else(|| format!("VM {vmid}")),
            };
            let mut entry = json!({ "vmid": vmid, "status": status, "name": name, "uptime": self.uptime(vmid) });
            if let Some(lock) = conf.keys.get("lock") {
                entry["lock"] = json!(lock);
            }
            if kind == GuestKind::Lxc {
                entry["type"] = json!("lxc");
            }
            if conf.keys.get("template").is_some_and(|t| t == "1") {
                entry["template"] = json!(1);
            }
            list.push(entry);
        }
        Value::Array(list)
    }

    /// A guest's `.conf` text; without one, what `load_config` dies with.
    pub(super) fn config_text(&self, path: &str) -> Result<&String, Failure> {
        self.files.get(path).ok_or_else(|| Failure::Die(format!("Configuration file '{path}' does not exist")))
    }

    /// `GET`/`PUT .../config` (pve-container API2/LXC/Config.pm `update_vm`; qemu-server
    /// API2/Qemu.pm `$update_vm_api`: POST runs as a `qmconfig` task and returns its UPID).
    fn guest_config(&mut self, kind: GuestKind, vmid: u32, method: &str, params: &Params, definition: &Value) -> Result<Value, Failure> {
        let path = kind.config_path(&self.node, vmid);
        let text = self.config_text(&path)?.clone();
        let mut conf = GuestConf::parse(&text);
        let digest = fw::text_digest(&text);
        if method == "GET" {
            let shown = if params.get("current").is_some_and(|c| c == "1") { conf } else { pending::merged(&conf) };
            return Ok(guest::config_json(&shown, &digest, &definition["returns"]));
        }
        let bookkeeping = ["node", "vmid", "digest", "delete", "revert", "skiplock", "force", "background_delay"];
        let changes: Params =
            params.iter().filter(|(k, _)| !bookkeeping.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect();
        let deletes: Vec<String> = params
            .get("delete")
            .map(|d| d.split([',', ';', ' ']).filter(|x| !x.is_empty()).map(str::to_string).collect())
            .unwrap_or_default();
        if changes.is_empty() && deletes.is_empty() && params.get("revert").is_none() {
            return Err(Failure::Die("no options specified".into()));
        }
        if params.get("revert").is_some() {
            return Err(Failure::NotImplemented);
        }
        if params.get("digest").is_some_and(|d| !d.is_empty() && *d != digest) {
            return Err(Failure::Die(kind.digest_mismatch().into()));
        }
        // AbstractConfig check_lock (unless skiplock).
        if let Some(lock) = conf.keys.get("lock").filter(|_| params.get("skiplock").is_none_or(|s| s != "1")) {
            let guest = if kind == GuestKind::Qemu { "VM" } else { "CT" };
            return Err(Failure::Die(format!("{guest} is locked ({lock})")));
        }
        if kind == GuestKind::Lxc {
            lifecycle::check_ct_config_change(&conf, &changes)?;
        }
        let empty = Map::new();
        let properties = definition["parameters"]["properties"].as_object().unwrap_or(&empty);
        for key in &deletes {
            if changes.contains_key(key) {
                let errors =
                    BTreeMap::from([("delete".to_string(), format!("you can't use '-{key}' and -delete {key}' at the same time"))]);
                return Err(Failure::Param(errors));
            }
        }
        let mut stored = Vec::new();
        for (key, value) in &changes {
            let value = match nic_format_of(properties, key) {
                Some(format) => guest::normalise_nic(kind, format, key, value, &mut self.macs)
                    .map_err(|e| Failure::Param(BTreeMap::from([(key.clone(), e)])))?,
                None => value.clone(),
            };
            stored.push((key.clone(), value));
        }
        pending::stage(&mut conf, kind, self.running.contains(&vmid), &stored, &deletes);
        if kind == GuestKind::Qemu && method == "POST" {
            // The worker waits for the config lock (lock_config, 10 s), then writes.
            let busy = self.lock_busy_until(&format!("config-{vmid}"));
            let wait = busy.map(|until| until.saturating_duration_since(Instant::now())).unwrap_or_default();
            if wait > self.settings.lock_timeout {
                let message = format!("can't lock file '/var/lock/qemu-server/lock-{vmid}.conf' - got timeout");
                self.tasks.injected.push_front(tasks::TaskOutcome::Error(message));
                self.lock_timeouts += 1;
            }
            let duration = self.settings.task_duration + wait.min(self.settings.lock_timeout);
            let (upid, outcome) = self.tasks.start(&self.node, "qmconfig", &vmid.to_string(), TASK_USER, duration, self.epoch());
            if !matches!(outcome, tasks::TaskOutcome::Error(_)) {
                self.files.insert(path, conf.to_text());
            }
            return Ok(Value::String(upid));
        }
        self.files.insert(path, conf.to_text());
        Ok(Value::Null)
    }
}

/// Why the API refuses a request before any handler runs.
enum Refused {
    /// No path and method of the schema: 501.
    NoRoute,
    /// Parameter errors (or a body key repeating a path parameter with another value): 400.
    Invalid(BTreeMap<String, String>),
    /// A node not in the cluster (proxyto's hostname lookup fails): 500.
    UnknownNode(String),
    /// A check the simulator cannot make: a loud 501.
    Gaps(&'static str, Vec<String>),
}

/// What pve-manager's `rest_handler` checks before the handler runs, in its order: the route
/// (`find_handler`), a body key repeating a path parameter with another value, the node
/// (`proxyto`, when `node` is given), then the parameters (`PVE::JSONSchema::validate`).
/// The path parameters are added to `params`.
fn admit(
    method: &str,
    path: &str,
    params: &mut BTreeMap<String, Value>,
    members: Option<&BTreeSet<String>>,
) -> Result<schema::Route<'static>, Refused> {
    let route = schema::ApiSchema::get().route(method, path).map_err(|_| Refused::NoRoute)?;
    for (name, value) in &route.path_params {
        if params.get(name).and_then(jsonschema::scalar).is_some_and(|given| &given != value) {
            let message = "duplicate parameter (already defined in URI) with conflicting values!".to_string();
            return Err(Refused::Invalid(BTreeMap::from([(name.clone(), message)])));
        }
        params.insert(name.clone(), Value::String(value.clone()));
    }
    if let (Some(members), Some(asked)) = (members, route.path_params.get("node")) {
        if !members.contains(asked) {
            return Err(Refused::UnknownNode(asked.clone()));
        }
    }
    let verdict = jsonschema::validate(&route.method["parameters"], params);
    if !verdict.gaps.is_empty() {
        return Err(Refused::Gaps(route.template, verdict.gaps.into_iter().map(|g| g.0).collect()));
    }
    if !verdict.errors.is_empty() {
        return Err(Refused::Invalid(verdict.errors));
    }
    Ok(route)
}

/// Whether the API would take this request as far as its schema decides: a path and method it
/// has, every parameter known and valid (types, formats, patterns, ranges, required ones). The
/// same admission the simulator answers with, without a node or HTTP: for checking every
/// request a planner emits.
pub fn check_request(method: &str, path: &str, params: &[(String, String)]) -> Result<(), String> {
    let mut values: BTreeMap<String, Value> = params.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
    match admit(method, path, &mut values, None) {
        Ok(_) => Ok(()),
        Err(Refused::NoRoute) => Err(format!("{method} {path}: no such API")),
        Err(Refused::Invalid(errors)) => Err(format!("{method} {path}: refused (400): {errors:?}")),
        Err(Refused::UnknownNode(node)) => Err(format!("{method} {path}: no node {node}")),
        Err(Refused::Gaps(_, gaps)) => Err(format!("{method} {path}: phoenix-sim cannot check it: {gaps:?}")),
    }
}

fn guest_kind(segment: &str) -> GuestKind {
    if segment == "lxc" {
        GuestKind::Lxc
    } else {
        GuestKind::Qemu
    }
}

/// The inline property-string format of `net[n]` for a guest kind, from the schema.
pub fn nic_format(kind: GuestKind) -> Option<&'static Map<String, Value>> {
    let template = format!("/nodes/{{node}}/{}/{{vmid}}/config", kind.segment());
    let method = if kind == GuestKind::Lxc { "PUT" } else { "POST" };
    let properties = schema::ApiSchema::get().node(&template)?.method(method)?["parameters"]["properties"].as_object()?;
    nic_format_of(properties, "net0")
}

pub(crate) fn nic_format_of<'s>(properties: &'s Map<String, Value>, key: &str) -> Option<&'s Map<String, Value>> {
    let base = key.trim_end_matches(|c: char| c.is_ascii_digit());
    if base != "net" || base.len() == key.len() {
        return None;
    }
    jsonschema::property(properties, key)?.get("format")?.as_object()
}

/// A stored scalar as the JSON type the schema gives it (Perl's numbers print as numbers).
pub fn typed(value: &str, schema: Option<&Value>) -> Value {
    let kind = schema.and_then(|s| s.get("type")).and_then(Value::as_str).unwrap_or("string");
    match kind {
        "integer" | "boolean" => value.parse::<i64>().map(Value::from).unwrap_or_else(|_| Value::String(value.to_string())),
        "number" => value
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(value.to_string())),
        _ => Value::String(value.to_string()),
    }
}

/// Applies `typed` through an answer, following the `returns` schema.
fn typed_tree(value: Value, schema: &Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.into_iter().map(|i| typed_tree(i, &schema["items"])).collect()),
        Value::Object(object) => Value::Object(
            object
                .into_iter()
                .map(|(k, v)| {
                    let sub = schema.get("properties").and_then(|p| p.get(&k)).cloned().unwrap_or(Value::Null);
                    (k, typed_tree(v, &sub))
                })
                .collect(),
        ),
        Value::String(text) if schema.is_object() => typed(&text, Some(schema)),
        other => other,
    }
}

/// Whether an answer has the shape the method's `returns` promises: types, required
/// properties, enums.
fn check_answer(value: &Value, schema: &Value, path: &str) -> Result<(), String> {
    let Some(kind) = schema.get("type").and_then(Value::as_str) else { return Ok(()) };
    let optional = schema.get("optional").is_some_and(|o| o == &Value::from(1));
    let fits = match (kind, value) {
        (_, Value::Null) => kind == "null" || optional,
        ("null", _) => false,
        ("string", Value::String(_)) | ("array", Value::Array(_)) | ("object", Value::Object(_)) => true,
        ("integer", Value::Number(n)) => n.is_i64() || n.is_u64(),
        ("boolean", Value::Number(n)) => matches!(n.as_i64(), Some(0 | 1)),
        ("number", Value::Number(_)) | ("any", _) => true,
        _ => false,
    };
    if !fits {
        return Err(format!("{path}: {value} is not of type {kind}"));
    }
    if let (Some(allowed), Value::String(text)) = (schema.get("enum").and_then(Value::as_array), value) {
        if !allowed.iter().any(|a| a.as_str() == Some(text)) {
            return Err(format!("{path}: '{text}' is not in its enum"));
        }
    }
    match value {
        Value::Array(items) => {
            items.iter().enumerate().try_for_each(|(i, item)| check_answer(item, &schema["items"], &format!("{path}[{i}]")))
        }
        Value::Object(object) => {
            let Some(properties) = schema.get("properties").and_then(Value::as_object) else { return Ok(()) };
            for (key, sub) in properties {
                let required = !sub.get("optional").is_some_and(|o| o == &Value::from(1));
                match object.get(key) {
                    Some(item) => check_answer(item, sub, &format!("{path}.{key}"))?,
                    None if required => return Err(format!("{path}.{key} is missing")),
                    None => {}
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}
