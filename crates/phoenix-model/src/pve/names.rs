//! The names Proxmox VE accepts, from PVE::JSONSchema (pve-common): `dns-name`
//! (`pve_verify_dns_name`: DNS labels of letters, digits and inner hyphens, joined by dots) for a
//! container's hostname and a VM's name (at most 255 characters, the hostname's `maxLength`),
//! and `pve-node` (`pve_verify_node_name`, the same label rule) for node names. The simulator
//! and validation both use these.

/// The longest hostname pve-container accepts (`hostname` has `maxLength` 255).
pub const DNS_NAME_MAX: usize = 255;

/// One DNS label as PVE::JSONSchema's `$DNS_LABEL_REGEX` reads it (at most 63 octets, RFC 1035).
fn label(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 63
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !text.starts_with('-')
        && !text.ends_with('-')
}

/// `pve_verify_dns_name` (and `pve_verify_node_name`): labels joined by dots.
pub fn dns_name(text: &str) -> bool {
    !text.is_empty() && text.len() <= DNS_NAME_MAX && text.split('.').all(label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_pve_s_dns_name_format() {
        for good in ["pve", "nginx-phoenix", "a.b-c.d1", "101"] {
            assert!(dns_name(good), "{good}");
        }
        for bad in ["", "-a", "a-", "a..b", "a_b", "../etc", "a/b", "ä", &"a".repeat(64), &"a.".repeat(130)] {
            assert!(!dns_name(bad), "{bad}");
        }
    }
}
