//! The simulator's own cost per request, in process: `cargo run --release -p phoenix-sim
//! --example bench_sim -- [GUESTS]` creates GUESTS containers and sends each ten rules, an
//! options change and a NIC change, then reads them back, and prints the time per request.

use phoenix_sim::pve::guest::GuestKind;
use phoenix_sim::pve::PveSim;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Instant;

fn form(pairs: &[(&str, &str)]) -> BTreeMap<String, Value> {
    pairs.iter().map(|(k, v)| (k.to_string(), Value::String(v.to_string()))).collect()
}

fn main() {
    let guests: u32 = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(500);
    let mut sim = PveSim::new("pve");
    for id in 0..guests {
        sim.add_guest(1000 + id, GuestKind::Lxc, "name=eth0,bridge=vmbr0,ip=dhcp", &[]).expect("a guest");
    }
    let clock = Instant::now();
    let mut requests = 0;
    for id in 0..guests {
        let base = format!("/nodes/pve/lxc/{}", 1000 + id);
        for port in 0..10 {
            let port = (8000 + port).to_string();
            let reply = sim.request(
                "POST",
                &format!("{base}/firewall/rules"),
                form(&[
                    ("type", "in"),
                    ("action", "ACCEPT"),
                    ("enable", "1"),
                    ("proto", "tcp"),
                    ("dport", &port),
                    ("source", "10.0.0.0/24"),
                ]),
            );
            assert_eq!(reply.status, 200, "{}", reply.body);
            requests += 1;
        }
        sim.request("PUT", &format!("{base}/firewall/options"), form(&[("enable", "1"), ("policy_in", "DROP")]));
        sim.request("PUT", &format!("{base}/config"), form(&[("net0", "name=eth0,bridge=vmbr0,ip=dhcp,firewall=1")]));
        sim.request("GET", &format!("{base}/firewall/rules"), BTreeMap::new());
        sim.request("GET", &format!("{base}/config"), BTreeMap::new());
        requests += 4;
    }
    let elapsed = clock.elapsed();
    assert!(sim.gaps.is_empty(), "{:?}", sim.gaps);
    println!("{requests} requests in {:.3} s: {:.1} µs each", elapsed.as_secs_f64(), elapsed.as_secs_f64() * 1e6 / requests as f64);
}
