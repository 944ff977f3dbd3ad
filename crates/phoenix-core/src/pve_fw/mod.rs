//! pve-firewall's file format as data: `[OPTIONS]`, `[ALIASES]`, `[IPSET name]`, `[RULES]` and
//! `[group name]` sections, and rule lines such as
//! `IN ACCEPT -source 10.0.0.12 -p tcp -dport 9443 -log nolog # comment`, with a rule's type
//! ([`Direction`]) and what it does ([`Verdict`]) typed. The renderers, the analyzer, the
//! planner, the lab and the drivers all read and write `.fw` text through this module.
//! Printing and parsing live here together so they cannot drift apart; the round trip is
//! property-tested. Must not know about phoenix's model beyond the shared [`Action`] word:
//! conversion lives in the renderers.

pub mod addr;
pub mod conf;
pub mod rule;

use std::collections::BTreeMap;
use std::fmt::Write;

pub use phoenix_model::model::Action;

/// A rule's type, the first word of its line (`type` in the API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    In,
    Out,
    /// `GROUP name`: the security group's rules are evaluated at this point.
    Group,
}

impl Direction {
    /// The word as pve-firewall writes it in a `.fw` file.
    pub fn word(self) -> &'static str {
        match self {
            Direction::In => "IN",
            Direction::Out => "OUT",
            Direction::Group => "GROUP",
        }
    }

    /// Read case-insensitively, as phoenix has always read rule lines.
    pub fn parse(word: &str) -> Option<Direction> {
        match word.to_ascii_uppercase().as_str() {
            "IN" => Some(Direction::In),
            "OUT" => Some(Direction::Out),
            "GROUP" => Some(Direction::Group),
            _ => None,
        }
    }
}

/// What a rule does when it matches: the second word of its line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// `ACCEPT`, `DROP` or `REJECT`, directly or through a macro: `SSH(ACCEPT)`.
    Action { macro_name: Option<String>, action: Action },
    /// The group a `GROUP` rule enters.
    Group(String),
    /// A word pve-firewall's `verify_rule` rejects (`accept`, `ALLOW`, `SSH(ok)`): the rule keeps
    /// its place in the list (its position counts for the API) but never matches, as
    /// pve-firewall's generators skip rules with errors (`next if $rule->{errors}`).
    Invalid(String),
}

impl Verdict {
    /// Reads the verdict word of a rule of `direction`. Actions are upper case only, as
    /// `verify_rule` in PVE/Firewall.pm checks them (`m/^(ACCEPT|DROP|REJECT)$/`).
    pub fn parse(direction: Direction, word: &str) -> Verdict {
        if direction == Direction::Group {
            return Verdict::Group(word.to_string());
        }
        let (macro_name, action) = match word.split_once('(') {
            Some((name, rest)) => match rest.strip_suffix(')') {
                Some(action) => (Some(name.to_string()), action),
                None => return Verdict::Invalid(word.to_string()),
            },
            None => (None, word),
        };
        match Action::parse(action) {
            Some(action) => Verdict::Action { macro_name, action },
            None => Verdict::Invalid(word.to_string()),
        }
    }

    /// The action a matching rule takes (none for groups and invalid words).
    pub fn action(&self) -> Option<Action> {
        match self {
            Verdict::Action { action, .. } => Some(*action),
            _ => None,
        }
    }

    pub fn macro_name(&self) -> Option<&str> {
        match self {
            Verdict::Action { macro_name, .. } => macro_name.as_deref(),
            _ => None,
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verdict::Action { macro_name: Some(name), action } => write!(f, "{name}({})", action.as_pve()),
            Verdict::Action { macro_name: None, action } => f.write_str(action.as_pve()),
            Verdict::Group(name) | Verdict::Invalid(name) => f.write_str(name),
        }
    }
}

/// One rule line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FwRule {
    pub enabled: bool,
    pub direction: Direction,
    /// [`Verdict::Group`] exactly when `direction` is [`Direction::Group`].
    pub verdict: Verdict,
    /// Options in pve-firewall's order: -i, -source, -dest, -p, -dport, -sport, -log, -icmp-type.
    pub options: Vec<(String, String)>,
    pub comment: Option<String>,
}

impl FwRule {
    /// An enabled rule without options or comment.
    pub fn new(direction: Direction, verdict: Verdict) -> FwRule {
        FwRule { enabled: true, direction, verdict, options: Vec::new(), comment: None }
    }

