//! Benchmark of `phoenix sync guests` from an empty simulated node with the simulator's typical
//! task durations (`Settings::typical()`: an LXC clone 4 s, a create 15 s, a start 3 s, ...),
//! all scaled by SCALE so a run takes a minute or two:
//! `cargo run --release -p phoenix-drivers --example bench_guests -- [SCALE] [GUESTS] [NODES] [LATENCY_MS]`
//! (defaults 0.25, 200, 1 and 0; with NODES > 1 a cluster: 3 templates on each node, guest i
//! on node i mod NODES cloned from its node's templates; LATENCY_MS added to every API call,
//! scaled like the tasks). Two inventories: the reference configuration's 15 guests (its VM
//! template imported from `local`, which holds `import` on a PVE 9 node), and GUESTS
//! containers cloned from 3 templates. For each: phoenix's wall time, the critical path the locks allow (the longest
//! of: the dependency chain, each lock's steps one after another from its first possible
//! start, the node's creation slots; a VM's start includes its guest agent's delay), and the
//! sum of all task durations (what a strictly sequential tool takes), all in unscaled seconds.

use phoenix_core::plan::{Action, Plan};
use phoenix_drivers::host::{GuestAccess, HostTarget, SystemRunner};
use phoenix_drivers::http::Trust;
use phoenix_drivers::pve::{PveClient, PveSettings};
use phoenix_exec::sync::{apply, ApplyOptions, Drivers};
use phoenix_exec::NotUsed;
use phoenix_model::model::Model;
use phoenix_sim::pve::Settings;
use phoenix_sim::pve_server::SimPve;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const NODE_PARALLEL: usize = 8;

