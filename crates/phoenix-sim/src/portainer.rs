//! A fake Portainer API. What it refuses, as Portainer does (api/http/handler/*, issues cited):
//! - any authenticated route without a valid `X-API-Key` (or Bearer JWT for the token route): 401;
//! - `POST /api/users/admin/init` when an administrator exists: 409; a password under 12
//!   characters: 400;
//! - `POST /api/endpoints` with anything but multipart form data (the handler reads a form,
//!   portainer docs "Create a new environment"): 400 "Invalid request payload";
//! - an agent environment (EndpointCreationType 2) without a tcp:// URL: 400;
//! - `POST /api/stacks/create/standalone/string` without `endpointId`, with an unknown
//!   environment, without a name or file, or with a name already used on that environment: 400
//!   / 404 / 409 ("A stack with the normalized name ... already exists");
//! - `PUT /api/stacks/{id}` without `endpointId`: 400 "Unable to find the environment
//!   associated to the stack inside the database" (portainer #8584, #9210).

use crate::server::{sync_handler, Answer, Call, FakeServer};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, PartialEq)]
pub struct FakeStack {
    pub id: u64,
    pub name: String,
    pub endpoint_id: u64,
    pub env: Value,
    pub file: String,
}

#[derive(Debug, Clone, Default)]
pub struct PortainerState {
    pub admin: Option<(String, String)>,
    pub api_keys: Vec<String>,
    pub endpoints: BTreeMap<u64, (String, String, u8)>,
    pub stacks: BTreeMap<u64, FakeStack>,
    next_id: u64,
    pub writes: usize,
}

pub struct FakePortainer {
    pub server: FakeServer,
    pub state: Arc<Mutex<PortainerState>>,
}

const JWT: &str = "fake-jwt-for-tests";

impl FakePortainer {
    /// A fresh Portainer (no administrator); `api_key`, when given, is already valid.
    pub async fn start(api_key: Option<&str>) -> FakePortainer {
        let mut state = PortainerState { next_id: 1, ..PortainerState::default() };
        if let Some(key) = api_key {
            state.admin = Some(("admin".into(), "preexisting-password".into()));
            state.api_keys.push(key.to_string());
        }
        let state = Arc::new(Mutex::new(state));
        let shared = state.clone();
        let handler = sync_handler(move |call: &Call| {
            let mut state = shared.lock().unwrap();
            let answer = handle(&mut state, call);
            // Logging in changes nothing.
            if call.method != "GET" && call.path != "/api/auth" && (200..300).contains(&answer.status) {
                state.writes += 1;
            }
            answer
        });
        FakePortainer { server: FakeServer::start("portainer", handler).await, state }
    }

    /// Adds a stack phoenix did not create (a name it must leave alone).
    pub fn add_foreign_stack(&self, name: &str, endpoint_id: u64, file: &str) {
        let mut state = self.state.lock().unwrap();
        let id = state.next();
        state.stacks.insert(id, FakeStack { id, name: name.into(), endpoint_id, env: json!([]), file: file.into() });
    }
}

impl PortainerState {
    fn next(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }
}

fn message(status: u16, text: &str) -> Answer {
    Answer::json(status, json!({ "message": text, "details": text }))
}

/// An API key Portainer issued, or the administrator's JWT (the bouncer takes either for
/// restricted routes).
fn authenticated(state: &PortainerState, call: &Call) -> bool {
    call.header("x-api-key").is_some_and(|k| state.api_keys.iter().any(|known| known == k)) || has_jwt(state, call)
}

fn has_jwt(state: &PortainerState, call: &Call) -> bool {
    state.admin.is_some() && call.header("authorization") == Some(&format!("Bearer {JWT}"))
}

