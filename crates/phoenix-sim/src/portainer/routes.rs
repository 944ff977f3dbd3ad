//! Portainer's routes as a table: method, path, who may call it, the handler, and the Go
//! handler file (github.com/portainer/portainer, `api/http/handler/`) whose payload,
//! validation and status codes the handler follows. The dispatcher also does what Portainer's
//! middleware does before any handler: the first-administrator timeout (`adminmonitor`) and
//! the bouncer's authentication (`api/http/security/bouncer.go`).

use super::handlers as h;
use super::PortainerState;
use crate::server::{Answer, Call};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// The version the fake reports (`/api/status`). The users run 2.20-2.23. The rows follow the
/// handler files as stored for portainer/portainer (read with the search tool; the stored
/// stacks/stack_update.go is an older release, whose endpointId work-around and
/// Swarm-only `Prune` the later releases keep) and the behaviours issue 18 names for
/// 2.20-2.23 (agent ping, synchronous deploys, the five-minute window, 201 tokens).
pub const RELEASE: &str = "2.21.5";

/// `api/adminmonitor/admin_monitor.go`: a fresh instance waits this long for its first
/// administrator, then refuses the API (`WithRedirect`) until it is restarted.
pub const ADMIN_INIT_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// Who may call a route (`api/http/security/bouncer.go`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// `PublicAccess`.
    Public,
    /// Authenticated, with a JWT only (an API key is refused).
    Jwt,
    /// `AuthenticatedAccess`/`RestrictedAccess`/`AdminAccess`: an API key or a JWT (phoenix
    /// is the administrator, so the role checks pass).
    Authenticated,
}

/// One request as a handler sees it: the call, the path's variables, the JSON body.
pub struct Request<'a> {
    pub call: &'a Call,
    pub params: BTreeMap<&'static str, &'a str>,
    pub body: Value,
}

impl Request<'_> {
    pub fn param(&self, name: &str) -> &str {
        self.params.get(name).copied().unwrap_or_default()
    }

    pub fn text(&self, field: &str) -> Option<&str> {
        self.body.get(field).and_then(Value::as_str)
    }
}

pub type HandlerFn = fn(&mut PortainerState, &Request) -> Answer;

pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
    pub handler: HandlerFn,
    /// The handler file under `api/http/handler/`.
    pub source: &'static str,
}

const fn route(method: &'static str, path: &'static str, access: Access, handler: HandlerFn, source: &'static str) -> Route {
    Route { method, path, access, handler, source }
}

use Access::{Authenticated, Jwt, Public};

pub const ROUTES: &[Route] = &[
    route("GET", "/api/status", Public, h::status, "status/status_inspect.go"),
    route("GET", "/api/system/status", Public, h::status, "system/status.go"),
    route("GET", "/api/users/admin/check", Public, h::admin_check, "users/admin_check.go"),
    route("POST", "/api/users/admin/init", Public, h::admin_init, "users/admin_init.go"),
    route("POST", "/api/auth", Public, h::authenticate, "auth/authenticate.go"),
    route("GET", "/api/users", Authenticated, h::user_list, "users/user_list.go"),
    route("POST", "/api/users/{id}/tokens", Jwt, h::create_access_token, "users/user_create_access_token.go"),
    route("GET", "/api/endpoints", Authenticated, h::endpoint_list, "endpoints/endpoint_list.go"),
    route("POST", "/api/endpoints", Authenticated, h::endpoint_create, "endpoints/endpoint_create.go"),
    route("PUT", "/api/endpoints/{id}", Authenticated, h::endpoint_update, "endpoints/endpoint_update.go"),
    route("GET", "/api/endpoints/{id}/docker/containers/json", Authenticated, h::containers, "docker/handler.go (the Docker API proxy)"),
    route("GET", "/api/stacks", Authenticated, h::stack_list, "stacks/stack_list.go"),
    route("GET", "/api/stacks/{id}/file", Authenticated, h::stack_file, "stacks/stack_file.go"),
    route("POST", "/api/stacks/create/standalone/string", Authenticated, h::create_compose_stack, "stacks/create_compose_stack.go"),
    route("PUT", "/api/stacks/{id}", Authenticated, h::stack_update, "stacks/stack_update.go"),
];

