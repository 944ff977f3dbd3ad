//! http-01 through the gateway for real (issue 18): a real Pebble resolves the name through a
//! real dnsmasq to the gateway's address, asks a real nginx running the gateway's rendered
//! port-80 servers (`render::nginx::http_servers`), which relays the challenge to phoenix's
//! responder; a token phoenix does not hold, or phoenix not listening, falls through to
//! Traefik (a stand-in that knows one token). And http-01 in a guest that serves port 80
//! itself: phoenix writes the token into the guest's web root (`http01_webroot`), a real nginx
//! serves it from there, and the token is gone afterwards. The rendered node addresses are moved to
//! loopback: the gateway 10.0.0.153 to 127.0.0.153, the host 10.0.0.13 to 127.0.0.13, Traefik
//! 10.0.0.12 to 127.0.0.12; nothing else in the servers changes.

use phoenix_drivers::acme::{AcmeIssuer, AcmeSettings};
use phoenix_drivers::host::{GuestAccess, HostTarget, SystemRunner};
use phoenix_exec::certs::{renew, Outcome, RenewRequest};
use phoenix_model::model::Model;
use phoenix_testkit::dnsmasq::Dnsmasq;
use phoenix_testkit::nginx::{scratch, Nginx};
use phoenix_testkit::pebble::Pebble;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const NAME: &str = "portal.lab.phoenix.test";
const TRAEFIK_TOKEN: &str = "traefik-own-token";

/// The example with one gateway certificate for `NAME` over `challenge`.
fn model(challenge: &str) -> Model {
    model_with(serde_json::json!({ "challenge": challenge }))
}

fn model_with(extra: serde_json::Value) -> Model {
    let mut source = phoenix_testkit::example_source();
    let config = phoenix_testkit::example_config();
    let mut entry = serde_json::json!({
        "name": "portal", "common_name": NAME, "guest_id": 101, "guest_type": "lxc",
        "cert_path": "/etc/nginx/ssl/portal.crt", "key_path": "/etc/nginx/ssl/portal.key", "owner": "root:root"
    });
    entry.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    source.edit_json(&config.join("certificate-manifest.json"), |value| *value = serde_json::json!([entry]));
    phoenix_model::check(&config, &source).model.expect("model")
}

/// Traefik's resolver as the gateway sees it: it knows one token and answers 404 otherwise.
/// Returns its port and the paths it was asked for.
async fn traefik_stand_in() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.12:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let path = read_request_path(&mut stream).await;
            record.lock().unwrap().push(path.clone());
            let (status, body) = if path.ends_with(TRAEFIK_TOKEN) { ("200 OK", "traefik-key-authorization") } else { ("404 Not Found", "") };
            let answer = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
            let _ = stream.write_all(answer.as_bytes()).await;
        }
    });
    (port, seen)
}

async fn read_request_path(stream: &mut tokio::net::TcpStream) -> String {
    let mut request = Vec::new();
    let mut buffer = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer)).await {
            Ok(Ok(n)) if n > 0 => request.extend_from_slice(&buffer[..n]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&request).split_whitespace().nth(1).unwrap_or_default().to_string()
}

/// The gateway's rendered port-80 servers in a real nginx on 127.0.0.153:`port`.
fn gateway(tag: &str, rendered_from: &Model, port: u16, responder: SocketAddr, traefik: u16) -> Nginx {
    let servers = phoenix_core::render::nginx::http_servers(rendered_from, &phoenix_core::edge::edge(rendered_from))
        .replace("listen 80 default_server;", &format!("listen 127.0.0.153:{port} default_server;"))
        .replace("listen 80;", &format!("listen 127.0.0.153:{port};"))
        .replace("http://10.0.0.13:80", &format!("http://{responder}"))
        .replace("http://10.0.0.12:80", &format!("http://127.0.0.12:{traefik}"));
    assert!(!servers.contains("10.0.0."), "every node address moved to loopback:\n{servers}");
    let dir = scratch(tag);
    let text = format!("events {{}}\nhttp {{\n    access_log {}/access.log;\n{servers}}}\n", dir.display());
    let nginx = Nginx::start(dir, &text);
    wait_for_listener(SocketAddr::from(([127, 0, 0, 153], port)));
    nginx
}

