//! Namespaces, the bridge, veth pairs, addresses, nftables and the stand-in listeners, through
//! `ip` and `nft`. Every command is bounded: they either finish or fail; listeners report ready
//! on stdout within a few seconds or the lab gives up.

use crate::{LabError, LabState};
use phoenix_core::lab::{LabSpec, Namespace};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub fn netns(lab: &str, key: &str) -> String {
    format!("phx-{lab}-{key}")
}

fn run(program: &str, args: &[&str], stdin: Option<&str>) -> Result<(), LabError> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| LabError(format!("cannot run {program}: {e}")))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes()).map_err(|e| LabError(format!("{program}: {e}")))?;
    }
    let output = child.wait_with_output().map_err(|e| LabError(format!("{program}: {e}")))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(LabError(format!("`{program} {}` failed: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim())))
    }
}

/// The lab's namespaces that exist now.
pub fn lab_namespaces(lab: &str) -> Vec<String> {
    let prefix = format!("phx-{lab}-");
    let Ok(output) = Command::new("ip").args(["netns", "list"]).output() else { return Vec::new() };
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(&prefix))
        .map(str::to_string)
        .collect()
}

/// The processes living in a namespace (`ip netns pids`), whoever started them.
fn namespace_pids(name: &str) -> Vec<u32> {
    let Ok(output) = Command::new("ip").args(["netns", "pids", name]).output() else { return Vec::new() };
    String::from_utf8_lossy(&output.stdout).split_whitespace().filter_map(|p| p.parse().ok()).collect()
}

/// Stops every process still in the namespace (a crashed lab's nginx workers, say), then
/// deletes it and its /etc/netns folder.
pub fn delete_namespace(name: &str) {
    stop_processes(&namespace_pids(name));
    let _ = run("ip", &["netns", "delete", name], None);
    let _ = std::fs::remove_dir_all(Path::new("/etc/netns").join(name));
}

pub fn stop_processes(pids: &[u32]) {
    for pid in pids {
        let _ = Command::new("kill").arg(pid.to_string()).stderr(Stdio::null()).status();
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    while pids.iter().any(|p| Path::new(&format!("/proc/{p}")).exists()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    for pid in pids.iter().filter(|p| Path::new(&format!("/proc/{p}")).exists()) {
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).stderr(Stdio::null()).status();
    }
}

/// Creates the switch and every namespace, wired and addressed, then loads the firewall and
/// starts the listeners. `record` persists the state before each creation.
pub fn build(
    state: &mut LabState,
    spec: &LabSpec,
    phoenix: &Path,
    record: &mut dyn FnMut(&LabState) -> Result<(), LabError>,
) -> Result<(), LabError> {
    let lab = state.name.clone();
    let switch = netns(&lab, "sw");
    state.namespaces.push(switch.clone());
    record(state)?;
    run("ip", &["netns", "add", &switch], None)?;
    run("ip", &["-n", &switch, "link", "set", "lo", "up"], None)?;
    // br0 is the node's main bridge; each other Proxmox bridge a NIC is on gets its own.
    let mut bridges: Vec<&str> = spec.namespaces.iter().flat_map(|n| &n.more_nics).map(|n| n.switch_bridge.as_str()).collect();
    bridges.sort_unstable();
    bridges.dedup();
    for bridge in std::iter::once("br0").chain(bridges.into_iter().filter(|b| *b != "br0")) {
        run("ip", &["-n", &switch, "link", "add", bridge, "type", "bridge"], None)?;
        run("ip", &["-n", &switch, "link", "set", bridge, "up"], None)?;
    }
    for (index, namespace) in spec.namespaces.iter().enumerate() {
        let name = netns(&lab, &namespace.key);
        state.namespaces.push(name.clone());
        record(state)?;
        wire(&switch, &name, index, namespace)?;
    }
    configure(state, spec, phoenix, record)
}

fn wire(switch: &str, name: &str, index: usize, namespace: &Namespace) -> Result<(), LabError> {
    run("ip", &["netns", "add", name], None)?;
    run("ip", &["-n", name, "link", "set", "lo", "up"], None)?;
    let first = (namespace.iface.as_str(), "br0", namespace.address, namespace.prefix);
    plug(switch, name, &format!("p{index}"), first)?;
    // Everything is one hop away on the lab's bridge (the outside client too): no router.
    run("ip", &["-n", name, "route", "add", "default", "dev", &namespace.iface], None)?;
    // Further NICs reach their own subnet only (the kernel's connected route).
    for (k, nic) in namespace.more_nics.iter().enumerate() {
        plug(switch, name, &format!("p{index}n{k}"), (&nic.iface, &nic.switch_bridge, nic.address, nic.prefix))?;
    }
    // The guest's configured resolvers: `ip netns exec` mounts /etc/netns/<name>/resolv.conf.
    if !namespace.nameservers.is_empty() {
        let dir = Path::new("/etc/netns").join(name);
        let text: String = namespace.nameservers.iter().map(|n| format!("nameserver {n}\n")).collect();
        std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(dir.join("resolv.conf"), text))
            .map_err(|e| LabError(format!("{}: {e}", dir.display())))?;
    }
    Ok(())
}

