//! The firewall endpoints, handler by handler, as pve-firewall's API modules implement them
//! (`src/PVE/API2/Firewall/{Rules,Aliases,IPSet,Groups,Cluster,Host,VM}.pm`): what each loads,
//! checks (digests with `PVE::Tools::assert_if_modified`), changes and returns, and which
//! refusals are parameter exceptions (400) and which a plain `die` (500). Every change is a
//! rewrite of the scope's file, so the next read sees the parser's view of it.

use super::rule::{self, Refusal, Rule, RuleEnv};
use super::{addr, list_digest, object_digest, Alias, FwConf, FwKind, IpsetEntry};
use crate::pve::{Failure, Params, Store};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Whose file a request addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Cluster,
    Host(String),
    Guest(u32, RuleEnv),
}

impl Scope {
    fn path(&self) -> String {
        match self {
            Scope::Cluster => "firewall/cluster.fw".into(),
            Scope::Host(node) => format!("nodes/{node}/host.fw"),
            Scope::Guest(vmid, _) => format!("firewall/{vmid}.fw"),
        }
    }

    fn kind(&self) -> FwKind {
        match self {
            Scope::Cluster => FwKind::Cluster,
            Scope::Host(_) => FwKind::Host,
            Scope::Guest(_, env) => FwKind::Guest(*env),
        }
    }

    fn env(&self) -> RuleEnv {
        match self {
            Scope::Cluster => RuleEnv::Cluster,
            Scope::Host(_) => RuleEnv::Host,
            Scope::Guest(_, env) => *env,
        }
    }
}

/// The rule lists a rules endpoint addresses: a scope's `[RULES]` or a security group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleList {
    Scope(Scope),
    Group(String),
}

fn die<T>(message: impl Into<String>) -> Result<T, Failure> {
    Err(Failure::Die(message.into()))
}

fn param<T>(key: &str, message: impl Into<String>) -> Result<T, Failure> {
    Err(Failure::Param(BTreeMap::from([(key.to_string(), message.into())])))
}

/// `PVE::Tools::assert_if_modified`: only when both digests are given (a plain die).
fn assert_if_modified(current: &str, given: Option<&String>) -> Result<(), Failure> {
    match given {
        Some(given) if !given.is_empty() && !current.is_empty() && given != current => {
            die("detected modified configuration - file changed by other user? Try again.")
        }
        _ => Ok(()),
    }
}

fn load(store: &dyn Store, scope: &Scope) -> (FwConf, Option<FwConf>) {
    let cluster = FwConf::parse(&store.read("firewall/cluster.fw").unwrap_or_default(), FwKind::Cluster, None).0;
    match scope {
        Scope::Cluster => (cluster, None),
        other => (FwConf::parse(&store.read(&other.path()).unwrap_or_default(), other.kind(), Some(&cluster)).0, Some(cluster)),
    }
}

fn save(store: &mut dyn Store, scope: &Scope, conf: &FwConf) {
    store.write(&scope.path(), &conf.to_text(scope.kind()));
}

fn rule_json(rule: &Rule, digest: &str, pos: Option<usize>) -> Value {
    let mut object: Map<String, Value> = rule.keys.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
    if !rule.errors.is_empty() {
        object.insert("errors".into(), json!(rule.errors));
    }
    object.insert("digest".into(), Value::String(digest.into()));
    if let Some(pos) = pos {
        object.insert("pos".into(), json!(pos));
    }
    Value::Object(object)
}

fn rules_of<'c>(conf: &'c mut FwConf, list: &RuleList) -> Result<&'c mut Vec<Rule>, Failure> {
    match list {
        RuleList::Scope(_) => Ok(&mut conf.rules),
        // GroupRules::load_config.
        RuleList::Group(name) => match conf.groups.get_mut(name) {
            Some(rules) => Ok(rules),
            None => die(format!("no such security group '{name}'")),
        },
    }
}

fn list_scope(list: &RuleList) -> Scope {
    match list {
        RuleList::Scope(scope) => scope.clone(),
        RuleList::Group(_) => Scope::Cluster,
    }
}

fn list_env(list: &RuleList) -> RuleEnv {
    match list {
        RuleList::Scope(scope) => scope.env(),
        RuleList::Group(_) => RuleEnv::Group,
    }
}

