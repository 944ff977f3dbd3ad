//! Verdicts for every hop of every flow, each with its evidence: the firewall (chain by
//! chain, citing file, line and rule, or the policy, or why no firewall is in force), DNS (what
//! the name resolves to per the records phoenix serves) and TLS (the certificate the server
//! presents, whether it covers the name and has serverAuth, and client certificates for mTLS).
//! A missing certificate or trust setting is a finding, never silence.

use super::firewall::{evaluate, Endpoint, FirewallState, FirewallVerdict, Packet};
use super::flows::{flows, Flow, Hop, TlsHop};
use crate::edge::{server_certificate_for, Edge};
use phoenix_model::model::{CertUsage, Model, Owner};
use serde::Serialize;
use std::net::IpAddr;

use super::verdict::{Check, Status};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HopVerdict {
    pub hop: Hop,
    pub status: Status,
    pub firewall: Check,
    pub firewall_chains: FirewallVerdict,
    pub dns: Option<Check>,
    pub tls: Option<Check>,
    /// Whether anything at the destination does what the hop is for (set for hops whose
    /// flow already shows that nothing does, or only under a condition: [`Hop::dead_end`],
    /// [`Hop::caveat`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer: Option<Check>,
}

impl HopVerdict {
    /// Every check made on the hop, firewall first.
    pub fn checks(&self) -> impl Iterator<Item = &Check> {
        [Some(&self.firewall), self.dns.as_ref(), self.tls.as_ref(), self.answer.as_ref()].into_iter().flatten()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlowVerdict {
    pub id: String,
    pub title: String,
    pub status: Status,
    pub hops: Vec<HopVerdict>,
}

/// What the assessment is told besides the model: certificate files and the time to judge at.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--certs DIR`: PEM files by name; without it certificates are judged from the manifest.
    pub certs: Option<crate::pki::CertStore>,
    /// Seconds since the epoch (`--now`; the caller's clock by default).
    pub now: u64,
}

/// Names an endpoint for people.
pub fn endpoint_label(model: &Model, endpoint: Endpoint) -> String {
    match endpoint {
        Endpoint::Host => format!("Proxmox host ({})", model.host.ip().map_or("?".into(), |ip| ip.to_string())),
        Endpoint::Node(index) => match model.host.nodes.get(usize::from(index)) {
            Some(n) => format!("Proxmox node {} ({})", n.name, n.address.as_ref().map_or("?".into(), |a| a.value.to_string())),
            None => format!("node {index}"),
        },
        Endpoint::Guest(id) => match model.guests.get(&id) {
            Some(g) => format!("{} ({} {} - {})", g.name, g.kind.label(), g.id, g.address().map_or("no address".into(), |a| a.to_string())),
            None => format!("guest {id}"),
        },
        Endpoint::Outside(ip) => format!("external client ({ip})"),
    }
}

fn firewall_check(verdict: &FirewallVerdict, hop: &Hop) -> Check {
    let evidence: Vec<String> = verdict.chains.iter().map(|c| format!("{}: {}", c.chain, c.decision.describe())).collect();
    let what = format!("{}/{}", if hop.proto == super::flows::UDP { "udp" } else { "tcp" }, hop.port);
    let (status, summary) = if !verdict.passes {
        let blocked = verdict.chains.iter().find(|c| !c.passes).map_or(String::new(), |c| c.chain.clone());
        (Status::Fail, format!("blocked ({what}) by the {blocked} chain"))
    } else if verdict.unprotected {
        (Status::Warning, format!("open and unprotected ({what}): a firewall on the way is not in force"))
    } else if verdict.chains.is_empty() {
        (Status::Ok, format!("allowed ({what}): no Proxmox firewall on this path"))
    } else {
        (Status::Ok, format!("allowed ({what}) by rule or policy"))
    };
    Check { status, summary, evidence }
}

/// Lookups built once per assessment (a hop-by-hop scan of every record would be quadratic).
struct Indexes<'m> {
    addresses: phoenix_model::model::AddressIndex<'m>,
    records: std::collections::HashMap<&'m str, Vec<IpAddr>>,
}

