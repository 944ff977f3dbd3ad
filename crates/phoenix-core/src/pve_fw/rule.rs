//! One firewall rule as pve-firewall holds it: a hash of keys (`type`, `action`, `enable`,
//! `macro`, `iface`, `source`, ...), parsed from a rule line, checked, and printed back.
//! Follows pve-firewall `src/PVE/Firewall.pm`: `parse_fw_rule`, `verify_rule` (the checks in
//! its order, with its messages and the parameter each is reported on), `$format_rules`,
//! `copy_rule_data` and `delete_rule_properties`.

use super::addr;
use phoenix_model::pve::fw_names;
use std::collections::BTreeMap;

/// Which rule list a rule belongs to (`$rule_env` in Firewall.pm).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleEnv {
    Cluster,
    Host,
    Vm,
    Ct,
    Group,
}

impl RuleEnv {
    pub fn name(self) -> &'static str {
        match self {
            RuleEnv::Cluster => "cluster",
            RuleEnv::Host => "host",
            RuleEnv::Vm => "vm",
            RuleEnv::Ct => "ct",
            RuleEnv::Group => "group",
        }
    }

    /// `$rule_env_direction_lookup`.
    fn types(self) -> &'static [&'static str] {
        match self {
            RuleEnv::Vm | RuleEnv::Ct => &["in", "out", "group"],
            RuleEnv::Group => &["in", "out", "forward"],
            RuleEnv::Cluster | RuleEnv::Host => &["in", "out", "forward", "group"],
        }
    }

    /// `$rule_env_iface_lookup`.
    fn iface_allowed(self) -> bool {
        !matches!(self, RuleEnv::Group)
    }
}

/// The keys `copy_rule_data` copies and `delete_rule_properties` accepts (`$rule_properties`).
pub const RULE_PROPERTIES: &[&str] = &[
    "pos",
    "digest",
    "type",
    "action",
    "macro",
    "iface",
    "source",
    "dest",
    "proto",
    "enable",
    "log",
    "sport",
    "dport",
    "comment",
    "icmp-type",
];

/// A rule: its keys as Firewall.pm's hash holds them, and the errors `verify_rule` found
/// when the rule was read from a file (an API write refuses instead).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rule {
    pub keys: BTreeMap<String, String>,
    pub errors: BTreeMap<String, String>,
}

/// What a rule's aliases and ipsets are checked against: the cluster's and the scope's own.
#[derive(Debug, Clone, Copy, Default)]
pub struct Names<'c> {
    /// Lower-cased alias name -> IP version, cluster then local.
    pub cluster_aliases: Option<&'c BTreeMap<String, u8>>,
    pub local_aliases: Option<&'c BTreeMap<String, u8>>,
    pub cluster_ipsets: Option<&'c [String]>,
    pub local_ipsets: Option<&'c [String]>,
}

/// A refusal from `verify_rule`: a parameter exception (400) or, for an alias whose IP version
/// conflicts with the rule, a plain `die` outside its eval (500).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Param(String, String),
    Die(String),
}

impl Rule {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.keys.get(key).map(String::as_str)
    }

    /// Perl truthiness of a key: set, not empty and not "0".
    fn truthy(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|v| !v.is_empty() && *v != "0")
    }
}

