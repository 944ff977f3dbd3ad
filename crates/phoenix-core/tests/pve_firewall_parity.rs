//! Conformance cases for the evaluator, written from pve-firewall `src/PVE/Firewall.pm`
//! (iptables back end): each case is a packet, a few `.fw` and NIC settings, the verdict
//! pve-firewall gives, and the function its trace must name. Each failed on the evaluator
//! before it built chains as Firewall.pm does.

use phoenix_core::analyze::firewall::{trace, Endpoint, FirewallState, FirewallVerdict, GuestNet, Packet};
use phoenix_model::model::GuestKind;
use phoenix_testkit::MemorySource;
use std::collections::BTreeMap;
use std::path::Path;

const CLUSTER: &str = "/etc/pve/firewall/cluster.fw";
const HOST: &str = "/etc/pve/nodes/pve/host.fw";

/// A node 10.0.0.1/24 on vmbr0 with LXC 100 (10.0.0.100) and VM 101 (10.0.0.101).
fn model() -> phoenix_model::Model {
    let etc = Path::new("/virtual/etc");
    let mut source = MemorySource::default();
    let hv =
        serde_json::json!({ "network": { "interfaces": { "name": "vmbr0", "address": "10.0.0.1/24" }, "default_subnet": "10.0.0.0/24" } });
    let lxc = serde_json::json!({ "lxc_configs": { "100": { "name": "a", "network_config": { "ip": "10.0.0.100/24" } } } });
    let vm = serde_json::json!({ "vms": [ { "vmid": 101, "name": "b", "network_config": { "ip": "10.0.0.101/24" } } ] });
    source.files.insert(etc.join("phoenix_hypervisor_config.json"), hv.to_string());
    source.files.insert(etc.join("phoenix_lxc_configs.json"), lxc.to_string());
    source.files.insert(etc.join("phoenix_vm_configs.json"), vm.to_string());
    source.files.insert(etc.join("phoenix_stacks_config.json"), "{\"docker_stacks\": {}}".into());
    phoenix_model::check(etc, &source).model.unwrap()
}

struct Node {
    files: BTreeMap<String, String>,
    nets: BTreeMap<u32, GuestNet>,
    now: Option<i64>,
}

impl Node {
    /// cluster.fw enabled with `rules`, both guests' firewalls enabled, NICs on vmbr0 with firewall=1.
    fn new(cluster_rules: &str) -> Node {
        let mut files = BTreeMap::new();
        files.insert(CLUSTER.to_string(), format!("[OPTIONS]\nenable: 1\n\n[RULES]\n{cluster_rules}\n"));
        for id in [100, 101] {
            files.insert(format!("/etc/pve/firewall/{id}.fw"), "[OPTIONS]\nenable: 1\n".to_string());
        }
        let nets = BTreeMap::from([
            (100, GuestNet::from_conf(GuestKind::Lxc, "net0: name=eth0,bridge=vmbr0,firewall=1,ip=10.0.0.100/24,type=veth\n")),
            (
                101,
                GuestNet::from_conf(GuestKind::Vm, "net0: virtio=BC:24:11:00:00:01,bridge=vmbr0,firewall=1\nipconfig0: ip=10.0.0.101/24\n"),
            ),
        ]);
        Node { files, nets, now: None }
    }

    fn file(mut self, path: &str, text: &str) -> Node {
        self.files.insert(path.to_string(), text.to_string());
        self
    }

    fn guest(self, id: u32, text: &str) -> Node {
        self.file(&format!("/etc/pve/firewall/{id}.fw"), text)
    }

    fn conf(mut self, id: u32, kind: GuestKind, conf: &str) -> Node {
        self.nets.insert(id, GuestNet::from_conf(kind, conf));
        self
    }

    fn state(&self) -> FirewallState {
        let mut state = FirewallState::from_texts(&self.files, "pve", self.nets.clone(), "vmbr0", "a test").with_node(&model(), None);
        state.now = self.now;
        state
    }

    /// Traces `src` to `dst` (`host`, a guest id, or an address) and returns the verdict and trace.
    fn judge(&self, src: &str, dst: &str, packet: Packet) -> (FirewallVerdict, String) {
        let (state, model) = (self.state(), model());
        let at = |text: &str| phoenix_core::analyze::firewall::parse_endpoint_at(&state, &model, text).unwrap();
        let (verdict, lines) = trace(&state, &model, at(src), at(dst), packet);
        (verdict, lines.join("\n"))
    }
}

fn tcp(port: u16) -> Packet {
    Packet::to(6, port)
}

