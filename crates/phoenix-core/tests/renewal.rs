//! The renewal plan on the bundled example: what is ordered, where the files go with which
//! owner and mode, which actions follow, and where the CA root is installed.

use phoenix_core::certificates::renewal::*;
use phoenix_core::deploy::{Place, PostAction};
use phoenix_model::model::{GuestKind, Model, San};

fn example() -> Model {
    let source = phoenix_testkit::example_source();
    phoenix_model::check(&phoenix_testkit::example_config(), &source).model.expect("example loads")
}

fn cert<'m>(model: &'m Model, name: &str) -> &'m phoenix_model::model::Certificate {
    model.certificates.iter().find(|c| c.name == name).unwrap()
}

#[test]
fn orders_name_the_common_name_first_without_repeats() {
    let model = example();
    let order = order_for(cert(&model, "gateway"));
    assert_eq!(order.identifiers[0], "gateway.internal.thinkheads.ai");
    assert_eq!(order.identifiers.len(), 6, "{:?}", order.identifiers);
    assert_eq!(order.sans()[5], San::Dns("whoami.internal.thinkheads.ai".into()));
    let traefik = order_for(cert(&model, "traefik"));
    assert_eq!(traefik.identifiers.iter().filter(|i| *i == "traefik.internal.thinkheads.ai").count(), 1);
}

const CHAIN: &str =
    "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nBBBB\n-----END CERTIFICATE-----\n";

#[test]
fn the_store_keeps_the_chain_and_the_guest_gets_what_the_manifest_asks() {
    let model = example();
    let gateway = files_for(cert(&model, "gateway"), "/var/lib/phoenix/certs/", CHAIN, "KEY");
    let places: Vec<String> = gateway.iter().map(|f| f.place.to_string()).collect();
    assert_eq!(
        places,
        [
            "/var/lib/phoenix/certs/gateway.crt",
            "/var/lib/phoenix/certs/gateway.key",
            "Lxc 101:/etc/nginx/ssl/gateway.crt",
            "Lxc 101:/etc/nginx/ssl/gateway.key"
        ]
    );
    assert_eq!(gateway.iter().map(|f| f.mode).collect::<Vec<_>>(), [0o644, 0o600, 0o644, 0o640]);
    assert_eq!(gateway[2].owner.as_deref(), Some("root:www-data"));
    assert_eq!(gateway[2].content, CHAIN.as_bytes(), "include_ca: the chain");
    let client = files_for(cert(&model, "traefik-client"), "/s", CHAIN, "KEY");
    assert_eq!(String::from_utf8(client[2].content.clone()).unwrap(), "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
    assert_eq!(client[0].content, CHAIN.as_bytes(), "the store always keeps the chain");
}

#[test]
fn the_structured_reload_replaces_the_shell_string_and_traefik_files_are_touched() {
    let model = example();
    assert_eq!(
        post_actions(&model, cert(&model, "gateway")),
        [PostAction::Reload { guest: 101, guest_kind: GuestKind::Lxc, service: "nginx".into() }]
    );
    assert_eq!(
        post_actions(&model, cert(&model, "traefik")),
        [
            PostAction::Touch { place: Place { guest: Some((102, GuestKind::Lxc)), path: "/etc/traefik/dynamic/phoenix.yml".into() } },
            PostAction::Reload { guest: 102, guest_kind: GuestKind::Lxc, service: "traefik".into() },
        ]
    );
    assert_eq!(
        post_actions(&model, cert(&model, "portainer")),
        [PostAction::Shell { command: "qm guest exec 1001 -- docker restart portainer_server".into() }]
    );
    assert_eq!(post_actions(&model, cert(&model, "portainer-agent")), []);
}

#[test]
fn the_root_goes_to_the_store_the_host_and_the_edge_guests() {
    let model = example();
    let (files, actions) = trust_plan(&model, "ROOT", "/var/lib/phoenix/certs", "/usr/local/share/ca-certificates/phoenix-root-ca.crt");
    let places: Vec<String> = files.iter().map(|f| f.place.to_string()).collect();
    assert_eq!(
        places,
        [
            "/var/lib/phoenix/certs/root_ca.crt",
            "/usr/local/share/ca-certificates/phoenix-root-ca.crt",
            "Lxc 101:/usr/local/share/ca-certificates/phoenix-root-ca.crt",
            "Lxc 102:/usr/local/share/ca-certificates/phoenix-root-ca.crt",
        ]
    );
    assert_eq!(actions.len(), 3);
    assert!(check_root("not pem").is_err());
}

/// The Debian package ships the renewal units for the default paths (not enabled): they are
/// exactly what `phoenix certs timer` writes for those paths.
#[test]
fn the_packaged_timer_units_are_the_ones_phoenix_writes() {
    use phoenix_core::certificates::timer;
    use phoenix_model::paths::{DEFAULT_CONFIG_DIR, DEFAULT_STORE};
    let packaging = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging/systemd");
    for file in timer::units("/usr/lib/systemd/system", "/usr/bin/phoenix", DEFAULT_CONFIG_DIR, DEFAULT_STORE) {
        let name = file.place.path.rsplit('/').next().unwrap().to_string();
        let shipped = std::fs::read(packaging.join(&name)).unwrap_or_default();
        if std::env::var_os("PHOENIX_WRITE_UNITS").is_some() {
            std::fs::write(packaging.join(&name), &file.content).unwrap();
            continue;
        }
        assert_eq!(
            String::from_utf8_lossy(&shipped),
            String::from_utf8_lossy(&file.content),
            "packaging/systemd/{name} is stale (PHOENIX_WRITE_UNITS=1 rewrites it)"
        );
    }
}

/// Issue 16: the original's manifests name files in a guest's persistent-data folder on the
/// node, with one `permissions` for both; phoenix writes them there, with that mode.
#[test]
fn files_in_a_persistent_data_folder_are_written_on_the_node_with_the_manifests_mode() {
    let mut source = phoenix_testkit::example_source();
    source.edit_json(&phoenix_testkit::example_config().join("certificate-manifest.json"), |v| {
        v.as_array_mut().unwrap().push(serde_json::json!({
            "common_name": "proxy.internal.thinkheads.ai",
            "cert_path": "/mnt/pve/quickOS/lxc-persistent-data/102/certs/proxy.crt",
            "key_path": "/mnt/pve/quickOS/lxc-persistent-data/102/certs/proxy.key",
            "owner": "root:root", "permissions": "640",
            "post_renewal_command": "pct exec 102 -- systemctl reload traefik"
        }));
    });
    let model = phoenix_model::check(&phoenix_testkit::example_config(), &source).model.unwrap();
    let cert = cert(&model, "proxy.internal.thinkheads.ai");
    let installed = installed_files(cert);
    let places: Vec<(Place, u32)> = installed.iter().map(|f| (f.place.clone(), f.mode)).collect();
    assert_eq!(
        places,
        [
            (Place::host("/mnt/pve/quickOS/lxc-persistent-data/102/certs/proxy.crt"), 0o640),
            (Place::host("/mnt/pve/quickOS/lxc-persistent-data/102/certs/proxy.key"), 0o640),
        ]
    );
    // The guest still counts for what follows an install there: Traefik watches its dynamic file.
    let actions = post_actions(&model, cert);
    assert!(matches!(&actions[0], PostAction::Touch { place } if place.guest.map(|g| g.0) == Some(102)), "{actions:?}");
    assert!(matches!(&actions[1], PostAction::Shell { command } if command.contains("pct exec 102")));
}
