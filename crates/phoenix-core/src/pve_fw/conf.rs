//! pve-firewall's own reading of a `.fw` file, and its writing back: `cluster.fw`, a node's
//! `host.fw` and a guest's `<vmid>.fw` as pve-firewall `src/PVE/Firewall.pm` reads them
//! (`generic_fw_config_parser`, `parse_alias`, the option parsers) and writes them
//! (`save_clusterfw_conf`, `save_hostfw_conf`, `save_vmfw_conf`, `$format_aliases`,
//! `$format_ipsets`). A line pve-firewall skips is a warning, never a refusal of the file;
//! a rule `verify_rule` finds errors in is kept with them (the generators then skip it).
//! The simulator keeps its files in this form; the evaluator judges them in it.
//! Must not answer API requests (the simulator does) or decide verdicts (the analyzer does).

use super::addr;
use super::rule::{self, Names, Rule, RuleEnv};
use phoenix_model::pve::fw_names::NameKind;
use std::collections::BTreeMap;

/// Which file, which decides the sections it may hold and how its options read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FwKind {
    Cluster,
    Host,
    /// A guest's file; rules are checked with the guest's rule environment.
    Guest(RuleEnv),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alias {
    /// As written (the key is the lower-cased name).
    pub name: String,
    pub cidr: String,
    pub ipversion: u8,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpsetEntry {
    pub cidr: String,
    pub nomatch: bool,
    pub comment: Option<String>,
    pub errors: BTreeMap<String, String>,
}

/// A parsed file. Missing sections are empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FwConf {
    pub options: BTreeMap<String, String>,
    /// By lower-cased name.
    pub aliases: BTreeMap<String, Alias>,
    /// By name (lower-cased by the parser).
    pub ipsets: BTreeMap<String, Vec<IpsetEntry>>,
    pub ipset_comments: BTreeMap<String, String>,
    pub rules: Vec<Rule>,
    /// Security groups (cluster.fw only), by lower-cased name.
    pub groups: BTreeMap<String, Vec<Rule>>,
    pub group_comments: BTreeMap<String, String>,
}

/// Where the parts of a parsed file stand (1-based line numbers), and the lines skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfLines {
    pub rules: Vec<usize>,
    /// Per security group, by lower-cased name.
    pub groups: BTreeMap<String, Vec<usize>>,
    /// Lines pve-firewall skips, with the warning it logs.
    pub warnings: Vec<(usize, String)>,
}

enum Section {
    None,
    Options,
    Aliases,
    Rules,
    Group(String),
    IpSet(String),
    /// After a refused group or ipset header: its lines are skipped.
    Skip,
}

impl FwConf {
    /// Alias name -> IP version, for rule checks.
    pub fn alias_versions(&self) -> BTreeMap<String, u8> {
        self.aliases.iter().map(|(k, a)| (k.clone(), a.ipversion)).collect()
    }

    pub fn ipset_names(&self) -> Vec<String> {
        self.ipsets.keys().cloned().collect()
    }

    /// Parses a file; warnings (lines pve-firewall skips) are returned beside it. `cluster` is
    /// the parsed cluster.fw for a host or guest file.
    pub fn parse(text: &str, kind: FwKind, cluster: Option<&FwConf>) -> (FwConf, Vec<String>) {
        let (conf, lines) = FwConf::parse_with_lines(text, kind, cluster);
        (conf, lines.warnings.iter().map(|(line, message)| format!("line {line}: {message}")).collect())
    }

