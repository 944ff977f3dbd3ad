//! What the evaluator reads: cluster.fw, the node's host.fw, each guest's `.fw` (each read as
//! pve-firewall reads it: [`crate::pve_fw::conf`]), and each guest's NICs (`netN`: firewall
//! flag, bridge, address) from rendered settings or deployed `.conf` files. A line
//! pve-firewall skips is kept as a [`Skipped`] finding; it never makes the state unreadable.

use super::chain::{Chain, Dir};
use crate::pve_fw::conf::{ConfLines, FwConf, FwKind};
use crate::pve_fw::rule::RuleEnv;
use crate::render::Rendered;
use ipnet::{IpNet, Ipv4Net};
use phoenix_model::model::{GuestId, GuestKind, Model};
use std::collections::BTreeMap;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// One parsed `.fw` file and where it came from.
#[derive(Debug, Clone, Default)]
pub struct FwSource {
    pub path: String,
    pub conf: FwConf,
    pub lines: ConfLines,
    /// False when the file does not exist (Proxmox then uses its defaults).
    pub present: bool,
}

impl FwSource {
    fn parse(path: &str, text: Option<&str>, kind: FwKind, cluster: Option<&FwConf>) -> FwSource {
        match text {
            None => FwSource { path: path.to_string(), ..FwSource::default() },
            Some(text) => {
                let (conf, lines) = FwConf::parse_with_lines(text, kind, cluster);
                FwSource { path: path.to_string(), conf, lines, present: true }
            }
        }
    }

    pub fn option(&self, key: &str) -> Option<&str> {
        self.conf.options.get(key).map(String::as_str)
    }
}

/// A line or rule pve-firewall does not apply, and why (its own warning or `verify_rule`'s error).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Skipped {
    pub path: String,
    pub line: usize,
    pub reason: String,
}

/// One NIC of a guest (`netN: ...` in its `.conf`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nic {
    /// `net0`, `net1`, ...
    pub key: String,
    /// `firewall=1`: only then does Proxmox put the NIC behind a firewall bridge.
    pub firewall: bool,
    pub bridge: Option<String>,
    /// The static IPv4 address (a container's `ip=`, a VM's `ipconfigN: ip=`).
    pub ip: Option<Ipv4Net>,
}

impl Nic {
    /// Reads a `netN` property string (`name=eth0,bridge=vmbr0,firewall=1,ip=10.0.0.2/24,...`).
    pub fn parse(key: &str, value: &str) -> Nic {
        let mut nic = Nic { key: key.to_string(), firewall: false, bridge: None, ip: None };
        for (name, val) in value.split(',').filter_map(|part| part.trim().split_once('=')) {
            match name {
                "firewall" => nic.firewall = val == "1",
                "bridge" => nic.bridge = Some(val.to_string()),
                "ip" => nic.ip = val.parse().ok(),
                _ => {}
            }
        }
        nic
    }
}

/// A guest's kind and NICs, in `netN` order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestNet {
    pub kind: GuestKind,
    pub nics: Vec<Nic>,
}

impl GuestNet {
    /// From a guest's `.conf` text: its `netN` lines and, for VMs, the `ipconfigN` addresses.
    pub fn from_conf(kind: GuestKind, conf: &str) -> GuestNet {
        let mut nics: BTreeMap<u32, Nic> = BTreeMap::new();
        let mut ipconfig: BTreeMap<u32, Ipv4Net> = BTreeMap::new();
        // Only the current configuration counts: a `[snapshot]` section starts the snapshots.
        for line in conf.lines().take_while(|l| !l.starts_with('[')) {
            let Some((key, value)) = line.split_once(':') else { continue };
            let (key, value) = (key.trim(), value.trim());
            if let Some(n) = key.strip_prefix("net").and_then(|n| n.parse::<u32>().ok()) {
                nics.insert(n, Nic::parse(key, value));
            } else if let Some(n) = key.strip_prefix("ipconfig").and_then(|n| n.parse::<u32>().ok()) {
                if let Some(ip) = Nic::parse(key, value).ip {
                    ipconfig.insert(n, ip);
                }
            }
        }
        for (n, ip) in ipconfig {
            if let Some(nic) = nics.get_mut(&n) {
                nic.ip.get_or_insert(ip);
            }
        }
        GuestNet { kind, nics: nics.into_values().collect() }
    }

