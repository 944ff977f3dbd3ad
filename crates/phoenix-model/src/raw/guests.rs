//! phoenix_lxc_configs.json and phoenix_vm_configs.json: the guests.

use super::common::*;
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;

/// Role of a guest in Portainer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RawPortainerRole {
    None,
    Infrastructure,
    Primary,
    // The early revisions' name of `primary` (a container running the Portainer server); a
    // plain comment, since a doc comment would make the schema a oneOf instead of an enum.
    Server,
    Agent,
}

/// phoenix_lxc_configs.json.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields, title = "phoenix_lxc_configs.json")]
pub struct RawLxcFile {
    #[serde(rename = "$schema")]
    pub schema: Option<String>,
    pub nvidia_driver_version: Option<String>,
    pub nvidia_repo_url: Option<String>,
    pub nvidia_runfile_url: Option<String>,
    /// Containers by CTID.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, RawLxc>")]
    pub lxc_configs: BTreeMap<String, serde_json::Value>,
}

/// Fields LXC containers and VMs share.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct RawGuestCommon {
    pub name: Option<String>,
    pub start_at_boot: Option<bool>,
    pub boot_order: Option<u32>,
    pub boot_delay: Option<u32>,
    pub memory_mb: Option<u64>,
    pub cores: Option<u32>,
    pub storage_pool: Option<String>,
    pub mac_address: Option<String>,
    pub portainer_role: Option<RawPortainerRole>,
    /// Features installed in order by bin/lxc_setup/phoenix_hypervisor_feature_install_<name>.sh.
    #[serde(default)]
    pub features: Vec<String>,
    /// Guest ids that must exist (and run) before this one.
    #[serde(default)]
    pub dependencies: Vec<StrOrNum>,
    /// Script run after the features (bin/lxc_setup/ or bin/vm_setup/).
    pub application_script: Option<String>,
    pub firewall: Option<RawGuestFirewall>,
    pub traefik_service: Option<RawTraefikService>,
    pub template_snapshot_name: Option<String>,
    pub enable_lifecycle_snapshots: Option<bool>,
    pub trigger_sync_on_completion: Option<bool>,
    /// Stacks deployed to this guest through Portainer.
    #[serde(default)]
    #[schemars(with = "Vec<RawStackRef>")]
    pub docker_stacks: Vec<Option<RawStackRef>>,
    /// phoenix extension: DNS names this guest itself answers on (besides its services).
    #[serde(default)]
    pub hostnames: Vec<String>,
    /// phoenix extension: the cluster node the guest runs on (`proxmox.node_name` or one of
    /// `proxmox.nodes`). Default: `proxmox.node_name`.
    pub node: Option<String>,
    pub health_check: Option<serde_json::Value>,
    pub tests: Option<serde_json::Value>,
}

/// One LXC container: the shared fields and the container's own. The loader decodes the two
/// halves separately (serde's `flatten` would buffer every guest); the schema joins them.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawLxc {
    #[serde(flatten)]
    pub common: RawGuestCommon,
    #[serde(flatten)]
    pub fields: RawLxcFields,
}