/// The synthetic inventory: 3 container templates per node, `n` containers cloned from their
/// node's templates in turn, guest i on node i mod `nodes`.
fn synthetic(n: usize, nodes: usize) -> Model {
    let node = |k: usize| phoenix_testkit::synth::node_name(k);
    let mut lxcs = serde_json::Map::new();
    for k in 0..nodes {
        for t in 0..3 {
            lxcs.insert(
                (900 + 3 * k + t).to_string(),
                serde_json::json!({"name": format!("template-{k}-{t}"), "template": "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst",
                    "storage_pool": "tank-ct", "storage_size_gb": 8, "is_template": true, "memory_mb": 512, "cores": 1, "node": node(k)}),
            );
        }
    }
    for i in 0..n {
        let id = 1000 + i;
        let k = i % nodes;
        lxcs.insert(
            id.to_string(),
            serde_json::json!({"name": format!("svc-{i}"), "clone_from_ctid": 900 + 3 * k + i % 3, "memory_mb": 1024, "cores": 1, "node": node(k),
                "storage_size_gb": 8, "network_config": {"name": "eth0", "bridge": "vmbr0", "ip": format!("10.1.{}.{}/16", i / 250, 1 + i % 250), "gw": "10.1.0.1"}}),
        );
    }
    let others: Vec<serde_json::Value> = (1..nodes).map(|k| serde_json::json!({"name": node(k), "address": format!("10.1.255.{}", 1 + k)})).collect();
    let hypervisor = serde_json::json!({"domain_name": "bench.example", "network": {"interfaces": {"name": "vmbr0", "address": "10.1.255.1/16", "gateway": "10.1.0.1"}, "default_subnet": "10.1.0.0/16"},
        "proxmox": {"node_name": "pve", "nodes": others},
        "zfs": {"datasets": [{"name": "ct", "pool": "tank", "proxmox_storage_type": "zfspool", "proxmox_content_type": "images,rootdir"}]}});
    let mut source = phoenix_testkit::MemorySource::default();
    let etc = std::path::PathBuf::from("/bench/etc");
    source.files.insert(etc.join("phoenix_hypervisor_config.json"), hypervisor.to_string());
    source.files.insert(etc.join("phoenix_lxc_configs.json"), serde_json::json!({"lxc_configs": lxcs}).to_string());
    source.files.insert(etc.join("phoenix_vm_configs.json"), r#"{"vms": []}"#.into());
    source.files.insert(etc.join("phoenix_stacks_config.json"), r#"{"docker_stacks": {}}"#.into());
    phoenix_model::check(&etc, &source).model.expect("the synthetic inventory loads")
}

/// The task a request starts, as the simulator names it.
fn task_of(request: &phoenix_core::plan::pve::ApiRequest) -> Option<&'static str> {
    let path = request.path.as_str();
    let lxc = path.contains("/lxc");
    Some(match request.method {
        phoenix_core::plan::pve::Method::Post if path.ends_with("/aplinfo") || path.ends_with("/download-url") => "download",
        phoenix_core::plan::pve::Method::Post if path.ends_with("/lxc") => "vzcreate",
        phoenix_core::plan::pve::Method::Post if path.ends_with("/qemu") => "qmcreate",
        phoenix_core::plan::pve::Method::Post if path.ends_with("/clone") => {
            if lxc {
                "vzclone"
            } else {
                "qmclone"
            }
        }
        phoenix_core::plan::pve::Method::Post if path.ends_with("/template") => {
            if lxc {
                "vztemplate"
            } else {
                "qmtemplate"
            }
        }
        phoenix_core::plan::pve::Method::Post if path.ends_with("/status/start") => {
            if lxc {
                "vzstart"
            } else {
                "qmstart"
            }
        }
        phoenix_core::plan::pve::Method::Post if path.ends_with("/snapshot") => {
            if lxc {
                "vzsnapshot"
            } else {
                "qmsnapshot"
            }
        }
        phoenix_core::plan::pve::Method::Put if path.ends_with("/resize") => "resize",
        // qemu-server runs a VM's config update as a task (`$update_vm_api` with POST).
        phoenix_core::plan::pve::Method::Post if path.ends_with("/config") && !lxc => "qmconfig",
        _ => return None,
    })
}

/// What a request takes at least: its task, and the wait the node imposes after it (a VM's
/// guest agent answers `agent_delay` after its start).
fn request_time(request: &phoenix_core::plan::pve::ApiRequest, settings: &Settings) -> f64 {
    let task = task_of(request).map_or(0.0, |t| settings.duration(t).as_secs_f64());
    let agent = matches!(request.then, Some(phoenix_core::plan::pve::Then::Agent { .. }));
    task + if agent { settings.agent_delay.as_secs_f64() } else { 0.0 }
}

/// Each step's task time (unscaled seconds).
fn durations(plan: &Plan, settings: &Settings) -> Vec<f64> {
    plan.steps
        .iter()
        .map(|step| match &step.action {
            Action::Pve { requests } => requests.iter().map(|r| request_time(r, settings)).sum(),
            _ => 0.0,
        })
        .collect()
}

/// The least time the plan can take under its dependencies, its locks (one step per lock at
/// a time) and the node's creation slots: the largest of those three bounds.
fn critical_path(plan: &Plan, durations: &[f64]) -> f64 {
    let index: BTreeMap<&str, usize> = plan.steps.iter().enumerate().map(|(i, s)| (s.id.as_str(), i)).collect();
    let mut earliest = vec![0.0f64; plan.steps.len()];
    let mut chain = 0.0f64;
    for (i, step) in plan.steps.iter().enumerate() {
        earliest[i] = step.after.iter().filter_map(|a| index.get(a.as_str())).map(|j| earliest[*j] + durations[*j]).fold(0.0, f64::max);
        chain = chain.max(earliest[i] + durations[i]);
    }
    let mut locks: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
    for (i, step) in plan.steps.iter().enumerate() {
        if let Some(lock) = &step.lock {
            let entry = locks.entry(lock.as_str()).or_insert((f64::MAX, 0.0));
            entry.0 = entry.0.min(earliest[i]);
            entry.1 += durations[i];
        }
    }
    let by_lock = locks.values().map(|(start, total)| start + total).fold(0.0, f64::max);
    // Each node's creation slots: its own steps' time over its parallel slots.
    let mut per_node: BTreeMap<&str, f64> = BTreeMap::new();
    for (step, d) in plan.steps.iter().zip(durations) {
        if let Some(node) = &step.node {
            *per_node.entry(node.as_str()).or_default() += d;
        }
    }
    let slots = per_node.values().map(|total| total / NODE_PARALLEL as f64).fold(0.0, f64::max);
    chain.max(by_lock).max(slots)
}

async fn bench(label: &str, model: &Model, scale: f64, latency: Duration) {
    let mut settings = Settings::typical();
    let unscaled = Settings::typical();
    settings.task_duration = settings.task_duration.mul_f64(scale);
    for duration in settings.durations.values_mut() {
        *duration = duration.mul_f64(scale);
    }
    settings.agent_delay = settings.agent_delay.mul_f64(scale);
    let mut sim = phoenix_sim::rehearsal::empty_node(model);
    sim.settings = settings;
    // The node's /etc/pve in a folder, where the target writes what only root may set.
    let root = std::env::temp_dir().join(format!("phoenix-bench-guests-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let sim = sim.backed_by(&root.join("host/etc/pve")).expect("a folder for the node");
    let mut target = HostTarget::new(GuestAccess::Folders(root.clone()), SystemRunner);
    target.host_root = Some(root.join("host"));
    // The simulator on its own thread (a real node does not share phoenix's CPU).
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(async move {
            let fake = SimPve::serve(sim).await;
            fake.server.controls.set_latency(latency);
            tx.send((fake.url(), fake.token.clone(), fake.server.ca_file.clone())).expect("send");
            std::future::pending::<()>().await;
            drop(fake);
        });
    });
    let (url, token, ca) = rx.recv().expect("the simulator starts");
    let mut client_settings = PveSettings::new(url, token.into(), Trust::Ca(ca));
    client_settings.task_timeout = Duration::from_secs(3600);
    let client = PveClient::new(client_settings).expect("client");
    let rendered = phoenix_core::render::render_all(model);
    let observed = phoenix_exec::sync::observe::guests_observed(&client, model, &model.host.node_name).await.expect("observe");
    let domains = [phoenix_core::plan::Domain::Guests].into();
    let observed = phoenix_core::plan::Observed { pve: Some(observed), ..Default::default() };
    let plan = phoenix_core::plan::plan(&phoenix_core::plan::PlanInput {
        model,
        rendered: &rendered,
        observed: &observed,
        domains: &domains,
        secret: &|_| None,
        store_dir: "/nonexistent",
        host_trust_file: "/nonexistent",
        boot_delays: false,
    });
    let drivers = Drivers { model, pve: &client, portainer: &NotUsed, target: &target, issuer: &NotUsed };
    let options = ApplyOptions {
        parallel: 512,
        node_parallel: NODE_PARALLEL,
        run_commands: false,
        store_dir: String::new(),
        host_trust_file: String::new(),
        now: 0,
    };
    let clock = Instant::now();
    // BENCH_TRACE=1: when each step started and ended (unscaled seconds since the start).
    let trace = std::env::var_os("BENCH_TRACE").is_some();
    let summary = apply(&plan, &drivers, &options, &mut |event| {
        let at = clock.elapsed().as_secs_f64() / scale;
        match event {
            phoenix_exec::sync::Event::Started { id, .. } if trace => println!("  {at:7.1} start {id}"),
            phoenix_exec::sync::Event::Finished { id, .. } if trace => println!("  {at:7.1} end   {id}"),
            _ => {}
        }
    })
    .await;
    let wall = clock.elapsed().as_secs_f64() / scale;
    for result in summary.results.iter().filter(|r| matches!(r.outcome, phoenix_exec::sync::StepOutcome::Failed { .. })) {
        println!("  failed: {} {:?}", result.title, result.outcome);
    }
    // The bounds of what could run: the steps that were done.
    let done: std::collections::BTreeSet<&str> = summary
        .results
        .iter()
        .filter(|r| matches!(r.outcome, phoenix_exec::sync::StepOutcome::Done { .. }))
        .map(|r| r.id.as_str())
        .collect();
    let ran = Plan { schema_version: 1, steps: plan.steps.iter().filter(|s| done.contains(s.id.as_str())).cloned().collect(), notes: Vec::new() };
    let durations = durations(&ran, &unscaled);
    let path = critical_path(&ran, &durations);
    let total: f64 = durations.iter().sum();
    println!(
        "{label}: {} steps ({} done, {} failed, {} skipped); phoenix {wall:.1} s, critical path of the steps done {path:.1} s (ratio {:.3}), sum of their task durations {total:.1} s (unscaled seconds; ran at x{scale})",
        plan.steps.len(),
        summary.done,
        summary.failed,
        summary.skipped,
        wall / path.max(0.001)
    );
    let _ = std::fs::remove_dir_all(&root);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let scale: f64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(0.25);
    let guests: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(200);
    let nodes: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(1).max(1);
    let latency = Duration::from_millis(args.get(4).and_then(|a| a.parse().ok()).unwrap_or(0)).mul_f64(scale);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let reference = {
        let source = phoenix_testkit::MemorySource::from_dir(phoenix_testkit::reference_config().parent().expect("a parent"));
        phoenix_model::check(&phoenix_testkit::reference_config(), &source).model.expect("the reference loads")
    };
    runtime.block_on(bench("reference (15 guests)", &reference, scale, latency));
    let label = format!("synthetic ({guests} clones of 3 templates per node, {nodes} node(s))");
    runtime.block_on(bench(&label, &synthetic(guests, nodes), scale, latency));
}
