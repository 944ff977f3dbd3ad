//! The Proxmox VE API side of the firewall and the NICs: where each scope lives in the API, how
//! a parsed `.fw` rule maps to the API's rule object and back, and the requests that turn an
//! observed firewall into the rendered one. Pure: observed data in, requests out.
//!
//! What the requests rely on (pve-firewall `src/PVE/API2/Firewall/Rules.pm`, `Firewall.pm`):
//! `POST {base}/rules` ignores `pos` and puts the new rule on top, disabled unless `enable` is
//! sent; `PUT {base}/rules/{pos}` with `moveto=N` moves the rule in front of the rule that had
//! index N (to the end when N is the count); `PUT` copies the keys sent, then removes those in
//! `delete`; `PUT`/`DELETE` refuse a `digest` other than the list's (`assert_if_modified`);
//! `POST` checks no digest. So an empty list is filled in reverse; otherwise a list is edited
//! position by position or around the rules it shares with the rendered one, whichever costs
//! fewer calls, new rules are created on top disabled, moved to their place and then enabled,
//! and every positional write carries the digest of the list it was planned from: the observed
//! one for the first write, else the one re-read just before it (which must show exactly
//! phoenix's own earlier writes).
//! A `net0` is edited as a property string: only the keys phoenix renders change; the MAC
//! (qemu-server and pve-container generate a new one for a NIC written without it) and every
//! other key stay as observed.

use crate::pve_fw::{Direction, FwAlias, FwFile, FwIpSet, FwIpSetEntry, FwRule, Verdict};
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
    /// A positional edit of a rule list: the digest that goes with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guard: Option<Guard>,
    /// What to wait for once the request (and its task) succeeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub then: Option<Then>,
}

/// A wait after a request, bounded in time: for a change Proxmox VE makes in a worker whose
/// task it does not hand out (an LXC template conversion, a move HA's manager carries out), for
/// a VM's guest agent, or the guest's boot delay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "wait", rename_all = "kebab-case")]
pub enum Then {
    /// Until `GET path` shows `key: value` (at most `seconds`).
    Config { path: String, key: String, value: String, seconds: u64 },
    /// Until `POST path` (the agent's ping) answers (at most `seconds`).
    Agent { path: String, seconds: u64 },
    /// Until `GET path` (the guest's config on `node`) answers: HA's move is done once the
    /// config is on the target node (at most `seconds`). A `task` (`qmigrate`, `vzmigrate`) of
    /// guest `vmid` that failed on `from` meanwhile ends the wait with its status.
    Arrived { path: String, node: String, from: String, task: String, vmid: String, seconds: u64 },
    /// `seconds` (the guest's `boot_delay` before the next guest starts).
    Pause { seconds: u64 },
}

impl std::fmt::Display for Then {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Then::Config { key, value, seconds, .. } => write!(f, "wait until its config has {key}: {value} (at most {seconds} s)"),
            Then::Agent { seconds, .. } => write!(f, "wait for the guest agent (at most {seconds} s)"),
            Then::Arrived { node, seconds, .. } => write!(f, "wait until HA has moved it to {node} (at most {seconds} s)"),
            Then::Pause { seconds } => write!(f, "wait {seconds} s (boot_delay)"),
        }
    }
}

/// Where a positional edit's `digest` comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "from", rename_all = "kebab-case")]
pub enum Guard {
    /// The list's digest as observed (the step's first write to the list).
    Observed { digest: String },
    /// Re-read the list (`list`, a GET path) just before: it must hold exactly `expected`,
    /// the result of phoenix's own earlier writes, and its digest goes with the write.
    Reread {
        list: String,
        #[serde(skip)]
        expected: Vec<FwRule>,
    },
}

impl ApiRequest {
    pub fn new(method: Method, path: impl Into<String>, params: Vec<(String, String)>) -> ApiRequest {
        ApiRequest { method, path: path.into(), params, guard: None, then: None }
    }

    /// The request, then a wait.
    pub fn then(mut self, then: Then) -> ApiRequest {
        self.then = Some(then);
        self
    }

    fn guarded(mut self, guard: Guard) -> ApiRequest {
        self.guard = Some(guard);
        self
    }

    /// Remote calls this request costs: a re-read is one more, and a VM config change is a
    /// task whose status is read at least once.
    pub fn calls(&self) -> usize {
        let task = self.method == Method::Post && self.path.contains("/qemu/") && self.path.ends_with("/config");
        1 + usize::from(matches!(self.guard, Some(Guard::Reread { .. }))) + usize::from(task) + usize::from(self.then.is_some())
    }
}

