//! The guests domain against the Proxmox VE simulator from an empty node: every guest of the
//! example created (OS template and cloud image downloaded, templates converted, clones of
//! one template one after another), started in boot order, and a second plan empty; the
//! reference's guests; refusals failing their step alone; a converged guest; a clone whose
//! worker died found locked, never created twice.

mod rig;

use phoenix_core::plan::{Action, Domain};
use phoenix_exec::sync::{Event, StepOutcome};
use phoenix_model::model::Model;
use phoenix_sim::pve::guest::GuestKind;
use phoenix_sim::pve::tasks::TaskOutcome;
use rig::Rig;
use std::collections::{BTreeMap, BTreeSet};

fn guests() -> BTreeSet<Domain> {
    [Domain::Guests].into()
}

fn ids(plan: &phoenix_core::plan::Plan) -> Vec<String> {
    plan.steps.iter().map(|s| s.id.clone()).collect()
}

/// When each step started and finished, in event order.
fn intervals(events: &[Event]) -> BTreeMap<String, (usize, usize)> {
    let mut found: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for (at, event) in events.iter().enumerate() {
        match event {
            Event::Started { id, .. } => {
                found.insert(id.clone(), (at, usize::MAX));
            }
            Event::Finished { id, .. } => {
                found.entry(id.clone()).or_insert((at, at)).1 = at;
            }
            Event::Progress { .. } => {}
        }
    }
    found
}

fn reference() -> Model {
    let source = phoenix_testkit::MemorySource::from_dir(phoenix_testkit::reference_config().parent().unwrap());
    phoenix_model::check(&phoenix_testkit::reference_config(), &source).model.expect("the reference loads")
}

#[tokio::test]
async fn the_example_is_created_from_an_empty_node_started_in_boot_order_and_then_left_alone() {
    let rig = Rig::empty("lifecycle-example", rig::example(), |_| {}).await;
    let plan = rig.plan(&rig::all()).await.unwrap();
    let steps = ids(&plan);
    assert!(steps.contains(&"guest:900:create".into()) && steps.contains(&"guest:9000:template".into()), "{steps:?}");
    let (summary, events) = rig.apply(&plan).await;
    assert_eq!((summary.failed, summary.skipped), (0, 0), "{}", summary.to_text());
    let again = rig.plan(&rig::all()).await.unwrap();
    assert!(again.is_empty(), "a second run plans nothing:\n{}", again.to_text());

    rig.pve.with(|sim| {
        assert_eq!(sim.guest_key(900, "template").as_deref(), Some("1"));
        assert_eq!(sim.guest_key(9000, "template").as_deref(), Some("1"));
        // Linked clones of the container template, full clones of the VM template.
        assert!(sim.guest_key(101, "rootfs").unwrap().starts_with("quickOS-lxc-disks:basevol-900-disk-0/subvol-101-disk-"));
        assert!(sim.guest_key(1001, "scsi0").unwrap().starts_with("quickOS-vm-disks:vm-1001-disk-"));
        assert!(sim.guest_key(1001, "scsi0").unwrap().ends_with("size=32G"), "resized up to disk_size_gb");
        // The configured MAC, address and resources.
        assert!(sim.guest_key(102, "net0").unwrap().contains("hwaddr=52:54:00:AA:01:02"));
        assert!(sim.guest_key(102, "net0").unwrap().contains("ip=10.0.0.12/24"));
        assert_eq!(sim.guest_key(1002, "memory").as_deref(), Some("8192"));
        assert_eq!(sim.guest_key(103, "startup").as_deref(), Some("order=1,up=5"));
        let running: Vec<u32> = sim.running.iter().copied().collect();
        assert_eq!(running, vec![101, 102, 103, 1001, 1002], "every guest but the templates runs");
        assert_eq!(sim.tasks.count("download"), 2, "the OS template and the cloud image, once each");
    });

    let at = intervals(&events);
    // Boot order: 103 (1), 102 (2), 101 (3), 1001 (4), 1002 (5); each starts after the one before ended.
    let order = ["guest:103:start", "guest:102:start", "guest:101:start", "guest:1001:start", "guest:1002:start"];
    for pair in order.windows(2) {
        assert!(at[pair[0]].1 < at[pair[1]].0, "{} ends before {} starts", pair[0], pair[1]);
    }
    // Clones of template 900 run one after another (its clone lock), never together.
    let clones: Vec<(usize, usize)> = ["guest:101:create", "guest:102:create", "guest:103:create"].iter().map(|id| at[*id]).collect();
    for (i, a) in clones.iter().enumerate() {
        for b in &clones[i + 1..] {
            assert!(a.1 < b.0 || b.1 < a.0, "clones of one template overlapped: {clones:?}");
        }
    }
    // A guest's firewall is in place before it starts.
    assert!(at["firewall:guest:101:rules"].1 < at["guest:101:start"].0);
}

