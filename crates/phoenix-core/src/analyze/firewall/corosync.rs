//! What the host's chains take from the cluster's `corosync.conf` (`/etc/pve/corosync.conf`):
//! the transport and, per link (`ringN_addr`), the node's own address and each peer's.
//! pve-firewall `src/PVE/Firewall.pm`, `enable_host_firewall`: corosync traffic (udp
//! 5404:5405) is accepted from each peer to the node's address on the same link and back, and
//! to multicast destinations when `totem.transport` is `udp`. A node without corosync.conf
//! (not in a cluster) gets none of these rules. Reads text; must not evaluate.

use std::collections::BTreeMap;
use std::net::IpAddr;

/// The corosync facts the firewall uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Corosync {
    /// `totem.transport: udp` (multicast).
    pub multicast: bool,
    /// (the node's own address, a peer's address) on one link.
    pub links: Vec<(IpAddr, IpAddr)>,
}

impl Corosync {
    /// Reads `corosync.conf` for node `node`; `None` when the node is not in its nodelist.
    pub fn parse(text: &str, node: &str) -> Option<Corosync> {
        let mut nodes: Vec<BTreeMap<String, String>> = Vec::new();
        let mut sections: Vec<String> = Vec::new();
        let mut transport = None;
        for line in text.lines().map(|l| l.split('#').next().unwrap_or_default().trim()) {
            if let Some(name) = line.strip_suffix('{') {
                let name = name.trim().to_string();
                if name == "node" && sections.last().is_some_and(|s| s == "nodelist") {
                    nodes.push(BTreeMap::new());
                }
                sections.push(name);
            } else if line == "}" {
                sections.pop();
            } else if let Some((key, value)) = line.split_once(':') {
                let (key, value) = (key.trim().to_string(), value.trim().to_string());
                match sections.last().map(String::as_str) {
                    Some("node") => {
                        if let Some(current) = nodes.last_mut() {
                            current.insert(key, value);
                        }
                    }
                    Some("totem") if key == "transport" => transport = Some(value),
                    _ => {}
                }
            }
        }
        let own = nodes.iter().find(|n| n.get("name").map(String::as_str) == Some(node))?;
        let mut links = Vec::new();
        for (key, value) in own.iter().filter(|(k, _)| k.starts_with("ring") && k.ends_with("_addr")) {
            let Ok(local) = value.parse::<IpAddr>() else { continue };
            for peer in nodes.iter().filter(|n| n.get("name").map(String::as_str) != Some(node)) {
                if let Some(address) = peer.get(key).and_then(|v| v.parse::<IpAddr>().ok()) {
                    links.push((local, address));
                }
            }
        }
        Some(Corosync { multicast: transport.as_deref() == Some("udp"), links })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONF: &str = "totem {\n  transport: udp\n}\nnodelist {\n  node {\n    name: pve1\n    ring0_addr: 10.0.0.13\n    ring1_addr: 10.9.0.13\n  }\n  node {\n    name: pve2\n    ring0_addr: 10.0.0.14\n  }\n}\n";

    #[test]
    fn each_link_pairs_the_node_with_each_peer() {
        let corosync = Corosync::parse(CONF, "pve1").unwrap();
        assert!(corosync.multicast);
        assert_eq!(corosync.links, vec![("10.0.0.13".parse().unwrap(), "10.0.0.14".parse().unwrap())], "pve2 has no ring1");
        assert!(Corosync::parse(CONF, "pve9").is_none());
    }
}
