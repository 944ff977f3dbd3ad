//! Traefik in the lab: the real Traefik with phoenix's rendered files ([`for_lab`]), or, where
//! its binary is missing, an nginx standing in for it ([`proxy`]), built from the same routes and transports
//! phoenix renders Traefik's dynamic configuration from (crate::edge): per route its host
//! names, the certificate from the manifest that covers them, and the backend with its scheme,
//! the name sent and checked (`serverName`), the root that verifies it and the client
//! certificate presented (mTLS). Pure text, with the guest's own paths; the lab moves them
//! into the guest's folder (super::nginx_for_lab).

use crate::edge::{server_certificate_for, Edge};
use phoenix_model::model::{Model, Scheme};
use phoenix_model::paths::TRUSTED_ROOT_PATH;
use std::fmt::Write;

/// The nginx.conf standing in for Traefik, when the model has a Traefik guest.
pub fn proxy(model: &Model, edge: &Edge) -> Option<String> {
    let traefik = edge.traefik?;
    let mut out = String::from(
        "# phoenix lab: nginx standing in for Traefik, built from the routes and transports Traefik's configuration is rendered from.\n\
         pid /run/nginx.pid;\nerror_log /var/log/nginx/error.log;\ninclude /etc/nginx/modules-enabled/*.conf;\nevents {\n    worker_connections 256;\n}\n\nhttp {\n    access_log /var/log/nginx/access.log;\n\n    # The web entry point: nothing is routed on plain HTTP.\n    server {\n        listen 80 default_server;\n        return 404;\n    }\n",
    );
    for route in &edge.routes {
        // Traefik serves each name with the manifest certificate that covers it (the ones it
        // would get over ACME have no file the lab could present).
        let Some(cert) = route.hosts.iter().find_map(|h| server_certificate_for(model, traefik.id, h)) else { continue };
        let (Some(cert_path), Some(key_path)) = (&cert.cert_path, &cert.key_path) else { continue };
        let backend = &route.backend;
        let _ = write!(
            out,
            "\n    # router {}\n    server {{\n        listen 443 ssl;\n        server_name {};\n        ssl_certificate {cert_path};\n        ssl_certificate_key {key_path};\n\n        location / {{\n            proxy_pass {}://{}:{};\n            proxy_set_header Host $host;\n",
            route.name,
            route.hosts.join(" "),
            backend.scheme.as_str(),
            backend.address,
            backend.port
        );
        if backend.scheme == Scheme::Https {
            let name = backend.server_name.clone().unwrap_or_else(|| route.hosts.first().cloned().unwrap_or_default());
            let _ = write!(
                out,
                "            proxy_ssl_server_name on;\n            proxy_ssl_name {name};\n            proxy_ssl_verify on;\n            proxy_ssl_verify_depth 2;\n            proxy_ssl_trusted_certificate {TRUSTED_ROOT_PATH};\n"
            );
            if let Some(client) = &backend.client_certificate {
                let _ = write!(
                    out,
                    "            proxy_ssl_certificate {};\n            proxy_ssl_certificate_key {};\n",
                    client.cert_path, client.key_path
                );
            }
        }
        out.push_str("        }\n    }\n");
    }
    out.push_str("}\n");
    Some(out)
}

/// The rendered static and dynamic files, when phoenix renders them for Traefik's guest.
pub fn rendered_files(rendered: &crate::render::Rendered, guest: phoenix_model::model::GuestId) -> Option<(String, String)> {
    let file = |path: &str| {
        rendered.files.iter().find(|f| f.target == crate::deploy::Machine::Guest(guest) && f.path == path).map(|f| f.content.clone())
    };
    Some((file(crate::render::traefik::STATIC_PATH)?, file(crate::render::traefik::DYNAMIC_PATH)?))
}

/// The rendered Traefik files as the lab runs them in the guest's folder `root`: every path into
/// the guest (`/etc/traefik/...`, the trusted root) moved under `root`, and the log written to
/// `root/var/log/traefik.log` without colours. Everything else (entry points, routers,
/// transports, the resolver) is exactly as rendered.
pub fn for_lab(static_text: &str, dynamic_text: &str, root: &str) -> Result<(String, String), String> {
    let root = root.trim_end_matches('/');
    let moved = |text: &str| {
        text.replace(TRUSTED_ROOT_PATH, &format!("{root}{TRUSTED_ROOT_PATH}")).replace("/etc/traefik/", &format!("{root}/etc/traefik/"))
    };
    let mut config: serde_json::Value =
        serde_saphyr::from_str(&moved(static_text)).map_err(|e| format!("the rendered Traefik static file is not YAML: {e}"))?;
    config["log"]["filePath"] = serde_json::json!(format!("{root}/var/log/traefik.log"));
    config["log"]["noColor"] = serde_json::json!(true);
    let static_text = serde_saphyr::to_string(&config).map_err(|e| e.to_string())?;
    Ok((static_text, moved(dynamic_text)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lab_moves_paths_and_the_log_and_nothing_else() {
        let static_text = format!("entryPoints:\n  websecure:\n    address: \":443\"\nserversTransport:\n  rootCAs:\n  - {TRUSTED_ROOT_PATH}\nlog:\n  level: INFO\n");
        let dynamic = "tls:\n  certificates:\n  - certFile: /etc/traefik/certs/traefik.crt\n";
        let (static_lab, dynamic_lab) = for_lab(&static_text, dynamic, "/run/lab/guest-102/").unwrap();
        let config: serde_json::Value = serde_saphyr::from_str(&static_lab).unwrap();
        assert_eq!(config["entryPoints"]["websecure"]["address"], ":443");
        assert_eq!(config["serversTransport"]["rootCAs"][0], format!("/run/lab/guest-102{TRUSTED_ROOT_PATH}"));
        assert_eq!(config["log"]["filePath"], "/run/lab/guest-102/var/log/traefik.log");
        assert_eq!(config["log"]["level"], "INFO");
        assert_eq!(dynamic_lab, "tls:\n  certificates:\n  - certFile: /run/lab/guest-102/etc/traefik/certs/traefik.crt\n");
    }
}
