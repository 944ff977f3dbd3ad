//! The HTTPS front of the simulators: a real server on loopback with a certificate from a
//! throw-away CA, handing each parsed request to a simulator's handler. Faults can be injected
//! per request (latency, 5xx, Proxmox lock errors, a request that hangs, a connection reset),
//! and every request is counted. What it must not do: decide answers (the simulators do).

use crate::ca::{TestCa, Usage};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;

/// What an injected fault does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status and message instead of handling the request.
    Status(u16, String),
    /// Proxmox's answer when another operation holds a lock (pve-cluster's lock_file).
    Lock,
    /// Handle nothing and answer after this long (longer than the client's timeout: a timeout).
    Hang(Duration),
    /// Close the connection without answering.
    Reset,
    /// Handle the request, then answer this status and message instead of its answer (the
    /// change was made, the client is told otherwise: a proxy failing on the way back).
    AfterHandling(u16, String),
    /// Handle the request, then answer after this long (a Portainer deploy that outlasts the
    /// client's timeout: the change is made, the client hears nothing in time).
    Late(Duration),
    /// Answer `307 Temporary Redirect` to this location (a proxy or a hostile server sending
    /// the client, with its credentials, elsewhere).
    Redirect(String),
}

#[derive(Debug, Clone)]
struct Injection {
    method: Option<String>,
    path_contains: String,
    fault: Fault,
    remaining: usize,
}

/// A parsed request, as handlers see it.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    /// Percent-decoded path, without the query.
    pub path: String,
    pub query: Vec<(String, String)>,
    /// The query string as sent (for servers that decode it their own way).
    pub query_text: Option<String>,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl Call {
    pub fn query(&self, key: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A handler's answer.
pub struct Answer {
    pub status: u16,
    /// The status line's reason phrase, when not the standard one (Proxmox puts its error
    /// message there).
    pub reason: Option<String>,
    pub body: String,
    /// Headers besides `content-type` (Portainer's `redirect-reason`).
    pub headers: Vec<(&'static str, String)>,
}

impl Answer {
    pub fn json(status: u16, value: serde_json::Value) -> Answer {
        Answer { status, reason: None, body: value.to_string(), headers: Vec::new() }
    }

    pub fn empty(status: u16) -> Answer {
        Answer { status, reason: None, body: String::new(), headers: Vec::new() }
    }

    pub fn with_header(mut self, name: &'static str, value: &str) -> Answer {
        self.headers.push((name, value.to_string()));
        self
    }
}

pub type AnswerFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Answer> + Send>>;
pub type Handler = Arc<dyn Fn(Call) -> AnswerFuture + Send + Sync>;

/// A handler that answers at once.
pub fn sync_handler(handle: impl Fn(&Call) -> Answer + Send + Sync + 'static) -> Handler {
    Arc::new(move |call: Call| {
        let answer = handle(&call);
        Box::pin(async move { answer })
    })
}

/// Shared fault controls and counters of a fake.
#[derive(Default)]
pub struct Controls {
    latency_ms: AtomicUsize,
    injections: Mutex<Vec<Injection>>,
    pub requests: AtomicUsize,
    /// TCP connections accepted (a TLS handshake a client refuses still counts).
    pub connections: AtomicUsize,
    in_flight: AtomicUsize,
    pub peak_in_flight: AtomicUsize,
}

impl Controls {
    /// Every request waits this long before it is handled.
    pub fn set_latency(&self, latency: Duration) {
        self.latency_ms.store(latency.as_millis() as usize, Ordering::SeqCst);
    }

    /// The next `times` requests whose path contains `path_contains` (and whose method is
    /// `method`, when given) get `fault`.
    pub fn inject(&self, method: Option<&str>, path_contains: &str, fault: Fault, times: usize) {
        self.injections.lock().unwrap().push(Injection {
            method: method.map(str::to_string),
            path_contains: path_contains.to_string(),
            fault,
            remaining: times,
        });
    }

    pub fn clear_faults(&self) {
        self.injections.lock().unwrap().clear();
    }

    fn take_fault(&self, method: &str, path: &str) -> Option<Fault> {
        let mut injections = self.injections.lock().unwrap();
        let hit = injections
            .iter_mut()
            .find(|i| i.remaining > 0 && path.contains(&i.path_contains) && i.method.as_deref().is_none_or(|m| m == method))?;
        hit.remaining -= 1;
        Some(hit.fault.clone())
    }
}

/// A running fake: its URL, the CA file that verifies it, and its controls.
pub struct FakeServer {
    pub address: SocketAddr,
    pub ca_file: std::path::PathBuf,
    pub controls: Arc<Controls>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.ca_file);
    }
}

/// `%XX` decoded, `+` as a space.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(byte) = u8::from_str_radix(&text[i + 1..i + 3], 16) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `a=1&b=2` pairs, decoded.
pub fn form_pairs(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').map_or((percent_decode(p), String::new()), |(k, v)| (percent_decode(k), percent_decode(v))))
        .collect()
}

impl FakeServer {
    /// Starts serving `handler` over HTTPS on 127.0.0.1 with a fresh test CA.
    pub async fn start(tag: &str, handler: Handler) -> FakeServer {
        let ca = TestCa::new(&format!("phoenix test: fake {tag}"));
        let leaf = ca.issue(&["localhost", "127.0.0.1"], Usage::Server);
        let ca_file = std::env::temp_dir().join(format!("phoenix-fake-{tag}-{}-{}.crt", std::process::id(), rand_suffix()));
        std::fs::write(&ca_file, &ca.cert_pem).unwrap();
        let acceptor = leaf.tls_acceptor();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let controls = Arc::new(Controls::default());
        let shared = controls.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                shared.connections.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let (acceptor, handler, controls) = (acceptor.clone(), handler.clone(), shared.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else { return };
                    let service = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
                        let (handler, controls) = (handler.clone(), controls.clone());
                        async move { serve(request, handler, controls).await }
                    });
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(hyper_util::rt::TokioIo::new(tls), service).await;
                });
            }
        });
        FakeServer { address, ca_file, controls, task }
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.address.port())
    }
}

