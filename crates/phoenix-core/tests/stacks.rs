//! Stack compose files as phoenix sends them: labels applied in place (comments, formatting
//! and unknown keys kept), valid against the Compose Specification and accepted by the real
//! `docker-compose config -q` (docker-compose v1 needs no daemon for it).

use phoenix_core::render::{render_all, stacks};
use phoenix_testkit::{example_config, example_source, reference_config, MemorySource};
use std::path::Path;
use std::process::Command;

fn compose_files(source: &MemorySource, config: &Path) -> Vec<(String, String)> {
    let checked = phoenix_model::check(config, source);
    let rendered = render_all(checked.model.as_ref().unwrap());
    rendered.files.into_iter().filter(|f| f.path.ends_with("docker-compose.yml")).map(|f| (f.path, f.content)).collect()
}

fn reference() -> (MemorySource, std::path::PathBuf) {
    (MemorySource::from_dir(reference_config().parent().unwrap()), reference_config())
}

#[test]
fn rendered_compose_files_satisfy_the_compose_spec() {
    for (source, config) in [(example_source(), example_config()), reference()] {
        let files = compose_files(&source, &config);
        assert!(!files.is_empty());
        for (path, text) in files {
            let value: serde_json::Value = serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
            assert_eq!(phoenix_model::load::compose_errors(&value), Vec::<String>::new(), "{path}");
            assert!(text.contains("phoenix.managed=true"), "{path}");
        }
    }
}

#[test]
fn docker_compose_accepts_the_rendered_files() {
    let binary = "/usr/bin/docker-compose";
    assert!(Path::new(binary).exists(), "docker-compose is not installed: `apt-get install docker-compose` (scripts/test does this)");
    let dir = std::env::temp_dir().join(format!("phoenix-compose-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (source, config) in [(example_source(), example_config()), reference()] {
        for (path, text) in compose_files(&source, &config) {
            let file = dir.join("docker-compose.yml");
            std::fs::write(&file, &text).unwrap();
            // Interpolated variables come from the stack's env at deploy time; give them values here.
            let output = Command::new(binary)
                .arg("-f")
                .arg(&file)
                .args(["config", "-q"])
                .env("API_PORT", "8000")
                .env("QDRANT__SERVICE__API_KEY", "x")
                .current_dir(&dir)
                .output()
                .unwrap();
            assert!(output.status.success(), "{path} refused:\n{}\n{text}", String::from_utf8_lossy(&output.stderr));
        }
    }
    let broken = dir.join("docker-compose.yml");
    std::fs::write(&broken, "services:\n  app:\n    image: nginx\n    ports: 6333\n").unwrap();
    let refused = Command::new(binary).arg("-f").arg(&broken).args(["config", "-q"]).current_dir(&dir).output().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(!refused.status.success(), "docker-compose must refuse an invalid file, or the check above proves nothing");
}

fn render_with(compose: &str) -> String {
    let mut source = example_source();
    let path = example_config().parent().unwrap().join("persistent-storage/qdrant/docker-compose.yml");
    source.files.insert(path, compose.to_string());
    let files = compose_files(&source, &example_config());
    files.into_iter().find(|(p, _)| p.starts_with(&stacks::stack_dir("qdrant_service", "production"))).expect("qdrant rendered").1
}

#[test]
fn comments_formatting_and_unknown_keys_are_kept() {
    let source = "# top comment\nx-phoenix-note: keep me   # trailing comment\nservices:\n  qdrant:\n    image: qdrant/qdrant   # pinned elsewhere\n    labels:\n      - existing=label\n";
    let text = render_with(source);
    for kept in
        ["# top comment", "x-phoenix-note: keep me   # trailing comment", "image: qdrant/qdrant   # pinned elsewhere", "- existing=label"]
    {
        assert!(text.contains(kept), "lost `{kept}`:\n{text}");
    }
    let value: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    let labels: Vec<&str> = value["services"]["qdrant"]["labels"].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect();
    assert_eq!(labels[0], "existing=label");
    assert!(labels.contains(&"phoenix.stack=qdrant_service"));
    assert!(labels.contains(&"traefik.http.services.qdrant.loadbalancer.server.port=6333"));
}

#[test]
fn labels_written_as_a_mapping_stay_a_mapping() {
    let text = render_with("services:\n  qdrant:\n    image: qdrant/qdrant\n    labels:\n      existing: label\n");
    let value: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    let labels = value["services"]["qdrant"]["labels"].as_object().unwrap_or_else(|| panic!("{text}"));
    assert_eq!(labels["existing"], "label");
    assert_eq!(labels["phoenix.environment"], "production");
}

#[test]
fn secret_variables_are_never_written() {
    let mut source = example_source();
    source.edit_json(&example_config().join("phoenix_stacks_config.json"), |v| {
        v["docker_stacks"]["qdrant_service"]["environments"]["production"]["variables"] =
            serde_json::json!([{ "name": "LOG_LEVEL", "value": "debug" }, { "name": "DB_PASSWORD", "value": "literal-s3cret" }]);
    });
    let checked = phoenix_model::check(&example_config(), &source);
    let rendered = render_all(checked.model.as_ref().unwrap());
    let env = rendered.files.iter().find(|f| f.path.ends_with("qdrant_service/production/stack.env")).unwrap();
    assert!(env.content.contains("LOG_LEVEL=debug"));
    assert!(!env.content.contains("literal-s3cret"));
    assert_eq!(env.mode, 0o600);
}