fn wait_for_listener(address: SocketAddr) {
    for _ in 0..100 {
        if std::net::TcpStream::connect_timeout(&address, Duration::from_millis(100)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nginx does not listen on {address}");
}

struct Rig {
    _dnsmasq: Dnsmasq,
    pebble: Pebble,
    work: PathBuf,
    responder: SocketAddr,
}

impl Rig {
    async fn new(tag: &str) -> Rig {
        let dnsmasq = Dnsmasq::start_with(tag, &format!("host-record={NAME},127.0.0.153\n"));
        let pebble = Pebble::start_with_dns(tag, &[], dnsmasq.address);
        let work = std::env::temp_dir().join(format!("phoenix-http01-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(work.join("store")).unwrap();
        std::fs::write(work.join("store/root_ca.crt"), pebble.issuing_root().await).unwrap();
        let responder = SocketAddr::from(([127, 0, 0, 13], phoenix_testkit::free_port()));
        Rig { _dnsmasq: dnsmasq, pebble, work, responder }
    }

    async fn renew(&self, model: &Model) -> Outcome {
        let issuer = AcmeIssuer::new(AcmeSettings {
            directory: self.pebble.directory.clone(),
            server_root: Some(self.pebble.server_root.clone()),
            account_file: self.work.join("acme-account.json"),
            http01_listen: self.responder,
            tls_alpn01_listen: self.pebble.tls_alpn01,
            order_timeout: Duration::from_secs(20),
            dns01: None,
        });
        let target = HostTarget::new(GuestAccess::Folders(self.work.join("guests")), SystemRunner);
        let request = RenewRequest {
            store_dir: self.work.join("store").to_string_lossy().into(),
            names: Vec::new(),
            force: true,
            now: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs(),
            skip_post_actions: true,
        };
        renew(model, &request, &issuer, &target).await.expect("known names").results.into_iter().next().expect("one result").outcome
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.work);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_is_issued_over_http01_through_the_real_gateway_relay() {
    let rig = Rig::new("relay").await;
    let (traefik, traefik_saw) = traefik_stand_in().await;
    let http01 = model("http-01");
    let nginx = gateway("relay", &http01, rig.pebble.http01.port(), rig.responder, traefik);
    let outcome = rig.renew(&http01).await;
    assert!(matches!(outcome, Outcome::Renewed { .. }), "{outcome:#?}\n{}\n{}", rig.pebble.log(), nginx.log());
    assert!(nginx.log().contains("GET /.well-known/acme-challenge/"), "Pebble asked through nginx:\n{}", nginx.log());
    assert!(rig.pebble.log().contains("set VALID by completed challenge"), "{}", rig.pebble.log());
    assert!(traefik_saw.lock().unwrap().is_empty(), "phoenix answered; nothing fell through to Traefik");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_that_does_not_relay_the_name_fails_the_order_at_traefik() {
    let rig = Rig::new("unrelayed").await;
    let (traefik, traefik_saw) = traefik_stand_in().await;
    // The gateway runs a configuration rendered while the entry was dns-01: the name is not relayed.
    let _nginx = gateway("unrelayed", &model("dns-01"), rig.pebble.http01.port(), rig.responder, traefik);
    let outcome = rig.renew(&model("http-01")).await;
    let Outcome::Failed { restored, .. } = &outcome else { panic!("{outcome:#?}") };
    assert!(*restored, "nothing installed");
    let saw = traefik_saw.lock().unwrap().clone();
    assert!(saw.iter().any(|p| p.starts_with("/.well-known/acme-challenge/")), "the challenge went to Traefik: {saw:?}");
}

/// One GET through the gateway for `NAME` and `path`: the status line and the body.
async fn get(port: u16, path: &str) -> (String, String) {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.153", port)).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {NAME}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut answer)).await.expect("nginx answers").unwrap();
    let status = answer.lines().next().unwrap_or_default().to_string();
    (status, answer.split("\r\n\r\n").nth(1).unwrap_or_default().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traefik_keeps_its_own_challenges_behind_the_relay() {
    let (traefik, _) = traefik_stand_in().await;
    let responder = SocketAddr::from(([127, 0, 0, 13], phoenix_testkit::free_port()));
    let port = phoenix_testkit::free_port();
    let _nginx = gateway("fallback", &model("http-01"), port, responder, traefik);
    let path = format!("/.well-known/acme-challenge/{TRAEFIK_TOKEN}");
    // phoenix not listening (502 from nginx itself): Traefik answers.
    assert_eq!(get(port, &path).await, ("HTTP/1.1 200 OK".to_string(), "traefik-key-authorization".to_string()));
    // phoenix listening without that token (404): Traefik answers too.
    let phoenix = tokio::net::TcpListener::bind(responder).await.unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = phoenix.accept().await {
            let _ = read_request_path(&mut stream).await;
            let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").await;
        }
    });
    assert_eq!(get(port, &path).await.1, "traefik-key-authorization");
    // Anything else still moves to HTTPS.
    assert!(get(port, "/").await.0.starts_with("HTTP/1.1 301"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_serving_port_80_itself_answers_from_the_web_root_phoenix_writes_into() {
    let rig = Rig::new("webroot").await;
    let model = model_with(serde_json::json!({ "http01_webroot": "/var/www/acme" }));
    assert_eq!(model.certificates[0].challenge, phoenix_model::model::AcmeChallenge::Http01, "a web root implies http-01");
    // The guest's own web server: a real nginx serving the guest's folder at / on port 80.
    let webroot = rig.work.join("guests/guest-101/var/www/acme");
    std::fs::create_dir_all(&webroot).unwrap();
    let dir = scratch("webroot");
    let port = rig.pebble.http01.port();
    let text = format!(
        "events {{}}\nhttp {{\n    access_log {}/access.log;\n    server {{\n        listen 127.0.0.153:{port};\n        root {};\n    }}\n}}\n",
        dir.display(),
        webroot.display()
    );
    let nginx = Nginx::start(dir, &text);
    wait_for_listener(SocketAddr::from(([127, 0, 0, 153], port)));
    let outcome = rig.renew(&model).await;
    assert!(matches!(outcome, Outcome::Renewed { .. }), "{outcome:#?}\n{}\n{}", rig.pebble.log(), nginx.log());
    assert!(nginx.log().contains("GET /.well-known/acme-challenge/"), "Pebble fetched the token from the guest:\n{}", nginx.log());
    assert!(nginx.log().contains("\" 200 "), "and got it:\n{}", nginx.log());
    let left: Vec<_> = std::fs::read_dir(webroot.join(".well-known/acme-challenge")).unwrap().collect();
    assert!(left.is_empty(), "the tokens are removed afterwards: {left:?}");
}