impl std::fmt::Display for ApiRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} {}", self.method, self.path)?;
        for (key, value) in &self.params {
            write!(f, " {key}={value}")?;
        }
        match &self.guard {
            Some(Guard::Observed { digest }) => write!(f, " digest={digest}")?,
            Some(Guard::Reread { .. }) => write!(f, " digest=(re-read)")?,
            None => {}
        }
        match &self.then {
            Some(then) => write!(f, ", then {then}"),
            None => Ok(()),
        }
    }
}

/// Where a firewall lives in the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum FwScope {
    Cluster,
    /// A node's host firewall: the node's index in `Host::nodes` (0: the first node).
    Host(u8),
    Guest(GuestId, GuestKind),
}

impl FwScope {
    pub fn base(&self, node: &str) -> String {
        match self {
            FwScope::Cluster => "/cluster/firewall".to_string(),
            FwScope::Host(_) => format!("/nodes/{node}/firewall"),
            FwScope::Guest(id, kind) => format!("/nodes/{node}/{}/{id}/firewall", guest_segment(*kind)),
        }
    }

    /// `cluster`, `host` (the first node), `host pve2`, `guest 101`: `node` names the node of
    /// a host scope.
    pub fn label(&self, node: &str) -> String {
        match self {
            FwScope::Cluster => "cluster".to_string(),
            FwScope::Host(0) => "host".to_string(),
            FwScope::Host(_) => format!("host {node}"),
            FwScope::Guest(id, _) => format!("guest {id}"),
        }
    }

