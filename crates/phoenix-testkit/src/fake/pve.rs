//! A fake Proxmox VE API (`/api2/json`) for one node: guests with their config, every firewall
//! scope (options, rules, aliases, ipsets, cluster security groups) and tasks. What it refuses,
//! as the real API does (pve-manager's API2 handlers and PVE::Firewall's schemas):
//! - a missing or wrong `Authorization: PVEAPIToken=...` header: 401;
//! - a parameter the endpoint's schema does not define: 400 "property is not defined in schema";
//! - a JSON body where the API parses form parameters is read as no parameters, so required
//!   ones are missing: 400;
//! - a rule without `type` or `action`, a `type` other than in/out/group, a group rule naming
//!   an unknown security group, an action other than ACCEPT/DROP/REJECT: 400;
//! - a rule position that does not exist: 400; an alias or ipset that exists already, or does
//!   not exist: 400; deleting a non-empty ipset or security group: 400;
//! - a guest that does not exist: 500 "Configuration file ... does not exist".
//!
//! VM config updates (`POST .../qemu/{id}/config`) answer with a task UPID, as the real API
//! does; its status is `stopped`/`OK` when polled.

use super::{form_pairs, Answer, Call, FakeServer, Handler};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

type Params = BTreeMap<String, String>;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Firewall {
    pub options: Params,
    pub rules: Vec<Params>,
    pub aliases: BTreeMap<String, Params>,
    pub ipsets: BTreeMap<String, (Option<String>, Vec<Params>)>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PveState {
    pub node: String,
    /// vmid -> ("lxc" | "qemu", config)
    pub guests: BTreeMap<u32, (String, Params)>,
    /// By API base path (`/cluster/firewall`, `/nodes/pve/firewall`, `/nodes/pve/lxc/101/firewall`).
    pub firewalls: BTreeMap<String, Firewall>,
    pub groups: BTreeMap<String, (Option<String>, Vec<Params>)>,
    pub tasks: usize,
    /// Requests that changed something (POST, PUT, DELETE answered 2xx).
    pub writes: usize,
}

pub struct FakePve {
    pub server: FakeServer,
    pub state: Arc<Mutex<PveState>>,
    pub token: String,
}

impl PveState {
    /// A node named `node` with these guests (vmid, "lxc" | "qemu", net0) and no firewall
    /// configured, as after installation.
    pub fn new(node: &str, guests: &[(u32, &str, &str)]) -> PveState {
        let mut state = PveState { node: node.to_string(), ..PveState::default() };
        for (id, kind, net0) in guests {
            state.guests.insert(*id, (kind.to_string(), Params::from([("net0".to_string(), net0.to_string())])));
        }
        state
    }

    /// Answers one authenticated request in process: `path` below `/api2/json`, `params` as
    /// the API would parse them. The status and the JSON body.
    pub fn request(&mut self, method: &str, path: &str, params: BTreeMap<String, String>) -> (u16, Value) {
        let answer = self.answer(method, path, params);
        (answer.status, serde_json::from_str(&answer.body).unwrap_or(Value::Null))
    }

    fn answer(&mut self, method: &str, path: &str, params: Params) -> Answer {
        let answer = route(self, method, path, params);
        if method != "GET" && (200..300).contains(&answer.status) {
            self.writes += 1;
        }
        answer
    }
}

impl FakePve {
    /// A node named `node` with these guests (vmid, "lxc" | "qemu", net0).
    pub async fn start(node: &str, guests: &[(u32, &str, &str)]) -> FakePve {
        let token = "root@pam!phoenix=00000000-1111-2222-3333-444444444444".to_string();
        let state = Arc::new(Mutex::new(PveState::new(node, guests)));
        let (shared, expected) = (state.clone(), token.clone());
        let handler: Handler = Arc::new(move |call: &Call| handle(&shared, &expected, call));
        FakePve { server: FakeServer::start("pve", handler).await, state, token }
    }

    pub fn url(&self) -> String {
        format!("{}/api2/json", self.server.url())
    }
}

fn error(status: u16, message: impl Into<String>) -> Answer {
    Answer::json(status, json!({ "data": null, "message": message.into() }))
}

fn bad_params(errors: Map<String, Value>) -> Answer {
    Answer::json(400, json!({ "data": null, "errors": errors }))
}

fn ok(data: Value) -> Answer {
    Answer::json(200, json!({ "data": data }))
}

fn to_json(params: &Params) -> Value {
    Value::Object(params.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect())
}

const RULE_KEYS: &[&str] = &[
    "type",
    "action",
    "enable",
    "macro",
    "iface",
    "source",
    "dest",
    "proto",
    "dport",
    "sport",
    "log",
    "icmp-type",
    "comment",
    "pos",
    "digest",
    "delete",
    "moveto",
];
const CLUSTER_OPTIONS: &[&str] = &["enable", "policy_in", "policy_out", "policy_forward", "ebtables", "log_ratelimit", "digest", "delete"];
const HOST_OPTIONS: &[&str] = &[
    "enable",
    "log_level_in",
    "log_level_out",
    "log_level_forward",
    "nosmurfs",
    "smurf_log_level",
    "tcpflags",
    "tcp_flags_log_level",
    "nf_conntrack_max",
    "ndp",
    "nftables",
    "synflood",
    "digest",
    "delete",
];
const GUEST_OPTIONS: &[&str] = &[
    "enable",
    "policy_in",
    "policy_out",
    "dhcp",
    "macfilter",
    "ipfilter",
    "ndp",
    "radv",
    "log_level_in",
    "log_level_out",
    "digest",
    "delete",
];

/// The parameters of a call: the query for GET/DELETE, the form body otherwise. A JSON body
/// is not form data: the API sees no parameters (pve-http-server parses urlencoded bodies).
fn params(call: &Call) -> Params {
    match call.method.as_str() {
        "GET" | "DELETE" => call.query.iter().cloned().collect(),
        _ if call.header("content-type").is_some_and(|c| c.starts_with("application/x-www-form-urlencoded")) => {
            form_pairs(&String::from_utf8_lossy(&call.body)).into_iter().collect()
        }
        _ => Params::new(),
    }
}

/// 400 when a parameter is not in `allowed` (JSON Schema additionalProperties: 0 in PVE's API).
fn check_keys(params: &Params, allowed: &[&str]) -> Result<(), Answer> {
    let unknown: Map<String, Value> = params
        .keys()
        .filter(|k| !allowed.contains(&k.as_str()))
        .map(|k| (k.clone(), Value::String("property is not defined in schema and the schema does not allow additional properties".into())))
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(bad_params(unknown))
    }
}