fn assert_passes(node: &Node, src: &str, dst: &str, packet: Packet, cites: &str) {
    let (verdict, text) = node.judge(src, dst, packet);
    assert!(verdict.passes, "{src} -> {dst} should pass:\n{text}");
    assert!(text.contains(cites), "the trace should cite `{cites}`:\n{text}");
}

fn assert_blocked(node: &Node, src: &str, dst: &str, packet: Packet, cites: &str) {
    let (verdict, text) = node.judge(src, dst, packet);
    assert!(!verdict.passes, "{src} -> {dst} should be blocked:\n{text}");
    assert!(text.contains(cites), "the trace should cite `{cites}`:\n{text}");
}

/// `ruleset_generate_vm_rules` and `enable_host_firewall`: `next if $rule->{errors}`.
#[test]
fn rules_verify_rule_refuses_decide_nothing() {
    let refused = [
        "IN ACCEPT -dport 22",               // a port without a protocol
        "IN NFS(ACCEPT)",                    // no such macro in pve-firewall
        "IN SSH(ACCEPT) -p tcp -dport 2222", // a macro with its own, different port
        "IN accept -p tcp -dport 22",        // actions are upper case
    ];
    for line in refused {
        let node = Node::new("").guest(100, &format!("[OPTIONS]\nenable: 1\n\n[RULES]\n{line}\n"));
        assert_blocked(&node, "101", "100", tcp(22), "pve-firewall skips it (ruleset_generate_vm_rules");
        let skipped = node.state().skipped();
        assert_eq!(skipped.len(), 1, "{line}: {skipped:?}");
        assert_eq!((skipped[0].path.as_str(), skipped[0].line), ("/etc/pve/firewall/100.fw", 5), "{line}");
    }
}

/// `generic_fw_config_parser`: a line `parse_fw_rule` cannot read is dropped with a warning;
/// the rest of the file still applies.
#[test]
fn a_line_the_parser_drops_leaves_the_rest_in_force() {
    let node =
        Node::new("").guest(100, "[OPTIONS]\nenable: 1\n\n[RULES]\nIN ACCEPT -p tcp -dport 80 -colour red\nIN ACCEPT -p tcp -dport 443\n");
    assert_passes(&node, "101", "100", tcp(443), "/etc/pve/firewall/100.fw:6: IN ACCEPT -p tcp -dport 443 -- MATCH");
    assert_blocked(&node, "101", "100", tcp(80), "policy_in");
    let skipped = node.state().skipped();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].line, 5);
    assert!(skipped[0].reason.contains("unable to parse rule parameters"), "{skipped:?}");
}

/// `parse_fw_rule` reads `--dport`/`--proto`; FORWARD rules are valid on the host and
/// compiled by no iptables chain (`enable_host_firewall` takes in, out and group only).
#[test]
fn long_option_spellings_count_and_forward_rules_do_not_filter_the_host() {
    let node = Node::new("FORWARD DROP -p tcp --dport 8080\nIN ACCEPT --proto tcp --dport 8080");
    assert_passes(&node, "100", "host", tcp(8080), "cluster.fw:6: IN ACCEPT -p tcp -dport 8080 -- MATCH");
    assert!(node.judge("100", "host", tcp(8080)).1.contains("FORWARD rule: the iptables back end compiles none"));
    assert!(node.state().skipped().is_empty());
}

/// `parse_clusterfw_option`: `enable: <time stamp>` keeps the firewall on for 60 s.
#[test]
fn a_time_stamp_enable_holds_for_a_minute() {
    let mut node = Node::new("").file(CLUSTER, "[OPTIONS]\nenable: 1764000000\n");
    node.now = Some(1_764_000_030);
    assert_blocked(&node, "101", "100", tcp(80), "policy_in");
    node.now = Some(1_764_000_061);
    let (verdict, text) = node.judge("101", "100", tcp(80));
    assert!(verdict.passes && verdict.unprotected, "{text}");
    assert!(text.contains("parse_clusterfw_option"), "{text}");
}