/// Multipart fields (name -> text), or `None` when the body is not multipart form data.
fn multipart_fields(call: &Call) -> Option<BTreeMap<String, String>> {
    let boundary = call.header("content-type")?.strip_prefix("multipart/form-data; boundary=")?.trim_matches('"').to_string();
    let body = String::from_utf8_lossy(&call.body).into_owned();
    let mut fields = BTreeMap::new();
    for part in body.split(&format!("--{boundary}")) {
        let Some((head, value)) = part.split_once("\r\n\r\n") else { continue };
        let Some(name) = head.split("name=\"").nth(1).and_then(|r| r.split('"').next()) else { continue };
        fields.insert(name.to_string(), value.trim_end_matches("\r\n").to_string());
    }
    Some(fields)
}

fn handle(state: &mut PortainerState, call: &Call) -> Answer {
    let segments: Vec<&str> = call.path.trim_matches('/').split('/').collect();
    let body: Value = serde_json::from_slice(&call.body).unwrap_or(Value::Null);
    match (call.method.as_str(), segments.as_slice()) {
        ("GET", ["api", "users", "admin", "check"]) => match state.admin {
            Some(_) => Answer { status: 204, reason: None, body: String::new() },
            None => message(404, "No administrator account found inside the database"),
        },
        ("POST", ["api", "users", "admin", "init"]) => {
            if state.admin.is_some() {
                return message(409, "Unable to create administrator user: an administrator user already exists");
            }
            let (Some(user), Some(password)) = (body.get("Username").and_then(Value::as_str), body.get("Password").and_then(Value::as_str))
            else {
                return message(400, "Invalid request payload");
            };
            if password.len() < 12 {
                return message(400, "Password does not meet the requirements");
            }
            state.admin = Some((user.into(), password.into()));
            Answer::json(200, json!({ "Id": 1, "Username": user, "Role": 1 }))
        }
        ("POST", ["api", "auth"]) => {
            match (&state.admin, body.get("Username").and_then(Value::as_str), body.get("Password").and_then(Value::as_str)) {
                (Some((user, password)), Some(u), Some(p)) if user == u && password == p => Answer::json(200, json!({ "jwt": JWT })),
                _ => message(422, "Invalid credentials"),
            }
        }
        // users/user_create_access_token.go: a JWT only (not an API key), a description, and
        // only for the calling user (the administrator is user 1); 201 Created.
        ("POST", ["api", "users", id, "tokens"]) => {
            if !has_jwt(state, call) {
                return message(401, "Auth not supported");
            }
            if body.get("description").and_then(Value::as_str).is_none_or(|d| d.trim().is_empty()) {
                return message(400, "Invalid request payload");
            }
            if *id != "1" {
                return message(403, "Permission denied to create user access token");
            }
            let key = format!("ptr_fake{}", state.api_keys.len() + 1);
            state.api_keys.push(key.clone());
            Answer::json(201, json!({ "rawAPIKey": key, "apiKey": { "id": state.api_keys.len(), "description": "phoenix" } }))
        }
        // users/user_list.go: the administrator sees every user.
        ("GET", ["api", "users"]) if has_jwt(state, call) => {
            let name = state.admin.as_ref().map(|(user, _)| user.clone()).unwrap_or_default();
            Answer::json(200, json!([{ "Id": 1, "Username": name, "Role": 1 }]))
        }
        _ if !authenticated(state, call) => message(401, "Unauthorized"),
        ("GET", ["api", "endpoints"]) => Answer::json(
            200,
            Value::Array(
                state.endpoints.iter().map(|(id, (name, url, kind))| json!({ "Id": id, "Name": name, "URL": url, "Type": kind })).collect(),
            ),
        ),
        ("POST", ["api", "endpoints"]) => create_endpoint(state, call),
        ("PUT", ["api", "endpoints", id]) => match id.parse::<u64>().ok().and_then(|id| state.endpoints.get_mut(&id)) {
            Some(endpoint) => {
                if let Some(url) = body.get("URL").and_then(Value::as_str) {
                    endpoint.1 = url.to_string();
                }
                Answer::json(200, json!({}))
            }
            None => message(404, "Unable to find an environment with the specified identifier inside the database"),
        },
        ("GET", ["api", "stacks"]) => Answer::json(
            200,
            Value::Array(
                state
                    .stacks
                    .values()
                    .map(|s| json!({ "Id": s.id, "Name": s.name, "EndpointId": s.endpoint_id, "Env": s.env, "Type": 2 }))
                    .collect(),
            ),
        ),
        ("GET", ["api", "stacks", id, "file"]) => match id.parse::<u64>().ok().and_then(|id| state.stacks.get(&id)) {
            Some(stack) => Answer::json(200, json!({ "StackFileContent": stack.file })),
            None => message(404, "Unable to find a stack with the specified identifier inside the database"),
        },
        ("POST", ["api", "stacks", "create", "standalone", "string"]) => create_stack(state, call, &body),
        ("PUT", ["api", "stacks", id]) => update_stack(state, call, id, &body),
        _ => message(404, "Not found"),
    }
}

