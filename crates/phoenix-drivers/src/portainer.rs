//! The Portainer API. Requests carry the API key in `X-API-Key`. On a fresh Portainer phoenix
//! bootstraps once: `POST /api/users/admin/init`, `POST /api/auth` for a JWT, then `POST
//! /api/users/{id}/tokens` for an API key, which is kept (mode 0600) outside the configuration.
//! Agent environments are created with multipart form data (`POST /api/endpoints`,
//! EndpointCreationType 2); standalone stacks with `POST /api/stacks/create/standalone/string
//! ?endpointId=N` and updated with `PUT /api/stacks/{id}?endpointId=N` (without endpointId
//! Portainer cannot find the stack's environment: portainer #8584, #9210). Reads and
//! environment updates are retried on 5xx and connection failures; creations are not (they
//! are not idempotent), nor are stack deploys, which answer only when the containers run and
//! get their own timeout: one cut by it is observed by the next run, never sent again blindly.

use crate::http::{self, Backoff, Trust};
use phoenix_core::plan::portainer::{EndpointObserved, EnvVar, Operation, StackObserved};
use phoenix_exec::sync::PortainerApi;
use phoenix_exec::DriverError;
use phoenix_model::secret::Secret;
use reqwest::{Method, RequestBuilder};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct PortainerSettings {
    /// e.g. `https://10.0.0.111:9443`.
    pub url: String,
    pub trust: Trust,
    /// The API key, when given (PHOENIX_PORTAINER_API_KEY); otherwise read from `key_file`.
    pub api_key: Option<Secret>,
    /// Where the key phoenix bootstrapped is kept.
    pub key_file: PathBuf,
    pub admin_user: String,
    /// Needed only to bootstrap a fresh Portainer (PHOENIX_PORTAINER_ADMIN_PASSWORD).
    pub admin_password: Option<Secret>,
    pub timeout: Duration,
    /// For stack creations and updates, which answer only when deployed.
    pub deploy_timeout: Duration,
    /// How long an agent environment's creation waits for Portainer to reach the agent.
    pub agent_wait: Duration,
    pub backoff: Backoff,
}

pub struct PortainerClient {
    http: reqwest::Client,
    settings: PortainerSettings,
    key: Mutex<Option<Secret>>,
    /// The administrator's session when phoenix has no API key for a Portainer that has an
    /// administrator (a bootstrap interrupted before the key was kept): reads and writes go with
    /// it, and the first change creates and keeps the key.
    session: Mutex<Option<Secret>>,
}

/// Portainer's stack type of a standalone docker-compose stack (portainer.go `DockerComposeStack`).
const COMPOSE_STACK: u64 = 2;

/// Portainer's words when it cannot reach an agent it is asked to add
/// (endpoints/endpoint_create.go: `agent.GetAgentVersionAndPlatform`, then the first snapshot
/// in `snapshotAndPersistEndpoint`; the environment is saved only after both).
const AGENT_UNREACHED: [&str; 2] = ["Unable to get environment type", "Unable to initiate communications with environment"];

/// How a request may be sent: an idempotent one again after a 5xx or a connection failure;
/// a change once; a deploy once, with the deploy timeout (Portainer pulls images and starts
/// the containers before it answers: stacks/create_compose_stack.go, stack_update.go).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Idempotent,
    Once,
    Deploy,
}

fn error(what: &str, message: impl std::fmt::Display) -> DriverError {
    DriverError::new(format!("{what}: {message}"))
}

