//! pve-firewall's address, port and protocol checks (pve-firewall `src/PVE/Firewall.pm`):
//! `parse_address_list`, `parse_ip_or_cidr`, `clean_cidr`, `parse_port_name_number_or_range`,
//! `pve_fw_verify_protocol_spec` and the ICMP type lists, with their messages. Protocol and
//! service names come from Debian's netbase tables, as on the node (`get_etc_protocols`,
//! `get_etc_services`: the first column only). Net::IP's own error texts are approximated.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;

const PROTOCOLS: &str = include_str!(concat!(env!("OUT_DIR"), "/protocols"));
const SERVICES: &str = include_str!(concat!(env!("OUT_DIR"), "/services"));

/// `$PROTOCOLS_WITH_PORTS`.
const WITH_PORTS: &[&str] = &["udp", "17", "udplite", "136", "tcp", "6", "dccp", "33", "sctp", "132"];

/// `$icmp_type_names` (besides `any`), with the type and, for names that select one code, that
/// code, as iptables reads them (`iptables -p icmp -h` lists them so).
pub const ICMP_TYPES: &[(&str, u8, Option<u8>)] = &[
    ("echo-reply", 0, None),
    ("destination-unreachable", 3, None),
    ("network-unreachable", 3, Some(0)),
    ("host-unreachable", 3, Some(1)),
    ("protocol-unreachable", 3, Some(2)),
    ("port-unreachable", 3, Some(3)),
    ("fragmentation-needed", 3, Some(4)),
    ("source-route-failed", 3, Some(5)),
    ("network-unknown", 3, Some(6)),
    ("host-unknown", 3, Some(7)),
    ("network-prohibited", 3, Some(9)),
    ("host-prohibited", 3, Some(10)),
    ("TOS-network-unreachable", 3, Some(11)),
    ("TOS-host-unreachable", 3, Some(12)),
    ("communication-prohibited", 3, Some(13)),
    ("host-precedence-violation", 3, Some(14)),
    ("precedence-cutoff", 3, Some(15)),
    ("source-quench", 4, None),
    ("redirect", 5, None),
    ("network-redirect", 5, Some(0)),
    ("host-redirect", 5, Some(1)),
    ("TOS-network-redirect", 5, Some(2)),
    ("TOS-host-redirect", 5, Some(3)),
    ("echo-request", 8, None),
    ("router-advertisement", 9, None),
    ("router-solicitation", 10, None),
    ("time-exceeded", 11, None),
    ("ttl-zero-during-transit", 11, Some(0)),
    ("ttl-zero-during-reassembly", 11, Some(1)),
    ("parameter-problem", 12, None),
    ("ip-header-bad", 12, Some(0)),
    ("required-option-missing", 12, Some(1)),
    ("timestamp-request", 13, None),
    ("timestamp-reply", 14, None),
    ("address-mask-request", 17, None),
    ("address-mask-reply", 18, None),
];

/// `$icmpv6_type_names`.
pub const ICMPV6_TYPES: &[&str] = &[
    "destination-unreachable",
    "no-route",
    "communication-prohibited",
    "beyond-scope",
    "address-unreachable",
    "port-unreachable",
    "failed-policy",
    "reject-route",
    "packet-too-big",
    "time-exceeded",
    "ttl-zero-during-transit",
    "ttl-zero-during-reassembly",
    "parameter-problem",
    "bad-header",
    "unknown-header-type",
    "unknown-option",
    "echo-request",
    "echo-reply",
    "router-solicitation",
    "router-advertisement",
    "neighbor-solicitation",
    "neighbour-solicitation",
    "neighbor-advertisement",
    "neighbour-advertisement",
    "redirect",
];

struct Netbase {
    /// (name, number) of /etc/protocols.
    protocols: Vec<(String, String)>,
    /// (name, port) of /etc/services, first occurrence first.
    services: Vec<(String, u16)>,
}

