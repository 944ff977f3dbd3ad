//! The way Step-CA validates every identifier of every certificate phoenix orders, as flows
//! (`challenge:<certificate>:<identifier>`), so that `assess` judges each hop like any other:
//! - http-01: Step-CA resolves the name through phoenix's DNS and asks port 80 there (RFC 8555
//!   section 8.3). phoenix's responder runs where phoenix runs, the Proxmox host, so the name
//!   must point at the host, or at the gateway, which relays the challenge paths of these
//!   names to the host (`render::nginx::http_servers`). An address is asked directly (RFC 8738).
//!   With `http01_webroot`, the entry's guest answers itself from its web root (phoenix writes
//!   the tokens there): the name must point at that guest.
//! - tls-alpn-01: port 443 of the name's address must be phoenix's responder: the host only
//!   (the gateway routes TLS by name and cannot hand `acme-tls/1` to phoenix).
//! - dns-01: Step-CA asks phoenix's DNS server for `_acme-challenge.<name>` TXT; phoenix writes
//!   those records only into the Proxmox host's dnsmasq (`connect::dns01_on_this_node`).
//!
//! Where the shape alone shows that nothing answers (a guest that relays nothing, a wildcard
//! over http-01, an address over dns-01), the hop carries that as its dead end.
//! Must not judge firewalls or DNS answers: `assess` does, hop by hop.

use super::firewall::{parse_endpoint, Endpoint};
use super::flows::{dns_server, hop, Flow, Hop, TCP, UDP};
use crate::certificates::renewal::order_for;
use crate::certificates::{RESPONDER_HTTP01_PORT, RESPONDER_TLS_ALPN01_PORT};
use crate::edge::Edge;
use phoenix_model::model::{AcmeChallenge, Certificate, Model, Owner, San};
use std::net::IpAddr;

/// The id of every flow this module makes starts with it: `challenge:<certificate>:<identifier>`.
pub const FLOW_PREFIX: &str = "challenge:";

fn flow_id(certificate: &str, identifier: &str) -> String {
    format!("{FLOW_PREFIX}{certificate}:{identifier}")
}

/// One flow per identifier of every certificate, when the model has a Step-CA.
pub fn challenge_flows(model: &Model, edge: &Edge, out: &mut Vec<Flow>) {
    let Some(ca) = edge.step_ca else { return };
    let foreign_resolver = foreign_resolver(model, ca.id);
    let ca = Endpoint::Guest(ca.id);
    for cert in &model.certificates {
        for san in order_for(cert).sans() {
            let (identifier, mut hops) = match &san {
                San::Dns(name) => (name.clone(), name_hops(model, edge, cert, ca, name)),
                San::Ip(ip) => (ip.to_string(), address_hops(model, edge, cert, ca, *ip)),
            };
            if let (Some(why), San::Dns(_)) = (&foreign_resolver, &san) {
                hops[0].dead_end.get_or_insert_with(|| why.clone());
            }
            out.push(Flow {
                id: flow_id(&cert.name, &identifier),
                title: format!("Step-CA validates {identifier} of certificate {} over {}", cert.name, cert.challenge.as_str()),
                hops,
            });
        }
    }
}

fn dead(mut hop: Hop, why: String) -> Hop {
    hop.dead_end = Some(why);
    hop
}


fn name_hops(model: &Model, edge: &Edge, cert: &Certificate, ca: Endpoint, name: &str) -> Vec<Hop> {
    match cert.challenge {
        AcmeChallenge::Dns01 => vec![dns_hop(model, ca, name)],
        AcmeChallenge::Http01 if name.starts_with("*.") => {
            let to = dns_server(model);
            vec![dead(
                hop(ca, to, None, RESPONDER_HTTP01_PORT, TCP, "HTTP", format!("Step-CA would fetch http://{name}/.well-known/acme-challenge/"), None),
                format!("{name} is a wildcard, which an ACME server proves only over dns-01 (RFC 8555 section 7.1.3)"),
            )]
        }
        AcmeChallenge::Http01 if web_root(cert).is_some() => {
            let guest = web_root(cert).expect("checked");
            let fetch = format!("Step-CA fetches http://{name}/.well-known/acme-challenge/<token> from the guest's own web server");
            vec![hop(ca, Endpoint::Guest(guest), Some(name), RESPONDER_HTTP01_PORT, TCP, "HTTP", fetch, None)]
        }
        AcmeChallenge::Http01 => {
            // The name must point where a responder is: the host itself, else the gateway.
            let answers = resolved(model, name);
            let index = model.address_index();
            let points_at_host = !answers.is_empty() && answers.iter().all(|ip| matches!(index.owner_of(*ip), Some(Owner::Host)));
            let to = match edge.gateway {
                Some(gateway) if !points_at_host => Endpoint::Guest(gateway.id),
                _ => Endpoint::Host,
            };
            http_hops(model, edge, cert, ca, to, Some(name), name)
        }
        AcmeChallenge::TlsAlpn01 => vec![tls_alpn_hop(model, ca, Endpoint::Host, Some(name), name)],
    }
}