/// `parse_fw_rule`: a rule line into a rule, checked with `verify_rule` in its collecting mode.
/// An `Err` is a line pve-firewall drops with a warning.
pub fn parse_line(line: &str, env: RuleEnv, names: &Names<'_>) -> Result<Rule, String> {
    let mut rule = Rule::default();
    let mut text = line.to_string();
    // s/#\s*(.*?)\s*$//: the first `#` starts the comment, which is kept even when empty.
    if let Some(at) = text.find('#') {
        rule.keys.insert("comment".into(), text[at + 1..].trim().to_string());
        text.truncate(at);
    }
    let enabled = match text.strip_prefix('|') {
        Some(rest) => {
            text = rest.to_string();
            "0"
        }
        None => "1",
    };
    rule.keys.insert("enable".into(), enabled.into());
    let mut words = text.splitn(3, char::is_whitespace);
    let (Some(kind), Some(action)) = (words.next().filter(|w| !w.is_empty()), words.next().filter(|w| !w.is_empty())) else {
        return Err(format!("unable to parse rule: {}", text.trim_end()));
    };
    let kind = kind.to_ascii_lowercase();
    let mut rest = words.next().unwrap_or_default().trim_start().to_string();
    let mut action = action.to_string();
    if matches!(kind.as_str(), "in" | "out" | "forward") {
        if let Some((name, inner)) = macro_call(&action) {
            rule.keys.insert("macro".into(), name);
            action = inner;
        }
    }
    rule.keys.insert("type".into(), kind.clone());
    rule.keys.insert("action".into(), action);
    while !rest.is_empty() {
        let Some((flag, value, after)) = option(&rest) else { break };
        let key = match flag {
            "-i" => "iface",
            _ if kind == "group" => break,
            "-p" | "-proto" | "--proto" => "proto",
            "-dport" | "--dport" => "dport",
            "-sport" | "--sport" => "sport",
            "-source" | "--source" => "source",
            "-dest" | "--dest" => "dest",
            "-log" | "--log" if LOG_LEVELS.contains(&value) => "log",
            "-icmp-type" | "--icmp-type" => "icmp-type",
            _ => break,
        };
        rule.keys.insert(key.into(), value.to_string());
        rest = after.to_string();
    }
    if !rest.trim_end().is_empty() {
        return Err(format!("unable to parse rule parameters: {}", rest.trim_end()));
    }
    match verify(&mut rule, env, names) {
        Ok(()) => Ok(rule),
        // A plain die escapes the parser's eval around verify_rule: the line is dropped.
        Err(errors) if errors.iter().any(|e| matches!(e, Refusal::Die(_))) => Err("detected mixed ipv4/ipv6 addresses in rule".into()),
        Err(errors) => {
            for error in errors {
                if let Refusal::Param(key, message) = error {
                    rule.errors.entry(key).or_insert(message);
                }
            }
            Ok(rule)
        }
    }
}

pub const LOG_LEVELS: &[&str] = &["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug", "nolog"];

/// `NAME(ACTION)` of a macro rule.
fn macro_call(action: &str) -> Option<(String, String)> {
    let (name, inner) = action.strip_suffix(')')?.split_once('(')?;
    (!name.is_empty() && !name.contains(char::is_whitespace) && ["ACCEPT", "DROP", "REJECT"].contains(&inner))
        .then(|| (name.to_string(), inner.to_string()))
}

/// One `-flag value` (exactly one space between them) at the start of `text`.
fn option(text: &str) -> Option<(&str, &str, &str)> {
    let (flag, rest) = text.split_once(' ')?;
    if !flag.starts_with('-') || rest.starts_with(char::is_whitespace) || rest.is_empty() {
        return None;
    }
    let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    Some((flag, &rest[..end], rest[end..].trim_start()))
}