/// The reference on a node as Proxmox VE 9 installs it: every guest is created, the cloud
/// image imported from `local`; VM 1001 keeps its template's 50 GB although it asks for 32
/// (PHX-GUEST-013 says so before anything runs): phoenix grows disks, never shrinks them.
#[tokio::test]
async fn the_references_guests_are_created_and_no_disk_is_shrunk() {
    let rig = Rig::empty("lifecycle-reference", reference(), |_| {}).await;
    let plan = rig.plan(&guests()).await.unwrap();
    assert!(!plan.steps.iter().any(|s| s.id.starts_with("guest:1001") && s.diff.contains("resize")), "no shrink is planned");
    let (summary, events) = rig.apply(&plan).await;
    assert_eq!((summary.failed, summary.skipped), (0, 0), "{}", summary.to_text());
    // `enable_lifecycle_snapshots` (102, 103, and the snapshot sources 900-912, whose
    // `final-form` is their clones' `template_snapshot_name`): `pre-configured` once started,
    // `final-form` after the rest of its setup.
    let at = intervals(&events);
    for id in [102, 103] {
        let (start, pre, last) =
            (format!("guest:{id}:start"), format!("guest:{id}:lifecycle:pre-configured"), format!("guest:{id}:lifecycle:final-form"));
        assert!(at[&start].1 < at[&pre].0 && at[&pre].1 < at[&last].0, "{id}: start, pre-configured, final-form");
    }
    assert!(!at.contains_key("guest:900:lifecycle:final-form"), "900's final-form is its clones' snapshot, taken once");
    rig.pve.with(|sim| {
        let taken = |id: u32| {
            phoenix_sim::pve::lifecycle::snapshots(&phoenix_sim::pve::guest::GuestConf::parse(
                &sim.files[&format!("nodes/pve/lxc/{id}.conf")],
            ))
        };
        assert_eq!(taken(102).keys().collect::<Vec<_>>(), ["final-form", "pre-configured"]);
        assert_eq!(taken(900).keys().collect::<Vec<_>>(), ["final-form", "pre-configured"]);
        assert!(taken(101).is_empty(), "101 asks for none");
        for id in [900, 901, 910, 911, 912, 801, 802, 101, 914, 917, 103, 102] {
            assert!(sim.guest_key(id, "hostname").is_some(), "CT {id} exists");
        }
        // The cloud image imported from `local`, which holds `import` on a fresh PVE 9.
        assert_eq!(sim.guest_key(9000, "template").as_deref(), Some("1"));
        assert!(sim.guest_key(1002, "scsi0").unwrap().ends_with("size=64G"), "grown to disk_size_gb");
        assert!(sim.guest_key(1001, "scsi0").unwrap().ends_with("size=50G"), "never shrunk");
        // 901 is no template: its clones start from its snapshot, in full.
        assert!(sim.guest_key(910, "rootfs").unwrap().starts_with("quickOS-lxc-disks:subvol-910-disk-"));
        assert!(sim.files["nodes/pve/lxc/901.conf"].contains("[final-form]"));
        assert!(sim.guest_key(101, "features").as_deref() == Some("nesting=1"));
        // What only root may set went into the .conf on the node: the bind mounts, the raw lines.
        let conf = &sim.files["nodes/pve/lxc/101.conf"];
        assert!(conf.contains("mp0: /mnt/pve/quickOS/lxc-persistent-data/101/logs,mp=/var/log/nginx"), "{conf}");
        assert!(conf.contains("lxc.mount.auto: sys:rw"), "{conf}");
        let gpu = &sim.files["nodes/pve/lxc/910.conf"];
        assert!(gpu.contains("lxc.mount.entry: /dev/nvidia1 dev/nvidia1 none bind,optional,create=file"), "{gpu}");
    });
    let again = rig.plan(&guests()).await.unwrap();
    assert!(again.is_empty(), "a second run plans nothing:\n{}", again.to_text());
}