    /// The NIC a packet from or to `ip` uses: the one holding that address, else the first.
    pub fn nic_for(&self, ip: IpAddr) -> Option<&Nic> {
        self.nics.iter().find(|n| n.ip.is_some_and(|net| IpAddr::V4(net.addr()) == ip)).or_else(|| self.nics.first())
    }
}

/// The whole firewall configuration of one node (and, in a cluster, of the others, each as its
/// own node sees it: `peers`).
#[derive(Debug, Clone, Default)]
pub struct FirewallState {
    pub cluster: FwSource,
    pub host: FwSource,
    /// Every node's host.fw as read, by node name, and corosync.conf's text: what each node's
    /// own state is made from (`with_node`).
    hosts: BTreeMap<String, FwSource>,
    corosync_text: Option<String>,
    /// The cluster's other nodes (by index in `Host::nodes`), each with its own host.fw and its
    /// own corosync links: where host traffic to or from that node is judged.
    pub peers: BTreeMap<u8, Arc<FirewallState>>,
    /// Set in a peer's state: the node it is.
    peer: Option<String>,
    pub guests: BTreeMap<GuestId, FwSource>,
    pub nets: BTreeMap<GuestId, GuestNet>,
    /// The host's bridge: where traffic from outside and from guests without a known bridge arrives.
    pub host_bridge: String,
    /// The network of the node's own address (`local_network()` in Firewall.pm finds it from
    /// the route that holds the node's IP); cluster.fw's `local_network` alias overrides it.
    pub node_network: Option<IpNet>,
    /// The cluster's corosync links (`/etc/pve/corosync.conf`); none on a node outside a cluster.
    pub corosync: Option<super::corosync::Corosync>,
    /// Unix time the verdicts are for: a cluster.fw `enable: <time stamp>` is judged against it.
    pub now: Option<i64>,
    /// What was judged: "rendered from the configuration" or the deployed folder.
    pub origin: String,
    /// The chains built so far (a verdict on thousands of hops meets the same chains again).
    /// Filled by the first evaluation: set the fields above before judging anything.
    pub chains: ChainCache,
}

/// Which chain: the guest (none for the host), its NIC, direction and IP version.
pub type ChainKey = (Option<GuestId>, String, Dir, u8);

/// Built chains by key; a clone starts empty, as the clone's fields may change.
#[derive(Default)]
pub struct ChainCache(Mutex<HashMap<ChainKey, Arc<Chain>>>);

impl Clone for ChainCache {
    fn clone(&self) -> Self {
        ChainCache::default()
    }
}

impl std::fmt::Debug for ChainCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChainCache")
    }
}

impl ChainCache {
    /// The chain for `key`, built by `build` the first time.
    pub fn get(&self, key: ChainKey, build: impl FnOnce() -> Chain) -> Arc<Chain> {
        let mut chains = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        chains.entry(key).or_insert_with(|| Arc::new(build())).clone()
    }
}