/// The strict `verify_rule` of an API write: the first refusal.
fn verify_strict(rule: &mut Rule, env: RuleEnv, conf: &FwConf, cluster: Option<&FwConf>) -> Result<(), Failure> {
    let cluster = cluster.unwrap_or(conf);
    let tables = super::NameTables {
        cluster_aliases: Some(cluster.alias_versions()),
        local_aliases: conf.alias_versions(),
        cluster_ipsets: Some(cluster.ipset_names()),
        local_ipsets: conf.ipset_names(),
    };
    match rule::verify(rule, env, &tables.names()) {
        Ok(()) => Ok(()),
        Err(refusals) => match refusals.into_iter().next() {
            Some(Refusal::Param(key, message)) => param(&key, message),
            Some(Refusal::Die(message)) => die(message),
            None => Ok(()),
        },
    }
}

/// `RulesBase`: GET/POST on a list, GET/PUT/DELETE on one position.
pub fn rules(store: &mut dyn Store, list: &RuleList, method: &str, pos: Option<usize>, params: &Params) -> Result<Value, Failure> {
    let scope = list_scope(list);
    let (mut conf, cluster) = load(store, &scope);
    let digest = list_digest(rules_of(&mut conf, list)?.iter().map(|r| &r.keys));
    match (method, pos) {
        ("GET", None) => {
            let rules = rules_of(&mut conf, list)?;
            Ok(Value::Array(rules.iter().enumerate().map(|(i, r)| rule_json(r, &digest, Some(i))).collect()))
        }
        ("GET", Some(pos)) => {
            let rules = rules_of(&mut conf, list)?;
            match rules.get(pos) {
                Some(rule) => Ok(rule_json(rule, &digest, Some(pos))),
                None => die(format!("no rule at position {pos}")),
            }
        }
        // create_rule: `pos` and `digest` are accepted and ignored; the rule goes on top,
        // disabled unless `enable` is given.
        ("POST", None) => {
            let mut rule = Rule::default();
            rule::copy_data(&mut rule, params);
            rule.keys.remove("pos");
            rule.keys.remove("digest");
            verify_strict(&mut rule, list_env(list), &conf, cluster.as_ref())?;
            if !params.contains_key("enable") {
                rule.keys.insert("enable".into(), "0".into());
            }
            rules_of(&mut conf, list)?.insert(0, rule);
            save(store, &scope, &conf);
            Ok(Value::Null)
        }
        ("PUT", Some(pos)) => {
            assert_if_modified(&digest, params.get("digest"))?;
            let Some(current) = rules_of(&mut conf, list)?.get(pos).cloned() else { return die(format!("no rule at position {pos}")) };
            match params.get("moveto").and_then(|m| m.parse::<usize>().ok()).filter(|m| *m != pos) {
                Some(moveto) => move_rule(rules_of(&mut conf, list)?, pos, moveto),
                None => {
                    let mut rule = current;
                    rule::copy_data(&mut rule, params);
                    rule.keys.remove("pos");
                    rule.keys.remove("digest");
                    if let Some(delete) = params.get("delete").filter(|d| !d.is_empty()) {
                        if let Err((key, message)) = rule::delete_properties(&mut rule, delete) {
                            return param(&key, message);
                        }
                    }
                    verify_strict(&mut rule, list_env(list), &conf, cluster.as_ref())?;
                    rules_of(&mut conf, list)?[pos] = rule;
                }
            }
            save(store, &scope, &conf);
            Ok(Value::Null)
        }
        ("DELETE", Some(pos)) => {
            assert_if_modified(&digest, params.get("digest"))?;
            let rules = rules_of(&mut conf, list)?;
            if pos >= rules.len() {
                return die(format!("no rule at position {pos}"));
            }
            rules.remove(pos);
            save(store, &scope, &conf);
            Ok(Value::Null)
        }
        _ => Err(Failure::NotImplemented),
    }
}

/// `update_rule` with `moveto`: out of the list, then in front of the rule that had index
/// `moveto` (so moving down lands at `moveto - 1`), or at the end when `moveto >= count`.
fn move_rule(rules: &mut Vec<Rule>, pos: usize, moveto: usize) {
    let moved = rules[pos].clone();
    let mut reordered = Vec::with_capacity(rules.len());
    for (i, rule) in rules.iter().enumerate() {
        if i == pos {
            continue;
        }
        if i == moveto {
            reordered.push(moved.clone());
        }
        reordered.push(rule.clone());
    }
    if moveto >= rules.len() {
        reordered.push(moved);
    }
    *rules = reordered;
}

