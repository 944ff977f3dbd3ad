//! `phoenix sync` end to end against the Proxmox VE simulator and the Portainer fake (real
//! HTTPS, phoenix's real clients), with the host and the guests as folders: the first sync
//! applies everything, a second plan is empty, faults leave independent steps done and a rerun
//! converges, and the servers refuse what the real services refuse.

mod rig;

use phoenix_core::plan::Domain;
use phoenix_drivers::http::{Backoff, Trust};
use phoenix_drivers::pve::{PveClient, PveSettings};
use phoenix_exec::sync::observe::ObserveInput;
use phoenix_exec::sync::{plan_sync, Event, StepOutcome};
use phoenix_sim::server::Fault;
use rig::{all, Rig, STORE, TRUST_FILE};
use std::collections::BTreeSet;
use std::time::Duration;

#[tokio::test]
async fn the_first_sync_applies_everything_and_the_second_plans_nothing() {
    let rig = Rig::new("converge").await;
    let plan = rig.plan(&all()).await.unwrap();
    assert!(plan.steps.iter().any(|s| s.id == "firewall:cluster:options"));
    assert!(plan.steps.iter().any(|s| s.id == "portainer:bootstrap"));
    let (summary, events) = rig.apply(&plan).await;
    assert_eq!((summary.failed, summary.skipped), (0, 0), "{}", summary.to_text());
    assert_eq!(events.iter().filter(|e| matches!(e, Event::Started { .. })).count(), plan.steps.len());

    // The node holds what was rendered: the cluster firewall on, guest rules, NIC flags.
    rig.pve.with(|sim| {
        assert!(sim.files["firewall/cluster.fw"].contains("enable: 1"));
        assert!(sim.files["firewall/101.fw"].contains("[RULES]"));
        assert!(sim.guest_key(101, "net0").unwrap().contains("firewall=1"));
        assert!(sim.tasks.count("qmconfig") > 0, "VM config changes went through tasks");
        assert!(sim.gaps.is_empty(), "{:?}", sim.gaps);
    });
    {
        let state = rig.portainer.state.lock().unwrap();
        assert!(!state.endpoints.is_empty());
        assert!(state.stacks.values().all(|s| s.file.contains("phoenix.managed=true")));
        let env = serde_json::to_string(&state.stacks.values().map(|s| s.env.clone()).collect::<Vec<_>>()).unwrap();
        assert!(env.contains("test-secret-value"), "secrets reach Portainer: {env}");
    }
    assert!(rig.root.join("host/etc/dnsmasq.d/phoenix.conf").is_file());
    assert!(rig.root.join("guest-101/etc/nginx/nginx.conf").is_file());
    assert!(rig.root.join("host").join(TRUST_FILE.trim_start_matches('/')).is_file());
    assert!(
        std::fs::metadata(rig.root.join("portainer-api-key"))
            .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
            .unwrap()
            == 0o600
    );

    let again = rig.plan(&all()).await.unwrap();
    assert!(again.is_empty(), "a second sync plans nothing:\n{}", again.to_text());
    // And the plan never prints a secret.
    assert!(!serde_json::to_string(&plan).unwrap().contains("test-secret-value"));
    assert!(!plan.to_text().contains("test-secret-value"));
}

#[tokio::test]
async fn a_dry_run_plan_changes_nothing() {
    let rig = Rig::new("dry").await;
    let plan = rig.plan(&all()).await.unwrap();
    assert!(!plan.is_empty());
    assert_eq!(rig.pve.with(|sim| sim.writes), 0);
    assert_eq!(rig.portainer.state.lock().unwrap().writes, 0);
    assert!(!rig.root.join("host/etc/dnsmasq.d/phoenix.conf").exists());
}

