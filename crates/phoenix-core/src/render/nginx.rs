//! The NGINX gateway's whole nginx.conf, from the edge routes.
//! - Port 80 serves ACME http-01 challenges and redirects everything else to HTTPS: the names
//!   phoenix proves over http-01 go to phoenix's responder on the Proxmox host (then to Traefik
//!   for tokens phoenix does not hold), every other name to Traefik, whose resolver answers them.
//! - A `terminate` route: NGINX presents the gateway's certificate for the route's names, then
//!   opens a new TLS connection to Traefik, sending the client's host name as SNI and verifying
//!   Traefik's certificate against the Step-CA root. NGINX verifies nothing upstream by
//!   default (proxy_ssl_verify off, no SNI, name = the proxy_pass host, depth 1), so each of
//!   these is set explicitly.
//! - A `passthrough` route: a stream server on 443 reads the SNI (ssl_preread) and forwards the
//!   TLS stream untouched to Traefik; terminated routes then listen on loopback behind it.

use super::{Machine, Rendered, RenderedFile};
use crate::edge::{server_certificate_for, Edge, EdgeRoute};
use phoenix_model::model::{GatewayTls, Model};
use phoenix_model::paths::TRUSTED_ROOT_PATH;
use std::fmt::Write;

pub const PATH: &str = "/etc/nginx/nginx.conf";
pub const VALIDATE: &str = "nginx -t";
pub const RELOAD: &str = "systemctl reload nginx";
/// Where terminated routes listen when a stream server owns port 443.
pub const INTERNAL_TLS: &str = "127.0.0.1:8443";
/// Certificate used when the manifest has none for a route's names on the gateway.
pub const DEFAULT_CERT: (&str, &str) = ("/etc/nginx/ssl/gateway.crt", "/etc/nginx/ssl/gateway.key");

fn certificate(model: &Model, gateway: u32, route: &EdgeRoute) -> (String, String) {
    route
        .hosts
        .iter()
        .find_map(|h| server_certificate_for(model, gateway, h))
        .and_then(|c| Some((c.cert_path.clone()?, c.key_path.clone()?)))
        .unwrap_or_else(|| (DEFAULT_CERT.0.to_string(), DEFAULT_CERT.1.to_string()))
}

fn terminate_server(out: &mut String, model: &Model, edge: &Edge, route: &EdgeRoute, listen: &str) {
    let (Some(gateway), Some(traefik)) = (edge.gateway, edge.traefik) else { return };
    let (cert, key) = certificate(model, gateway.id, route);
    let _ = write!(
        out,
        "\n    # {name}: TLS ends here; a new, verified TLS connection goes to Traefik.\n    server {{\n        listen {listen} ssl;\n        server_name {hosts};\n        ssl_certificate {cert};\n        ssl_certificate_key {key};\n\n        location / {{\n            proxy_pass https://{traefik}:443;\n            proxy_set_header Host $host;\n            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n            proxy_set_header X-Forwarded-Proto https;\n            proxy_ssl_server_name on;\n            proxy_ssl_name $host;\n            proxy_ssl_verify on;\n            proxy_ssl_verify_depth 2;\n            proxy_ssl_trusted_certificate {TRUSTED_ROOT_PATH};\n        }}\n    }}\n",
        name = route.name,
        hosts = route.hosts.join(" "),
        traefik = traefik.address,
    );
}

