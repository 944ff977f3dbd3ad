//! Application scripts and features a guest names but the installation lacks.

use crate::diag::Diagnostic;
use crate::load::Facts;
use crate::model::{GuestKind, Model};
use crate::schema::did_you_mean;
use std::path::{Path, PathBuf};

/// Features the original phoenix_hypervisor scripts provide.
pub const KNOWN_FEATURES: &[&str] = &[
    "base_setup",
    "docker",
    "nvidia",
    "ollama",
    "portainer",
    "python_api_service",
    "step_ca",
    "step_cli",
    "traefik",
    "trusted_ca",
    "vllm",
];

/// Where an application script may be installed, relative to the installation root.
pub fn application_script_candidates(root: &Path, kind: GuestKind, script: &str) -> Vec<PathBuf> {
    let folder = match kind {
        GuestKind::Lxc => "lxc_setup",
        GuestKind::Vm => "vm_setup",
    };
    vec![root.join("bin").join(folder).join(script), root.join("bin").join(script)]
}

/// Where a feature's installer lives.
pub fn feature_script(root: &Path, feature: &str) -> PathBuf {
    root.join("bin/lxc_setup").join(format!("phoenix_hypervisor_feature_install_{feature}.sh"))
}

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