    /// The name of the node a host scope is for (none for another scope, or an index the
    /// model does not have).
    pub fn host_node<'m>(&self, model: &'m phoenix_model::model::Model) -> Option<&'m str> {
        match self {
            FwScope::Host(i) => model.host.node_names().get(usize::from(*i)).copied(),
            _ => None,
        }
    }

    /// The host scopes of the model's nodes, with each node's name.
    pub fn hosts(model: &phoenix_model::model::Model) -> impl Iterator<Item = (FwScope, &str)> {
        model.host.node_names().into_iter().enumerate().map(|(i, n)| (FwScope::Host(i as u8), n))
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
    let kind = rule.direction.word().to_ascii_lowercase();
    let (action, macro_name) = match &rule.verdict {
        Verdict::Action { macro_name, action } => (action.as_pve().to_string(), macro_name.clone()),
        Verdict::Group(name) | Verdict::Invalid(name) => (name.clone(), None),
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
    // The API lists only rules pve-firewall parsed, so the type is IN, OUT or GROUP
    // (`parse_fw_rule`); anything else is kept as an unreadable IN rule that matches nothing.
    let kind = text(value, "type").unwrap_or_default();
    let action = text(value, "action").unwrap_or_default();
    let (direction, verdict) = match Direction::parse(&kind) {
        Some(direction) => {
            let word = match text(value, "macro") {
                Some(name) if direction != Direction::Group => format!("{name}({action})"),
                _ => action,
            };
            (direction, Verdict::parse(direction, &word))
        }
        None => (Direction::In, Verdict::Invalid(format!("{kind} {action}"))),
    };
    let options = RULE_FIELDS.iter().filter_map(|(file, api)| Some((file.to_string(), text(value, api)?))).collect();
    FwRule { enabled: text(value, "enable").is_none_or(|e| e != "0"), direction, verdict, options, comment: text(value, "comment") }
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

/// The digest a rule list's entries carry (`copy_list_with_digest`: the same on every entry);
/// `None` for an empty list.
pub fn list_digest(list: &Value) -> Option<String> {
    list.as_array()?.first()?.get("digest")?.as_str().map(str::to_string)
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

/// Requests that turn the `observed` rule list at `path` (whose digest was `digest`) into
/// `desired`, keeping first-match order right at every step. An empty list is filled in reverse
/// (each new rule lands on top). Otherwise the cheaper of two edits: position by position
/// (differing rules replaced in place, missing ones inserted, surplus ones deleted from the
/// end), or keeping the longest run of rules both lists share in order and deleting and
/// inserting around it (one rule added on top in the GUI costs one delete, not an edit of
/// every rule below it).
pub fn rules_requests(path: &str, desired: &[FwRule], observed: &[FwRule], digest: Option<&str>) -> Vec<ApiRequest> {
    if observed.is_empty() {
        return desired.iter().rev().map(|rule| ApiRequest::new(Method::Post, path, rule_params(rule))).collect();
    }
    let positional = positional_edit(path, desired, observed, digest);
    let Some(shared) = shared_edit(path, desired, observed, digest) else { return positional };
    let calls = |requests: &[ApiRequest]| requests.iter().map(ApiRequest::calls).sum::<usize>();
    if calls(&shared) < calls(&positional) {
        shared
    } else {
        positional
    }
}

/// A rule list being edited: the requests so far and the list they leave (phoenix's model of
/// its own writes, which each re-read must find).
struct ListEdit<'p> {
    path: &'p str,
    digest: Option<&'p str>,
    list: Vec<FwRule>,
    requests: Vec<ApiRequest>,
    wrote: bool,
}

impl<'p> ListEdit<'p> {
    fn new(path: &'p str, observed: &[FwRule], digest: Option<&'p str>) -> ListEdit<'p> {
        ListEdit { path, digest, list: observed.to_vec(), requests: Vec::new(), wrote: false }
    }

    /// The digest of a positional write: the observed one first, re-read after any write.
    fn guard(&mut self) -> Guard {
        let guard = match (self.wrote, self.digest) {
            (false, Some(digest)) => Guard::Observed { digest: digest.to_string() },
            _ => Guard::Reread { list: self.path.to_string(), expected: self.list.clone() },
        };
        self.wrote = true;
        guard
    }

    fn positional(&mut self, method: Method, pos: usize, params: Vec<(String, String)>) {
        let guard = self.guard();
        self.requests.push(ApiRequest::new(method, format!("{}/{pos}", self.path), params).guarded(guard));
    }

    /// Replaces the rule at `pos` in place, unsetting the fields the new one lacks.
    fn replace(&mut self, pos: usize, rule: &FwRule) {
        let mut params = rule_params(rule);
        let kept: Vec<&str> = params.iter().map(|(k, _)| k.as_str()).collect();
        let cleared: Vec<&str> =
            rule_params(&self.list[pos]).iter().map(|(k, _)| k.as_str()).filter(|k| !kept.contains(k)).map(clear_name).collect();
        if !cleared.is_empty() {
            params.push(pair("delete", cleared.join(",")));
        }
        self.positional(Method::Put, pos, params);
        self.list[pos] = rule.clone();
    }

    /// Inserts `rule` at `pos`: created on top without `enable` (stored disabled, so it matches
    /// nothing there), moved in front of the rule now at `pos` (`moveto` counts positions before
    /// the move), then enabled.
    fn insert(&mut self, pos: usize, rule: &FwRule) {
        let params: Vec<(String, String)> = rule_params(rule).into_iter().filter(|(k, _)| k != "enable").collect();
        self.requests.push(ApiRequest::new(Method::Post, self.path, params));
        self.wrote = true;
        self.list.insert(0, FwRule { enabled: false, ..rule.clone() });
        if pos > 0 {
            self.positional(Method::Put, 0, vec![pair("moveto", (pos + 1).to_string())]);
            let moved = self.list.remove(0);
            self.list.insert(pos, moved);
        }
        if rule.enabled {
            self.positional(Method::Put, pos, vec![pair("enable", "1")]);
            self.list[pos].enabled = true;
        }
    }

    fn delete(&mut self, pos: usize) {
        self.positional(Method::Delete, pos, Vec::new());
        self.list.remove(pos);
    }
}

fn positional_edit(path: &str, desired: &[FwRule], observed: &[FwRule], digest: Option<&str>) -> Vec<ApiRequest> {
    let mut edit = ListEdit::new(path, observed, digest);
    for (pos, rule) in desired.iter().enumerate().take(observed.len()) {
        if edit.list[pos] != *rule {
            edit.replace(pos, rule);
        }
    }
    for (pos, rule) in desired.iter().enumerate().skip(observed.len()) {
        edit.insert(pos, rule);
    }
    for pos in (desired.len()..observed.len()).rev() {
        edit.delete(pos);
    }
    edit.requests
}

/// Above this many rule pairs, the shared-run edit is not considered (it is quadratic).
const SHARED_EDIT_LIMIT: usize = 4_000_000;

/// Deletes the observed rules outside the longest common subsequence (from the end), then
/// inserts the desired ones outside it, in order.
fn shared_edit(path: &str, desired: &[FwRule], observed: &[FwRule], digest: Option<&str>) -> Option<Vec<ApiRequest>> {
    if desired.len().saturating_mul(observed.len()) > SHARED_EDIT_LIMIT {
        return None;
    }
    let (n, m) = (observed.len(), desired.len());
    // lengths[i][j]: the longest shared run of observed[i..] and desired[j..].
    let mut lengths = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lengths[i][j] = if observed[i] == desired[j] { lengths[i + 1][j + 1] + 1 } else { lengths[i + 1][j].max(lengths[i][j + 1]) };
        }
    }
    let (mut kept_observed, mut kept_desired) = (vec![false; n], vec![false; m]);
    let (mut i, mut j) = (0, 0);
    while i < n && j < m {
        if observed[i] == desired[j] {
            kept_observed[i] = true;
            kept_desired[j] = true;
            i += 1;
            j += 1;
        } else if lengths[i + 1][j] >= lengths[i][j + 1] {
            i += 1;
        } else {
            j += 1;
        }
    }
    let mut edit = ListEdit::new(path, observed, digest);
    for pos in (0..n).rev().filter(|p| !kept_observed[*p]) {
        edit.delete(pos);
    }
    for (pos, rule) in desired.iter().enumerate().filter(|(p, _)| !kept_desired[*p]) {
        edit.insert(pos, rule);
    }
    Some(edit.requests)
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
pub fn reference_requests(
    scope: FwScope,
    node: &str,
    desired: &FwFile,
    observed: &FwFile,
    digests: &BTreeMap<String, String>,
) -> Vec<ApiRequest> {
    let base = scope.base(node);
    let mut requests = Vec::new();
    for alias in &desired.aliases {
        // pve-firewall keeps an alias's spelling and finds it in any case.
        match observed.aliases.iter().find(|a| a.name.eq_ignore_ascii_case(&alias.name)) {
            Some(current) if current.cidr == alias.cidr && current.comment == alias.comment => {}
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
            let nomatch = pair("nomatch", if entry.negated { "1" } else { "0" });
            if have.iter().any(|h| h.cidr == entry.cidr) {
                // IPSet.pm update_ip: sets `nomatch` and `comment` both (one not sent is cleared).
                let mut params = vec![nomatch];
                params.extend(comment_param(&entry.comment));
                requests.push(ApiRequest::new(Method::Put, format!("{base}/ipset/{}/{}", set.name, cidr_segment(&entry.cidr)), params));
                continue;
            }
            let mut params = vec![pair("cidr", entry.cidr.clone()), nomatch];
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
        let path = format!("/cluster/firewall/groups/{}", group.name);
        requests.extend(rules_requests(&path, &group.rules, have, digests.get(&path).map(String::as_str)));
    }
    requests
}

/// References no longer wanted, removed once no rule uses them (after the rules changed).
pub fn cleanup_requests(
    scope: FwScope,
    node: &str,
    desired: &FwFile,
    observed: &FwFile,
    digests: &BTreeMap<String, String>,
) -> Vec<ApiRequest> {
    let base = scope.base(node);
    let mut requests = Vec::new();
    for group in observed.groups.iter().filter(|g| !desired.groups.iter().any(|d| d.name == g.name)) {
        // pve-firewall refuses to delete a group that still has rules.
        let path = format!("/cluster/firewall/groups/{}", group.name);
        requests.extend(rules_requests(&path, &[], &group.rules, digests.get(&path).map(String::as_str)));
        requests.push(ApiRequest::new(Method::Delete, path, Vec::new()));
    }
    for set in observed.ipsets.iter().filter(|s| !desired.ipsets.iter().any(|d| d.name == s.name)) {
        // IPSet.pm delete_ipset: `force` deletes the members too (without it, a non-empty set is refused).
        let force = if set.entries.is_empty() { Vec::new() } else { vec![pair("force", "1")] };
        requests.push(ApiRequest::new(Method::Delete, format!("{base}/ipset/{}", set.name), force));
    }
    for alias in observed.aliases.iter().filter(|a| !desired.aliases.iter().any(|d| d.name.eq_ignore_ascii_case(&a.name))) {
        requests.push(ApiRequest::new(Method::Delete, format!("{base}/aliases/{}", alias.name), Vec::new()));
    }
    requests
}

/// A `net0` value's parts in order: `key` and, when given, `value` (`virtio` alone has none).
fn nic_parts(value: &str) -> Vec<(String, Option<String>)> {
    value
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (p.to_string(), None),
        })
        .collect()
}