/// The port-80 servers: for the names phoenix proves over http-01, challenge paths go to
/// phoenix's responder on the Proxmox host first and fall back to Traefik's resolver when
/// phoenix does not know the token (404) or is not answering (502, 504: it listens only while
/// it orders); for every other name they go to Traefik. Everything else moves to HTTPS.
/// (`proxy_intercept_errors` plus `error_page ... = @location` re-runs the request in the
/// named location, method and URI unchanged: ngx_http_proxy_module, ngx_http_core_module.)
pub fn http_servers(model: &Model, edge: &Edge) -> String {
    let Some(traefik) = edge.traefik else { return String::new() };
    let mut out = String::new();
    let names = crate::certificates::http01_identifiers(model);
    if let (Some(host), true, false) = (model.host.ip(), relays_http01(model, edge), names.is_empty()) {
        let _ = write!(
            out,
            "\n    # HTTP for the names phoenix proves over http-01: phoenix's responder first, then Traefik's.\n    server {{\n        listen 80;\n        server_name {names};\n\n        location /.well-known/acme-challenge/ {{\n            proxy_pass http://{host}:{port};\n            proxy_set_header Host $host;\n            proxy_connect_timeout 3s;\n            proxy_intercept_errors on;\n            error_page 404 502 504 = @traefik_acme;\n        }}\n\n        location @traefik_acme {{\n            proxy_pass http://{traefik}:80;\n            proxy_set_header Host $host;\n        }}\n\n        location / {{\n            return 301 https://$host$request_uri;\n        }}\n    }}\n",
            names = names.join(" "),
            port = crate::certificates::RESPONDER_HTTP01_PORT,
            traefik = traefik.address,
        );
    }
    let _ = write!(
        out,
        "\n    # HTTP: ACME http-01 challenges go to Traefik; everything else moves to HTTPS.\n    server {{\n        listen 80 default_server;\n        server_name _;\n\n        location /.well-known/acme-challenge/ {{\n            proxy_pass http://{traefik}:80;\n            proxy_set_header Host $host;\n        }}\n\n        location / {{\n            return 301 https://$host$request_uri;\n        }}\n    }}\n",
        traefik = traefik.address
    );
    out
}

/// Whether the rendered gateway relays http-01 challenges to phoenix's responder: it is
/// rendered only with a gateway and Traefik, and the relay needs the Proxmox host's address.
pub fn relays_http01(model: &Model, edge: &Edge) -> bool {
    edge.gateway.is_some() && edge.traefik.is_some() && model.host.ip().is_some()
}

/// The configuration text, or `None` when the edge has no gateway and Traefik.
pub fn config(model: &Model, edge: &Edge) -> Option<String> {
    let traefik = edge.traefik?;
    edge.gateway?;
    let passthrough: Vec<&EdgeRoute> = edge.routes.iter().filter(|r| r.gateway_tls == GatewayTls::Passthrough).collect();
    let terminate: Vec<&EdgeRoute> = edge.routes.iter().filter(|r| r.gateway_tls == GatewayTls::Terminate).collect();
    let mut out = String::from(
        "# Rendered by phoenix for the NGINX gateway; do not edit: phoenix sync overwrites it.\nuser www-data;\nworker_processes auto;\npid /run/nginx.pid;\nerror_log /var/log/nginx/error.log;\ninclude /etc/nginx/modules-enabled/*.conf;\n\nevents {\n    worker_connections 768;\n}\n\nhttp {\n    include /etc/nginx/mime.types;\n    default_type application/octet-stream;\n    access_log /var/log/nginx/access.log;\n    server_tokens off;\n    ssl_protocols TLSv1.2 TLSv1.3;\n",
    );
    out.push_str(&http_servers(model, edge));
    let listen = if passthrough.is_empty() { "443" } else { INTERNAL_TLS };
    for route in &terminate {
        terminate_server(&mut out, model, edge, route, listen);
    }
    out.push_str("}\n");
    if !passthrough.is_empty() {
        let _ = write!(
            out,
            "\n# TLS passthrough: routed by SNI, never decrypted here.\nstream {{\n    map $ssl_preread_server_name $phoenix_backend {{\n"
        );
        for route in &passthrough {
            for host in &route.hosts {
                let _ = writeln!(out, "        {host} traefik;");
            }
        }
        let _ = write!(
            out,
            "        default terminated;\n    }}\n\n    upstream traefik {{\n        server {traefik}:443;\n    }}\n\n    upstream terminated {{\n        server {INTERNAL_TLS};\n    }}\n\n    server {{\n        listen 443;\n        ssl_preread on;\n        proxy_pass $phoenix_backend;\n    }}\n}}\n",
            traefik = traefik.address
        );
    }
    Some(out)
}

pub fn render(model: &Model, edge: &Edge, out: &mut Rendered) {
    let (Some(gateway), Some(text)) = (edge.gateway, config(model, edge)) else { return };
    out.files.push(RenderedFile::new(Machine::Guest(gateway.id), PATH, text).validated_by(VALIDATE).reloaded_by(RELOAD));
}
