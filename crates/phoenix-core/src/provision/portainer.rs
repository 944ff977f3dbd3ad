//! The Portainer server (the guest whose `portainer_role` is primary) and agents (`agent`), run
//! with Docker Compose in their VMs, outside Portainer (a stack that runs the Portainer server
//! is never deployed through Portainer itself). The server runs the configuration's compose
//! definition (the stack whose service is the Portainer server image), in the folder its
//! path names inside the guest; the agent runs `portainer/agent` of the server's version. The
//! agent secret reaches both as an env file (0600, never on a command line, never shown), and
//! each is checked where it runs: the server's `/api/system/status`, the agent's `/ping`.
//! This feature comes last in its guest: it starts once the guest's certificates (its TLS
//! files) are installed, and the sync's Portainer steps wait for it (`plan::wait_for_features`).
//! Pure: resources out.

use super::resource::{GuardedCommand, ManagedFile, Resource};
use super::shell::{quote, retried};
use phoenix_model::model::{Guest, Model, PortainerRole};
use phoenix_model::secret::Secret;
use phoenix_model::paths::TRUSTED_ROOT_PATH;

pub const PORTAINER: &str = "portainer";
/// The agent's compose project (phoenix's own file).
pub const AGENT_DIR: &str = "/etc/phoenix/portainer-agent";
/// Docker Compose v2 (`docker compose`), as Ubuntu packages it for the VMs' cloud images.
const COMPOSE_PACKAGE: &str = "docker-compose-v2";
const ENV_FILE: &str = "phoenix.env";
const OVERRIDE_FILE: &str = "docker-compose.phoenix.yml";

/// Whether phoenix runs a Portainer server or agent in `guest` (a role, and Docker to run it).
pub fn runs_portainer(guest: &Guest) -> bool {
    matches!(guest.portainer_role, PortainerRole::Primary | PortainerRole::Agent) && guest.has_feature("docker")
}

/// The server's compose definition: the stack one of whose services is the Portainer server.
fn server_stack(model: &Model) -> Option<(&phoenix_model::model::ComposeFile, String)> {
    model.stacks.values().filter_map(|s| s.compose.as_ref()).find_map(|compose| {
        let service = compose.services().into_iter().find(|s| s.is_portainer_server())?;
        Some((compose, service.name.to_string()))
    })
}

/// The server's image tag (`portainer/portainer-ce:2.21.4` → `2.21.4`): the agent runs the same.
fn server_version(model: &Model) -> Option<String> {
    let (compose, name) = server_stack(model)?;
    let service = compose.services().into_iter().find(|s| s.name == name.as_str())?;
    let image = service.image()?;
    image.rsplit_once(':').filter(|(_, tag)| !tag.contains('/')).map(|(_, tag)| tag.to_string())
}

fn secret_file(dir: &str, secret: Option<&Secret>) -> Result<Resource, String> {
    let secret = secret.ok_or("the agent secret (portainer_api.agent_secret) is not set here; the Portainer server and agents wait for it")?;
    let mut file = ManagedFile::new(format!("{dir}/{ENV_FILE}"), format!("AGENT_SECRET={}\n", secret.expose()), 0o600);
    file.secret = true;
    Ok(Resource::File(file))
}

/// `docker compose up -d` in `dir` with `files`, guarded by `service` running.
fn compose_up(dir: &str, files: &[&str], service: &str, after: Vec<String>) -> Resource {
    let flags: String = files.iter().map(|f| format!(" -f {}", quote(f))).collect();
    let compose = format!("cd {} && docker compose{flags}", quote(dir));
    Resource::Command(GuardedCommand {
        name: format!("{PORTAINER}-up"),
        run: format!("{compose} up -d"),
        done_when: Some(format!("{compose} ps --status running --quiet {} | grep -q .", quote(service))),
        after,
        log: Some(format!("{}/portainer.log", super::features::LOG_DIR)),
    })
}

