//! Firewall rules in pve-firewall's terms: scope, direction, action, protocol, ports and
//! addresses, parsed and normalised from the legacy rule objects.
//! Must not evaluate rules (that is the analyzer's job in phoenix-core) or render files.

use crate::source::Span;
use ipnet::{IpNet, Ipv4Net};
use std::net::{IpAddr, Ipv4Addr};

/// Where a rule is declared, which decides what it can filter (see DESIGN.md).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// cluster.fw: host traffic only.
    Cluster,
    /// The node's host.fw: host traffic only, evaluated before cluster rules.
    Host,
    /// A guest's own `<vmid>.fw`.
    Guest(u32),
    /// A security group in cluster.fw, included by guests with a `group` rule.
    Group(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    In,
    Out,
}

impl Direction {
    pub fn as_pve(self) -> &'static str {
        match self {
            Direction::In => "IN",
            Direction::Out => "OUT",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Action {
    Accept,
    Drop,
    Reject,
}

impl Action {
    pub fn parse(text: &str) -> Option<Action> {
        match text {
            "ACCEPT" => Some(Action::Accept),
            "DROP" => Some(Action::Drop),
            "REJECT" => Some(Action::Reject),
            _ => None,
        }
    }

    pub fn as_pve(self) -> &'static str {
        match self {
            Action::Accept => "ACCEPT",
            Action::Drop => "DROP",
            Action::Reject => "REJECT",
        }
    }
}

/// What a rule does when it matches.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Verdict {
    Action(Action),
    /// `GROUP name`: evaluate the security group's rules at this point.
    Group(String),
}

/// Protocols pve-firewall accepts by name (from /etc/protocols, the common subset).
const PROTOCOLS: &[(&str, u8)] = &[
    ("icmp", 1),
    ("igmp", 2),
    ("ipip", 4),
    ("tcp", 6),
    ("egp", 8),
    ("udp", 17),
    ("ipv6", 41),
    ("gre", 47),
    ("esp", 50),
    ("ah", 51),
    ("icmpv6", 58),
    ("ipv6-icmp", 58),
    ("ospf", 89),
    ("pim", 103),
    ("vrrp", 112),
    ("l2tp", 115),
    ("sctp", 132),
    ("dccp", 33),
    ("udplite", 136),
];

/// Service names pve-firewall resolves through /etc/services (the common subset).
const SERVICES: &[(&str, u16)] = &[
    ("ftp", 21),
    ("ssh", 22),
    ("telnet", 23),
    ("smtp", 25),
    ("domain", 53),
    ("http", 80),
    ("pop3", 110),
    ("sunrpc", 111),
    ("ntp", 123),
    ("imap", 143),
    ("snmp", 161),
    ("ldap", 389),
    ("https", 443),
    ("microsoft-ds", 445),
    ("submission", 587),
    ("imaps", 993),
    ("pop3s", 995),
    ("nfs", 2049),
    ("mysql", 3306),
    ("postgresql", 5432),
];

/// A protocol, normalised to its number and canonical name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Proto {
    pub name: String,
    pub number: u8,
}

impl Proto {
    pub fn parse(text: &str) -> Result<Proto, String> {
        let lower = text.trim().to_ascii_lowercase();
        if let Ok(number) = lower.parse::<u8>() {
            let name = PROTOCOLS.iter().find(|(_, n)| *n == number).map_or(lower.clone(), |(name, _)| name.to_string());
            return Ok(Proto { name, number });
        }
        PROTOCOLS
            .iter()
            .find(|(name, _)| *name == lower)
            .map(|(name, number)| Proto { name: name.to_string(), number: *number })
            .ok_or_else(|| format!("unknown protocol `{text}`"))
    }

    /// Whether ports make sense for this protocol (pve-firewall refuses dport/sport otherwise).
    pub fn has_ports(&self) -> bool {
        matches!(self.number, 6 | 17 | 33 | 132 | 136)
    }
}

/// A set of ports as inclusive ranges, in the order written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PortSet(pub Vec<(u16, u16)>);