fn address_hops(model: &Model, edge: &Edge, cert: &Certificate, ca: Endpoint, ip: IpAddr) -> Vec<Hop> {
    let to = parse_endpoint(model, &ip.to_string()).unwrap_or(Endpoint::Outside(ip));
    match cert.challenge {
        AcmeChallenge::Dns01 => vec![dead(
            dns_hop(model, ca, &ip.to_string()),
            format!("{ip} is an address, which has no DNS name to hold a TXT record: dns-01 cannot prove it (RFC 8738 section 7)"),
        )],
        AcmeChallenge::Http01 if web_root(cert).is_some() => {
            let guest = web_root(cert).expect("checked");
            let fetch = format!("Step-CA fetches http://{ip}/.well-known/acme-challenge/<token> from the guest's own web server");
            let mut hop = hop(ca, to, None, RESPONDER_HTTP01_PORT, TCP, "HTTP", fetch, None);
            if to != Endpoint::Guest(guest) {
                hop.dead_end = Some(format!(
                    "{ip} is {}, not guest {guest}, whose web root holds the tokens",
                    super::assess::endpoint_label(model, to)
                ));
            }
            vec![hop]
        }
        AcmeChallenge::Http01 => {
            let mut hops = http_hops(model, edge, cert, ca, to, None, &ip.to_string());
            let answers = to == Endpoint::Host || edge.gateway.is_some_and(|g| to == Endpoint::Guest(g.id));
            if !answers {
                hops[0].dead_end = Some(format!(
                    "nothing at {ip}:{RESPONDER_HTTP01_PORT} answers phoenix's challenge: {} neither relays challenges (the gateway does) nor runs phoenix (the Proxmox host does)",
                    super::assess::endpoint_label(model, to)
                ));
            }
            hops
        }
        AcmeChallenge::TlsAlpn01 => vec![tls_alpn_hop(model, ca, to, None, &ip.to_string())],
    }
}

/// Step-CA to `to` on port 80, and on from the gateway to phoenix's responder when `to` relays.
/// The gateway's own certificate gets a caveat: nginx needs it to start, so the relay that would
/// prove it runs only once a certificate is there (a renewal passes; a first issuance cannot).
fn http_hops(model: &Model, edge: &Edge, cert: &Certificate, ca: Endpoint, to: Endpoint, name: Option<&str>, identifier: &str) -> Vec<Hop> {
    let port = RESPONDER_HTTP01_PORT;
    let fetch = format!("Step-CA fetches http://{identifier}/.well-known/acme-challenge/<token>");
    let mut hops = vec![hop(ca, to, name, port, TCP, "HTTP", fetch, None)];
    let Endpoint::Guest(gateway) = to else { return hops };
    if model.edge.gateway != Some(gateway) {
        return hops;
    }
    if !crate::render::nginx::relays_http01(model, edge) {
        hops[0].dead_end = Some("the gateway relays no challenge: its nginx.conf is rendered only with Traefik, and the relay needs the Proxmox host's address".into());
        return hops;
    }
    let relay = "the gateway relays the challenge to phoenix's responder on the Proxmox host".to_string();
    hops.push(hop(to, Endpoint::Host, None, port, TCP, "HTTP", relay, None));
    hops[0].caveat = Some(if cert.guest.as_ref().is_some_and(|g| g.value == gateway) {
        format!("certificate {} is the gateway's own: nginx needs it to start, so its first issuance cannot pass through the gateway's relay (renewals can); issue it over dns-01", cert.name)
    } else {
        "the relay runs once the gateway runs phoenix's nginx.conf, which sync deploys after the certificates: a first issuance cannot pass through it (renewals can)".into()
    });
    hops
}

fn tls_alpn_hop(model: &Model, ca: Endpoint, to: Endpoint, name: Option<&str>, identifier: &str) -> Hop {
    let port = RESPONDER_TLS_ALPN01_PORT;
    let purpose = format!("Step-CA opens TLS with ALPN acme-tls/1 for {identifier}");
    let mut hop = hop(ca, to, name, port, TCP, "TLS", purpose, None);
    if to != Endpoint::Host {
        hop.dead_end = Some(format!(
            "only phoenix's responder on the Proxmox host answers tls-alpn-01, and {identifier} is {}",
            super::assess::endpoint_label(model, to)
        ));
    }
    hop
}