/// A veth pair: `port` on the switch's `bridge`, `iface` in namespace `name` with `address/prefix`, both up.
fn plug(
    switch: &str,
    name: &str,
    port: &str,
    (iface, bridge, address, prefix): (&str, &str, std::net::Ipv4Addr, u8),
) -> Result<(), LabError> {
    let address = format!("{address}/{prefix}");
    run("ip", &["-n", switch, "link", "add", port, "type", "veth", "peer", "name", iface, "netns", name], None)?;
    run("ip", &["-n", switch, "link", "set", port, "master", bridge, "up"], None)?;
    run("ip", &["-n", name, "addr", "add", &address, "dev", iface], None)?;
    run("ip", &["-n", name, "link", "set", iface, "up"], None)
}

/// Loads each namespace's ruleset, starts dnsmasq where phoenix's DNS server runs, and the
/// stand-in listeners (ports dnsmasq serves are left to it).
pub fn configure(
    state: &mut LabState,
    spec: &LabSpec,
    phoenix: &Path,
    record: &mut dyn FnMut(&LabState) -> Result<(), LabError>,
) -> Result<(), LabError> {
    let dir = crate::state_dir(&state.name);
    // A service that refuses to start (nginx without its certificate, say) leaves its ports
    // closed, as on a real node; the others still start, and the refusals are reported at the end.
    let mut refused = Vec::new();
    for namespace in &spec.namespaces {
        let name = netns(&state.name, &namespace.key);
        run("ip", &["netns", "exec", &name, "nft", "-f", "-"], Some(&namespace.ruleset))?;
        let mut serve = crate::serve::ServeConfig {
            tcp: namespace.tcp.clone(),
            udp: namespace.udp.clone(),
            tls: namespace.tls.clone(),
            store: state.store.clone(),
        };
        if let Some(conf) = &namespace.dnsmasq {
            started(state, record, &mut refused, start_dnsmasq(&dir, &name, conf))?;
            serve.tcp.remove(&53);
            serve.udp.remove(&53);
        }
        if let Some(port) = namespace.acme_port.filter(|_| pebble_installed()) {
            let pebble = start_pebble(&dir.join(&namespace.key), &name, (namespace.address, port), namespace.acme_resolver);
            started(state, record, &mut refused, pebble)?;
            serve.tcp.remove(&port);
        }
        let traefik = namespace.traefik.as_ref().zip(traefik_program());
        match (traefik, &namespace.nginx, file_source(state, &namespace.key)) {
            (Some(((static_text, dynamic_text), program)), _, Some(source)) => {
                let files = TraefikFiles { static_text, dynamic_text, copies: &namespace.files };
                let result = start_traefik(&dir.join(&namespace.key), &name, &program, &files, &source);
                state.traefik = Some(format!("the real Traefik ({}) in {}", program.display(), namespace.key));
                started(state, record, &mut refused, result)?;
                serve.tcp.remove(&80);
                serve.tcp.remove(&443);
            }
            (_, Some(conf), Some(source)) => {
                if namespace.traefik.is_some() {
                    state.traefik = Some(format!(
                        "nginx standing in for Traefik in {}: no Traefik binary (set PHOENIX_TRAEFIK; scripts/test fetches one)",
                        namespace.key
                    ));
                }
                let result = start_nginx(&dir.join(&namespace.key), &name, conf, &namespace.files, &source);
                started(state, record, &mut refused, result)?;
                serve.tcp.remove(&80);
                serve.tcp.remove(&443);
            }
            _ => {}
        }
        // What a real container serves itself (its nginx, its Traefik) is its own.
        if crate::containers::in_namespace(&state.name, &namespace.key) {
            let (tcp, udp) = listening(&name);
            serve.tcp.retain(|port| !tcp.contains(port));
            serve.udp.retain(|port| !udp.contains(port));
        }
        if serve.tcp.is_empty() && serve.udp.is_empty() {
            continue;
        }
        let file = dir.join(format!("serve-{}.json", namespace.key));
        std::fs::write(&file, serde_json::to_string(&serve).map_err(|e| LabError(e.to_string()))?)
            .map_err(|e| LabError(format!("{}: {e}", file.display())))?;
        let pid = start_listener(&name, &file, phoenix)?;
        state.pids.push(pid);
        record(state)?;
    }
    match refused.is_empty() {
        true => Ok(()),
        false => Err(LabError(refused.join("; "))),
    }
}

