//! The assessment as a document: Markdown with the sections of the hand-written reference
//! assessment (a Mermaid sequence diagram, the hop table, bidirectional firewall analysis per
//! guest, certificate and DNS matching, a conclusion listing blocking findings), versioned
//! JSON, and a compact human view. Every status shown is computed and carries its evidence.

use super::assess::{endpoint_label, FlowVerdict, HopVerdict};
use super::firewall::{Endpoint, FirewallState, Skipped};
use super::verdict::{Check, Status};
use phoenix_model::model::Model;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

pub const ASSESS_SCHEMA_VERSION: u32 = 1;

/// Counts over all hops.
pub fn summary(flows: &[FlowVerdict]) -> (usize, usize, usize) {
    let hops: Vec<&HopVerdict> = flows.iter().flat_map(|f| &f.hops).collect();
    let count = |s: Status| hops.iter().filter(|h| h.status == s).count();
    (hops.len(), count(Status::Fail), count(Status::Warning))
}

/// The versioned JSON document of `phoenix assess --format json`, serialised directly (a report
/// of many thousand hops is not first built as a `serde_json::Value`).
#[derive(serde::Serialize)]
pub struct JsonReport<'f> {
    pub schema_version: u32,
    pub judged: &'f str,
    pub nic_assumption: &'static str,
    pub dns_findings: Vec<Finding>,
    pub cluster_rule_findings: Vec<Finding>,
    /// Lines and rules pve-firewall leaves out of the judged files, and why.
    pub skipped_rules: Vec<Skipped>,
    pub summary: JsonSummary,
    pub flows: &'f [FlowVerdict],
}

#[derive(serde::Serialize)]
pub struct Finding {
    pub status: Status,
    pub message: String,
}

#[derive(serde::Serialize)]
pub struct JsonSummary {
    pub flows: usize,
    pub hops: usize,
    pub fail: usize,
    pub warning: usize,
}

pub fn to_json<'f>(model: &Model, flows: &'f [FlowVerdict], state: &'f FirewallState) -> JsonReport<'f> {
    let (hops, fail, warning) = summary(flows);
    JsonReport {
        schema_version: ASSESS_SCHEMA_VERSION,
        judged: &state.origin,
        skipped_rules: state.skipped(),
        nic_assumption: NIC_ASSUMPTION,
        dns_findings: dns_findings(model).into_iter().map(|(status, message)| Finding { status, message }).collect(),
        cluster_rule_findings: cluster_rule_findings(model).into_iter().map(|(status, message)| Finding { status, message }).collect(),
        summary: JsonSummary { flows: flows.len(), hops, fail, warning },
        flows,
    }
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

fn badge(check: &Check) -> String {
    format!("**{}** {}", check.status.word(), cell(&check.summary))
}

fn firewall_cell(hop: &HopVerdict) -> String {
    let decided: Vec<String> = hop.firewall.evidence.iter().map(|e| cell(e)).collect();
    format!("{}<br>{}", badge(&hop.firewall), decided.join("<br>"))
}

fn tls_cell(hop: &HopVerdict) -> String {
    match &hop.tls {
        Some(check) => badge(check),
        None => "no TLS on this hop".into(),
    }
}

fn short(model: &Model, endpoint: Endpoint) -> String {
    match endpoint {
        Endpoint::Host => "Proxmox Host".into(),
        Endpoint::Node(index) => model.host.nodes.get(usize::from(index)).map_or(format!("node {index}"), |n| format!("Proxmox node {}", n.name)),
        Endpoint::Guest(id) => model.guests.get(&id).map_or(format!("guest {id}"), |g| format!("{} ({} {})", g.name, g.kind.label(), g.id)),
        Endpoint::Outside(ip) => format!("external client ({ip})"),
    }
}

/// The flows the first section walks through, like the reference document: the Portainer API
/// request from the host, Traefik's ACME traffic, and Portainer driving its agents.
fn main_hops<'f>(model: &Model, flows: &'f [FlowVerdict]) -> Vec<&'f HopVerdict> {
    let api_host = model.portainer.as_ref().and_then(|p| p.hostname.as_ref()).map(|h| h.value.clone());
    let api = flows
        .iter()
        .find(|f| api_host.as_ref().is_some_and(|h| f.id == format!("route:{h}:host")))
        .or_else(|| flows.iter().find(|f| f.id.starts_with("route:") && f.id.ends_with(":host")));
    let traefik_acme = flows
        .iter()
        .find(|f| f.id.starts_with("acme:") && f.id != "acme:http-01" && model.edge.traefik.is_some_and(|t| f.id == format!("acme:{t}")));
    let agents = flows.iter().filter(|f| f.id.starts_with("portainer:"));
    api.into_iter().chain(traefik_acme).chain(agents).flat_map(|f| &f.hops).collect()
}

