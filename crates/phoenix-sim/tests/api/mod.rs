//! Calling the simulator in process, as the tests of its handlers do: form parameters, no gap
//! met, a success's data.

use phoenix_sim::pve::{PveSim, Reply};
use serde_json::Value;
use std::collections::BTreeMap;

pub fn form(pairs: &[(&str, &str)]) -> BTreeMap<String, Value> {
    pairs.iter().map(|(k, v)| (k.to_string(), Value::String(v.to_string()))).collect()
}

/// One request; the simulator must have been able to check and answer it (no gap).
pub fn call(sim: &mut PveSim, method: &str, path: &str, pairs: &[(&str, &str)]) -> Reply {
    let reply = sim.request(method, path, form(pairs));
    assert!(sim.gaps.is_empty(), "the simulator met a gap: {:?}", sim.gaps);
    reply
}

/// One request that must succeed: its data.
pub fn ok(sim: &mut PveSim, method: &str, path: &str, pairs: &[(&str, &str)]) -> Value {
    let reply = call(sim, method, path, pairs);
    assert_eq!(reply.status, 200, "{method} {path}: {}", reply.body);
    reply.data().clone()
}
