//! Addresses in the form Proxmox VE stores and returns them (pve-firewall
//! `src/PVE/Firewall.pm`): a single host loses its `/32` or `/128` (`parse_ip_or_cidr`, on
//! every read of an alias or ipset entry), and an ipset entry has its host bits cleared
//! (`clean_cidr`, in `IPSet.pm` `create_ip`). Rendering and comparing in this form is what
//! makes a second sync find nothing to change.

use ipnet::IpNet;

/// An alias's address as pve-firewall reads it back.
pub fn alias(net: &IpNet) -> String {
    if net.prefix_len() == net.max_prefix_len() {
        net.addr().to_string()
    } else {
        net.to_string()
    }
}

/// An ipset entry as pve-firewall stores it.
pub fn ipset_entry(net: &IpNet) -> String {
    alias(&net.trunc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_bare_and_ipset_networks_masked() {
        let net = |t: &str| t.parse::<IpNet>().unwrap();
        assert_eq!(alias(&net("10.0.0.5/32")), "10.0.0.5");
        assert_eq!(alias(&net("10.0.1.7/24")), "10.0.1.7/24", "an alias keeps its host bits");
        assert_eq!(ipset_entry(&net("10.0.1.7/24")), "10.0.1.0/24");
        assert_eq!(ipset_entry(&net("2001:db8::1/128")), "2001:db8::1");
    }
}
