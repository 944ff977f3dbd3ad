//! Secrets: literal secrets in the configuration, and references that cannot be resolved.
//! Messages name where a secret is, never what it is.

use crate::diag::Diagnostic;
use crate::facts::Facts;
use crate::model::{Model, SecretRef};

pub fn check(model: &Model, facts: &Facts) -> Vec<Diagnostic> {
    model
        .secrets
        .iter()
        .filter_map(|site| match &site.reference {
            SecretRef::Literal => Some(
                Diagnostic::at("PHX-SECRET-001", site.span, format!("{} is written in plain text", site.what))
                    .help("use {\"env\": \"NAME\"} or {\"file\": \"PATH\"} instead"),
            ),
            SecretRef::Env(name) if !facts.env_set.contains(name) => Some(Diagnostic::at(
                "PHX-SECRET-002",
                site.span,
                format!("{} reads environment variable {name}, which is not set", site.what),
            )),
            SecretRef::File(path) if !facts.existing_files.contains(&model.config_dir.join(path)) => Some(Diagnostic::at(
                "PHX-SECRET-002",
                site.span,
                format!("{} reads {}, which does not exist", site.what, model.config_dir.join(path).display()),
            )),
            _ => None,
        })
        .collect()
}