fn participant(endpoint: Endpoint) -> String {
    match endpoint {
        Endpoint::Host => "Host".into(),
        Endpoint::Node(index) => format!("Node{index}"),
        Endpoint::Guest(id) => format!("G{id}"),
        Endpoint::Outside(ip) => format!("X{}", ip.to_string().replace(['.', ':'], "_")),
    }
}

fn mermaid(model: &Model, hops: &[&HopVerdict]) -> String {
    let mut out = String::from("```mermaid\nsequenceDiagram\n");
    let mut seen = BTreeSet::new();
    for hop in hops {
        for endpoint in [hop.hop.from, hop.hop.to] {
            if seen.insert(participant(endpoint)) {
                let _ = writeln!(
                    out,
                    "    participant {} as {}",
                    participant(endpoint),
                    endpoint_label(model, endpoint).replace(['(', ')'], "")
                );
            }
        }
    }
    for (i, hop) in hops.iter().enumerate() {
        let arrow = if hop.status == Status::Fail { "-x" } else { "->>" };
        let _ = writeln!(
            out,
            "    {}{arrow}{}: {}. {} {} [{}]",
            participant(hop.hop.from),
            participant(hop.hop.to),
            i + 1,
            hop.hop.protocol,
            hop.hop.purpose,
            hop.status.word()
        );
    }
    out.push_str("```\n");
    out
}

fn hop_table(model: &Model, hops: &[&HopVerdict]) -> String {
    let mut out = String::from(
        "| Step | Source | Destination | Protocol | Purpose | Certificate Status | Firewall Status |\n|---|---|---|---|---|---|---|\n",
    );
    for (i, hop) in hops.iter().enumerate() {
        let mut destination = match (&hop.hop.name, &hop.dns) {
            (Some(name), Some(dns)) => format!("{} via `{name}`<br>DNS: {}", short(model, hop.hop.to), badge(dns)),
            _ => short(model, hop.hop.to),
        };
        if let Some(answer) = &hop.answer {
            destination.push_str(&format!("<br>{}", badge(answer)));
        }
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            i + 1,
            short(model, hop.hop.from),
            destination,
            hop.hop.protocol,
            cell(&hop.hop.purpose),
            tls_cell(hop),
            firewall_cell(hop)
        );
    }
    out
}