impl PortainerClient {
    pub fn new(settings: PortainerSettings) -> Result<PortainerClient, DriverError> {
        http::require_https(&settings.url, "the Portainer")?;
        let key = settings.api_key.clone().or_else(|| std::fs::read_to_string(&settings.key_file).ok().map(|k| Secret::new(k.trim())));
        let http = http::client(&settings.trust, settings.timeout)?;
        Ok(PortainerClient { http, settings, key: Mutex::new(key), session: Mutex::new(None) })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.settings.url.trim_end_matches('/'))
    }

    fn key(&self) -> Option<Secret> {
        self.key.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn session(&self) -> Option<Secret> {
        self.session.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn no_key(&self) -> DriverError {
        DriverError::new(format!(
            "no Portainer API key: set PHOENIX_PORTAINER_API_KEY, give the administrator's password (PHOENIX_PORTAINER_ADMIN_PASSWORD or \
             portainer_api.admin_password) so phoenix logs in and creates one, or let phoenix bootstrap a fresh Portainer (key kept in {})",
            self.settings.key_file.display()
        ))
    }

    /// Sends the request `make` builds (again on each attempt when idempotent) and returns the JSON answer.
    async fn send(&self, what: &str, kind: Kind, make: impl Fn() -> Result<RequestBuilder, DriverError>) -> Result<Value, DriverError> {
        let (status, body) = self.answer(what, kind, make).await?;
        if status.is_success() {
            return Ok(serde_json::from_str(&body).unwrap_or(Value::Null));
        }
        Err(error(what, refusal(status, &body)))
    }

    /// The final status and body of the request `make` builds: sent again (when idempotent)
    /// after a connection failure or a 5xx, up to the backoff's attempts.
    async fn answer(
        &self,
        what: &str,
        kind: Kind,
        make: impl Fn() -> Result<RequestBuilder, DriverError>,
    ) -> Result<(reqwest::StatusCode, String), DriverError> {
        let attempts = if kind == Kind::Idempotent { self.settings.backoff.attempts.max(1) } else { 1 };
        let mut last = None;
        for attempt in 0..attempts {
            if attempt > 0 {
                tokio::time::sleep(self.settings.backoff.delay(attempt - 1)).await;
            }
            let request = match kind {
                Kind::Deploy => make()?.timeout(self.settings.deploy_timeout),
                _ => make()?,
            };
            let response = match request.send().await {
                Ok(response) => response,
                Err(e) if http::is_tls_refusal(&e) => return Err(error(what, format!("TLS refused: {}", http::with_causes(&e)))),
                Err(e) if e.is_timeout() && kind == Kind::Deploy => return Err(error(what, self.deploy_cut())),
                Err(e) => {
                    last = Some(Err(http::with_causes(&e)));
                    continue;
                }
            };
            let status = response.status();
            if status == reqwest::StatusCode::SEE_OTHER {
                let reason = response.headers().get("redirect-reason").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
                return Err(error(what, redirected(&reason)));
            }
            let body = response.text().await.unwrap_or_default();
            if !status.is_server_error() {
                return Ok((status, body));
            }
            last = Some(Ok((status, body)));
        }
        match last {
            Some(Ok(answer)) => Ok(answer),
            Some(Err(cause)) => Err(error(what, cause)),
            None => Err(error(what, "no attempt was made")),
        }
    }

    /// Creates an environment. Portainer pings an agent before it keeps the environment
    /// (endpoints/endpoint_create.go: `GetAgentVersionAndPlatform`, then a snapshot; nothing is
    /// saved when either fails), so while the agent does not answer the creation is sent again,
    /// every few seconds for at most `agent_wait`, and then refused with the reason.
    async fn create_endpoint(
        &self,
        name: &str,
        url: &str,
        agent: bool,
        make: impl Fn() -> Result<RequestBuilder, DriverError>,
    ) -> Result<(), DriverError> {
        let what = "creating an environment";
        let started = std::time::Instant::now();
        let every = (self.settings.agent_wait / 10).clamp(Duration::from_millis(50), Duration::from_secs(5));
        // Bounded in time and, should the clock stall, in count.
        for _ in 0..=100 {
            let (status, body) = self.answer(what, Kind::Once, &make).await?;
            if status.is_success() {
                return Ok(());
            }
            // An agent paired with another Portainer answers, but refuses this one: waiting
            // does not help (endpoint_create.go turns "Invalid request signature" into it).
            let paired_elsewhere = body.contains("already paired with another Portainer instance");
            let unanswered = agent && status.as_u16() == 500 && !paired_elsewhere && AGENT_UNREACHED.iter().any(|m| body.contains(m));
            if paired_elsewhere {
                return Err(error(
                    what,
                    format!(
                        "{}: the agent of {name} keeps the key of the Portainer server it first met; remove its data volume \
                         (or give it this server's AGENT_SECRET) and restart it",
                        refusal(status, &body)
                    ),
                ));
            }
            if !unanswered {
                return Err(error(what, refusal(status, &body)));
            }
            if started.elapsed() + every > self.settings.agent_wait {
                return Err(error(
                    what,
                    format!(
                        "the Portainer server did not reach the agent of {name} at {url} within {} s ({}): start the agent on {name} \
                         and let the Portainer server through the firewall to its port",
                        self.settings.agent_wait.as_secs(),
                        refusal(status, &body)
                    ),
                ));
            }
            tokio::time::sleep(every).await;
        }
        Err(error(what, "the agent did not answer"))
    }

    /// The compose projects of an environment's containers, through Portainer's Docker proxy;
    /// `None` when the environment does not answer (its stacks then fail on their own).
    async fn projects(&self, endpoint: u64) -> Option<std::collections::BTreeSet<String>> {
        let path = format!("/api/endpoints/{endpoint}/docker/containers/json?all=1");
        let list = self.send("listing containers", Kind::Idempotent, || self.authed(Method::GET, &path)).await.ok()?;
        let labels = list.as_array()?.iter().filter_map(|c| c.get("Labels")?.get("com.docker.compose.project")?.as_str());
        Some(labels.map(str::to_string).collect())
    }

    /// Why a deploy that did not answer in time is not sent again.
    fn deploy_cut(&self) -> String {
        format!(
            "no answer within {} s; Portainer deploys inside the request (image pulls included) and may still be at it. \
             phoenix does not send it again: the next run observes the stack and updates or leaves it",
            self.settings.deploy_timeout.as_secs()
        )
    }

    /// A request with the API key, or else the administrator's session.
    fn authed(&self, method: Method, path: &str) -> Result<RequestBuilder, DriverError> {
        let request = self.http.request(method, self.url(path));
        match (self.key(), self.session()) {
            (Some(key), _) => Ok(request.header("X-API-Key", key.expose())),
            (None, Some(jwt)) => Ok(request.bearer_auth(jwt.expose())),
            (None, None) => Err(self.no_key()),
        }
    }

    async fn endpoint_id(&self, name: &str) -> Result<u64, DriverError> {
        self.endpoints()
            .await?
            .into_iter()
            .find(|e| e.name == name)
            .map(|e| e.id)
            .ok_or_else(|| DriverError::new(format!("no Portainer environment named {name}")))
    }

    fn password(&self) -> Result<Secret, DriverError> {
        self.settings.admin_password.clone().ok_or_else(|| {
            DriverError::new(
                "Portainer has no administrator: set PHOENIX_PORTAINER_ADMIN_PASSWORD (12 characters or more) so phoenix can create it",
            )
        })
    }

    fn credentials(&self, password: &Secret) -> Value {
        json!({ "Username": self.settings.admin_user, "Password": password.expose() })
    }

    /// `POST /api/auth`: the administrator's JWT (not a change: a dry run may log in).
    async fn log_in(&self, password: &Secret) -> Result<Secret, DriverError> {
        let credentials = self.credentials(password);
        let auth = self.send("logging in", Kind::Idempotent, || Ok(self.http.post(self.url("/api/auth")).json(&credentials))).await?;
        let jwt = auth.get("jwt").and_then(Value::as_str).ok_or_else(|| DriverError::new("logging in: no jwt in the answer"))?;
        Ok(Secret::new(jwt))
    }

    async fn bootstrap(&self) -> Result<(), DriverError> {
        let password = self.password()?;
        let credentials = self.credentials(&password);
        self.send("creating the administrator", Kind::Once, || Ok(self.http.post(self.url("/api/users/admin/init")).json(&credentials)))
            .await?;
        let jwt = self.log_in(&password).await?;
        self.create_key(&jwt, &password).await
    }

    /// Creates an API key for the administrator of session `jwt` and keeps it. Portainer lets a
    /// user create tokens only for itself, with a JWT (`api/http/handler/users/
    /// user_create_access_token.go`): the id is the administrator's, found in `GET /api/users`
    /// (`user_list.go`) by name.
    async fn create_key(&self, jwt: &Secret, password: &Secret) -> Result<(), DriverError> {
        let users =
            self.send("listing users", Kind::Idempotent, || Ok(self.http.get(self.url("/api/users")).bearer_auth(jwt.expose()))).await?;
        let id = users
            .as_array()
            .into_iter()
            .flatten()
            .find(|u| u.get("Username").and_then(Value::as_str) == Some(self.settings.admin_user.as_str()))
            .and_then(|u| u.get("Id")?.as_u64())
            .ok_or_else(|| DriverError::new(format!("creating an API key: Portainer has no user {}", self.settings.admin_user)))?;
        let body = json!({ "description": "phoenix", "password": password.expose() });
        let token = self
            .send("creating an API key", Kind::Once, || {
                Ok(self.http.post(self.url(&format!("/api/users/{id}/tokens"))).bearer_auth(jwt.expose()).json(&body))
            })
            .await?;
        let key = token
            .get("rawAPIKey")
            .and_then(Value::as_str)
            .ok_or_else(|| DriverError::new("creating an API key: no rawAPIKey in the answer"))?
            .to_string();
        crate::host::write_atomic(&self.settings.key_file, format!("{key}\n").as_bytes(), 0o600)
            .map_err(|e| DriverError::new(format!("cannot keep the API key in {}: {e}", self.settings.key_file.display())))?;
        *self.key.lock().unwrap_or_else(|p| p.into_inner()) = Some(Secret::new(key));
        Ok(())
    }

    /// Before a change made with the session only: create and keep the API key first.
    async fn key_before_change(&self) -> Result<(), DriverError> {
        if let (None, Some(jwt), Some(password)) = (self.key(), self.session(), self.settings.admin_password.clone()) {
            self.create_key(&jwt, &password).await?;
        }
        Ok(())
    }
}

/// Portainer's 303 (`api/adminmonitor/admin_monitor.go` `WithRedirect`): a fresh instance
/// that got no administrator within five minutes of its start refuses the API until restarted.
fn redirected(reason: &str) -> String {
    if reason == "AdminInitTimeout" {
        "Portainer turned its first-administrator setup off (303, redirect-reason AdminInitTimeout): no administrator was \
         created within 5 minutes of its start. Restart the Portainer server (`docker restart portainer` on its VM) and run \
         sync again within 5 minutes"
            .to_string()
    } else {
        format!("Portainer redirected the request (303, redirect-reason `{reason}`); phoenix does not follow redirects")
    }
}

/// Portainer's error answer, `{"message": "...", "details": "..."}`, as one line with its status.
fn refusal(status: reqwest::StatusCode, body: &str) -> String {
    let value: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let text = [value.get("message"), value.get("details")].into_iter().flatten().filter_map(Value::as_str).collect::<Vec<_>>().join(": ");
    format!("{status} {}", if text.is_empty() { body.trim() } else { &text })
}

fn env_json(env: &[EnvVar]) -> Value {
    Value::Array(env.iter().map(|v| json!({ "name": v.name, "value": v.value })).collect())
}

impl PortainerApi for PortainerClient {
    async fn initialized(&self) -> Result<bool, DriverError> {
        // 204: an administrator exists; 404: a fresh instance. Retried like any other GET.
        let what = "checking for an administrator";
        let (status, body) = self.answer(what, Kind::Idempotent, || Ok(self.http.get(self.url("/api/users/admin/check")))).await?;
        match status.as_u16() {
            200..=299 => {
                // An administrator but no key (a bootstrap cut after the administrator was
                // made): log in with the configured password, so the run can go on.
                if self.key().is_none() && self.session().is_none() {
                    if let Some(password) = self.settings.admin_password.clone() {
                        let jwt = self.log_in(&password).await?;
                        *self.session.lock().unwrap_or_else(|p| p.into_inner()) = Some(jwt);
                    }
                }
                Ok(true)
            }
            404 => Ok(false),
            _ => Err(error(what, refusal(status, &body))),
        }
    }

    async fn endpoints(&self) -> Result<Vec<EndpointObserved>, DriverError> {
        let list = self.send("listing environments", Kind::Idempotent, || self.authed(Method::GET, "/api/endpoints")).await?;
        let mut endpoints = Vec::new();
        for e in list.as_array().into_iter().flatten() {
            let (Some(id), Some(name), Some(url)) =
                (e.get("Id").and_then(Value::as_u64), e.get("Name").and_then(Value::as_str), e.get("URL").and_then(Value::as_str))
            else {
                continue;
            };
            let projects = self.projects(id).await;
            endpoints.push(EndpointObserved { id, name: name.to_string(), url: url.to_string(), projects });
        }
        Ok(endpoints)
    }

    async fn stacks(&self) -> Result<Vec<StackObserved>, DriverError> {
        let list = self.send("listing stacks", Kind::Idempotent, || self.authed(Method::GET, "/api/stacks")).await?;
        let mut stacks = Vec::new();
        // Every type of stack is listed (stacks/stack_list.go); phoenix deploys standalone
        // compose stacks only (Type 2; 1 is Swarm, 3 Kubernetes).
        for stack in list.as_array().into_iter().flatten().filter(|s| s.get("Type").and_then(Value::as_u64) == Some(COMPOSE_STACK)) {
            let (Some(id), Some(name), Some(endpoint_id)) = (
                stack.get("Id").and_then(Value::as_u64),
                stack.get("Name").and_then(Value::as_str),
                stack.get("EndpointId").and_then(Value::as_u64),
            ) else {
                continue;
            };
            let file =
                self.send("reading a stack file", Kind::Idempotent, || self.authed(Method::GET, &format!("/api/stacks/{id}/file"))).await?;
            let env = stack
                .get("Env")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|v| Some((v.get("name")?.as_str()?.to_string(), v.get("value")?.as_str().unwrap_or_default().to_string())))
                .collect();
            let file = file.get("StackFileContent").and_then(Value::as_str).unwrap_or_default().to_string();
            stacks.push(StackObserved { id, name: name.to_string(), endpoint_id, env, file });
        }
        Ok(stacks)
    }

    async fn apply(&self, operation: &Operation) -> Result<(), DriverError> {
        if !matches!(operation, Operation::Bootstrap) {
            self.key_before_change().await?;
        }
        match operation {
            Operation::Bootstrap => self.bootstrap().await,
            Operation::CreateEndpoint { name, url, creation_type } => {
                let form = || {
                    let mut form = reqwest::multipart::Form::new()
                        .text("Name", name.clone())
                        .text("EndpointCreationType", creation_type.to_string())
                        .text("URL", url.clone());
                    if *creation_type == phoenix_core::plan::portainer::AGENT {
                        // The agent serves a self-signed certificate (Portainer's documented agent setup).
                        form = form.text("TLS", "true").text("TLSSkipVerify", "true").text("TLSSkipClientVerify", "true");
                    }
                    form
                };
                self.create_endpoint(name, url, *creation_type == phoenix_core::plan::portainer::AGENT, || {
                    Ok(self.authed(Method::POST, "/api/endpoints")?.multipart(form()))
                })
                .await
            }
            Operation::UpdateEndpoint { id, url, .. } => {
                let body = json!({ "URL": url });
                self.send("updating an environment", Kind::Idempotent, || {
                    Ok(self.authed(Method::PUT, &format!("/api/endpoints/{id}"))?.json(&body))
                })
                .await
                .map(drop)
            }
            Operation::CreateStack { endpoint, name, content, env } => {
                let endpoint_id = self.endpoint_id(endpoint).await?;
                let body = json!({ "name": name, "stackFileContent": content, "env": env_json(env), "fromAppTemplate": false });
                let path = format!("/api/stacks/create/standalone/string?endpointId={endpoint_id}");
                self.send("creating a stack", Kind::Deploy, || Ok(self.authed(Method::POST, &path)?.json(&body))).await.map(drop)
            }
            Operation::UpdateStack { id, endpoint, content, env, .. } => {
                let endpoint_id = self.endpoint_id(endpoint).await?;
                // No `prune`: stack_update.go reads it for Swarm stacks only.
                let body = json!({ "stackFileContent": content, "env": env_json(env), "pullImage": true });
                let path = format!("/api/stacks/{id}?endpointId={endpoint_id}");
                self.send("updating a stack", Kind::Deploy, || Ok(self.authed(Method::PUT, &path)?.json(&body))).await.map(drop)
            }
        }
    }
}
