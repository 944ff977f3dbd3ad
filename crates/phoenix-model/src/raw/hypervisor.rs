//! phoenix_hypervisor_config.json: the host, its network, DNS, firewall, Step-CA and Portainer settings.

use super::common::*;
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;

/// phoenix_hypervisor_config.json.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields, title = "phoenix_hypervisor_config.json")]
pub struct RawHypervisorConfig {
    #[serde(rename = "$schema")]
    pub schema: Option<String>,
    pub version: Option<String>,
    pub author: Option<String>,
    /// Base domain; the external DNS view and the default Traefik host names use it.
    pub domain_name: Option<String>,
    pub timezone: Option<String>,
    pub network: Option<RawNetwork>,
    /// Host-level firewall: cluster options and rules (the reference nests it under `shared_volumes`).
    pub firewall: Option<RawFirewall>,
    pub dns_server: Option<RawDnsServer>,
    pub step_ca: Option<RawStepCa>,
    pub portainer_api: Option<RawPortainerApi>,
    /// phoenix extension: systems outside phoenix that own addresses rules and records may name
    /// (routers, upstream resolvers, clients).
    #[serde(default)]
    #[schemars(with = "Vec<RawExternalSystem>")]
    pub external_systems: Vec<Option<RawExternalSystem>>,
    /// phoenix extension: more flows for `phoenix assess` to prove, beyond those it derives.
    #[serde(default)]
    #[schemars(with = "Vec<RawFlow>")]
    pub flows: Vec<Option<RawFlow>>,
    /// phoenix extension: which guests play the edge roles. Default: discovered (see each field).
    pub edge: Option<RawEdge>,
    /// phoenix extension: where phoenix gets the software Debian does not package (Traefik), by
    /// name: a URL and the SHA-256 the download must have.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, RawSoftwareSource>")]
    pub software: BTreeMap<String, serde_json::Value>,
    /// phoenix extension: the Proxmox VE node phoenix manages.
    pub proxmox: Option<RawProxmox>,
    /// Shared host folders bind-mounted into guests, by name.
    #[schemars(with = "Option<BTreeMap<String, RawSharedVolume>>")]
    pub shared_volumes: Option<BTreeMap<String, serde_json::Value>>,
    // Sections phoenix reads but does not act on yet; kept typed loosely so they are known keys.
    pub users: Option<serde_json::Value>,
    pub core_paths: Option<serde_json::Value>,
    pub docker: Option<serde_json::Value>,
    pub nfs: Option<RawNfs>,
    pub samba: Option<serde_json::Value>,
    pub zfs: Option<serde_json::Value>,
    pub proxmox_storage_ids: Option<serde_json::Value>,
    pub mount_point_base: Option<String>,
    pub proxmox_defaults: Option<serde_json::Value>,
    pub tests: Option<serde_json::Value>,
    pub nvidia_driver: Option<serde_json::Value>,
    pub behavior: Option<serde_json::Value>,
    pub vm_defaults: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawNetwork {
    pub external_registry_url: Option<String>,
    pub portainer_server_ip: Option<String>,
    pub portainer_server_port: Option<StrOrNum>,
    pub portainer_agent_port: Option<StrOrNum>,
    /// The host's bridge interface: its address is the Proxmox host's address.
    pub interfaces: Option<RawInterface>,
    /// The guests' subnet (CIDR).
    pub default_subnet: Option<String>,
    pub nfs_server: Option<String>,
    pub fallback_dns: Option<String>,
    /// The bridge public-facing guests attach to (from late November 2025).
    pub public_bridge: Option<String>,
    /// VLAN of the legacy macvlan portal, `vmbr0.<tag>` (the original's default 10).
    pub macvlan_vlan_tag: Option<StrOrNum>,
    /// VLAN of the public portal, `vmbr0.<tag>` (the original's default 20).
    pub public_vlan_tag: Option<StrOrNum>,
    /// An isolated bridge for internal services; the node takes `.1` of its subnet.
    pub internal_bridge: Option<RawInternalBridge>,
}

/// `network.internal_bridge`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawInternalBridge {
    /// Bridge name, e.g. vmbr100.
    pub name: Option<String>,
    /// Its subnet (CIDR), e.g. 172.16.100.0/24.
    pub subnet: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawInterface {
    /// Bridge name, e.g. vmbr0.
    pub name: Option<String>,
    /// Host address with prefix, e.g. 10.0.0.13/24.
    pub address: Option<String>,
    /// The router (an external system).
    pub gateway: Option<String>,
    pub dns_nameservers: Option<StrOrList>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawFirewall {
    /// Cluster firewall `enable` (Proxmox default 0).
    pub enabled: Option<bool>,
    #[serde(default)]
    #[schemars(schema_with = "policy_schema")]
    pub default_input_policy: Option<String>,
    #[serde(default)]
    #[schemars(schema_with = "policy_schema")]
    pub default_output_policy: Option<String>,
    /// Rules rendered into cluster.fw. They filter traffic to and from the host only.
    #[serde(default)]
    #[schemars(with = "Vec<RawRule>")]
    pub global_firewall_rules: Vec<Option<RawRule>>,
    /// phoenix extension: rules rendered into the node's host.fw (evaluated before cluster rules).
    #[serde(default)]
    #[schemars(with = "Vec<RawRule>")]
    pub host_rules: Vec<Option<RawRule>>,
    /// phoenix extension: datacenter aliases (`dc/<name>`), name to IP or CIDR.
    #[serde(default)]
    pub aliases: BTreeMap<String, String>,
    /// phoenix extension: datacenter ipsets (`+dc/<name>`), name to entries.
    #[serde(default)]
    pub ipsets: BTreeMap<String, Vec<String>>,
    /// phoenix extension: security groups, name to rules; guests include them with a `group` rule.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, Vec<RawRule>>")]
    pub security_groups: BTreeMap<String, Vec<Option<RawRule>>>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawSharedVolume {
    pub host_path: Option<String>,
    /// Guest id to mount path.
    #[serde(default)]
    pub mounts: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawNfs {
    #[serde(default)]
    #[schemars(with = "Vec<RawNfsExport>")]
    pub exports: Vec<Option<RawNfsExport>>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawNfsExport {
    pub path: Option<String>,
    /// Client addresses allowed to mount.
    #[serde(default)]
    pub clients: Vec<String>,
    #[serde(default)]
    pub options: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawDnsServer {
    pub enabled: Option<bool>,
    /// Resolvers dnsmasq forwards other names to.
    #[serde(default)]
    pub upstream_servers: Vec<String>,
    #[serde(default)]
    #[schemars(with = "Vec<RawZone>")]
    pub authoritative_zones: Vec<Option<RawZone>>,
    /// phoenix extension: addresses dnsmasq listens on. Default: the host address.
    pub listen_addresses: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawZone {
    pub zone_name: Option<String>,
    #[serde(default)]
    #[schemars(with = "Vec<RawRecord>")]
    pub records: Vec<Option<RawRecord>>,
}

/// One A record. `ip_external` belongs to the external view, `ip_internal` to the internal one.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawRecord {
    /// Label(s) relative to the zone.
    pub hostname: Option<String>,
    pub ip_external: Option<String>,
    pub ip_internal: Option<String>,
    /// phoenix extension: an address for both views.
    pub ip: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawStepCa {
    pub root_ca_name: Option<String>,
    pub intermediate_ca_name: Option<String>,
    /// The CA's DNS name (served by the Step-CA guest).
    pub dns_name: Option<String>,
    pub provisioner_name: Option<String>,
    /// phoenix extension: port of the CA's HTTPS/ACME endpoint. Default 9000.
    pub port: Option<StrOrNum>,
    /// phoenix extension: name of the ACME provisioner. Default `acme`.
    pub acme_provisioner: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawPortainerApi {
    pub admin_user: Option<String>,
    pub admin_password: Option<SecretValue>,
    pub portainer_hostname: Option<String>,
    /// phoenix extension: the API key phoenix uses (X-API-Key).
    pub api_key: Option<SecretValue>,
    /// phoenix extension: AGENT_SECRET shared by server and agents, so a rebuilt server can reach its agents.
    pub agent_secret: Option<SecretValue>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawExternalSystem {
    pub name: Option<String>,
    /// Addresses (IP or CIDR) the system owns.
    #[serde(default)]
    pub addresses: Vec<String>,
    pub description: Option<String>,
}

/// Guests playing the edge roles. Defaults: the gateway is the guest whose name contains
/// "nginx"; Traefik is the guest with feature `traefik`; Step-CA the guest with feature `step_ca`;
/// DNS is served by the host.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawEdge {
    pub gateway_guest: Option<StrOrNum>,
    pub traefik_guest: Option<StrOrNum>,
    pub step_ca_guest: Option<StrOrNum>,
    /// Guest id serving DNS; absent means the Proxmox host.
    pub dns_guest: Option<StrOrNum>,
}

/// One program's source: its `url` (https, http or file) and the `sha256` it must have.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawSoftwareSource {
    pub url: String,
    /// The SHA-256 of the file, 64 hex digits.
    pub sha256: String,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawProxmox {
    /// Node name (directory under /etc/pve/nodes). Default `pve`.
    pub node_name: Option<String>,
    /// API base URL, e.g. https://10.0.0.13:8006.
    pub api_url: Option<String>,
    /// API token id, `user@realm!tokenid`.
    pub token_id: Option<String>,
    pub token_secret: Option<SecretValue>,
    /// phoenix extension: the cluster's nodes besides `node_name` (which is always the first).
    /// Absent: a single node. Guests name theirs with `node`.
    #[serde(default)]
    pub nodes: Vec<RawClusterNode>,
}

/// phoenix extension: one node of the Proxmox VE cluster.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawClusterNode {
    /// The node's name (directory under /etc/pve/nodes), as `hostname` prints it there.
    pub name: String,
    /// The node's management address on the host bridge (corosync's ring0 address), e.g. 10.0.0.14.
    pub address: Option<String>,
    /// The node's own API, e.g. https://10.0.0.14:8006. Absent: the cluster's `api_url`, which
    /// proxies every `/nodes/{node}` call to that node.
    pub api_url: Option<String>,
}

/// A flow the user wants proved: one connection from `from` to `to`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawFlow {
    pub title: Option<String>,
    /// `host` (the first node), a node's name, a guest id, or an IP address.
    pub from: Option<StrOrNum>,
    /// `host` (the first node), a node's name, a guest id, or an IP address.
    pub to: Option<StrOrNum>,
    pub port: Option<StrOrNum>,
    /// tcp (default) or udp.
    #[serde(default)]
    #[schemars(schema_with = "proto_schema")]
    pub proto: Option<String>,
    /// The DNS name the client uses, checked against the records.
    pub name: Option<String>,
}

fn proto_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "type": "string", "enum": ["tcp", "udp"] })
}