impl PortSet {
    /// Parses `80`, `80,443`, `8000:8010`, `http`, or combinations.
    pub fn parse(text: &str) -> Result<PortSet, String> {
        let mut ranges = Vec::new();
        for part in text.split(',').map(str::trim) {
            if part.is_empty() {
                return Err(format!("empty entry in port list `{text}`"));
            }
            let range = match part.split_once(':') {
                Some((a, b)) => {
                    let (a, b) = (port(a)?, port(b)?);
                    if a > b {
                        return Err(format!("port range `{part}` runs backwards"));
                    }
                    (a, b)
                }
                None => {
                    let p = port(part)?;
                    (p, p)
                }
            };
            ranges.push(range);
        }
        Ok(PortSet(ranges))
    }

    pub fn contains(&self, port: u16) -> bool {
        self.0.iter().any(|&(a, b)| a <= port && port <= b)
    }

    /// Whether every port of `other` is in `self`.
    pub fn covers(&self, other: &PortSet) -> bool {
        other.0.iter().all(|&(a, b)| {
            // Walk the range through our (possibly unsorted, overlapping) ranges.
            let mut next = a as u32;
            let mut progressed = true;
            while next <= b as u32 && progressed {
                progressed = false;
                for &(x, y) in &self.0 {
                    if (x as u32) <= next && next <= y as u32 {
                        next = y as u32 + 1;
                        progressed = true;
                    }
                }
            }
            next > b as u32
        })
    }

    /// pve-firewall's textual form.
    pub fn to_pve(&self) -> String {
        self.0.iter().map(|&(a, b)| if a == b { a.to_string() } else { format!("{a}:{b}") }).collect::<Vec<_>>().join(",")
    }
}

fn port(text: &str) -> Result<u16, String> {
    if let Ok(n) = text.parse::<u32>() {
        return match n {
            1..=65535 => Ok(n as u16),
            _ => Err(format!("port {n} is outside 1-65535")),
        };
    }
    SERVICES
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(text))
        .map(|(_, p)| *p)
        .ok_or_else(|| format!("`{text}` is neither a port number nor a known service name"))
}

/// One entry of a source/dest list.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AddrEntry {
    Net(IpNet),
    /// An inclusive IPv4 range `a-b`.
    Range(Ipv4Addr, Ipv4Addr),
    /// An alias, with its scope (`dc`, `guest`) when written.
    Alias {
        scope: Option<String>,
        name: String,
    },
    /// An ipset (`+name`), with its scope when written.
    IpSet {
        scope: Option<String>,
        name: String,
    },
}

/// A rule's source or destination: a comma list of entries.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AddrSpec(pub Vec<AddrEntry>);

fn is_name(text: &str) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic()) && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn scoped(text: &str) -> (Option<String>, &str) {
    match text.split_once('/') {
        Some((scope @ ("dc" | "guest"), name)) => (Some(scope.to_string()), name),
        _ => (None, text),
    }
}

impl AddrSpec {
    pub fn parse(text: &str) -> Result<AddrSpec, String> {
        let mut entries = Vec::new();
        for part in text.split(',').map(str::trim) {
            entries.push(AddrSpec::parse_entry(part)?);
        }
        Ok(AddrSpec(entries))
    }

    fn parse_entry(part: &str) -> Result<AddrEntry, String> {
        if part.is_empty() {
            return Err("empty entry in address list".into());
        }
        if let Some(set) = part.strip_prefix('+') {
            let (scope, name) = scoped(set);
            // pve-firewall reads ipset names in lower case and compares references exactly.
            return if is_name(name) {
                Ok(AddrEntry::IpSet { scope, name: name.to_ascii_lowercase() })
            } else {
                Err(format!("`{part}` is not a valid ipset name"))
            };
        }
        if let Ok(ip) = part.parse::<IpAddr>() {
            return Ok(AddrEntry::Net(IpNet::from(ip)));
        }
        if part.contains('/') && part.chars().next().is_some_and(|c| c.is_ascii_digit() || c == ':') {
            return part.parse::<IpNet>().map(AddrEntry::Net).map_err(|_| format!("`{part}` is not a valid CIDR"));
        }
        if let Some((a, b)) = part.split_once('-') {
            if let (Ok(a), Ok(b)) = (a.parse::<Ipv4Addr>(), b.parse::<Ipv4Addr>()) {
                return if a <= b { Ok(AddrEntry::Range(a, b)) } else { Err(format!("address range `{part}` runs backwards")) };
            }
        }
        let (scope, name) = scoped(part);
        if is_name(name) {
            return Ok(AddrEntry::Alias { scope, name: name.to_string() });
        }
        Err(format!("`{part}` is not an IP address, CIDR, range, alias or ipset"))
    }