fn handle(state: &Mutex<PveState>, token: &str, call: &Call) -> Answer {
    // PVE::APIServer: token auth is "PVEAPIToken=USER@REALM!TOKENID=SECRET".
    if call.header("authorization") != Some(&format!("PVEAPIToken={token}")) {
        return error(401, "authentication failure");
    }
    let Some(path) = call.path.strip_prefix("/api2/json") else { return error(404, "no such path") };
    state.lock().unwrap().answer(&call.method, path, params(call))
}

fn route(state: &mut PveState, method: &str, path: &str, params: Params) -> Answer {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let node = state.node.clone();
    match (method, segments.as_slice()) {
        ("GET", ["nodes", n, kind @ ("lxc" | "qemu")]) if *n == node => {
            let list: Vec<Value> = state.guests.iter().filter(|(_, (k, _))| k == kind).map(|(id, _)| json!({ "vmid": id })).collect();
            ok(Value::Array(list))
        }
        (_, ["nodes", n, kind @ ("lxc" | "qemu"), id, "config"]) if *n == node => guest_config(state, method, kind, id, params),
        ("GET", ["nodes", n, "tasks", upid, "status"]) if *n == node => {
            ok(json!({ "upid": upid, "status": "stopped", "exitstatus": "OK" }))
        }
        (_, ["cluster", "firewall", "groups", rest @ ..]) => groups(state, method, rest, params),
        (_, ["cluster", "firewall", rest @ ..]) => firewall(state, "/cluster/firewall", CLUSTER_OPTIONS, true, method, rest, params),
        (_, ["nodes", n, "firewall", rest @ ..]) if *n == node => {
            firewall(state, &format!("/nodes/{node}/firewall"), HOST_OPTIONS, false, method, rest, params)
        }
        (_, ["nodes", n, kind @ ("lxc" | "qemu"), id, "firewall", rest @ ..]) if *n == node => {
            if !guest_exists(state, kind, id) {
                return error(500, format!("Configuration file 'nodes/{node}/{kind}/{id}.conf' does not exist"));
            }
            firewall(state, &format!("/nodes/{node}/{kind}/{id}/firewall"), GUEST_OPTIONS, true, method, rest, params)
        }
        _ => error(501, format!("Method '{method} {path}' not implemented")),
    }
}

