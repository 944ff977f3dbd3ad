//! The typed, normalised model of one phoenix configuration: one id namespace for LXC and
//! VM guests, the host and its network, firewall rules by scope, DNS, stacks, certificates,
//! Traefik services, and the secrets found along the way. Every node keeps its source span.
//! Must not do I/O or report problems: the builder in `load` produces diagnostics.

pub mod compose;
pub mod edge;
pub mod firewall;
pub mod spec;

use crate::source::Span;
pub use firewall::*;
use ipnet::Ipv4Net;
pub use spec::{CloudInit, GuestSpec, LifecycleSnapshot, Mount, MountSource, Origin, SetupPoint, Storage};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

/// A value and where it was written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Located<T> {
    pub value: T,
    pub span: Span,
}

impl<T> Located<T> {
    pub fn new(value: T, span: Span) -> Self {
        Located { value, span }
    }
}

/// Proxmox VMID, shared by containers and VMs.
pub type GuestId = u32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GuestKind {
    Lxc,
    Vm,
}

impl GuestKind {
    pub fn label(self) -> &'static str {
        match self {
            GuestKind::Lxc => "LXC",
            GuestKind::Vm => "VM",
        }
    }

    /// The word the certificate manifest uses (`guest_type`).
    pub fn type_name(self) -> &'static str {
        match self {
            GuestKind::Lxc => "lxc",
            GuestKind::Vm => "vm",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PortainerRole {
    #[default]
    None,
    Infrastructure,
    Primary,
    Agent,
}

/// A guest's network interface.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Nic {
    /// Its number in Proxmox VE (`net0`, `net1`, ...; `ipconfigN` for a VM's address).
    pub index: u32,
    /// Its name inside a container (`eth0`); VMs name their NICs themselves.
    pub name: Option<String>,
    /// Static address with prefix; `None` for DHCP or when absent/malformed.
    pub address: Option<Located<Ipv4Net>>,
    pub dhcp: bool,
    pub gateway: Option<Located<Ipv4Addr>>,
    pub bridge: Option<String>,
    pub mac: Option<Located<String>>,
    pub nameservers: Vec<Located<IpAddr>>,
    /// The NIC's `firewall=1` flag when the configuration states it.
    pub firewall: Option<bool>,
    pub span: Option<Span>,
}

impl Nic {
    /// The Proxmox VE key of this NIC (`net0`).
    pub fn key(&self) -> String {
        format!("net{}", self.index)
    }

    /// The VLAN this NIC is on, when its bridge is a VLAN interface (`vmbr0.20`).
    pub fn vlan(&self) -> Option<u16> {
        self.bridge.as_deref().and_then(crate::model::vlan_of_bridge)
    }
}

/// The VLAN of a bridge named as a VLAN interface of another (`vmbr0.20` is VLAN 20 of vmbr0).
pub fn vlan_of_bridge(bridge: &str) -> Option<u16> {
    let (_, tag) = bridge.rsplit_once('.')?;
    tag.parse::<u16>().ok().filter(|t| (1..=4094).contains(t))
}

