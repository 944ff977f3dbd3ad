//! Certificates phoenix issues and keeps renewed: what is installed and whether it is due
//! ([`status`]), and what a renewal orders, writes and runs ([`renewal`]). Pure: file contents
//! and the clock come in; the ACME exchange and the writes happen in phoenix-exec's drivers.

pub mod renewal;
mod status;
pub mod timer;

pub use status::*;

use phoenix_model::model::{AcmeChallenge, Model, San};

/// The port phoenix's http-01 responder listens on where phoenix runs (the Proxmox host):
/// `phoenix certs renew --http01-listen` defaults to it, and the gateway relays challenges to it.
pub const RESPONDER_HTTP01_PORT: u16 = 80;
/// The port of phoenix's tls-alpn-01 responder (RFC 8737 validates on 443, nowhere else).
pub const RESPONDER_TLS_ALPN01_PORT: u16 = 443;

/// The identifiers (names and addresses) phoenix proves over http-01 with its own responder,
/// in manifest order and without repeats: the names the gateway relays to it. Wildcards are left
/// out (no http-01 can prove one; validation says so).
pub fn http01_identifiers(model: &Model) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    // An entry answered from its guest's own web root needs no relay.
    for cert in model.certificates.iter().filter(|c| c.challenge == AcmeChallenge::Http01 && c.http01_webroot.is_none()) {
        for san in renewal::order_for(cert).sans() {
            let text = match san {
                San::Dns(name) if name.starts_with("*.") => continue,
                San::Dns(name) => name,
                San::Ip(ip) => ip.to_string(),
            };
            if !out.contains(&text) {
                out.push(text);
            }
        }
    }
    out
}