fn netbase() -> &'static Netbase {
    static TABLES: OnceLock<Netbase> = OnceLock::new();
    TABLES.get_or_init(|| {
        let rows = |text: &str| -> Vec<Vec<String>> {
            text.lines()
                .map(|l| l.split('#').next().unwrap_or_default())
                .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
                .filter(|w| w.len() >= 2)
                .collect()
        };
        let protocols = rows(PROTOCOLS).into_iter().filter(|w| w[1].parse::<u16>().is_ok()).map(|w| (w[0].clone(), w[1].clone())).collect();
        let services = rows(SERVICES)
            .into_iter()
            .filter_map(|w| {
                let (number, proto) = w[1].split_once('/')?;
                let port = number.parse::<u16>().ok()?;
                ["tcp", "udp", "sctp"].contains(&proto).then(|| (w[0].clone(), port))
            })
            .collect();
        Netbase { protocols, services }
    })
}

/// `pve_fw_verify_protocol_spec`: a name or number of /etc/protocols, or `icmpv6`.
pub fn verify_protocol(proto: &str) -> Result<(), String> {
    if proto.is_empty() || proto == "0" || proto == "icmpv6" {
        return Ok(());
    }
    if netbase().protocols.iter().any(|(name, number)| name == proto || number == proto) {
        Ok(())
    } else {
        Err(format!("unknown protocol '{proto}'"))
    }
}

/// The number of a protocol given by name or number, as iptables resolves it through
/// /etc/protocols (`icmpv6` is ipv6-icmp's alias there).
pub fn protocol_number(proto: &str) -> Option<u8> {
    if let Ok(number) = proto.parse::<u8>() {
        return Some(number);
    }
    if proto == "icmpv6" {
        return Some(58);
    }
    netbase().protocols.iter().find(|(name, _)| name == proto).and_then(|(_, number)| number.parse().ok())
}

/// The port of a service name of /etc/services (iptables resolves `--dport http` so).
pub fn service_port(name: &str) -> Option<u16> {
    netbase().services.iter().find(|(service, _)| service == name).map(|(_, port)| *port)
}

/// Whether `name` is in `$icmp_type_names` (`any` included).
pub fn is_icmp_type_name(name: &str) -> bool {
    name == "any" || ICMP_TYPES.iter().any(|(known, _, _)| *known == name)
}

/// An ICMP (IPv4) type by name ([`ICMP_TYPES`]) or number: the type and, where the name selects
/// one, the code.
pub fn icmp_type(name: &str) -> Option<(u8, Option<u8>)> {
    if let Ok(number) = name.parse::<u8>() {
        return Some((number, None));
    }
    ICMP_TYPES.iter().find(|(n, _, _)| *n == name).map(|(_, t, c)| (*t, *c))
}

pub fn protocol_has_ports(proto: &str) -> bool {
    WITH_PORTS.contains(&proto)
}

pub fn is_icmp(proto: &str) -> bool {
    matches!(proto, "icmp" | "icmpv6" | "ipv6-icmp")
}

/// `split(',', $str)` with Perl's dropping of trailing empty fields, and the
/// "extraneous commas" check that catches them.
fn split_list(text: &str) -> Result<Vec<&str>, String> {
    let mut items: Vec<&str> = text.split(',').collect();
    while items.last() == Some(&"") {
        items.pop();
    }
    if items.join(",") != text {
        return Err("extraneous commas in list".into());
    }
    Ok(items)
}

/// `parse_port_name_number_or_range($str, $dport)`: whether it names several ports.
pub fn parse_ports(text: &str, dport: bool) -> Result<bool, String> {
    let items = split_list(text)?;
    let (mut count, mut icmp) = (0, false);
    let port = |p: &str| -> Result<u32, String> {
        let value: u32 = p.parse().map_err(|_| format!("invalid port '{p}'"))?;
        if value > 65535 {
            return Err(format!("invalid port '{p}'"));
        }
        Ok(value)
    };
    for item in &items {
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        match item.split_once(':') {
            Some((a, b)) if digits(a) && digits(b) => {
                let (low, high) = (port(a)?, port(b)?);
                if low > high {
                    return Err(format!("backwards range '{a}:{b}' not allowed, did you mean '{b}:{a}'?"));
                }
                count += 2;
            }
            _ if digits(item) => {
                port(item)?;
                count += 1;
            }
            _ if dport && (is_icmp_type_name(item) || ICMPV6_TYPES.contains(item)) => icmp = true,
            _ if service_port(item).is_some() => {}
            _ => return Err(format!("invalid port '{item}'")),
        }
    }
    if icmp && count > 0 {
        return Err("ICMP ports not allowed in port range".into());
    }
    if count > 15 {
        return Err("too many entries in port list (> 15 numbers)".into());
    }
    Ok(items.len() > 1)
}

