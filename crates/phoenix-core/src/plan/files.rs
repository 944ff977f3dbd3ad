//! Steps for the rendered files phoenix writes itself (dnsmasq on the host, Traefik and NGINX
//! in their guests): one step per file whose deployed copy differs, with its unified diff.
//! The Proxmox firewall files go through the API and stack files through Portainer instead.

use super::{Action, Domain, Observed, Step};
use crate::render::{Rendered, RenderedFile};

/// Which sync domain writes a rendered file; `None` when another channel deploys it.
pub fn file_domain(file: &RenderedFile) -> Option<Domain> {
    if file.path.starts_with("/etc/pve/") || file.path.starts_with(crate::render::stacks::STACKS_ROOT) {
        None
    } else if file.path.starts_with("/etc/dnsmasq") {
        Some(Domain::Dns)
    } else {
        Some(Domain::Gateway)
    }
}

pub fn file_steps(rendered: &Rendered, observed: &Observed, domain: Domain, after: &[String]) -> Vec<Step> {
    let mut steps = Vec::new();
    for file in rendered.files.iter().filter(|f| file_domain(f) == Some(domain)) {
        let current = observed.files.get(&(file.target, file.path.clone())).cloned().flatten();
        if current.as_deref() == Some(file.content.as_str()) {
            continue;
        }
        let diff = crate::render::diff::unified(current.as_deref().unwrap_or_default(), &file.content, "deployed", "rendered", 2);
        let id = match domain {
            Domain::Dns => "dns".to_string(),
            _ => format!("file:{}:{}", file.target, file.path).replace(' ', "-"),
        };
        let lock = match file.target {
            crate::deploy::Machine::Guest(id) => Some(format!("guest:{id}")),
            crate::deploy::Machine::Host => None,
        };
        steps.push(Step {
            id,
            domain,
            title: format!("{} {}", file.target, file.path),
            reason: if current.is_some() { "the deployed file differs".into() } else { "the file is not deployed".into() },
            diff,
            action: Action::File { file: file.clone() },
            after: after.to_vec(),
            lock,
            node: None,
            calls: 1 + usize::from(file.validate.is_some()) + usize::from(file.reload.is_some()),
        });
    }
    steps
}