/// The path's variables when `path` matches `pattern` (`{name}` takes one segment).
fn matches<'a>(pattern: &'static str, path: &'a str) -> Option<BTreeMap<&'static str, &'a str>> {
    let (want, have): (Vec<&'static str>, Vec<&'a str>) = (pattern.split('/').collect(), path.trim_end_matches('/').split('/').collect());
    if want.len() != have.len() {
        return None;
    }
    let mut params = BTreeMap::new();
    for (w, h) in want.into_iter().zip(have) {
        match w.strip_prefix('{').and_then(|w| w.strip_suffix('}')) {
            Some(name) if !h.is_empty() => {
                params.insert(name, h);
            }
            Some(_) => return None,
            None if w == h => {}
            None => return None,
        }
    }
    Some(params)
}

pub fn message(status: u16, text: &str, details: &str) -> Answer {
    Answer::json(status, json!({ "message": text, "details": details }))
}

/// The token a successful `POST /api/auth` hands out.
pub const JWT: &str = "fake-jwt-for-tests";

pub fn has_jwt(state: &PortainerState, call: &Call) -> bool {
    state.admin.is_some() && call.header("authorization") == Some(&format!("Bearer {JWT}"))
}

fn has_key(state: &PortainerState, call: &Call) -> bool {
    call.header("x-api-key").is_some_and(|k| state.api_keys.iter().any(|known| known == k))
}

/// Routes the first-administrator timeout leaves open (`admin_monitor.go` `WithRedirect`).
const OPEN_WHEN_DISABLED: [&str; 2] = ["/api/status", "/api/settings/public"];

pub fn dispatch(state: &mut PortainerState, call: &Call) -> Answer {
    state.check_admin_window();
    if state.disabled && call.path.starts_with("/api") && !OPEN_WHEN_DISABLED.contains(&call.path.as_str()) {
        return message(303, "Administrator initialization timeout", "Administrator initialization timeout")
            .with_header("redirect-reason", "AdminInitTimeout");
    }
    let mut path_known = false;
    for route in ROUTES {
        let Some(params) = matches(route.path, &call.path) else { continue };
        path_known = true;
        if route.method != call.method {
            continue;
        }
        let allowed = match route.access {
            Public => true,
            Jwt if has_key(state, call) => return message(401, "Auth not supported", "Authentication method not supported"),
            Jwt => has_jwt(state, call),
            Authenticated => has_key(state, call) || has_jwt(state, call),
        };
        if !allowed {
            return message(401, "Unauthorized", "A valid authorisation token is missing");
        }
        let body = serde_json::from_slice(&call.body).unwrap_or(Value::Null);
        return (route.handler)(state, &Request { call, params, body });
    }
    // gorilla/mux: a known path with another method is 405, an unknown one 404.
    if path_known {
        Answer::empty(405)
    } else {
        Answer::empty(404)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_bind_their_variables_and_nothing_else() {
        assert_eq!(matches("/api/stacks/{id}/file", "/api/stacks/7/file").unwrap()["id"], "7");
        assert!(matches("/api/stacks/{id}", "/api/stacks/7/file").is_none());
        assert!(matches("/api/stacks/{id}", "/api/stacks/").is_none());
        assert!(matches("/api/stacks", "/api/stacks/").is_some());
    }

    #[test]
    fn every_route_is_reachable_and_cites_its_handler() {
        for route in ROUTES {
            assert!(route.source.ends_with(".go") || route.source.contains(".go "), "{} cites {}", route.path, route.source);
            let path = route.path.replace("{id}", "1");
            let first = ROUTES.iter().find(|r| r.method == route.method && matches(r.path, &path).is_some()).unwrap();
            assert_eq!(first.path, route.path, "{} {} is shadowed", route.method, route.path);
        }
    }
}
