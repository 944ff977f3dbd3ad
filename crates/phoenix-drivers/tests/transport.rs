//! Credentials travel over verified TLS only: an `http://` URL is refused before anything is
//! sent, and a redirect from a verified server is not followed (it would carry the API key, and
//! during a bootstrap the administrator's password, wherever it points).

mod rig;

use phoenix_core::plan::Domain;
use phoenix_drivers::http::{Backoff, Trust};
use phoenix_drivers::portainer::{PortainerClient, PortainerSettings};
use phoenix_drivers::pve::{PveClient, PveSettings};
use phoenix_sim::server::Fault;
use rig::Rig;
use std::io::Read;
use std::time::Duration;

#[test]
fn plain_http_is_refused_for_both_apis() {
    let pve = PveClient::new(PveSettings::new(
        "http://127.0.0.1:8006/api2/json".into(),
        "root@pam!x=y".into(),
        Trust::Fingerprint("00".repeat(32)),
    ));
    let error = pve.err().expect("refused");
    assert!(error.message.contains("is not https://") && error.hint.is_some(), "{error:?}");
    let portainer = PortainerClient::new(PortainerSettings {
        url: "http://127.0.0.1:9000".into(),
        trust: Trust::Fingerprint("00".repeat(32)),
        api_key: Some("key".into()),
        key_file: "/nonexistent".into(),
        admin_user: "admin".into(),
        admin_password: None,
        timeout: Duration::from_secs(1),
        deploy_timeout: Duration::from_secs(5),
        agent_wait: Duration::from_secs(3),
        backoff: Backoff::default(),
    });
    assert!(portainer.err().expect("refused").message.contains("is not https://"));
}

#[tokio::test]
async fn a_redirect_is_not_followed_with_the_credentials() {
    // Whatever connects here would have followed the redirect.
    let thief = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    thief.set_nonblocking(true).unwrap();
    let location = format!("http://{}/api/users/admin/init", thief.local_addr().unwrap());
    let rig = Rig::new("redirect").await;
    rig.portainer.server.controls.inject(None, "/api", Fault::Redirect(location), 100);
    // A redirect is an answer phoenix does not accept: Portainer is not observed, and its steps
    // wait behind one blocked step that says why (issue 18: the other domains go on).
    let plan = rig.plan(&std::collections::BTreeSet::from([Domain::Portainer])).await.expect("a plan");
    let observe = plan.steps.iter().find(|s| s.id == "portainer:observe").expect("Portainer's steps wait");
    assert!(matches!(observe.action, phoenix_core::plan::Action::Blocked) && observe.reason.contains("307"), "{observe:?}");
    assert_eq!(plan.steps.len(), 1, "nothing else is planned for Portainer: {}", plan.to_text());
    std::thread::sleep(Duration::from_millis(200));
    let mut stolen = Vec::new();
    if let Ok((mut stream, _)) = thief.accept() {
        let _ = stream.read_to_end(&mut stolen);
        panic!("phoenix followed the redirect: {}", String::from_utf8_lossy(&stolen));
    }
}