fn guest_exists(state: &PveState, kind: &str, id: &str) -> bool {
    id.parse::<u32>().ok().and_then(|id| state.guests.get(&id)).is_some_and(|(k, _)| k == kind)
}

fn guest_config(state: &mut PveState, method: &str, kind: &str, id: &str, params: Params) -> Answer {
    let node = state.node.clone();
    let Some((_, config)) = id.parse::<u32>().ok().and_then(|id| state.guests.get_mut(&id)).filter(|(k, _)| k == kind) else {
        return error(500, format!("Configuration file 'nodes/{node}/{kind}/{id}.conf' does not exist"));
    };
    match (method, kind) {
        ("GET", _) => ok(to_json(config)),
        // pct set: PUT, synchronous. qm set: POST is asynchronous (a task), PUT synchronous.
        ("PUT", _) | ("POST", "qemu") => {
            if let Err(answer) = check_keys(&params, &["net0", "digest", "delete"]) {
                return answer;
            }
            if params.is_empty() {
                return bad_params(Map::from_iter([("net0".to_string(), Value::String("no options specified".into()))]));
            }
            config.extend(params.into_iter().filter(|(k, _)| k != "digest"));
            if method == "POST" {
                state.tasks += 1;
                ok(Value::String(format!("UPID:{node}:0000{:04X}:00000000:00000000:qmconfig:{id}:root@pam!phoenix:", state.tasks)))
            } else {
                ok(Value::Null)
            }
        }
        _ => error(501, format!("Method '{method}' not implemented")),
    }
}

/// Checks a rule's parameters (PVE::Firewall::verify_rule): required type and action, known
/// values, an existing security group for group rules.
fn check_rule(rule: &Params, groups: &BTreeMap<String, (Option<String>, Vec<Params>)>) -> Result<(), Answer> {
    let field = |k: &str, m: &str| Err(bad_params(Map::from_iter([(k.to_string(), Value::String(m.to_string()))])));
    let Some(kind) = rule.get("type") else { return field("type", "property is missing and it is not optional") };
    let Some(action) = rule.get("action") else { return field("action", "property is missing and it is not optional") };
    match kind.as_str() {
        "group" if !groups.contains_key(action) => field("action", "security group does not exist"),
        "group" => Ok(()),
        "in" | "out" if !["ACCEPT", "DROP", "REJECT"].contains(&action.as_str()) => field("action", "value must be ACCEPT, DROP or REJECT"),
        "in" | "out" => match rule.get("enable").map(String::as_str) {
            None | Some("0" | "1") => Ok(()),
            Some(_) => field("enable", "value must be 0 or 1"),
        },
        _ => field("type", "value 'x' does not have a value in the enumeration 'in, out, group'"),
    }
}

fn rules_list(rules: &[Params]) -> Value {
    Value::Array(
        rules
            .iter()
            .enumerate()
            .map(|(pos, rule)| {
                let mut value = to_json(rule);
                value["pos"] = json!(pos);
                value
            })
            .collect(),
    )
}