    /// The single address this spec names, when it names exactly one host.
    pub fn single_address(&self) -> Option<IpAddr> {
        match self.0.as_slice() {
            [AddrEntry::Net(net)] if net.prefix_len() == net.max_prefix_len() => Some(net.addr()),
            _ => None,
        }
    }

    /// Literal networks of the spec (aliases and ipsets are not resolved here).
    pub fn literal_nets(&self) -> impl Iterator<Item = IpNet> + '_ {
        self.0.iter().filter_map(|e| match e {
            AddrEntry::Net(net) => Some(*net),
            _ => None,
        })
    }

    /// pve-firewall's textual form.
    pub fn to_pve(&self) -> String {
        self.0
            .iter()
            .map(|e| match e {
                AddrEntry::Net(net) if net.prefix_len() == net.max_prefix_len() => net.addr().to_string(),
                AddrEntry::Net(net) => net.to_string(),
                AddrEntry::Range(a, b) => format!("{a}-{b}"),
                AddrEntry::Alias { scope: Some(s), name } => format!("{s}/{name}"),
                AddrEntry::Alias { scope: None, name } => name.clone(),
                AddrEntry::IpSet { scope: Some(s), name } => format!("+{s}/{name}"),
                AddrEntry::IpSet { scope: None, name } => format!("+{name}"),
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Spans of a rule's fields, for pointing diagnostics at the exact value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct RuleSpans {
    pub source: Option<Span>,
    pub dest: Option<Span>,
    pub dport: Option<Span>,
    pub sport: Option<Span>,
    pub proto: Option<Span>,
    pub action: Option<Span>,
    pub direction: Option<Span>,
}

/// One firewall rule, normalised. A rule with a malformed field is kept with
/// `malformed = true`: like proxmox-firewall since 1.2.3, it is skipped, not fatal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rule {
    pub scope: Scope,
    /// Position in its list (0-based).
    pub position: usize,
    pub direction: Direction,
    pub verdict: Verdict,
    pub proto: Option<Proto>,
    pub dport: Option<PortSet>,
    pub sport: Option<PortSet>,
    pub source: Option<AddrSpec>,
    pub dest: Option<AddrSpec>,
    pub iface: Option<String>,
    pub macro_name: Option<String>,
    pub comment: Option<String>,
    pub enabled: bool,
    pub log: Option<String>,
    pub malformed: bool,
    pub span: Span,
    pub spans: RuleSpans,
}

impl Rule {
    /// Whether pve-firewall compiles the rule at all: enabled and well-formed.
    pub fn in_force(&self) -> bool {
        self.enabled && !self.malformed
    }

    /// Whether the rule admits every source: none given, or a /0 network among its entries.
    pub fn from_anywhere(&self) -> bool {
        self.source.as_ref().is_none_or(|s| s.literal_nets().any(|net| net.prefix_len() == 0))
    }

    /// The matching part of the rule (everything but its verdict, comment and position).
    pub fn match_key(
        &self,
    ) -> (
        Direction,
        &Option<Proto>,
        &Option<PortSet>,
        &Option<PortSet>,
        &Option<AddrSpec>,
        &Option<AddrSpec>,
        &Option<String>,
        &Option<String>,
    ) {
        (self.direction, &self.proto, &self.dport, &self.sport, &self.source, &self.dest, &self.iface, &self.macro_name)
    }
}

/// Cluster-wide options (cluster.fw [OPTIONS]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterOptions {
    pub enabled: bool,
    pub policy_in: Action,
    pub policy_out: Action,
    pub span: Option<Span>,
}

