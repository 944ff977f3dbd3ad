//! phoenix_stacks_config.json: Docker stacks, their environments and Traefik labels.

use super::common::*;
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;

/// phoenix_stacks_config.json.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields, title = "phoenix_stacks_config.json")]
pub struct RawStacksFile {
    #[serde(rename = "$schema")]
    pub schema: Option<String>,
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, RawStack>")]
    pub docker_stacks: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawStack {
    pub description: Option<String>,
    /// Compose file, relative to the installation root (the parent of the etc folder).
    pub compose_file_path: Option<String>,
    #[serde(default)]
    pub environments: BTreeMap<String, RawStackEnvironment>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawStackEnvironment {
    /// Variables passed to the stack (Portainer `env`).
    #[serde(default)]
    #[schemars(with = "Vec<RawVariable>")]
    pub variables: Vec<Option<RawVariable>>,
    /// Files copied into the stack's containers.
    #[serde(default)]
    #[schemars(with = "Vec<RawStackFile>")]
    pub files: Vec<Option<RawStackFile>>,
    /// Per compose service: labels.
    #[serde(default)]
    pub services: BTreeMap<String, RawStackService>,
    /// Rules for the guest the stack runs on.
    #[serde(default)]
    #[schemars(with = "Vec<RawRule>")]
    pub firewall_rules: Vec<Option<RawRule>>,
}

/// `stacks/<name>/phoenix.json`, beside the stack's `docker-compose.yml` (the shape from
/// November 2025): what `phoenix_stacks_config.json` said of a stack, without the compose path.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawStackDir {
    pub description: Option<String>,
    #[serde(default)]
    pub environments: BTreeMap<String, RawStackEnvironment>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawVariable {
    pub name: Option<String>,
    /// A plain value, or a secret reference ({"env": ...} / {"file": ...}).
    pub value: Option<SecretValue>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawStackFile {
    /// Relative to the installation root.
    pub source: Option<String>,
    pub destination_in_container: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawStackService {
    /// Traefik Docker labels (`key=value`). The deployed Traefik reads files, not labels:
    /// phoenix translates them into its file-provider configuration.
    #[serde(default)]
    pub traefik_labels: Vec<String>,
}
