//! pve-firewall's macros (`$pve_fw_macros` and `$pve_ipv6fw_macros` in pve-firewall
//! `src/PVE/Firewall.pm`, PVE 9): each macro's name in its canonical spelling and the rules it
//! expands to. Every macro rule takes the action of the rule that uses it (`PARAM`); a
//! protocol is a name or a number as written there; an ICMP macro carries its ICMP type in the
//! destination port, as Firewall.pm does.

/// One rule of a macro's expansion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MacroRule {
    pub proto: &'static str,
    pub dport: Option<&'static str>,
    pub sport: Option<&'static str>,
}

/// One macro.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Macro {
    pub name: &'static str,
    /// DHCPv6 and NeighborDiscovery exist for IPv6 only (`init_firewall_macros`).
    pub ipv6_only: bool,
    pub rules: &'static [MacroRule],
    /// The expansion for IPv6 rules where `$pve_ipv6fw_macros` overrides it (Ping, Trcrt).
    pub ipv6_rules: Option<&'static [MacroRule]>,
}

const fn d(proto: &'static str, dport: &'static str) -> MacroRule {
    MacroRule { proto, dport: Some(dport), sport: None }
}

const fn ds(proto: &'static str, dport: &'static str, sport: &'static str) -> MacroRule {
    MacroRule { proto, dport: Some(dport), sport: Some(sport) }
}

const fn p(proto: &'static str) -> MacroRule {
    MacroRule { proto, dport: None, sport: None }
}

const fn m(name: &'static str, rules: &'static [MacroRule]) -> Macro {
    Macro { name, ipv6_only: false, rules, ipv6_rules: None }
}

