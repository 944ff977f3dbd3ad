//! The NGINX gateway's configuration as real nginx sees it: `nginx -t` accepts it (temporary
//! prefix, certificates made by the test, upstreams by IP so no lookup leaves the machine), and
//! a real nginx started with it terminates TLS, verifies the upstream against the Step-CA root
//! and proxies to a local TLS backend; with an untrusted backend certificate it refuses (502).
//! The test moves listen ports and the upstream to loopback; nothing else in the file changes.
//! Needs nginx with the stream module (scripts/test installs nginx and libnginx-mod-stream).

use phoenix_core::render::{nginx, render_all};
use phoenix_model::paths::TRUSTED_ROOT_PATH;
use phoenix_testkit::free_port;
use phoenix_testkit::nginx::{localise, scratch, Nginx};
use phoenix_testkit::pki::{TestCa, Usage};
use phoenix_testkit::tls::{https_get_within, tls_backend};
use phoenix_testkit::{example_config, example_source, reference_config, MemorySource};
use serde_json::json;
use std::path::Path;
use std::time::Duration;

fn rendered(source: &MemorySource, config: &Path) -> String {
    let checked = phoenix_model::check(config, source);
    let rendered = render_all(checked.model.as_ref().expect("model"));
    rendered.files.iter().find(|f| f.path == nginx::PATH).expect("nginx.conf rendered").content.clone()
}

/// Moves every path of the rendered file into `dir` and writes the certificates it names.
fn install(text: &str, dir: &Path, ca: &TestCa, gateway_names: &[&str]) -> String {
    let leaf = ca.issue(gateway_names, Usage::Server);
    let mut text = text.replace(TRUSTED_ROOT_PATH, &dir.join("root.crt").display().to_string());
    for line in text.clone().lines() {
        for directive in ["ssl_certificate ", "ssl_certificate_key "] {
            if let Some(path) = line.trim().strip_prefix(directive) {
                let path = path.trim_end_matches(';');
                let local = dir.join("ssl").join(Path::new(path).file_name().unwrap());
                let content = if directive.contains("key") { &leaf.key_pem } else { &leaf.cert_pem };
                std::fs::write(&local, content).unwrap();
                text = text.replace(path, &local.display().to_string());
            }
        }
    }
    std::fs::write(dir.join("root.crt"), &ca.cert_pem).unwrap();
    localise(&text, dir)
}

#[test]
fn nginx_accepts_the_rendered_configuration() {
    let ca = TestCa::new("phoenix test root");
    let mut passthrough = example_source();
    passthrough.edit_json(&example_config().join("phoenix_vm_configs.json"), |v| {
        v["vms"][1]["traefik_service"]["gateway_tls"] = json!("passthrough")
    });
    let cases = [
        ("example", example_source(), example_config()),
        ("passthrough", passthrough, example_config()),
        ("reference", MemorySource::from_dir(reference_config().parent().unwrap()), reference_config()),
    ];
    for (name, source, config) in cases {
        let text = rendered(&source, &config);
        if name == "passthrough" {
            assert!(text.contains("ssl_preread on;") && text.contains(nginx::INTERNAL_TLS), "{text}");
        }
        let dir = scratch(name);
        let output = phoenix_testkit::nginx::test(&dir, &install(&text, &dir, &ca, &["portainer.phoenix.thinkheads.ai"]));
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(output.status.success(), "nginx -t refused the {name} configuration:\n{}\n{text}", String::from_utf8_lossy(&output.stderr));
    }
}

#[test]
fn nginx_t_refuses_what_nginx_refuses() {
    let dir = scratch("bad");
    let output = phoenix_testkit::nginx::test(&dir, "events {}\nhttp { server { listen 80; proxy_ssl_verify maybe; } }\n");
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(!output.status.success());
}

async fn start_gateway(name: &str, ca: &TestCa, backend_port: u16) -> (Nginx, u16) {
    let text = rendered(&example_source(), &example_config());
    let dir = scratch(name);
    let https = free_port();
    let (http, relay) = (free_port(), free_port());
    let text =
        install(&text, &dir, ca, &["portainer.phoenix.thinkheads.ai", "portainer.internal.thinkheads.ai", "qdrant.phoenix.thinkheads.ai"])
            .replace("listen 443 ssl;", &format!("listen 127.0.0.1:{https} ssl;"))
            .replace("listen 80 default_server;", &format!("listen 127.0.0.1:{http} default_server;"))
            .replace("listen 80;", &format!("listen 127.0.0.1:{relay};"))
            .replace("http://10.0.0.13:80", "http://127.0.0.1:9")
            .replace("https://10.0.0.12:443", &format!("https://127.0.0.1:{backend_port}"))
            .replace("http://10.0.0.12:80", "http://127.0.0.1:9");
    (Nginx::start(dir, &text), https)
}

async fn wait_for(port: u16, host: &str, root: &str) -> String {
    https_get_within(port, host, root, Duration::from_secs(10)).await.expect("nginx did not answer within 10 s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_nginx_proxies_to_a_verified_tls_backend() {
    let ca = TestCa::new("phoenix test root");
    // The backend presents a certificate for the name clients use, signed by the same root.
    let backend_port =
        tls_backend(&ca.issue(&["portainer.phoenix.thinkheads.ai", "portainer.internal.thinkheads.ai"], Usage::Server), None).await;
    let (_nginx, port) = start_gateway("live", &ca, backend_port).await;
    let response = wait_for(port, "portainer.phoenix.thinkheads.ai", &ca.cert_pem).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("backend saw host portainer.phoenix.thinkheads.ai"), "{response}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_nginx_refuses_an_untrusted_backend() {
    let ca = TestCa::new("phoenix test root");
    let stranger = TestCa::new("some other root");
    let backend_port = tls_backend(&stranger.issue(&["portainer.phoenix.thinkheads.ai"], Usage::Server), None).await;
    let (_nginx, port) = start_gateway("untrusted", &ca, backend_port).await;
    let response = wait_for(port, "portainer.phoenix.thinkheads.ai", &ca.cert_pem).await;
    assert!(response.starts_with("HTTP/1.1 502"), "proxy_ssl_verify must refuse the backend: {response}");
}
