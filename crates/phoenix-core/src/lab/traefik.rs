//! What stands in for Traefik in the lab: an nginx built from the same routes and transports
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