/// Every macro, in the order of `$pve_fw_macros`, then the IPv6-only ones.
pub const MACROS: &[Macro] = &[
    m("Amanda", &[d("udp", "10080"), d("tcp", "10080")]),
    m("Auth", &[d("tcp", "113")]),
    m("BGP", &[d("tcp", "179")]),
    m("BitTorrent", &[d("tcp", "6881:6889"), d("udp", "6881")]),
    m("BitTorrent32", &[d("tcp", "6881:6999"), d("udp", "6881")]),
    m("Ceph", &[d("tcp", "6789"), d("tcp", "3300"), d("tcp", "6800:7300")]),
    m("CVS", &[d("tcp", "2401")]),
    m("Citrix", &[d("tcp", "1494"), d("udp", "1604"), d("tcp", "2598")]),
    m("DAAP", &[d("tcp", "3689"), d("udp", "3689")]),
    m("DCC", &[d("tcp", "6277")]),
    m("DHCPfwd", &[ds("udp", "67:68", "67:68")]),
    m("DNS", &[d("udp", "53"), d("tcp", "53")]),
    m("Distcc", &[d("tcp", "3632")]),
    m("FTP", &[d("tcp", "21")]),
    m("Finger", &[d("tcp", "79")]),
    m("GNUnet", &[d("tcp", "2086"), d("udp", "2086"), d("tcp", "1080"), d("udp", "1080")]),
    m("GRE", &[p("47")]),
    m("Git", &[d("tcp", "9418")]),
    m("HKP", &[d("tcp", "11371")]),
    m("HTTP", &[d("tcp", "80")]),
    m("HTTPS", &[d("tcp", "443")]),
    m("ICPV2", &[d("udp", "3130")]),
    m("ICQ", &[d("tcp", "5190")]),
    m("IMAP", &[d("tcp", "143")]),
    m("IMAPS", &[d("tcp", "993")]),
    m("IPIP", &[p("94")]),
    m("IPsec", &[ds("udp", "500", "500"), p("50")]),
    m("IPsecah", &[ds("udp", "500", "500"), p("51")]),
    m("IPsecnat", &[d("udp", "500"), d("udp", "4500"), p("50")]),
    m("IRC", &[d("tcp", "6667")]),
    m("Jetdirect", &[d("tcp", "9100")]),
    m("L2TP", &[d("udp", "1701")]),
    m("LDAP", &[d("tcp", "389")]),
    m("LDAPS", &[d("tcp", "636")]),
    m("MSNP", &[d("tcp", "1863")]),
    m("MSSQL", &[d("tcp", "1433")]),
    m("Mail", &[d("tcp", "25"), d("tcp", "465"), d("tcp", "587")]),
    m("MDNS", &[d("udp", "5353")]),
    m("Munin", &[d("tcp", "4949")]),
    m("MySQL", &[d("tcp", "3306")]),
    m("NNTP", &[d("tcp", "119")]),
    m("NNTPS", &[d("tcp", "563")]),
    m("NTP", &[d("udp", "123")]),
    m("OSPF", &[p("89")]),
    m("OpenVPN", &[d("udp", "1194")]),
    m("PCA", &[d("udp", "5632"), d("tcp", "5631")]),
    m("PMG", &[d("tcp", "8006")]),
    m("POP3", &[d("tcp", "110")]),
    m("POP3S", &[d("tcp", "995")]),
    m("PPtP", &[p("47"), d("tcp", "1723")]),
    Macro { name: "Ping", ipv6_only: false, rules: &[d("icmp", "echo-request")], ipv6_rules: Some(&[d("icmpv6", "echo-request")]) },
    m("PostgreSQL", &[d("tcp", "5432")]),
    m("Printer", &[d("tcp", "515")]),
    m("RDP", &[d("tcp", "3389")]),
    m("RIP", &[d("udp", "520")]),
    m("RNDC", &[d("tcp", "953")]),
    m("Razor", &[d("tcp", "2703")]),
    m("Rdate", &[d("tcp", "37")]),
    m("Rsync", &[d("tcp", "873")]),
    m("SANE", &[d("tcp", "6566")]),
    m("SMB", &[d("udp", "135,445"), d("udp", "137:139"), ds("udp", "1024:65535", "137"), d("tcp", "135,139,445")]),
    m("SMBswat", &[d("tcp", "901")]),
    m("SMTP", &[d("tcp", "25")]),
    m("SMTPS", &[d("tcp", "465")]),
    m("SNMP", &[d("udp", "161:162"), d("tcp", "161")]),
    m("SPAMD", &[d("tcp", "783")]),
    m("SPICEproxy", &[d("tcp", "3128")]),
    m("SSH", &[d("tcp", "22")]),
    m("SVN", &[d("tcp", "3690")]),
    m("SixXS", &[d("tcp", "3874"), d("udp", "3740"), p("41"), d("udp", "5072,8374")]),
    m("Squid", &[d("tcp", "3128")]),
    m("Submission", &[d("tcp", "587")]),
    m("Syslog", &[d("udp", "514"), d("tcp", "514")]),
    m("TFTP", &[d("udp", "69")]),
    m("Telnet", &[d("tcp", "23")]),
    m("Telnets", &[d("tcp", "992")]),
    m("Time", &[d("tcp", "37")]),
    Macro {
        name: "Trcrt",
        ipv6_only: false,
        rules: &[d("udp", "33434:33524"), d("icmp", "echo-request")],
        ipv6_rules: Some(&[d("udp", "33434:33524"), d("icmpv6", "echo-request")]),
    },
    m("VNC", &[d("tcp", "5900:5999")]),
    m("VNCL", &[d("tcp", "5500")]),
    m("Web", &[d("tcp", "80"), d("tcp", "443")]),
    m("Webcache", &[d("tcp", "8080")]),
    m("Webmin", &[d("tcp", "10000")]),
    m("Whois", &[d("tcp", "43")]),
    Macro { name: "DHCPv6", ipv6_only: true, rules: &[ds("udp", "546:547", "546:547")], ipv6_rules: None },
    Macro {
        name: "NeighborDiscovery",
        ipv6_only: true,
        rules: &[
            d("icmpv6", "router-solicitation"),
            d("icmpv6", "router-advertisement"),
            d("icmpv6", "neighbor-solicitation"),
            d("icmpv6", "neighbor-advertisement"),
        ],
        ipv6_rules: None,
    },
];

/// The macro a rule names, matched case-insensitively as `verify_rule` does through
/// `$pve_fw_preferred_macro_names` (the canonical spelling is `Macro::name`).
pub fn find(name: &str) -> Option<&'static Macro> {
    MACROS.iter().find(|m| m.name.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macros_are_found_in_any_case_and_named_canonically() {
        assert_eq!(MACROS.len(), 86);
        assert_eq!(find("ssh").map(|m| m.name), Some("SSH"));
        assert_eq!(find("webcache").map(|m| m.name), Some("Webcache"));
        assert!(find("NFS").is_none(), "pve-firewall has no NFS macro");
    }
}