impl FirewallState {
    /// From texts keyed by their path under /etc/pve (as rendered, or as copied from a node).
    pub fn from_texts(
        texts: &BTreeMap<String, String>,
        node: &str,
        nets: BTreeMap<GuestId, GuestNet>,
        host_bridge: &str,
        origin: &str,
    ) -> FirewallState {
        let text = |path: &str| texts.get(path).map(String::as_str);
        let cluster_path = phoenix_model::paths::CLUSTER_FW;
        let cluster = FwSource::parse(cluster_path, text(cluster_path), FwKind::Cluster, None);
        let host_path = phoenix_model::paths::host_fw(node);
        let host = FwSource::parse(&host_path, text(&host_path), FwKind::Host, Some(&cluster.conf));
        let hosts = texts
            .iter()
            .filter_map(|(path, text)| {
                let name = path.strip_prefix("/etc/pve/nodes/")?.strip_suffix("/host.fw")?;
                Some((name.to_string(), FwSource::parse(path, Some(text), FwKind::Host, Some(&cluster.conf))))
            })
            .collect();
        let guests = nets
            .iter()
            .map(|(id, net)| {
                let env = match net.kind {
                    GuestKind::Lxc => RuleEnv::Ct,
                    GuestKind::Vm => RuleEnv::Vm,
                };
                let path = phoenix_model::paths::guest_fw(*id);
                (*id, FwSource::parse(&path, text(&path), FwKind::Guest(env), Some(&cluster.conf)))
            })
            .collect();
        FirewallState {
            cluster,
            host,
            hosts,
            corosync_text: text(phoenix_model::paths::COROSYNC_CONF).map(str::to_string),
            peers: BTreeMap::new(),
            peer: None,
            guests,
            nets,
            host_bridge: host_bridge.to_string(),
            node_network: None,
            corosync: text(phoenix_model::paths::COROSYNC_CONF).and_then(|t| super::corosync::Corosync::parse(t, node)),
            now: None,
            origin: origin.to_string(),
            chains: ChainCache::default(),
        }
    }

    /// The node's network and the clock, from the model and the caller; in a cluster, the
    /// corosync links (from corosync.conf, or as `pvecm` sets a cluster up when none was read:
    /// one knet link on each node's management address) and each other node's own state.
    pub fn with_node(mut self, model: &Model, now: Option<i64>) -> FirewallState {
        self.node_network = model.host.address.as_ref().map(|a| IpNet::V4(a.value.trunc()));
        self.now = now;
        let names = model.host.node_names();
        if let Some(first) = names.first().filter(|_| model.host.is_cluster()) {
            self.corosync = self.corosync_at(model, first);
            for (index, name) in names.iter().enumerate().skip(1) {
                self.peers.insert(index as u8, Arc::new(self.at_node(model, name)));
            }
        }
        self
    }

    /// The corosync links of node `name`: corosync.conf's, or one link per peer between the
    /// nodes' management addresses.
    fn corosync_at(&self, model: &Model, name: &str) -> Option<super::corosync::Corosync> {
        if let Some(text) = &self.corosync_text {
            return super::corosync::Corosync::parse(text, name);
        }
        let address = |n: &phoenix_model::model::ClusterNode| n.address.as_ref().map(|a| IpAddr::V4(a.value));
        let own = address(model.host.node(name)?)?;
        let links = model.host.nodes.iter().filter(|n| n.name != name).filter_map(address).map(|peer| (own, peer)).collect();
        Some(super::corosync::Corosync { multicast: false, links })
    }

    /// The firewall as node `name` applies it: its own host.fw and corosync links.
    fn at_node(&self, model: &Model, name: &str) -> FirewallState {
        let path = phoenix_model::paths::host_fw(name);
        let host = self.hosts.get(name).cloned().unwrap_or(FwSource { path, ..FwSource::default() });
        let corosync = self.corosync_at(model, name);
        FirewallState { host, corosync, peers: BTreeMap::new(), peer: Some(name.to_string()), chains: ChainCache::default(), ..self.clone() }
    }

    /// The node this state is another node's view for (none: the first node's own).
    pub fn peer_name(&self) -> Option<&str> {
        self.peer.as_deref()
    }

    /// The state host traffic of `endpoint`'s node is judged in (this one but for another node).
    pub fn for_endpoint(&self, endpoint: super::Endpoint) -> &FirewallState {
        match endpoint {
            super::Endpoint::Node(index) => self.peers.get(&index).map_or(self, |p| p.as_ref()),
            _ => self,
        }
    }

