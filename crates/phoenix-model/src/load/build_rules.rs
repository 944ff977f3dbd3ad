//! Firewall rules from their legacy objects: every field parsed as pve-firewall would parse
//! it, every malformed field reported at its own span.

use super::Ctx;
use crate::diag::Diagnostic;
use crate::json::{Cursor, JsonDoc};
use crate::model::*;
use crate::raw::{RawRule, StrOrNum};
use crate::source::Span;

/// Builds the rules of the list at `pointer` of `doc`.
pub fn build_at(doc: &JsonDoc, pointer: &str, raw: &[Option<RawRule>], scope: &Scope, ctx: &mut Ctx<'_>) -> Vec<Rule> {
    build_list(doc.cursor(pointer), doc.span(pointer), raw, scope, ctx)
}

/// Builds the rules of one list; `list` is the array's cursor (`fallback` when it is absent).
pub fn build_list(list: Option<Cursor<'_>>, fallback: Span, raw: &[Option<RawRule>], scope: &Scope, ctx: &mut Ctx<'_>) -> Vec<Rule> {
    raw.iter()
        .enumerate()
        .filter_map(|(i, rule)| {
            let node = list.and_then(|l| l.at(i));
            Some(build_rule(node, list.map_or(fallback, |l| l.span()), rule.as_ref()?, scope.clone(), i, ctx))
        })
        .collect()
}

/// Diagnostics of one rule: any of them makes the rule malformed (validate reported it, so
/// it is never rendered).
struct Findings<'c, 'a> {
    ctx: &'c mut Ctx<'a>,
    /// The rule's own span, for fields that have none.
    span: Span,
    malformed: bool,
}

impl Findings<'_, '_> {
    fn report(&mut self, diagnostic: Diagnostic) {
        self.malformed = true;
        self.ctx.push(diagnostic);
    }
}

fn build_rule(node: Option<Cursor<'_>>, fallback: Span, raw: &RawRule, scope: Scope, position: usize, ctx: &mut Ctx<'_>) -> Rule {
    let span = node.map_or(fallback, |n| n.span());
    let field = |name: &str, present: bool| present.then(|| node.map_or(span, |n| n.span_of(name)));
    let port_field = if raw.dport.is_some() { "dport" } else { "port" };
    let spans = RuleSpans {
        source: field("source", raw.source.is_some()),
        dest: field("dest", raw.dest.is_some()),
        dport: field(port_field, raw.dport.is_some() || raw.port.is_some()),
        sport: field("sport", raw.sport.is_some()),
        proto: field("proto", raw.proto.is_some()),
        action: field("action", raw.action.is_some()),
        direction: field("type", raw.direction.is_some()),
    };
    let mut findings = Findings { ctx, span, malformed: false };
    let (direction, verdict) = type_and_verdict(raw, &spans, &mut findings);
    let proto = raw.proto.as_deref().and_then(|text| protocol(text, spans.proto, &mut findings));
    let dport = ports(raw.dport.as_ref().or(raw.port.as_ref()), spans.dport, &mut findings);
    let sport = ports(raw.sport.as_ref(), spans.sport, &mut findings);
    let source = address(raw.source.as_ref(), spans.source, &mut findings);
    let dest = address(raw.dest.as_ref(), spans.dest, &mut findings);

    // Without a protocol but with a macro, the refusal is PHX-FW-010's (the macro does not help).
    let ports_written = raw.dport.is_some() || raw.port.is_some() || raw.sport.is_some();
    if ports_written && !proto.as_ref().is_some_and(Proto::has_ports) && (proto.is_some() || raw.macro_name.is_none()) {
        let at = spans.proto.or(spans.dport).unwrap_or(span);
        let what = proto.as_ref().map_or("no protocol".to_string(), |p| format!("protocol {}", p.name));
        findings.report(
            Diagnostic::at("PHX-FW-003", at, format!("a port is given with {what}; pve-firewall refuses it"))
                .help("set \"proto\": \"tcp\" or \"udp\""),
        );
    }

    let macro_span = field("macro", raw.macro_name.is_some());
    let iface_span = field("iface", raw.iface.is_some());
    let parts = super::rule_refusals::Parts {
        scope: &scope,
        verdict: &verdict,
        iface: raw.iface.as_deref().map(|i| (i, iface_span)),
        macro_name: raw.macro_name.as_deref().map(|m| (m, macro_span)),
        proto: proto.as_ref(),
        proto_span: spans.proto,
        ports: [("dport", dport.as_ref(), spans.dport), ("sport", sport.as_ref(), spans.sport)],
        addresses: [("source", source.as_ref(), spans.source), ("dest", dest.as_ref(), spans.dest)],
        match_options: ports_written || raw.proto.is_some() || raw.source.is_some() || raw.dest.is_some() || raw.log.is_some(),
    };
    for refused in super::rule_refusals::check(&parts) {
        findings.report(Diagnostic::at("PHX-FW-010", refused.span.unwrap_or(span), refused.message).help(refused.help));
    }
    // verify_rule rewrites a known macro to its canonical spelling.
    let macro_name = raw.macro_name.as_deref().map(|m| super::rule_refusals::canonical_macro(m).unwrap_or(m).to_string());

    Rule {
        scope,
        position,
        direction,
        verdict,
        proto,
        dport,
        sport,
        source,
        dest,
        iface: raw.iface.clone(),
        macro_name,
        comment: raw.comment.clone(),
        enabled: raw.enabled.unwrap_or(true),
        log: raw.log.clone(),
        malformed: findings.malformed,
        span,
        spans,
    }
}

