//! The handlers of [`super::routes::ROUTES`], one per Portainer handler file (named in the
//! table), with its validation order, messages and status codes. What each keeps when it
//! fails follows the handler: nothing, unless the handler saved before the failing call.

use super::routes::{has_jwt, message, Request, JWT, RELEASE};
use super::{FakeStack, PortainerState};
use crate::server::{Answer, Call};
use serde_json::{json, Value};
use std::collections::BTreeMap;

const NO_ENDPOINT: &str = "Unable to find an environment with the specified identifier inside the database";
const NO_STACK: &str = "Unable to find a stack with the specified identifier inside the database";

fn bad_request(text: &str) -> Answer {
    message(400, "Invalid request payload", text)
}

pub fn status(_: &mut PortainerState, _: &Request) -> Answer {
    Answer::json(200, json!({ "Version": RELEASE, "InstanceID": "phoenix-sim" }))
}

/// users/admin_check.go: 204 when an administrator exists, else 404.
pub fn admin_check(state: &mut PortainerState, _: &Request) -> Answer {
    match state.admin {
        Some(_) => Answer::empty(204),
        None => message(404, "Administrator not initialized", "No administrator account found inside the database"),
    }
}

/// users/admin_init.go: the payload's username and password, the password strength checker
/// (12 characters by default), and 409 once an administrator exists.
pub fn admin_init(state: &mut PortainerState, request: &Request) -> Answer {
    let (Some(user), Some(password)) = (request.text("Username"), request.text("Password")) else {
        return bad_request("Invalid administrator username or password");
    };
    if user.trim().is_empty() {
        return bad_request("Invalid administrator username");
    }
    if user.chars().any(char::is_whitespace) {
        return bad_request("Invalid username. Must not contain any whitespace");
    }
    if state.admin.is_some() {
        return message(409, "Unable to create administrator user", "An administrator user already exists");
    }
    if password.chars().count() < 12 {
        return message(400, "Password does not meet the requirements", "Password does not meet the requirements");
    }
    state.admin = Some((user.into(), password.into()));
    Answer::json(200, json!({ "Id": 1, "Username": user, "Role": 1 }))
}

/// auth/authenticate.go: 422 for wrong credentials.
pub fn authenticate(state: &mut PortainerState, request: &Request) -> Answer {
    let (Some(user), Some(password)) = (request.text("Username"), request.text("Password")) else {
        return bad_request("Invalid username or password");
    };
    match &state.admin {
        Some((u, p)) if u == user && p == password => Answer::json(200, json!({ "jwt": JWT })),
        _ => message(422, "Invalid credentials", "Unauthorized"),
    }
}

pub fn user_list(state: &mut PortainerState, _: &Request) -> Answer {
    let name = state.admin.as_ref().map(|(user, _)| user.clone()).unwrap_or_default();
    Answer::json(200, json!([{ "Id": 1, "Username": name, "Role": 1 }]))
}

/// users/user_create_access_token.go: with a JWT (the route refuses an API key), for the
/// calling user only, a description and the user's current password; 201 Created.
pub fn create_access_token(state: &mut PortainerState, request: &Request) -> Answer {
    let password = request.text("password").unwrap_or_default();
    let description = request.text("description").unwrap_or_default();
    if password.is_empty() {
        return bad_request("invalid password: cannot be empty");
    }
    if description.trim().is_empty() {
        return bad_request("invalid description: cannot be empty");
    }
    if description.chars().count() > 128 {
        return bad_request("invalid description: cannot be longer than 128 characters");
    }
    if request.param("id") != "1" || !has_jwt(state, request.call) {
        return message(403, "Permission denied to create user access token", "Permission denied");
    }
    if state.admin.as_ref().is_none_or(|(_, p)| p != password) {
        return message(403, "Current password doesn't match", "Current password does not match the password provided");
    }
    let key = format!("ptr_fake{}", state.api_keys.len() + 1);
    state.api_keys.push(key.clone());
    Answer::json(201, json!({ "rawAPIKey": key, "apiKey": { "id": state.api_keys.len(), "description": description } }))
}