/// Fields only LXC containers have.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct RawLxcFields {
    pub swap_mb: Option<u64>,
    /// OS template (for containers created from scratch).
    pub template: Option<String>,
    pub storage_size_gb: Option<u64>,
    pub network_config: Option<RawLxcNetwork>,
    /// The container's second NIC (`net1`), as the original's lxc-manager gave dual-homed
    /// containers from late November 2025 (the gateway on a public VLAN and the internal bridge).
    pub secondary_network_config: Option<RawLxcNetwork>,
    pub gpu_assignment: Option<String>,
    pub unprivileged: Option<bool>,
    /// CTID of the template container this one is cloned from.
    pub clone_from_ctid: Option<StrOrNum>,
    #[serde(default)]
    pub lxc_options: Vec<String>,
    #[serde(default)]
    pub pct_options: Vec<String>,
    pub apparmor_profile: Option<String>,
    pub apparmor_manages_nesting: Option<bool>,
    pub vllm_engine_config: Option<serde_json::Value>,
    /// host:container port mappings (informational).
    #[serde(default)]
    pub ports: Vec<String>,
    #[serde(default)]
    pub zfs_volumes: Vec<serde_json::Value>,
    #[serde(default)]
    pub mount_points: Vec<serde_json::Value>,
    /// phoenix extension: true marks the container as a template.
    pub is_template: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawLxcNetwork {
    /// Interface name in the container, e.g. eth0.
    pub name: Option<String>,
    pub bridge: Option<String>,
    /// Address with prefix (10.0.0.12/24) or `dhcp`.
    pub ip: Option<String>,
    pub gw: Option<String>,
    pub nameservers: Option<StrOrList>,
    /// The NIC's MAC address (Proxmox's `hwaddr`); the guest's `mac_address` is its first NIC's.
    pub hwaddr: Option<String>,
    /// phoenix extension: the NIC's `firewall=1` flag. Without it Proxmox filters nothing for this NIC.
    /// Absent means "not stated": phoenix sets it when it renders the guest, and `assess` asks what is deployed.
    pub firewall: Option<bool>,
}

/// phoenix_vm_configs.json.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields, title = "phoenix_vm_configs.json")]
pub struct RawVmFile {
    #[serde(rename = "$schema")]
    pub schema: Option<String>,
    pub vm_defaults: Option<RawVmDefaults>,
    #[serde(default)]
    #[schemars(with = "Vec<RawVm>")]
    pub vms: Vec<serde_json::Value>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawVmDefaults {
    pub template: Option<String>,
    pub cores: Option<u32>,
    pub memory_mb: Option<u64>,
    pub disk_size_gb: Option<u64>,
    pub storage_pool: Option<String>,
    pub network_bridge: Option<String>,
}

/// One VM: the shared fields and the VM's own (decoded separately, like [`RawLxc`]).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawVm {
    #[serde(flatten)]
    pub common: RawGuestCommon,
    #[serde(flatten)]
    pub fields: RawVmFields,
}

/// Fields only VMs have.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct RawVmFields {
    pub vmid: Option<StrOrNum>,
    pub clone_from_vmid: Option<StrOrNum>,
    pub is_template: Option<bool>,
    pub template_image: Option<String>,
    pub disk_size_gb: Option<u64>,
    pub network_bridge: Option<String>,
    pub network_config: Option<RawVmNetwork>,
    pub user_config: Option<serde_json::Value>,
    #[serde(default)]
    pub volumes: Vec<serde_json::Value>,
    pub portainer_environment_name: Option<String>,
    /// Name Portainer uses to reach this agent (port 9001).
    pub portainer_agent_hostname: Option<String>,
    #[serde(default)]
    pub dns_records: Vec<serde_json::Value>,
    /// Snapshots at points of the VM's setup.
    pub snapshots: Option<RawVmSnapshots>,
}

/// A VM's `snapshots`: a snapshot name per point of its setup.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawVmSnapshots {
    #[serde(rename = "pre-features")]
    pub pre_features: Option<String>,
    #[serde(rename = "post-features")]
    pub post_features: Option<String>,
    /// The early revisions' spelling of `pre-features`.
    #[serde(rename = "pre_features")]
    pub pre_features_early: Option<String>,
    /// The early revisions' spelling of `post-features`.
    #[serde(rename = "post_features")]
    pub post_features_early: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawVmNetwork {
    /// Address with prefix, or `dhcp`.
    pub ip: Option<String>,
    pub gw: Option<String>,
    pub nameserver: Option<StrOrList>,
    /// phoenix extension: the NIC's `firewall=1` flag (see the LXC network_config).
    pub firewall: Option<bool>,
}

/// A stack a guest runs: from November 2025 just its name (the original's vm-manager then
/// deployed its `production` environment), before that an object.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RawStackRef {
    Name(String),
    Assignment(RawStackAssignment),
}

/// A stack deployed to a guest.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawStackAssignment {
    pub name: Option<String>,
    pub environment: Option<String>,
}