/// `enable_host_firewall`: the management ports are open from the `management` ipset (the
/// node's local network), after the user rules and before the DROP policy.
#[test]
fn the_management_ports_are_open_from_the_local_network() {
    let node = Node::new("");
    for port in [22, 8006, 3128, 5900, 60000] {
        assert_passes(&node, "100", "host", tcp(port), "management ipset: 10.0.0.0/24 (the node's local network 10.0.0.0/24)");
    }
    assert_blocked(&node, "203.0.113.9", "host", tcp(22), "enable_host_firewall");
    // cluster.fw's own [IPSET management] entries join it.
    let node = Node::new("").file(CLUSTER, "[OPTIONS]\nenable: 1\n\n[IPSET management]\n203.0.113.0/24\n");
    assert_passes(&node, "203.0.113.9", "host", tcp(8006), "and cluster.fw [IPSET management]");
    // A user rule comes first: host.fw can close SSH even from the local network.
    let node = Node::new("").file(HOST, "[RULES]\nIN DROP -p tcp -dport 22\n");
    assert_blocked(&node, "100", "host", tcp(22), "host.fw:2: IN DROP -p tcp -dport 22 -- MATCH");
    // Outbound: the same ports to the local network, even under a DROP policy_out.
    let node =
        Node::new("").file(CLUSTER, "[OPTIONS]\nenable: 1\npolicy_out: DROP\n").guest(100, "[OPTIONS]\nenable: 1\npolicy_in: ACCEPT\n");
    assert_passes(&node, "host", "100", tcp(22), "(the node's local network)");
    assert_blocked(&node, "host", "100", tcp(80), "policy_out: DROP");
}

/// `ruleset_chain_add_input_filters`: the cluster's blacklist drops before any user rule, on
/// the host and in PVEFW-FWBR-IN in front of every firewalled guest NIC.
#[test]
fn the_blacklist_drops_before_any_rule() {
    let node = Node::new("IN ACCEPT -p tcp -dport 8080")
        .file(CLUSTER, "[OPTIONS]\nenable: 1\n\n[IPSET blacklist]\n10.0.0.101\n\n[RULES]\nIN ACCEPT -p tcp -dport 8080\n")
        .guest(100, "[OPTIONS]\nenable: 1\n\n[RULES]\nIN ACCEPT -p tcp -dport 8080\n");
    assert_blocked(&node, "101", "host", tcp(8080), "the blacklist ipset: 10.0.0.101/32");
    assert_blocked(&node, "101", "100", tcp(8080), "[PVEFW-FWBR-IN, ruleset_chain_add_input_filters]");
    assert_passes(&node, "host", "100", tcp(8080), "100.fw:5: IN ACCEPT -p tcp -dport 8080 -- MATCH");
}

/// `ruleset_create_vm_chain`: with the ipfilter on, a guest's packets from addresses outside
/// `ipfilter-netN` are dropped; a container's `ip=` joins the set (`compile_ipsets`).
#[test]
fn the_ipfilter_drops_what_the_set_does_not_hold() {
    let filter = "[OPTIONS]\nenable: 1\nipfilter: 1\npolicy_in: ACCEPT\n";
    let node = Node::new("").guest(100, filter).guest(101, filter);
    // The container's own ip= is in its set; the VM's set is empty.
    assert_passes(&node, "100", "101", tcp(22), "the ipfilter, its entries and the container's ip=: 10.0.0.100/32");
    assert_blocked(&node, "101", "100", tcp(22), "-source ! +ipfilter-net0 DROP (the ipfilter, its entries: empty)");
    let node = Node::new("")
        .guest(101, "[OPTIONS]\nenable: 1\n\n[IPSET ipfilter-net0]\n10.0.0.101\n")
        .guest(100, "[OPTIONS]\nenable: 1\npolicy_in: ACCEPT\n");
    assert_passes(&node, "101", "100", tcp(22), "its entries: 10.0.0.101/32");
}

/// `generate_ipset_chains` resolves aliases in ipset entries (the file's own, then the cluster's).
#[test]
fn aliases_inside_ipsets_are_resolved() {
    let cluster = "[OPTIONS]\nenable: 1\n\n[ALIASES]\nadmin 10.0.0.101\n\n[IPSET admins]\nadmin\n";
    let node = Node::new("")
        .file(CLUSTER, cluster)
        .guest(100, "[OPTIONS]\nenable: 1\n\n[RULES]\nIN ACCEPT -source +dc/admins -p tcp -dport 9000\n");
    assert_passes(&node, "101", "100", tcp(9000), "IN ACCEPT -source +dc/admins -p tcp -dport 9000 -- MATCH");
    assert_blocked(&node, "host", "100", tcp(9000), "policy_in");
}