/// Waits (at most 60 s) until `url` answers: checked against the CA root where `trusted_ca`
/// installs it, else only that it answers (`-k`).
fn answers(name: &str, url: &str, host_port: Option<&str>, trusted: bool) -> Resource {
    let resolve = host_port.map(|h| format!(" --resolve {}", quote(&format!("{h}:127.0.0.1")))).unwrap_or_default();
    let trust = if trusted { format!("--cacert {TRUSTED_ROOT_PATH}") } else { "-k".into() };
    let check = format!("curl -fsS -o /dev/null --max-time 5 {trust}{resolve} {}", quote(url));
    Resource::Command(GuardedCommand {
        name: name.into(),
        run: retried(&check, 60),
        done_when: Some(check),
        after: Vec::new(),
        log: None,
    })
}

pub fn portainer(model: &Model, guest: &Guest, agent_secret: Option<&Secret>) -> Result<Vec<Resource>, String> {
    match guest.portainer_role {
        PortainerRole::Primary => server(model, agent_secret, guest.has_feature("trusted_ca")),
        _ => agent(model, agent_secret),
    }
}

fn server(model: &Model, agent_secret: Option<&Secret>, trusted: bool) -> Result<Vec<Resource>, String> {
    let (compose, service) = server_stack(model).ok_or("no stack's compose file runs the Portainer server image")?;
    let text = compose.text.as_ref().ok_or_else(|| format!("{} cannot be read", compose.relative.value))?;
    let path = format!("/{}", compose.relative.value.trim_start_matches('/'));
    let dir = path.rsplit_once('/').map_or("/", |(d, _)| d).to_string();
    let override_text = format!("# Rendered by phoenix; do not edit: phoenix sync overwrites it.\nservices:\n  {service}:\n    env_file: [{ENV_FILE}]\n");
    let files = [path.clone(), format!("{dir}/{OVERRIDE_FILE}"), format!("{dir}/{ENV_FILE}")];
    let api = model.portainer.as_ref();
    let port = api.map_or(9443, |p| p.server_port);
    let host = api.and_then(|p| p.hostname.as_ref()).map_or("localhost".to_string(), |h| h.value.clone());
    let host_port = format!("{host}:{port}");
    Ok(vec![
        Resource::Packages { names: vec![COMPOSE_PACKAGE.into(), "curl".into()] },
        Resource::File(ManagedFile::new(path.clone(), text.clone(), 0o644)),
        Resource::File(ManagedFile::new(files[1].clone(), override_text, 0o644)),
        secret_file(&dir, agent_secret)?,
        compose_up(&dir, &[&path, &files[1]], &service, files.to_vec()),
        answers("portainer-status", &format!("https://{host_port}/api/system/status"), Some(&host_port), trusted),
    ])
}

fn agent(model: &Model, agent_secret: Option<&Secret>) -> Result<Vec<Resource>, String> {
    let version = server_version(model).ok_or("the Portainer server's image has no version tag for the agent to match")?;
    let port = model.portainer.as_ref().map_or(9001, |p| p.agent_port);
    let compose = format!(
        "# Rendered by phoenix; do not edit: phoenix sync overwrites it.\n\
         services:\n  agent:\n    image: portainer/agent:{version}\n    container_name: portainer_agent\n    restart: always\n\
         \x20   env_file: [{ENV_FILE}]\n    ports:\n      - \"{port}:9001\"\n    volumes:\n\
         \x20     - /var/run/docker.sock:/var/run/docker.sock\n      - /var/lib/docker/volumes:/var/lib/docker/volumes\n"
    );
    let path = format!("{AGENT_DIR}/docker-compose.yml");
    let files = vec![path.clone(), format!("{AGENT_DIR}/{ENV_FILE}")];
    Ok(vec![
        Resource::Packages { names: vec![COMPOSE_PACKAGE.into(), "curl".into()] },
        Resource::File(ManagedFile::new(path.clone(), compose, 0o644)),
        secret_file(AGENT_DIR, agent_secret)?,
        compose_up(AGENT_DIR, &[&path], "agent", files),
        // The agent serves /ping over TLS with a certificate of its own: only that it answers counts.
        answers("portainer-agent-ping", &format!("https://localhost:{port}/ping"), None, false),
    ])
}
