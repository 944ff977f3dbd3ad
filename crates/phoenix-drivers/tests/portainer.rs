//! phoenix's Portainer client and sync against the Portainer fake as Portainer CE 2.20-2.23
//! behaves (issue 18): agents that are not up yet, deploys that take long or fail, names
//! Portainer compares without case or finds on containers, the first-administrator window,
//! and a bootstrap interrupted at each of its calls.

mod rig;

use phoenix_core::plan::{Action, Domain, Plan};
use phoenix_exec::sync::{StepOutcome, Summary};
use phoenix_sim::server::Fault;
use rig::Rig;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const AGENT: &str = "tcp://10.0.0.102:9001";
const WHOAMI: &str = "stack:drphoenix:whoami-production";

fn domains() -> BTreeSet<Domain> {
    BTreeSet::from([Domain::Portainer, Domain::Stacks])
}

fn outcome(summary: &Summary, id: &str) -> StepOutcome {
    summary.results.iter().find(|r| r.id == id).map(|r| r.outcome.clone()).unwrap_or_else(|| panic!("no {id}: {}", summary.to_text()))
}

fn failure(summary: &Summary, id: &str) -> String {
    match outcome(summary, id) {
        StepOutcome::Failed { message } => message,
        other => panic!("{id} did not fail: {other:?}\n{}", summary.to_text()),
    }
}

fn blocked_reason(plan: &Plan, id: &str) -> String {
    let step = plan.steps.iter().find(|s| s.id == id).unwrap_or_else(|| panic!("no {id}: {}", plan.to_text()));
    assert!(matches!(step.action, Action::Blocked), "{id} is not blocked: {}", plan.to_text());
    step.reason.clone()
}

async fn sync(rig: &Rig) -> Summary {
    let plan = rig.plan(&domains()).await.unwrap();
    rig.apply(&plan).await.0
}

#[tokio::test]
async fn an_agent_that_is_not_up_yet_is_waited_for() {
    let rig = Rig::new("agent-late").await;
    rig.portainer.state.lock().unwrap().agents_down.insert(AGENT.into(), 3);
    let summary = sync(&rig).await;
    assert_eq!(summary.failed, 0, "{}", summary.to_text());
    let state = rig.portainer.state.lock().unwrap();
    assert_eq!(state.agents_down[AGENT], 0, "created once the agent answered");
    assert!(state.stacks.values().any(|s| s.name == "whoami-production"));
}

#[tokio::test]
async fn an_agent_that_never_answers_fails_its_environment_in_bounded_time_with_the_reason() {
    let rig = Rig::new("agent-down").await;
    rig.portainer.state.lock().unwrap().agents_down.insert(AGENT.into(), usize::MAX);
    let started = Instant::now();
    let summary = sync(&rig).await;
    let message = failure(&summary, "endpoint:drphoenix");
    assert!(message.contains("did not reach the agent of drphoenix at tcp://10.0.0.102:9001 within 2 s"), "{message}");
    assert!(message.contains("Unable to get environment type") && message.contains("connection refused"), "{message}");
    assert!(matches!(outcome(&summary, WHOAMI), StepOutcome::Skipped { .. }), "its stacks wait");
    let pings = usize::MAX - rig.portainer.state.lock().unwrap().agents_down[AGENT];
    assert!((2..=12).contains(&pings), "bounded in count: {pings} pings");
    assert!(started.elapsed() < Duration::from_secs(20), "bounded in time: {:?}", started.elapsed());
}

#[tokio::test]
async fn an_agent_paired_with_another_server_is_not_waited_for() {
    let rig = Rig::new("agent-paired").await;
    rig.portainer.state.lock().unwrap().agents_paired_elsewhere.insert(AGENT.into());
    let started = Instant::now();
    let summary = sync(&rig).await;
    let message = failure(&summary, "endpoint:drphoenix");
    assert!(message.contains("already paired with another Portainer instance") && message.contains("AGENT_SECRET"), "{message}");
    assert!(started.elapsed() < Duration::from_secs(2), "no waiting: {:?}", started.elapsed());
}