    /// Parses like [`FwConf::parse`] and says where each rule and each warning stands.
    pub fn parse_with_lines(text: &str, kind: FwKind, cluster: Option<&FwConf>) -> (FwConf, ConfLines) {
        let mut conf = FwConf::default();
        let mut lines = ConfLines::default();
        let mut section = Section::None;
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim_matches([' ', '\t']);
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let number = index + 1;
            let warnings = &mut lines.warnings;
            let mut warn = |message: String| warnings.push((number, message));
            if let Some(next) = header(line, kind) {
                section = match next {
                    Header::Options => Section::Options,
                    Header::Aliases => Section::Aliases,
                    Header::Rules => Section::Rules,
                    Header::Named(named, name, comment) => match named_section(named, &name) {
                        Err(message) => {
                            warn(message);
                            Section::Skip
                        }
                        Ok(()) => {
                            if named == NameKind::SecurityGroup {
                                lines.groups.insert(name.clone(), Vec::new());
                            }
                            conf.open(named, name, comment)
                        }
                    },
                };
                continue;
            }
            match &section {
                Section::None | Section::Skip => warn("skip line - no section".into()),
                Section::Options => match parse_option(line, kind) {
                    Ok((key, value)) => {
                        conf.options.insert(key, value);
                    }
                    Err(message) => warn(message),
                },
                Section::Aliases => match parse_alias(line) {
                    Ok(alias) => {
                        conf.aliases.insert(alias.name.to_ascii_lowercase(), alias);
                    }
                    Err(message) => warn(message),
                },
                Section::Rules => {
                    let env = match kind {
                        FwKind::Cluster => RuleEnv::Cluster,
                        FwKind::Host => RuleEnv::Host,
                        FwKind::Guest(env) => env,
                    };
                    match rule::parse_line(line, env, &conf.tables(cluster).names()) {
                        Ok(rule) => {
                            conf.rules.push(rule);
                            lines.rules.push(number);
                        }
                        Err(message) => warn(message),
                    }
                }
                Section::Group(name) => match rule::parse_line(line, RuleEnv::Group, &conf.tables(cluster).names()) {
                    Ok(rule) => {
                        conf.groups.entry(name.clone()).or_default().push(rule);
                        lines.groups.entry(name.clone()).or_default().push(number);
                    }
                    Err(message) => warn(message),
                },
                Section::IpSet(name) => {
                    let entry = ipset_entry(line, &conf, kind, cluster);
                    conf.ipsets.entry(name.clone()).or_default().push(entry);
                }
            }
        }
        (conf, lines)
    }

    /// Starts a `[group name]` or `[IPSET name]` section (a repeated header starts it afresh).
    fn open(&mut self, named: NameKind, name: String, comment: Option<String>) -> Section {
        let (comments, section) = match named {
            NameKind::SecurityGroup => {
                self.groups.insert(name.clone(), Vec::new());
                (&mut self.group_comments, Section::Group(name.clone()))
            }
            _ => {
                self.ipsets.insert(name.clone(), Vec::new());
                (&mut self.ipset_comments, Section::IpSet(name.clone()))
            }
        };
        if let Some(comment) = comment {
            comments.insert(name, comment);
        }
        section
    }

    /// What rules of this file are checked against: for the cluster, its own entries so far.
    fn tables(&self, cluster: Option<&FwConf>) -> NameTables {
        NameTables {
            cluster_aliases: cluster.map(FwConf::alias_versions),
            local_aliases: self.alias_versions(),
            cluster_ipsets: cluster.map(FwConf::ipset_names),
            local_ipsets: self.ipset_names(),
        }
    }

    /// The file's text, as the matching `save_*` writes it (empty: the file is removed).
    /// Options are written sorted: Perl writes them in hash order, which is unspecified.
    pub fn to_text(&self, kind: FwKind) -> String {
        let mut out = String::new();
        if !self.options.is_empty() {
            out.push_str("[OPTIONS]\n\n");
            for (key, value) in &self.options {
                out.push_str(&format!("{key}: {value}\n"));
            }
            out.push('\n');
        }
        if kind != FwKind::Host {
            if !self.aliases.is_empty() {
                out.push_str("[ALIASES]\n\n");
                for alias in self.aliases.values() {
                    out.push_str(&format!("{} {}{}\n", alias.name, alias.cidr, comment_suffix(alias.comment.as_deref())));
                }
                out.push('\n');
            }
            for (name, entries) in &self.ipsets {
                out.push_str(&format!("[IPSET {name}]{}\n\n", comment_suffix(self.ipset_comments.get(name).map(String::as_str))));
                // $format_ipsets: de-duplicated by address, then printed sorted by it.
                let mut by_cidr: BTreeMap<&str, &IpsetEntry> = BTreeMap::new();
                for entry in entries {
                    by_cidr.entry(entry.cidr.as_str()).or_insert(entry);
                }
                for entry in by_cidr.values() {
                    let bang = if entry.nomatch { "!" } else { "" };
                    out.push_str(&format!("{bang}{}{}\n", entry.cidr, comment_suffix(entry.comment.as_deref())));
                }
                out.push('\n');
            }
        }
        if !self.rules.is_empty() {
            out.push_str("[RULES]\n\n");
            for rule in &self.rules {
                out.push_str(&rule::format_line(rule, true));
                out.push('\n');
            }
            out.push('\n');
        }
        if kind == FwKind::Cluster {
            for (name, rules) in &self.groups {
                out.push_str(&format!("[group {name}]{}\n\n", comment_suffix(self.group_comments.get(name).map(String::as_str))));
                for rule in rules {
                    out.push_str(&rule::format_line(rule, false));
                    out.push('\n');
                }
                out.push('\n');
            }
        }
        out
    }
}

