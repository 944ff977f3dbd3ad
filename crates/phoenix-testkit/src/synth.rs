//! Synthetic inventories: N guests with realistic rules, DNS records and stacks, written in
//! the legacy format. Deterministic: the same N gives the same files.
//!
//! Shape per 10 guests: one "edge" pattern repeated. Guest i has address 10.(i/250).(i%250+1)
//! in 10.0.0.0/8's first /16s (the subnet is sized to fit), ten firewall rules naming real
//! peers, and four DNS records. Every fifth guest is a VM running one stack. A cluster's
//! inventory (`cluster_model`) spreads the guests over its nodes in turn (`pve`, `pve2`, ...).

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// Rules per guest and records per guest, matching the 5,000 / 50,000 / 20,000 shape.
pub const RULES_PER_GUEST: usize = 10;
pub const RECORDS_PER_GUEST: usize = 4;

fn address(i: usize) -> String {
    format!("10.{}.{}.{}", 1 + i / 62_500, (i / 250) % 250, i % 250 + 1)
}

fn subnet_for(_n: usize) -> &'static str {
    "10.0.0.0/8"
}

fn guest_id(i: usize) -> usize {
    1000 + i
}

fn rules(i: usize, n: usize) -> Vec<Value> {
    let peer = |k: usize| address((i + k) % n);
    let mut rules = vec![
        json!({"type": "in", "action": "ACCEPT", "source": address(0), "proto": "tcp", "port": "443", "comment": "from the proxy"}),
        json!({"type": "in", "action": "ACCEPT", "source": peer(1), "proto": "tcp", "port": "8000:8010", "comment": "app range"}),
        json!({"type": "in", "action": "ACCEPT", "source": peer(2), "proto": "udp", "port": "53"}),
        json!({"type": "in", "action": "ACCEPT", "source": "10.0.0.0/8", "proto": "icmp", "comment": "ping"}),
        json!({"type": "in", "action": "DROP", "source": peer(3), "proto": "tcp", "port": "22"}),
        json!({"type": "out", "action": "ACCEPT", "dest": peer(4), "proto": "tcp", "port": "5432"}),
        json!({"type": "out", "action": "ACCEPT", "dest": peer(5), "proto": "tcp", "port": "6379"}),
        json!({"type": "out", "action": "ACCEPT", "dest": "10.0.0.1", "proto": "udp", "port": "53", "comment": "DNS"}),
        json!({"type": "in", "action": "REJECT", "proto": "tcp", "port": "25"}),
        json!({"type": "in", "action": "ACCEPT", "source": peer(6), "proto": "tcp", "port": "9100", "comment": "metrics"}),
    ];
    rules.truncate(RULES_PER_GUEST);
    rules
}

