//! Property strings (`key=value,...`) as pve-common's `PVE::JSONSchema::parse_property_string`
//! reads them and `print_property_string` writes them: a part without `=` belongs to the
//! `default_key`; a `keyAlias` key (a NIC model such as `virtio=<MAC>`) sets its partner key
//! and gives its value to its `alias`; booleans become `1`/`0`; every value is then checked
//! against its sub-schema. Printing puts the default key first (joined with its alias), then
//! required keys, then the rest, each group sorted by name.

use super::{self as jsonschema, Gap};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

fn is_flag(schema: &Value, key: &str) -> bool {
    schema.get(key).is_some_and(|v| v == &Value::from(1) || v == &Value::Bool(true))
}

fn default_key(format: &Map<String, Value>) -> Option<&str> {
    format.iter().find(|(_, s)| is_flag(s, "default_key")).map(|(k, _)| k.as_str())
}

/// Parses `text` (parameter `path`) with the sub-properties `format`; the message is what
/// PVE reports after "invalid format - ".
pub fn parse(format: &Map<String, Value>, text: &str, path: &str, gaps: &mut Vec<Gap>) -> Result<BTreeMap<String, String>, String> {
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    for part in text.split(',').filter(|p| !p.trim().is_empty()) {
        match part.split_once('=') {
            Some((key, value)) if !key.is_empty() && !value.is_empty() => {
                if values.contains_key(key) {
                    return Err(format!("duplicate key in comma-separated list property: {key}\n"));
                }
                // An unknown key is kept here (Perl autovivifies its schema) and refused by
                // the additional-properties check below.
                let Some(schema) = format.get(key) else {
                    values.insert(key.to_string(), value.to_string());
                    continue;
                };
                match (schema.get("keyAlias").and_then(Value::as_str), schema.get("alias").and_then(Value::as_str)) {
                    (Some(partner), Some(alias)) => {
                        if values.contains_key(partner) {
                            return Err(format!("key alias '{partner}' is already defined\n"));
                        }
                        values.insert(partner.to_string(), key.to_string());
                        values.insert(alias.to_string(), value.to_string());
                    }
                    (None, Some(alias)) => {
                        values.insert(alias.to_string(), value.to_string());
                    }
                    // parse_boolean for keyed boolean values (not for the bare default key).
                    _ if schema.get("type").and_then(Value::as_str) == Some("boolean") => {
                        let flag = super::formats::parse_boolean(value).map(str::to_string).unwrap_or_else(|| value.to_string());
                        values.insert(key.to_string(), flag);
                    }
                    _ => {
                        values.insert(key.to_string(), value.to_string());
                    }
                }
            }
            Some(_) => return Err("missing key in comma-separated list property\n".into()),
            None => {
                let Some(key) = default_key(format) else {
                    return Err("value without key, but schema does not define a default key\n".into());
                };
                if values.contains_key(key) {
                    return Err(format!("duplicate key in comma-separated list property: {key}\n"));
                }
                values.insert(key.to_string(), part.to_string());
            }
        }
    }
    let mut errors = Vec::new();
    for (key, schema) in format {
        let optional = is_flag(schema, "optional") || schema.get("alias").is_some();
        if !optional && !values.contains_key(key) {
            errors.push(format!("{path}.{key}: property is missing and it is not optional\n"));
        }
    }
    for (key, text) in values.iter_mut() {
        let Some(schema) = format.get(key.as_str()) else {
            errors.push(format!("{path}.{key}: property is not defined in schema and the schema does not allow additional properties\n"));
            continue;
        };
        let mut value = Value::String(text.clone());
        match jsonschema::check_value(&format!("{path}.{key}"), schema, &mut value, gaps) {
            Ok(()) => *text = jsonschema::scalar(&value).unwrap_or_default(),
            Err(message) => errors.push(format!("{path}.{key}: {message}\n")),
        }
    }
    if errors.is_empty() {
        Ok(values)
    } else {
        Err(format!("format error\n{}", errors.concat()))
    }
}

/// `print_property_string`.
pub fn print(format: &Map<String, Value>, values: &BTreeMap<String, String>) -> String {
    let mut parts = Vec::new();
    let mut done: Vec<&str> = Vec::new();
    if let Some(key) = default_key(format) {
        if let Some(value) = values.get(key) {
            // A key aliased to the default key's value prints as `value=<alias value>`.
            let alias = format.get(value.as_str()).and_then(|s| s.get("alias")).and_then(Value::as_str);
            match alias.and_then(|a| values.get(a).map(|v| (a, v))) {
                Some((alias, aliased)) => {
                    parts.push(format!("{value}={aliased}"));
                    done.push(alias);
                }
                None => parts.push(value.clone()),
            }
            done.push(key);
        }
    }
    let required = |k: &str| format.get(k).is_some_and(|s| !is_flag(s, "optional"));
    for pass_required in [true, false] {
        for (key, value) in values {
            if done.contains(&key.as_str()) || required(key) != pass_required {
                continue;
            }
            parts.push(format!("{key}={value}"));
        }
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn qemu_net() -> Map<String, Value> {
        json!({
            "model": {"type": "string", "enum": ["virtio", "e1000"], "default_key": 1},
            "macaddr": {"type": "string", "format": "mac-addr", "optional": 1},
            "virtio": {"alias": "macaddr", "keyAlias": "model"},
            "e1000": {"alias": "macaddr", "keyAlias": "model"},
            "bridge": {"type": "string", "optional": 1},
            "firewall": {"type": "boolean", "optional": 1},
            "tag": {"type": "integer", "minimum": 1, "maximum": 4094, "optional": 1}
        })
        .as_object()
        .unwrap()
        .clone()
    }

    #[test]
    fn a_model_alias_carries_the_mac_and_prints_first() {
        let format = qemu_net();
        let values = parse(&format, "bridge=vmbr0,virtio=BC:24:11:00:00:01,firewall=yes,tag=10", "net0", &mut Vec::new()).unwrap();
        assert_eq!(values["model"], "virtio");
        assert_eq!(values["macaddr"], "BC:24:11:00:00:01");
        assert_eq!(values["firewall"], "1");
        assert_eq!(print(&format, &values), "virtio=BC:24:11:00:00:01,bridge=vmbr0,firewall=1,tag=10");
    }

    #[test]
    fn unknown_keys_duplicates_and_bad_values_are_refused() {
        let format = qemu_net();
        let refused = |text: &str| parse(&format, text, "net0", &mut Vec::new()).unwrap_err();
        assert!(refused("virtio,colour=red").contains("net0.colour: property is not defined in schema"));
        assert!(refused("virtio,e1000").contains("duplicate key"));
        assert!(refused("virtio,tag=5000").contains("net0.tag: value must have a maximum value of 4094"));
        assert!(refused("bridge=vmbr0").contains("net0.model: property is missing"));
    }
}
