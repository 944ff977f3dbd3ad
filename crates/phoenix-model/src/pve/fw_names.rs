//! The names pve-firewall accepts for aliases, ipsets, security groups and interfaces, and how
//! its parser folds them (pve-firewall `src/PVE/Firewall.pm`: `$ip_alias_pattern`, `$ipset_name_pattern`,
//! `$security_group_name_pattern`, `$max_*_name_length`; `generic_fw_config_parser` lower-cases
//! ipset and group names, and aliases are keyed by their lower-cased name).

/// What kind of name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    Alias,
    IpSet,
    SecurityGroup,
}

impl NameKind {
    /// The longest name pve-firewall accepts (the API's maxLength; the parser's too).
    pub fn max_len(self) -> usize {
        match self {
            NameKind::Alias | NameKind::IpSet => 64,
            NameKind::SecurityGroup => 18,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            NameKind::Alias => "alias",
            NameKind::IpSet => "ipset",
            NameKind::SecurityGroup => "security group",
        }
    }
}

/// `[A-Za-z][A-Za-z0-9\-\_]+`: a letter, then at least one letter, digit, `-` or `_`.
pub fn matches_pattern(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Why pve-firewall refuses `name` as a `kind` name, if it does.
pub fn refusal(kind: NameKind, name: &str) -> Option<String> {
    if name.len() > kind.max_len() {
        return Some(format!("{} name `{name}` is longer than {} characters", kind.label(), kind.max_len()));
    }
    (!matches_pattern(name))
        .then(|| format!("{} name `{name}` is not a letter followed by letters, digits, `-` or `_` (at least 2 characters)", kind.label()))
}

/// `pve_verify_iface` (pve-common `PVE::JSONSchema`, format `pve-iface`):
/// `^[a-z][a-z0-9_]{1,20}([:\.]\d+)?$`, any case.
pub fn iface_valid(name: &str) -> bool {
    let (base, suffix) = match name.find([':', '.']) {
        Some(at) => (&name[..at], Some(&name[at + 1..])),
        None => (name, None),
    };
    let mut chars = base.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && (2..=21).contains(&base.len())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && suffix.is_none_or(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
}

/// A guest NIC's key, `net<N>`: the only interface a guest rule may name (`verify_rule`).
pub fn is_nic_key(name: &str) -> bool {
    name.strip_prefix("net").is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_pve_firewalls_patterns_and_lengths() {
        assert!(refusal(NameKind::SecurityGroup, "webservers").is_none());
        assert!(refusal(NameKind::SecurityGroup, "a-very-long-group-nm").is_some(), "19+ characters");
        assert!(refusal(NameKind::SecurityGroup, "exactly-18-chars-x").is_none());
        assert!(refusal(NameKind::IpSet, "x").is_some(), "one character is too short");
        assert!(refusal(NameKind::Alias, "1abc").is_some());
        assert!(refusal(NameKind::Alias, "has.dot").is_some());
        assert!(iface_valid("vmbr0") && iface_valid("eth0.20") && !iface_valid("0eth") && !iface_valid("eth0."));
        assert!(is_nic_key("net0") && !is_nic_key("eth0") && !is_nic_key("net"));
    }
}
