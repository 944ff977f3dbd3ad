//! The rig the sync tests share: the Proxmox VE simulator and the Portainer fake on loopback,
//! phoenix's real clients, the host and guests as folders of a rehearsal.
#![allow(dead_code)]

use phoenix_core::plan::{Domain, Plan};
use phoenix_core::render::Rendered;
use phoenix_drivers::host::{GuestAccess, HostTarget, SystemRunner};
use phoenix_drivers::http::{Backoff, Trust};
use phoenix_drivers::portainer::{PortainerClient, PortainerSettings};
use phoenix_drivers::pve::{PveClient, PveSettings};
use phoenix_exec::sync::observe::ObserveInput;
use phoenix_exec::sync::{apply, plan_sync, ApplyOptions, Drivers, Event, Summary};
use phoenix_exec::{DriverError, Issued, Issuer};
use phoenix_model::model::{Model, SecretRef};
use phoenix_sim::portainer::FakePortainer;
use phoenix_sim::pve::PveSim;
use phoenix_sim::pve_server::SimPve;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

pub const STORE: &str = "/var/lib/phoenix/certs";
pub const TRUST_FILE: &str = "/usr/local/share/ca-certificates/phoenix-root-ca.crt";

/// Certificates are not ordered in these tests: the store holds valid ones.
pub struct NoAcme;

impl Issuer for NoAcme {
    async fn issue<T: phoenix_exec::Target>(&self, _: &phoenix_core::certificates::renewal::OrderRequest, _: &T) -> Result<Issued, DriverError> {
        Err(DriverError::new("no ACME server in this test"))
    }
}

pub struct Rig {
    pub pve: SimPve,
    pub portainer: FakePortainer,
    pub root: PathBuf,
    pub model: Model,
    pub rendered: Rendered,
    pub pve_client: PveClient,
    pub portainer_client: PortainerClient,
    pub target: HostTarget<SystemRunner>,
}

pub fn example() -> Model {
    let source = phoenix_testkit::example_source();
    phoenix_model::check(&phoenix_testkit::example_config(), &source).model.expect("the example loads")
}

/// Writes test-CA certificates for every manifest entry into the rehearsal's store.
fn write_store(root: &std::path::Path, model: &Model) {
    phoenix_testkit::pki::write_manifest_store(&root.join("host").join(STORE.trim_start_matches('/')), model).unwrap();
}

impl Rig {
    /// The example on a node with its guests and nothing else.
    pub async fn new(tag: &str) -> Rig {
        Rig::with(tag, example(), |_| {}).await
    }

    /// `model` on a simulated node with its guests, changed by `prepare` before serving.
    pub async fn with(tag: &str, model: Model, prepare: impl FnOnce(&mut PveSim)) -> Rig {
        let rendered = phoenix_core::render::render_all(&model);
        let mut sim = phoenix_lab::deployed::simulated_node(&model, &rendered).unwrap();
        prepare(&mut sim);
        Rig::serve(tag, model, rendered, sim, false).await
    }

    /// `model` on a simulated node with no guests yet (its storages as described), changed
    /// by `prepare` before serving; the node's /etc/pve is the rehearsal's `host/etc/pve`, so
    /// what phoenix writes there as the node's root the API sees (a test changing the
    /// simulator's files saves them with `save_backing`).
    pub async fn empty(tag: &str, model: Model, prepare: impl FnOnce(&mut PveSim)) -> Rig {
        let rendered = phoenix_core::render::render_all(&model);
        let mut sim = phoenix_sim::rehearsal::empty_node(&model);
        prepare(&mut sim);
        Rig::serve(tag, model, rendered, sim, true).await
    }

    async fn serve(tag: &str, model: Model, rendered: Rendered, sim: PveSim, backed: bool) -> Rig {
        let root = std::env::temp_dir().join(format!("phoenix-sync-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let sim = if backed { sim.backed_by(&root.join("host/etc/pve")).unwrap() } else { sim };
        let pve = SimPve::serve(sim).await;
        let portainer = FakePortainer::start(None).await;
        write_store(&root, &model);
        // The guests as provisioned: the accounts their files are owned by exist.
        phoenix_sim::rehearsal::write_guest_accounts(&root, &model, &rendered).unwrap();
        let backoff = Backoff { attempts: 4, first_delay: Duration::from_millis(10) };
        let pve_client = PveClient::new(PveSettings {
            url: pve.url(),
            token: pve.token.clone().into(),
            trust: Trust::Ca(pve.server.ca_file.clone()),
            timeout: Duration::from_secs(2),
            backoff,
            task_timeout: Duration::from_secs(10),
        })
        .unwrap();
        let portainer_client = PortainerClient::new(PortainerSettings {
            url: portainer.server.url(),
            trust: Trust::Ca(portainer.server.ca_file.clone()),
            api_key: None,
            key_file: root.join("portainer-api-key"),
            admin_user: "admin".into(),
            admin_password: Some("a-long-test-password".into()),
            timeout: Duration::from_secs(2),
            deploy_timeout: Duration::from_secs(2),
            agent_wait: Duration::from_secs(2),
            backoff,
        })
        .unwrap();
        let mut target = HostTarget::new(GuestAccess::Folders(root.clone()), SystemRunner);
        target.host_root = Some(root.join("host"));
        Rig { pve, portainer, root, model, rendered, pve_client, portainer_client, target }
    }

    pub async fn plan(&self, domains: &BTreeSet<Domain>) -> Result<Plan, DriverError> {
        let input = ObserveInput {
            model: &self.model,
            rendered: &self.rendered,
            domains,
            pve: &self.pve_client,
            portainer: &self.portainer_client,
            target: &self.target,
            node: &self.model.host.node_name,
            store_dir: STORE,
            host_trust_file: TRUST_FILE,
            now: 1_800_000_000,
            boot_delays: false,
            feature_inputs: &Default::default(),
        };
        let secret = |_: &SecretRef| Some("test-secret-value".to_string());
        plan_sync(&input, &secret).await
    }

    pub async fn apply(&self, plan: &Plan) -> (Summary, Vec<Event>) {
        let drivers =
            Drivers { model: &self.model, pve: &self.pve_client, portainer: &self.portainer_client, target: &self.target, issuer: &NoAcme };
        let options = ApplyOptions {
            parallel: 64,
            node_parallel: 4,
            run_commands: false,
            store_dir: STORE.into(),
            host_trust_file: TRUST_FILE.into(),
            now: 1_800_000_000,
        };
        let mut events = Vec::new();
        let summary = apply(plan, &drivers, &options, &mut |e| events.push(e.clone())).await;
        (summary, events)
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

pub fn all() -> BTreeSet<Domain> {
    Domain::ALL.into_iter().collect()
}
