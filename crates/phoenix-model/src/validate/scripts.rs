//! Application scripts and features a guest names but the installation lacks.

use crate::diag::Diagnostic;
use crate::facts::Facts;
use crate::model::Model;
use crate::paths::{application_script_candidates, feature_script, KNOWN_FEATURES};
use crate::schema::did_you_mean;

pub fn check(model: &Model, facts: &Facts) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for guest in model.guests.values() {
        if let Some(script) = &guest.application_script {
            let candidates = application_script_candidates(&model.root_dir, guest.kind, &script.value);
            if !candidates.iter().any(|c| facts.existing_files.contains(c)) {
                out.push(
                    Diagnostic::at(
                        "PHX-APP-001",
                        script.span,
                        format!("application script {} of {} is not installed", script.value, guest.label()),
                    )
                    .help(format!("expected at {}", candidates[0].display())),
                );
            }
        }
        for feature in &guest.features {
            if KNOWN_FEATURES.contains(&feature.value.as_str())
                || facts.existing_files.contains(&feature_script(&model.root_dir, &feature.value))
            {
                continue;
            }
            let diagnostic = Diagnostic::at(
                "PHX-APP-002",
                feature.span,
                format!("{} names feature `{}`, which is neither built in nor installed", guest.label(), feature.value),
            );
            out.push(match did_you_mean(&feature.value, KNOWN_FEATURES.iter().copied()) {
                Some(known) => diagnostic.help(format!("did you mean `{known}`?")),
                None => diagnostic.help(format!("install {}", feature_script(&model.root_dir, &feature.value).display())),
            });
        }
    }
    out
}