#[tokio::test]
async fn faults_fail_their_steps_only_and_a_rerun_converges() {
    let rig = Rig::new("faults").await;
    let controls = &rig.pve.server.controls;
    // Retried and absorbed: pveproxy's "node not reached" and lock timeouts on writes.
    controls.inject(Some("PUT"), "/options", Fault::Status(596, "Connection refused".into()), 2);
    controls.inject(Some("POST"), "/rules", Fault::Lock, 3);
    // Not absorbed: guest 102's rules see a reset connection on every attempt, and guest 103's
    // hang past the client's timeout.
    controls.inject(Some("POST"), "/lxc/102/firewall/rules", Fault::Reset, 10);
    controls.inject(Some("POST"), "/lxc/103/firewall/rules", Fault::Hang(Duration::from_secs(3)), 10);
    let plan = rig.plan(&all()).await.unwrap();
    let (summary, _) = rig.apply(&plan).await;
    let outcome = |id: &str| summary.results.iter().find(|r| r.id == id).map(|r| r.outcome.clone()).unwrap_or_else(|| panic!("{id}"));
    assert!(matches!(outcome("firewall:guest:102:rules"), StepOutcome::Failed { .. }), "{}", summary.to_text());
    assert!(matches!(outcome("firewall:guest:103:rules"), StepOutcome::Failed { .. }));
    // Their dependents are skipped, and so is the cluster switch-on that waits for every rule.
    assert!(matches!(outcome("firewall:guest:102:options"), StepOutcome::Skipped { .. }));
    assert!(matches!(outcome("nic:102"), StepOutcome::Skipped { .. }));
    assert!(matches!(outcome("firewall:cluster:options"), StepOutcome::Skipped { .. }));
    // Independent steps finished.
    assert!(matches!(outcome("firewall:guest:101:rules"), StepOutcome::Done { .. }));
    assert!(matches!(outcome("dns"), StepOutcome::Done { .. }));
    assert!(summary.done > 10);

    controls.clear_faults();
    let rerun = rig.plan(&all()).await.unwrap();
    assert!(rerun.steps.len() < plan.steps.len());
    let (second, _) = rig.apply(&rerun).await;
    assert_eq!((second.failed, second.skipped), (0, 0), "{}", second.to_text());
    let done = rig.plan(&all()).await.unwrap();
    assert!(done.is_empty(), "{}", done.to_text());
}

#[tokio::test]
async fn stacks_phoenix_does_not_own_are_left_alone() {
    let rig = Rig::new("foreign").await;
    let first = rig.plan(&all()).await.unwrap();
    let (summary, _) = rig.apply(&first).await;
    assert_eq!(summary.failed, 0, "{}", summary.to_text());
    // Replace one of phoenix's stacks by a hand-made one of the same name.
    let (name, endpoint, file) = {
        let mut state = rig.portainer.state.lock().unwrap();
        let stack = state.stacks.values().next().unwrap().clone();
        state.stacks.remove(&stack.id);
        (stack.name, stack.endpoint_id, "services:\n  web:\n    image: nginx\n".to_string())
    };
    rig.portainer.add_foreign_stack(&name, endpoint, &file);
    let plan = rig.plan(&all()).await.unwrap();
    let step = plan.steps.iter().find(|s| s.id.ends_with(&name)).expect("a step for the foreign stack");
    assert!(step.reason.contains("phoenix does not own it"), "{}", step.reason);
    let (summary, _) = rig.apply(&plan).await;
    assert_eq!(summary.failed, 1);
    let state = rig.portainer.state.lock().unwrap();
    assert!(state.stacks.values().any(|s| s.name == name && s.file == file), "the foreign stack is untouched");
}