impl Default for ClusterOptions {
    /// Proxmox's defaults: disabled, DROP in, ACCEPT out.
    fn default() -> Self {
        ClusterOptions { enabled: false, policy_in: Action::Drop, policy_out: Action::Accept, span: None }
    }
}

/// A guest's firewall options and rules (`<vmid>.fw`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestFirewall {
    pub enabled: bool,
    pub policy_in: Action,
    pub policy_out: Action,
    pub rules: Vec<Rule>,
    pub span: Option<Span>,
}

impl Default for GuestFirewall {
    /// Proxmox's defaults: disabled, DROP in, ACCEPT out.
    fn default() -> Self {
        GuestFirewall { enabled: false, policy_in: Action::Drop, policy_out: Action::Accept, rules: Vec::new(), span: None }
    }
}

/// Host-level firewall: cluster options and rules, host rules, aliases, ipsets, groups.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Firewall {
    pub cluster: ClusterOptions,
    pub cluster_rules: Vec<Rule>,
    pub host_rules: Vec<Rule>,
    pub aliases: std::collections::BTreeMap<String, (IpNet, Span)>,
    pub ipsets: std::collections::BTreeMap<String, (Vec<IpNet>, Span)>,
    pub groups: std::collections::BTreeMap<String, Vec<Rule>>,
}

/// Whether `net` lies inside `subnet`.
pub fn net_within(net: &IpNet, subnet: &Ipv4Net) -> bool {
    match net {
        IpNet::V4(v4) => subnet.contains(v4),
        IpNet::V6(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_parse_lists_ranges_and_services() {
        assert_eq!(PortSet::parse("80,443").unwrap().0, vec![(80, 80), (443, 443)]);
        assert_eq!(PortSet::parse("8000:8010").unwrap().0, vec![(8000, 8010)]);
        assert_eq!(PortSet::parse("https").unwrap().0, vec![(443, 443)]);
        assert!(PortSet::parse("0").is_err());
        assert!(PortSet::parse("70000").is_err());
        assert!(PortSet::parse("90:80").is_err());
        assert!(PortSet::parse("80,").is_err());
        assert!(PortSet::parse("eighty").is_err());
    }

    #[test]
    fn port_cover_handles_split_ranges() {
        let set = PortSet::parse("80:90,91:100").unwrap();
        assert!(set.covers(&PortSet::parse("85:95").unwrap()));
        assert!(!set.covers(&PortSet::parse("85:101").unwrap()));
    }

    #[test]
    fn addresses_parse_every_pve_form() {
        assert_eq!(AddrSpec::parse("10.0.0.12").unwrap().single_address(), Some("10.0.0.12".parse().unwrap()));
        assert!(matches!(AddrSpec::parse("10.0.0.0/24").unwrap().0[0], AddrEntry::Net(_)));
        assert!(matches!(AddrSpec::parse("10.0.0.1-10.0.0.9").unwrap().0[0], AddrEntry::Range(..)));
        assert!(matches!(&AddrSpec::parse("+dc/mgmt").unwrap().0[0], AddrEntry::IpSet { scope: Some(s), .. } if s == "dc"));
        assert!(matches!(&AddrSpec::parse("traefik").unwrap().0[0], AddrEntry::Alias { .. }));
        assert!(AddrSpec::parse("10.0.0.0/33").is_err());
        assert!(AddrSpec::parse("10.0.0.300").is_err());
        assert!(AddrSpec::parse("10.0.0.9-10.0.0.1").is_err());
        assert_eq!(AddrSpec::parse("10.0.0.0/24,+x").unwrap().to_pve(), "10.0.0.0/24,+x");
    }

    #[test]
    fn protocols_parse_by_name_and_number() {
        assert_eq!(Proto::parse("TCP").unwrap().number, 6);
        assert_eq!(Proto::parse("17").unwrap().name, "udp");
        assert!(Proto::parse("tcpp").is_err());
        assert!(!Proto::parse("icmp").unwrap().has_ports());
    }
}