/// Owned copies of the name tables a rule check needs.
pub struct NameTables {
    pub cluster_aliases: Option<BTreeMap<String, u8>>,
    pub local_aliases: BTreeMap<String, u8>,
    pub cluster_ipsets: Option<Vec<String>>,
    pub local_ipsets: Vec<String>,
}

impl NameTables {
    pub fn names(&self) -> Names<'_> {
        Names {
            cluster_aliases: self.cluster_aliases.as_ref(),
            local_aliases: Some(&self.local_aliases),
            cluster_ipsets: self.cluster_ipsets.as_deref(),
            local_ipsets: Some(&self.local_ipsets),
        }
    }
}

/// A `[group name]` or `[IPSET name]` header's name checked as the parser checks it, with its
/// warning ("... name too long", "invalid ... name '...'").
fn named_section(kind: NameKind, name: &str) -> Result<(), String> {
    let what = match kind {
        NameKind::SecurityGroup => "security group",
        _ => "ipset",
    };
    match phoenix_model::pve::fw_names::refusal(kind, name) {
        None => Ok(()),
        Some(_) if name.len() > kind.max_len() => Err(format!("{what} name too long")),
        Some(_) => Err(format!("invalid {what} name '{name}'")),
    }
}

fn comment_suffix(comment: Option<&str>) -> String {
    comment.filter(|c| !c.trim().is_empty() && *c != "0").map(|c| format!(" # {c}")).unwrap_or_default()
}

enum Header {
    Options,
    Aliases,
    Rules,
    /// `[group name]` or `[IPSET name]`, with the header's comment.
    Named(NameKind, String, Option<String>),
}

/// A section header the file's kind allows (case-insensitive); others are ordinary lines.
fn header(line: &str, kind: FwKind) -> Option<Header> {
    let lower = line.to_ascii_lowercase();
    match lower.as_str() {
        "[options]" => return Some(Header::Options),
        "[rules]" => return Some(Header::Rules),
        "[aliases]" if kind != FwKind::Host => return Some(Header::Aliases),
        _ => {}
    }
    let (body, comment) = match line.split_once(']') {
        Some((body, rest)) => {
            let rest = rest.trim();
            let comment = match rest.strip_prefix('#') {
                Some(c) => Some(c.trim().to_string()).filter(|c| !c.is_empty()),
                None if rest.is_empty() => None,
                None => return None,
            };
            (body.strip_prefix('[')?, comment)
        }
        None => return None,
    };
    let mut words = body.split_whitespace();
    let (word, name) = (words.next()?.to_ascii_lowercase(), words.next()?.to_ascii_lowercase());
    if words.next().is_some() {
        return None;
    }
    match word.as_str() {
        "group" if kind == FwKind::Cluster => Some(Header::Named(NameKind::SecurityGroup, name, comment)),
        "ipset" if kind != FwKind::Host => Some(Header::Named(NameKind::IpSet, name, comment)),
        _ => None,
    }
}