/// A guest without any NIC declared (what [`Guest::nic`] answers then).
static NO_NIC: Nic = Nic {
    index: 0,
    name: None,
    address: None,
    dhcp: false,
    gateway: None,
    bridge: None,
    mac: None,
    nameservers: Vec::new(),
    firewall: None,
    span: None,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackAssignment {
    pub name: Located<String>,
    pub environment: Located<String>,
}

/// The environment of a stack named without one.
pub const DEFAULT_STACK_ENVIRONMENT: &str = "production";

/// A backend Traefik routes to a guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraefikService {
    pub name: Located<String>,
    pub port: Option<Located<u16>>,
    pub scheme: Scheme,
    pub hostnames: Vec<String>,
    pub server_name: Option<String>,
    pub client_certificate: Option<Located<String>>,
    pub requires_client_certificate: bool,
    pub gateway_tls: GatewayTls,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    /// The scheme the original assumed for a port: TLS ports are https.
    pub fn default_for_port(port: u16) -> Scheme {
        if matches!(port, 443 | 8443 | 9443) {
            Scheme::Https
        } else {
            Scheme::Http
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GatewayTls {
    #[default]
    Terminate,
    Passthrough,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Boot {
    pub start_at_boot: bool,
    pub order: Option<u32>,
    pub delay: Option<u32>,
}

/// One guest, LXC or VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guest {
    pub id: GuestId,
    pub kind: GuestKind,
    pub name: String,
    /// The guest's object in its file.
    pub span: Span,
    /// The id as written (key of lxc_configs, or vmid).
    pub id_span: Span,
    /// Its NICs in `netN` order; the first is the one its name and routes use.
    pub nics: Vec<Nic>,
    /// The cluster node it is declared on (`node`; default the first node).
    pub node: Located<String>,
    pub is_template: bool,
    pub template_snapshot: Option<String>,
    pub clone_from: Option<Located<GuestId>>,
    pub dependencies: Vec<Located<GuestId>>,
    pub features: Vec<Located<String>>,
    pub application_script: Option<Located<String>>,
    /// `health_check`: a command run in the guest after provisioning and by `phoenix status`.
    pub health_check: Option<HealthCheck>,
    /// A VM's NFS `volumes`, mounted inside it.
    pub nfs_volumes: Vec<NfsVolume>,
    pub firewall: GuestFirewall,
    pub traefik_service: Option<TraefikService>,
    pub stacks: Vec<StackAssignment>,
    pub portainer_role: PortainerRole,
    pub agent_hostname: Option<Located<String>>,
    pub hostnames: Vec<Located<String>>,
    pub boot: Boot,
    /// What it is made of in Proxmox VE (origin, resources, options).
    pub spec: GuestSpec,
}

impl Guest {
    /// Its first static address (first NIC first): where its services are reached. A gateway
    /// whose public NIC takes DHCP is reached on its internal one.
    pub fn address(&self) -> Option<Ipv4Addr> {
        self.addresses().next()
    }

    /// Its first NIC (an empty one when none is declared).
    pub fn nic(&self) -> &Nic {
        self.nics.first().unwrap_or(&NO_NIC)
    }

    /// Every static address of every NIC, first NIC first.
    pub fn addresses(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        self.nics.iter().filter_map(|n| n.address.as_ref().map(|a| a.value.addr()))
    }

    pub fn label(&self) -> String {
        format!("{} {} ({})", self.kind.label(), self.id, self.name)
    }

    pub fn has_feature(&self, feature: &str) -> bool {
        self.features.iter().any(|f| f.value == feature)
    }
}

/// A VM's `volumes` entry of type `nfs`: the export `server:path` mounted at `mount_point`
/// inside the guest (a systemd mount unit phoenix provisions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NfsVolume {
    pub name: String,
    pub server: Located<String>,
    pub path: Located<String>,
    pub mount_point: Located<String>,
}

/// A guest's `health_check`: `command` run by `sh -c` in the guest until it succeeds, at most
/// `retries` times, `interval` seconds apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    pub command: Located<String>,
    pub retries: u32,
    pub interval_secs: u32,
}

impl HealthCheck {
    /// phoenix's choice when a key is absent (the reference always writes both).
    pub const DEFAULT_RETRIES: u32 = 3;
    pub const DEFAULT_INTERVAL_SECS: u32 = 5;
}

/// Where a program comes from: a URL and the SHA-256 its content must have (lower-case hex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoftwareSource {
    pub url: Located<String>,
    pub sha256: String,
}

/// The Proxmox host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Host {
    /// The first node (`proxmox.node_name`): where the host's own services run (DNS, the
    /// certificate store) and where `host` in flows and rules is.
    pub node_name: String,
    /// Every node of the cluster, `node_name` first (one entry for a single node).
    pub nodes: Vec<ClusterNode>,
    /// `proxmox.api_url`: the node's API (`--pve-url` and PHOENIX_PVE_URL override it).
    pub api_url: Option<String>,
    /// `proxmox.token_id` (`user@realm!tokenid`); with `proxmox.token_secret` the token
    /// (PHOENIX_PVE_TOKEN and `--pve-token` override both).
    pub token_id: Option<String>,
    pub address: Option<Located<Ipv4Net>>,
    pub bridge: Option<String>,
    pub gateway: Option<Located<Ipv4Addr>>,
    pub nameservers: Vec<Located<IpAddr>>,
    /// network.default_subnet.
    pub subnet: Option<Located<Ipv4Net>>,
    /// The node's other bridges (`network.public_bridge`, `network.internal_bridge`).
    pub bridges: Vec<Bridge>,
    /// The node's storages (from `zfs.datasets`), by id.
    pub storages: Vec<Storage>,
    /// `vm_defaults.ubuntu_release` of the hypervisor file: where cloud images are downloaded
    /// from (`https://cloud-images.ubuntu.com/<release>/current/<template_image>`).
    pub ubuntu_release: Option<String>,
    /// `timezone` of the hypervisor file (an IANA name such as `America/New_York`): what
    /// `base_setup` sets in every guest. Checked to be a zoneinfo path that stays there.
    pub timezone: Option<Located<String>>,
}

