//! Traefik output checked against Traefik's published JSON Schemas (static and file provider),
//! and serversTransports, which the file-provider schema does not describe, against a strict
//! typed model of Traefik's documented fields.

use phoenix_core::render::{render_all, traefik};
use phoenix_testkit::{example_config, example_source, reference_config, MemorySource};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

fn schema(name: &str) -> jsonschema::Validator {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/schemas").join(name);
    let value: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::options().should_validate_formats(false).build(&value).unwrap()
}

fn errors(validator: &jsonschema::Validator, value: &Value) -> Vec<String> {
    validator.iter_errors(value).map(|e| format!("{} at {}", e, e.instance_path())).collect()
}

/// `http.serversTransports.<name>` as Traefik v3 documents it (routing/services, ServersTransport).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct ServersTransport {
    server_name: Option<String>,
    insecure_skip_verify: Option<bool>,
    #[serde(rename = "rootCAs")]
    root_cas: Option<Vec<String>>,
    certificates: Option<Vec<ClientCertificate>>,
    max_idle_conns_per_host: Option<u32>,
    forwarding_timeouts: Option<BTreeMap<String, String>>,
    disable_http2: Option<bool>,
    peer_cert_uri: Option<String>,
    spiffe: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct ClientCertificate {
    cert_file: String,
    key_file: String,
}

fn rendered_yaml(source: &MemorySource, config: &std::path::Path, path: &str) -> Value {
    let checked = phoenix_model::check(config, source);
    let rendered = render_all(checked.model.as_ref().unwrap());
    let file = rendered.files.iter().find(|f| f.path == path).unwrap_or_else(|| panic!("{path} not rendered"));
    serde_saphyr::from_str(&file.content).unwrap_or_else(|e| panic!("{path} is not YAML: {e}\n{}", file.content))
}

fn sources() -> Vec<(MemorySource, std::path::PathBuf)> {
    vec![(example_source(), example_config()), (MemorySource::from_dir(reference_config().parent().unwrap()), reference_config())]
}

#[test]
fn static_configuration_satisfies_traefiks_schema() {
    let validator = schema("traefik-v3-static.schema.json");
    for (source, config) in sources() {
        let value = rendered_yaml(&source, &config, traefik::STATIC_PATH);
        assert_eq!(errors(&validator, &value), Vec::<String>::new());
        assert!(value["certificatesResolvers"]["stepca"]["acme"]["caServer"].as_str().unwrap().ends_with("/acme/acme/directory"));
    }
}

#[test]
fn dynamic_configuration_satisfies_traefiks_schema_and_transports_are_well_formed() {
    let validator = schema("traefik-v3-file-provider.schema.json");
    for (source, config) in sources() {
        let mut value = rendered_yaml(&source, &config, traefik::DYNAMIC_PATH);
        let transports = value["http"].as_object_mut().unwrap().remove("serversTransports");
        assert_eq!(errors(&validator, &value), Vec::<String>::new());
        if let Some(transports) = transports {
            let typed: BTreeMap<String, ServersTransport> =
                serde_json::from_value(transports).expect("serversTransports match Traefik's fields");
            for (name, transport) in typed {
                assert!(transport.server_name.is_some(), "{name}: a backend addressed by IP needs serverName");
                assert!(transport.root_cas.is_some(), "{name}: a custom transport does not inherit the static rootCAs");
                assert_ne!(transport.insecure_skip_verify, Some(true));
            }
        }
    }
}

#[test]
fn the_schemas_reject_what_traefik_rejects() {
    // Guards the checks above against a schema that accepts anything.
    let bad: Value = serde_json::json!({ "http": { "routers": { "r": { "rule": 5, "service": "s" } } } });
    assert!(!errors(&schema("traefik-v3-file-provider.schema.json"), &bad).is_empty());
    let bad_transport = serde_json::json!({ "serverName": "x", "rootCas": ["/x"] });
    assert!(serde_json::from_value::<ServersTransport>(bad_transport).is_err(), "a misspelt key is refused");
}

#[test]
fn routes_come_from_services_and_labels_with_mtls_where_configured() {
    let value = rendered_yaml(&example_source(), &example_config(), traefik::DYNAMIC_PATH);
    let http = &value["http"];
    assert_eq!(http["services"]["portainer"]["loadBalancer"]["servers"][0]["url"], "https://10.0.0.111:9443");
    assert_eq!(http["services"]["qdrant"]["loadBalancer"]["servers"][0]["url"], "http://10.0.0.102:6333");
    let transport = &http["serversTransports"]["portainer-transport"];
    assert_eq!(transport["serverName"], "portainer.internal.thinkheads.ai");
    assert_eq!(transport["certificates"][0]["certFile"], "/etc/traefik/certs/traefik-client.crt");
    assert!(http["routers"]["qdrant"]["rule"].as_str().unwrap().contains("Host(`qdrant.internal.thinkheads.ai`)"));

    // The reference: the portainer label route loses to VM 1001's traefik_service, which has no client certificate.
    let source = MemorySource::from_dir(reference_config().parent().unwrap());
    let value = rendered_yaml(&source, &reference_config(), traefik::DYNAMIC_PATH);
    let portainer = &value["http"]["serversTransports"]["portainer-transport"];
    assert!(portainer.get("certificates").is_none(), "the reference presents no client certificate to Portainer");
    assert_eq!(value["http"]["services"]["qdrant"]["loadBalancer"]["servers"][0]["url"], "http://10.0.0.102:6333");
    assert_eq!(value["http"]["routers"]["portainer"]["tls"]["certResolver"], "stepca");
}