/// NIC model keys of a qemu `net0` (`$nic_model_list`, qemu-server Network.pm): their value is the MAC.
const NIC_MODELS: &[&str] = &[
    "e1000",
    "e1000-82540em",
    "e1000-82544gc",
    "e1000-82545em",
    "e1000e",
    "i82551",
    "i82557b",
    "i82559er",
    "ne2k_isa",
    "ne2k_pci",
    "pcnet",
    "rtl8139",
    "virtio",
    "vmxnet3",
];

/// The `net0` to write, if the observed one differs from the rendered one in a key phoenix
/// owns (a key the rendered value states; a model without a MAC owns the model only): the
/// observed value with those keys set, everything else (the MAC, a VLAN tag, an MTU, ...)
/// as it is. `None` when nothing phoenix owns differs.
pub fn nic_update(observed: Option<&str>, rendered: &str) -> Option<String> {
    let Some(observed) = observed else { return Some(rendered.to_string()) };
    let mut parts = nic_parts(observed);
    let mut changed = false;
    for (key, value) in nic_parts(rendered) {
        if NIC_MODELS.contains(&key.as_str()) {
            // The model key carries the MAC: keep the observed MAC unless one is rendered.
            let current = parts.iter().position(|(k, _)| NIC_MODELS.contains(&k.as_str()));
            let mac = value.clone().or_else(|| current.and_then(|i| parts[i].1.clone()));
            match current {
                Some(i) if parts[i].0 == key && (value.is_none() || parts[i].1 == value) => {}
                Some(i) => {
                    parts[i] = (key, mac);
                    changed = true;
                }
                None => {
                    parts.insert(0, (key, mac));
                    changed = true;
                }
            }
            continue;
        }
        match parts.iter_mut().find(|(k, _)| *k == key) {
            Some(part) if part.1 == value => {}
            Some(part) => {
                part.1 = value;
                changed = true;
            }
            None => {
                parts.push((key, value));
                changed = true;
            }
        }
    }
    changed.then(|| parts.iter().map(|(k, v)| v.as_ref().map_or_else(|| k.clone(), |v| format!("{k}={v}"))).collect::<Vec<_>>().join(","))
}