/// A Portainer failing while the plan is applied holds back only what depends on it.
#[tokio::test]
async fn a_portainer_failing_during_apply_stops_only_its_own_steps() {
    let rig = Rig::new("portainer-fails").await;
    rig.portainer.server.controls.inject(Some("POST"), "/api/users/admin/init", Fault::Status(500, "database is locked".into()), 1);
    let plan = rig.plan(&rig::all()).await.unwrap();
    let summary = rig.apply(&plan).await.0;
    assert!(matches!(outcome(&summary, "portainer:bootstrap"), StepOutcome::Failed { .. }));
    assert!(matches!(outcome(&summary, WHOAMI), StepOutcome::Skipped { .. }));
    for independent in ["dns", "firewall:cluster:options"] {
        assert!(matches!(outcome(&summary, independent), StepOutcome::Done { .. }), "{independent}: {}", summary.to_text());
    }
}

#[tokio::test]
async fn a_deploy_cut_by_the_timeout_is_not_sent_again_and_the_next_run_finds_it() {
    let rig = Rig::new("deploy-slow").await;
    rig.portainer.server.controls.inject(Some("POST"), "/api/stacks/create", Fault::Late(Duration::from_secs(3)), 10);
    let summary = sync(&rig).await;
    let message = failure(&summary, WHOAMI);
    assert!(message.contains("no answer within 2 s") && message.contains("does not send it again"), "{message}");
    let (deploys, stacks) = {
        let state = rig.portainer.state.lock().unwrap();
        (state.deploys, state.stacks.len())
    };
    assert_eq!(deploys, stacks, "each stack deployed once: none sent twice");
    rig.portainer.server.controls.clear_faults();
    let next = rig.plan(&domains()).await.unwrap();
    assert!(next.steps.iter().all(|s| !s.id.starts_with("stack:")), "the deployed stacks are observed: {}", next.to_text());
}

#[tokio::test]
async fn a_failed_update_is_one_deploy_and_keeps_the_deployed_file() {
    let rig = Rig::new("deploy-fails").await;
    assert_eq!(sync(&rig).await.failed, 0);
    let before = {
        let mut state = rig.portainer.state.lock().unwrap();
        let stack = state.stacks.values_mut().find(|s| s.name == "whoami-production").unwrap();
        stack.file.push_str("# changed by hand\n");
        let file = stack.file.clone();
        state.deploy_failure = Some("pull access denied for traefik/whoami, repository does not exist".into());
        (state.deploys, file)
    };
    let summary = sync(&rig).await;
    assert!(failure(&summary, WHOAMI).contains("pull access denied"), "{}", summary.to_text());
    let state = rig.portainer.state.lock().unwrap();
    assert_eq!(state.deploys, before.0 + 1, "a failed deploy is not retried");
    assert_eq!(state.stacks.values().find(|s| s.name == "whoami-production").unwrap().file, before.1, "rolled back");
}

#[tokio::test]
async fn names_portainer_would_refuse_block_the_stack_with_the_reason() {
    let rig = Rig::new("names").await;
    let summary = sync(&rig).await;
    assert_eq!(summary.failed, 0, "{}", summary.to_text());
    let endpoint = {
        let mut state = rig.portainer.state.lock().unwrap();
        state.stacks.retain(|_, s| s.name != "whoami-production");
        state.endpoints.iter().find(|(_, e)| e.0 == "drphoenix").map(|(id, _)| *id).unwrap()
    };
    // A compose project of that name started outside Portainer.
    rig.portainer.state.lock().unwrap().foreign_projects.insert(endpoint, BTreeSet::from(["whoami-production".to_string()]));
    let plan = rig.plan(&domains()).await.unwrap();
    assert!(blocked_reason(&plan, WHOAMI).contains("outside Portainer"), "{}", plan.to_text());
    // A stack of the same name in other letters (Portainer compares without case).
    rig.portainer.state.lock().unwrap().foreign_projects.clear();
    rig.portainer.add_foreign_stack("Whoami-Production", endpoint, "services: {}\n");
    let plan = rig.plan(&domains()).await.unwrap();
    assert!(blocked_reason(&plan, WHOAMI).contains("phoenix does not own it"), "{}", plan.to_text());
}