/// The option parsers (`parse_clusterfw_option`, `parse_hostfw_option`, `parse_vmfw_option`):
/// keys case-insensitive and stored lower-cased, policies upper-cased.
fn parse_option(line: &str, kind: FwKind) -> Result<(String, String), String> {
    let refused = || format!("can't parse option '{line}'");
    let (key, value) = line.split_once(':').ok_or_else(refused)?;
    let (key, value) = (key.trim().to_ascii_lowercase(), value.trim());
    let flag = |v: &str| matches!(v, "0" | "1");
    let policy = |v: &str, allowed: &[&str]| allowed.iter().any(|a| a.eq_ignore_ascii_case(v));
    let level = |v: &str| v.is_empty() || rule::LOG_LEVELS.iter().any(|l| l.eq_ignore_ascii_case(v));
    let stored = match (kind, key.as_str()) {
        (FwKind::Cluster, "enable") if value.bytes().all(|b| b.is_ascii_digit()) && !value.is_empty() => value.to_string(),
        (FwKind::Cluster, "ebtables") if flag(value) => value.to_string(),
        (FwKind::Cluster, "policy_in" | "policy_out" | "policy_forward") if policy(value, &["ACCEPT", "DROP", "REJECT"]) => {
            value.to_ascii_uppercase()
        }
        (FwKind::Cluster, "log_ratelimit") if !value.is_empty() && line.trim_start().starts_with("log_ratelimit") => value.to_string(),
        (
            FwKind::Host,
            "enable"
            | "nosmurfs"
            | "tcpflags"
            | "ndp"
            | "log_nf_conntrack"
            | "nf_conntrack_allow_invalid"
            | "protection_synflood"
            | "nftables",
        ) if flag(value) => value.to_string(),
        (FwKind::Host, "log_level_in" | "log_level_out" | "log_level_forward" | "tcp_flags_log_level" | "smurf_log_level")
            if level(value) =>
        {
            value.to_ascii_lowercase()
        }
        (
            FwKind::Host,
            "nf_conntrack_max"
            | "nf_conntrack_tcp_timeout_established"
            | "nf_conntrack_tcp_timeout_syn_recv"
            | "protection_synflood_rate"
            | "protection_synflood_burst"
            | "protection_limit",
        ) if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => value.to_string(),
        (FwKind::Host, "nf_conntrack_helpers") if !value.is_empty() => value.to_ascii_lowercase(),
        (FwKind::Guest(_), "enable" | "dhcp" | "ndp" | "radv" | "macfilter" | "ipfilter" | "ips") if flag(value) => value.to_string(),
        (FwKind::Guest(_), "log_level_in" | "log_level_out") if level(value) => value.to_ascii_lowercase(),
        (FwKind::Guest(_), "policy_in" | "policy_out") if policy(value, &["ACCEPT", "DROP", "REJECT"]) => value.to_ascii_uppercase(),
        _ => return Err(refused()),
    };
    Ok((key, stored))
}

/// `parse_alias`: `name cidr [# comment]`, one whitespace character between name and address;
/// `/32` and `/128` are dropped (`parse_ip_or_cidr`).
fn parse_alias(line: &str) -> Result<Alias, String> {
    let (body, comment) = match line.split_once('#') {
        Some((body, comment)) => (body.trim_end(), Some(comment.trim().to_string()).filter(|c| !c.is_empty())),
        None => (line, None),
    };
    let mut parts = body.splitn(2, char::is_whitespace);
    let (Some(name), Some(cidr)) = (parts.next(), parts.next()) else { return Err(format!("can't parse alias '{line}'")) };
    if name.is_empty() || cidr.is_empty() || cidr.contains(char::is_whitespace) {
        return Err(format!("can't parse alias '{line}'"));
    }
    let (cidr, ipversion) = addr::parse_ip_or_cidr(cidr)?;
    Ok(Alias { name: name.to_string(), cidr, ipversion, comment })
}