/// `verify_rule`: every refusal in Firewall.pm's order (an API write reports the first).
/// Canonicalises the macro's spelling and records `ipversion`, as the Perl does.
pub fn verify(rule: &mut Rule, env: RuleEnv, names: &Names<'_>) -> Result<(), Vec<Refusal>> {
    let mut errors = Vec::new();
    let mut error = |key: &str, message: String| errors.push(Refusal::Param(key.to_string(), message));
    let kind = rule.get("type").map(str::to_string);
    let action = rule.get("action").map(str::to_string);
    if kind.is_none() {
        error("type", "missing property".into());
    }
    if action.is_none() {
        error("action", "missing property".into());
    }
    if let (Some(kind), Some(action)) = (&kind, &action) {
        if !env.types().contains(&kind.as_str()) {
            error("type", format!("invalid rule type '{kind}' for rule_env '{}'", env.name()));
        } else if kind == "group" {
            if !fw_names::matches_pattern(action) {
                error("action", "invalid characters in security group name".into());
            }
        } else if kind == "forward" && action == "REJECT" {
            error("action", "cannot define REJECT rules on forward chain".into());
        } else if !["ACCEPT", "DROP", "REJECT"].contains(&action.as_str()) {
            error("action", format!("unknown action '{action}'"));
        }
    }
    if let Some(iface) = rule.get("iface").map(str::to_string) {
        if !env.iface_allowed() {
            error("type", "parameter -i not allowed for this rule type".into());
        } else if !fw_names::iface_valid(&iface) {
            error("iface", format!("invalid network interface name '{iface}'"));
        } else if matches!(env, RuleEnv::Vm | RuleEnv::Ct) && !fw_names::is_nic_key(&iface) {
            error("iface", "value does not match the regex pattern 'net\\d+'".into());
        }
    }
    if let Some(name) = rule.get("macro").map(str::to_string) {
        match phoenix_model::pve::macros::find(&name) {
            Some(known) => {
                rule.keys.insert("macro".into(), known.name.to_string());
            }
            None => error("macro", format!("unknown macro '{name}'")),
        }
    }
    let mut version: Option<u8> = None;
    let proto = rule.truthy("proto").map(str::to_string);
    if let Some(proto) = &proto {
        if let Err(message) = addr::verify_protocol(proto) {
            error("proto", message);
        }
        version = match proto.as_str() {
            "icmp" => Some(4),
            "icmpv6" | "ipv6-icmp" => Some(6),
            _ => None,
        };
    }
    let icmp = proto.as_deref().is_some_and(addr::is_icmp);
    let ports_ok = |proto: &Option<String>| proto.as_deref().is_some_and(addr::protocol_has_ports);
    if let Some(dport) = rule.truthy("dport").map(str::to_string) {
        if let Err(message) = addr::parse_ports(&dport, icmp) {
            error("dport", message);
        }
        if proto.is_none() {
            error("proto", "missing property - 'dport' requires this property".into());
        }
        if !ports_ok(&proto) && !icmp {
            error("dport", format!("protocol '{}' does not support ports", proto.clone().unwrap_or_default()));
        }
    }
    if let Some(icmp_type) = rule.get("icmp-type").filter(|t| !t.is_empty()).map(str::to_string) {
        let proto = proto.clone().unwrap_or_default();
        if !icmp {
            error("proto", "missing property - 'icmp-type' requires this property".into());
        } else if rule.truthy("dport").is_some() {
            error("icmp-type", "'icmp-type' cannot be specified together with 'dport'".into());
        } else if proto == "icmp" && !addr::is_icmp_type_name(&icmp_type) {
            error("icmp-type", format!("invalid icmp-type '{icmp_type}' for proto 'icmp'"));
        } else if proto != "icmp" && !addr::ICMPV6_TYPES.contains(&icmp_type.as_str()) {
            error("icmp-type", format!("invalid icmp-type '{icmp_type}' for proto '{proto}'"));
        }
    }
    if let Some(sport) = rule.truthy("sport").map(str::to_string) {
        if let Err(message) = addr::parse_ports(&sport, false) {
            error("sport", message);
        }
        if proto.is_none() {
            error("proto", "missing property - 'sport' requires this property".into());
        }
        if !ports_ok(&proto) {
            error("sport", format!("protocol '{}' does not support ports", proto.clone().unwrap_or_default()));
        }
    }
    for side in ["source", "dest"] {
        let Some(value) = rule.get(side).filter(|v| !v.is_empty()).map(str::to_string) else { continue };
        match addr::parse_address_list(&value) {
            Err(message) => error(side, message),
            Ok(Some(v)) if version.is_some_and(|known| known != v) => error(side, "detected mixed ipv4/ipv6 addresses in rule".into()),
            Ok(Some(v)) => version = Some(v),
            Ok(None) => match reference(&value, names) {
                Reference::Missing(message) => error(side, message),
                Reference::Alias(Some(v)) if version.is_some_and(|known| known != v) => {
                    errors.push(Refusal::Die("detected mixed ipv4/ipv6 addresses in rule".into()));
                    return Err(errors);
                }
                Reference::Alias(Some(v)) => version = Some(v),
                _ => {}
            },
        }
    }
    if let Some(v) = version {
        rule.keys.insert("ipversion".into(), v.to_string());
    }
    if errors.is_empty() {
        if let Some(name) = rule.get("macro").map(str::to_string) {
            errors.extend(apply_macro_conflicts(rule, &name, version));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

enum Reference {
    Missing(String),
    /// An alias, with its IP version when known.
    Alias(Option<u8>),
    IpSet,
}

/// `$check_ipset_or_alias_property`: ipsets are found case-sensitively whatever their scope
/// prefix, aliases by their lower-cased name.
fn reference(value: &str, names: &Names<'_>) -> Reference {
    if let Some(set) = value.strip_prefix('+') {
        let name = ["guest/", "dc/", "sdn/"].iter().find_map(|p| set.strip_prefix(p)).unwrap_or(set);
        if !fw_names::matches_pattern(name) {
            return Reference::Missing(format!("invalid ipset name '{value}'"));
        }
        let known = [names.cluster_ipsets, names.local_ipsets].iter().flatten().any(|sets| sets.iter().any(|s| s == name));
        return if known { Reference::IpSet } else { Reference::Missing(format!("no such ipset '{name}'")) };
    }
    let (scope, alias) = match value.split_once('/') {
        Some((scope @ ("dc" | "guest"), alias)) => (Some(scope), alias.to_ascii_lowercase()),
        _ => (None, value.to_ascii_lowercase()),
    };
    let local = names.local_aliases.and_then(|a| a.get(&alias)).copied();
    let cluster = names.cluster_aliases.and_then(|a| a.get(&alias)).copied();
    if local.is_none() && cluster.is_none() {
        return Reference::Missing(format!("no such alias '{value}'"));
    }
    Reference::Alias(match scope {
        Some("dc") => cluster,
        Some("guest") => local,
        _ => local.or(cluster),
    })
}

/// `$apply_macro` with its conflict check: a key the rule sets that the macro also sets, to a
/// different value, is refused ("already define" [sic]).
fn apply_macro_conflicts(rule: &Rule, name: &str, version: Option<u8>) -> Vec<Refusal> {
    let Some(known) = phoenix_model::pve::macros::find(name) else { return Vec::new() };
    if known.ipv6_only && version != Some(6) {
        return Vec::new();
    }
    let rules = if version == Some(6) { known.ipv6_rules.unwrap_or(known.rules) } else { known.rules };
    let mut refusals = Vec::new();
    for template in rules {
        for (key, value) in [("proto", Some(template.proto)), ("dport", template.dport), ("sport", template.sport)] {
            let (Some(value), Some(own)) = (value, rule.truthy(key)) else { continue };
            if own != value {
                refusals.push(Refusal::Param(key.into(), format!("parameter '{key}' already define in macro (value = '{value}')")));
                return refusals;
            }
        }
    }
    refusals
}

/// `$format_rules`: the rule line as pve-firewall writes it. Security-group rules are written
/// without `-i`; a GROUP rule keeps only its interface and comment.
pub fn format_line(rule: &Rule, allow_iface: bool) -> String {
    let mut line = String::new();
    if rule.get("enable").is_some_and(|e| e.is_empty() || e == "0") {
        line.push('|');
    }
    let kind = rule.get("type").unwrap_or_default();
    line.push_str(&kind.to_ascii_uppercase());
    match rule.truthy("macro") {
        Some(name) => line.push_str(&format!(" {name}({})", rule.get("action").unwrap_or_default())),
        None => line.push_str(&format!(" {}", rule.get("action").unwrap_or_default())),
    }
    if allow_iface {
        if let Some(iface) = rule.truthy("iface") {
            line.push_str(&format!(" -i {iface}"));
        }
    }
    if kind != "group" {
        for (key, flag) in [("source", "source"), ("dest", "dest"), ("proto", "p"), ("dport", "dport"), ("sport", "sport"), ("log", "log")]
        {
            if let Some(value) = rule.truthy(key) {
                line.push_str(&format!(" -{flag} {value}"));
            }
        }
        if let Some(icmp_type) = rule.get("icmp-type").filter(|t| !t.is_empty()) {
            line.push_str(&format!(" -icmp-type {icmp_type}"));
        }
    }
    if let Some(comment) = rule.get("comment").filter(|c| !c.trim().is_empty() && *c != "0") {
        line.push_str(&format!(" # {comment}"));
    }
    line
}

/// `copy_rule_data`: the given keys copied; `''` or `-` deletes a key.
pub fn copy_data(rule: &mut Rule, params: &BTreeMap<String, String>) {
    for key in RULE_PROPERTIES {
        match params.get(*key).map(String::as_str) {
            Some("" | "-") => {
                rule.keys.remove(*key);
            }
            Some(value) => {
                rule.keys.insert(key.to_string(), value.to_string());
            }
            None => {}
        }
    }
}

/// `delete_rule_properties`: refusals are parameter exceptions on `delete`.
pub fn delete_properties(rule: &mut Rule, list: &str) -> Result<(), (String, String)> {
    for name in list.split([',', ';', ' ', '\0']).filter(|n| !n.is_empty()) {
        if !RULE_PROPERTIES.contains(&name) {
            return Err(("delete".into(), format!("no such property ('{name}')")));
        }
        if name == "type" || name == "action" {
            return Err(("delete".into(), format!("unable to delete required property '{name}'")));
        }
        rule.keys.remove(name);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str, env: RuleEnv) -> Rule {
        parse_line(line, env, &Names::default()).unwrap()
    }

    #[test]
    fn lines_parse_into_pve_firewalls_keys_and_print_back() {
        let rule = parse("|IN ssh(ACCEPT) -i net0 -source 10.0.0.0/24 -p tcp -log nolog # admin", RuleEnv::Vm);
        assert_eq!(rule.get("macro"), Some("SSH"), "the macro's canonical spelling");
        assert_eq!(rule.get("enable"), Some("0"));
        assert_eq!(rule.get("ipversion"), Some("4"));
        assert!(rule.errors.is_empty(), "{:?}", rule.errors);
        assert_eq!(format_line(&rule, true), "|IN SSH(ACCEPT) -i net0 -source 10.0.0.0/24 -p tcp -log nolog # admin");
        assert_eq!(parse("in ACCEPT --dport 22 --proto tcp", RuleEnv::Host).get("dport"), Some("22"));
    }

    #[test]
    fn invalid_rules_are_kept_with_their_errors() {
        let no_proto = parse("IN ACCEPT -dport 22", RuleEnv::Vm);
        assert_eq!(no_proto.errors["proto"], "missing property - 'dport' requires this property");
        let macro_port = parse("IN SSH(ACCEPT) -dport 22", RuleEnv::Vm);
        assert!(macro_port.errors.contains_key("proto"), "proto is checked before the macro");
        assert_eq!(parse("IN Nope(ACCEPT)", RuleEnv::Vm).errors["macro"], "unknown macro 'Nope'");
        assert!(parse("IN ACCEPT -i eth0", RuleEnv::Ct).errors.contains_key("iface"));
        assert!(parse("GROUP web", RuleEnv::Group).errors.contains_key("type"), "no groups inside groups");
        assert_eq!(parse("IN accept", RuleEnv::Vm).errors["action"], "unknown action 'accept'");
        assert!(parse_line("IN ACCEPT -colour red", RuleEnv::Vm, &Names::default()).is_err(), "an unknown flag drops the line");
    }

    #[test]
    fn a_macro_conflicts_with_a_different_own_value() {
        let mut rule = parse("IN ACCEPT", RuleEnv::Vm);
        rule.keys.insert("macro".into(), "SSH".into());
        rule.keys.insert("proto".into(), "udp".into());
        assert!(matches!(&verify(&mut rule, RuleEnv::Vm, &Names::default()).unwrap_err()[0], Refusal::Param(k, _) if k == "proto"));
    }
}