/// The rule's type and what it does; a missing or unknown one is reported (and the rule
/// becomes a malformed IN DROP that is never rendered).
fn type_and_verdict(raw: &RawRule, spans: &RuleSpans, findings: &mut Findings<'_, '_>) -> (Direction, Verdict) {
    let span = findings.span;
    if raw.direction.as_deref() == Some("group") {
        return match raw.action.as_deref() {
            // pve-firewall reads group names in lower case (generic_fw_config_parser).
            Some(group) if !group.is_empty() => (Direction::In, Verdict::Group(group.to_ascii_lowercase())),
            _ => {
                let at = spans.action.unwrap_or(span);
                findings.report(Diagnostic::at("PHX-FW-004", at, "a `group` rule must name the security group in `action`"));
                (Direction::In, Verdict::Action(Action::Drop))
            }
        };
    }
    let direction = match raw.direction.as_deref() {
        Some("in") => Direction::In,
        Some("out") => Direction::Out,
        Some(text) => {
            let at = spans.direction.unwrap_or(span);
            findings.report(Diagnostic::at("PHX-FW-005", at, format!("rule type `{text}` is not in, out or group")));
            Direction::In
        }
        None => {
            findings.report(
                Diagnostic::at("PHX-FW-005", span, "rule has no `type` (in, out or group)").help("add \"type\": \"in\" or \"out\""),
            );
            Direction::In
        }
    };
    let action = match raw.action.as_deref().map(|a| (a, Action::parse(a))) {
        Some((_, Some(action))) => action,
        Some((text, None)) => {
            let help = match Action::parse(&text.to_ascii_uppercase()) {
                Some(a) => format!("write `{}`: pve-firewall actions are upper case", a.as_pve()),
                None => "use ACCEPT, DROP or REJECT".to_string(),
            };
            let at = spans.action.unwrap_or(span);
            findings.report(Diagnostic::at("PHX-FW-004", at, format!("`{text}` is not a firewall action")).help(help));
            Action::Drop
        }
        None => {
            findings.report(
                Diagnostic::at("PHX-FW-004", span, "rule has no `action`").help("add \"action\": \"ACCEPT\", \"DROP\" or \"REJECT\""),
            );
            Action::Drop
        }
    };
    (direction, Verdict::Action(action))
}

fn protocol(text: &str, at: Option<Span>, findings: &mut Findings<'_, '_>) -> Option<Proto> {
    Proto::parse(text)
        .map_err(|message| {
            let diagnostic = Diagnostic::at("PHX-FW-003", at.unwrap_or(findings.span), message);
            findings.report(diagnostic.help("use tcp, udp, icmp, ... or a protocol number"));
        })
        .ok()
}

fn ports(value: Option<&StrOrNum>, at: Option<Span>, findings: &mut Findings<'_, '_>) -> Option<PortSet> {
    PortSet::parse(&value?.to_string())
        .map_err(|message| {
            let diagnostic = Diagnostic::at("PHX-FW-002", at.unwrap_or(findings.span), message);
            findings.report(diagnostic.help("write a port, a list (80,443) or a range (8000:8010)"));
        })
        .ok()
}

fn address(value: Option<&String>, at: Option<Span>, findings: &mut Findings<'_, '_>) -> Option<AddrSpec> {
    AddrSpec::parse(value?)
        .map_err(|message| {
            let diagnostic = Diagnostic::at("PHX-FW-001", at.unwrap_or(findings.span), message);
            findings.report(diagnostic.help("write an IP, a CIDR (10.0.0.0/24), a range, an alias or +ipset"));
        })
        .ok()
}