impl<'m> Indexes<'m> {
    fn new(model: &'m Model) -> Self {
        let mut records: std::collections::HashMap<&str, Vec<IpAddr>> = std::collections::HashMap::new();
        for record in &model.dns.records {
            records.entry(record.fqdn.as_str()).or_default().push(record.address);
        }
        Indexes { addresses: model.address_index(), records }
    }
}

/// The source's way to phoenix's DNS server: `None` when it passes (or the source is the server
/// itself, or outside, where another resolver holds the external view), else why not.
fn resolver_blocked(model: &Model, firewall: &FirewallState, from: Endpoint) -> Option<String> {
    let server = super::flows::dns_server(model);
    if from == server || matches!(from, Endpoint::Outside(_)) {
        return None;
    }
    let verdict = evaluate(firewall, model, from, server, Packet::to(17, 53));
    let blocking = verdict.chains.iter().find(|c| !c.passes)?;
    let address = server.ip(model).map(|ip| ip.to_string()).unwrap_or_else(|| "the DNS server".into());
    Some(format!(
        "{} cannot ask the DNS server {address} (UDP/53): {} {}",
        endpoint_label(model, from),
        blocking.chain,
        blocking.decision.describe()
    ))
}

fn dns_check(model: &Model, indexes: &Indexes<'_>, firewall: &FirewallState, hop: &Hop) -> Option<Check> {
    let name = hop.name.as_ref()?;
    let want = hop.to.ip(model)?;
    if let Some(reason) = resolver_blocked(model, firewall, hop.from) {
        return Some(Check { status: Status::Fail, summary: format!("{name} cannot be resolved: {reason}"), evidence: Vec::new() });
    }
    let answers: Vec<IpAddr> = indexes.records.get(name.as_str()).cloned().unwrap_or_default();
    let owner = |ip: IpAddr| match indexes.addresses.owner_of(ip) {
        Some(Owner::Guest(g)) => g.label(),
        Some(Owner::Host) => "the Proxmox host".into(),
        Some(Owner::External(e)) => e.name.clone(),
        None => "nobody phoenix knows".into(),
    };
    let evidence = answers.iter().map(|a| format!("{name} A {a} ({})", owner(*a))).collect();
    Some(if answers.is_empty() {
        Check { status: Status::Fail, summary: format!("{name} does not resolve: phoenix's DNS has no record for it"), evidence }
    } else if answers.iter().all(|a| *a == want) {
        Check { status: Status::Ok, summary: format!("{name} resolves to {want}"), evidence }
    } else {
        let wrong: Vec<String> = answers.iter().filter(|a| **a != want).map(|a| format!("{a} ({})", owner(*a))).collect();
        Check { status: Status::Fail, summary: format!("{name} resolves to {} instead of {want}", wrong.join(", ")), evidence }
    })
}

/// Folds a file check into the hop's TLS verdict.
fn absorb(status: &mut Status, summary: &mut Vec<String>, evidence: &mut Vec<String>, check: Check) {
    *status = (*status).max(check.status);
    summary.push(check.summary);
    evidence.extend(check.evidence);
}