/// One node of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterNode {
    pub name: String,
    /// Its management address (the first node's is `Host::address`).
    pub address: Option<Located<Ipv4Addr>>,
    /// Its own API, when it is not reached through the cluster's.
    pub api_url: Option<String>,
    pub span: Span,
}

impl Host {
    /// The node named `name`, if the cluster has it.
    pub fn node(&self, name: &str) -> Option<&ClusterNode> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The nodes' names, the first node first (its name alone in a model built by hand).
    pub fn node_names(&self) -> Vec<&str> {
        match self.nodes.is_empty() {
            true => vec![self.node_name.as_str()],
            false => self.nodes.iter().map(|n| n.name.as_str()).collect(),
        }
    }

    /// Whether the configuration describes more than one node.
    pub fn is_cluster(&self) -> bool {
        self.nodes.len() > 1
    }

    /// The subnet of the guests on `bridge` (the host's own bridge when none is named).
    pub fn subnet_of(&self, bridge: Option<&str>) -> Option<&Located<Ipv4Net>> {
        match bridge {
            None => self.subnet.as_ref(),
            Some(name) if self.bridge.as_deref() == Some(name) => self.subnet.as_ref(),
            Some(name) => self.bridges.iter().find(|b| b.name == name).and_then(|b| b.subnet.as_ref()),
        }
    }

    /// Whether `ip` is one of the node's own addresses, on any bridge.
    pub fn owns(&self, ip: IpAddr) -> bool {
        let own = |net: &Option<Located<Ipv4Net>>| net.as_ref().is_some_and(|n| IpAddr::V4(n.value.addr()) == ip);
        own(&self.address) || self.bridges.iter().any(|b| own(&b.address))
    }
}

/// What a bridge of the node is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BridgeRole {
    /// Where the public side of the gateway lives (often a VLAN interface such as `vmbr0.20`).
    Public,
    /// An isolated bridge for the services behind the gateway (the original's `vmbr100`).
    Internal,
}

/// A bridge of the node besides its management bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bridge {
    pub name: String,
    pub role: BridgeRole,
    pub subnet: Option<Located<Ipv4Net>>,
    /// The node's own address on it (the guests' gateway and resolver there).
    pub address: Option<Located<Ipv4Net>>,
    /// The VLAN tag, when the configuration gives one.
    pub vlan: Option<u16>,
    pub span: Span,
}

impl Model {
    /// The reference of the secret stored for `what` (e.g. `proxmox.token_secret`).
    pub fn secret_for(&self, what: &str) -> Option<&SecretRef> {
        self.secrets.iter().find(|s| s.what == what).map(|s| &s.reference)
    }
}

impl Host {
    pub fn ip(&self) -> Option<Ipv4Addr> {
        self.address.as_ref().map(|a| a.value.addr())
    }
}

/// Which DNS view a record belongs to (dnsmasq serves both to the lab's clients).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DnsView {
    Internal,
    External,
}

/// One A/AAAA record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsRecord {
    /// Fully qualified, lower case, without trailing dot.
    pub fqdn: String,
    pub zone: String,
    pub view: DnsView,
    pub address: IpAddr,
    pub span: Span,
    pub address_span: Span,
    /// Not declared but derived, as the original's DNS script generated it: from what.
    pub derived: Option<String>,
}

