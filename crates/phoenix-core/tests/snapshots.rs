//! Snapshots of every file phoenix renders for the bundled example and for the reference
//! configuration, with each file's target, owner, mode and commands, the NIC settings, and the
//! findings made while rendering.

use phoenix_core::render::{render_all, Rendered};
use phoenix_testkit::{example_config, example_source, reference_config, MemorySource};
use std::fmt::Write;

fn document(rendered: &Rendered) -> String {
    let mut out = String::new();
    for file in &rendered.files {
        let _ = writeln!(
            out,
            "=== {} {} ({} {:04o}) validate: {} | reload: {}",
            file.target,
            file.path,
            file.owner,
            file.mode,
            file.validate.as_deref().unwrap_or("-"),
            file.reload.as_deref().unwrap_or("-")
        );
        out.push_str(&file.content);
        if !file.content.ends_with('\n') {
            out.push('\n');
        }
    }
    out.push_str("=== guest settings\n");
    for setting in &rendered.settings {
        let _ = writeln!(out, "guest {} {}: {}", setting.guest, setting.key, setting.value);
    }
    out.push_str("=== notes\n");
    for note in &rendered.notes {
        let _ = writeln!(out, "{}: {}", note.code, note.message);
    }
    out
}

#[test]
fn every_file_rendered_for_the_bundled_example() {
    let checked = phoenix_model::check(&example_config(), &example_source());
    let rendered = render_all(checked.model.as_ref().unwrap());
    assert!(rendered.notes.is_empty(), "the example renders without findings: {:?}", rendered.notes);
    insta::assert_snapshot!(document(&rendered));
}

#[test]
fn every_file_rendered_for_the_reference() {
    let source = MemorySource::from_dir(reference_config().parent().unwrap());
    let checked = phoenix_model::check(&reference_config(), &source);
    let rendered = render_all(checked.model.as_ref().unwrap());
    insta::assert_snapshot!(document(&rendered));
}

#[test]
fn rendering_is_deterministic() {
    let checked = phoenix_model::check(&example_config(), &example_source());
    let model = checked.model.unwrap();
    assert_eq!(document(&render_all(&model)), document(&render_all(&model)));
}
