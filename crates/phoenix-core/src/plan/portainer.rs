//! Portainer's side of a sync: the environments (endpoints) stacks deploy to, and the stacks
//! themselves, as standalone compose stacks whose file is the rendered compose text and whose
//! environment is the stack's variables. phoenix owns a stack when its compose text carries
//! `phoenix.managed=true` (the label the renderer puts on every service); a stack of the same
//! name phoenix does not own is never touched. Nothing is ever deleted.

use super::{Action, Domain, Step};
use crate::render::stacks::{ownership_labels, stack_dir};
use crate::render::Rendered;
use phoenix_model::model::{Guest, Model, PortainerRole, SecretRef, StackAssignment, Variable, VariableValue};
use serde::{Serialize, Serializer};

/// Portainer's EndpointCreationType for a local Docker socket and for an agent.
pub const LOCAL_DOCKER: u8 = 1;
pub const AGENT: u8 = 2;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointObserved {
    pub id: u64,
    pub name: String,
    pub url: String,
    /// The compose projects its containers carry (`com.docker.compose.project`), `None` when
    /// they could not be listed (an agent that does not answer). Portainer refuses a stack
    /// whose name one of them has (stacks/create_compose_stack.go `checkUniqueStackNameInDocker`).
    pub projects: Option<std::collections::BTreeSet<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackObserved {
    pub id: u64,
    pub name: String,
    pub endpoint_id: u64,
    pub env: Vec<(String, String)>,
    pub file: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortainerObserved {
    /// False on a fresh Portainer without an administrator (phoenix bootstraps it).
    pub initialized: bool,
    pub endpoints: Vec<EndpointObserved>,
    pub stacks: Vec<StackObserved>,
}

/// One variable of a stack's environment. A secret's value never prints or serializes.
#[derive(Clone, PartialEq, Eq)]
pub struct EnvVar {
    pub name: String,
    pub value: String,
    pub secret: bool,
}

impl EnvVar {
    fn shown(&self) -> &str {
        if self.secret {
            "<secret>"
        } else {
            &self.value
        }
    }
}

impl std::fmt::Debug for EnvVar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.name, self.shown())
    }
}

impl Serialize for EnvVar {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("name", &self.name)?;
        map.serialize_entry("value", self.shown())?;
        map.end()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Operation {
    /// Create the first administrator and an API key for phoenix on a fresh Portainer.
    Bootstrap,
    CreateEndpoint {
        name: String,
        url: String,
        creation_type: u8,
    },
    UpdateEndpoint {
        id: u64,
        name: String,
        url: String,
    },
    CreateStack {
        endpoint: String,
        name: String,
        #[serde(skip)]
        content: String,
        env: Vec<EnvVar>,
    },
    UpdateStack {
        id: u64,
        endpoint: String,
        name: String,
        #[serde(skip)]
        content: String,
        env: Vec<EnvVar>,
    },
}

/// Portainer stack names are lowercase letters, digits, `-` and `_` (they become compose
/// project names).
pub fn stack_name(stack: &str, environment: &str) -> String {
    format!("{stack}-{environment}")
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '-' })
        .collect()
}

/// A step making one Portainer call.
fn step(id: String, domain: Domain, title: String, reason: String, diff: String, action: Action, after: Vec<String>) -> Step {
    Step { id, domain, title, reason, diff, action, after, lock: None, node: None, calls: 1 }
}

/// The endpoint each guest's stacks deploy to: agents by their agent, the Portainer server by
/// its local Docker socket.
fn desired_endpoints(model: &Model) -> Vec<(String, String, u8)> {
    let agent_port = model.portainer.as_ref().map_or(9001, |p| p.agent_port);
    model
        .guests
        .values()
        .filter_map(|guest| match guest.portainer_role {
            PortainerRole::Agent => Some((guest.name.clone(), format!("tcp://{}:{agent_port}", guest.address()?), AGENT)),
            PortainerRole::Primary if !guest.stacks.is_empty() => {
                Some((guest.name.clone(), "unix:///var/run/docker.sock".to_string(), LOCAL_DOCKER))
            }
            _ => None,
        })
        .collect()
}

/// Steps for endpoints (`endpoints`) and stacks (`stacks`); `earlier` are the plan's steps
/// so far (the gateway and firewall steps stacks wait for).
pub fn steps(
    model: &Model,
    rendered: &Rendered,
    observed: &PortainerObserved,
    endpoints: bool,
    stacks: bool,
    secret: &dyn Fn(&SecretRef) -> Option<String>,
    earlier: &[Step],
) -> Vec<Step> {
    let mut out = Vec::new();
    let firewall: Vec<String> =
        earlier.iter().filter(|s| s.domain == Domain::Firewall && !matches!(s.action, Action::Blocked)).map(|s| s.id.clone()).collect();
    let mut base_after = firewall.clone();
    if !observed.initialized {
        out.push(step(
            "portainer:bootstrap".into(),
            Domain::Portainer,
            "bootstrap Portainer".into(),
            "Portainer has no administrator yet".into(),
            String::new(),
            Action::Portainer { operation: Operation::Bootstrap },
            firewall,
        ));
        base_after = vec!["portainer:bootstrap".into()];
    }
    let mut endpoint_steps = std::collections::BTreeMap::new();
    for (name, url, creation_type) in desired_endpoints(model) {
        let id = format!("endpoint:{name}");
        let operation = match observed.endpoints.iter().find(|e| e.name == name) {
            Some(current) if current.url == url => continue,
            Some(current) => Operation::UpdateEndpoint { id: current.id, name: name.clone(), url: url.clone() },
            None => Operation::CreateEndpoint { name: name.clone(), url: url.clone(), creation_type },
        };
        endpoint_steps.insert(name.clone(), id.clone());
        if endpoints {
            let reason = if matches!(operation, Operation::CreateEndpoint { .. }) {
                "no such environment in Portainer"
            } else {
                "the environment's URL differs"
            };
            out.push(step(
                id,
                Domain::Portainer,
                format!("Portainer environment {name}"),
                reason.into(),
                format!("+ {name} {url}\n"),
                Action::Portainer { operation },
                base_after.clone(),
            ));
        }
    }
    if !stacks {
        return out;
    }
    for guest in model.guests.values() {
        for assignment in &guest.stacks {
            let mut after = base_after.clone();
            after.extend(endpoint_steps.get(&guest.name).filter(|_| endpoints).cloned());
            out.extend(stack_step(model, rendered, observed, guest, assignment, secret, after));
        }
    }
    out
}

