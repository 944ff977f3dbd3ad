//! The words every judgement speaks: a [`Status`] (OK, warning, fail) and a [`Check`] (a
//! status with its summary and evidence). The flow assessment, the certificate checks, the
//! reports and the lab's comparison use them; none of them owns them. Data only.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warning,
    Fail,
}

impl Status {
    pub fn word(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Warning => "WARNING",
            Status::Fail => "FAIL",
        }
    }
}

/// One judged aspect of a hop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub status: Status,
    pub summary: String,
    pub evidence: Vec<String>,
}
