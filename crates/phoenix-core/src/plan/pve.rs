//! The Proxmox VE API side of the firewall: where each scope lives in the API, how a parsed
//! `.fw` rule maps to the API's rule object and back, and the requests that turn an observed
//! firewall into the rendered one with as few changes as possible (rules are replaced in
//! place by position, so the order of first-match rules never passes through a wrong state
//! longer than one request). Pure: observed data in, requests out.
//!
//! API facts (pve-docs api-viewer, PVE::API2::Firewall::*): rules are `GET/POST
//! {base}/rules`, `PUT/DELETE {base}/rules/{pos}`; options `GET/PUT {base}/options` with
//! `delete=a,b` to unset; aliases `{base}/aliases[/{name}]`; ipsets `{base}/ipset[/{name}[/{cidr}]]`;
//! security groups `/cluster/firewall/groups[/{group}[/{pos}]]`. A rule line's `|` prefix is
//! `enable=0`; a macro rule `HTTPS(ACCEPT)` is `macro=HTTPS action=ACCEPT`.

use crate::render::pve_firewall::format::{FwAlias, FwFile, FwIpSet, FwIpSetEntry, FwRule};
use phoenix_model::model::{GuestId, GuestKind};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    Get,
    Post,
    Put,
    Delete,
}

/// One API request (form parameters, as pvesh and the web UI send them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiRequest {
    pub method: Method,
    pub path: String,
    pub params: Vec<(String, String)>,
}

impl ApiRequest {
    pub fn new(method: Method, path: impl Into<String>, params: Vec<(String, String)>) -> ApiRequest {
        ApiRequest { method, path: path.into(), params }
    }
}

impl std::fmt::Display for ApiRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} {}", self.method, self.path)?;
        for (key, value) in &self.params {
            write!(f, " {key}={value}")?;
        }
        Ok(())
    }
}

/// Where a firewall lives in the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum FwScope {
    Cluster,
    Host,
    Guest(GuestId, GuestKind),
}

impl FwScope {
    pub fn base(&self, node: &str) -> String {
        match self {
            FwScope::Cluster => "/cluster/firewall".to_string(),
            FwScope::Host => format!("/nodes/{node}/firewall"),
            FwScope::Guest(id, kind) => format!("/nodes/{node}/{}/{id}/firewall", guest_segment(*kind)),
        }
    }

    pub fn label(&self) -> String {
        match self {
            FwScope::Cluster => "cluster".to_string(),
            FwScope::Host => "host".to_string(),
            FwScope::Guest(id, _) => format!("guest {id}"),
        }
    }
}

/// `lxc` or `qemu`, as the API's paths name guests.
pub fn guest_segment(kind: GuestKind) -> &'static str {
    match kind {
        GuestKind::Lxc => "lxc",
        GuestKind::Vm => "qemu",
    }
}

fn pair(key: &str, value: impl Into<String>) -> (String, String) {
    (key.to_string(), value.into())
}

/// Rule option keys of the `.fw` format and their API names.
const RULE_FIELDS: &[(&str, &str)] = &[
    ("i", "iface"),
    ("source", "source"),
    ("dest", "dest"),
    ("p", "proto"),
    ("dport", "dport"),
    ("sport", "sport"),
    ("log", "log"),
    ("icmp-type", "icmp-type"),
];

/// The API parameters of a rule (without `pos`).
pub fn rule_params(rule: &FwRule) -> Vec<(String, String)> {
    let (kind, action, macro_name) = match rule.direction.as_str() {
        "GROUP" => ("group".to_string(), rule.verdict.clone(), None),
        direction => match rule.verdict.split_once('(') {
            Some((name, action)) => (direction.to_ascii_lowercase(), action.trim_end_matches(')').to_string(), Some(name.to_string())),
            None => (direction.to_ascii_lowercase(), rule.verdict.clone(), None),
        },
    };
    let mut params = vec![pair("type", kind), pair("action", action), pair("enable", if rule.enabled { "1" } else { "0" })];
    if let Some(name) = macro_name {
        params.push(pair("macro", name));
    }
    for (key, value) in &rule.options {
        if let Some((_, api)) = RULE_FIELDS.iter().find(|(file, _)| file == key) {
            params.push(pair(api, value.clone()));
        }
    }
    if let Some(comment) = &rule.comment {
        params.push(pair("comment", comment.clone()));
    }
    params
}

