//! The lab's results as text: the hop table of `lab check` and `assess --live` (static and
//! live verdicts side by side, each endpoint with the host name it stands for) and the human
//! view of `lab status`. Pure formatting: nothing here probes or reads the lab.

use crate::probe::Observation;
use crate::StatusReport;
use phoenix_model::model::Model;

fn verdict(passes: bool) -> &'static str {
    if passes {
        "passes"
    } else {
        "blocked"
    }
}

fn pair(expected: Option<bool>, live: Option<bool>) -> String {
    match (expected, live) {
        (Some(e), Some(l)) => format!("{}/{}", verdict(e), verdict(l)),
        (Some(e), None) => format!("{}/-", verdict(e)),
        _ => "-".into(),
    }
}

/// A lab endpoint (`guest-101`, `host`, `outside`) with the host name it stands for.
pub fn endpoint_name(model: &Model, key: &str) -> String {
    let guest = key.strip_prefix("guest-").and_then(|id| id.parse::<u32>().ok()).and_then(|id| model.guests.get(&id));
    match guest {
        Some(guest) => format!("{key} ({})", guest.name),
        None if key == "host" => format!("host ({})", model.host.node_name),
        None => match key.strip_prefix("node-").and_then(|i| i.parse::<usize>().ok()).and_then(|i| model.host.nodes.get(i)) {
            Some(node) => format!("{key} ({})", node.name),
            None => key.to_string(),
        },
    }
}

/// One row per probed hop, DRIFT where live and static disagree, and the count.
pub fn hop_table(model: &Model, observations: &[Observation], drift: usize) -> String {
    let mut out = format!("{:<64} {:<17} {:<17} {:<17} {}\n", "hop (static/live)", "firewall", "dns", "tls", "https via the gateway");
    for o in observations {
        let p = &o.probe;
        let proto = if p.proto == 17 { "udp" } else { "tcp" };
        let hop = format!("{} -> {} {}:{}/{proto}", endpoint_name(model, &p.from), endpoint_name(model, &p.to), p.address, p.port);
        let firewall = pair(Some(p.expected), Some(o.live));
        let dns = pair(p.dns.as_ref().map(|d| d.expected), o.live_dns);
        let tls = pair(p.tls.as_ref().map(|t| t.expected), o.live_tls);
        let http = match &p.http {
            Some(h) => format!("{} {}", h.host, pair(Some(h.expected), o.live_http)),
            None => "-".into(),
        };
        let mark = if o.agrees() { "" } else { "  DRIFT" };
        out.push_str(&format!("{hop:<64} {firewall:<17} {dns:<17} {tls:<17} {http}{mark}\n"));
    }
    out.push_str(&format!("{} hops, {drift} drift\n", observations.len()));
    out
}

/// `lab status` for people: up or not, then each namespace and process and whether it is there.
pub fn status_text(report: &StatusReport) -> String {
    let present = |there: bool| if there { "present" } else { "MISSING" };
    let mut out = format!("lab {} is {}\n", report.name, if report.up { "up" } else { "not up" });
    for (namespace, there) in &report.namespaces {
        out.push_str(&format!("  namespace {namespace:<32} {}\n", present(*there)));
    }
    for (pid, running) in &report.processes {
        out.push_str(&format!("  process {pid:<34} {}\n", if *running { "running" } else { "GONE" }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_named_with_the_hosts_they_stand_for() {
        let model = phoenix_model::check(&phoenix_testkit::example_config(), &phoenix_testkit::example_source()).model.unwrap();
        let guest = model.guests.values().next().unwrap();
        assert_eq!(endpoint_name(&model, &format!("guest-{}", guest.id)), format!("guest-{} ({})", guest.id, guest.name));
        assert_eq!(endpoint_name(&model, "host"), format!("host ({})", model.host.node_name));
        assert_eq!(endpoint_name(&model, "outside"), "outside");
        let status = StatusReport { name: "lab".into(), up: false, namespaces: vec![("phx-lab-host".into(), false)], processes: vec![] };
        assert_eq!(status_text(&status), "lab lab is not up\n  namespace phx-lab-host                     MISSING\n");
    }
}
