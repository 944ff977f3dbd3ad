//! Parameter validation as pve-common's `PVE::JSONSchema::validate` does it for an API call:
//! every parameter of the method's schema checked for its type (form values are strings),
//! `enum`, `pattern` (anchored), `minLength`/`maxLength`, `minimum`/`maximum` and `format`;
//! required ones present; unknown ones refused (`additionalProperties: 0`). Errors are per
//! parameter, with PVE's texts, and become a 400. Formats are the registered verifiers phoenix's
//! requests meet; an unknown format is reported as a simulator gap, never passed.

use super::formats;

pub mod propstr;
use regex::Regex;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

/// A check the simulator cannot make (a format it does not implement): a loud failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap(pub String);

/// The outcome of validating one call's parameters.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Parameter -> message (400 "Parameter verification failed.").
    pub errors: BTreeMap<String, String>,
    pub gaps: Vec<Gap>,
}

/// Whether `text` matches the schema's Perl `pattern`, anchored as `check_prop` anchors it:
/// `m/^$pattern$/`, without a group (so a top-level `|` is only half-anchored, as in Perl);
/// Perl's stringified `qr//` groups `(?^i:...)` / `(?^:...)` become `(?i:...)` / `(?:...)`.
/// `None` when it does not compile as a Rust regex.
fn pattern_matches(pattern: &str, text: &str) -> Option<bool> {
    static CACHE: OnceLock<Mutex<BTreeMap<String, Option<Regex>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
    if !cache.contains_key(pattern) {
        let rust = pattern.replace("(?^i:", "(?i:").replace("(?^:", "(?:");
        cache.insert(pattern.to_string(), Regex::new(&format!("^{rust}$")).ok());
    }
    cache.get(pattern).and_then(Option::as_ref).map(|regex| regex.is_match(text))
}

/// `is_integer`: `^[+-]?\d+$`.
fn is_integer(text: &str) -> bool {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// `is_number`: `^[+-]?(\d+\.\d+|\d+\.|\.\d+|\d+)([eE][+-]?\d+)?$`.
fn is_number(text: &str) -> bool {
    let body = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (mantissa, exponent) = match body.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e)),
        None => (body, None),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some((a, b)) => (!a.is_empty() || !b.is_empty()) && digits(a) && digits(b),
        None => !mantissa.is_empty() && digits(mantissa),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mantissa_ok && exponent_ok
}

/// A value as Perl sees it: a string or a JSON number; `None` for what is a reference to
/// Perl (a JSON boolean, array or object), with its type name.
fn scalar_or_ref(value: &Value) -> Result<String, &'static str> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => {
            Ok(n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 1e15).map(|f| (f as i64).to_string()).unwrap_or_else(|| n.to_string()))
        }
        Value::Bool(_) => Err("JSON::PP::Boolean"),
        Value::Array(_) => Err("ARRAY"),
        Value::Object(_) => Err("HASH"),
        Value::Null => Err("null"),
    }
}

/// A scalar value as text (a JSON boolean as `1`/`0`, as `untaint_recursive` leaves it).
pub fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::Bool(b) => Some(if *b { "1" } else { "0" }.to_string()),
        other => scalar_or_ref(other).ok(),
    }
}

/// `check_type` and the scalar checks of `check_prop` for one value at `path`, in PVE's
/// order (type, format, pattern, maxLength, minLength, maximum, minimum, enum), the first
/// failure only. Top-level booleans are the strings `1` and `0` (or JSON booleans).
pub fn check_value(path: &str, schema: &Value, value: &mut Value, gaps: &mut Vec<Gap>) -> Result<(), String> {
    let kind = schema.get("type").and_then(Value::as_str).unwrap_or("string");
    if matches!(kind, "array" | "object") {
        return match (kind, &*value) {
            ("array", Value::Array(_)) | ("object", Value::Object(_)) => Ok(()),
            _ => Err(format!("type check ('{kind}') failed")),
        };
    }
    let text = match (kind, scalar_or_ref(value)) {
        ("boolean", Err("JSON::PP::Boolean")) => {
            *value = Value::String(scalar(value).unwrap_or_default());
            return Ok(());
        }
        (_, Err(reference)) => return Err(format!("type check ('{kind}') failed - got {reference}")),
        (_, Ok(text)) => text,
    };
    match kind {
        "boolean" if text != "1" && text != "0" => return Err(format!("type check ('boolean') failed - got '{text}'")),
        "integer" if !is_integer(&text) => return Err(format!("type check ('integer') failed - got '{text}'")),
        "number" if !is_number(&text) => return Err(format!("type check ('number') failed - got '{text}'")),
        "null" => return Err("type check ('null') failed - value is not null".into()),
        _ => {}
    }
    *value = Value::String(text.clone());
    match schema.get("format") {
        Some(Value::String(name)) => match formats::check(name, &text) {
            formats::Checked::Ok => {}
            formats::Checked::Refused(message) => return Err(format!("invalid format - {message}\n")),
            formats::Checked::Unknown => gaps.push(Gap(format!("format '{name}' is not implemented by phoenix-sim"))),
        },
        Some(Value::Object(properties)) => {
            if let Err(message) = propstr::parse(properties, &text, path, gaps) {
                return Err(format!("invalid format - {message}"));
            }
        }
        _ => {}
    }
    if let Some(regex) = schema.get("pattern").and_then(Value::as_str) {
        match pattern_matches(regex, &text) {
            Some(true) => {}
            Some(false) => return Err("value does not match the regex pattern".into()),
            None => gaps.push(Gap(format!("pattern /{regex}/ does not compile as a Rust regex"))),
        }
    }
    let length = text.chars().count() as u64;
    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64).filter(|max| length > *max) {
        return Err(format!("value may only be {max} characters long"));
    }
    if let Some(min) = schema.get("minLength").and_then(Value::as_u64).filter(|min| length < *min) {
        return Err(format!("value must be at least {min} characters long"));
    }
    if is_number(&text) {
        let number: f64 = text.parse().unwrap_or(0.0);
        if schema.get("maximum").and_then(Value::as_f64).is_some_and(|max| number > max) {
            return Err(format!("value must have a maximum value of {}", scalar(&schema["maximum"]).unwrap_or_default()));
        }
        if schema.get("minimum").and_then(Value::as_f64).is_some_and(|min| number < min) {
            return Err(format!("value must have a minimum value of {}", scalar(&schema["minimum"]).unwrap_or_default()));
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        if !allowed.iter().filter_map(scalar).any(|a| a == text) {
            let list: Vec<String> = allowed.iter().filter_map(scalar).collect();
            return Err(format!("value '{text}' does not have a value in the enumeration '{}'", list.join(", ")));
        }
    }
    Ok(())
}