fn tls_check(model: &Model, edge: &Edge, tls: &TlsHop, options: &Options) -> Check {
    let server = model.guests.get(&tls.server).map_or(format!("guest {}", tls.server), |g| g.label());
    let mut evidence = Vec::new();
    let mut status = Status::Ok;
    let mut summary = vec![format!("TLS {}", tls.mode)];
    if !tls.verified {
        status = Status::Warning;
        summary.push(format!("{server}'s certificate is not verified (Portainer registers agents with TLSSkipVerify)"));
    } else if edge.step_ca.is_some_and(|ca| ca.id == tls.server) {
        summary.push(format!("Step-CA presents its own certificate for {}", tls.server_name));
        evidence.push("Step-CA issues its serving certificate from its own root at initialisation".into());
    } else if !tls.terminated_here {
        // The certificate of this stream was judged on the hop where the client opened it.
    } else {
        match server_certificate_for(model, tls.server, &tls.server_name) {
            Some(cert) => {
                summary.push(format!("{server} presents certificate {} covering {}", cert.name, tls.server_name));
                evidence.push(
                    format!("certificate-manifest.json: {} (CN {}, {:?})", cert.name, cert.common_name.value, cert.usage).to_lowercase(),
                );
                match &options.certs {
                    Some(store) => {
                        let check = super::certs::check(store, &cert.name, super::certs::Purpose::Server(&tls.server_name), options.now);
                        absorb(&mut status, &mut summary, &mut evidence, check);
                    }
                    None => evidence.push("the certificate files were not inspected (give --certs DIR)".into()),
                }
            }
            None if edge.traefik.is_some_and(|t| t.id == tls.server) && crate::render::traefik::acme_directory(model).is_some() => {
                summary.push(format!("Traefik obtains a certificate for {} from Step-CA over ACME", tls.server_name));
                evidence.push(format!(
                    "traefik.yml: certificatesResolvers.{} at {} (no manifest certificate covers the name)",
                    crate::render::traefik::RESOLVER,
                    crate::render::traefik::acme_directory(model).unwrap_or_default()
                ));
            }
            None => {
                status = Status::Fail;
                let on_guest: Vec<String> = model
                    .certificates
                    .iter()
                    .filter(|c| c.guest.as_ref().is_some_and(|g| g.value == tls.server))
                    .map(|c| c.name.clone())
                    .collect();
                summary.push(format!("no certificate on {server} covers {}", tls.server_name));
                evidence.push(if on_guest.is_empty() {
                    format!("certificate-manifest.json declares no certificate for {server}")
                } else {
                    format!("certificates on {server}: {} (none covers {})", on_guest.join(", "), tls.server_name)
                });
            }
        }
    }
    match (&tls.client_certificate, tls.client_certificate_required) {
        (None, true) => {
            status = Status::Fail;
            summary.push("the server requires a client certificate and none is presented".into());
        }
        (None, false) if tls.mutual_in_question => summary.push("no client certificate is presented, so there is no mTLS".into()),
        (None, false) => {}
        (Some(name), _) => match model.certificates.iter().find(|c| &c.name == name) {
            Some(cert) if cert.usage != CertUsage::Server => {
                summary.push(format!("mTLS: the client presents {name} (clientAuth)"));
                if let Some(store) = &options.certs {
                    absorb(
                        &mut status,
                        &mut summary,
                        &mut evidence,
                        super::certs::check(store, name, super::certs::Purpose::Client, options.now),
                    );
                }
            }
            Some(_) => {
                status = Status::Fail;
                summary.push(format!("client certificate {name} lacks clientAuth (cert_type is server)"));
            }
            None => {
                status = Status::Fail;
                summary.push(format!("client certificate {name} is not in the certificate manifest"));
            }
        },
    }
    Check { status, summary: summary.join("; "), evidence }
}

/// Judges every flow the configuration implies against `firewall` (rendered or deployed).
pub fn assess(model: &Model, edge: &Edge, state: &FirewallState, options: &Options) -> Vec<FlowVerdict> {
    let indexes = Indexes::new(model);
    flows(model, edge)
        .into_iter()
        .map(|flow: Flow| {
            let hops: Vec<HopVerdict> = flow
                .hops
                .into_iter()
                .map(|hop| {
                    let verdict = evaluate(state, model, hop.from, hop.to, Packet::to(hop.proto, hop.port));
                    let firewall = firewall_check(&verdict, &hop);
                    let dns = dns_check(model, &indexes, state, &hop);
                    let tls = hop.tls.as_ref().map(|t| tls_check(model, edge, t, options));
                    let answer = match (&hop.dead_end, &hop.caveat) {
                        (Some(why), _) => Some(Check { status: Status::Fail, summary: why.clone(), evidence: Vec::new() }),
                        (None, Some(why)) => Some(Check { status: Status::Warning, summary: why.clone(), evidence: Vec::new() }),
                        (None, None) => None,
                    };
                    let mut verdict = HopVerdict { hop, status: Status::Ok, firewall, firewall_chains: verdict, dns, tls, answer };
                    verdict.status = verdict.checks().map(|c| c.status).max().unwrap_or(Status::Ok);
                    verdict
                })
                .collect();
            let status = hops.iter().map(|h| h.status).max().unwrap_or(Status::Ok);
            FlowVerdict { id: flow.id, title: flow.title, status, hops }
        })
        .collect()
}