/// `-i` on GROUP lines: in a guest it picks the NIC (`ruleset_generate_vm_rules`); on the host
/// it limits the jump to packets arriving on that interface (`enable_host_firewall`), which for
/// a guest's packet is the bridge its NIC is on.
#[test]
fn group_interfaces_pick_the_nic_and_the_host_interface() {
    let cluster = "[OPTIONS]\nenable: 1\n\n[RULES]\nGROUP web -i vmbr1\n\n[group web]\nIN ACCEPT -p tcp -dport 8080\n";
    let node = Node::new("").file(CLUSTER, cluster).guest(100, "[OPTIONS]\nenable: 1\n\n[RULES]\nGROUP web -i net1\n").conf(
        101,
        GuestKind::Vm,
        "net0: virtio=BC:24:11:00:00:01,bridge=vmbr1,firewall=1\nipconfig0: ip=10.0.0.101/24\n",
    );
    assert_passes(&node, "101", "host", tcp(8080), "entering group web");
    let node = node.conf(101, GuestKind::Vm, "net0: virtio=BC:24:11:00:00:01,bridge=vmbr0,firewall=1\nipconfig0: ip=10.0.0.101/24\n");
    assert_blocked(&node, "101", "host", tcp(8080), "policy_in");
    assert_blocked(&node, "101", "100", tcp(8080), "-i net1: ruleset_generate_vm_rules puts it on net1's chain only");
}

/// `$pve_fw_macros`: the whole table (Ceph is one phoenix did not know; SMB is all four rules).
#[test]
fn every_macro_of_pve_firewall_expands() {
    let node = Node::new("").guest(100, "[OPTIONS]\nenable: 1\n\n[RULES]\nIN Ceph(ACCEPT)\nIN SMB(ACCEPT)\n");
    assert_passes(&node, "101", "100", tcp(6800), "IN Ceph(ACCEPT) -- MATCH");
    assert_passes(&node, "101", "100", Packet::to(17, 138), "IN SMB(ACCEPT) -- MATCH");
    assert_passes(&node, "101", "100", tcp(135), "IN SMB(ACCEPT) -- MATCH");
}

/// ICMP types: `-icmp-type`, the older `-p icmp -dport <type>` (`ipt_rule_to_cmds`), the Ping
/// macro, and PVEFW-Drop's accepts under a DROP policy (`ruleset_add_chain_policy`).
#[test]
fn icmp_types_are_matched() {
    let ping = phoenix_core::analyze::firewall::parse_packet("icmp").unwrap();
    let unreachable = phoenix_core::analyze::firewall::parse_packet("icmp/port-unreachable").unwrap();
    for rule in ["IN ACCEPT -p icmp -icmp-type echo-request", "IN ACCEPT -p icmp -dport echo-request", "IN Ping(ACCEPT)"] {
        let node = Node::new("").guest(100, &format!("[OPTIONS]\nenable: 1\n\n[RULES]\n{rule}\n"));
        assert_passes(&node, "101", "100", ping, "-- MATCH");
        assert_blocked(&node, "101", "100", unreachable, "policy_in");
    }
    let node = Node::new("");
    let needed = phoenix_core::analyze::firewall::parse_packet("icmp/fragmentation-needed").unwrap();
    assert_passes(&node, "101", "100", needed, "[PVEFW-Drop, ruleset_add_chain_policy] -p icmp -icmp-type fragmentation-needed ACCEPT");
    let exceeded = phoenix_core::analyze::firewall::parse_packet("icmp/ttl-zero-during-transit").unwrap();
    let node = Node::new("").guest(100, "[OPTIONS]\nenable: 1\npolicy_in: REJECT\n");
    assert_passes(&node, "101", "100", exceeded, "[PVEFW-Reject, ruleset_add_chain_policy]");
}

/// `ruleset_create_vm_chain`: DHCP is accepted unless `dhcp: 0`.
#[test]
fn dhcp_is_accepted_unless_turned_off() {
    let dhcp = Packet { proto: 17, dport: Some(67), sport: Some(68), icmp: None };
    let node = Node::new("").guest(100, "[OPTIONS]\nenable: 1\npolicy_out: DROP\n");
    assert_passes(&node, "100", "203.0.113.1", dhcp, "(DHCP; the dhcp option is on unless 0)");
    let node = Node::new("").guest(100, "[OPTIONS]\nenable: 1\npolicy_out: DROP\ndhcp: 0\n");
    assert_blocked(&node, "100", "203.0.113.1", dhcp, "policy_out: DROP");
}

