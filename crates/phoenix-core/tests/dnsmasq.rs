//! dnsmasq as the real tool sees it: the rendered configuration passes `dnsmasq --test`, and a
//! real dnsmasq started on loopback with it answers every configured name with the configured
//! address (queried with hickory). Needs the dnsmasq binary (scripts/test installs dnsmasq-base).

use hickory_client::client::{Client, ClientHandle};
use hickory_client::proto::rr::{DNSClass, Name, RecordType};
use hickory_client::proto::runtime::TokioRuntimeProvider;
use hickory_client::proto::udp::UdpClientStream;
use phoenix_core::render::{dnsmasq, render_all};
use phoenix_testkit::{example_config, example_source, reference_config, MemorySource};
use serde_json::json;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

fn dnsmasq_binary() -> &'static str {
    let path = "/usr/sbin/dnsmasq";
    assert!(Path::new(path).exists(), "dnsmasq is not installed: `apt-get install dnsmasq-base` (scripts/test does this)");
    path
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("phoenix-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The example, with dnsmasq told to listen on loopback (the only address a test may use).
fn rendered_config(source: &MemorySource, config: &Path) -> (String, phoenix_model::Model) {
    let checked = phoenix_model::check(config, source);
    let model = checked.model.expect("model");
    let rendered = render_all(&model);
    let file = rendered.files.iter().find(|f| f.path == dnsmasq::PATH).expect("dnsmasq file");
    (file.content.clone(), model)
}

fn loopback_source(source: &mut MemorySource, config: &Path) {
    source.edit_json(&config.join("phoenix_hypervisor_config.json"), |v| v["dns_server"]["listen_addresses"] = json!(["127.0.0.1"]));
}

#[test]
fn the_rendered_configuration_passes_dnsmasq_test() {
    for (mut source, config) in
        [(example_source(), example_config()), (MemorySource::from_dir(reference_config().parent().unwrap()), reference_config())]
    {
        loopback_source(&mut source, &config);
        let (text, _) = rendered_config(&source, &config);
        let dir = scratch("dnsmasq-test");
        let path = dir.join("phoenix.conf");
        std::fs::write(&path, &text).unwrap();
        let output = Command::new(dnsmasq_binary()).arg("--test").arg(format!("--conf-file={}", path.display())).output().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(output.status.success(), "dnsmasq --test refused:\n{}\n{text}", String::from_utf8_lossy(&output.stderr));
    }
}

#[test]
fn dnsmasq_refuses_what_it_should() {
    // The check above would be worthless if dnsmasq --test accepted anything.
    let dir = scratch("dnsmasq-bad");
    let path = dir.join("bad.conf");
    std::fs::write(&path, "host-record=no-address-here\nlisten-adress=127.0.0.1\n").unwrap();
    let output = Command::new(dnsmasq_binary()).arg("--test").arg(format!("--conf-file={}", path.display())).output().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(!output.status.success());
}

struct Running(Child, PathBuf);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn current_user() -> String {
    let output = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

fn start(text: &str, port: u16) -> Running {
    let dir = scratch("dnsmasq-live");
    let path = dir.join("phoenix.conf");
    std::fs::write(&path, text).unwrap();
    let child = Command::new(dnsmasq_binary())
        .args(["--keep-in-foreground", "--log-facility=-"])
        .arg(format!("--conf-file={}", path.display()))
        .arg(format!("--port={port}"))
        .arg(format!("--pid-file={}", dir.join("pid").display()))
        .arg(format!("--user={}", current_user()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("dnsmasq starts");
    Running(child, dir)
}

async fn query(client: &mut Client, name: &str) -> Vec<IpAddr> {
    let name = Name::from_str(&format!("{name}.")).unwrap();
    match tokio::time::timeout(Duration::from_secs(2), client.query(name, DNSClass::IN, RecordType::A)).await {
        Ok(Ok(response)) => response.answers().iter().filter_map(|r| r.data().as_a()).map(|a| IpAddr::V4(a.0)).collect(),
        _ => Vec::new(),
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_real_dnsmasq_answers_every_configured_name() {
    let mut source = example_source();
    loopback_source(&mut source, &example_config());
    let (text, model) = rendered_config(&source, &example_config());
    let port = free_udp_port();
    let _server = start(&text, port);
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let stream = UdpClientStream::builder(address, TokioRuntimeProvider::default()).with_timeout(Some(Duration::from_secs(1))).build();
    let (mut client, background) = Client::connect(stream).await.unwrap();
    tokio::spawn(background);
    // dnsmasq needs a moment to bind; wait for the first answer, bounded in time.
    let first = &model.dns.records[0];
    let deadline = Instant::now() + Duration::from_secs(10);
    while query(&mut client, &first.fqdn).await.is_empty() {
        assert!(Instant::now() < deadline, "dnsmasq did not answer within 10 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!model.dns.records.is_empty());
    for record in &model.dns.records {
        let answers = query(&mut client, &record.fqdn).await;
        assert_eq!(answers, vec![record.address], "{}", record.fqdn);
    }
    // Names inside an authoritative zone that are not configured are not invented or forwarded.
    assert!(query(&mut client, "nothing-here.internal.thinkheads.ai").await.is_empty());
}

/// Issue 16: a guest NIC whose resolver is the node's address on the internal bridge (the
/// users' late shape: `nameservers` `.1` of `internal_bridge.subnet`) is answered there:
/// dnsmasq binds its listen addresses only (`bind-interfaces`), so that address is one of them.
/// An address of the node no guest asks is not.
#[test]
fn the_node_listens_where_its_guests_ask_it() {
    let config = example_config();
    let (text, _) = rendered_config(&example_source(), &config);
    let listening: Vec<&str> = text.lines().filter(|l| l.starts_with("listen-address=")).collect();
    assert_eq!(listening, ["listen-address=10.0.0.13"], "no guest asks the node on vmbr100 yet");
    let mut source = example_source();
    source.edit_json(&config.join("phoenix_lxc_configs.json"), |v| {
        v["lxc_configs"]["102"]["secondary_network_config"]["nameservers"] = json!("10.100.0.1");
    });
    let (text, _) = rendered_config(&source, &config);
    let listening: Vec<&str> = text.lines().filter(|l| l.starts_with("listen-address=")).collect();
    assert_eq!(listening, ["listen-address=10.0.0.13", "listen-address=10.100.0.1"]);
}
