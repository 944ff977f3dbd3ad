//! The features phoenix provisions, each as the resources it must leave behind in a guest:
//! `base_setup`, `trusted_ca`, the gateway's nginx, `traefik`, `docker`, `nvidia`
//! ([`super::nvidia`]), `step_ca` ([`super::step_ca`]), the Portainer server and agents
//! ([`super::portainer`]), a VM's NFS volumes
//! ([`super::mounts`]), the guest's `application_script`.
//! Pure: the model and the inputs read elsewhere (the CA root from phoenix's store, the
//! scripts from the installation) come in; resources go out. The files other sync steps
//! render (nginx.conf, Traefik's files, certificates) are theirs, not a feature's.

use super::resource::{Download, GuardedCommand, ManagedFile, Resource};
use crate::analyze::firewall::Endpoint;
use crate::analyze::flows::dns_server;
use super::shell::quote;
use phoenix_model::model::{Guest, GuestKind, Model};
use phoenix_model::paths::TRUSTED_ROOT_PATH;
use std::collections::BTreeMap;

/// Application scripts by the guest's kind and the name it gives.
pub type Scripts = BTreeMap<(GuestKind, String), Vec<u8>>;

/// What the features need that is not in the model.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inputs {
    /// The Step-CA root (PEM), from phoenix's store; `trusted_ca` waits without it.
    pub root_ca_pem: Option<String>,
    /// Each application script's content, by the guest's kind (containers' scripts live in
    /// bin/lxc_setup/, VMs' in bin/vm_setup/) and the name the guest gives.
    pub scripts: Scripts,
    /// `portainer_api.agent_secret`, resolved: the Portainer server and agents wait without it.
    pub agent_secret: Option<phoenix_model::secret::Secret>,
}

/// A feature's resources, or why phoenix cannot provision it here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feature {
    pub name: String,
    pub resources: Result<Vec<Resource>, String>,
}

/// The locale `base_setup` generates (the original's feature script sets en_US.UTF-8).
pub const LOCALE: &str = "en_US.UTF-8";
/// Where a guest's application script is installed and its output kept.
pub const SCRIPT_DIR: &str = "/usr/local/lib/phoenix";
pub const LOG_DIR: &str = "/var/log/phoenix";
/// The gateway feature's name in the plan (the guest `edge.gateway_guest` names).
pub const GATEWAY: &str = "gateway";
pub const APPLICATION_SCRIPT: &str = "application_script";

/// The features phoenix provisions in `guest`, in order: its `features` as declared, then the
/// gateway role, its NFS volumes, its application script, then its Portainer server or agent. `None` for a feature phoenix does not provision
/// (the original's script remains the way to install it).
pub fn for_guest(model: &Model, guest: &Guest, inputs: &Inputs) -> Vec<(String, Option<Feature>)> {
    let mut out: Vec<(String, Option<Feature>)> =
        guest.features.iter().map(|f| (f.value.clone(), declared(model, guest, &f.value, inputs))).collect();
    if model.edge.gateway == Some(guest.id) {
        out.push((GATEWAY.into(), Some(feature(GATEWAY, Ok(gateway())))));
    }
    if !guest.nfs_volumes.is_empty() {
        let name = super::mounts::NFS_VOLUMES;
        out.push((name.into(), Some(feature(name, Ok(super::mounts::nfs_volumes(&guest.nfs_volumes))))));
    }
    if let Some(script) = &guest.application_script {
        out.push((APPLICATION_SCRIPT.into(), Some(feature(APPLICATION_SCRIPT, application_script(guest, &script.value, inputs)))));
    }
    // Last: it starts once the guest's certificates are in place (see `plan::wait_for_features`).
    if super::portainer::runs_portainer(guest) {
        let name = super::portainer::PORTAINER;
        out.push((name.into(), Some(feature(name, super::portainer::portainer(model, guest, inputs.agent_secret.as_ref())))));
    }
    out
}

fn feature(name: &str, resources: Result<Vec<Resource>, String>) -> Feature {
    Feature { name: name.to_string(), resources }
}

fn declared(model: &Model, guest: &Guest, name: &str, inputs: &Inputs) -> Option<Feature> {
    let resources = match name {
        "base_setup" => Ok(base_setup(model, guest)),
        "trusted_ca" => trusted_ca(inputs),
        "docker" => Ok(docker(model, guest)),
        "traefik" => traefik(model),
        "nvidia" => super::nvidia::nvidia(model),
        super::step_ca::STEP_CA => super::step_ca::step_ca(model, guest),
        _ => return None,
    };
    Some(feature(name, resources))
}

fn packages(names: &[&str]) -> Resource {
    Resource::Packages { names: names.iter().map(|n| n.to_string()).collect() }
}