fn create_endpoint(state: &mut PortainerState, call: &Call) -> Answer {
    let Some(fields) = multipart_fields(call) else { return message(400, "Invalid request payload") };
    let (Some(name), Some(kind)) = (fields.get("Name"), fields.get("EndpointCreationType").and_then(|k| k.parse::<u8>().ok())) else {
        return message(400, "Invalid request payload");
    };
    let url = fields.get("URL").cloned().unwrap_or_default();
    if kind == 2 && !url.starts_with("tcp://") {
        return message(400, "Invalid environment URL");
    }
    if state.endpoints.values().any(|(n, _, _)| n == name) {
        return message(409, "Name is not unique");
    }
    let id = state.next();
    state.endpoints.insert(id, (name.clone(), url.clone(), kind));
    Answer::json(200, json!({ "Id": id, "Name": name, "URL": url }))
}

fn create_stack(state: &mut PortainerState, call: &Call, body: &Value) -> Answer {
    let Some(endpoint_id) = call.query("endpointId").and_then(|e| e.parse::<u64>().ok()) else {
        return message(400, "Invalid query parameter: endpointId");
    };
    if !state.endpoints.contains_key(&endpoint_id) {
        return message(404, "Unable to find an environment with the specified identifier inside the database");
    }
    let (Some(name), Some(file)) = (body.get("name").and_then(Value::as_str), body.get("stackFileContent").and_then(Value::as_str)) else {
        return message(400, "Invalid request payload");
    };
    if state.stacks.values().any(|s| s.endpoint_id == endpoint_id && s.name == name) {
        return message(409, &format!("A stack with the normalized name '{name}' already exists"));
    }
    let id = state.next();
    let env = body.get("env").cloned().unwrap_or(json!([]));
    state.stacks.insert(id, FakeStack { id, name: name.into(), endpoint_id, env, file: file.into() });
    Answer::json(200, json!({ "Id": id, "Name": name }))
}

fn update_stack(state: &mut PortainerState, call: &Call, id: &str, body: &Value) -> Answer {
    let Some(endpoint_id) = call.query("endpointId").and_then(|e| e.parse::<u64>().ok()) else {
        return message(400, "Unable to find the environment associated to the stack inside the database");
    };
    let Some(stack) = id.parse::<u64>().ok().and_then(|id| state.stacks.get_mut(&id)) else {
        return message(404, "Unable to find a stack with the specified identifier inside the database");
    };
    if stack.endpoint_id != endpoint_id {
        return message(400, "Unable to find the environment associated to the stack inside the database");
    }
    let Some(file) = body.get("stackFileContent").and_then(Value::as_str) else { return message(400, "Invalid stack file content") };
    stack.file = file.to_string();
    stack.env = body.get("env").cloned().unwrap_or(json!([]));
    Answer::json(200, json!({ "Id": stack.id }))
}
