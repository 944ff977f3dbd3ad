//! The loader and validator never panic: arbitrary JSON in every file, random edits of the
//! reference texts, and values of the wrong type spliced into the reference structure. Every
//! failure must be a diagnostic whose span lies inside its file.

use phoenix_model::{check, Checked};
use phoenix_testkit::{reference_config, MemorySource};
use proptest::prelude::*;
use serde_json::Value;
use std::path::PathBuf;

const FILES: [&str; 5] = [
    "phoenix_hypervisor_config.json",
    "phoenix_lxc_configs.json",
    "phoenix_vm_configs.json",
    "phoenix_stacks_config.json",
    "certificate-manifest.json",
];

/// Keys the format uses, so random objects reach deep into the loader.
const KEYS: &[&str] = &[
    "lxc_configs",
    "vms",
    "vmid",
    "docker_stacks",
    "firewall",
    "rules",
    "type",
    "action",
    "proto",
    "port",
    "source",
    "dest",
    "network_config",
    "ip",
    "gw",
    "dependencies",
    "clone_from_ctid",
    "clone_from_vmid",
    "traefik_service",
    "name",
    "dns_server",
    "authoritative_zones",
    "records",
    "hostname",
    "ip_internal",
    "environments",
    "services",
    "traefik_labels",
    "compose_file_path",
    "global_firewall_rules",
    "shared_volumes",
    "network",
    "interfaces",
    "address",
    "portainer_api",
    "admin_password",
    "env",
    "file",
    "common_name",
    "sans",
    "guest_id",
    "features",
    "mac_address",
    "variables",
    "value",
    "edge",
    "external_systems",
    "addresses",
];

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        "[a-z0-9./:, -]{0,12}".prop_map(Value::from),
        prop::sample::select(vec!["10.0.0.12/24", "10.0.0.1", "ACCEPT", "in", "tcp", "80,443", "101", "9000:8000", "+set", "dc/x"])
            .prop_map(Value::from),
    ];
    leaf.prop_recursive(5, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![prop::sample::select(KEYS.to_vec()).prop_map(str::to_string), "[0-9]{3,4}", "[a-z_]{1,8}"],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn reference_source() -> MemorySource {
    MemorySource::from_dir(reference_config().parent().expect("etc has a parent"))
}

fn config() -> PathBuf {
    reference_config()
}

/// Every diagnostic's span must lie inside its file (so rendering cannot go out of bounds).
fn assert_well_formed(checked: &Checked) {
    for d in &checked.diagnostics {
        assert!(phoenix_model::diag::explain(d.code).is_some(), "undocumented code {}", d.code);
        if let Some(span) = d.span {
            let len = checked.sources.text(span.file).len() as u32;
            assert!(span.start <= span.end && span.end <= len, "{} span {span:?} outside file of {len} bytes", d.code);
        }
    }
    // Rendering must not panic either.
    let _ = phoenix_model::diag::render::to_human(&checked.diagnostics, &checked.sources, false);
    let _ = phoenix_model::diag::render::to_json(&checked.diagnostics, &checked.sources);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_json_in_any_file_is_only_ever_diagnosed(file in 0usize..5, value in arbitrary_json()) {
        let mut source = reference_source();
        source.files.insert(config().join(FILES[file]), serde_json::to_string_pretty(&value).unwrap());
        let checked = check(&config(), &source);
        assert_well_formed(&checked);
    }

    #[test]
    fn random_edits_of_the_reference_text_are_only_ever_diagnosed(
        file in 0usize..4,
        position in any::<prop::sample::Index>(),
        length in 0usize..40,
        insert in "[\\[\\]{}\",:a-z0-9 \\\\\n]{0,8}",
    ) {
        let mut source = reference_source();
        let path = config().join(FILES[file]);
        let text = source.files.get(&path).unwrap().clone();
        let mut bytes = text.into_bytes();
        let start = position.index(bytes.len());
        let end = (start + length).min(bytes.len());
        bytes.splice(start..end, insert.bytes());
        let edited = String::from_utf8_lossy(&bytes).into_owned();
        source.files.insert(path, edited);
        let checked = check(&config(), &source);
        assert_well_formed(&checked);
        if checked.model.is_none() {
            prop_assert!(checked.diagnostics.iter().any(|d| d.code.starts_with("PHX-JSON") || d.code == "PHX-IO-001"));
        }
    }

    #[test]
    fn wrong_values_spliced_into_the_reference_are_only_ever_diagnosed(
        file in 0usize..4,
        choice in any::<prop::sample::Index>(),
        replacement in arbitrary_json(),
    ) {
        let mut source = reference_source();
        let path = config().join(FILES[file]);
        source.edit_json(&path, |root| {
            let mut pointers = Vec::new();
            collect_pointers(root, String::new(), &mut pointers);
            let target = pointers[choice.index(pointers.len())].clone();
            if let Some(slot) = root.pointer_mut(&target) {
                *slot = replacement;
            }
        });
        let checked = check(&config(), &source);
        assert_well_formed(&checked);
        prop_assert!(checked.model.is_some(), "structurally wrong values never stop loading");
    }
}

fn collect_pointers(value: &Value, here: String, out: &mut Vec<String>) {
    out.push(here.clone());
    match value {
        Value::Object(map) => {
            map.iter().for_each(|(k, v)| collect_pointers(v, format!("{here}/{}", k.replace('~', "~0").replace('/', "~1")), out))
        }
        Value::Array(items) => items.iter().enumerate().for_each(|(i, v)| collect_pointers(v, format!("{here}/{i}"), out)),
        _ => {}
    }
}

#[test]
fn arbitrary_bytes_never_panic() {
    let mut source = reference_source();
    let path = config().join(FILES[0]);
    for text in
        ["", "\u{feff}{}", "[", "{\"a\":", "nul", "1e999", "\"\\ud800\"", "{\"a\":1}{\"b\":2}", &"[".repeat(200), &"{\"a\":".repeat(100)]
    {
        source.files.insert(path.clone(), text.to_string());
        assert_well_formed(&check(&config(), &source));
    }
}