/// `systemctl daemon-reload` once any of `units` changed (systemd re-reads unit files only then).
pub(super) fn daemon_reload(units: &[String]) -> Resource {
    Resource::Command(GuardedCommand {
        name: "daemon-reload".into(),
        run: "systemctl daemon-reload".into(),
        done_when: None,
        after: units.to_vec(),
        log: None,
    })
}

fn command(name: &str, run: String, done_when: Option<String>, after: &[&str]) -> Resource {
    Resource::Command(GuardedCommand { name: name.into(), run, done_when, after: after.iter().map(|a| a.to_string()).collect(), log: None })
}

/// Locale, time zone and resolver: base packages, `/etc/locale.gen` with phoenix's locale
/// (generated when `locale -a` lacks it), `/etc/timezone` and `/etc/localtime` for the
/// configured zone, and a container's nameservers in `/etc/resolv.conf`. On Proxmox VE the
/// container's resolver comes from its `nameserver` option (pve-container writes resolv.conf
/// at each start, PVE::LXC::Setup::Base::set_dns), so the file is only written when it lacks
/// one of them: a check, not a second owner.
fn base_setup(model: &Model, guest: &Guest) -> Vec<Resource> {
    let mut out = vec![packages(&["locales", "tzdata", "ca-certificates", "curl"])];
    out.push(Resource::File(ManagedFile::new("/etc/locale.gen", format!("{LOCALE} UTF-8\n"), 0o644)));
    out.push(command(
        "locale-gen",
        "locale-gen".into(),
        Some(format!("locale -a | grep -qix '{}'", LOCALE.replace("UTF-8", "utf8"))),
        &["/etc/locale.gen"],
    ));
    if let Some(zone) = &model.host.timezone {
        let zone = &zone.value;
        out.push(Resource::File(ManagedFile::new("/etc/timezone", format!("{zone}\n"), 0o644)));
        out.push(command(
            "localtime",
            format!("test -e '/usr/share/zoneinfo/{zone}' || {{ echo 'no time zone {zone} in /usr/share/zoneinfo' >&2; exit 1; }}; ln -sf '/usr/share/zoneinfo/{zone}' /etc/localtime"),
            Some(format!("[ \"$(readlink /etc/localtime)\" = '/usr/share/zoneinfo/{zone}' ]")),
            &[],
        ));
    }
    // A container's resolver: a VM's is cloud-init's (its `nameserver`), and Ubuntu's
    // resolv.conf is systemd-resolved's stub, which never names the servers.
    let servers: Vec<String> = guest.nic().nameservers.iter().map(|n| n.value.to_string()).collect();
    if !servers.is_empty() && guest.kind == GuestKind::Lxc {
        let lines: String = servers.iter().map(|s| format!("nameserver {s}\n")).collect();
        let check = servers.iter().map(|s| format!("grep -qx 'nameserver {s}' /etc/resolv.conf")).collect::<Vec<_>>().join(" && ");
        // The domain goes into a shell string: only a DNS name (letters, digits, dots, hyphens) does.
        let search = model.domain.as_ref().filter(|d| phoenix_model::pve::names::dns_name(d)).map(|d| format!("search {d}\n")).unwrap_or_default();
        out.push(command("resolver", format!("printf '%s' '{search}{lines}' > /etc/resolv.conf"), Some(check), &[]));
    }
    out
}

/// The Step-CA root in the guest's trust store, where `certs trust` puts it: the file, then
/// `update-ca-certificates` when the file changed or the store lacks its link.
fn trusted_ca(inputs: &Inputs) -> Result<Vec<Resource>, String> {
    let root = inputs.root_ca_pem.as_ref().ok_or("the CA root is not in phoenix's store yet (certificates are issued after provisioning; the next run installs it)")?;
    let link = format!("/etc/ssl/certs/{}", TRUSTED_ROOT_PATH.rsplit('/').next().unwrap_or_default().replace(".crt", ".pem"));
    Ok(vec![
        packages(&["ca-certificates"]),
        Resource::File(ManagedFile::new(TRUSTED_ROOT_PATH, root.as_bytes().to_vec(), 0o644)),
        command("update-ca-certificates", "update-ca-certificates".into(), Some(format!("[ -e '{link}' ]")), &[TRUSTED_ROOT_PATH]),
    ])
}

/// nginx with its stream module (Debian: libnginx-mod-stream), enabled and running. Its
/// configuration is the gateway step's (rendered, `nginx -t`, reload), not this feature's.
fn gateway() -> Vec<Resource> {
    vec![packages(&["nginx", "libnginx-mod-stream"]), Resource::Service { unit: "nginx".into(), watch: Vec::new(), reload: true, needs: None }]
}