impl DnsRecord {
    /// How a finding names the record's origin: empty for a declared one.
    pub fn origin(&self) -> String {
        self.derived.as_ref().map_or_else(String::new, |from| format!(" (derived, as the original's DNS script did, from {from})"))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dns {
    pub enabled: bool,
    pub upstreams: Vec<Located<IpAddr>>,
    pub zones: Vec<Located<String>>,
    pub records: Vec<DnsRecord>,
    pub listen_addresses: Vec<Located<IpAddr>>,
}

/// A value that may be secret: plain, or a reference resolved when needed.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretRef {
    Env(String),
    File(String),
    /// Written in the configuration; its text is never kept in the model.
    Literal,
    /// A `{"file": ...}` outside the configuration's tree (PHX-PATH-002): never read.
    Refused(String),
}

impl std::fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretRef::Env(name) => write!(f, "env:{name}"),
            SecretRef::File(path) => write!(f, "file:{path}"),
            SecretRef::Literal => f.write_str("<literal secret>"),
            SecretRef::Refused(path) => write!(f, "refused file:{path}"),
        }
    }
}

/// Every place a secret is expected, with what was found there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretSite {
    /// What the secret is for, e.g. "portainer_api.admin_password".
    pub what: String,
    pub reference: SecretRef,
    pub span: Span,
}

/// A stack environment variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VariableValue {
    Plain(String),
    Secret(SecretRef),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    pub name: String,
    pub value: Option<VariableValue>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackFile {
    pub source: Located<String>,
    pub destination: Option<String>,
}

/// Traefik labels of one compose service in one environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceLabels {
    pub service: String,
    pub labels: Vec<Located<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackEnvironment {
    pub name: String,
    pub span: Span,
    pub variables: Vec<Variable>,
    pub files: Vec<StackFile>,
    pub services: Vec<ServiceLabels>,
    /// Rules for the guest the stack runs on (the original's vm-manager applied them to the
    /// VM): built once, their scope set to each guest when applied.
    pub firewall_rules: Vec<Rule>,
}

/// A compose file a stack names.
#[derive(Debug, Clone, PartialEq)]
pub struct ComposeFile {
    /// Path as written in the configuration (relative to the installation root).
    pub relative: Located<String>,
    pub path: PathBuf,
    /// Parsed content, when the file exists and is valid YAML.
    pub content: Option<serde_json::Value>,
    /// The file's text, when it exists (renderers edit it, keeping comments).
    pub text: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Stack {
    pub name: String,
    pub span: Span,
    pub description: Option<String>,
    pub compose: Option<ComposeFile>,
    pub environments: BTreeMap<String, StackEnvironment>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CertUsage {
    Server,
    Client,
    Both,
}

/// How the ACME server checks control of a certificate's names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum AcmeChallenge {
    #[default]
    #[serde(rename = "http-01")]
    Http01,
    #[serde(rename = "tls-alpn-01")]
    TlsAlpn01,
    #[serde(rename = "dns-01")]
    Dns01,
}

impl AcmeChallenge {
    /// The name RFC 8555 and the manifest use.
    pub fn as_str(self) -> &'static str {
        match self {
            AcmeChallenge::Http01 => "http-01",
            AcmeChallenge::TlsAlpn01 => "tls-alpn-01",
            AcmeChallenge::Dns01 => "dns-01",
        }
    }
}

/// A subject alternative name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum San {
    Dns(String),
    Ip(IpAddr),
}

/// One certificate phoenix issues and keeps renewed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    pub name: String,
    pub common_name: Located<String>,
    pub sans: Vec<Located<San>>,
    pub guest: Option<Located<GuestId>>,
    pub guest_kind: Option<GuestKind>,
    pub cert_path: Option<String>,
    pub key_path: Option<String>,
    pub owner: Option<String>,
    /// `permissions` (octal, e.g. `640`): the original gave it to the certificate and the key alike.
    pub permissions: Option<Located<u32>>,
    /// The paths are on the node, in a guest's persistent-data folder (the original's shape),
    /// not inside the guest (phoenix's).
    pub files_on_host: bool,
    /// `guest` was not written but read from where `cert_path` lies, as the original's paths meant.
    pub guest_from_path: bool,
    pub include_ca: bool,
    pub usage: CertUsage,
    pub post_renewal_command: Option<String>,
    pub reload_service: Option<String>,
    pub challenge: AcmeChallenge,
    /// Where the guest's own web server serves `/` on port 80, when phoenix answers http-01 by
    /// writing its tokens there (`http01_webroot`).
    pub http01_webroot: Option<Located<String>>,
    pub span: Span,
}