/// One NIC whose owned keys differ: its key, the value as observed, the value to set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NicChange {
    pub key: String,
    pub observed: Option<String>,
    pub value: String,
}

impl NicChange {
    pub fn diff(&self) -> String {
        format!("- {}: {}\n+ {}: {}\n", self.key, self.observed.as_deref().unwrap_or("(none)"), self.key, self.value)
    }
}

/// The rendered NICs whose owned keys differ from what is observed (each edited as
/// [`nic_update`] does), in key order.
pub fn nic_changes(observed: Option<&BTreeMap<String, String>>, rendered: &BTreeMap<&str, &str>) -> Vec<NicChange> {
    rendered
        .iter()
        .filter_map(|(key, value)| {
            let current = observed.and_then(|o| o.get(*key)).cloned();
            let value = nic_update(current.as_deref(), value)?;
            Some(NicChange { key: key.to_string(), observed: current, value })
        })
        .collect()
}

/// The request that sets a guest's NICs (LXC: `PUT .../config`, synchronous; VM: `POST
/// .../config`, which returns a task UPID to wait for).
pub fn nic_request(node: &str, id: GuestId, kind: GuestKind, changes: &[NicChange]) -> ApiRequest {
    let method = match kind {
        GuestKind::Lxc => Method::Put,
        GuestKind::Vm => Method::Post,
    };
    let params = changes.iter().map(|c| pair(&c.key, &c.value)).collect();
    ApiRequest::new(method, format!("/nodes/{node}/{}/{id}/config", guest_segment(kind)), params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pve_fw::parse_rule;

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

    fn rules(lines: &[&str]) -> Vec<FwRule> {
        lines.iter().map(|l| parse_rule(l).unwrap()).collect()
    }

    fn shown(requests: &[ApiRequest]) -> Vec<String> {
        requests.iter().map(|r| r.to_string()).collect()
    }

    #[test]
    fn rules_are_replaced_in_place_and_trimmed_with_the_lists_digest() {
        let observed = rules(&["IN ACCEPT -p tcp -dport 22 # ssh", "IN ACCEPT -p tcp -dport 80", "IN DROP", "IN DROP -p udp"]);
        let desired = rules(&["IN ACCEPT -p tcp -dport 22 # ssh", "IN ACCEPT -p tcp -dport 443"]);
        assert_eq!(
            shown(&rules_requests("/cluster/firewall/rules", &desired, &observed, Some("d1"))),
            [
                "Put /cluster/firewall/rules/1 type=in action=ACCEPT enable=1 proto=tcp dport=443 digest=d1",
                "Delete /cluster/firewall/rules/3 digest=(re-read)",
                "Delete /cluster/firewall/rules/2 digest=(re-read)",
            ]
        );
        let cleared = rules_requests("/r", &rules(&["IN ACCEPT"]), &rules(&["IN ACCEPT -p tcp # x"]), Some("d"));
        assert_eq!(cleared[0].to_string(), "Put /r/0 type=in action=ACCEPT enable=1 delete=proto,comment digest=d");
        assert!(rules_requests("/r", &desired, &desired, Some("d")).is_empty());
    }

    #[test]
    fn an_empty_list_is_filled_in_reverse_and_a_new_rule_is_placed_disabled() {
        let desired = rules(&["IN ACCEPT -p tcp -dport 22", "IN DROP"]);
        assert_eq!(
            shown(&rules_requests("/r", &desired, &[], None)),
            ["Post /r type=in action=DROP enable=1", "Post /r type=in action=ACCEPT enable=1 proto=tcp dport=22"],
            "POST puts each rule on top"
        );
        let grown = rules_requests("/r", &desired, &desired[..1], Some("d"));
        assert_eq!(
            shown(&grown),
            ["Post /r type=in action=DROP", "Put /r/0 moveto=2 digest=(re-read)", "Put /r/1 enable=1 digest=(re-read)"]
        );
        // A rule inserted on top (as the GUI does) is one delete, not an edit of every position.
        let gui = rules(&["IN ACCEPT # from the GUI", "IN ACCEPT -p tcp -dport 22", "IN DROP"]);
        assert_eq!(shown(&rules_requests("/r", &desired, &gui, Some("d"))), ["Delete /r/0 digest=d"]);
        // A rule missing in the middle is inserted there.
        let middle = rules(&["IN ACCEPT -p tcp -dport 22", "IN ACCEPT -p tcp -dport 80", "IN DROP"]);
        let holed = [middle[0].clone(), middle[2].clone()];
        assert_eq!(
            shown(&rules_requests("/r", &middle, &holed, Some("d"))),
            [
                "Post /r type=in action=ACCEPT proto=tcp dport=80",
                "Put /r/0 moveto=2 digest=(re-read)",
                "Put /r/1 enable=1 digest=(re-read)"
            ]
        );
        // The re-read before the move expects the new rule on top, disabled.
        let Some(Guard::Reread { expected, .. }) = &grown[1].guard else { panic!("a re-read") };
        assert_eq!((expected.len(), expected[0].enabled, expected[0].verdict.to_string()), (2, false, "DROP".to_string()));
    }

    #[test]
    fn a_nic_keeps_its_mac_and_the_keys_phoenix_does_not_own() {
        let observed = "virtio=BC:24:11:00:00:01,bridge=vmbr0,queues=4,tag=20";
        assert_eq!(
            nic_update(Some(observed), "virtio,bridge=vmbr0,firewall=1").as_deref(),
            Some("virtio=BC:24:11:00:00:01,bridge=vmbr0,queues=4,tag=20,firewall=1")
        );
        assert_eq!(nic_update(Some(&format!("{observed},firewall=1")), "virtio,bridge=vmbr0,firewall=1"), None, "nothing owned differs");
        assert_eq!(
            nic_update(Some(observed), "e1000,bridge=vmbr0").as_deref(),
            Some("e1000=BC:24:11:00:00:01,bridge=vmbr0,queues=4,tag=20")
        );
        let lxc = "name=eth0,bridge=vmbr0,hwaddr=BC:24:11:AA:BB:CC,ip=10.0.0.11/24,mtu=1450,type=veth";
        assert_eq!(
            nic_update(Some(lxc), "name=eth0,bridge=vmbr0,firewall=1,ip=10.0.0.11/24,type=veth").as_deref(),
            Some("name=eth0,bridge=vmbr0,hwaddr=BC:24:11:AA:BB:CC,ip=10.0.0.11/24,mtu=1450,type=veth,firewall=1")
        );
        assert_eq!(nic_update(None, "virtio,bridge=vmbr0").as_deref(), Some("virtio,bridge=vmbr0"));
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