/// Where the traefik feature installs the binary and its unit.
pub const TRAEFIK_BINARY: &str = "/usr/local/bin/traefik";
pub const TRAEFIK_UNIT: &str = "/etc/systemd/system/traefik.service";

/// Traefik, which Debian does not package: the binary from `software.traefik` (its SHA-256
/// checked before it is written), a system user, and a unit that runs it with phoenix's
/// static configuration. The configuration files are the gateway step's, which restarts
/// Traefik when it writes them, so the unit is started here only once they exist.
fn traefik(model: &Model) -> Result<Vec<Resource>, String> {
    let source = model.software.get("traefik").ok_or("no source for Traefik: give software.traefik a url and its sha256")?;
    let unit = format!(
        "# Rendered by phoenix; do not edit: phoenix sync overwrites it.\n\
         [Unit]\nDescription=Traefik (phoenix)\nAfter=network-online.target\nWants=network-online.target\n\n\
         [Service]\nUser=traefik\nGroup=traefik\nAmbientCapabilities=CAP_NET_BIND_SERVICE\n\
         ExecStart={TRAEFIK_BINARY} --configFile={}\nRestart=on-failure\n\n[Install]\nWantedBy=multi-user.target\n",
        crate::render::traefik::STATIC_PATH
    );
    Ok(vec![
        Resource::Group { name: "traefik".into() },
        Resource::User { name: "traefik".into(), group: "traefik".into(), home: "/etc/traefik".into() },
        Resource::Download(Download {
            path: TRAEFIK_BINARY.into(),
            url: source.url.value.clone(),
            sha256: source.sha256.clone(),
            owner: "root:root".into(),
            mode: 0o755,
        }),
        Resource::File(ManagedFile::new(TRAEFIK_UNIT, unit, 0o644)),
        daemon_reload(&[TRAEFIK_UNIT.into()]),
        Resource::Service {
            unit: "traefik".into(),
            watch: vec![TRAEFIK_BINARY.into(), TRAEFIK_UNIT.into()],
            reload: false,
            needs: Some(crate::render::traefik::STATIC_PATH.into()),
        },
    ])
}

/// Docker from Debian (docker.io), with the daemon settings phoenix owns: the resolver its
/// containers use is phoenix's internal DNS (the node or the DNS guest), never a fixed address.
/// A guest that also has `nvidia` gets Docker's `nvidia` runtime in the same file.
fn docker(model: &Model, guest: &Guest) -> Vec<Resource> {
    const DAEMON: &str = "/etc/docker/daemon.json";
    let dns = match dns_server(model) {
        Endpoint::Guest(id) => model.guests.get(&id).and_then(|g| g.address()).map(|a| a.to_string()),
        _ => model.host.address.as_ref().map(|a| a.value.addr().to_string()),
    };
    let mut settings = serde_json::json!({ "dns": dns.into_iter().collect::<Vec<_>>() });
    if guest.has_feature("nvidia") {
        settings["runtimes"] = super::nvidia::docker_runtime();
    }
    let mut daemon = serde_json::to_string_pretty(&settings).unwrap_or_default();
    daemon.push('\n');
    vec![
        packages(&["docker.io"]),
        Resource::File(ManagedFile::new(DAEMON, daemon, 0o644)),
        Resource::Service { unit: "docker".into(), watch: vec![DAEMON.into()], reload: false, needs: None },
    ]
}

/// The user's script, pushed and run (output in `/var/log/phoenix/<script>.log`) when it
/// changed or, when the guest has a health check, whenever that check fails; a failed run
/// removes it so that the next run tries again.
fn application_script(guest: &Guest, script: &str, inputs: &Inputs) -> Result<Vec<Resource>, String> {
    let content =
        inputs.scripts.get(&(guest.kind, script.to_string())).ok_or_else(|| format!("{script} was not found in the installation's bin folder"))?;
    let base = script.rsplit('/').next().unwrap_or(script);
    let path = format!("{SCRIPT_DIR}/{base}");
    let log = format!("{LOG_DIR}/{base}.log");
    let run = GuardedCommand {
        name: APPLICATION_SCRIPT.into(),
        // A failed run removes the script, so the next run writes it again and runs it again.
        run: format!("{path} || {{ status=$?; rm -f -- {path}; exit $status; }}", path = quote(&path)),
        done_when: guest.health_check.as_ref().map(|h| h.command.value.clone()),
        after: vec![path.clone()],
        log: Some(log),
    };
    Ok(vec![Resource::File(ManagedFile::new(path, content.clone(), 0o755)), Resource::Command(run)])
}

/// Which guests phoenix provisions: every guest but templates (a template is cloned, never run).
pub fn provisioned(guest: &Guest) -> bool {
    !guest.is_template
}
