//! Types shared by several files: firewall rules, secrets, loose scalars, Traefik services.

use schemars::JsonSchema;
use serde::Deserialize;

/// A value the legacy files write either as a string or as a number (ports, guest ids).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum StrOrNum {
    Num(u64),
    Str(String),
}

impl std::fmt::Display for StrOrNum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StrOrNum::Num(n) => write!(f, "{n}"),
            StrOrNum::Str(s) => f.write_str(s),
        }
    }
}

/// A list the legacy files write either as one string (space or comma separated) or as an array.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum StrOrList {
    One(String),
    Many(Vec<String>),
}

impl StrOrList {
    pub fn items(&self) -> Vec<String> {
        match self {
            StrOrList::One(s) => s.split([',', ' ']).filter(|p| !p.is_empty()).map(str::to_string).collect(),
            StrOrList::Many(v) => v.clone(),
        }
    }
}

/// A secret: `{"env": "NAME"}` reads an environment variable, `{"file": "PATH"}` reads a file.
/// A plain string is accepted for compatibility and reported as a literal secret (PHX-SECRET-001).
#[derive(Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum SecretValue {
    Env {
        /// Name of the environment variable holding the secret.
        env: String,
    },
    File {
        /// Path of a file holding the secret (trailing newline ignored).
        file: String,
    },
    /// A literal secret (discouraged).
    Literal(String),
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretValue::Env { env } => write!(f, "Env({env})"),
            SecretValue::File { file } => write!(f, "File({file})"),
            SecretValue::Literal(_) => f.write_str("Literal(<redacted>)"),
        }
    }
}

/// Direction of a rule (`type` in the legacy files).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RawDirection {
    In,
    Out,
    /// Includes the security group named by `action`.
    Group,
}

/// One firewall rule, as in the legacy files; fields follow pve-firewall's rule options.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawRule {
    /// `in`, `out`, or `group` (then `action` names the security group).
    #[serde(rename = "type")]
    #[serde(default)]
    #[schemars(schema_with = "direction_schema")]
    pub direction: Option<String>,
    /// ACCEPT, DROP or REJECT (a security group name for type `group`).
    #[serde(default)]
    #[schemars(schema_with = "action_schema")]
    pub action: Option<String>,
    /// Protocol: tcp, udp, icmp, ... or a protocol number.
    pub proto: Option<String>,
    /// Destination port(s) (legacy name of `dport`): `80`, `80,443`, `8000:8010`.
    pub port: Option<StrOrNum>,
    /// Destination port(s); same as `port`.
    pub dport: Option<StrOrNum>,
    /// Source port(s).
    pub sport: Option<StrOrNum>,
    /// Source address: IP, CIDR, range, alias, `+ipset`, or a comma list.
    pub source: Option<String>,
    /// Destination address, same forms as `source`.
    pub dest: Option<String>,
    /// Interface the rule is limited to (`net0` for guests, a bridge for the host).
    pub iface: Option<String>,
    /// pve-firewall macro (e.g. `SSH`, `HTTP`).
    #[serde(rename = "macro")]
    pub macro_name: Option<String>,
    /// Free text, rendered as the rule's comment.
    pub comment: Option<String>,
    /// phoenix extension: `false` renders the rule disabled. Default true.
    pub enabled: Option<bool>,
    /// pve-firewall log level (nolog, emerg, ... debug).
    pub log: Option<String>,
}

fn direction_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "type": "string", "enum": ["in", "out", "group"] })
}

fn action_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "type": "string", "description": "ACCEPT, DROP, REJECT, or a security group name" })
}

/// A guest's firewall section.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawGuestFirewall {
    /// Writes `enable: 1` into the guest's `<vmid>.fw` (Proxmox default: disabled).
    pub enabled: Option<bool>,
    /// phoenix extension: inbound policy of the guest (default DROP, as Proxmox).
    #[serde(default)]
    #[schemars(schema_with = "policy_schema")]
    pub policy_in: Option<String>,
    /// phoenix extension: outbound policy of the guest (default ACCEPT, as Proxmox).
    #[serde(default)]
    #[schemars(schema_with = "policy_schema")]
    pub policy_out: Option<String>,
    /// The guest's rules, in order; the first match decides.
    #[serde(default)]
    #[schemars(with = "Vec<RawRule>")]
    pub rules: Vec<Option<RawRule>>,
}

pub(crate) fn policy_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "type": "string", "enum": ["ACCEPT", "DROP", "REJECT"] })
}

/// TLS handling of a route at the NGINX gateway (phoenix extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RawGatewayTls {
    /// The gateway terminates TLS and opens a new, verified TLS connection to Traefik.
    Terminate,
    /// The gateway forwards the TLS stream by SNI (ssl_preread); Traefik terminates.
    Passthrough,
}

/// Backend scheme (phoenix extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RawScheme {
    Http,
    Https,
}

/// A service Traefik routes to this guest.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawTraefikService {
    /// Router and service name; the default host names are `<name>.<zone>` for each authoritative DNS zone.
    pub name: Option<String>,
    /// Port the guest serves on.
    pub port: Option<StrOrNum>,
    /// phoenix extension: backend scheme. Default: https for ports 443, 8443 and 9443, http otherwise.
    pub scheme: Option<RawScheme>,
    /// phoenix extension: host names the router answers (replaces the default list).
    pub hostnames: Option<Vec<String>>,
    /// phoenix extension: name Traefik sends as SNI and checks against the backend certificate
    /// (serversTransport.serverName). Default: the first host name.
    pub server_name: Option<String>,
    /// phoenix extension: name of a certificate-manifest entry (cert_type client) that Traefik presents
    /// to the backend (mTLS). Default: none, as the original scripts configured no client certificate.
    pub client_certificate: Option<String>,
    /// phoenix extension: whether the backend requires a client certificate. Default false.
    pub requires_client_certificate: Option<bool>,
    /// phoenix extension: TLS at the gateway for this route. Default terminate.
    pub gateway_tls: Option<RawGatewayTls>,
}