fn guest_analysis(model: &Model, flows: &[FlowVerdict]) -> String {
    let mut by_guest: BTreeMap<u32, (Vec<String>, Vec<String>)> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for hop in flows.iter().flat_map(|f| &f.hops) {
        let key = (hop.hop.from, hop.hop.to, hop.hop.port, hop.hop.proto);
        if !seen.insert(key) {
            continue;
        }
        let line = |peer: Endpoint, direction: &str| {
            let chain = hop.firewall_chains.chains.iter().find(|c| c.chain.starts_with(direction)).cloned();
            let decided = chain.map_or("no chain".to_string(), |c| match c.decision {
                super::firewall::Decision::Rule { path, line, text } => format!("{path}:{line} `{}`", text.replace('|', "\\|")),
                super::firewall::Decision::Policy { path, option, action } => format!("{path} {option}: {action}"),
                super::firewall::Decision::Builtin { chain, function, text } => format!("{chain} ({function}) `{text}`"),
                super::firewall::Decision::NotInForce { reason } => format!("not filtered: {reason}"),
            });
            format!(
                "**{}** {} {} ({}): {}",
                hop.firewall.status.word(),
                if direction == "IN" { "from" } else { "to" },
                short(model, peer),
                hop.hop.protocol,
                decided
            )
        };
        if let Endpoint::Guest(id) = hop.hop.to {
            by_guest.entry(id).or_default().0.push(line(hop.hop.from, "IN"));
        }
        if let Endpoint::Guest(id) = hop.hop.from {
            by_guest.entry(id).or_default().1.push(line(hop.hop.to, "OUT"));
        }
    }
    let mut out = String::new();
    let cluster = cluster_rule_findings(model);
    if !cluster.is_empty() {
        out.push_str(
            "Cluster rules filter traffic to and from the host only. These cluster rules name guests, so they allow or block nothing:\n\n",
        );
        for (status, message) in cluster {
            let _ = writeln!(out, "*   **{}** {message}", status.word());
        }
        out.push('\n');
    }
    for (id, (ingress, egress)) in by_guest {
        let Some(guest) = model.guests.get(&id) else { continue };
        let _ = writeln!(out, "### {}\n", endpoint_label(model, Endpoint::Guest(id)));
        let _ = writeln!(
            out,
            "*   **Firewall in force:** {}",
            if guest.firewall.enabled {
                "enabled in the configuration (see each verdict for what is deployed)"
            } else {
                "disabled in the configuration"
            }
        );
        let _ = writeln!(out, "*   **Ingress:**");
        for line in ingress {
            let _ = writeln!(out, "    *   {line}");
        }
        let _ = writeln!(out, "*   **Egress:**");
        for line in egress {
            let _ = writeln!(out, "    *   {line}");
        }
        out.push('\n');
    }
    out
}

/// PHX-DNS findings as report lines: a name pointing at the wrong guest fails, a name the
/// gateway cannot route is a warning (clients get 404).
pub fn dns_findings(model: &Model) -> Vec<(Status, String)> {
    phoenix_model::validate::dns_findings(model)
        .into_iter()
        .map(|d| (if d.code == "PHX-DNS-005" { Status::Warning } else { Status::Fail }, format!("{} ({})", d.message, d.code)))
        .collect()
}

/// Cluster rules that can only concern guests (PHX-FW-009): whoever credits them with guest
/// traffic is wrong, because cluster.fw never filters it.
pub fn cluster_rule_findings(model: &Model) -> Vec<(Status, String)> {
    phoenix_model::validate::cluster_rules_for_guests(model)
        .into_iter()
        .map(|d| (Status::Warning, format!("{} ({})", d.message, d.code)))
        .collect()
}

/// What phoenix assumes about the NICs' firewall=1 flags when it judges rendered files.
pub const NIC_ASSUMPTION: &str = "NIC flags: when phoenix judges the files it renders, a guest's NIC carries firewall=1 if network_config.firewall says so, else exactly when the guest's firewall is enabled, because phoenix sets the flag when it deploys such a guest. State network_config.firewall to override, or judge what is really deployed with --deployed (a copy of /etc/pve, whose .conf files carry the flags).";

fn matching(model: &Model, flows: &[FlowVerdict]) -> String {
    let mut tls = BTreeSet::new();
    let mut dns = BTreeSet::new();
    for hop in flows.iter().flat_map(|f| &f.hops) {
        if let Some(check) = &hop.tls {
            tls.insert(format!("*   **{}** {}", check.status.word(), check.summary));
        }
        if let Some(check) = &hop.dns {
            dns.insert(format!("*   **{}** {}", check.status.word(), check.summary));
        }
    }
    let mut out = String::from("### Certificates\n\n");
    for line in tls {
        out.push_str(&line);
        out.push('\n');
    }
    out.push_str("\n### DNS\n\n");
    for line in dns {
        out.push_str(&line);
        out.push('\n');
    }
    for (status, message) in dns_findings(model) {
        let _ = writeln!(out, "*   **{}** {message}", status.word());
    }
    out
}