/// The schema of parameter `name`: its own entry, or the `net[n]`-style entry it instantiates.
pub fn property<'s>(properties: &'s Map<String, Value>, name: &str) -> Option<&'s Value> {
    properties.get(name).or_else(|| {
        let base = name.trim_end_matches(|c: char| c.is_ascii_digit());
        (base.len() < name.len()).then(|| properties.get(&format!("{base}[n]"))).flatten()
    })
}

/// `PVE::JSONSchema::validate` of a call's parameters against `parameters` (a method's schema).
pub fn validate(parameters: &Value, params: &mut BTreeMap<String, Value>) -> Verdict {
    let mut verdict = Verdict::default();
    let empty = Map::new();
    let properties = parameters.get("properties").and_then(Value::as_object).unwrap_or(&empty);
    // check_prop runs check_object only when there are `properties`: without them, extra
    // parameters pass (e.g. GET /version).
    let closed = parameters.get("properties").is_some()
        && parameters.get("additionalProperties").is_some_and(|a| a == &Value::from(0) || a == &Value::Bool(false));
    for (name, value) in params.iter_mut() {
        match property(properties, name) {
            Some(schema) => {
                if let Err(message) = check_value(name, schema, value, &mut verdict.gaps) {
                    verdict.errors.insert(name.clone(), message);
                }
            }
            None if closed => {
                verdict
                    .errors
                    .insert(name.clone(), "property is not defined in schema and the schema does not allow additional properties".into());
            }
            None => {}
        }
    }
    for (name, schema) in properties {
        let optional = schema.get("optional").is_some_and(|o| o == &Value::from(1) || o == &Value::Bool(true));
        if !optional && !name.ends_with("[n]") && !params.contains_key(name) {
            verdict.errors.insert(name.clone(), "property is missing and it is not optional".into());
        }
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, Value> {
        pairs.iter().map(|(k, v)| (k.to_string(), Value::String(v.to_string()))).collect()
    }

    #[test]
    fn types_enums_ranges_and_unknown_parameters_are_refused() {
        let schema = json!({"additionalProperties": 0, "properties": {
            "type": {"type": "string", "enum": ["in", "out"]},
            "pos": {"type": "integer", "minimum": 0, "optional": 1},
            "enable": {"type": "boolean", "optional": 1}}});
        assert!(validate(&schema, &mut params(&[("type", "in"), ("pos", "3")])).errors.is_empty());
        let verdict = validate(&schema, &mut params(&[("type", "up"), ("pos", "-1"), ("colour", "red")]));
        assert!(verdict.errors["type"].contains("enumeration"));
        assert!(verdict.errors["pos"].contains("minimum"));
        assert!(verdict.errors["colour"].contains("not defined in schema"));
        assert!(validate(&schema, &mut params(&[])).errors["type"].contains("missing"));
        let mut flags = params(&[("type", "in"), ("enable", "yes")]);
        assert!(validate(&schema, &mut flags).errors["enable"].contains("got 'yes'"), "top-level booleans are 1 or 0");
        let mut json_flag: BTreeMap<String, Value> = [("type".to_string(), json!("in")), ("enable".to_string(), json!(true))].into();
        assert!(validate(&schema, &mut json_flag).errors.is_empty());
        assert_eq!(json_flag["enable"], "1", "a JSON boolean reads as 1");
        let mut json_int: BTreeMap<String, Value> = [("type".to_string(), json!("in")), ("pos".to_string(), json!(true))].into();
        assert!(validate(&schema, &mut json_int).errors["pos"].contains("JSON::PP::Boolean"));
    }

    #[test]
    fn an_unknown_format_is_a_gap_not_a_pass() {
        let schema = json!({"properties": {"x": {"type": "string", "format": "pve-no-such-format"}}});
        let verdict = validate(&schema, &mut params(&[("x", "anything")]));
        assert_eq!(verdict.gaps.len(), 1);
    }
}