fn text(value: &Value, key: &str) -> Option<String> {
    match value.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A rule as the API returns it, in the `.fw` form. A missing `enable` is enabled, as
/// pve-firewall writes a rule without `|` unless `enable` is 0.
pub fn rule_from_api(value: &Value) -> FwRule {
    let kind = text(value, "type").unwrap_or_default().to_ascii_uppercase();
    let action = text(value, "action").unwrap_or_default();
    let verdict = match text(value, "macro") {
        Some(name) if kind != "GROUP" => format!("{name}({action})"),
        _ => action,
    };
    let options = RULE_FIELDS.iter().filter_map(|(file, api)| Some((file.to_string(), text(value, api)?))).collect();
    FwRule { enabled: text(value, "enable").is_none_or(|e| e != "0"), direction: kind, verdict, options, comment: text(value, "comment") }
}

/// Rules as the API lists them, in position order.
pub fn rules_from_api(list: &Value) -> Vec<FwRule> {
    let mut rules: Vec<(u64, FwRule)> = list
        .as_array()
        .map(|items| items.iter().map(|item| (item.get("pos").and_then(Value::as_u64).unwrap_or(u64::MAX), rule_from_api(item))).collect())
        .unwrap_or_default();
    rules.sort_by_key(|(pos, _)| *pos);
    rules.into_iter().map(|(_, rule)| rule).collect()
}

/// Options as the API returns them (`digest` is bookkeeping, not an option).
pub fn options_from_api(value: &Value) -> BTreeMap<String, String> {
    value
        .as_object()
        .map(|object| object.keys().filter(|k| *k != "digest").filter_map(|k| Some((k.clone(), text(value, k)?))).collect())
        .unwrap_or_default()
}

pub fn aliases_from_api(list: &Value) -> Vec<FwAlias> {
    let mut aliases: Vec<FwAlias> = list
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|a| Some(FwAlias { name: text(a, "name")?, cidr: text(a, "cidr")?, comment: text(a, "comment") }))
                .collect()
        })
        .unwrap_or_default();
    aliases.sort_by(|a, b| a.name.cmp(&b.name));
    aliases
}