/// An address or network in Net::IP's forms: `a.b.c.d`, `a.b.c.d/len`, IPv6 likewise, or a
/// range `a-b`. Host bits below the prefix are refused, as Net::IP refuses them.
fn net_ip(text: &str) -> Result<(IpAddr, bool), String> {
    let invalid = |why: String| format!("invalid IP address: {why}");
    if let Some((a, b)) = text.split_once('-') {
        let (a, b) = (a.trim().parse::<IpAddr>(), b.trim().parse::<IpAddr>());
        return match (a, b) {
            (Ok(a), Ok(b)) if a.is_ipv4() == b.is_ipv4() && a <= b => Ok((a, true)),
            (Ok(a), Ok(b)) if a.is_ipv4() == b.is_ipv4() => Err(invalid(format!("Begin address is greater than end address {a} - {b}"))),
            _ => Err(invalid(format!("Invalid IP range {text}"))),
        };
    }
    let (address, prefix) = match text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (text, None),
    };
    let ip: IpAddr = address.parse().map_err(|_| invalid(format!("Invalid IP {text}")))?;
    let Some(prefix) = prefix else { return Ok((ip, false)) };
    let width = if ip.is_ipv4() { 32 } else { 128 };
    let len: u32 = prefix.parse().map_err(|_| invalid(format!("Invalid prefix length /{prefix}")))?;
    if len > width {
        return Err(invalid(format!("Prefix length {len} is longer than IP address ({width})")));
    }
    let bits = ip_bits(ip);
    let host = if len == width { 0 } else { bits & (u128::MAX >> (128 - width + len)) };
    if host != 0 {
        let binary: String = (0..width).rev().map(|i| if bits >> i & 1 == 1 { '1' } else { '0' }).collect();
        return Err(invalid(format!("Invalid prefix {binary}/{len}")));
    }
    Ok((ip, false))
}

fn ip_bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u32::from(v4) as u128,
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn is_alias_name(text: &str) -> bool {
    let name = text.strip_prefix("dc/").or_else(|| text.strip_prefix("guest/")).unwrap_or(text);
    phoenix_model::pve::fw_names::matches_pattern(name)
}

/// `parse_address_list`: the IP version of a literal list, `None` for an ipset or alias
/// reference (checked by the caller).
pub fn parse_address_list(text: &str) -> Result<Option<u8>, String> {
    if let Some(name) = text.strip_prefix('+') {
        if !name.is_empty() && !name.contains(char::is_whitespace) {
            return if text.len() > 65 { Err("ipset name too long".into()) } else { Ok(None) };
        }
    }
    if is_alias_name(text) {
        return if text.len() > 64 { Err("alias name too long".into()) } else { Ok(None) };
    }
    let items = split_list(text)?;
    let (mut version, mut range) = (None, false);
    for item in &items {
        let (ip, is_range) = net_ip(item)?;
        range |= is_range;
        let v = if ip.is_ipv4() { 4 } else { 6 };
        if version.is_some_and(|known| known != v) {
            return Err(format!("detected mixed ipv4/ipv6 addresses in address list '{text}'"));
        }
        version = Some(v);
    }
    if range && items.len() > 1 {
        return Err("you can't use a range in a list".into());
    }
    Ok(version)
}

/// `parse_ip_or_cidr`: the address with `/32` or `/128` dropped, and its version.
pub fn parse_ip_or_cidr(text: &str) -> Result<(String, u8), String> {
    let refused = || "value does not look like a valid IP address or CIDR network".to_string();
    let (address, prefix) = match text.split_once('/') {
        Some((a, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => (a, Some(p)),
        Some(_) => return Err(refused()),
        None => (text, None),
    };
    if address.parse::<Ipv4Addr>().is_ok() {
        return Ok((if prefix == Some("32") || prefix.is_none() { address.to_string() } else { text.to_string() }, 4));
    }
    if address.parse::<Ipv6Addr>().is_ok() {
        return Ok((if prefix == Some("128") || prefix.is_none() { address.to_string() } else { text.to_string() }, 6));
    }
    Err(refused())
}

/// `clean_cidr`: host bits below the prefix cleared (IPv6 printed compressed); unchanged
/// without a prefix or with a zero one.
pub fn clean_cidr(text: &str) -> String {
    let Some((address, prefix)) = text.split_once('/') else { return text.to_string() };
    let (Ok(ip), Ok(len)) = (address.parse::<IpAddr>(), prefix.parse::<u32>()) else { return text.to_string() };
    if len == 0 {
        return text.to_string();
    }
    let width = if ip.is_ipv4() { 32 } else { 128 };
    if len > width {
        return text.to_string();
    }
    let mask = if len == width { u128::MAX } else { !(u128::MAX >> (128 - width + len)) & (u128::MAX >> (128 - width)) };
    let masked = ip_bits(ip) & mask;
    let clean = match ip {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(masked as u32)),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(masked)),
    };
    format!("{clean}/{len}")
}