fn guest_common(i: usize, n: usize) -> serde_json::Map<String, Value> {
    let mut guest = serde_json::Map::new();
    // Guest 0 is the NGINX gateway and guest 1 runs Traefik, so the edge is rendered too.
    let name = match i {
        0 => "nginx-gateway".to_string(),
        _ => format!("svc-{i}"),
    };
    guest.insert("name".into(), json!(name));
    guest.insert("memory_mb".into(), json!(1024));
    guest.insert("cores".into(), json!(1));
    guest.insert("start_at_boot".into(), json!(true));
    // Rising with the id, so a guest never boots before the one it depends on.
    guest.insert("boot_order".into(), json!(1 + i * 5 / n.max(1)));
    guest.insert("features".into(), if i == 1 { json!(["base_setup", "traefik"]) } else { json!(["base_setup"]) });
    guest.insert(
        "mac_address".into(),
        json!(format!("52:54:{:02X}:{:02X}:{:02X}:{:02X}", (i >> 24) & 0xff, (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff)),
    );
    if i > 0 && i.is_multiple_of(3) {
        guest.insert("dependencies".into(), json!([guest_id(i - 1).to_string()]));
    }
    guest.insert("firewall".into(), json!({"enabled": true, "policy_out": "DROP", "rules": rules(i, n)}));
    if i % 2 == 1 {
        guest.insert("traefik_service".into(), json!({"name": format!("svc-{i}"), "port": 8000}));
    }
    guest
}

/// The four files of an N-guest inventory, plus compose files, by relative path.
pub fn inventory(n: usize) -> BTreeMap<String, String> {
    cluster_inventory(n, 1)
}

/// The name of node `k` of a synthetic cluster: `pve`, then `pve2`, `pve3`, ...
pub fn node_name(k: usize) -> String {
    if k == 0 {
        "pve".to_string()
    } else {
        format!("pve{}", k + 1)
    }
}

/// An N-guest inventory on a cluster of `nodes` nodes (at 10.0.0.2 and up), guest i on node
/// i mod `nodes`.
pub fn cluster_inventory(n: usize, nodes: usize) -> BTreeMap<String, String> {
    assert!(n >= 1, "an inventory has at least one guest");
    let mut lxcs = serde_json::Map::new();
    let mut vms = Vec::new();
    let mut records = Vec::new();
    for i in 0..n {
        let mut guest = guest_common(i, n);
        if nodes > 1 {
            guest.insert("node".into(), json!(node_name(i % nodes)));
        }
        if i % 5 == 4 {
            guest.insert("vmid".into(), json!(guest_id(i)));
            guest.insert("template_image".into(), json!("noble-server-cloudimg-amd64.img"));
            guest.insert(
                "network_config".into(),
                json!({"ip": format!("{}/8", address(i)), "gw": "10.0.0.1", "nameserver": "10.0.0.1", "firewall": true}),
            );
            // The first 50 VMs run one stack each (a stack's host name routes to one guest).
            if i / 5 < 50 {
                guest.insert("docker_stacks".into(), json!([{"name": format!("stack-{}", i / 5), "environment": "production"}]));
            }
            vms.push(Value::Object(guest));
        } else {
            guest.insert("template".into(), json!("local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst"));
            guest.insert(
                "network_config".into(),
                json!({"name": "eth0", "bridge": "vmbr0", "ip": format!("{}/8", address(i)), "gw": "10.0.0.1", "firewall": true}),
            );
            lxcs.insert(guest_id(i).to_string(), Value::Object(guest));
        }
        // The gateway (guest 0) is reached through the names it routes, not names of its own.
        let own = address(if i == 0 { n - 1 } else { i });
        records.push(json!({"hostname": format!("node-{i}"), "ip_internal": own}));
        records.push(json!({"hostname": format!("alias-{i}"), "ip_internal": own}));
        records.push(json!({"hostname": format!("mgmt-{i}"), "ip_internal": own}));
        records.push(json!({"hostname": format!("ext-{i}"), "ip_external": own}));
    }
    records.truncate(n * RECORDS_PER_GUEST);
    let stacks: serde_json::Map<String, Value> = (0..50.min(n))
        .map(|s| {
            let stack = json!({
                "compose_file_path": format!("stacks/stack-{s}/docker-compose.yml"),
                "environments": {"production": {
                    "variables": [{"name": "LOG_LEVEL", "value": "info"}],
                    "services": {"app": {"traefik_labels": [
                        "traefik.enable=true",
                        format!("traefik.http.routers.stack-{s}.rule=Host(`stack-{s}.lab.example`)"),
                        format!("traefik.http.services.stack-{s}.loadbalancer.server.port=80"),
                    ]}}
                }}
            });
            (format!("stack-{s}"), stack)
        })
        .collect();
    let mut hypervisor = json!({
        "domain_name": "lab.example",
        "network": {"interfaces": {"name": "vmbr0", "address": "10.0.0.2/8", "gateway": "10.0.0.1"}, "default_subnet": subnet_for(n)},
        "external_systems": [{"name": "router and resolver", "addresses": ["10.0.0.1"]}],
        "firewall": {"enabled": true, "global_firewall_rules": [
            {"type": "in", "action": "ACCEPT", "source": "10.0.0.0/8", "proto": "tcp", "port": "22,8006", "comment": "management"},
            {"type": "in", "action": "ACCEPT", "source": "10.0.0.0/8", "proto": "udp", "port": "53"}
        ]},
        "dns_server": {"enabled": true, "upstream_servers": ["1.1.1.1"], "authoritative_zones": [{"zone_name": "lab.example", "records": records}]},
        "portainer_api": {"admin_user": "admin", "admin_password": {"env": "PHOENIX_PORTAINER_PASSWORD"}},
        "step_ca": {"dns_name": "ca.lab.example"}
    });
    if nodes > 1 {
        let others: Vec<Value> = (1..nodes).map(|k| json!({"name": node_name(k), "address": format!("10.0.0.{}", 2 + k)})).collect();
        hypervisor["proxmox"] = json!({"node_name": "pve", "nodes": others});
    }
    let mut files = BTreeMap::new();
    files.insert("etc/phoenix_hypervisor_config.json".to_string(), serde_json::to_string_pretty(&hypervisor).expect("json"));
    files.insert("etc/phoenix_lxc_configs.json".to_string(), serde_json::to_string_pretty(&json!({"lxc_configs": lxcs})).expect("json"));
    files.insert("etc/phoenix_vm_configs.json".to_string(), serde_json::to_string_pretty(&json!({"vms": vms})).expect("json"));
    files.insert(
        "etc/phoenix_stacks_config.json".to_string(),
        serde_json::to_string_pretty(&json!({"docker_stacks": stacks})).expect("json"),
    );
    for s in 0..50.min(n) {
        files.insert(
            format!("stacks/stack-{s}/docker-compose.yml"),
            format!("services:\n  app:\n    image: nginx:1.27\n    ports:\n      - \"80\"\n    labels:\n      stack: \"{s}\"\n"),
        );
    }
    files
}

/// Writes an N-guest inventory under `root` (its config folder is `root/etc`).
pub fn write_inventory(root: &Path, n: usize) -> std::io::Result<()> {
    for (relative, text) in inventory(n) {
        let path = root.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, text)?;
    }
    Ok(())
}

/// The synthetic inventory of `n` guests, loaded (from memory, under `/synthetic`).
pub fn model(n: usize) -> phoenix_model::Model {
    cluster_model(n, 1)
}

/// The synthetic inventory of `n` guests on a cluster of `nodes` nodes, loaded.
pub fn cluster_model(n: usize, nodes: usize) -> phoenix_model::Model {
    let root = std::path::PathBuf::from("/synthetic");
    let mut source = crate::MemorySource::default();
    for (relative, text) in cluster_inventory(n, nodes) {
        source.files.insert(root.join(relative), text);
    }
    phoenix_model::check(&root.join("etc"), &source).model.expect("the synthetic inventory loads")
}