/// A system outside phoenix that owns addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalSystem {
    pub name: String,
    pub addresses: Vec<ipnet::IpNet>,
    pub span: Option<Span>,
}

/// Guests playing the edge roles, explicit or discovered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EdgeRoles {
    pub gateway: Option<GuestId>,
    pub traefik: Option<GuestId>,
    pub step_ca: Option<GuestId>,
    /// `None`: the Proxmox host serves DNS.
    pub dns: Option<GuestId>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepCa {
    pub dns_name: Option<Located<String>>,
    pub port: u16,
    pub root_ca_name: Option<String>,
    pub intermediate_ca_name: Option<String>,
    /// Name of the ACME provisioner (its directory is /acme/<name>/directory).
    pub acme_provisioner: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortainerApi {
    pub hostname: Option<Located<String>>,
    pub server_ip: Option<Located<Ipv4Addr>>,
    pub server_port: u16,
    pub agent_port: u16,
    /// `portainer_api.admin_user`: the administrator phoenix creates and logs in as.
    pub admin_user: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NfsExport {
    pub path: String,
    pub clients: Vec<Located<IpAddr>>,
    /// exports(5) options as written (`rw`, `no_root_squash`, ...).
    pub options: Vec<Located<String>>,
    pub span: Span,
}

/// A flow the user declared for `phoenix assess`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredFlow {
    pub title: String,
    /// As written: `host`, a guest id or an IP address.
    pub from: String,
    pub to: String,
    pub port: u16,
    /// Protocol number (6 tcp, 17 udp).
    pub proto: u8,
    pub name: Option<String>,
    pub span: Span,
}

/// The whole configuration.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Model {
    /// The etc folder given with --config.
    pub config_dir: PathBuf,
    /// Its parent: compose files, env files and scripts are resolved against it.
    pub root_dir: PathBuf,
    pub domain: Option<String>,
    pub host: Host,
    pub guests: BTreeMap<GuestId, Guest>,
    pub firewall: Firewall,
    pub dns: Dns,
    pub stacks: BTreeMap<String, Stack>,
    pub certificates: Vec<Certificate>,
    pub externals: Vec<ExternalSystem>,
    pub edge: EdgeRoles,
    pub step_ca: Option<StepCa>,
    pub portainer: Option<PortainerApi>,
    pub nfs_exports: Vec<NfsExport>,
    /// `software`: the sources of the programs phoenix installs that Debian does not package.
    pub software: BTreeMap<String, SoftwareSource>,
    pub secrets: Vec<SecretSite>,
    pub flows: Vec<DeclaredFlow>,
}

impl Model {
    /// An index of who owns which single address; build it once per pass over many rules.
    pub fn address_index(&self) -> AddressIndex<'_> {
        let mut guests = std::collections::HashMap::with_capacity(self.guests.len());
        for guest in self.guests.values() {
            // An address on a second NIC belongs to its guest as much as the first.
            for ip in guest.addresses() {
                guests.entry(IpAddr::V4(ip)).or_insert(guest);
            }
        }
        AddressIndex { model: self, guests }
    }
}

/// Address-to-owner lookups in constant time.
pub struct AddressIndex<'m> {
    model: &'m Model,
    guests: std::collections::HashMap<IpAddr, &'m Guest>,
}

impl<'m> AddressIndex<'m> {
    pub fn guest(&self, ip: IpAddr) -> Option<&'m Guest> {
        self.guests.get(&ip).copied()
    }

    /// Who owns `ip`: a guest, the host, or an external system.
    pub fn owner_of(&self, ip: IpAddr) -> Option<Owner<'m>> {
        if let Some(guest) = self.guest(ip) {
            return Some(Owner::Guest(guest));
        }
        if self.model.host.owns(ip) {
            return Some(Owner::Host);
        }
        self.model.externals.iter().find(|e| e.addresses.iter().any(|n| n.contains(&ip))).map(Owner::External)
    }
}

/// The owner of an address.
#[derive(Debug, Clone, Copy)]
pub enum Owner<'a> {
    Guest(&'a Guest),
    Host,
    External(&'a ExternalSystem),
}