fn rand_suffix() -> u64 {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    NEXT.fetch_add(1, Ordering::SeqCst) as u64
}

struct InFlight(Arc<Controls>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn serve(
    request: Request<hyper::body::Incoming>,
    handler: Handler,
    controls: Arc<Controls>,
) -> Result<Response<Full<Bytes>>, std::io::Error> {
    controls.requests.fetch_add(1, Ordering::SeqCst);
    let now = controls.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    controls.peak_in_flight.fetch_max(now, Ordering::SeqCst);
    let _guard = InFlight(controls.clone());
    let latency = controls.latency_ms.load(Ordering::SeqCst);
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency as u64)).await;
    }
    let (parts, body) = request.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let query = parts.uri.query().map(form_pairs).unwrap_or_default();
    let query_text = parts.uri.query().map(str::to_string);
    let call =
        Call { method: parts.method.to_string(), path: percent_decode(parts.uri.path()), query, query_text, headers: parts.headers, body };
    let answer = match controls.take_fault(&call.method, &call.path) {
        Some(Fault::Redirect(location)) => {
            let mut response = Response::new(Full::new(Bytes::new()));
            *response.status_mut() = StatusCode::TEMPORARY_REDIRECT;
            response.headers_mut().insert("location", location.parse().unwrap_or_else(|_| "/".parse().unwrap()));
            return Ok(response);
        }
        Some(Fault::Reset) => return Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "injected reset")),
        Some(Fault::Hang(duration)) => {
            tokio::time::sleep(duration).await;
            Answer::json(504, serde_json::json!({ "message": "injected hang" }))
        }
        Some(Fault::Lock) => Answer::json(
            500,
            serde_json::json!({ "data": null, "message": "can't lock file '/var/lock/qemu-server/lock-100.conf' - got timeout\n" }),
        ),
        Some(Fault::Status(status, message)) => Answer::json(status, serde_json::json!({ "data": null, "message": message })),
        Some(Fault::Late(duration)) => {
            let answer = handler(call).await;
            tokio::time::sleep(duration).await;
            answer
        }
        Some(Fault::AfterHandling(status, message)) => {
            let _ = handler(call).await;
            Answer::json(status, serde_json::json!({ "data": null, "message": message }))
        }
        None => handler(call).await,
    };
    let mut response = Response::new(Full::new(Bytes::from(answer.body)));
    *response.status_mut() = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Some(reason) = answer.reason.filter(|r| !r.contains(['\r', '\n'])) {
        response
            .extensions_mut()
            .insert(hyper::ext::ReasonPhrase::try_from(reason.into_bytes()).unwrap_or(hyper::ext::ReasonPhrase::from_static(b"Error")));
    }
    response.headers_mut().insert("content-type", "application/json".parse().unwrap());
    for (name, value) in answer.headers {
        if let Ok(value) = value.parse() {
            response.headers_mut().insert(name, value);
        }
    }
    Ok(response)
}
