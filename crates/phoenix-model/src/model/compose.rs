//! Reading a parsed compose file's services the way docker compose does: labels as a list of
//! `key=value` or a map, volumes in the short (`src:dst[:mode]`) or long (`source`) syntax,
//! `command` as a string or a list. Pure lookups over the parsed content; what is wrong with a
//! service is validation's.

use super::ComposeFile;
use serde_json::Value;

/// The Portainer server's images (CE, EE and the old name); the agent is `portainer/agent`.
const PORTAINER_SERVER_IMAGES: &[&str] = &["portainer/portainer-ce", "portainer/portainer-ee", "portainer/portainer"];

/// One service of a compose file.
pub struct ComposeService<'a> {
    pub name: &'a str,
    pub body: &'a Value,
}

impl ComposeFile {
    /// Its services, in the file's order as parsed (an absent or unreadable file has none).
    pub fn services(&self) -> Vec<ComposeService<'_>> {
        let Some(services) = self.content.as_ref().and_then(|c| c.get("services")).and_then(Value::as_object) else {
            return Vec::new();
        };
        services.iter().map(|(name, body)| ComposeService { name, body }).collect()
    }

    /// Whether one of its services is the Portainer server itself.
    pub fn runs_portainer_server(&self) -> bool {
        self.services().iter().any(ComposeService::is_portainer_server)
    }
}

impl ComposeService<'_> {
    fn text(&self, key: &str) -> Option<&str> {
        self.body.get(key).and_then(Value::as_str)
    }

    pub fn image(&self) -> Option<&str> {
        self.text("image")
    }

    /// Its `dns` resolvers (a string or a list, as compose takes it).
    pub fn dns(&self) -> Vec<&str> {
        match self.body.get("dns") {
            Some(Value::String(one)) => vec![one.as_str()],
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        }
    }

    pub fn user(&self) -> Option<String> {
        self.body.get("user").map(|u| u.as_str().map_or_else(|| u.to_string(), str::to_string))
    }

    /// Whether its image is the Portainer server (any registry prefix and tag).
    pub fn is_portainer_server(&self) -> bool {
        let Some(image) = self.image() else { return false };
        let image = image.split('@').next().unwrap_or(image);
        let name = image.rsplit_once(':').filter(|(_, tag)| !tag.contains('/')).map_or(image, |(name, _)| name);
        PORTAINER_SERVER_IMAGES.iter().any(|known| name == *known || name.ends_with(&format!("/{known}")))
    }

    /// Labels as `key=value` lines.
    pub fn labels(&self) -> Vec<String> {
        match self.body.get("labels") {
            Some(Value::Array(items)) => items.iter().filter_map(|i| i.as_str().map(str::to_string)).collect(),
            Some(Value::Object(map)) => {
                map.iter().map(|(k, v)| format!("{k}={}", v.as_str().map_or_else(|| v.to_string(), str::to_string))).collect()
            }
            _ => Vec::new(),
        }
    }

    /// The host side of each volume (a named volume's name, or a bind's path).
    pub fn volume_sources(&self) -> Vec<String> {
        let Some(Value::Array(volumes)) = self.body.get("volumes") else { return Vec::new() };
        volumes
            .iter()
            .filter_map(|v| match v {
                Value::String(short) => short.split(':').next().map(str::to_string),
                Value::Object(long) => long.get("source").and_then(Value::as_str).map(str::to_string),
                _ => None,
            })
            .collect()
    }

    /// The words of `command` (a string is split at whitespace, as compose's shell-like split
    /// does for the flags looked at here).
    pub fn command_words(&self) -> Vec<String> {
        match self.body.get("command") {
            Some(Value::String(line)) => line.split_whitespace().map(str::to_string).collect(),
            Some(Value::Array(words)) => words.iter().filter_map(|w| w.as_str().map(str::to_string)).collect(),
            _ => Vec::new(),
        }
    }

    /// Whether it is given extra groups (`group_add`), which can make a root-group socket usable.
    pub fn adds_groups(&self) -> bool {
        self.body.get("group_add").and_then(Value::as_array).is_some_and(|g| !g.is_empty())
    }
}
