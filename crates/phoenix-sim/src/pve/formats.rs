//! The registered formats (`PVE::JSONSchema::register_format` in pve-common, and those
//! pve-firewall registers in `src/PVE/Firewall.pm`) that phoenix's requests meet, each with
//! its verifier's rule and message. A `NAME-list` format checks every item of a
//! comma/semicolon/space separated list (`PVE::Tools::split_list`); `NAME-opt` also takes the
//! empty string. Any other format is `Unknown`, which the validator reports as a gap.

use super::fw::addr;
use std::net::{Ipv4Addr, Ipv6Addr};

pub enum Checked {
    Ok,
    Refused(String),
    Unknown,
}

/// `PVE::JSONSchema::parse_boolean`.
pub fn parse_boolean(text: &str) -> Option<&'static str> {
    match text.to_ascii_lowercase().as_str() {
        "1" | "on" | "yes" | "true" => Some("1"),
        "0" | "off" | "no" | "false" => Some("0"),
        _ => None,
    }
}

fn verdict(result: Result<(), String>) -> Checked {
    match result {
        Ok(()) => Checked::Ok,
        Err(message) => Checked::Refused(message),
    }
}

fn refuse_unless(ok: bool, message: impl FnOnce() -> String) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(message())
    }
}

/// `pve_verify_configid`.
pub fn configid(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && id.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// `pve_verify_node_name`: a DNS label sequence (the rule is shared with validation).
fn node_name(name: &str) -> bool {
    phoenix_model::pve::names::dns_name(name)
}

fn mac(text: &str) -> bool {
    let parts: Vec<&str> = text.split(':').collect();
    parts.len() == 6
        && parts.iter().all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
        && u8::from_str_radix(parts[0], 16).is_ok_and(|first| first & 1 == 0)
}

fn cidr_v4(text: &str, min: u8) -> bool {
    text.split_once('/').is_some_and(|(a, p)| a.parse::<Ipv4Addr>().is_ok() && p.parse::<u8>().is_ok_and(|p| (min..=32).contains(&p)))
}

fn cidr_v6(text: &str, min: u8) -> bool {
    text.split_once('/').is_some_and(|(a, p)| a.parse::<Ipv6Addr>().is_ok() && p.parse::<u8>().is_ok_and(|p| (min..=128).contains(&p)))
}

/// The verifier of format `name` applied to `text`.
pub fn check(name: &str, text: &str) -> Checked {
    if let Some(base) = name.strip_suffix("-list") {
        for item in text.split([',', ';', ' ', '\0']).filter(|i| !i.is_empty()) {
            match check(base, item) {
                Checked::Ok => {}
                other => return other,
            }
        }
        return Checked::Ok;
    }
    if let Some(base) = name.strip_suffix("-opt") {
        return if text.is_empty() { Checked::Ok } else { check(base, text) };
    }
    verdict(match name {
        "pve-configid" => refuse_unless(configid(text), || format!("invalid configuration ID '{text}'")),
        "pve-node" => refuse_unless(node_name(text), || "value does not look like a valid node name".to_string()),
        "pve-vmid" => {
            refuse_unless(text.len() >= 3 && text.len() <= 9 && !text.starts_with('0') && text.bytes().all(|b| b.is_ascii_digit()), || {
                "value does not look like a valid VM ID".into()
            })
        }
        "pve-iface" => {
            refuse_unless(phoenix_model::pve::fw_names::iface_valid(text), || format!("invalid network interface name '{text}'"))
        }
        "pve-bridge-id" => refuse_unless(!text.is_empty() && text.chars().all(|c| c.is_alphanumeric() || "-_.".contains(c)), || {
            format!("invalid bridge ID '{text}'")
        }),
        "mac-addr" => refuse_unless(mac(text), || "value does not look like a valid unicast MAC address".into()),
        "ipv4" => refuse_unless(text.parse::<Ipv4Addr>().is_ok(), || "value does not look like a valid IPv4 address".into()),
        "ipv6" => refuse_unless(text.parse::<Ipv6Addr>().is_ok(), || "value does not look like a valid IPv6 address".into()),
        "ip" => refuse_unless(text.parse::<std::net::IpAddr>().is_ok(), || "value does not look like a valid IP address".into()),
        "CIDRv4" => refuse_unless(cidr_v4(text, 0), || "value does not look like a valid IPv4 CIDR network".into()),
        "CIDR" => refuse_unless(cidr_v4(text, 0) || cidr_v6(text, 0), || "value does not look like a valid CIDR network".into()),
        "pve-ipv4-config" => refuse_unless(matches!(text, "dhcp" | "manual") || cidr_v4(text, 8), || "invalid IPv4 configuration".into()),
        "pve-ipv6-config" => {
            refuse_unless(matches!(text, "auto" | "dhcp" | "manual") || cidr_v6(text, 8), || "invalid IPv6 configuration".into())
        }
        "IPorCIDR" => addr::verify_ip_or_cidr(text),
        "IPorCIDRorAlias" => addr::verify_ip_or_cidr_or_alias(text),
        "pve-fw-addr-spec" => addr::parse_address_list(text).map(|_| ()),
        "pve-fw-dport-spec" => addr::parse_ports(text, true).map(|_| ()),
        "pve-fw-sport-spec" => addr::parse_ports(text, false).map(|_| ()),
        "pve-fw-protocol-spec" => addr::verify_protocol(text),
        "pve-fw-icmp-type-spec" => {
            refuse_unless(text.is_empty() || addr::is_icmp_type_name(text) || addr::ICMPV6_TYPES.contains(&text), || {
                format!("invalid icmp-type value '{text}'")
            })
        }
        // pve-common `pve-tag`: `^(?i)[a-z0-9_][a-z0-9_\-\+\.]*$`.
        "pve-tag" => refuse_unless(
            text.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
                && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-+.".contains(&b)),
            || format!("invalid tag '{text}'"),
        ),
        // pve-ha-manager PVE/HA/Tools.pm: `^([a-z]+:\S+|\d+)$` and `^[a-z]+:\S+$`.
        "pve-ha-resource-or-vm-id" | "pve-ha-resource-id" => {
            let typed = text.split_once(':').is_some_and(|(t, rest)| {
                !t.is_empty() && t.bytes().all(|b| b.is_ascii_lowercase()) && !rest.is_empty() && !rest.contains(char::is_whitespace)
            });
            let number = name.ends_with("-or-vm-id") && !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
            refuse_unless(typed || number, || "value does not look like a valid ha resource id".into())
        }
        // pve-common JSONSchema.pm pve_verify_dns_name.
        "dns-name" => refuse_unless(dns_name(text), || "value does not look like a valid DNS name".into()),
        // pve-storage PVE/Storage.pm: `/^[a-z][a-z0-9\-\_\.]*[a-z0-9]$/i`.
        "pve-storage-id" => refuse_unless(storage_id(text), || format!("storage ID '{text}' contains illegal characters")),
        // pve-storage `verify_content`.
        "pve-storage-content" => {
            refuse_unless(["images", "rootdir", "vztmpl", "iso", "backup", "snippets", "import"].contains(&text), || {
                format!("invalid content type '{text}'")
            })
        }
        // pve-common pve_verify_startup_order (parse_startup: order, up, down; numbers).
        "pve-startup-order" => refuse_unless(startup_order(text), || "unable to parse startup options".into()),
        // pve-common pve_verify_address (each item an IP).
        "address" => {
            refuse_unless(text.parse::<std::net::IpAddr>().is_ok(), || format!("value does not look like a valid address: {text}"))
        }
        // pve-container: an IP, a link-local one with its `%iface`.
        "lxc-ip-with-ll-iface" => refuse_unless(text.split('%').next().is_some_and(|ip| ip.parse::<std::net::IpAddr>().is_ok()), || {
            format!("value does not look like a valid IP address: {text}")
        }),
        // pve-common pve_verify_urlencoded.
        "urlencoded" => refuse_unless(text.bytes().all(|b| b.is_ascii_alphanumeric() || b"-%_.!~*'()".contains(&b)), || {
            format!("invalid urlencoded string: {text}")
        }),
        // qemu-server `pve-qm-boot`: `order=dev[;dev...]` or `legacy=[acdn]{1,4}`.
        "pve-qm-boot" => refuse_unless(qm_boot(text), || "invalid boot order".into()),
        // pve-container LXC/Config.pm verify_lxc_mp_string: no `.`/`..` path components.
        "pve-lxc-mp-string" => {
            refuse_unless(!text.split('/').any(|c| c == "." || c == ".."), || format!("{text} contains illegal character sequences"))
        }
        // pve-storage `parse_volume_id` (`storage:name`), or what qemu-server also takes.
        "pve-volume-id" => refuse_unless(volume_id(text), || format!("unable to parse volume ID '{text}'")),
        "pve-volume-id-or-qm-path" => refuse_unless(volume_id(text) || text.starts_with('/') || matches!(text, "none" | "cdrom"), || {
            format!("unable to parse volume ID '{text}'")
        }),
        "pve-volume-id-or-absolute-path" => {
            refuse_unless(volume_id(text) || text.starts_with('/'), || format!("unable to parse volume ID '{text}'"))
        }
        // qemu-server `pve-qm-ipconfig`: ip (CIDR or dhcp), gw, ip6, gw6.
        "pve-qm-ipconfig" => refuse_unless(qm_ipconfig(text), || "invalid format - ipconfig".into()),
        _ => return Checked::Unknown,
    })
}

fn volume_id(text: &str) -> bool {
    text.split_once(':').is_some_and(|(storage, name)| storage_id(storage) && !name.is_empty())
}

fn qm_ipconfig(text: &str) -> bool {
    text.split(',').all(|part| match part.split_once('=') {
        Some(("ip", ip)) => ip == "dhcp" || cidr_v4(ip, 0),
        Some(("gw", gw)) => gw.parse::<Ipv4Addr>().is_ok(),
        Some(("ip6", ip)) => matches!(ip, "dhcp" | "auto") || cidr_v6(ip, 0),
        Some(("gw6", gw)) => gw.parse::<Ipv6Addr>().is_ok(),
        _ => false,
    })
}

fn dns_name(text: &str) -> bool {
    let label =
        |l: &str| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') && !l.starts_with('-') && !l.ends_with('-');
    text.split('.').all(label)
}

fn storage_id(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() >= 2
        && bytes[0].is_ascii_alphabetic()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(b))
}

