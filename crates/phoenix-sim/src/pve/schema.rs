//! The Proxmox VE API schema as the simulator's router: pve-docs' `apidata.json` (PVE 9.1.3,
//! embedded by build.rs without its prose). A request is matched to a path of the schema the
//! way pve-common's `PVE::RESTHandler::find_handler` / `map_path_to_methods` match it: the path
//! split at `/` (empty parts skipped), fixed parts before `{variables}`, and after the ipset
//! entry's handler class (registered with `fragmentDelimiter => ''`) the rest of the path is one
//! value, so `{cidr}` may hold `10.0.0.0/24`. What it must not do: handle requests (pve/api).

use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::OnceLock;

const EMBEDDED: &str = include_str!(concat!(env!("OUT_DIR"), "/pve-api.json"));

/// One path of the schema.
#[derive(Debug)]
pub struct Node {
    /// The schema's path template, e.g. `/nodes/{node}/lxc/{vmid}/firewall/rules/{pos}`.
    pub path: String,
    part: Part,
    children: Vec<Node>,
    /// By HTTP method.
    methods: BTreeMap<String, Value>,
}

#[derive(Debug, PartialEq, Eq)]
enum Part {
    Root,
    Fixed(String),
    Variable(String),
}

/// A request matched to the schema: its template, the method's definition, the path's values.
#[derive(Debug)]
pub struct Route<'s> {
    pub template: &'s str,
    /// The method's definition: `parameters`, `returns`, `name`, `protected`, `proxyto`.
    pub method: &'s Value,
    pub path_params: BTreeMap<String, String>,
}

/// Why a request matched nothing.
#[derive(Debug, PartialEq, Eq)]
pub enum NoRoute {
    /// No path of the schema matches.
    Path,
    /// The path exists, without this method.
    Method,
}

impl Node {
    fn from_json(value: &Value) -> Node {
        let path = value.get("path").and_then(Value::as_str).unwrap_or_default().to_string();
        let last = path.rsplit('/').next().unwrap_or_default();
        let part = match last.strip_prefix('{').and_then(|v| v.strip_suffix('}')) {
            Some(name) => Part::Variable(name.to_string()),
            None => Part::Fixed(last.to_string()),
        };
        let children = value.get("children").and_then(Value::as_array).map(|c| c.iter().map(Node::from_json).collect()).unwrap_or_default();
        let methods = value
            .get("info")
            .and_then(Value::as_object)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        Node { path, part, children, methods }
    }

    /// The method definitions of this path.
    pub fn method(&self, method: &str) -> Option<&Value> {
        self.methods.get(method)
    }
}

/// The whole API.
#[derive(Debug)]
pub struct ApiSchema {
    root: Node,
}

impl ApiSchema {
    /// The embedded PVE 9.1.3 schema, parsed once.
    pub fn get() -> &'static ApiSchema {
        static SCHEMA: OnceLock<ApiSchema> = OnceLock::new();
        SCHEMA.get_or_init(|| {
            let tree: Value = serde_json::from_str(EMBEDDED).expect("build.rs embedded valid JSON");
            let children = tree.as_array().map(|c| c.iter().map(Node::from_json).collect()).unwrap_or_default();
            ApiSchema { root: Node { path: String::new(), part: Part::Root, children, methods: BTreeMap::new() } }
        })
    }

    /// The node at exactly this template (`/cluster/firewall/rules`), for tests and the
    /// conformance check.
    pub fn node(&self, template: &str) -> Option<&Node> {
        let mut node = &self.root;
        while node.path != template {
            let below = |c: &&Node| template.strip_prefix(c.path.as_str()).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
            node = node.children.iter().find(below)?;
        }
        Some(node)
    }

    /// Matches `method path` (path below `/api2/json`, percent-decoded).
    pub fn route(&self, method: &str, path: &str) -> Result<Route<'_>, NoRoute> {
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        let mut node = &self.root;
        let mut path_params = BTreeMap::new();
        let mut index = 0;
        while index < parts.len() {
            let part = parts[index];
            let fixed = node.children.iter().find(|c| matches!(&c.part, Part::Fixed(name) if name == part));
            let next = match fixed {
                Some(child) => child,
                None => {
                    let Some(child) = node.children.iter().find(|c| matches!(c.part, Part::Variable(_))) else { return Err(NoRoute::Path) };
                    let Part::Variable(name) = &child.part else { unreachable!("filtered above") };
                    // IPSet.pm registers the entries' class with fragmentDelimiter '': the rest
                    // of the path is the `{cidr}` (RESTHandler::map_path_to_methods).
                    let value = if name == "cidr" { parts[index..].join("/") } else { part.to_string() };
                    if name == "cidr" {
                        index = parts.len() - 1;
                    }
                    path_params.insert(name.clone(), value);
                    child
                }
            };
            node = next;
            index += 1;
        }
        let definition = node.methods.get(method).ok_or(if node.methods.is_empty() { NoRoute::Path } else { NoRoute::Method })?;
        Ok(Route { template: &node.path, method: definition, path_params })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_match_their_templates_and_bind_variables() {
        let schema = ApiSchema::get();
        let route = schema.route("PUT", "/nodes/pve/lxc/101/firewall/rules/3").unwrap();
        assert_eq!(route.template, "/nodes/{node}/lxc/{vmid}/firewall/rules/{pos}");
        assert_eq!(route.path_params["node"], "pve");
        assert_eq!(route.path_params["vmid"], "101");
        assert_eq!(route.path_params["pos"], "3");
        assert_eq!(route.method["name"], "update_rule");
        // Fixed parts win over variables: `options` is not a rule position.
        assert_eq!(schema.route("GET", "/cluster/firewall/options").unwrap().template, "/cluster/firewall/options");
    }

    #[test]
    fn an_ipset_entry_takes_the_rest_of_the_path() {
        let route = ApiSchema::get().route("DELETE", "/cluster/firewall/ipset/mgmt/10.0.0.0/24").unwrap();
        assert_eq!(route.template, "/cluster/firewall/ipset/{name}/{cidr}");
        assert_eq!(route.path_params["cidr"], "10.0.0.0/24");
    }

    #[test]
    fn unknown_paths_and_methods_are_told_apart() {
        let schema = ApiSchema::get();
        assert_eq!(schema.route("GET", "/cluster/nonsense").unwrap_err(), NoRoute::Path);
        assert_eq!(schema.route("PATCH", "/cluster/firewall/rules").unwrap_err(), NoRoute::Method);
    }
}
