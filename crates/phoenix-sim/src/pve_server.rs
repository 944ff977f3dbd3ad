//! The Proxmox VE simulator behind HTTPS (`/api2/json`), as pve-http-server and pve-manager's
//! `PVE/HTTPServer.pm` put the API on the wire: an API token in `Authorization:
//! PVEAPIToken=USER@REALM!TOKENID=SECRET` (none: 401 "No ticket"); parameters from the query
//! for GET and DELETE, from the body for POST and PUT (form-encoded or JSON, since
//! libpve-http-server-perl 3.0-6) with the query string winning on a repeated key
//! (`extract_params`); form pairs split at `&` and `;` and a value cut at a second `=`
//! (`decode_urlencoded`); a writer waiting for a lock waits here, without blocking other
//! requests.

use crate::pve::{guest::GuestKind, PveSim, Reply};
use crate::server::{percent_decode, Answer, AnswerFuture, Call, FakeServer, Handler};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running simulator: the server, its state, the token it accepts.
pub struct SimPve {
    pub server: FakeServer,
    pub state: Arc<Mutex<PveSim>>,
    pub token: String,
}

/// The token the simulator accepts.
pub const TOKEN: &str = "root@pam!phoenix=00000000-1111-2222-3333-444444444444";

impl SimPve {
    /// Serves `sim` over HTTPS on loopback.
    pub async fn serve(sim: PveSim) -> SimPve {
        let state = Arc::new(Mutex::new(sim));
        let shared = state.clone();
        let handler: Handler = Arc::new(move |call: Call| -> AnswerFuture { Box::pin(handle(shared.clone(), call)) });
        SimPve { server: FakeServer::start("pve", handler).await, state, token: TOKEN.to_string() }
    }

    /// A node named `node` with these guests (vmid, kind, net0), nothing else configured.
    pub async fn start(node: &str, guests: &[(u32, GuestKind, &str)]) -> SimPve {
        let mut sim = PveSim::new(node);
        for (vmid, kind, net0) in guests {
            sim.add_guest(*vmid, *kind, net0, &[]).expect("a valid net0 for a simulated guest");
        }
        SimPve::serve(sim).await
    }

    pub fn url(&self) -> String {
        format!("{}/api2/json", self.server.url())
    }

    /// Runs `f` on the state.
    pub fn with<T>(&self, f: impl FnOnce(&mut PveSim) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// `decode_urlencoded`: `&` and `;` separate pairs, `split(/=/)` keeps the part between the
/// first and second `=`, `+` is a space, a repeated key is joined with NUL, a bare key is absent.
pub fn decode_urlencoded(text: &str) -> BTreeMap<String, String> {
    let mut params: BTreeMap<String, String> = BTreeMap::new();
    for pair in text.split(['&', ';']).filter(|p| !p.is_empty()) {
        let mut parts = pair.split('=');
        let key = percent_decode(parts.next().unwrap_or_default());
        let Some(value) = parts.next().map(percent_decode) else { continue };
        params.entry(key).and_modify(|v| *v = format!("{v}\0{value}")).or_insert(value);
    }
    params
}

fn answer(reply: Reply) -> Answer {
    Answer { status: reply.status, reason: Some(reply.reason), body: reply.body.to_string(), headers: Vec::new() }
}

fn refuse(status: u16, message: &str) -> Answer {
    let body = json!({ "data": null, "message": format!("{message}\n") }).to_string();
    Answer { status, reason: Some(message.to_string()), body, headers: Vec::new() }
}

/// The parameters of a call as pve-http-server extracts them.
fn params_of(call: &Call) -> Result<BTreeMap<String, Value>, Answer> {
    let query = call.query_text.as_deref().map(decode_urlencoded).unwrap_or_default();
    let mut params: BTreeMap<String, Value> = BTreeMap::new();
    if matches!(call.method.as_str(), "POST" | "PUT") && !call.body.is_empty() {
        let content_type = call.header("content-type").unwrap_or("application/x-www-form-urlencoded");
        let content_type = content_type.split([';', ',']).next().unwrap_or_default().trim();
        match content_type {
            "application/x-www-form-urlencoded" => {
                params.extend(decode_urlencoded(&String::from_utf8_lossy(&call.body)).into_iter().map(|(k, v)| (k, Value::String(v))))
            }
            "application/json" => match serde_json::from_slice::<Value>(&call.body) {
                Ok(Value::Object(object)) => params.extend(object.into_iter().filter(|(_, v)| !v.is_null())),
                Ok(_) | Err(_) => return Err(refuse(501, "unable to parse JSON body")),
            },
            other => return Err(refuse(506, &format!("upload 'Content-Type '{other}' not implemented"))),
        }
    } else if !call.body.is_empty() {
        return Err(refuse(501, &format!("Unexpected content for method '{}'", call.method)));
    }
    params.extend(query.into_iter().map(|(k, v)| (k, Value::String(v))));
    params.remove("_dc");
    Ok(params)
}

async fn handle(state: Arc<Mutex<PveSim>>, call: Call) -> Answer {
    match call.header("authorization") {
        None => return refuse(401, "No ticket"),
        Some(given) if given != format!("PVEAPIToken={TOKEN}") => return refuse(401, "permission denied - invalid PVE ticket"),
        Some(_) => {}
    }
    let Some(path) = call.path.strip_prefix("/api2/json") else { return refuse(501, "no such uri") };
    let params = match params_of(&call) {
        Ok(params) => params,
        Err(answer) => return answer,
    };
    let started = Instant::now();
    loop {
        let outcome = state.lock().unwrap_or_else(|p| p.into_inner()).try_request(&call.method, path, params.clone(), started);
        match outcome {
            Ok(reply) => return answer(reply),
            Err(busy) => {
                tokio::time::sleep(
                    busy.until.saturating_duration_since(Instant::now()).clamp(Duration::from_millis(1), Duration::from_millis(50)),
                )
                .await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_bodies_decode_as_pve_http_server_decodes_them() {
        let params = decode_urlencoded("a=1&b=x+y;c=%2F&d=e=f&a=2&bare");
        assert_eq!(params["a"], "1\u{0}2");
        assert_eq!(params["b"], "x y");
        assert_eq!(params["c"], "/");
        assert_eq!(params["d"], "e", "a second `=` cuts the value");
        assert!(!params.contains_key("bare"));
    }
}
