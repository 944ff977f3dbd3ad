//! What a lab runs when it stands in for a deployed system (`phoenix lab up --bare`, then
//! `phoenix sync --lab`): the firewall as the Proxmox API holds it, and the files as they were
//! written, instead of what the configuration renders. Pure: the observation comes from
//! phoenix-exec's observe, the same one `phoenix sync` plans from.

use crate::analyze::firewall::{FirewallState, GuestNet};
use crate::plan::pve::FwScope;
use crate::plan::{Observed, PveObserved};
use crate::render::Rendered;
use phoenix_model::model::Model;
use std::collections::BTreeMap;

/// The firewall as pve-firewall would compile it from what the API holds: each scope's file at
/// its /etc/pve path, and each NIC's `firewall=1`.
pub fn firewall(pve: &PveObserved, model: &Model) -> FirewallState {
    let texts: BTreeMap<String, String> = pve
        .firewalls
        .iter()
        .map(|(scope, file)| {
            let path = match scope {
                FwScope::Cluster => phoenix_model::paths::CLUSTER_FW.to_string(),
                FwScope::Host(_) => phoenix_model::paths::host_fw(scope.host_node(model).unwrap_or(&pve.node)),
                FwScope::Guest(id, _) => phoenix_model::paths::guest_fw(id),
            };
            (path, file.to_text())
        })
        .collect();
    let nets = model.guests.values().map(|g| (g.id, GuestNet::from_conf(g.kind, &nic_lines(pve.nics.get(&g.id))))).collect();
    let bridge = model.host.bridge.clone().unwrap_or_else(|| "vmbr0".into());
    FirewallState::from_texts(&texts, &pve.node, nets, &bridge, "the Proxmox VE API (the lab's)").with_node(model, None)
}

/// The rendered files as deployed: each one's content replaced by its deployed copy, the ones
/// not deployed left out (their service then runs without them, or not at all).
pub fn files(rendered: &Rendered, observed: &Observed) -> Rendered {
    let mut deployed = rendered.clone();
    deployed.files = rendered
        .files
        .iter()
        .filter_map(|file| {
            let content = observed.files.get(&(file.target, file.path.clone()))?.clone()?;
            let mut file = file.clone();
            file.content = content;
            Some(file)
        })
        .collect();
    deployed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::firewall::{evaluate, Endpoint, Packet};
    use crate::pve_fw::{Action, Direction, FwFile, FwRule, Verdict};

    fn model() -> Model {
        phoenix_model::check(&phoenix_testkit::example_config(), &phoenix_testkit::example_source()).model.expect("the example loads")
    }

    #[test]
    fn an_api_without_firewall_configuration_lets_everything_pass() {
        let model = model();
        let pve = PveObserved { node: model.host.node_name.clone(), ..PveObserved::default() };
        let state = firewall(&pve, &model);
        assert!(state.nets.values().all(|n| n.nics.iter().all(|nic| !nic.firewall)));
        for guest in model.guests.values().filter(|g| g.address().is_some()) {
            let packet = Packet::to(6, 12345);
            assert!(evaluate(&state, &model, Endpoint::Host, Endpoint::Guest(guest.id), packet).passes, "guest {}", guest.id);
        }
    }

    #[test]
    fn the_api_s_rules_and_nic_flags_become_the_state() {
        let model = model();
        let guest = *model.guests.keys().next().unwrap();
        let mut cluster = FwFile::default();
        cluster.options.insert("enable".into(), "1".into());
        cluster.rules.push(FwRule {
            options: vec![("p".into(), "tcp".into()), ("dport".into(), "22".into())],
            ..FwRule::new(Direction::In, Verdict::Action { macro_name: None, action: Action::Accept })
        });
        let pve = PveObserved {
            node: model.host.node_name.clone(),
            firewalls: [(FwScope::Cluster, cluster)].into(),
            nics: [(guest, [("net0".to_string(), "name=eth0,bridge=vmbr0,firewall=1".to_string())].into())].into(),
            ..PveObserved::default()
        };
        let state = firewall(&pve, &model);
        assert_eq!(state.cluster.option("enable"), Some("1"));
        assert_eq!(state.cluster.conf.rules.len(), 1);
        assert!(state.nets[&guest].nics[0].firewall);
    }
}

/// A guest's NICs as the `netN: value` lines of its `.conf`.
fn nic_lines(nics: Option<&BTreeMap<String, String>>) -> String {
    nics.into_iter().flatten().map(|(key, value)| format!("{key}: {value}\n")).collect()
}