/// The bind mounts of an unprivileged container are checked on the node before they are
/// mounted: a host folder owned outside the container's id map (here the test's user's) is nobody's
/// inside, a missing one keeps the container from starting; the plan says so and the command
/// that fixes it, and changes nothing on the host. A folder given to the container's root
/// (host 100000) is fine.
#[tokio::test]
async fn an_unprivileged_containers_bind_mounts_are_checked_for_the_id_shift() {
    let rig = Rig::empty("lifecycle-bind-mounts", reference(), |_| {}).await;
    let persistent = rig.root.join("host/mnt/pve/quickOS/lxc-persistent-data");
    std::fs::create_dir_all(persistent.join("101/logs")).unwrap();
    std::fs::create_dir_all(persistent.join("102/certs")).unwrap();
    let uid = |path: &std::path::Path| std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(path).unwrap());
    let before = uid(&persistent.join("101/logs"));
    let given = std::os::unix::fs::chown(persistent.join("102/certs"), Some(100_000), Some(100_000)).is_ok();
    let plan = rig.plan(&guests()).await.unwrap();
    let step = |id: &str| plan.steps.iter().find(|s| s.id == id).unwrap().clone();
    let gateway = step("guest:101:node-conf");
    let logs = "! /mnt/pve/quickOS/lxc-persistent-data/101/logs is owned by ";
    assert!(gateway.diff.contains(logs) && gateway.diff.contains("on the node, outside the container's id map"), "{}", gateway.diff);
    assert!(gateway.diff.contains("`chown 100000:100000 /mnt/pve/quickOS/lxc-persistent-data/101/logs`"), "{}", gateway.diff);
    assert!(gateway.diff.contains("! /mnt/pve/quickOS/lxc-persistent-data/101/ssl does not exist on the node"), "{}", gateway.diff);
    assert!(gateway.reason.contains("warning: "), "{}", gateway.reason);
    if given {
        assert!(!step("guest:102:node-conf").diff.contains("! "), "{}", step("guest:102:node-conf").diff);
    }
    rig.apply(&plan).await;
    assert_eq!(uid(&persistent.join("101/logs")), before, "the host folder is left as it is");
    assert!(!persistent.join("101/ssl").exists(), "and nothing is made on the host");
}