#[tokio::test]
async fn the_fakes_refuse_what_the_real_services_refuse() {
    let rig = Rig::new("contract").await;
    let client = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(&rig.pve.server.ca_file).unwrap()).unwrap())
        .build()
        .unwrap();
    // Proxmox: a wrong token, an unknown parameter; a JSON body is accepted (pve-http-server
    // since 3.0-6), as the real server accepts it.
    let rules = format!("{}/cluster/firewall/rules", rig.pve.url());
    let wrong = client.get(&rules).header("Authorization", "PVEAPIToken=root@pam!x=wrong").send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    let auth = format!("PVEAPIToken={}", rig.pve.token);
    let unknown = client
        .post(&rules)
        .header("Authorization", &auth)
        .form(&[("type", "in"), ("action", "ACCEPT"), ("colour", "red")])
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 400);
    assert!(unknown.text().await.unwrap().contains("property is not defined in schema"));
    let json_body = client
        .post(&rules)
        .header("Authorization", &auth)
        .json(&serde_json::json!({ "type": "in", "action": "ACCEPT" }))
        .send()
        .await
        .unwrap();
    assert_eq!(json_body.status(), 200, "a JSON body is read as parameters");

    // Portainer: a JSON body for environment creation, a stack update without endpointId.
    rig.portainer.state.lock().unwrap().api_keys.push("ptr_test".into());
    let portainer = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(&rig.portainer.server.ca_file).unwrap()).unwrap())
        .build()
        .unwrap();
    let base = rig.portainer.server.url();
    let json_endpoint = portainer
        .post(format!("{base}/api/endpoints"))
        .header("X-API-Key", "ptr_test")
        .json(&serde_json::json!({ "Name": "x", "EndpointCreationType": 2, "URL": "tcp://127.0.0.1:9001" }))
        .send()
        .await
        .unwrap();
    assert_eq!(json_endpoint.status(), 400);
    // users/admin_init.go: the payload's Validate refuses whitespace in the username.
    let spaced = portainer
        .post(format!("{base}/api/users/admin/init"))
        .json(&serde_json::json!({ "Username": "the admin", "Password": "long-enough-password" }))
        .send()
        .await
        .unwrap();
    assert_eq!(spaced.status(), 400);
    assert!(spaced.text().await.unwrap().contains("Must not contain any whitespace"));
    let no_key = portainer.get(format!("{base}/api/stacks")).send().await.unwrap();
    assert_eq!(no_key.status(), 401);
    rig.portainer.add_foreign_stack("someone-elses", 7, "services: {}\n");
    let stack = *rig.portainer.state.lock().unwrap().stacks.keys().next().unwrap();
    let update = portainer
        .put(format!("{base}/api/stacks/{stack}"))
        .header("X-API-Key", "ptr_test")
        .json(&serde_json::json!({ "stackFileContent": "x" }))
        .send()
        .await
        .unwrap();
    // stacks/stack_update.go (2.20+): endpointId is a required query parameter.
    assert_eq!(update.status(), 400);
    assert!(update.text().await.unwrap().contains("Invalid query parameter: endpointId"));

    // phoenix with a wrong token cannot observe, and says so.
    let bad = PveClient::new(PveSettings {
        url: rig.pve.url(),
        token: "root@pam!phoenix=wrong".into(),
        trust: Trust::Ca(rig.pve.server.ca_file.clone()),
        timeout: Duration::from_secs(2),
        backoff: Backoff { attempts: 2, first_delay: Duration::from_millis(5) },
        task_timeout: Duration::from_secs(5),
    })
    .unwrap();
    let domains = BTreeSet::from([Domain::Firewall]);
    let input = ObserveInput {
        model: &rig.model,
        rendered: &rig.rendered,
        domains: &domains,
        pve: &bad,
        portainer: &rig.portainer_client,
        target: &rig.target,
        node: "pve",
        store_dir: STORE,
        host_trust_file: TRUST_FILE,
        now: 0,
        boot_delays: true,
        feature_inputs: &Default::default(),
    };
    let error = plan_sync(&input, &|_| None).await.unwrap_err();
    assert!(error.message.contains("401"), "{error}");

    // A pinned fingerprint that does not match is refused before anything is sent.
    let pinned = PveClient::new(PveSettings {
        url: rig.pve.url(),
        token: rig.pve.token.clone().into(),
        trust: Trust::Fingerprint("00".repeat(32)),
        timeout: Duration::from_secs(2),
        backoff: Backoff { attempts: 1, first_delay: Duration::from_millis(5) },
        task_timeout: Duration::from_secs(5),
    })
    .unwrap();
    let before = rig.pve.server.controls.requests.load(std::sync::atomic::Ordering::SeqCst);
    let pinned_input = ObserveInput { pve: &pinned, ..input };
    let error = plan_sync(&pinned_input, &|_| None).await.unwrap_err();
    assert_eq!(rig.pve.server.controls.requests.load(std::sync::atomic::Ordering::SeqCst), before);
    // The refusal names its cause: the verifier's words, not only reqwest's "error sending request".
    assert!(error.message.contains("does not match the pinned fingerprint"), "{error}");

    // A node certificate from another CA: rustls's reason is in the message, and the refusal
    // is final: one connection, however many attempts a transient failure would get.
    let other_ca = PveClient::new(PveSettings {
        url: rig.pve.url(),
        token: rig.pve.token.clone().into(),
        trust: Trust::Ca(rig.portainer.server.ca_file.clone()),
        timeout: Duration::from_secs(2),
        backoff: Backoff { attempts: 4, first_delay: Duration::from_millis(5) },
        task_timeout: Duration::from_secs(5),
    })
    .unwrap();
    let connections = || rig.pve.server.controls.connections.load(std::sync::atomic::Ordering::SeqCst);
    let before = connections();
    let error = plan_sync(&ObserveInput { pve: &other_ca, ..input }, &|_| None).await.unwrap_err();
    assert!(error.message.contains("invalid peer certificate") && error.message.contains("UnknownIssuer"), "{error}");
    assert_eq!(connections() - before, 1, "a refused certificate is not tried again");
}

