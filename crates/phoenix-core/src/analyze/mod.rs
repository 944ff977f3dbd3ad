//! Analysis: judging the configuration against the flows it implies. Pure: it takes the model
//! and the (rendered or deployed) files as data and returns verdicts with their evidence.

pub mod assess;
pub mod certs;
pub mod challenges;
pub mod firewall;
pub mod flows;
pub mod report;
pub mod verdict;

use firewall::FirewallState;
use phoenix_model::model::Model;
use verdict::Status;

/// The whole assessment: every flow's verdicts, and whether anything fails (a hop, or a DNS
/// finding), which is what `phoenix assess` exits on.
#[derive(Debug, Clone)]
pub struct Assessment {
    pub flows: Vec<assess::FlowVerdict>,
    pub failing: bool,
}

/// Assesses `model` against `state` with the edge derived from the model.
pub fn assessment(model: &Model, state: &FirewallState, options: &assess::Options) -> Assessment {
    let edge = crate::edge::edge(model);
    let flows = assess::assess(model, &edge, state, options);
    let failing =
        flows.iter().any(|f| f.status == Status::Fail) || report::dns_findings(model).iter().any(|(status, _)| *status == Status::Fail);
    Assessment { flows, failing }
}