/// A node whose storages hold no `import` (an installation from before PVE 8.3 keeps
/// `local` at iso,vztmpl,backup): the VM template is blocked with the fix, the containers
/// are made all the same.
#[tokio::test]
async fn without_a_storage_that_can_import_the_vm_template_waits_and_the_rest_is_made() {
    let rig = Rig::empty("lifecycle-no-import", reference(), |sim| {
        let mut local = sim.storage("local").unwrap();
        local.content.retain(|c| c != "import");
        sim.add_storage(local);
    })
    .await;
    let plan = rig.plan(&guests()).await.unwrap();
    let blocked = plan.steps.iter().find(|s| s.id == "guest:9000").expect("VM 9000 cannot be created");
    assert!(matches!(blocked.action, Action::Blocked) && blocked.reason.contains("`import` content"), "{}", blocked.reason);
    assert!(blocked.reason.contains("pvesm set"), "the reason says how: {}", blocked.reason);
    let (summary, _) = rig.apply(&plan).await;
    let failed: Vec<&str> =
        summary.results.iter().filter(|r| matches!(r.outcome, StepOutcome::Failed { .. })).map(|r| r.id.as_str()).collect();
    assert_eq!(failed, vec!["guest:9000"], "{}", summary.to_text());
    rig.pve.with(|sim| assert!(sim.guest_key(103, "hostname").is_some(), "the containers are made"));
}

#[tokio::test]
async fn a_full_storage_fails_its_guest_and_what_needs_it_the_rest_completes() {
    let rig = Rig::empty("lifecycle-full", rig::example(), |sim| {
        sim.settings.capacity.insert("quickOS-vm-disks".into(), 1 << 30);
    })
    .await;
    let plan = rig.plan(&guests()).await.unwrap();
    let (summary, _) = rig.apply(&plan).await;
    let outcome = |id: &str| summary.results.iter().find(|r| r.id == id).map(|r| r.outcome.clone()).unwrap();
    assert!(matches!(outcome("guest:9000:create"), StepOutcome::Failed { message } if message.contains("out of space")));
    assert!(matches!(outcome("guest:1001:create"), StepOutcome::Skipped { .. }));
    assert!(matches!(outcome("guest:103:start"), StepOutcome::Done { .. }), "the containers are not held up");
}

#[tokio::test]
async fn an_existing_guest_is_converged_and_its_disk_never_shrunk() {
    let rig = Rig::empty("lifecycle-converge", rig::example(), |_| {}).await;
    let plan = rig.plan(&guests()).await.unwrap();
    rig.apply(&plan).await;
    rig.pve.with(|sim| {
        let path = "nodes/pve/lxc/102.conf";
        let text = sim.files[path].replace("memory: 1024", "memory: 256").replace("size=8G", "size=20G");
        sim.files.insert(path.into(), text);
        sim.save_backing();
    });
    let plan = rig.plan(&guests()).await.unwrap();
    assert_eq!(ids(&plan), vec!["guest:102:config".to_string()]);
    let step = &plan.steps[0];
    assert!(step.diff.contains("- memory: 256\n+ memory: 1024"), "{}", step.diff);
    assert!(!step.diff.contains("rootfs"), "a disk larger than described is left as it is");
    let (summary, _) = rig.apply(&plan).await;
    assert_eq!(summary.failed, 0, "{}", summary.to_text());
    assert!(rig.plan(&guests()).await.unwrap().is_empty());
}