    /// What is deployed, from a copy of /etc/pve keyed by path relative to it
    /// (`firewall/cluster.fw`, `nodes/<node>/host.fw`, `nodes/<node>/lxc/<id>.conf`, ...).
    pub fn from_pve_tree(tree: &BTreeMap<String, String>, model: &Model, origin: &str) -> FirewallState {
        let texts: BTreeMap<String, String> =
            tree.iter().map(|(k, v)| (format!("/etc/pve/{}", k.trim_start_matches('/')), v.clone())).collect();
        let node = &model.host.node_name;
        let nets = model
            .guests
            .values()
            .map(|g| {
                let folder = match g.kind {
                    GuestKind::Lxc => "lxc",
                    GuestKind::Vm => "qemu-server",
                };
                // The guest's config is in the folder of the node holding it (its declared
                // one, else any node's: HA or a hand may have moved it).
                let file = format!("/{folder}/{}.conf", g.id);
                let conf = tree
                    .get(&format!("nodes/{}{file}", g.node.value))
                    .or_else(|| tree.iter().find(|(path, _)| path.starts_with("nodes/") && path.ends_with(&file)).map(|(_, t)| t))
                    .map(String::as_str)
                    .unwrap_or_default();
                (g.id, GuestNet::from_conf(g.kind, conf))
            })
            .collect();
        FirewallState::from_texts(&texts, node, nets, &host_bridge(model), origin).with_node(model, None)
    }

    /// The firewall phoenix would deploy: its rendered files and NIC settings.
    pub fn from_rendered(rendered: &Rendered, model: &Model) -> FirewallState {
        let texts: BTreeMap<String, String> =
            rendered.files.iter().filter(|f| f.path.starts_with("/etc/pve/")).map(|f| (f.path.clone(), f.content.clone())).collect();
        // Each guest's settings as the lines of its `.conf`, gathered in one pass.
        let mut confs: BTreeMap<GuestId, String> = BTreeMap::new();
        for setting in &rendered.settings {
            let conf = confs.entry(setting.guest).or_default();
            conf.push_str(&format!("{}: {}\n", setting.key, setting.value));
        }
        let nets = model
            .guests
            .values()
            .map(|g| (g.id, GuestNet::from_conf(g.kind, confs.get(&g.id).map(String::as_str).unwrap_or_default())))
            .collect();
        FirewallState::from_texts(
            &texts,
            &model.host.node_name,
            nets,
            &host_bridge(model),
            "the files phoenix renders from the configuration",
        )
        .with_node(model, None)
    }

    /// Every line and rule pve-firewall would not apply, file by file.
    pub fn skipped(&self) -> Vec<Skipped> {
        let mut out = Vec::new();
        for source in [&self.cluster, &self.host].into_iter().chain(self.guests.values()) {
            out.extend(source.skipped());
        }
        out
    }
}

impl FwSource {
    /// The lines pve-firewall's parser dropped and the rules `verify_rule` found errors in.
    pub fn skipped(&self) -> Vec<Skipped> {
        let skipped = |line: usize, reason: String| Skipped { path: self.path.clone(), line, reason };
        let mut out: Vec<Skipped> = self.lines.warnings.iter().map(|(line, message)| skipped(*line, message.clone())).collect();
        let groups = self.conf.groups.iter().map(|(name, rules)| (rules, self.lines.groups.get(name)));
        for (rules, lines) in std::iter::once((&self.conf.rules, Some(&self.lines.rules))).chain(groups) {
            for (index, rule) in rules.iter().enumerate().filter(|(_, r)| !r.errors.is_empty()) {
                let line = lines.and_then(|l| l.get(index)).copied().unwrap_or_default();
                out.push(skipped(line, rule_errors(rule)));
            }
        }
        out.sort_by_key(|s| s.line);
        out
    }
}

/// `verify_rule`'s errors of a rule, as one sentence.
pub fn rule_errors(rule: &crate::pve_fw::rule::Rule) -> String {
    rule.errors.iter().map(|(key, message)| format!("{key}: {message}")).collect::<Vec<_>>().join("; ")
}

fn host_bridge(model: &Model) -> String {
    model.host.bridge.clone().unwrap_or_else(|| "vmbr0".into())
}