fn dns_hop(model: &Model, ca: Endpoint, identifier: &str) -> Hop {
    let server = dns_server(model);
    let purpose = format!("Step-CA asks phoenix's DNS for the TXT record _acme-challenge.{}", identifier.trim_start_matches("*."));
    let mut hop = hop(ca, server, None, 53, UDP, "DNS", purpose, None);
    if !model.dns.enabled {
        hop.dead_end = Some("phoenix serves no DNS (dns_server.enabled is false), so it has nowhere to publish the TXT record".into());
    } else if let Endpoint::Guest(_) = server {
        hop.dead_end = Some(format!(
            "phoenix writes challenge records only into the Proxmox host's dnsmasq, and phoenix's DNS server is {}",
            super::assess::endpoint_label(model, server)
        ));
    }
    hop
}

/// Why Step-CA would not see phoenix's answers for names: its guest is given a resolver that
/// is not phoenix's DNS server (it then resolves, and looks for TXT records, elsewhere).
/// `None` when it asks phoenix's DNS, or is given no resolver (the node's then).
fn foreign_resolver(model: &Model, ca: u32) -> Option<String> {
    let first = model.guests.get(&ca)?.nic().nameservers.first()?.value;
    let phoenix = dns_server(model).ip(model)?;
    (first != phoenix).then(|| {
        format!("Step-CA's guest resolves through {first}, not phoenix's DNS server {phoenix}: its answers for the manifest's names, and any TXT record, are not phoenix's")
    })
}

/// The guest whose own web server serves the entry's http-01 tokens (`http01_webroot`).
fn web_root(cert: &Certificate) -> Option<u32> {
    cert.http01_webroot.as_ref().and(cert.guest.as_ref()).map(|g| g.value)
}

/// The addresses phoenix's DNS answers for `name`.
fn resolved(model: &Model, name: &str) -> Vec<IpAddr> {
    model.dns.records.iter().filter(|r| r.fqdn == name).map(|r| r.address).collect()
}

/// `phoenix validate`'s view of the same flows: every identifier whose validation path breaks
/// (judged against the rendered firewall and phoenix's DNS records), as PHX-CERT-005 at the
/// identifier in the manifest, naming the hop and why. Wildcards over http-01 and addresses
/// over dns-01 are left to PHX-CERT-004, which the model's validation reports already.
pub fn diagnostics(model: &Model) -> Vec<phoenix_model::diag::Diagnostic> {
    use super::verdict::Status;
    let state = super::firewall::FirewallState::from_rendered(&crate::render::render_firewall(model), model);
    let edge = crate::edge::edge(model);
    // Each flow's certificate and identifier, by the flow's whole id (names may hold ':').
    let mut subjects = std::collections::BTreeMap::new();
    for cert in &model.certificates {
        for identifier in order_for(cert).identifiers {
            subjects.insert(flow_id(&cert.name, &identifier), (cert, identifier));
        }
    }
    let mut out = Vec::new();
    for flow in super::assess::assess(model, &edge, &state, &super::assess::Options::default()) {
        let Some((cert, identifier)) = subjects.get(&flow.id) else { continue };
        let (cert, identifier) = (*cert, identifier.as_str());
        let Some((index, broken)) = flow.hops.iter().enumerate().find(|(_, h)| h.status == Status::Fail) else { continue };
        let reasons: Vec<String> = broken.checks().filter(|c| c.status == Status::Fail).map(|c| c.summary.clone()).collect();
        if identifier.starts_with("*.") && cert.challenge != AcmeChallenge::Dns01
            || identifier.parse::<IpAddr>().is_ok() && cert.challenge == AcmeChallenge::Dns01
        {
            continue;
        }
        let span = cert
            .sans
            .iter()
            .find(|s| match &s.value {
                San::Dns(name) => name == identifier,
                San::Ip(ip) => ip.to_string() == identifier,
            })
            .map_or(cert.common_name.span, |s| s.span);
        out.push(
            phoenix_model::diag::Diagnostic::at(
                "PHX-CERT-005",
                span,
                format!(
                    "Step-CA cannot validate {identifier} of certificate {} over {}: hop {} ({}) fails: {}",
                    cert.name,
                    cert.challenge.as_str(),
                    index + 1,
                    broken.hop.purpose,
                    reasons.join("; ")
                ),
            )
            .help(match cert.challenge {
                AcmeChallenge::Http01 => "point the name at the gateway (which relays to phoenix), the Proxmox host, or a guest with http01_webroot, and let Step-CA reach its port 80; or use dns-01 for a name phoenix's DNS serves (`phoenix assess` shows every hop)",
                AcmeChallenge::TlsAlpn01 => "point the name at the Proxmox host and let Step-CA reach its port 443; or use dns-01 or http-01 (`phoenix assess` shows every hop)",
                AcmeChallenge::Dns01 => "let Step-CA reach phoenix's DNS on the node (udp/53), where phoenix writes the TXT records; or use http-01 (`phoenix assess` shows every hop)",
            }),
        );
    }
    out
}
