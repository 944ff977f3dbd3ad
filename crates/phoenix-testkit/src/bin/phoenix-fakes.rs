//! phoenix-fakes: starts the fake Proxmox VE and Portainer APIs on loopback for a configuration
//! (the node's guests exist, no firewall, NICs without firewall=1; a fresh Portainer), fills a
//! rehearsal's certificate store from a test CA, writes the connection settings as shell
//! variables to `<root>/fakes.env`, and serves until its standard input closes.
//!
//! Usage: phoenix-fakes --config DIR --root DIR

use phoenix_testkit::fake::portainer::FakePortainer;
use phoenix_testkit::fake::pve::FakePve;
use std::path::PathBuf;

fn argument(name: &str) -> Option<PathBuf> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).map(PathBuf::from)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let (Some(config), Some(root)) = (argument("--config"), argument("--root")) else {
        eprintln!("usage: phoenix-fakes --config DIR --root DIR");
        std::process::exit(2);
    };
    let config = std::path::absolute(&config).unwrap_or(config);
    let source = phoenix_testkit::MemorySource::from_dir(config.parent().unwrap_or(&config));
    let checked = phoenix_model::check(&config, &source);
    let Some(model) = checked.model else {
        eprintln!("phoenix-fakes: {} does not load", config.display());
        std::process::exit(2);
    };
    let guests: Vec<(u32, &str, String)> = model
        .guests
        .values()
        .map(|g| (g.id, if g.kind == phoenix_model::model::GuestKind::Lxc { "lxc" } else { "qemu" }, "bridge=vmbr0".to_string()))
        .collect();
    let refs: Vec<(u32, &str, &str)> = guests.iter().map(|(id, kind, net0)| (*id, *kind, net0.as_str())).collect();
    let pve = FakePve::start(&model.host.node_name, &refs).await;
    let portainer = FakePortainer::start(None).await;
    let store = root.join("host/var/lib/phoenix/certs");
    if let Err(error) = phoenix_testkit::pki::write_manifest_store(&store, &model) {
        eprintln!("phoenix-fakes: cannot write {}: {error}", store.display());
        std::process::exit(2);
    }
    let env = format!(
        "PHOENIX_PVE_URL={}\nPHOENIX_PVE_TOKEN='{}'\nPVE_CA={}\nPHOENIX_PORTAINER_URL={}\nPORTAINER_CA={}\n",
        pve.url(),
        pve.token,
        pve.server.ca_file.display(),
        portainer.server.url(),
        portainer.server.ca_file.display()
    );
    std::fs::write(root.join("fakes.env"), env).expect("write fakes.env");
    eprintln!("phoenix-fakes: Proxmox VE at {}, Portainer at {}", pve.url(), portainer.server.url());
    // Serve until stdin closes (the script that started us ends).
    let _ = tokio::task::spawn_blocking(|| std::io::copy(&mut std::io::stdin(), &mut std::io::sink())).await;
}
