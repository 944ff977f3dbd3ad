//! The reference configuration with its errors corrected as each finding's hint says, the way
//! its users would fix it before a first `phoenix sync all`: a copy on disk, never the
//! reference itself. Each correction names the finding it answers, so a new finding on the
//! reference shows up as an error here rather than being silently fixed.

use serde_json::Value;
use std::path::{Path, PathBuf};

/// The addresses of the guests that own the names the reference points at the gateway
/// (PHX-DNS-003): VM 1002 (drphoenix, also the Portainer agent's hostname) and LXC 102 (Traefik).
const OWNED_NAMES: &[(&str, &str, &str)] = &[
    ("phoenix.thinkheads.ai", "drphoenix", "10.0.0.102"),
    ("internal.thinkheads.ai", "drphoenix", "10.0.0.102"),
    ("internal.thinkheads.ai", "portainer-agent", "10.0.0.102"),
    ("internal.thinkheads.ai", "traefik", "10.0.0.12"),
];

/// Copies the reference (its `etc` and `persistent-storage`) into `to` and corrects it; the
/// copy's configuration folder. Secrets written in plain text become `{"env": NAME}`, so the
/// run needs `DATABASE_PASS` in its environment.
pub fn reference(to: &Path) -> std::io::Result<PathBuf> {
    let from = crate::reference_config();
    crate::copy_dir(from.parent().expect("the reference has a parent folder"), to)?;
    let etc = to.join("etc");
    edit(&etc.join("phoenix_hypervisor_config.json"), point_owned_names_at_their_guests)?;
    edit(&etc.join("phoenix_stacks_config.json"), |stacks| {
        route_portainer_to_its_https_port(stacks);
        secrets_from_the_environment(stacks);
    })?;
    edit(&etc.join("phoenix_vm_configs.json"), |vms| {
        disk_as_large_as_its_template(vms);
        the_primary_does_not_deploy_its_own_stack(vms);
    })?;
    install_application_scripts(to, &etc)?;
    Ok(etc)
}

fn edit(path: &Path, change: impl FnOnce(&mut Value)) -> std::io::Result<()> {
    let mut value: Value = serde_json::from_str(&std::fs::read_to_string(path)?).map_err(std::io::Error::other)?;
    change(&mut value);
    std::fs::write(path, serde_json::to_string_pretty(&value).map_err(std::io::Error::other)?)
}

/// PHX-DNS-003: a name a guest owns points at that guest, not at the gateway.
fn point_owned_names_at_their_guests(host: &mut Value) {
    for zone in host["dns_server"]["authoritative_zones"].as_array_mut().into_iter().flatten() {
        let zone_name = zone["zone_name"].as_str().unwrap_or_default().to_string();
        for record in zone["records"].as_array_mut().into_iter().flatten() {
            let hostname = record["hostname"].as_str().unwrap_or_default().to_string();
            let owner = OWNED_NAMES.iter().find(|(z, h, _)| *z == zone_name && *h == hostname);
            for key in ["ip_external", "ip_internal"] {
                if let (Some((_, _, address)), Some(slot)) = (owner, record.get_mut(key)) {
                    *slot = Value::from(*address);
                }
            }
        }
    }
}

/// PHX-TRAEFIK-001: Traefik reaches Portainer at the port and scheme it serves (9443, https).
fn route_portainer_to_its_https_port(stacks: &mut Value) {
    let labels = &mut stacks["docker_stacks"]["portainer_service"]["environments"]["production"]["services"]["portainer"]["traefik_labels"];
    for label in labels.as_array_mut().into_iter().flatten() {
        let text = label.as_str().unwrap_or_default().replace("port=9000", "port=9443").replace("scheme=http", "scheme=https");
        *label = Value::from(text);
    }
}

/// PHX-SECRET-001: the stack's database password comes from the environment.
fn secrets_from_the_environment(stacks: &mut Value) {
    for stack in stacks["docker_stacks"].as_object_mut().into_iter().flat_map(|s| s.values_mut()) {
        for environment in stack["environments"].as_object_mut().into_iter().flat_map(|e| e.values_mut()) {
            for variable in environment["variables"].as_array_mut().into_iter().flatten() {
                if variable["name"] == "DATABASE_PASS" {
                    variable["value"] = serde_json::json!({ "env": "DATABASE_PASS" });
                }
            }
        }
    }
}

/// PHX-GUEST-013: VM 1001 asks for at least its template's 50 GB.
fn disk_as_large_as_its_template(vms: &mut Value) {
    for vm in vms["vms"].as_array_mut().into_iter().flatten().filter(|vm| vm["vmid"] == 1001) {
        vm["disk_size_gb"] = Value::from(50);
    }
}

/// PHX-COMPOSE-003: the Primary runs the Portainer server outside Portainer, so its own stack
/// is not one of the stacks Portainer deploys to it.
fn the_primary_does_not_deploy_its_own_stack(vms: &mut Value) {
    for vm in vms["vms"].as_array_mut().into_iter().flatten().filter(|vm| vm["portainer_role"] == "primary") {
        if let Some(stacks) = vm["docker_stacks"].as_array_mut() {
            stacks.retain(|stack| stack["name"] != "portainer_service" && stack != "portainer_service");
        }
    }
}

/// PHX-APP-001: the application scripts the containers name exist under `bin/lxc_setup/`
/// (stand-ins: the reference does not carry the original's scripts).
fn install_application_scripts(root: &Path, etc: &Path) -> std::io::Result<()> {
    let containers: Value =
        serde_json::from_str(&std::fs::read_to_string(etc.join("phoenix_lxc_configs.json"))?).map_err(std::io::Error::other)?;
    let folder = root.join("bin/lxc_setup");
    std::fs::create_dir_all(&folder)?;
    for container in containers["lxc_configs"].as_object().into_iter().flat_map(|c| c.values()) {
        if let Some(script) = container["application_script"].as_str() {
            std::fs::write(folder.join(script), "#!/bin/sh\n# a stand-in for the original's script\nexit 0\n")?;
        }
    }
    Ok(())
}
