//! Analysis: judging the configuration against the flows it implies. Pure: it takes the model
//! and the (rendered or deployed) files as data and returns verdicts with their evidence.

pub mod assess;
pub mod certs;
pub mod firewall;
pub mod flows;
pub mod report;
pub mod verdict;