/// `pve_verify_ip_or_cidr` (format `IPorCIDR`): host bits are accepted here.
pub fn verify_ip_or_cidr(text: &str) -> Result<(), String> {
    parse_ip_or_cidr(text)?;
    let cleaned = clean_cidr(text);
    net_ip(&cleaned).map(|_| ()).map_err(|e| e.trim_start_matches("invalid IP address: ").to_string())
}

/// `pve_verify_ip_or_cidr_or_alias` (format `IPorCIDRorAlias`).
pub fn verify_ip_or_cidr_or_alias(text: &str) -> Result<(), String> {
    if is_alias_name(text) {
        return Ok(());
    }
    verify_ip_or_cidr(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_lists_count_ranges_twice_and_names_not_at_all() {
        assert_eq!(parse_ports("22", false), Ok(false));
        assert_eq!(parse_ports("80,443", false), Ok(true));
        let fifteen = (1..=15).map(|p| p.to_string()).collect::<Vec<_>>().join(",");
        assert!(parse_ports(&fifteen, false).is_ok());
        assert_eq!(parse_ports(&format!("{fifteen},16"), false).unwrap_err(), "too many entries in port list (> 15 numbers)");
        assert!(parse_ports("1:2,3:4,5:6,7:8,9:10,11:12,13:14,15:16", false).is_err(), "8 ranges count 16");
        assert!(parse_ports("ssh,http", false).is_ok());
        assert_eq!(parse_ports("80,", false).unwrap_err(), "extraneous commas in list");
        assert_eq!(parse_ports("90:80", false).unwrap_err(), "backwards range '90:80' not allowed, did you mean '80:90'?");
        assert_eq!(parse_ports("echo-request", true), Ok(false));
        assert!(parse_ports("echo-request", false).is_err());
    }

    #[test]
    fn address_lists_refuse_host_bits_mixes_and_ranges_in_lists() {
        assert_eq!(parse_address_list("10.0.0.5"), Ok(Some(4)));
        assert_eq!(parse_address_list("10.0.0.0/24,10.0.1.0/24"), Ok(Some(4)));
        assert!(parse_address_list("192.168.1.5/24").unwrap_err().contains("Invalid prefix"));
        assert!(parse_address_list("10.0.0.1,myalias").is_err(), "an alias in a list");
        assert_eq!(parse_address_list("10.0.0.1-10.0.0.9,10.0.1.1").unwrap_err(), "you can't use a range in a list");
        assert!(parse_address_list("10.0.0.1,::1").unwrap_err().starts_with("detected mixed"));
        assert_eq!(parse_address_list("+dc/mgmt"), Ok(None));
        assert_eq!(parse_address_list("dc/traefik"), Ok(None));
    }

    #[test]
    fn single_hosts_lose_their_prefix_and_ipset_entries_their_host_bits() {
        assert_eq!(parse_ip_or_cidr("10.0.0.5/32").unwrap().0, "10.0.0.5");
        assert_eq!(parse_ip_or_cidr("10.0.1.7/24").unwrap().0, "10.0.1.7/24");
        assert_eq!(clean_cidr("10.0.1.7/24"), "10.0.1.0/24");
        assert_eq!(clean_cidr("10.0.0.5"), "10.0.0.5");
        assert_eq!(clean_cidr("2001:db8::1/64"), "2001:db8::/64");
        assert!(verify_ip_or_cidr("10.0.1.7/24").is_ok());
        assert!(verify_ip_or_cidr("10.0.0.0/33").is_err());
        assert!(verify_protocol("tcp").is_ok() && verify_protocol("6").is_ok() && verify_protocol("TCP").is_err());
    }
}