/// `Groups.pm`: list and create security groups; GroupRules' delete.
pub fn groups(store: &mut dyn Store, method: &str, group: Option<&str>, params: &Params) -> Result<Value, Failure> {
    let (mut conf, _) = load(store, &Scope::Cluster);
    match (method, group) {
        ("GET", None) => {
            let entries = name_list("group", conf.groups.keys(), &conf.group_comments);
            let digest = list_digest(&entries);
            Ok(Value::Array(entries.iter().map(|e| with_digest(e, &digest)).collect()))
        }
        ("POST", None) => {
            if params.contains_key("rename") {
                return Err(Failure::NotImplemented);
            }
            let name = params.get("group").cloned().unwrap_or_default();
            if conf.groups.contains_key(&name) {
                return param("group", format!("Security group '{name}' already exists"));
            }
            conf.groups.insert(name.clone(), Vec::new());
            if let Some(comment) = params.get("comment") {
                conf.group_comments.insert(name, comment.clone());
            }
            save(store, &Scope::Cluster, &conf);
            Ok(Value::Null)
        }
        ("DELETE", Some(name)) => {
            match conf.groups.get(name) {
                None => return die(format!("no such security group '{name}'")),
                Some(rules) if !rules.is_empty() => return die(format!("Security group '{name}' is not empty")),
                Some(_) => {}
            }
            conf.groups.remove(name);
            conf.group_comments.remove(name);
            save(store, &Scope::Cluster, &conf);
            Ok(Value::Null)
        }
        _ => Err(Failure::NotImplemented),
    }
}

/// The list of security groups or ipsets as their index returns it: `{<key>: name, comment?}`
/// each, by name (the digest is computed over these).
fn name_list<'n>(key: &str, names: impl Iterator<Item = &'n String>, comments: &BTreeMap<String, String>) -> Vec<BTreeMap<String, String>> {
    names
        .map(|name| {
            let mut entry = BTreeMap::from([(key.to_string(), name.clone())]);
            if let Some(comment) = comments.get(name) {
                entry.insert("comment".into(), comment.clone());
            }
            entry
        })
        .collect()
}

fn with_digest(entry: &BTreeMap<String, String>, digest: &str) -> Value {
    let mut object: Map<String, Value> = entry.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
    object.insert("digest".into(), Value::String(digest.into()));
    Value::Object(object)
}

fn alias_entry(alias: &Alias) -> BTreeMap<String, String> {
    let mut entry = BTreeMap::from([
        ("name".to_string(), alias.name.clone()),
        ("cidr".to_string(), alias.cidr.clone()),
        ("ipversion".to_string(), alias.ipversion.to_string()),
    ]);
    if let Some(comment) = &alias.comment {
        entry.insert("comment".into(), comment.clone());
    }
    entry
}

/// A comment as the handlers store it: only when truthy.
fn truthy_comment(params: &Params) -> Option<String> {
    params.get("comment").filter(|c| !c.is_empty() && *c != "0").cloned()
}

/// `Aliases.pm`.
pub fn aliases(store: &mut dyn Store, scope: &Scope, method: &str, name: Option<&str>, params: &Params) -> Result<Value, Failure> {
    let (mut conf, _) = load(store, scope);
    let entries: Vec<BTreeMap<String, String>> = conf.aliases.values().map(alias_entry).collect();
    let digest = list_digest(&entries);
    match (method, name) {
        ("GET", None) => Ok(Value::Array(entries.iter().map(|e| with_digest(e, &digest)).collect())),
        ("POST", None) => {
            let name = params.get("name").cloned().unwrap_or_default();
            if conf.aliases.contains_key(&name.to_ascii_lowercase()) {
                return param("name", format!("alias '{name}' already exists"));
            }
            // Stored as sent: only the next read drops a /32.
            let cidr = params.get("cidr").cloned().unwrap_or_default();
            conf.aliases.insert(name.to_ascii_lowercase(), Alias { name, cidr, ipversion: 0, comment: truthy_comment(params) });
            save(store, scope, &conf);
            Ok(Value::Null)
        }
        ("GET", Some(name)) => match conf.aliases.get(&name.to_ascii_lowercase()) {
            Some(alias) => Ok(Value::Object(alias_entry(alias).into_iter().map(|(k, v)| (k, Value::String(v))).collect())),
            None => param("name", "no such alias"),
        },
        ("PUT", Some(name)) => {
            assert_if_modified(&digest, params.get("digest"))?;
            let key = name.to_ascii_lowercase();
            if !conf.aliases.contains_key(&key) {
                return param("name", "no such alias");
            }
            let cidr = params.get("cidr").cloned().unwrap_or_default();
            let replaced = Alias { name: name.to_string(), cidr, ipversion: 0, comment: truthy_comment(params) };
            match params.get("rename").filter(|r| r.to_ascii_lowercase() != key) {
                Some(rename) => {
                    if conf.aliases.contains_key(&rename.to_ascii_lowercase()) {
                        return param("name", format!("alias '{rename}' already exists"));
                    }
                    conf.aliases.remove(&key);
                    conf.aliases.insert(rename.to_ascii_lowercase(), Alias { name: rename.clone(), ..replaced });
                }
                None => {
                    conf.aliases.insert(key, replaced);
                }
            }
            save(store, scope, &conf);
            Ok(Value::Null)
        }
        ("DELETE", Some(name)) => {
            assert_if_modified(&digest, params.get("digest"))?;
            conf.aliases.remove(&name.to_ascii_lowercase());
            save(store, scope, &conf);
            Ok(Value::Null)
        }
        _ => Err(Failure::NotImplemented),
    }
}