pub fn endpoint_list(state: &mut PortainerState, _: &Request) -> Answer {
    let list = state.endpoints.iter().map(|(id, (name, url, kind))| json!({ "Id": id, "Name": name, "URL": url, "Type": kind }));
    Answer::json(200, Value::Array(list.collect()))
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

/// endpoints/endpoint_create.go: a multipart form; the name must be unique (409); an agent
/// (EndpointCreationType 2) is asked its version and platform before anything is kept (500
/// when it does not answer), and becomes EndpointType 2 (AgentOnDockerEnvironment).
pub fn endpoint_create(state: &mut PortainerState, request: &Request) -> Answer {
    let Some(fields) = multipart_fields(request.call) else { return bad_request("request Content-Type isn't multipart/form-data") };
    let Some(name) = fields.get("Name").filter(|n| !n.trim().is_empty()) else { return bad_request("invalid environment name") };
    let Some(kind) = fields.get("EndpointCreationType").and_then(|k| k.parse::<u8>().ok()).filter(|k| (1..=7).contains(k)) else {
        return bad_request("Invalid environment type value. Value must be one of: 1 (Docker environment), 2 (Agent environment), ...");
    };
    // No format check on an agent's URL: one the ping cannot reach fails there, with 500.
    let url = fields.get("URL").cloned().unwrap_or_default();
    if state.endpoints.values().any(|(n, _, _)| n == name) {
        return message(409, "Name is not unique", "Name is not unique");
    }
    if kind == 2 {
        if !url.starts_with("tcp://") {
            return message(500, "Unable to get environment type", &format!("parse \"{url}\": missing protocol scheme"));
        }
        if let Some(failing) = state.agents_down.get_mut(&url).filter(|left| **left > 0) {
            *failing -= 1;
            let host = url.trim_start_matches("tcp://");
            return message(
                500,
                "Unable to get environment type",
                &format!("Get \"https://{host}/ping\": dial tcp {host}: connect: connection refused"),
            );
        }
        // snapshotAndPersistEndpoint: an agent keyed to another server refuses the snapshot.
        if state.agents_paired_elsewhere.contains(&url) {
            return message(
                500,
                "Unable to initiate communications with environment",
                "agent already paired with another Portainer instance",
            );
        }
    }
    let id = state.next();
    state.endpoints.insert(id, (name.clone(), url.clone(), kind));
    Answer::json(200, json!({ "Id": id, "Name": name, "URL": url, "Type": kind }))
}

/// endpoints/endpoint_update.go: JSON; the URL changes when given.
pub fn endpoint_update(state: &mut PortainerState, request: &Request) -> Answer {
    let url = request.text("URL").map(str::to_string);
    let Some(endpoint) = request.param("id").parse::<u64>().ok().and_then(|id| state.endpoints.get_mut(&id)) else {
        return message(404, NO_ENDPOINT, "Object not found inside the database");
    };
    if let Some(url) = url {
        endpoint.1 = url;
    }
    Answer::json(200, json!({ "Name": endpoint.0, "URL": endpoint.1 }))
}

/// The Docker API through Portainer's proxy: one container per compose stack deployed on the
/// environment and per project started outside Portainer, each with its project label.
pub fn containers(state: &mut PortainerState, request: &Request) -> Answer {
    let Some(id) = request.param("id").parse::<u64>().ok().filter(|id| state.endpoints.contains_key(id)) else {
        return message(404, NO_ENDPOINT, "Object not found inside the database");
    };
    let deployed = state.stacks.values().filter(|s| s.endpoint_id == id && s.kind == 2).map(|s| s.name.clone());
    let foreign = state.foreign_projects.get(&id).into_iter().flatten().cloned();
    let list = deployed.chain(foreign).map(
        |project| json!({ "Id": project, "Names": [format!("/{project}-app-1")], "Labels": { "com.docker.compose.project": project } }),
    );
    Answer::json(200, Value::Array(list.collect()))
}

/// stacks/stack_list.go: every stack type; `filters` may name an `EndpointID`.
pub fn stack_list(state: &mut PortainerState, request: &Request) -> Answer {
    let filters: Value = request.call.query("filters").and_then(|f| serde_json::from_str(f).ok()).unwrap_or(Value::Null);
    let endpoint = filters.get("EndpointID").and_then(Value::as_u64);
    let list = state
        .stacks
        .values()
        .filter(|s| endpoint.is_none_or(|e| e == s.endpoint_id))
        .map(|s| json!({ "Id": s.id, "Name": s.name, "EndpointId": s.endpoint_id, "Env": s.env, "Type": s.kind, "Status": 1 }));
    Answer::json(200, Value::Array(list.collect()))
}

pub fn stack_file(state: &mut PortainerState, request: &Request) -> Answer {
    match request.param("id").parse::<u64>().ok().and_then(|id| state.stacks.get(&id)) {
        Some(stack) => Answer::json(200, json!({ "StackFileContent": stack.file })),
        None => message(404, NO_STACK, "Object not found inside the database"),
    }
}

/// `ComposeStackManager.NormalizeStackName`: lowercase, only `[-_a-z0-9]`.
fn normalize_stack_name(name: &str) -> String {
    name.to_lowercase().chars().filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_').collect()
}

/// `checkUniqueStackNameInDocker`: no stack of that name (any case) on the environment, and no
/// container there carrying it as its compose project.
fn name_taken(state: &PortainerState, endpoint_id: u64, name: &str, except: u64) -> bool {
    state.stacks.values().any(|s| s.endpoint_id == endpoint_id && s.id != except && s.name.eq_ignore_ascii_case(name))
        || state.foreign_projects.get(&endpoint_id).is_some_and(|projects| projects.contains(name))
}

/// A compose deploy (`docker compose up`, image pulls included) inside the request.
fn deploy(state: &mut PortainerState) -> Result<(), Answer> {
    state.deploys += 1;
    match &state.deploy_failure {
        Some(output) => Err(message(500, output, output)),
        None => Ok(()),
    }
}

fn endpoint_param(request: &Request) -> Option<u64> {
    request.call.query("endpointId").and_then(|e| e.parse::<u64>().ok())
}

/// stacks/create_compose_stack.go (`createComposeStackFromFileContent`): `endpointId`
/// required, the name and file validated, the name normalised and unique on the environment
/// (409), then the deploy; the stack is kept only when the deploy succeeded.
pub fn create_compose_stack(state: &mut PortainerState, request: &Request) -> Answer {
    let Some(endpoint_id) = endpoint_param(request) else { return message(400, "Invalid query parameter: endpointId", "") };
    let Some(name) = request.text("name").filter(|n| !n.trim().is_empty()) else { return bad_request("Invalid stack name") };
    let Some(file) = request.text("stackFileContent").filter(|f| !f.trim().is_empty()) else {
        return bad_request("Invalid stack file content");
    };
    if !state.endpoints.contains_key(&endpoint_id) {
        return message(404, NO_ENDPOINT, "Object not found inside the database");
    }
    let name = normalize_stack_name(name);
    if name_taken(state, endpoint_id, &name, 0) {
        let text = format!("A stack with the normalized name '{name}' already exists");
        return message(409, &text, "A stack already exists with this name");
    }
    if let Err(failed) = deploy(state) {
        return failed;
    }
    let id = state.next();
    let env = request.body.get("env").cloned().unwrap_or(json!([]));
    state.stacks.insert(id, FakeStack { id, name: name.clone(), endpoint_id, env, file: file.into(), kind: 2 });
    Answer::json(200, json!({ "Id": id, "Name": name, "EndpointId": endpoint_id, "Type": 2 }))
}

/// stacks/stack_update.go (`stackUpdate`, the libhttp-in-pkg era of 2.20+): `endpointId` is a
/// required query parameter (`RetrieveNumericQueryParameter(r, "endpointId", false)`: 400
/// without it), and when it differs from the stack's it re-associates the stack (a work-around
/// the handler keeps for stacks of old versions); an unknown one is 404. The file is replaced,
/// the deploy runs, and on failure the file is rolled back and nothing is kept. `prune` is read
/// for Swarm stacks only.
pub fn stack_update(state: &mut PortainerState, request: &Request) -> Answer {
    let Some(id) = request.param("id").parse::<u64>().ok().filter(|id| state.stacks.contains_key(id)) else {
        return message(404, NO_STACK, "Object not found inside the database");
    };
    let Some(endpoint_id) = endpoint_param(request) else { return message(400, "Invalid query parameter: endpointId", "") };
    if !state.endpoints.contains_key(&endpoint_id) {
        return message(
            404,
            "Unable to find the environment associated to the stack inside the database",
            "Object not found inside the database",
        );
    }
    let Some(file) = request.text("stackFileContent").filter(|f| !f.trim().is_empty()) else {
        return bad_request("Invalid stack file content");
    };
    if let Err(failed) = deploy(state) {
        return failed;
    }
    let env = request.body.get("env").cloned().unwrap_or(json!([]));
    let Some(stack) = state.stacks.get_mut(&id) else { return message(404, NO_STACK, "") };
    (stack.endpoint_id, stack.file, stack.env) = (endpoint_id, file.to_string(), env);
    Answer::json(200, json!({ "Id": id, "Name": stack.name, "EndpointId": endpoint_id }))
}
