//! Traefik on its guest: the static configuration (entry points, the file provider, the ACME
//! resolver at Step-CA's directory, the root CA for backends) and one dynamic file with a
//! router, service and (for https backends) serversTransport per edge route. Stack labels are
//! translated here because the deployed Traefik reads files, not Docker labels.
//! A custom serversTransport does not inherit the static rootCAs (traefik#10612), so every
//! transport names the root itself; backends addressed by IP need serverName (traefik#9732).

use super::{Machine, Rendered, RenderedFile};
use crate::edge::{server_certificate_for, Edge};
use phoenix_model::model::{Model, Scheme};
use phoenix_model::paths::TRUSTED_ROOT_PATH;
use serde_json::{json, Map, Value};

pub const STATIC_PATH: &str = "/etc/traefik/traefik.yml";
pub const DYNAMIC_PATH: &str = "/etc/traefik/dynamic/phoenix.yml";
pub const RESOLVER: &str = "stepca";
/// Static configuration is read at start only.
pub const RESTART: &str = "systemctl restart traefik";

/// Step-CA's ACME directory, as Traefik's resolver and phoenix's certs client reach it.
pub fn acme_directory(model: &Model) -> Option<String> {
    let ca = model.step_ca.as_ref()?;
    let host = ca.dns_name.as_ref()?.value.clone();
    Some(format!("https://{host}:{}/acme/{}/directory", ca.port, ca.acme_provisioner))
}

pub fn static_config(model: &Model) -> Value {
    let mut config = json!({
        "entryPoints": {
            "web": { "address": ":80" },
            "websecure": { "address": ":443" },
        },
        "providers": { "file": { "directory": "/etc/traefik/dynamic", "watch": true } },
        "serversTransport": { "rootCAs": [TRUSTED_ROOT_PATH] },
        "log": { "level": "INFO" },
        "api": { "dashboard": false },
        // Traefik otherwise calls out at start to check for releases (and may report usage):
        // an internal proxy has no business on the internet, and the real Traefik showed it.
        "global": { "checkNewVersion": false, "sendAnonymousUsage": false },
    });
    if let Some(directory) = acme_directory(model) {
        config["certificatesResolvers"] = json!({
            RESOLVER: { "acme": {
                "caServer": directory,
                // Step-CA's HTTPS certificate chains to the phoenix root: trust it here rather
                // than count on the guest's system trust store.
                "caCertificates": [TRUSTED_ROOT_PATH],
                "storage": "/etc/traefik/acme.json",
                // As long as Step-CA issues them for (its ca.json claims).
                "certificatesDuration": crate::provision::step_ca::TLS_CERT_HOURS,
                "httpChallenge": { "entryPoint": "web" },
            } }
        });
    }
    config
}

pub fn dynamic_config(model: &Model, edge: &Edge) -> Value {
    let (mut routers, mut services, mut transports) = (Map::new(), Map::new(), Map::new());
    let mut certificates = Vec::new();
    for route in &edge.routes {
        let rule = route.hosts.iter().map(|h| format!("Host(`{h}`)")).collect::<Vec<_>>().join(" || ");
        let traefik = edge.traefik.map(|t| t.id);
        let local_cert = traefik.and_then(|t| route.hosts.iter().find_map(|h| server_certificate_for(model, t, h)));
        let tls = match local_cert {
            Some(cert) => {
                if let (Some(cert_file), Some(key_file)) = (&cert.cert_path, &cert.key_path) {
                    let entry = json!({ "certFile": cert_file, "keyFile": key_file });
                    if !certificates.contains(&entry) {
                        certificates.push(entry);
                    }
                }
                json!({})
            }
            None => json!({ "certResolver": RESOLVER }),
        };
        routers.insert(route.name.clone(), json!({ "rule": rule, "entryPoints": ["websecure"], "service": route.name, "tls": tls }));
        let backend = &route.backend;
        let mut load_balancer = json!({ "servers": [{ "url": format!("{}://{}:{}", backend.scheme.as_str(), backend.address, backend.port) }], "passHostHeader": true });
        if backend.scheme == Scheme::Https {
            let transport = format!("{}-transport", route.name);
            let mut entry = json!({ "rootCAs": [TRUSTED_ROOT_PATH] });
            if let Some(name) = &backend.server_name {
                entry["serverName"] = json!(name);
            }
            if let Some(client) = &backend.client_certificate {
                entry["certificates"] = json!([{ "certFile": client.cert_path, "keyFile": client.key_path }]);
            }
            transports.insert(transport.clone(), entry);
            load_balancer["serversTransport"] = json!(transport);
        }
        services.insert(route.name.clone(), json!({ "loadBalancer": load_balancer }));
    }
    let mut http = json!({ "routers": routers, "services": services });
    if !transports.is_empty() {
        http["serversTransports"] = Value::Object(transports);
    }
    let mut config = json!({ "http": http });
    if !certificates.is_empty() {
        config["tls"] = json!({ "certificates": certificates });
    }
    config
}

fn yaml(header: &str, value: &Value) -> String {
    let body = serde_saphyr::to_string(value).expect("JSON values always serialise to YAML");
    format!("# {header}\n{body}")
}

pub fn render(model: &Model, edge: &Edge, out: &mut Rendered) {
    let Some(traefik) = edge.traefik else { return };
    let target = Machine::Guest(traefik.id);
    let header = "Rendered by phoenix; do not edit: phoenix sync overwrites it.";
    out.files.push(RenderedFile::new(target, STATIC_PATH, yaml(header, &static_config(model))).reloaded_by(RESTART));
    // The file provider watches this file; rewriting it also makes Traefik reload renewed certificates.
    out.files.push(RenderedFile::new(target, DYNAMIC_PATH, yaml(header, &dynamic_config(model, edge))));
}