    /// The group a `GROUP` rule enters.
    pub fn group(&self) -> Option<&str> {
        match &self.verdict {
            Verdict::Group(name) => Some(name),
            _ => None,
        }
    }

    /// The value of option `key` (`-key value`).
    pub fn option(&self, key: &str) -> Option<&str> {
        self.options.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// The order pve-firewall writes rule options in.
pub const OPTION_ORDER: &[&str] = &["i", "source", "dest", "p", "dport", "sport", "log", "icmp-type"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FwIpSetEntry {
    pub negated: bool,
    pub cidr: String,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FwIpSet {
    pub name: String,
    pub comment: Option<String>,
    pub entries: Vec<FwIpSetEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FwAlias {
    pub name: String,
    pub cidr: String,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FwGroup {
    pub name: String,
    pub comment: Option<String>,
    pub rules: Vec<FwRule>,
}

/// A whole `.fw` file (cluster.fw, host.fw or `<vmid>.fw`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FwFile {
    pub options: BTreeMap<String, String>,
    pub aliases: Vec<FwAlias>,
    pub ipsets: Vec<FwIpSet>,
    pub rules: Vec<FwRule>,
    pub groups: Vec<FwGroup>,
}

fn comment_suffix(comment: &Option<String>) -> String {
    comment.as_ref().map(|c| format!(" # {c}")).unwrap_or_default()
}

impl FwRule {
    pub fn to_line(&self) -> String {
        let mut line = String::new();
        if !self.enabled {
            line.push('|');
        }
        let _ = write!(line, "{} {}", self.direction.word(), self.verdict);
        for (key, value) in &self.options {
            let _ = write!(line, " -{key} {value}");
        }
        line + &comment_suffix(&self.comment)
    }
}

impl FwFile {
    /// The file's text, sections in pve-firewall's order, empty sections left out (OPTIONS always written).
    pub fn to_text(&self) -> String {
        let mut out = String::from("[OPTIONS]\n\n");
        for (key, value) in &self.options {
            let _ = writeln!(out, "{key}: {value}");
        }
        if !self.aliases.is_empty() {
            out.push_str("\n[ALIASES]\n\n");
            for alias in &self.aliases {
                let _ = writeln!(out, "{} {}{}", alias.name, alias.cidr, comment_suffix(&alias.comment));
            }
        }
        for set in &self.ipsets {
            let _ = writeln!(out, "\n[IPSET {}]{}\n", set.name, comment_suffix(&set.comment));
            for entry in &set.entries {
                let _ = writeln!(out, "{}{}{}", if entry.negated { "!" } else { "" }, entry.cidr, comment_suffix(&entry.comment));
            }
        }
        if !self.rules.is_empty() {
            out.push_str("\n[RULES]\n\n");
            for rule in &self.rules {
                out.push_str(&rule.to_line());
                out.push('\n');
            }
        }
        for group in &self.groups {
            let _ = writeln!(out, "\n[group {}]{}\n", group.name, comment_suffix(&group.comment));
            for rule in &group.rules {
                out.push_str(&rule.to_line());
                out.push('\n');
            }
        }
        out
    }
}

/// A line of a `.fw` file phoenix could not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based.
    pub line: usize,
    pub message: String,
}

fn split_comment(line: &str) -> (&str, Option<String>) {
    match line.split_once('#') {
        Some((body, comment)) => (body.trim_end(), Some(comment.trim().to_string()).filter(|c| !c.is_empty())),
        None => (line.trim_end(), None),
    }
}

enum Section {
    None,
    Options,
    Aliases,
    IpSet(usize),
    Rules,
    Group(usize),
}

/// Parses a `.fw` file. Unknown sections and malformed lines are errors with their line number.
/// (The evaluator reads files as pve-firewall does instead, lines and all: [`conf`].)
pub fn parse(text: &str) -> Result<FwFile, Vec<ParseError>> {
    let mut file = FwFile::default();
    let mut errors = Vec::new();
    let mut section = Section::None;
    for (index, raw_line) in text.lines().enumerate() {
        let number = index + 1;
        let line = raw_line.trim();
        if line.is_empty() || (line.starts_with('#') && !matches!(section, Section::None)) || line.starts_with('#') {
            continue;
        }
        let mut error = |message: String| errors.push(ParseError { line: number, message });
        if let Some(header) = line.strip_prefix('[') {
            let (header, comment) = split_comment(header);
            let Some(header) = header.strip_suffix(']') else {
                error(format!("section header `{line}` lacks `]`"));
                continue;
            };
            let mut words = header.split_whitespace();
            section = match (words.next().map(str::to_ascii_uppercase).as_deref(), words.next()) {
                (Some("OPTIONS"), None) => Section::Options,
                (Some("ALIASES"), None) => Section::Aliases,
                (Some("RULES"), None) => Section::Rules,
                (Some("IPSET"), Some(name)) => {
                    file.ipsets.push(FwIpSet { name: name.to_string(), comment, entries: Vec::new() });
                    Section::IpSet(file.ipsets.len() - 1)
                }
                (Some("GROUP"), Some(name)) => {
                    file.groups.push(FwGroup { name: name.to_string(), comment, rules: Vec::new() });
                    Section::Group(file.groups.len() - 1)
                }
                _ => {
                    error(format!("unknown section `[{header}]`"));
                    Section::None
                }
            };
            continue;
        }
        match section {
            Section::None => error("line outside any section".to_string()),
            Section::Options => match line.split_once(':') {
                Some((key, value)) => {
                    let (key, value) = option(key, value);
                    file.options.insert(key, value);
                }
                None => error(format!("option `{line}` is not `key: value`")),
            },
            Section::Aliases => {
                let (body, comment) = split_comment(line);
                let mut words = body.split_whitespace();
                match (words.next(), words.next(), words.next()) {
                    (Some(name), Some(cidr), None) => {
                        file.aliases.push(FwAlias { name: name.to_string(), cidr: cidr.to_string(), comment })
                    }
                    _ => error(format!("alias `{line}` is not `name cidr`")),
                }
            }
            Section::IpSet(i) => {
                let (body, comment) = split_comment(line);
                let (negated, cidr) = match body.strip_prefix('!') {
                    Some(rest) => (true, rest.trim()),
                    None => (false, body.trim()),
                };
                if cidr.is_empty() || cidr.contains(char::is_whitespace) {
                    error(format!("ipset entry `{line}` is not a single address"));
                } else {
                    file.ipsets[i].entries.push(FwIpSetEntry { negated, cidr: cidr.to_string(), comment });
                }
            }
            Section::Rules | Section::Group(_) => match parse_rule(line) {
                Ok(rule) => match section {
                    Section::Group(g) => file.groups[g].rules.push(rule),
                    _ => file.rules.push(rule),
                },
                Err(message) => error(message),
            },
        }
    }
    if errors.is_empty() {
        Ok(file)
    } else {
        Err(errors)
    }
}

/// An option as pve-firewall reads it (`parse_clusterfw_option`, `parse_vmfw_option`,
/// `parse_hostfw_option` in PVE/Firewall.pm): the name case-insensitively (`$opt = lc($1)`),
/// and a policy's action case-insensitively too (`$value = uc($3)`): `policy_in: accept`
/// is ACCEPT.
fn option(key: &str, value: &str) -> (String, String) {
    let key = key.trim().to_ascii_lowercase();
    let value = value.trim();
    let value = if key.starts_with("policy_") { value.to_ascii_uppercase() } else { value.to_string() };
    (key, value)
}

/// Parses one rule line.
pub fn parse_rule(line: &str) -> Result<FwRule, String> {
    let (body, comment) = split_comment(line.trim());
    let (enabled, body) = match body.strip_prefix('|') {
        Some(rest) => (false, rest),
        None => (true, body),
    };
    let mut words = body.split_whitespace();
    let word = words.next().ok_or("empty rule")?;
    let direction =
        Direction::parse(word).ok_or_else(|| format!("rule direction `{}` is not IN, OUT or GROUP", word.to_ascii_uppercase()))?;
    let verdict = Verdict::parse(direction, words.next().ok_or_else(|| format!("rule `{body}` has no action"))?);
    let mut options = Vec::new();
    while let Some(word) = words.next() {
        let key = word.strip_prefix('-').ok_or_else(|| format!("`{word}` is not an option (options start with -)"))?;
        if !OPTION_ORDER.contains(&key) {
            return Err(format!("unknown rule option `-{key}`"));
        }
        let value = words.next().ok_or_else(|| format!("option `-{key}` has no value"))?;
        options.push((key.to_string(), value.to_string()));
    }
    Ok(FwRule { enabled, direction, verdict, options, comment })
}
