//! Benchmark of `phoenix sync firewall dns gateway` against the Proxmox VE simulator with
//! injected latency, the files written into a rehearsal folder (on tokio's blocking pool, as
//! the real target does, while the API steps go on):
//! `cargo run --release -p phoenix-drivers --example bench_sync -- [GUESTS] [LATENCY_MS] [PLAN_GUESTS] [NODES]`
//! (defaults 500, 50, 5000, 1; with NODES > 1 the guests are spread over a cluster's nodes in turn). Prints the plan's critical path (its longest chain of API calls
//! times the latency), the time the apply took and their ratio, for a first sync (every list
//! empty: rules created in reverse) and a resync after drift (in every guest's list, the GUI
//! deleted the second rule and disabled the first: the first edited in place with the observed
//! digest, the second created on top, moved back with `moveto` and enabled, each after a
//! re-read); then observing and planning a PLAN_GUESTS inventory without latency. The fake runs on its own thread (the second core),
//! as a real Proxmox node would not share phoenix's CPU. The guests start with their NICs as
//! before a firewall (`phoenix_lab::deployed::simulated_node`).

use phoenix_core::plan::Domain;
use phoenix_drivers::host::{GuestAccess, HostTarget, SystemRunner};
use phoenix_drivers::http::{Backoff, Trust};
use phoenix_drivers::portainer::{PortainerClient, PortainerSettings};
use phoenix_drivers::pve::{PveClient, PveSettings};
use phoenix_exec::sync::observe::{observe, ObserveInput};
use phoenix_exec::sync::{apply, ApplyOptions, Drivers};
use phoenix_exec::{DriverError, Issued, Issuer};
use phoenix_model::model::Model;
use phoenix_sim::pve_server::SimPve;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

struct NoAcme;

impl Issuer for NoAcme {
    async fn issue<T: phoenix_exec::Target>(
        &self,
        _: &phoenix_core::certificates::renewal::OrderRequest,
        _: &T,
    ) -> Result<Issued, DriverError> {
        Err(DriverError::new("not in this benchmark"))
    }
}

struct Fake {
    url: String,
    token: String,
    ca: std::path::PathBuf,
    state: std::sync::Arc<std::sync::Mutex<phoenix_sim::pve::PveSim>>,
}

/// The simulator's thread, by name (`/proc/self/task/*/comm`).
const SIM_THREAD: &str = "pve-sim";

/// Starts the fake on its own thread and runtime; it lives until the process ends.
fn start_fake(model: &Model, latency: Duration) -> Fake {
    let sim = phoenix_lab::deployed::simulated_node(model, &phoenix_core::render::render_all(model)).expect("a simulated node");
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new().name(SIM_THREAD.into());
    thread.spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(async move {
            let fake = SimPve::serve(sim).await;
            fake.server.controls.set_latency(latency);
            tx.send(Fake { url: fake.url(), token: fake.token.clone(), ca: fake.server.ca_file.clone(), state: fake.state.clone() })
                .expect("send");
            std::future::pending::<()>().await;
            drop(fake);
        });
    })
    .expect("the simulator's thread");
    rx.recv().expect("the fake starts")
}

fn clients(fake: &Fake) -> (PveClient, PortainerClient) {
    let pve = PveClient::new(PveSettings::new(fake.url.clone(), fake.token.clone().into(), Trust::Ca(fake.ca.clone()))).expect("client");
    // Not used by the firewall domain.
    let portainer = PortainerClient::new(PortainerSettings {
        url: "https://127.0.0.1:1".into(),
        trust: Trust::Ca(fake.ca.clone()),
        api_key: Some("unused".into()),
        key_file: "/nonexistent".into(),
        admin_user: "admin".into(),
        admin_password: None,
        timeout: Duration::from_secs(1),
        deploy_timeout: Duration::from_secs(600),
        agent_wait: Duration::from_secs(60),
        backoff: Backoff::default(),
    })
    .expect("client");
    (pve, portainer)
}