/// The TCP and UDP ports something listens on in namespace `name` (`ss -Hltun`).
fn listening(name: &str) -> (std::collections::BTreeSet<u16>, std::collections::BTreeSet<u16>) {
    let output = Command::new("ip").args(["netns", "exec", name, "ss", "-Hltun"]).output();
    let text = output.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
    let (mut tcp, mut udp) = (std::collections::BTreeSet::new(), std::collections::BTreeSet::new());
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let port = fields.get(4).and_then(|local| local.rsplit(':').next()).and_then(|p| p.parse::<u16>().ok());
        match (fields.first(), port) {
            (Some(&"tcp"), Some(port)) => tcp.insert(port),
            (Some(&"udp"), Some(port)) => udp.insert(port),
            _ => false,
        };
    }
    (tcp, udp)
}

/// Where a guest's files come from: a bare lab's guests have the files a sync installed; else
/// the store's are copied in. `None` without a store.
fn file_source(state: &LabState, key: &str) -> Option<impl Fn(&str, &str) -> PathBuf> {
    let store = state.store.clone()?;
    let deployed = crate::deployed::folder(&state.name).join(key);
    let bare = state.bare;
    Some(move |path: &str, file: &str| if bare { deployed.join(path.trim_start_matches('/')) } else { store.join(file) })
}

/// Empties the guest's folder `root` and copies `files` (path in the guest, store file) into it
/// from `source`; the paths that could not be copied.
fn lay_out_files(
    root: &Path,
    files: &[(String, String)],
    source: &dyn Fn(&str, &str) -> PathBuf,
    io: &dyn Fn(std::io::Error) -> LabError,
) -> Result<Vec<String>, LabError> {
    let _ = std::fs::remove_dir_all(root);
    let mut missing = Vec::new();
    for (path, file) in files {
        let target = root.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(target.parent().unwrap_or(root)).map_err(io)?;
        if std::fs::copy(source(path, file), &target).is_err() {
            missing.push(path.clone());
        }
    }
    Ok(missing)
}

/// Records a started service; a refusal is kept in `refused` and the lab goes on.
fn started(
    state: &mut LabState,
    record: &mut dyn FnMut(&LabState) -> Result<(), LabError>,
    refused: &mut Vec<String>,
    result: Result<u32, LabError>,
) -> Result<(), LabError> {
    match result {
        Ok(pid) => {
            state.pids.push(pid);
            record(state)
        }
        Err(error) => {
            refused.push(error.0);
            Ok(())
        }
    }
}