fn startup_order(text: &str) -> bool {
    text.split(',').filter(|p| !p.is_empty()).all(|part| match part.split_once('=') {
        Some(("order" | "up" | "down", value)) => value.parse::<u32>().is_ok(),
        None => part.parse::<u32>().is_ok(),
        _ => false,
    })
}

fn qm_boot(text: &str) -> bool {
    text.split(',').all(|part| match part.split_once('=') {
        Some(("order", devices)) => devices.split(';').all(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_alphanumeric())),
        Some(("legacy", letters)) => (1..=4).contains(&letters.len()) && letters.bytes().all(|b| b"acdn".contains(&b)),
        None => (1..=4).contains(&part.len()) && part.bytes().all(|b| b"acdn".contains(&b)),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(name: &str, text: &str) -> bool {
        matches!(check(name, text), Checked::Ok)
    }

    #[test]
    fn the_verifiers_phoenix_meets() {
        assert!(ok("pve-vmid", "101") && !ok("pve-vmid", "99") && !ok("pve-vmid", "0101"));
        assert!(ok("pve-configid-list", "proto,comment") && !ok("pve-configid-list", "proto,9x"));
        assert!(ok("mac-addr", "BC:24:11:00:00:01") && !ok("mac-addr", "01:00:00:00:00:00"), "multicast is refused");
        assert!(ok("pve-fw-addr-spec", "10.0.0.0/24") && !ok("pve-fw-addr-spec", "10.0.0.1/24"));
        assert!(ok("pve-ipv4-config", "10.0.0.5/24") && ok("pve-ipv4-config", "dhcp") && !ok("pve-ipv4-config", "10.0.0.5"));
        assert!(ok("pve-storage-id", "quickOS-lxc-disks") && !ok("pve-storage-id", "1local") && !ok("pve-storage-id", "a/b"));
        assert!(ok("dns-name", "nginx-gateway") && !ok("dns-name", "-x") && !ok("dns-name", "a_b"));
        assert!(ok("pve-startup-order", "order=3,up=5") && !ok("pve-startup-order", "order=x"));
        assert!(matches!(check("pve-no-such-format", "x"), Checked::Unknown));
    }
}