/// GET/POST on a rule list, GET/PUT/DELETE on one position.
fn rules(
    rules: &mut Vec<Params>,
    groups: &BTreeMap<String, (Option<String>, Vec<Params>)>,
    method: &str,
    pos: Option<&str>,
    params: Params,
) -> Answer {
    if let Err(answer) = check_keys(&params, RULE_KEYS) {
        return answer;
    }
    let stored = |p: &Params| -> Params {
        p.iter()
            .filter(|(k, _)| !["pos", "digest", "delete", "moveto"].contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    match (method, pos) {
        ("GET", None) => ok(rules_list(rules)),
        ("POST", None) => {
            let rule = stored(&params);
            if let Err(answer) = check_rule(&rule, groups) {
                return answer;
            }
            // A new rule goes to `pos`, the top when absent (PVE::API2::Firewall::RulesBase).
            let at = params.get("pos").and_then(|p| p.parse::<usize>().ok()).unwrap_or(0).min(rules.len());
            rules.insert(at, rule);
            ok(Value::Null)
        }
        (_, Some(pos)) => {
            let Some(index) = pos.parse::<usize>().ok().filter(|i| *i < rules.len()) else { return error(400, "no rule at position") };
            match method {
                "GET" => {
                    let mut value = to_json(&rules[index]);
                    value["pos"] = json!(index);
                    ok(value)
                }
                "DELETE" => {
                    rules.remove(index);
                    ok(Value::Null)
                }
                "PUT" => {
                    let mut rule = rules[index].clone();
                    for key in params.get("delete").map(|d| d.split(',').map(str::to_string).collect::<Vec<_>>()).unwrap_or_default() {
                        rule.remove(&key);
                    }
                    rule.extend(stored(&params));
                    if let Err(answer) = check_rule(&rule, groups) {
                        return answer;
                    }
                    rules[index] = rule;
                    ok(Value::Null)
                }
                _ => error(501, "not implemented"),
            }
        }
        _ => error(501, "not implemented"),
    }
}

fn firewall(state: &mut PveState, base: &str, option_keys: &[&str], has_sets: bool, method: &str, rest: &[&str], params: Params) -> Answer {
    let groups = state.groups.clone();
    let fw = state.firewalls.entry(base.to_string()).or_default();
    match (method, rest) {
        ("GET", ["options"]) => ok(to_json(&fw.options)),
        ("PUT", ["options"]) => {
            if let Err(answer) = check_keys(&params, option_keys) {
                return answer;
            }
            for key in params.get("delete").map(|d| d.split(',').map(str::to_string).collect::<Vec<_>>()).unwrap_or_default() {
                fw.options.remove(&key);
            }
            fw.options.extend(params.into_iter().filter(|(k, _)| k != "delete" && k != "digest"));
            ok(Value::Null)
        }
        (_, ["rules"]) => rules(&mut fw.rules, &groups, method, None, params),
        (_, ["rules", pos]) => rules(&mut fw.rules, &groups, method, Some(pos), params),
        (_, ["aliases", rest @ ..]) if has_sets => aliases(fw, method, rest.first().copied(), params),
        (_, ["ipset", rest @ ..]) if has_sets => ipsets(fw, method, rest, params),
        _ => error(501, format!("Method '{method} {base}/{}' not implemented", rest.join("/"))),
    }
}

fn aliases(fw: &mut Firewall, method: &str, name: Option<&str>, params: Params) -> Answer {
    if let Err(answer) = check_keys(&params, &["name", "cidr", "comment", "digest", "rename"]) {
        return answer;
    }
    match (method, name) {
        ("GET", None) => ok(Value::Array(fw.aliases.values().map(to_json).collect())),
        ("POST", None) => {
            let (Some(name), Some(_)) = (params.get("name").cloned(), params.get("cidr")) else {
                return error(400, "name and cidr are required");
            };
            if fw.aliases.contains_key(&name) {
                return error(400, format!("alias '{name}' already exists"));
            }
            fw.aliases.insert(name, params.into_iter().filter(|(k, _)| k != "digest").collect());
            ok(Value::Null)
        }
        ("PUT", Some(name)) => match fw.aliases.get_mut(name) {
            Some(alias) => {
                alias.extend(params.into_iter().filter(|(k, _)| k == "cidr" || k == "comment"));
                ok(Value::Null)
            }
            None => error(400, format!("no such alias '{name}'")),
        },
        ("DELETE", Some(name)) => {
            fw.aliases.remove(name);
            ok(Value::Null)
        }
        _ => error(501, "not implemented"),
    }
}

fn ipsets(fw: &mut Firewall, method: &str, rest: &[&str], params: Params) -> Answer {
    if let Err(answer) = check_keys(&params, &["name", "cidr", "comment", "nomatch", "digest", "rename", "force"]) {
        return answer;
    }
    match (method, rest) {
        ("GET", []) => ok(Value::Array(fw.ipsets.iter().map(|(name, (comment, _))| json!({ "name": name, "comment": comment })).collect())),
        ("POST", []) => {
            let Some(name) = params.get("name").cloned() else { return error(400, "name is required") };
            if fw.ipsets.contains_key(&name) {
                return error(400, format!("IPSet '{name}' already exists"));
            }
            fw.ipsets.insert(name, (params.get("comment").cloned(), Vec::new()));
            ok(Value::Null)
        }
        (_, [name, cidr @ ..]) => {
            let Some((_, entries)) = fw.ipsets.get_mut(*name) else { return error(400, format!("no such IPSet '{name}'")) };
            let cidr = cidr.join("/");
            match (method, cidr.is_empty()) {
                ("GET", true) => ok(Value::Array(entries.iter().map(to_json).collect())),
                ("POST", true) => {
                    let Some(new) = params.get("cidr") else { return error(400, "cidr is required") };
                    if entries.iter().any(|e| e.get("cidr") == Some(new)) {
                        return error(400, format!("address '{new}' already exists"));
                    }
                    entries.push(params.into_iter().filter(|(k, _)| k != "digest").collect());
                    ok(Value::Null)
                }
                ("DELETE", true) if !entries.is_empty() => error(400, format!("IPSet '{name}' is not empty")),
                ("DELETE", true) => {
                    fw.ipsets.remove(*name);
                    ok(Value::Null)
                }
                ("DELETE", false) => {
                    entries.retain(|e| e.get("cidr") != Some(&cidr));
                    ok(Value::Null)
                }
                _ => error(501, "not implemented"),
            }
        }
        _ => error(501, "not implemented"),
    }
}

fn groups(state: &mut PveState, method: &str, rest: &[&str], params: Params) -> Answer {
    let known = state.groups.clone();
    match (method, rest) {
        ("GET", []) => {
            ok(Value::Array(state.groups.iter().map(|(name, (comment, _))| json!({ "group": name, "comment": comment })).collect()))
        }
        ("POST", []) => {
            if let Err(answer) = check_keys(&params, &["group", "comment", "digest", "rename"]) {
                return answer;
            }
            let Some(name) = params.get("group").cloned() else { return error(400, "group is required") };
            if state.groups.contains_key(&name) {
                return error(400, format!("security group '{name}' already exists"));
            }
            state.groups.insert(name, (params.get("comment").cloned(), Vec::new()));
            ok(Value::Null)
        }
        ("DELETE", [name]) => match state.groups.get(*name) {
            Some((_, rules)) if !rules.is_empty() => error(400, format!("security group '{name}' is not empty")),
            _ => {
                state.groups.remove(*name);
                ok(Value::Null)
            }
        },
        (_, [name, pos @ ..]) => match state.groups.get_mut(*name) {
            Some((_, list)) => rules(list, &known, method, pos.first().copied(), params),
            None => error(400, format!("no such security group '{name}'")),
        },
        _ => error(501, "not implemented"),
    }
}
