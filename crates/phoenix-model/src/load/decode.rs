//! Tolerant decoding: serde into the `raw` types after removing the values the schema check
//! already reported, so one wrong value costs that value, not the whole file.
//! Must not report: its callers know which removals were already diagnosed.

use crate::json::take_pointer;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Bound on removal rounds for values the schema did not flag (defence in depth).
const MAX_ROUNDS: usize = 64;

/// Decodes `value` into `T`. `prune` are pointers (relative to `value`) to remove first.
/// Returns the decoded value (None when even the pruned object cannot be decoded) and the
/// pointers removed in addition to `prune`.
pub fn decode<T: DeserializeOwned>(value: &Value, prune: &[String]) -> (Option<T>, Vec<String>) {
    // The common case, a value the schema found nothing wrong with, needs no copy and no path tracking.
    if prune.is_empty() {
        if let Ok(decoded) = T::deserialize(value) {
            return (Some(decoded), Vec::new());
        }
    }
    let mut value = value.clone();
    for pointer in prune {
        take_pointer(&mut value, pointer);
    }
    let mut extra = Vec::new();
    for _ in 0..MAX_ROUNDS {
        match serde_path_to_error::deserialize::<_, T>(&value) {
            Ok(decoded) => return (Some(decoded), extra),
            Err(error) => {
                let Some(pointer) = pointer_of(error.path()) else {
                    return (None, extra);
                };
                if pointer.is_empty() || !remove(&mut value, &pointer) {
                    return (None, extra);
                }
                extra.push(pointer);
            }
        }
    }
    (None, extra)
}

/// Removes the value at `pointer`; a null array item (left by an earlier removal) is taken out.
fn remove(value: &mut Value, pointer: &str) -> bool {
    match value.pointer(pointer) {
        None => false,
        Some(Value::Null) => {
            let Some(i) = pointer.rfind('/') else {
                return false;
            };
            let index = pointer[i + 1..].parse::<usize>().ok();
            match (value.pointer_mut(&pointer[..i]), index) {
                (Some(Value::Array(items)), Some(index)) if index < items.len() => {
                    items.remove(index);
                    true
                }
                (Some(Value::Object(map)), _) => map.remove(&pointer[i + 1..]).is_some(),
                _ => false,
            }
        }
        Some(_) => take_pointer(value, pointer).is_some(),
    }
}

fn pointer_of(path: &serde_path_to_error::Path) -> Option<String> {
    use serde_path_to_error::Segment;
    let mut pointer = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => pointer = crate::json::join(&pointer, index),
            Segment::Map { key } => pointer = crate::json::join(&pointer, key),
            Segment::Enum { .. } => {}
            Segment::Unknown => return None,
        }
    }
    Some(pointer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    struct Item {
        a: Option<u32>,
        #[serde(default)]
        tags: Vec<String>,
    }

    #[test]
    fn wrong_values_are_removed_not_fatal() {
        let value = serde_json::json!({"a": "x", "tags": ["ok", 3]});
        let (item, removed) = decode::<Item>(&value, &[]);
        let item = item.unwrap();
        assert_eq!(item.a, None);
        assert_eq!(item.tags, vec!["ok"]);
        assert_eq!(removed, vec!["/a", "/tags/1", "/tags/1"]);
    }

    #[test]
    fn prune_list_is_applied_first() {
        let value = serde_json::json!({"a": "x"});
        let (item, removed) = decode::<Item>(&value, &["/a".to_string()]);
        assert!(item.is_some());
        assert!(removed.is_empty());
    }

    #[test]
    fn a_non_object_is_undecodable() {
        let (item, _) = decode::<Item>(&serde_json::json!(5), &[]);
        assert!(item.is_none());
    }
}
