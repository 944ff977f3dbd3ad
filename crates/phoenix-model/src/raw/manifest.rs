//! certificate-manifest.json: certificates to issue from Step-CA and keep renewed.

use super::common::*;
use schemars::JsonSchema;
use serde::Deserialize;

/// certificate-manifest.json: an array of certificates.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[schemars(title = "certificate-manifest.json")]
#[serde(transparent)]
pub struct RawManifest(#[schemars(with = "Vec<RawCertificate>")] pub Vec<Option<RawCertificate>>);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RawGuestType {
    Lxc,
    Vm,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RawCertType {
    Server,
    Client,
    /// phoenix extension: both serverAuth and clientAuth.
    Both,
}

/// phoenix extension: how the ACME server checks control of each name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
pub enum RawChallenge {
    /// An HTTP request to port 80 of each name (RFC 8555 section 8.3).
    #[serde(rename = "http-01")]
    Http01,
    /// A TLS handshake on port 443 with the acme-tls/1 protocol (RFC 8737).
    #[serde(rename = "tls-alpn-01")]
    TlsAlpn01,
    /// A TXT record `_acme-challenge.<name>` in phoenix's own DNS (RFC 8555 section 8.4); the
    /// only challenge for wildcard names.
    #[serde(rename = "dns-01")]
    Dns01,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawCertificate {
    pub common_name: Option<String>,
    /// DNS names and IP addresses, mixed.
    #[serde(default)]
    pub sans: Vec<String>,
    pub guest_id: Option<StrOrNum>,
    pub guest_type: Option<RawGuestType>,
    pub cert_path: Option<String>,
    pub key_path: Option<String>,
    /// `user:group` owning the installed files.
    pub owner: Option<String>,
    /// Octal mode the original gave the certificate and the key alike (`640`).
    pub permissions: Option<StrOrNum>,
    /// Append the CA chain to the certificate file.
    pub include_ca: Option<bool>,
    /// `client`; server when absent.
    pub cert_type: Option<RawCertType>,
    /// Shell command run on the host after renewal (legacy form).
    pub post_renewal_command: Option<String>,
    /// phoenix extension: a name other entries and traefik_service.client_certificate refer to. Default: common_name.
    pub name: Option<String>,
    /// phoenix extension, the structured alternative to post_renewal_command: the service to reload in the guest.
    pub reload_service: Option<String>,
    /// phoenix extension: the ACME challenge, `http-01`, `tls-alpn-01` or `dns-01`. Default: `dns-01` for a wildcard,
    /// and for an entry without an address when phoenix's DNS runs on the node; else `http-01`.
    pub challenge: Option<RawChallenge>,
    /// phoenix extension: the folder (absolute, in the entry's guest) that the guest's own web
    /// server serves at `/` on port 80; phoenix answers http-01 by writing the tokens under
    /// `.well-known/acme-challenge/` there, and removes them afterwards. Implies `http-01`.
    pub http01_webroot: Option<String>,
}