/// A running guest's change that Proxmox VE applies only at the next start (qemu-server has no
/// live path for `cores` and `memory` under the default hotplug; pve-container hotplugs a
/// container's memory): the plan says so, the change waits in the pending section, a second
/// plan is empty (the config shows pending values merged), `status` lists what waits, and a
/// restart applies it.
#[tokio::test]
async fn a_running_guests_change_waits_for_its_restart_and_status_says_so() {
    use phoenix_core::plan::verbs::Verb;
    let rig = Rig::empty("lifecycle-pending", rig::example(), |_| {}).await;
    rig.apply(&rig.plan(&guests()).await.unwrap()).await;
    rig.pve.with(|sim| {
        for (path, from, to) in
            [("nodes/pve2/qemu-server/1002.conf", "cores: 4", "cores: 2"), ("nodes/pve/lxc/102.conf", "memory: 1024", "memory: 256")]
        {
            let text = sim.files[path].replace(from, to);
            sim.files.insert(path.into(), text);
        }
        sim.save_backing();
    });
    let plan = rig.plan(&guests()).await.unwrap();
    let step = |id: &str| plan.steps.iter().find(|s| s.id == id).unwrap_or_else(|| panic!("{id} in {:?}", ids(&plan)));
    assert!(step("guest:1002:config").reason.contains("keeps cores pending until its next start"), "{}", step("guest:1002:config").reason);
    assert!(!step("guest:102:config").reason.contains("pending"), "a container's memory applies at once");
    assert_eq!(rig.apply(&plan).await.0.failed, 0);
    rig.pve.with(|sim| {
        assert_eq!(sim.guest_key(102, "memory").as_deref(), Some("1024"));
        assert_eq!(sim.guest_key(1002, "cores").as_deref(), Some("2"), "in effect until the restart");
        assert!(sim.files["nodes/pve2/qemu-server/1002.conf"].contains("\n[PENDING]\ncores: 4\n"));
    });
    assert!(rig.plan(&guests()).await.unwrap().is_empty(), "what waits is not planned again");
    let status = |observed: &phoenix_core::plan::PveObserved| phoenix_core::plan::guests::status(&rig.model, &rig.rendered, observed);
    let observed = phoenix_exec::sync::observe::guests_observed(&rig.pve_client, &rig.model, "pve").await.unwrap();
    let rows = status(&observed);
    let row = rows.iter().find(|r| r.id == 1002).unwrap();
    assert_eq!(row.pending.iter().map(|p| p.text()).collect::<Vec<_>>(), ["cores 2 -> 4"]);
    assert!(row.drift.is_empty(), "pending is not drift: {:?}", row.drift);
    let text = phoenix_core::plan::guests::status_text(&rows);
    assert!(text.contains("pending until its next start: cores 2 -> 4 (`phoenix restart 1002`)"), "{text}");

    let restart = verb(&rig, Verb::Restart, &[1002]).await.unwrap();
    assert_eq!(rig.apply(&restart).await.0.failed, 0);
    rig.pve.with(|sim| assert_eq!(sim.guest_key(1002, "cores").as_deref(), Some("4"), "the start applied it"));
    let observed = phoenix_exec::sync::observe::guests_observed(&rig.pve_client, &rig.model, "pve").await.unwrap();
    assert!(status(&observed).iter().all(|r| r.pending.is_empty()));
}

/// A VM's `snapshots`: `pre-features` once it runs (after its agent answered), `post-features`
/// after everything `sync all` does to it; each taken once, and a second run plans neither.
#[tokio::test]
async fn a_vms_snapshots_are_taken_once_at_their_points_of_its_setup() {
    let mut source = phoenix_testkit::example_source();
    let vms = phoenix_testkit::example_config().join("phoenix_vm_configs.json");
    source.edit_json(&vms, |v| v["vms"][2]["snapshots"] = serde_json::json!({ "pre-features": "clean", "post-features": "provisioned" }));
    let model = phoenix_model::check(&phoenix_testkit::example_config(), &source).model.unwrap();
    let rig = Rig::empty("lifecycle-vm-snapshots", model, |_| {}).await;
    let plan = rig.plan(&rig::all()).await.unwrap();
    let step = |id: &str| plan.steps.iter().find(|s| s.id == id).unwrap_or_else(|| panic!("{id} in {:?}", ids(&plan)));
    assert_eq!(step("guest:1002:lifecycle:clean").after, ["guest:1002:start"]);
    let post = &step("guest:1002:lifecycle:provisioned").after;
    for id in ["guest:1002:start", "guest:1002:lifecycle:clean", "firewall:guest:1002:rules"] {
        assert!(post.contains(&id.to_string()), "{id} in {post:?}");
    }
    let (summary, _) = rig.apply(&plan).await;
    assert_eq!((summary.failed, summary.skipped), (0, 0), "{}", summary.to_text());
    rig.pve.with(|sim| {
        let conf = phoenix_sim::pve::guest::GuestConf::parse(&sim.files["nodes/pve2/qemu-server/1002.conf"]);
        assert_eq!(phoenix_sim::pve::lifecycle::snapshots(&conf).keys().collect::<Vec<_>>(), ["clean", "provisioned"]);
    });
    let again = rig.plan(&rig::all()).await.unwrap();
    assert!(again.is_empty(), "taken once:\n{}", again.to_text());
}