/// An ipset line: `[!]address [# comment]`; aliases must exist; addresses lose `/32`.
fn ipset_entry(line: &str, conf: &FwConf, kind: FwKind, cluster: Option<&FwConf>) -> IpsetEntry {
    let (body, comment) = match line.split_once('#') {
        Some((body, comment)) => (body.trim_end(), Some(comment.trim().to_string()).filter(|c| !c.is_empty())),
        None => (line, None),
    };
    let (nomatch, cidr) = match body.strip_prefix('!') {
        Some(rest) => (true, rest.trim()),
        None => (false, body.trim()),
    };
    let mut errors = BTreeMap::new();
    let scoped = cidr.strip_prefix("dc/").or_else(|| cidr.strip_prefix("guest/")).unwrap_or(cidr);
    let stored = if phoenix_model::pve::fw_names::matches_pattern(scoped) {
        let name = scoped.to_ascii_lowercase();
        let local = conf.aliases.contains_key(&name);
        let in_cluster = cluster.is_some_and(|c| c.aliases.contains_key(&name)) || (kind == FwKind::Cluster && local);
        if !local && !in_cluster {
            errors.insert("cidr".to_string(), format!("no such alias '{name}'"));
        }
        cidr.to_string()
    } else {
        match addr::parse_ip_or_cidr(cidr) {
            Ok((normal, _)) => normal,
            Err(message) => {
                errors.insert("cidr".to_string(), message);
                cidr.to_string()
            }
        }
    };
    if stored.rsplit_once('/').is_some_and(|(_, len)| !len.is_empty() && len.bytes().all(|b| b == b'0')) {
        errors.insert("cidr".to_string(), "a zero prefix is not allowed in ipset entries".into());
    }
    IpsetEntry { cidr: stored, nomatch, comment, errors }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLUSTER: &str = "[OPTIONS]\n\nenable: 1\npolicy_in: drop\n\n[ALIASES]\n\nTraefik 10.0.0.12/32 # edge\n\n\
        [IPSET Mgmt]\n\n10.0.0.0/24\n10.0.9.9/32\n\n[RULES]\n\nIN ACCEPT -source +mgmt -p tcp -dport 22\n\n\
        [group WebServers] # web\n\nIN HTTPS(ACCEPT)\n\n";

    #[test]
    fn the_parser_normalises_what_pve_firewall_normalises() {
        let (conf, warnings) = FwConf::parse(CLUSTER, FwKind::Cluster, None);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(conf.options["policy_in"], "DROP");
        assert_eq!(conf.aliases["traefik"].cidr, "10.0.0.12", "a single host loses its /32");
        assert_eq!(conf.aliases["traefik"].name, "Traefik", "an alias keeps its spelling");
        assert!(conf.ipsets.contains_key("mgmt"), "ipset names are lower-cased");
        assert_eq!(conf.ipsets["mgmt"][1].cidr, "10.0.9.9");
        assert!(conf.groups.contains_key("webservers"), "group names are lower-cased");
        assert!(conf.rules[0].errors.is_empty(), "{:?}", conf.rules[0].errors);
    }

    #[test]
    fn the_writer_reads_back_as_itself() {
        let (conf, _) = FwConf::parse(CLUSTER, FwKind::Cluster, None);
        let text = conf.to_text(FwKind::Cluster);
        assert!(text.contains("[group webservers] # web\n\nIN HTTPS(ACCEPT)\n"), "{text}");
        let (again, _) = FwConf::parse(&text, FwKind::Cluster, None);
        assert_eq!(again, conf);
    }

    #[test]
    fn bad_lines_are_skipped_with_a_warning() {
        let (conf, warnings) =
            FwConf::parse("[RULES]\n\nIN ACCEPT -bogus 1\nIN DROP\n[group this-name-is-far-too-long]\nIN DROP\n", FwKind::Cluster, None);
        assert_eq!(conf.rules.len(), 1);
        assert_eq!(warnings.len(), 3, "{warnings:?}");
    }
}