/// A stack's environment: plain variables, and secrets resolved; the names of secrets that
/// have no value here are the error.
fn stack_env(variables: &[Variable], secret: &dyn Fn(&SecretRef) -> Option<String>) -> Result<Vec<EnvVar>, Vec<String>> {
    let mut env = Vec::new();
    let mut unresolved = Vec::new();
    for variable in variables {
        match &variable.value {
            Some(VariableValue::Plain(value)) => env.push(EnvVar { name: variable.name.clone(), value: value.clone(), secret: false }),
            Some(VariableValue::Secret(reference)) => match secret(reference) {
                Some(value) => env.push(EnvVar { name: variable.name.clone(), value, secret: true }),
                None => unresolved.push(variable.name.clone()),
            },
            None => env.push(EnvVar { name: variable.name.clone(), value: String::new(), secret: false }),
        }
    }
    if unresolved.is_empty() {
        Ok(env)
    } else {
        Err(unresolved)
    }
}

/// The step that creates or updates one stack of a guest, when it is not as rendered; a
/// same-named stack phoenix does not own, or a secret without a value, blocks it.
fn stack_step(
    model: &Model,
    rendered: &Rendered,
    observed: &PortainerObserved,
    guest: &Guest,
    assignment: &StackAssignment,
    secret: &dyn Fn(&SecretRef) -> Option<String>,
    after: Vec<String>,
) -> Option<Step> {
    let stack = model.stacks.get(&assignment.name.value)?;
    let environment = stack.environments.get(&assignment.environment.value)?;
    let path = format!("{}/docker-compose.yml", stack_dir(&stack.name, &environment.name));
    let file = rendered.files.iter().find(|f| f.target == crate::deploy::Machine::Guest(guest.id) && f.path == path)?;
    let name = stack_name(&stack.name, &environment.name);
    let (id, title) = (format!("stack:{}:{name}", guest.name), format!("stack {name} on {}", guest.name));
    if guest.portainer_role == PortainerRole::Primary && stack.compose.as_ref().is_some_and(|c| c.runs_portainer_server()) {
        // Through the server's own local environment this would be Portainer deploying itself.
        let reason = "the stack runs the Portainer server, which cannot deploy itself (PHX-COMPOSE-003)".to_string();
        return Some(Step::blocked(id, Domain::Stacks, title, reason, after));
    }
    let env = match stack_env(&environment.variables, secret) {
        Ok(env) => env,
        Err(unresolved) => {
            let reason = format!("secret variable(s) {} have no value here (set them in the environment)", unresolved.join(", "));
            return Some(Step::blocked(id, Domain::Stacks, title, reason, after));
        }
    };
    let endpoint_id = observed.endpoints.iter().find(|e| e.name == guest.name).map(|e| e.id);
    // Portainer compares stack names case-insensitively, as compose project names
    // (stacks/create_compose_stack.go): a stack named `Whoami-Production` is this one's name.
    let current = observed.stacks.iter().find(|s| s.name.eq_ignore_ascii_case(&name) && Some(s.endpoint_id) == endpoint_id);
    let owned = ownership_labels(&stack.name, &environment.name)[0].clone();
    let projects = observed.endpoints.iter().find(|e| e.name == guest.name).and_then(|e| e.projects.as_ref());
    let (operation, reason, diff) = match current {
        None if projects.is_some_and(|p| p.contains(&name)) => {
            let reason = format!(
                "containers of a compose project named {name} run on {} outside Portainer, and Portainer refuses a stack of that \
                 name; remove them (`docker compose -p {name} down` on {}) and sync again",
                guest.name, guest.name
            );
            return Some(Step::blocked(id, Domain::Stacks, title, reason, after));
        }
        None => (
            Operation::CreateStack { endpoint: guest.name.clone(), name: name.clone(), content: file.content.clone(), env },
            "the stack is not deployed".to_string(),
            format!("+ stack {name} on {}\n", guest.name),
        ),
        Some(current) if !current.file.contains(&owned) => {
            let reason = format!(
                "a stack named {name} exists and phoenix does not own it (its compose file lacks {owned}); phoenix leaves it alone"
            );
            return Some(Step::blocked(id, Domain::Stacks, title, reason, after));
        }
        Some(current) => {
            let mut observed_env = current.env.clone();
            observed_env.sort();
            let mut wanted_env: Vec<(String, String)> = env.iter().map(|v| (v.name.clone(), v.value.clone())).collect();
            wanted_env.sort();
            if current.file == file.content && observed_env == wanted_env {
                return None;
            }
            let diff = crate::render::diff::unified(&current.file, &file.content, "deployed", "rendered", 2);
            let operation = Operation::UpdateStack {
                id: current.id,
                endpoint: guest.name.clone(),
                name: name.clone(),
                content: file.content.clone(),
                env,
            };
            (operation, "the deployed stack differs".to_string(), diff)
        }
    };
    Some(step(id, Domain::Stacks, title, reason, diff, Action::Portainer { operation }, after))
}