/// An ipset from its list entry and the entries `GET {base}/ipset/{name}` returned.
pub fn ipset_from_api(summary: &Value, entries: &Value) -> Option<FwIpSet> {
    let entries = entries
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|e| {
                    Some(FwIpSetEntry {
                        negated: text(e, "nomatch").is_some_and(|n| n == "1"),
                        cidr: text(e, "cidr")?,
                        comment: text(e, "comment"),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    Some(FwIpSet { name: text(summary, "name")?, comment: text(summary, "comment"), entries })
}

/// Requests that turn the `observed` rule list at `path` into `desired`, position by position:
/// changed rules are replaced in place, missing ones appended, surplus ones deleted from the end.
pub fn rules_requests(path: &str, desired: &[FwRule], observed: &[FwRule]) -> Vec<ApiRequest> {
    let mut requests = Vec::new();
    for (pos, rule) in desired.iter().enumerate() {
        match observed.get(pos) {
            Some(current) if current == rule => {}
            Some(current) => {
                let mut params = rule_params(rule);
                // Fields the old rule had and the new one lacks must be unset explicitly.
                let kept: Vec<&str> = params.iter().map(|(k, _)| k.as_str()).collect();
                let cleared: Vec<&str> =
                    rule_params(current).iter().map(|(k, _)| k.as_str()).filter(|k| !kept.contains(k)).map(clear_name).collect();
                if !cleared.is_empty() {
                    params.push(pair("delete", cleared.join(",")));
                }
                requests.push(ApiRequest::new(Method::Put, format!("{path}/{pos}"), params));
            }
            None => {
                let mut params = rule_params(rule);
                params.push(pair("pos", pos.to_string()));
                requests.push(ApiRequest::new(Method::Post, path, params));
            }
        }
    }
    for pos in (desired.len()..observed.len()).rev() {
        requests.push(ApiRequest::new(Method::Delete, format!("{path}/{pos}"), Vec::new()));
    }
    requests
}

/// The names `delete=` takes for rule fields (as returned by rule_params, static strings).
fn clear_name(key: &str) -> &'static str {
    ["macro", "iface", "source", "dest", "proto", "dport", "sport", "log", "icmp-type", "comment"]
        .into_iter()
        .find(|k| *k == key)
        .unwrap_or("comment")
}

/// The options request, when the options differ: changed values set, surplus keys deleted.
pub fn options_request(base: &str, desired: &BTreeMap<String, String>, observed: &BTreeMap<String, String>) -> Option<ApiRequest> {
    let mut params: Vec<(String, String)> =
        desired.iter().filter(|(k, v)| observed.get(*k) != Some(*v)).map(|(k, v)| (k.clone(), v.clone())).collect();
    let surplus: Vec<&str> = observed.keys().filter(|k| !desired.contains_key(*k)).map(String::as_str).collect();
    if !surplus.is_empty() {
        params.push(pair("delete", surplus.join(",")));
    }
    (!params.is_empty()).then(|| ApiRequest::new(Method::Put, format!("{base}/options"), params))
}

fn comment_param(comment: &Option<String>) -> Vec<(String, String)> {
    comment.iter().map(|c| pair("comment", c.clone())).collect()
}

/// A CIDR as one path segment (`10.0.0.0/24` -> `10.0.0.0%2F24`), as the API's `{cidr}` is one.
fn cidr_segment(cidr: &str) -> String {
    cidr.replace('/', "%2F")
}

/// Aliases, ipsets and (cluster) security groups that must exist before rules refer to them.
pub fn reference_requests(scope: FwScope, node: &str, desired: &FwFile, observed: &FwFile) -> Vec<ApiRequest> {
    let base = scope.base(node);
    let mut requests = Vec::new();
    for alias in &desired.aliases {
        match observed.aliases.iter().find(|a| a.name == alias.name) {
            Some(current) if current == alias => {}
            Some(_) => {
                let mut params = vec![pair("cidr", alias.cidr.clone())];
                params.extend(comment_param(&alias.comment));
                requests.push(ApiRequest::new(Method::Put, format!("{base}/aliases/{}", alias.name), params));
            }
            None => {
                let mut params = vec![pair("name", alias.name.clone()), pair("cidr", alias.cidr.clone())];
                params.extend(comment_param(&alias.comment));
                requests.push(ApiRequest::new(Method::Post, format!("{base}/aliases"), params));
            }
        }
    }
    for set in &desired.ipsets {
        let current = observed.ipsets.iter().find(|s| s.name == set.name);
        if current.is_none() {
            let mut params = vec![pair("name", set.name.clone())];
            params.extend(comment_param(&set.comment));
            requests.push(ApiRequest::new(Method::Post, format!("{base}/ipset"), params));
        }
        let have: &[FwIpSetEntry] = current.map(|c| c.entries.as_slice()).unwrap_or(&[]);
        for entry in set.entries.iter().filter(|e| !have.contains(e)) {
            if have.iter().any(|h| h.cidr == entry.cidr) {
                requests.push(ApiRequest::new(
                    Method::Delete,
                    format!("{base}/ipset/{}/{}", set.name, cidr_segment(&entry.cidr)),
                    Vec::new(),
                ));
            }
            let mut params = vec![pair("cidr", entry.cidr.clone()), pair("nomatch", if entry.negated { "1" } else { "0" })];
            params.extend(comment_param(&entry.comment));
            requests.push(ApiRequest::new(Method::Post, format!("{base}/ipset/{}", set.name), params));
        }
        for entry in have.iter().filter(|h| !set.entries.iter().any(|e| e.cidr == h.cidr)) {
            requests.push(ApiRequest::new(Method::Delete, format!("{base}/ipset/{}/{}", set.name, cidr_segment(&entry.cidr)), Vec::new()));
        }
    }
    for group in &desired.groups {
        let current = observed.groups.iter().find(|g| g.name == group.name);
        if current.is_none() {
            let mut params = vec![pair("group", group.name.clone())];
            params.extend(comment_param(&group.comment));
            requests.push(ApiRequest::new(Method::Post, "/cluster/firewall/groups", params));
        }
        let have = current.map(|g| g.rules.as_slice()).unwrap_or(&[]);
        requests.extend(rules_requests(&format!("/cluster/firewall/groups/{}", group.name), &group.rules, have));
    }
    requests
}

/// References no longer wanted, removed once no rule uses them (after the rules changed).
pub fn cleanup_requests(scope: FwScope, node: &str, desired: &FwFile, observed: &FwFile) -> Vec<ApiRequest> {
    let base = scope.base(node);
    let mut requests = Vec::new();
    for group in observed.groups.iter().filter(|g| !desired.groups.iter().any(|d| d.name == g.name)) {
        // pve-firewall refuses to delete a group that still has rules.
        requests.extend(rules_requests(&format!("/cluster/firewall/groups/{}", group.name), &[], &group.rules));
        requests.push(ApiRequest::new(Method::Delete, format!("/cluster/firewall/groups/{}", group.name), Vec::new()));
    }
    for set in observed.ipsets.iter().filter(|s| !desired.ipsets.iter().any(|d| d.name == s.name)) {
        for entry in &set.entries {
            requests.push(ApiRequest::new(Method::Delete, format!("{base}/ipset/{}/{}", set.name, cidr_segment(&entry.cidr)), Vec::new()));
        }
        requests.push(ApiRequest::new(Method::Delete, format!("{base}/ipset/{}", set.name), Vec::new()));
    }
    for alias in observed.aliases.iter().filter(|a| !desired.aliases.iter().any(|d| d.name == a.name)) {
        requests.push(ApiRequest::new(Method::Delete, format!("{base}/aliases/{}", alias.name), Vec::new()));
    }
    requests
}

/// A `net0` value as an order-free set of its `key=value` parts.
pub fn nic_parts(value: &str) -> Vec<String> {
    let mut parts: Vec<String> = value.split(',').map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect();
    parts.sort();
    parts
}

/// The request that sets a guest's `net0` (LXC: `PUT .../config`, synchronous; VM: `POST
/// .../config`, which returns a task UPID to wait for).
pub fn nic_request(node: &str, id: GuestId, kind: GuestKind, net0: &str) -> ApiRequest {
    let method = match kind {
        GuestKind::Lxc => Method::Put,
        GuestKind::Vm => Method::Post,
    };
    ApiRequest::new(method, format!("/nodes/{node}/{}/{id}/config", guest_segment(kind)), vec![pair("net0", net0)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::pve_firewall::format::parse_rule;

    #[test]
    fn rules_round_trip_through_the_api_form() {
        for line in [
            "IN HTTPS(ACCEPT) -source 10.0.0.0/24 # web",
            "|OUT DROP -p tcp -dport 22",
            "GROUP webservers",
            "IN ACCEPT -i net0 -p icmp -icmp-type echo-request",
        ] {
            let rule = parse_rule(line).unwrap();
            let params: serde_json::Map<String, Value> = rule_params(&rule).into_iter().map(|(k, v)| (k, Value::String(v))).collect();
            assert_eq!(rule_from_api(&Value::Object(params)), rule, "{line}");
        }
    }

    #[test]
    fn rules_are_replaced_in_place_appended_and_trimmed() {
        let rules = |lines: &[&str]| lines.iter().map(|l| parse_rule(l).unwrap()).collect::<Vec<_>>();
        let observed = rules(&["IN ACCEPT -p tcp -dport 22 # ssh", "IN ACCEPT -p tcp -dport 80", "IN DROP", "IN DROP -p udp"]);
        let desired = rules(&["IN ACCEPT -p tcp -dport 22 # ssh", "IN ACCEPT -p tcp -dport 443"]);
        let requests: Vec<String> = rules_requests("/cluster/firewall/rules", &desired, &observed).iter().map(|r| r.to_string()).collect();
        assert_eq!(
            requests,
            [
                "Put /cluster/firewall/rules/1 type=in action=ACCEPT enable=1 proto=tcp dport=443",
                "Delete /cluster/firewall/rules/3",
                "Delete /cluster/firewall/rules/2",
            ]
        );
        let grown = rules_requests("/r", &observed, &desired);
        assert_eq!(grown[1].to_string(), "Post /r type=in action=DROP enable=1 pos=2");
        let cleared = rules_requests("/r", &rules(&["IN ACCEPT"]), &rules(&["IN ACCEPT -p tcp # x"]));
        assert_eq!(cleared[0].to_string(), "Put /r/0 type=in action=ACCEPT enable=1 delete=proto,comment");
        assert!(rules_requests("/r", &desired, &desired).is_empty());
    }

    #[test]
    fn options_set_what_differs_and_delete_what_is_not_wanted() {
        let map = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>();
        let request = options_request(
            "/cluster/firewall",
            &map(&[("enable", "1"), ("policy_in", "DROP")]),
            &map(&[("enable", "0"), ("policy_in", "DROP"), ("ebtables", "0")]),
        );
        assert_eq!(request.unwrap().to_string(), "Put /cluster/firewall/options enable=1 delete=ebtables");
        assert!(options_request("/x", &map(&[("enable", "1")]), &map(&[("enable", "1")])).is_none());
    }
}