fn ipset_entry_keys(entry: &IpsetEntry) -> BTreeMap<String, String> {
    let mut keys = BTreeMap::from([("cidr".to_string(), entry.cidr.clone())]);
    if entry.nomatch {
        keys.insert("nomatch".into(), "1".into());
    }
    if let Some(comment) = &entry.comment {
        keys.insert("comment".into(), comment.clone());
    }
    keys
}

fn ipset_entry_json(entry: &IpsetEntry, digest: &str) -> Value {
    let mut value = with_digest(&ipset_entry_keys(entry), digest);
    if !entry.errors.is_empty() {
        value["errors"] = json!(entry.errors);
    }
    value
}

/// `IPSet.pm`: the list of sets, one set's entries, one entry.
pub fn ipsets(
    store: &mut dyn Store,
    scope: &Scope,
    method: &str,
    name: Option<&str>,
    cidr: Option<&str>,
    params: &Params,
) -> Result<Value, Failure> {
    let (mut conf, cluster) = load(store, scope);
    let Some(name) = name else {
        let entries = name_list("name", conf.ipsets.keys(), &conf.ipset_comments);
        let digest = list_digest(&entries);
        return match method {
            "GET" => Ok(Value::Array(entries.iter().map(|e| with_digest(e, &digest)).collect())),
            "POST" if params.contains_key("rename") => Err(Failure::NotImplemented),
            "POST" => {
                let new = params.get("name").cloned().unwrap_or_default();
                if conf.ipsets.contains_key(&new) {
                    return param("name", format!("IPSet '{new}' already exists"));
                }
                conf.ipsets.insert(new.clone(), Vec::new());
                if let Some(comment) = params.get("comment") {
                    conf.ipset_comments.insert(new, comment.clone());
                }
                save(store, scope, &conf);
                Ok(Value::Null)
            }
            _ => Err(Failure::NotImplemented),
        };
    };
    if !conf.ipsets.contains_key(name) {
        return die(format!("no such IPSet '{name}'"));
    }
    if method == "DELETE" && cidr.is_none() {
        if !conf.ipsets[name].is_empty() && params.get("force").is_none_or(|f| f != "1") {
            return die(format!("IPSet '{name}' is not empty"));
        }
        conf.ipsets.remove(name);
        conf.ipset_comments.remove(name);
        save(store, scope, &conf);
        return Ok(Value::Null);
    }
    let keys: Vec<BTreeMap<String, String>> = conf.ipsets[name].iter().map(ipset_entry_keys).collect();
    let digest = list_digest(&keys);
    match (method, cidr) {
        ("GET", None) => Ok(Value::Array(conf.ipsets[name].iter().map(|e| ipset_entry_json(e, &digest)).collect())),
        ("POST", None) => {
            let given = params.get("cidr").cloned().unwrap_or_default();
            let scoped = given.strip_prefix("dc/").or_else(|| given.strip_prefix("guest/")).unwrap_or(&given);
            let stored = if phoenix_model::pve::fw_names::matches_pattern(scoped) {
                let alias = scoped.to_ascii_lowercase();
                let dc = given.starts_with("dc/");
                let guest = given.starts_with("guest/");
                let local = !dc && conf.aliases.contains_key(&alias);
                let in_cluster = !guest && cluster.as_ref().unwrap_or(&conf).aliases.contains_key(&alias);
                if !local && !in_cluster {
                    return die(format!("no such alias '{alias}'"));
                }
                given.clone()
            } else {
                addr::parse_ip_or_cidr(&addr::clean_cidr(&given)).map_err(Failure::Die)?.0
            };
            let entries = conf.ipsets.get_mut(name).expect("checked above");
            if entries.iter().any(|e| e.cidr == stored) {
                return param("cidr", format!("address '{stored}' already exists"));
            }
            if stored.rsplit_once('/').is_some_and(|(_, len)| !len.is_empty() && len.bytes().all(|b| b == b'0')) {
                return param("cidr", "a zero prefix is not allowed in ipset entries");
            }
            let nomatch = params.get("nomatch").is_some_and(|n| n == "1");
            entries.insert(0, IpsetEntry { cidr: stored, nomatch, comment: truthy_comment(params), errors: BTreeMap::new() });
            save(store, scope, &conf);
            Ok(Value::Null)
        }
        // The path's address is compared as written, not normalised.
        ("GET", Some(cidr)) => match conf.ipsets[name].iter().find(|e| e.cidr == cidr) {
            Some(entry) => Ok(ipset_entry_json(entry, &digest)),
            None => param("cidr", "no such IP/Network"),
        },
        ("PUT", Some(cidr)) => {
            assert_if_modified(&digest, params.get("digest"))?;
            let entries = conf.ipsets.get_mut(name).expect("checked above");
            let Some(entry) = entries.iter_mut().find(|e| e.cidr == cidr) else { return param("cidr", "no such IP/Network") };
            entry.nomatch = params.get("nomatch").is_some_and(|n| n == "1");
            entry.comment = params.get("comment").cloned();
            save(store, scope, &conf);
            Ok(Value::Null)
        }
        ("DELETE", Some(cidr)) => {
            assert_if_modified(&digest, params.get("digest"))?;
            conf.ipsets.get_mut(name).expect("checked above").retain(|e| e.cidr != cidr);
            save(store, scope, &conf);
            Ok(Value::Null)
        }
        _ => Err(Failure::NotImplemented),
    }
}