async fn run(guests: usize, latency_ms: u64, plan_guests: usize, nodes: usize) {
    let domains: BTreeSet<Domain> = [Domain::Firewall, Domain::Dns, Domain::Gateway].into();
    let root = std::env::temp_dir().join(format!("phoenix-bench-sync-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let mut target = HostTarget::new(GuestAccess::Folders(root.clone()), SystemRunner);
    target.host_root = Some(root.join("host"));

    let model = phoenix_testkit::synth::cluster_model(guests, nodes);
    let rendered = phoenix_core::render::render_all(&model);
    let fake = start_fake(&model, Duration::from_millis(latency_ms));
    let (pve, portainer) = clients(&fake);
    let input = ObserveInput {
        model: &model,
        rendered: &rendered,
        domains: &domains,
        pve: &pve,
        portainer: &portainer,
        target: &target,
        node: &model.host.node_name,
        store_dir: "/nonexistent",
        host_trust_file: "/nonexistent",
        now: 0,
        boot_delays: true,
        feature_inputs: &Default::default(),
    };
    sync_once("first sync", &input, latency_ms).await;
    // In the GUI, someone deletes the second rule of every guest and disables the first.
    {
        let mut sim = fake.state.lock().expect("the simulator");
        for guest in model.guests.values() {
            let kind = if guest.kind == phoenix_model::model::GuestKind::Lxc { "lxc" } else { "qemu" };
            let rules = format!("/nodes/{}/{kind}/{}/firewall/rules", guest.node.value, guest.id);
            let enable = [("enable".to_string(), serde_json::Value::String("0".into()))].into();
            for (method, path, params) in [("DELETE", format!("{rules}/1"), Default::default()), ("PUT", format!("{rules}/0"), enable)] {
                let reply = sim.request(method, &path, params);
                assert_eq!(reply.status, 200, "{}", reply.body);
            }
        }
    }
    sync_once("resync after drift", &input, latency_ms).await;

    let big = phoenix_testkit::synth::cluster_model(plan_guests, nodes);
    let rendered = phoenix_core::render::render_all(&big);
    let fake = start_fake(&big, Duration::ZERO);
    let (pve, portainer) = clients(&fake);
    // The firewall alone, as before file steps were benchmarked; the files' plan (a diff of
    // each whole new file) is timed separately below.
    let firewall: BTreeSet<Domain> = [Domain::Firewall].into();
    let input = ObserveInput {
        model: &big,
        rendered: &rendered,
        pve: &pve,
        portainer: &portainer,
        node: &big.host.node_name,
        domains: &firewall,
        ..input
    };
    let clock = Instant::now();
    let observed = observe(&input).await.expect("observe");
    let observing = clock.elapsed();
    let clock = Instant::now();
    let plan = plan_of(&big, &rendered, &observed, &firewall);
    let planning = clock.elapsed();
    // The guests too: where each guest is in the cluster, each in detail on its node.
    let both: BTreeSet<Domain> = [Domain::Guests, Domain::Firewall].into();
    let input_both = ObserveInput { domains: &both, ..input };
    let (clock, cpu) = (Instant::now(), cpu_seconds());
    let observed_both = observe(&input_both).await.expect("observe");
    let (observing_both, cpu) = (clock.elapsed(), cpu_since(cpu));
    let clock = Instant::now();
    let plan_both = plan_of(&big, &rendered, &observed_both, &both);
    println!(
        "observe and plan {plan_guests} guests on {nodes} node(s), guests and firewall (no latency): observe {:.2} s, plan {:.3} s, together {:.2} s ({} steps)",
        observing_both.as_secs_f64(),
        clock.elapsed().as_secs_f64(),
        (observing_both + clock.elapsed()).as_secs_f64(),
        plan_both.steps.len()
    );
    println!("  observing, CPU: phoenix {:.2} s, the simulated nodes' thread {:.2} s", cpu.0, cpu.1);
    let files: BTreeSet<Domain> = [Domain::Dns, Domain::Gateway].into();
    // Against the 500-guest files the first sync wrote: each file's diff is a real one.
    let observed_files = phoenix_exec::sync::observe::files(&big, &rendered, &files, &target).await.expect("observe files");
    let clock = Instant::now();
    let new_files = plan_of(&big, &rendered, &phoenix_core::plan::Observed::default(), &files);
    println!(
        "plan {plan_guests} guests' DNS and gateway files, none deployed: {:.3} s ({} steps)",
        clock.elapsed().as_secs_f64(),
        new_files.steps.len()
    );
    let clock = Instant::now();
    let file_plan = plan_of(&big, &rendered, &phoenix_core::plan::Observed { files: observed_files, ..Default::default() }, &files);
    let bytes: usize = file_plan.steps.iter().map(|s| s.diff.len()).sum();
    println!(
        "plan {plan_guests} guests' DNS and gateway files over the 500 guests' ones: {:.3} s ({} steps, {:.1} MB of diff)",
        clock.elapsed().as_secs_f64(),
        file_plan.steps.len(),
        bytes as f64 / 1e6
    );
    println!(
        "plan {plan_guests} guests (no latency): observe {:.2} s, plan {:.3} s ({} steps)",
        observing.as_secs_f64(),
        planning.as_secs_f64(),
        plan.steps.len()
    );
    let _ = std::fs::remove_dir_all(&root);
}

/// The plan of `domains` from `observed`, as `phoenix sync` makes it (no store, no secrets).
fn plan_of(
    model: &Model,
    rendered: &phoenix_core::render::Rendered,
    observed: &phoenix_core::plan::Observed,
    domains: &BTreeSet<Domain>,
) -> phoenix_core::plan::Plan {
    phoenix_core::plan::plan(&phoenix_core::plan::PlanInput {
        model,
        rendered,
        observed,
        domains,
        secret: &|_| None,
        store_dir: "/nonexistent",
        host_trust_file: "/nonexistent",
        boot_delays: true,
    })
}

/// Observes, plans and applies once, and prints the figures.
async fn sync_once<P: phoenix_exec::sync::PveApi, Q: phoenix_exec::sync::PortainerApi, T: phoenix_exec::Target>(
    label: &str,
    input: &ObserveInput<'_, P, Q, T>,
    latency_ms: u64,
) {
    let clock = Instant::now();
    let observed = observe(input).await.expect("observe");
    let observing = clock.elapsed();
    let plan = phoenix_core::plan::plan(&phoenix_core::plan::PlanInput {
        model: input.model,
        rendered: input.rendered,
        observed: &observed,
        domains: input.domains,
        secret: &|_| None,
        store_dir: input.store_dir,
        host_trust_file: input.host_trust_file,
        boot_delays: true,
    });
    let calls: usize = plan.steps.iter().map(|s| s.calls).sum();
    let files = plan.steps.iter().filter(|s| matches!(s.action, phoenix_core::plan::Action::File { .. })).count();
    let critical = Duration::from_millis(plan.critical_path_calls() as u64 * latency_ms);
    let drivers = Drivers { model: input.model, pve: input.pve, portainer: input.portainer, target: input.target, issuer: &NoAcme };
    let options = ApplyOptions {
        parallel: 512,
        node_parallel: std::env::var("NODE_PARALLEL").ok().and_then(|v| v.parse().ok()).unwrap_or(8),
        run_commands: false,
        store_dir: String::new(),
        host_trust_file: String::new(),
        now: 0,
    };
    let (clock, cpu) = (Instant::now(), cpu_seconds());
    let summary = apply(&plan, &drivers, &options, &mut |_| {}).await;
    let (applying, cpu) = (clock.elapsed(), cpu_since(cpu));
    assert_eq!(summary.failed + summary.skipped, 0, "{}", summary.to_text());
    println!("{label}, {} guests, {latency_ms} ms per API call:", input.model.guests.len());
    println!("  observe: {:.2} s", observing.as_secs_f64());
    println!(
        "  plan: {} steps ({files} file writes), {calls} API calls, critical path {} calls = {:.2} s",
        plan.steps.len(),
        plan.critical_path_calls(),
        critical.as_secs_f64()
    );
    println!(
        "  apply: {:.2} s = {:.2} x the critical path; CPU: phoenix {:.2} s, the simulated nodes' thread {:.2} s",
        applying.as_secs_f64(),
        applying.as_secs_f64() / critical.as_secs_f64(),
        cpu.0,
        cpu.1
    );
}

/// The CPU time phoenix's threads and the simulator's used since `before` (a `cpu_seconds`).
fn cpu_since(before: (f64, f64)) -> (f64, f64) {
    let now = cpu_seconds();
    (now.0 - before.0, now.1 - before.1)
}

/// The CPU time used so far by phoenix's threads and by the simulator's (proc(5)
/// `/proc/self/task/*/stat`: utime and stime, in clock ticks of 1/100 s on Linux).
fn cpu_seconds() -> (f64, f64) {
    let (mut phoenix, mut simulator) = (0.0, 0.0);
    for task in std::fs::read_dir("/proc/self/task").into_iter().flatten().flatten() {
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        // The command is in parentheses; after it, state is field 3, utime 14 and stime 15.
        let Some((head, rest)) = stat.rsplit_once(')') else { continue };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| fields.get(i - 3).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
        let seconds = (ticks(14) + ticks(15)) / 100.0;
        if head.ends_with(&format!("({SIM_THREAD}")) {
            simulator += seconds;
        } else {
            phoenix += seconds;
        }
    }
    (phoenix, simulator)
}

fn main() {
    let args: Vec<u64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let guests = args.first().copied().unwrap_or(500) as usize;
    let latency = args.get(1).copied().unwrap_or(50);
    let plan_guests = args.get(2).copied().unwrap_or(5000) as usize;
    let nodes = args.get(3).copied().unwrap_or(1).max(1) as usize;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(run(guests, latency, plan_guests, nodes));
}