/// Issue 13: "nothing to do" means the services use the certificates phoenix keeps. The first
/// sync installs every guest's copies from the store (none was there); a copy deleted or
/// replaced later is planned and installed again, and then nothing is left to do.
#[tokio::test]
async fn a_certificate_missing_or_changed_in_its_guest_is_installed_again() {
    let rig = Rig::new("reinstall").await;
    let first = rig.plan(&all()).await.unwrap();
    assert!(first.steps.iter().any(|s| s.id == "cert-install:gateway"), "{}", first.to_text());
    let (summary, _) = rig.apply(&first).await;
    assert_eq!((summary.failed, summary.skipped), (0, 0), "{}", summary.to_text());
    let cert = rig.root.join("guest-101/etc/nginx/ssl/gateway.crt");
    let key = rig.root.join("guest-101/etc/nginx/ssl/gateway.key");
    let store_key = std::fs::read(rig.root.join("host").join(STORE.trim_start_matches('/')).join("gateway.key")).unwrap();
    assert_eq!(std::fs::read(&key).unwrap(), store_key, "the first sync installed the guest's key");
    assert!(rig.plan(&all()).await.unwrap().is_empty());

    std::fs::remove_file(&cert).unwrap();
    std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\nsomeone else's\n-----END PRIVATE KEY-----\n").unwrap();
    let plan = rig.plan(&all()).await.unwrap();
    let step = plan.steps.iter().find(|s| s.id == "cert-install:gateway").expect("the drift is planned");
    assert!(
        step.reason.contains("gateway.crt is missing") && step.reason.contains("gateway.key differs from the store"),
        "{}",
        step.reason
    );
    assert!(step.diff.contains("root:www-data, 0640"), "{}", step.diff);
    let (summary, _) = rig.apply(&plan).await;
    assert_eq!((summary.failed, summary.skipped), (0, 0), "{}", summary.to_text());
    assert!(cert.is_file());
    assert_eq!(std::fs::read(&key).unwrap(), store_key);
    assert!(rig.plan(&all()).await.unwrap().is_empty(), "converged means deployed");

    // A key made readable by others is drift too.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let plan = rig.plan(&all()).await.unwrap();
    let step = plan.steps.iter().find(|s| s.id == "cert-install:gateway").expect("the mode drift is planned");
    assert!(step.reason.contains("gateway.key has mode 0644, not 0640"), "{}", step.reason);
    rig.apply(&plan).await;
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o640);
    assert!(rig.plan(&all()).await.unwrap().is_empty());
}
