//! Embeds the Proxmox VE API schema the simulator routes and validates by: pve-docs'
//! `apidata.json` (PVE 9.1.3) from the reference material beside the checkout
//! (`../shared/reference/pve-api/`, or the file `PHOENIX_PVE_APIDATA` names). Prose (descriptions,
//! type texts, permission texts) is dropped: the simulator needs the contract, not the manual.

use serde_json::Value;
use std::path::PathBuf;

/// Keys that carry documentation only.
const PROSE: &[&str] = &["description", "verbose_description", "text", "format_description", "typetext", "permissions"];

fn strip(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            Value::Object(map.into_iter().filter(|(k, _)| !PROSE.contains(&k.as_str())).map(|(k, v)| (k, strip(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(strip).collect()),
        other => other,
    }
}

fn main() {
    println!("cargo:rerun-if-env-changed=PHOENIX_PVE_APIDATA");
    let source = std::env::var_os("PHOENIX_PVE_APIDATA").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
            .join("../../../shared/reference/pve-api/apidata.json")
    });
    println!("cargo:rerun-if-changed={}", source.display());
    let text = std::fs::read_to_string(&source).unwrap_or_else(|e| {
        panic!(
            "phoenix-sim needs the Proxmox VE API schema at {} ({e}); put ../shared beside the checkout or set PHOENIX_PVE_APIDATA",
            source.display()
        )
    });
    let schema: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", source.display()));
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let out = out_dir.join("pve-api.json");
    std::fs::write(&out, strip(schema).to_string()).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
}