/// Waits (5 s at most) until something listens on TCP `port` inside `name`; false at once
/// when `child` has exited (a daemon refusing its configuration).
fn wait_listening(name: &str, port: u16, child: &mut std::process::Child) -> bool {
    let filter = format!("sport = :{port}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return false;
        }
        let listening = Command::new("ip")
            .args(["netns", "exec", name, "ss", "-Hltn", &filter])
            .output()
            .map(|o| !o.stdout.is_empty())
            .unwrap_or(false);
        if listening {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Starts `argv` inside namespace `name` with `env` added, its output discarded (each daemon
/// logs to its own file); ready once something listens on TCP `port`, else stopped and
/// `failure` returned.
fn start_daemon(name: &str, argv: &[&str], env: &[(&str, &str)], port: u16, failure: String) -> Result<u32, LabError> {
    start_daemon_logged(name, argv, env, port, None, failure)
}

/// As [`start_daemon`], its output (both streams) into `log`.
fn start_daemon_logged(
    name: &str,
    argv: &[&str],
    env: &[(&str, &str)],
    port: u16,
    log: Option<std::fs::File>,
    failure: String,
) -> Result<u32, LabError> {
    let (stdout, stderr) = match log.and_then(|file| Some((file.try_clone().ok()?, file))) {
        Some((out, err)) => (Stdio::from(out), Stdio::from(err)),
        None => (Stdio::null(), Stdio::null()),
    };
    let mut child = Command::new("ip")
        .args(["netns", "exec", name])
        .args(argv)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .map_err(|e| LabError(format!("cannot start {} in {name}: {e}", argv.first().copied().unwrap_or_default())))?;
    let pid = child.id();
    if wait_listening(name, port, &mut child) {
        return Ok(pid);
    }
    stop_processes(&[pid]);
    Err(LabError(failure))
}

/// A real nginx with the gateway's rendered configuration, its files (certificates, keys, the
/// root; `(path in the guest, store file)`) copied from `source` into the guest's folder
/// `root`; ready once it listens.
fn start_nginx(
    root: &Path,
    name: &str,
    conf: &str,
    files: &[(String, String)],
    source: &dyn Fn(&str, &str) -> std::path::PathBuf,
) -> Result<u32, LabError> {
    let [program, conf_arg, prefix] = prepare_nginx(root, conf, files, source)?;
    // Both the gateway's and Traefik's configurations listen on 80 (443 needs a certificate).
    let failure = format!("nginx did not start in {name}: see {}", root.join("var/log/nginx/error.log").display());
    start_daemon(name, &[&program, "-g", "daemon off;", "-c", &conf_arg, "-p", &prefix], &[], 80, failure)
}

/// `nginx -t` on `conf` laid out in `root` as the lab would run it (see [`start_nginx`]); the
/// error carries nginx's own words.
pub fn check_nginx(
    root: &Path,
    conf: &str,
    files: &[(String, String)],
    source: &dyn Fn(&str, &str) -> std::path::PathBuf,
) -> Result<(), LabError> {
    let [program, conf_arg, prefix] = prepare_nginx(root, conf, files, source)?;
    run(&program, &["-t", "-q", "-c", &conf_arg, "-p", &prefix], None)
}

/// `dnsmasq --test` on `conf`, kept in `dir` for the checking.
pub fn check_dnsmasq(dir: &Path, conf: &str) -> Result<(), LabError> {
    std::fs::create_dir_all(dir).map_err(|e| LabError(format!("{}: {e}", dir.display())))?;
    let file = dir.join("dnsmasq-check.conf");
    std::fs::write(&file, conf).map_err(|e| LabError(format!("{}: {e}", file.display())))?;
    run(&program("dnsmasq", "dnsmasq-base")?, &["--test", &format!("--conf-file={}", file.display())], None)
}

/// Where a program the lab runs is installed.
pub fn program(name: &str, package: &str) -> Result<String, LabError> {
    ["/usr/sbin", "/usr/bin"]
        .into_iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|path| path.is_file())
        .map(|path| path.to_string_lossy().into_owned())
        .ok_or_else(|| LabError(format!("the lab needs {name} (apt-get install {package})")))
}

/// Lays out an nginx prefix in `root`: the files copied from `source`, the configuration with
/// its paths moved there. The program, the configuration file and the prefix.
fn prepare_nginx(
    root: &Path,
    conf: &str,
    files: &[(String, String)],
    source: &dyn Fn(&str, &str) -> std::path::PathBuf,
) -> Result<[String; 3], LabError> {
    let io = |e: std::io::Error| LabError(format!("cannot prepare nginx in {}: {e}", root.display()));
    // A server certificate missing from the store stays missing: nginx then refuses to
    // start, as it would; a missing client certificate is simply not presented.
    let missing = lay_out_files(root, files, source, &io)?;
    for folder in ["run", "var/log/nginx", "etc/nginx"] {
        std::fs::create_dir_all(root.join(folder)).map_err(io)?;
    }
    // Debian's module snippets name `modules/...` relative to the prefix.
    let _ = std::os::unix::fs::symlink("/usr/lib/nginx/modules", root.join("modules"));
    let conf_file = root.join("etc/nginx/nginx.conf");
    std::fs::write(&conf_file, phoenix_core::lab::nginx_for_lab(conf, &root.to_string_lossy(), &missing)).map_err(io)?;
    Ok([program("nginx", "nginx")?, conf_file.to_string_lossy().into_owned(), root.to_string_lossy().into_owned()])
}

/// The Traefik binary: PHOENIX_TRAEFIK, one on the usual paths, or the one scripts/test fetched.
fn traefik_program() -> Option<PathBuf> {
    let cache = std::env::var_os("HOME").map(|home| Path::new(&home).join(phoenix_model::paths::TRAEFIK_CACHE_BINARY));
    std::env::var_os("PHOENIX_TRAEFIK")
        .map(PathBuf::from)
        .into_iter()
        .chain(["/usr/local/bin/traefik", "/usr/bin/traefik"].map(PathBuf::from))
        .chain(cache)
        .find(|path| path.is_file())
}

/// Traefik's rendered files and the files its guest needs in place (path in the guest, store file).
struct TraefikFiles<'f> {
    static_text: &'f str,
    dynamic_text: &'f str,
    copies: &'f [(String, String)],
}

/// The real Traefik with the rendered files, laid out in the guest's folder `root` (paths moved
/// there, nothing else changed: `phoenix_core::lab::traefik::for_lab`); ready once it listens on 443.
fn start_traefik(
    root: &Path,
    name: &str,
    program: &Path,
    files: &TraefikFiles<'_>,
    source: &dyn Fn(&str, &str) -> PathBuf,
) -> Result<u32, LabError> {
    let io = |e: std::io::Error| LabError(format!("cannot prepare Traefik in {}: {e}", root.display()));
    // A file missing from the store stays missing, and Traefik does with that what it does.
    lay_out_files(root, files.copies, source, &io)?;
    for folder in ["etc/traefik/dynamic", "var/log"] {
        std::fs::create_dir_all(root.join(folder)).map_err(io)?;
    }
    let (static_text, dynamic_text) =
        phoenix_core::lab::traefik::for_lab(files.static_text, files.dynamic_text, &root.to_string_lossy()).map_err(LabError)?;
    let static_file = root.join("etc/traefik/traefik.yml");
    std::fs::write(&static_file, static_text).map_err(io)?;
    std::fs::write(root.join("etc/traefik/dynamic/phoenix.yml"), dynamic_text).map_err(io)?;
    let config = format!("--configFile={}", static_file.display());
    let failure = format!("Traefik did not start in {name}: see {}", root.join("var/log/traefik.log").display());
    start_daemon(name, &[&program.to_string_lossy(), &config], &[], 443, failure)
}

pub fn pebble_installed() -> bool {
    Path::new("/usr/bin/pebble").is_file()
}

/// Pebble (an ACME server) standing in for Step-CA's ACME endpoint on its address and port,
/// with a serving certificate of its own. With `resolver` it validates for real, as Step-CA
/// would: it resolves each name there and asks port 80 (http-01) or 443 (tls-alpn-01) of the
/// answer, or the resolver for the TXT record (dns-01), all through the lab's firewall; its log
/// goes to `pebble.log` in `root` (appended). Without, it answers every validation as valid
/// (PEBBLE_VA_ALWAYS_VALID) without reaching out: the lab's own probes need none.
fn start_pebble(root: &Path, name: &str, (address, port): (std::net::Ipv4Addr, u16), resolver: Option<std::net::Ipv4Addr>) -> Result<u32, LabError> {
    let io = |e: std::io::Error| LabError(format!("cannot prepare Pebble in {}: {e}", root.display()));
    std::fs::create_dir_all(root).map_err(io)?;
    crate::certs::serving_certificate(&root.join(PEBBLE_CERT), &root.join("pebble.key"), &address.to_string())?;
    let config = serde_json::json!({ "pebble": {
        "listenAddress": format!("{address}:{port}"),
        "managementListenAddress": "127.0.0.1:15000",
        "certificate": root.join(PEBBLE_CERT),
        "privateKey": root.join("pebble.key"),
        "httpPort": phoenix_core::certificates::RESPONDER_HTTP01_PORT,
        "tlsPort": phoenix_core::certificates::RESPONDER_TLS_ALPN01_PORT,
        "ocspResponderURL": "",
        "externalAccountBindingRequired": false,
    }});
    let file = root.join("pebble.json");
    std::fs::write(&file, config.to_string()).map_err(io)?;
    let config_arg = file.to_string_lossy();
    let dns_arg = resolver.map(|r| format!("{r}:53")).unwrap_or_default();
    // Go's flag package: a bool flag takes `=false`; `-strict false` would mean strict, and end the flags.
    let mut argv = vec!["/usr/bin/pebble", "-config", &config_arg, "-strict=false"];
    // Every order proven afresh (no reused authorizations) and no nonce refused at random.
    let mut env = vec![("PEBBLE_VA_NOSLEEP", "1"), ("PEBBLE_AUTHZREUSE", "0"), ("PEBBLE_WFE_NONCEREJECT", "0")];
    match resolver {
        Some(_) => argv.extend(["-dnsserver", dns_arg.as_str()]),
        None => env.push(("PEBBLE_VA_ALWAYS_VALID", "1")),
    }
    // Appended to: a reload's Pebble keeps what the one before it validated.
    let log = std::fs::OpenOptions::new().create(true).append(true).open(root.join("pebble.log")).map_err(io)?;
    start_daemon_logged(name, &argv, &env, port, Some(log), format!("Pebble did not start in {name}"))
}

/// Pebble's serving certificate in its folder: what a client of the lab's ACME endpoint trusts.
pub const PEBBLE_CERT: &str = "pebble.crt";

/// The files of the dnsmasq running in namespace `netns` of the lab whose folder is `dir`.
pub struct DnsmasqFiles {
    pub conf: PathBuf,
    /// Challenge records (dns-01), included by `conf`, as the node's
    /// /etc/dnsmasq.d/phoenix-acme.conf is.
    pub records: PathBuf,
    pub pid: PathBuf,
    pub log: PathBuf,
}

impl DnsmasqFiles {
    pub fn of(dir: &Path, netns: &str) -> DnsmasqFiles {
        let file = |suffix: &str| dir.join(format!("dnsmasq-{netns}{suffix}"));
        DnsmasqFiles { conf: file(".conf"), records: file("-acme.conf"), pid: file(".pid"), log: file(".log") }
    }

    /// The dnsmasq its pid file names, when that process is still this dnsmasq (its command
    /// line names this configuration: a stale pid another process got is never touched).
    pub fn running(&self) -> Option<u32> {
        let pid: u32 = std::fs::read_to_string(&self.pid).ok()?.trim().parse().ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let conf = format!("--conf-file={}", self.conf.display());
        cmdline.split(|b| *b == 0).any(|arg| arg == conf.as_bytes()).then_some(pid)
    }

    /// The daemon's command line; `foreground` for the one the lab starts and tracks.
    pub fn argv(&self, program: &str, foreground: bool) -> Vec<String> {
        let mut argv = vec![program.to_string()];
        if foreground {
            argv.push("--keep-in-foreground".into());
        }
        argv.extend([
            "--user=root".to_string(),
            format!("--pid-file={}", self.pid.display()),
            format!("--conf-file={}", self.conf.display()),
            format!("--log-facility={}", self.log.display()),
        ]);
        argv
    }
}

/// dnsmasq with phoenix's rendered configuration (and its challenge-record file), in the
/// foreground, as root (the lab has no dnsmasq user), logging to the lab's folder; ready once
/// it answers on TCP 53. One a dns-01 order restarted (a daemon the lab did not start) goes first.
fn start_dnsmasq(dir: &Path, name: &str, conf: &str) -> Result<u32, LabError> {
    let files = DnsmasqFiles::of(dir, name);
    if let Some(pid) = files.running() {
        stop_processes(&[pid]);
    }
    let io = |e: std::io::Error| LabError(format!("{}: {e}", files.conf.display()));
    if !files.records.is_file() {
        std::fs::write(&files.records, "").map_err(io)?;
    }
    std::fs::write(&files.conf, format!("{conf}\nconf-file={}\n", files.records.display())).map_err(io)?;
    let program = program("dnsmasq", "dnsmasq-base")?;
    let argv = files.argv(&program, true);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    start_daemon(name, &argv, &[], 53, format!("dnsmasq did not start in {name}: see {}", files.log.display()))
}

/// `phoenix lab serve` inside the namespace; returns once it printed "ready".
fn start_listener(name: &str, config: &Path, phoenix: &Path) -> Result<u32, LabError> {
    let binary = phoenix.to_string_lossy();
    let config = config.to_string_lossy();
    let mut child = Command::new("ip")
        .args(["netns", "exec", name, &binary, "lab", "serve", "--config-file", &config])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| LabError(format!("cannot start the listeners in {name}: {e}")))?;
    let pid = child.id();
    let stdout = child.stdout.take().ok_or_else(|| LabError("no stdout".into()))?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    match rx.recv_timeout(Duration::from_secs(5)) {
        Ok(line) if line.trim() == "ready" => Ok(pid),
        Ok(line) => Err(LabError(format!("the listeners in {name} did not start: {}", line.trim()))),
        Err(_) => {
            let _ = child.kill();
            Err(LabError(format!("the listeners in {name} did not report ready within 5 s")))
        }
    }
}
