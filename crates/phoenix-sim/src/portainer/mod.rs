//! A Portainer CE 2.20-2.23 stand-in: its API as a table of handlers ([`routes::ROUTES`]),
//! each row naming the Go handler (github.com/portainer/portainer, `api/http/handler/...`) it
//! follows, and the state those handlers keep. Besides what a request sends, it models what
//! the real server meets outside the request: agents that do not answer yet, deploys that
//! fail or take long (with the server's fault injection), compose projects started outside
//! Portainer, and the first-administrator window that closes five minutes after the start.
//! What it must not do: accept what Portainer refuses, or answer from phoenix's point of view.

mod handlers;
pub mod routes;

use crate::server::{sync_handler, Call, FakeServer};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq)]
pub struct FakeStack {
    pub id: u64,
    pub name: String,
    pub endpoint_id: u64,
    pub env: Value,
    pub file: String,
    /// Portainer's stack type: 1 Swarm, 2 compose, 3 Kubernetes (portainer.go `StackType`).
    pub kind: u8,
}

#[derive(Debug, Clone)]
pub struct PortainerState {
    pub admin: Option<(String, String)>,
    pub api_keys: Vec<String>,
    /// id -> (name, URL, EndpointType).
    pub endpoints: BTreeMap<u64, (String, String, u8)>,
    pub stacks: BTreeMap<u64, FakeStack>,
    /// Agents (by URL) that do not answer Portainer's ping yet: how many more pings fail.
    pub agents_down: BTreeMap<String, usize>,
    /// Agents (by URL) that answer but were paired with another Portainer server.
    pub agents_paired_elsewhere: BTreeSet<String>,
    /// Compose projects running on an environment outside Portainer (containers labelled
    /// `com.docker.compose.project`).
    pub foreign_projects: BTreeMap<u64, BTreeSet<String>>,
    /// When set, a compose deploy fails with this output (an image that cannot be pulled).
    pub deploy_failure: Option<String>,
    /// Deploys run (creations and updates that reached `docker compose up`).
    pub deploys: usize,
    /// When the server started, and whether it disabled itself for want of an administrator.
    pub started: Instant,
    pub disabled: bool,
    next_id: u64,
    pub writes: usize,
}

impl Default for PortainerState {
    fn default() -> PortainerState {
        PortainerState {
            admin: None,
            api_keys: Vec::new(),
            endpoints: BTreeMap::new(),
            stacks: BTreeMap::new(),
            agents_down: BTreeMap::new(),
            agents_paired_elsewhere: BTreeSet::new(),
            foreign_projects: BTreeMap::new(),
            deploy_failure: None,
            deploys: 0,
            started: Instant::now(),
            disabled: false,
            next_id: 1,
            writes: 0,
        }
    }
}

impl PortainerState {
    fn next(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// The instance turns itself off for the first administrator when none was created within
    /// [`routes::ADMIN_INIT_TIMEOUT`] of its start, and stays so until restarted.
    fn check_admin_window(&mut self) {
        if self.admin.is_none() && self.started.elapsed() > routes::ADMIN_INIT_TIMEOUT {
            self.disabled = true;
        }
    }
}

pub struct FakePortainer {
    pub server: FakeServer,
    pub state: Arc<Mutex<PortainerState>>,
}

impl FakePortainer {
    /// A fresh Portainer (no administrator); `api_key`, when given, is already valid.
    pub async fn start(api_key: Option<&str>) -> FakePortainer {
        let mut state = PortainerState::default();
        if let Some(key) = api_key {
            state.admin = Some(("admin".into(), "preexisting-password".into()));
            state.api_keys.push(key.to_string());
        }
        let state = Arc::new(Mutex::new(state));
        let shared = state.clone();
        let handler = sync_handler(move |call: &Call| {
            let mut state = shared.lock().unwrap_or_else(|p| p.into_inner());
            let answer = routes::dispatch(&mut state, call);
            // Logging in changes nothing.
            if call.method != "GET" && call.path != "/api/auth" && (200..300).contains(&answer.status) {
                state.writes += 1;
            }
            answer
        });
        FakePortainer { server: FakeServer::start("portainer", handler).await, state }
    }

    /// Adds a compose stack phoenix did not create (a name it must leave alone).
    pub fn add_foreign_stack(&self, name: &str, endpoint_id: u64, file: &str) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let id = state.next();
        state.stacks.insert(id, FakeStack { id, name: name.into(), endpoint_id, env: json!([]), file: file.into(), kind: 2 });
    }

    /// As if the server had started `ago` before now (the first-administrator window).
    pub fn started_ago(&self, ago: Duration) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.started = Instant::now().checked_sub(ago).unwrap_or(state.started);
    }
}