/// The option keys a scope's `PUT .../options` takes (those of its schema, less bookkeeping).
fn option_keys(schema: &Value) -> Vec<String> {
    let bookkeeping = ["delete", "digest", "node", "vmid"];
    schema["parameters"]["properties"]
        .as_object()
        .map(|p| p.keys().filter(|k| !bookkeeping.contains(&k.as_str())).cloned().collect())
        .unwrap_or_default()
}

/// `get_options` / `set_options` of Cluster.pm, Host.pm and VM.pm.
pub fn options(
    store: &mut dyn Store,
    scope: &Scope,
    method: &str,
    params: &Params,
    definition: &Value,
    now: u64,
) -> Result<Value, Failure> {
    let (mut conf, _) = load(store, scope);
    let digest = object_digest(&conf.options);
    match method {
        "GET" => Ok(with_digest(&conf.options, &digest)),
        "PUT" => {
            assert_if_modified(&digest, params.get("digest"))?;
            let keys = option_keys(definition);
            for name in
                params.get("delete").map(|d| d.split([',', ';', ' ']).filter(|n| !n.is_empty()).collect::<Vec<_>>()).unwrap_or_default()
            {
                if !keys.iter().any(|k| k == name) {
                    return param("delete", format!("no such option '{name}'"));
                }
                conf.options.remove(name);
            }
            for key in &keys {
                let Some(value) = params.get(key) else { continue };
                let value = match (scope, key.as_str()) {
                    // Cluster.pm: an `enable` above 1 is replaced by the time (the anti-lockout
                    // "enable for a while").
                    (Scope::Cluster, "enable") if value.parse::<u64>().is_ok_and(|v| v > 1) => now.to_string(),
                    // Host.pm and VM.pm: `$param->{enable} ? 1 : 0`.
                    (Scope::Host(_) | Scope::Guest(..), "enable") => (if value.is_empty() || value == "0" { "0" } else { "1" }).to_string(),
                    _ => value.clone(),
                };
                conf.options.insert(key.clone(), value);
            }
            save(store, scope, &conf);
            Ok(Value::Null)
        }
        _ => Err(Failure::NotImplemented),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(action: &str) -> Rule {
        Rule {
            keys: BTreeMap::from([("type".to_string(), "in".to_string()), ("action".to_string(), action.to_string())]),
            ..Rule::default()
        }
    }

    fn actions(rules: &[Rule]) -> String {
        rules.iter().map(|r| r.get("action").unwrap_or_default()).collect::<Vec<_>>().join("")
    }

    #[test]
    fn moveto_inserts_before_the_rule_that_had_that_index() {
        let list = || vec![rule("A"), rule("B"), rule("C"), rule("D")];
        let moved = |pos, moveto| {
            let mut rules = list();
            move_rule(&mut rules, pos, moveto);
            actions(&rules)
        };
        assert_eq!(moved(3, 1), "ADBC", "up: lands at moveto");
        assert_eq!(moved(0, 2), "BACD", "down: lands at moveto - 1");
        assert_eq!(moved(0, 3), "BCAD", "count - 1 is not the end");
        assert_eq!(moved(0, 4), "BCDA", "count or more appends");
        assert_eq!(moved(1, 2), "ABCD", "pos + 1 changes nothing");
    }
}