fn conclusion(model: &Model, flows: &[FlowVerdict], skipped: &[Skipped]) -> String {
    let mut findings: BTreeMap<(Status, String), BTreeSet<String>> = BTreeMap::new();
    for flow in flows {
        for hop in &flow.hops {
            for check in hop.checks() {
                if check.status != Status::Ok {
                    findings.entry((check.status, check.summary.clone())).or_default().insert(flow.title.clone());
                }
            }
        }
    }
    for (status, message) in dns_findings(model) {
        findings.entry((status, message)).or_default().insert("DNS records".into());
    }
    for (status, message) in cluster_rule_findings(model) {
        findings.entry((status, message)).or_default().insert("cluster.fw".into());
    }
    for skipped in skipped {
        findings.entry((Status::Warning, skipped_line(skipped))).or_default().insert("the judged firewall files".into());
    }
    let (hops, fail, warning) = summary(flows);
    let mut out = format!("{hops} hops in {} flows: {fail} fail, {warning} with warnings.\n\n", flows.len());
    if fail == 0 {
        out.push_str(
            "No hop fails: every declared flow passes its firewalls, resolves, and presents a certificate that covers its name.\n\n",
        );
    }
    for (status, label) in [(Status::Fail, "Blocking findings"), (Status::Warning, "Warnings")] {
        let items: Vec<_> = findings.iter().filter(|((s, _), _)| *s == status).collect();
        if items.is_empty() {
            continue;
        }
        let _ = writeln!(out, "**{label}:**\n");
        for ((_, summary), titles) in items {
            let list: Vec<&str> = titles.iter().map(String::as_str).collect();
            let _ = writeln!(out, "*   {summary} (in: {})", list.join("; "));
        }
        out.push('\n');
    }
    out
}

/// One skipped line as a finding: where, and pve-firewall's reason.
fn skipped_line(skipped: &Skipped) -> String {
    format!("{}:{}: pve-firewall does not apply this line: {}", skipped.path, skipped.line, skipped.reason)
}

/// The Markdown report.
pub fn to_markdown(model: &Model, flows: &[FlowVerdict], state: &FirewallState) -> String {
    let judged = &state.origin;
    let (hops, fail, warning) = summary(flows);
    let main = main_hops(model, flows);
    let mut out = String::from("# Detailed End-to-End System Assessment\n\n");
    let _ = writeln!(out, "Computed by `phoenix assess` from the configuration; every status below carries its evidence. Judged: {judged}. {} flows, {hops} hops: {fail} fail, {warning} with warnings.\n", flows.len());
    let _ = writeln!(out, "{NIC_ASSUMPTION}\n");
    out.push_str("## 1. End-to-End Data Flow & Protocol Analysis\n\n");
    out.push_str(&mermaid(model, &main));
    out.push('\n');
    out.push_str(&hop_table(model, &main));
    out.push_str("\n## 2. Every Flow\n\n");
    for flow in flows {
        let _ = writeln!(out, "### {} ({})\n", flow.title, flow.status.word());
        let hops: Vec<&HopVerdict> = flow.hops.iter().collect();
        out.push_str(&hop_table(model, &hops));
        out.push('\n');
    }
    out.push_str("## 3. Firewall Rule Analysis (Bidirectional)\n\n");
    out.push_str(&guest_analysis(model, flows));
    out.push_str("## 4. Certificate and DNS Matching Analysis\n\n");
    out.push_str(&matching(model, flows));
    out.push_str("\n## Conclusion\n\n");
    out.push_str(&conclusion(model, flows, &state.skipped()));
    out
}

/// A compact view for terminals.
pub fn to_human(model: &Model, flows: &[FlowVerdict], state: &FirewallState) -> String {
    let mut out = format!("Judged: {}\n", state.origin);
    let skipped = state.skipped();
    if !skipped.is_empty() {
        out.push_str("\nLines pve-firewall does not apply (the verdicts below judge the files without them):\n");
        for line in &skipped {
            let _ = writeln!(out, "  WARNING {}", skipped_line(line));
        }
    }
    for flow in flows {
        let _ = writeln!(out, "\n[{}] {}", flow.status.word(), flow.title);
        for (i, hop) in flow.hops.iter().enumerate() {
            let _ = writeln!(
                out,
                "  {}. {} -> {} {}: {}",
                i + 1,
                short(model, hop.hop.from),
                short(model, hop.hop.to),
                hop.hop.protocol,
                hop.status.word()
            );
            for check in hop.checks() {
                if check.status != Status::Ok {
                    let _ = writeln!(out, "       {} {}", check.status.word(), check.summary);
                }
            }
        }
    }
    let (hops, fail, warning) = summary(flows);
    let _ = writeln!(out, "\n{hops} hops in {} flows: {fail} fail, {warning} with warnings", flows.len());
    out
}