/// Each `netN` has its own chains (`compile_iptables_filter`: NICs with firewall=1 only), and
/// `-i netN` rules are on that NIC's chain only.
#[test]
fn each_nic_is_judged_by_its_own_chain() {
    let conf = "net0: name=eth0,bridge=vmbr0,firewall=1,ip=10.0.0.100/24,type=veth\n\
                net1: name=eth1,bridge=vmbr0,firewall=1,ip=10.0.0.200/24,type=veth\n\
                net2: name=eth2,bridge=vmbr0,firewall=0,ip=10.0.0.210/24,type=veth\n";
    let node =
        Node::new("").conf(100, GuestKind::Lxc, conf).guest(100, "[OPTIONS]\nenable: 1\n\n[RULES]\nIN ACCEPT -i net1 -p tcp -dport 5432\n");
    assert_passes(&node, "101", "10.0.0.200", tcp(5432), "IN of LXC 100 (a), net1");
    assert_blocked(&node, "101", "10.0.0.100", tcp(5432), "-i net1: ruleset_generate_vm_rules puts it on net1's chain only");
    let (verdict, text) = node.judge("101", "10.0.0.210", tcp(5432));
    assert!(verdict.passes && verdict.unprotected, "{text}");
    assert!(text.contains("NIC net2 lacks firewall=1"), "{text}");
    assert!(matches!(
        phoenix_core::analyze::firewall::parse_endpoint_at(&node.state(), &model(), "10.0.0.210").unwrap().0,
        Endpoint::Guest(100)
    ));
}

/// phoenix renders no rule pve-firewall would skip: what validation refuses (PHX-FW-010) is not
/// rendered, and everything rendered passes `verify_rule`.
#[test]
fn phoenix_renders_nothing_pve_firewall_skips() {
    let example = phoenix_model::check(&phoenix_testkit::example_config(), &phoenix_testkit::example_source()).model.unwrap();
    let reference = phoenix_testkit::reference_config();
    let reference = phoenix_model::check(&reference, &MemorySource::from_dir(reference.parent().unwrap())).model.unwrap();
    for model in [example, reference] {
        let state = FirewallState::from_rendered(&phoenix_core::render::render_all(&model), &model);
        assert_eq!(state.skipped(), Vec::new());
    }
}

/// `enable_host_firewall`: in a cluster, corosync (udp 5404:5405) is open from each peer to the
/// node's address on the same link, before the DROP policy; without corosync.conf it is not.
#[test]
fn corosync_is_open_between_the_cluster_nodes() {
    let corosync = "totem {\n  transport: knet\n}\nnodelist {\n  node {\n    name: pve\n    ring0_addr: 10.0.0.1\n  }\n  node {\n    name: pve2\n    ring0_addr: 10.0.0.2\n  }\n}\n";
    let knet = Packet::to(17, 5405);
    assert_blocked(&Node::new(""), "10.0.0.2", "host", knet, "policy_in");
    let node = Node::new("").file("/etc/pve/corosync.conf", corosync);
    assert_passes(
        &node,
        "10.0.0.2",
        "host",
        knet,
        "[PVEFW-HOST-IN, enable_host_firewall] -source 10.0.0.2 -dest 10.0.0.1 -p udp -dport 5404:5405 ACCEPT",
    );
    assert_blocked(&node, "10.0.0.3", "host", knet, "policy_in");
}

/// `$pve_std_chains_conf`: under a REJECT policy UPnP is dropped by PVEFW-Reject itself (never
/// rejected), and the SMB ports go to PVEFW-reject, before the policy's own rule.
#[test]
fn the_standard_chains_drop_upnp_and_broadcasts_first() {
    let node = Node::new("").guest(100, "[OPTIONS]\nenable: 1\npolicy_in: REJECT\n");
    assert_blocked(
        &node,
        "101",
        "100",
        Packet::to(17, 1900),
        "[PVEFW-Reject, ruleset_add_chain_policy] -p udp -dport 1900 DROP (UPnP) -- MATCH",
    );
    assert_blocked(
        &node,
        "101",
        "100",
        Packet::to(17, 445),
        "[PVEFW-Reject, ruleset_add_chain_policy] -p udp -dport 135,445 PVEFW-reject -- MATCH",
    );
}

/// `$apply_macro`: a macro rule keeps the rule's own parameters the macro does not set. (A port
/// needs `-p` even beside a macro: `verify_rule` checks it before it expands the macro.)
#[test]
fn a_macro_keeps_the_rules_own_source_port() {
    let node = Node::new("").guest(100, "[OPTIONS]\nenable: 1\n\n[RULES]\nIN HTTPS(ACCEPT) -sport 40000:40100\n");
    assert_blocked(&node, "101", "100", Packet { sport: Some(40050), ..tcp(443) }, "'sport' requires this property");
    let node = Node::new("").guest(100, "[OPTIONS]\nenable: 1\n\n[RULES]\nIN HTTPS(ACCEPT) -p tcp -sport 40000:40100\n");
    let from = |sport: u16| Packet { sport: Some(sport), ..tcp(443) };
    assert_passes(&node, "101", "100", from(40050), "IN HTTPS(ACCEPT) -p tcp -sport 40000:40100 -- MATCH");
    assert_blocked(&node, "101", "100", from(50000), "policy_in");
    assert_blocked(&node, "101", "100", tcp(443), "policy_in");
}
