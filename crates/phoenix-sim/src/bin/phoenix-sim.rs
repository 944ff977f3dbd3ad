//! phoenix-sim: serves the Proxmox VE and Portainer simulators on loopback for a configuration
//! (the node's guests exist with their `net0` as described but without `firewall=1`, nothing
//! else is configured; a fresh Portainer), fills a rehearsal's certificate store from a
//! throw-away CA, writes the connection settings as shell variables to `<root>/sim.env`, and
//! serves until its standard input closes.
//!
//! With `--empty` the node has no guests yet (its storages as the configuration describes
//! them), for a sync that creates them.
//!
//! Usage: phoenix-sim --config DIR --root DIR [--empty]

use phoenix_model::model::GuestKind as ModelKind;
use phoenix_sim::portainer::FakePortainer;
use phoenix_sim::pve::guest::GuestKind;
use phoenix_sim::pve_server::SimPve;
use std::path::{Path, PathBuf};

fn argument(name: &str) -> Option<PathBuf> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).map(PathBuf::from)
}

/// The configuration as it is on disk.
struct Disk;

impl phoenix_model::Source for Disk {
    fn read_to_string(&self, path: &Path) -> std::io::Result<String> {
        std::fs::read_to_string(path)
    }

    fn is_file(&self, path: &Path) -> bool {
        path.is_file()
    }

    fn env_is_set(&self, name: &str) -> bool {
        std::env::var_os(name).is_some()
    }
}

fn fail(message: String) -> ! {
    eprintln!("phoenix-sim: {message}");
    std::process::exit(2);
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let (Some(config), Some(root)) = (argument("--config"), argument("--root")) else {
        fail("usage: phoenix-sim --config DIR --root DIR".into());
    };
    let config = std::path::absolute(&config).unwrap_or(config);
    let checked = phoenix_model::check(&config, &Disk);
    let Some(model) = checked.model else { fail(format!("{} does not load", config.display())) };
    let empty = std::env::args().any(|a| a == "--empty");
    let mut sim = phoenix_sim::rehearsal::empty_node(&model);
    for guest in model.guests.values().filter(|_| !empty) {
        let kind = if guest.kind == ModelKind::Lxc { GuestKind::Lxc } else { GuestKind::Qemu };
        let net0 = match kind {
            GuestKind::Lxc => "name=eth0,bridge=vmbr0",
            GuestKind::Qemu => "virtio,bridge=vmbr0",
        };
        if let Err(error) = sim.add_guest_on(&guest.node.value, guest.id, kind, &[("net0", net0)], &[]) {
            fail(format!("guest {}: {error}", guest.id));
        }
    }
    // The node's /etc/pve is the rehearsal's `host/etc/pve`: what phoenix writes there as the
    // node's root (a guest's .conf) the API sees.
    let etc_pve = root.join("host/etc/pve");
    let sim = match sim.backed_by(&etc_pve) {
        Ok(sim) => sim,
        Err(error) => fail(format!("cannot keep the node's files in {}: {error}", etc_pve.display())),
    };
    let pve = SimPve::serve(sim).await;
    let portainer = FakePortainer::start(None).await;
    let store = root.join("host/var/lib/phoenix/certs");
    if let Err(error) = phoenix_sim::ca::write_manifest_store(&store, &model) {
        fail(format!("cannot write {}: {error}", store.display()));
    }
    // The guests as provisioned: the accounts their files are owned by exist.
    let rendered = phoenix_core::render::render_all(&model);
    if let Err(error) = phoenix_sim::rehearsal::write_guest_accounts(&root, &model, &rendered) {
        fail(format!("cannot write the guests' accounts under {}: {error}", root.display()));
    }
    let env = format!(
        "PHOENIX_PVE_URL={}\nPHOENIX_PVE_TOKEN='{}'\nPVE_CA={}\nPHOENIX_PORTAINER_URL={}\nPORTAINER_CA={}\n",
        pve.url(),
        pve.token,
        pve.server.ca_file.display(),
        portainer.server.url(),
        portainer.server.ca_file.display()
    );
    if let Err(error) = std::fs::write(root.join("sim.env"), env) {
        fail(format!("cannot write sim.env: {error}"));
    }
    eprintln!("phoenix-sim: Proxmox VE 9.1.3 at {}, Portainer at {}", pve.url(), portainer.server.url());
    // Serve until stdin closes (the script that started us ends).
    let _ = tokio::task::spawn_blocking(|| std::io::copy(&mut std::io::stdin(), &mut std::io::sink())).await;
}