#[tokio::test]
async fn a_fresh_portainer_past_its_first_administrator_window_says_what_to_do() {
    let rig = Rig::new("admin-window").await;
    rig.portainer.started_ago(Duration::from_secs(6 * 60));
    let plan = rig.plan(&domains()).await.unwrap();
    let reason = blocked_reason(&plan, "portainer:observe");
    assert!(reason.contains("AdminInitTimeout") && reason.contains("Restart the Portainer server"), "{reason}");
    assert!(rig.portainer.state.lock().unwrap().admin.is_none());
}

/// Every call of the bootstrap that changes or decides something, cut after Portainer acted
/// on it (the answer lost), and the key that cannot be kept: the next run completes, and the
/// one after plans nothing. (Listing users between logging in and creating the key changes
/// nothing: a cut there leaves what a cut of the login leaves.)
#[tokio::test]
async fn a_bootstrap_interrupted_at_any_call_is_completed_by_the_next_run() {
    let cuts = [(Some("POST"), "/api/users/admin/init"), (Some("POST"), "/api/auth"), (Some("POST"), "/tokens"), (None, "key file")];
    for (method, path) in cuts {
        let rig = Rig::new(&format!("cut-{}", path.replace('/', "-"))).await;
        let key_file = rig.root.join("portainer-api-key");
        match method {
            Some(method) => rig.portainer.server.controls.inject(Some(method), path, Fault::AfterHandling(502, "bad gateway".into()), 10),
            None => std::fs::create_dir_all(key_file.join("in-the-way")).unwrap(),
        }
        let first = sync(&rig).await;
        assert!(matches!(outcome(&first, "portainer:bootstrap"), StepOutcome::Failed { .. }), "{path}: {}", first.to_text());
        rig.portainer.server.controls.clear_faults();
        let _ = std::fs::remove_dir_all(&key_file);
        let second = sync(&rig).await;
        assert_eq!((second.failed, second.skipped), (0, 0), "{path}: {}", second.to_text());
        assert!(key_file.is_file(), "{path}: the key is kept");
        let third = rig.plan(&domains()).await.unwrap();
        assert!(third.is_empty(), "{path}: {}", third.to_text());
    }
}

/// The fake as Portainer's handlers answer (stacks/stack_update.go): an update naming another
/// environment moves the stack there; one without endpointId finds environment 0, which
/// does not exist.
#[tokio::test]
async fn a_stack_update_with_another_environment_reassociates_it() {
    let rig = Rig::new("reassociate").await;
    assert_eq!(sync(&rig).await.failed, 0);
    let stack = {
        let mut state = rig.portainer.state.lock().unwrap();
        state.endpoints.insert(99, ("elsewhere".into(), "tcp://10.0.0.111:9001".into(), 2));
        state.api_keys.push("ptr_test".into());
        state.stacks.values().find(|s| s.name == "whoami-production").unwrap().id
    };
    let client = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(&rig.portainer.server.ca_file).unwrap()).unwrap())
        .build()
        .unwrap();
    let put = |query: &'static str| {
        client
            .put(format!("{}/api/stacks/{stack}{query}", rig.portainer.server.url()))
            .header("X-API-Key", "ptr_test")
            .json(&serde_json::json!({ "stackFileContent": "services: {}\n" }))
            .send()
    };
    assert_eq!(put("").await.unwrap().status(), 400);
    assert_eq!(put("?endpointId=98").await.unwrap().status(), 404);
    assert_eq!(put("?endpointId=99").await.unwrap().status(), 200);
    assert_eq!(rig.portainer.state.lock().unwrap().stacks[&stack].endpoint_id, 99);
}