/// A long task's progress is shown while it runs: a VM's full clone logs qemu-server's
/// `transferred ... of ... (n%)` lines, which phoenix reads from the task log as it polls and
/// reports as progress events of the step.
#[tokio::test]
async fn a_long_clone_reports_its_progress_from_the_task_log() {
    let rig = Rig::empty("lifecycle-progress", rig::example(), |sim| {
        sim.settings.durations.insert("qmclone".into(), std::time::Duration::from_millis(4500));
    })
    .await;
    let mut plan = rig.plan(&guests()).await.unwrap();
    plan.steps.retain(|s| s.id.starts_with("download:") || s.id.starts_with("guest:9000:") || s.id == "guest:1001:create");
    let (summary, events) = rig.apply(&plan).await;
    assert_eq!(summary.failed, 0, "{}", summary.to_text());
    let heard: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            Event::Progress { id, line } if id == "guest:1001:create" => Some(line.as_str()),
            _ => None,
        })
        .collect();
    assert!(!heard.is_empty(), "{events:?}");
    assert!(heard.iter().all(|l| l.starts_with("transferred ") && l.contains(" of ") && l.ends_with("%)")), "{heard:?}");
}

#[tokio::test]
async fn a_clone_whose_worker_died_is_removed_and_made_again_never_twice() {
    let rig = Rig::empty("lifecycle-crash", rig::example(), |_| {}).await;
    // Only the container template, then a clone whose worker dies half way.
    let plan = rig.plan(&guests()).await.unwrap();
    let mut first = plan.clone();
    first.steps.retain(|s| s.id.starts_with("download:fastData-shared-iso:vztmpl") || s.id.starts_with("guest:900:"));
    assert_eq!(rig.apply(&first).await.0.failed, 0);
    rig.pve.with(|sim| sim.tasks.injected.push_back(TaskOutcome::Crash("interrupted by signal".into())));
    let mut second = rig.plan(&guests()).await.unwrap();
    second.steps.retain(|s| s.id == "guest:103:create");
    let (summary, _) = rig.apply(&second).await;
    assert_eq!(summary.failed, 1, "{}", summary.to_text());
    rig.pve.with(|sim| {
        assert_eq!(sim.guest_key(103, "lock").as_deref(), Some("create"), "the half-made clone keeps its lock");
        assert_eq!(sim.guest_key(900, "lock").as_deref(), Some("disk"), "and so does its source");
    });
    // The next run finds both locks with nothing running: the source unlocked, the half-made
    // clone removed and made again, never a second guest 103.
    let third = rig.plan(&guests()).await.unwrap();
    let steps = ids(&third);
    for id in ["guest:900:unlock", "guest:103:unlock", "guest:103:remove", "guest:103:create"] {
        assert!(steps.contains(&id.to_string()), "{id} in {steps:?}");
    }
    let (summary, _) = rig.apply(&third).await;
    assert_eq!(summary.failed, 0, "{}", summary.to_text());
    rig.pve.with(|sim| {
        assert_eq!(sim.all_guests().iter().filter(|(id, kind, _)| *id == 103 && *kind == GuestKind::Lxc).count(), 1);
        assert!(sim.all_guests().iter().all(|(_, _, conf)| !conf.keys.contains_key("lock")), "no lock is left");
        assert!(sim.guest_key(103, "net0").unwrap().contains("hwaddr=52:54:00:AA:01:03"), "103 is the described guest");
    });
    assert!(rig.plan(&guests()).await.unwrap().is_empty(), "then nothing is left to do");
}

