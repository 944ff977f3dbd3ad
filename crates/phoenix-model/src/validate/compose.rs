//! Compose semantics the users tripped on: a service running as an unprivileged user with the
//! root-only Docker socket mounted (it gets "permission denied" at its first call), the
//! Portainer server given `--tlscert/--tlskey/--tlsverify` (those configure TLS to the Docker
//! endpoint of `-H`, not Portainer's HTTPS listener, which is `--sslcert/--sslkey`; portainer
//! `api/cli/cli.go`), and a stack that runs the Portainer server deployed through Portainer
//! itself (an update stops the server inside its own request). Findings point at the stack's
//! compose_file_path; the message names the service.

use crate::diag::Diagnostic;
use crate::model::compose::ComposeService;
use crate::model::*;

const DOCKER_TLS_FLAGS: &[&str] = &["--tlsverify", "--tlscert", "--tlskey", "--tlscacert"];

pub fn check(model: &Model) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for stack in model.stacks.values() {
        let Some(compose) = &stack.compose else { continue };
        for service in compose.services() {
            out.extend(socket_without_access(stack, compose, &service));
            out.extend(docker_tls_flags(stack, compose, &service));
        }
    }
    out.extend(portainer_through_itself(model));
    out.extend(crate::schema::once_per_later_key(model.stacks.values().flat_map(swarm_keys).collect()));
    out
}

/// The Swarm-style keys the users' later compose files carry (`deploy`, external networks,
/// secrets and configs), each said once as read but not acted on (PHX-KEY-003): phoenix
/// deploys a compose file through Portainer as a standalone stack and creates none of them.
fn swarm_keys(stack: &Stack) -> Vec<Diagnostic> {
    let Some(compose) = &stack.compose else { return Vec::new() };
    let Some(content) = &compose.content else { return Vec::new() };
    let mut keys: Vec<&str> = compose.services().iter().filter(|s| s.body.get("deploy").is_some()).map(|_| "deploy").collect();
    let networks = content.get("networks").and_then(serde_json::Value::as_object);
    if networks.is_some_and(|n| n.values().any(|network| network.get("external").is_some())) {
        keys.push("external networks");
    }
    keys.extend(["secrets", "configs"].into_iter().filter(|section| content.get(*section).is_some()));
    keys.into_iter()
        .map(|key| {
            Diagnostic::at("PHX-KEY-003", compose.relative.span, format!("`{key}` of a compose file is read, but phoenix does not act on it yet"))
                .help("phoenix deploys a compose file as a standalone stack: Swarm placement is not applied, and external networks, secrets and configs must already exist on the Docker host")
        })
        .collect()
}

fn runs_as_root(user: &str) -> bool {
    let name = user.split(':').next().unwrap_or(user).trim();
    name.is_empty() || name == "root" || name == "0"
}

/// PHX-COMPOSE-001.
fn socket_without_access(stack: &Stack, compose: &ComposeFile, service: &ComposeService<'_>) -> Option<Diagnostic> {
    let user = service.user().filter(|u| !runs_as_root(u))?;
    let socket = service.volume_sources().into_iter().find(|source| source.ends_with("/docker.sock"))?;
    if service.adds_groups() {
        return None;
    }
    Some(
        Diagnostic::at(
            "PHX-COMPOSE-001",
            compose.relative.span,
            format!(
                "service {} of stack {} runs as user {user} but mounts {socket}, which only root and the docker group may use",
                service.name, stack.name
            ),
        )
        .help("add the docker group's id under group_add, or run the service as root"),
    )
}

/// PHX-COMPOSE-002.
fn docker_tls_flags(stack: &Stack, compose: &ComposeFile, service: &ComposeService<'_>) -> Option<Diagnostic> {
    if !service.is_portainer_server() {
        return None;
    }
    let words = service.command_words();
    let flags: Vec<&str> =
        DOCKER_TLS_FLAGS.iter().copied().filter(|flag| words.iter().any(|w| w == flag || w.starts_with(&format!("{flag}=")))).collect();
    if flags.is_empty() {
        return None;
    }
    Some(
        Diagnostic::at(
            "PHX-COMPOSE-002",
            compose.relative.span,
            format!(
                "service {} of stack {} gives Portainer {}, which set up TLS to the Docker endpoint (-H), not Portainer's own HTTPS",
                service.name,
                stack.name,
                flags.join(", ")
            ),
        )
        .help("for Portainer's HTTPS certificate use --sslcert and --sslkey"),
    )
}

/// PHX-COMPOSE-003: phoenix deploys a Portainer server's stacks through that server's local
/// environment, so a stack that runs the server itself would be Portainer deploying itself.
fn portainer_through_itself(model: &Model) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for guest in model.guests.values().filter(|g| g.portainer_role == PortainerRole::Primary) {
        for assignment in &guest.stacks {
            let Some(stack) = model.stacks.get(&assignment.name.value) else { continue };
            if !stack.compose.as_ref().is_some_and(ComposeFile::runs_portainer_server) {
                continue;
            }
            out.push(
                Diagnostic::at(
                    "PHX-COMPOSE-003",
                    assignment.name.span,
                    format!(
                        "{} is the Portainer server and is assigned stack {}, which runs the Portainer server: Portainer would \
                         deploy itself, and an update stops it inside its own request",
                        guest.label(),
                        stack.name
                    ),
                )
                .help("remove the stack from docker_stacks; the Portainer server is installed with its guest, not through Portainer"),
            );
        }
    }
    out
}