async fn verb(rig: &Rig, verb: phoenix_core::plan::verbs::Verb, ids: &[u32]) -> Result<phoenix_core::plan::Plan, String> {
    let observed = phoenix_exec::sync::observe::guests_observed(&rig.pve_client, &rig.model, "pve").await.unwrap();
    phoenix_core::plan::verbs::plan(&rig.model, &rig.rendered, &observed, verb, ids, false)
}

#[tokio::test]
async fn the_verbs_stop_dependents_first_start_dependencies_first_and_delete_only_what_is_theirs() {
    use phoenix_core::plan::verbs::Verb;
    let rig = Rig::empty("lifecycle-verbs", rig::example(), |_| {}).await;
    let plan = verb(&rig, Verb::Create, &[102]).await.unwrap();
    assert_eq!(
        ids(&plan).iter().filter(|id| id.ends_with(":create")).cloned().collect::<Vec<_>>(),
        vec!["guest:900:create", "guest:103:create", "guest:102:create"],
        "102's chain: its template and the Step-CA it depends on, nothing else"
    );
    assert_eq!(rig.apply(&plan).await.0.failed, 0);
    rig.apply(&rig.plan(&guests()).await.unwrap()).await;
    rig.pve.with(|sim| assert_eq!(sim.running.iter().copied().collect::<Vec<_>>(), vec![101, 102, 103, 1001, 1002]));

    // Stopping Step-CA stops what needs it first: 101 and 102 (and the VMs behind 102).
    let stop = verb(&rig, Verb::Stop, &[103]).await.unwrap();
    let step = |id: &str| stop.steps.iter().find(|s| s.id == id).unwrap();
    assert!(step("guest:103:stop").after.contains(&"guest:102:stop".to_string()));
    assert!(step("guest:102:stop").after.contains(&"guest:101:stop".to_string()));
    let (summary, events) = rig.apply(&stop).await;
    assert_eq!(summary.failed, 0, "{}", summary.to_text());
    let at = intervals(&events);
    assert!(at["guest:101:stop"].1 < at["guest:103:stop"].0);
    rig.pve.with(|sim| assert!(sim.running.is_empty(), "{:?}", sim.running));

    // Starting the gateway starts its dependencies first.
    let start = verb(&rig, Verb::Start, &[101]).await.unwrap();
    let (_, events) = rig.apply(&start).await;
    let at = intervals(&events);
    assert!(at["guest:103:start"].1 < at["guest:102:start"].0 && at["guest:102:start"].1 < at["guest:101:start"].0);
    rig.pve.with(|sim| assert!(sim.running.contains(&101) && !sim.running.contains(&1002)));

    // The template is needed by its clones; a guest phoenix did not create is not deleted.
    let refused = verb(&rig, Verb::Delete { force: false }, &[900]).await.unwrap_err();
    assert!(refused.contains("needed by 101, 102, 103"), "{refused}");
    rig.pve.with(|sim| {
        let path = "nodes/pve2/qemu-server/1002.conf";
        let text = sim.files[path].replace("tags: phoenix\n", "");
        sim.files.insert(path.into(), text);
        sim.save_backing();
    });
    let refused = verb(&rig, Verb::Delete { force: false }, &[1002]).await.unwrap_err();
    assert!(refused.contains("not created by phoenix"), "{refused}");
    let forced = verb(&rig, Verb::Delete { force: true }, &[1002]).await.unwrap();
    assert_eq!(ids(&forced), vec!["guest:1002:delete".to_string()], "stopped already: no stop step");
    assert_eq!(rig.apply(&forced).await.0.failed, 0);
    rig.pve.with(|sim| assert!(sim.guest_key(1002, "name").is_none()));
    // And converge brings it back.
    let back = verb(&rig, Verb::Converge, &[1002]).await.unwrap();
    assert!(ids(&back).contains(&"guest:1002:create".to_string()));
    assert_eq!(rig.apply(&back).await.0.failed, 0);
    rig.pve.with(|sim| assert!(sim.running.contains(&1002)));
}
