//! The commands the Proxmox target runs for guests, checked without a Proxmox node: a recording
//! runner answers like `pct exec` (the command's own exit status) and `qm guest exec` (the
//! guest agent's JSON with exitcode, out-data and err-data, as `qm guest exec` prints it).

use phoenix_core::deploy::{FileWrite, Place, PostAction};
use phoenix_drivers::host::{CommandOutput, CommandRunner, GuestAccess, HostTarget};
use phoenix_exec::DriverError;
use phoenix_model::model::GuestKind;
use std::cell::RefCell;

/// A command line and the standard input it was given.
type Call = (Vec<String>, Option<Vec<u8>>);

struct Recorder {
    calls: RefCell<Vec<Call>>,
    answer: CommandOutput,
}

impl CommandRunner for Recorder {
    fn run(&self, argv: &[String], stdin: Option<&[u8]>) -> Result<CommandOutput, DriverError> {
        self.calls.borrow_mut().push((argv.to_vec(), stdin.map(<[u8]>::to_vec)));
        Ok(self.answer.clone())
    }
}

fn target(code: i32, stdout: &str) -> HostTarget<Recorder> {
    let answer = CommandOutput { code: Some(code), stdout: stdout.as_bytes().to_vec(), stderr: Vec::new() };
    HostTarget::new(GuestAccess::Pve, Recorder { calls: RefCell::new(Vec::new()), answer })
}

fn in_guest(id: u32, kind: GuestKind, path: &str) -> Place {
    Place { guest: Some((id, kind)), path: path.into() }
}

#[test]
fn container_writes_go_through_a_staged_file_renamed_in_place() {
    let pve = target(0, "");
    let file = FileWrite {
        place: in_guest(101, GuestKind::Lxc, "/etc/nginx/ssl/web.key"),
        content: b"KEY".to_vec(),
        owner: Some("root:www-data".into()),
        mode: 0o640,
    };
    pve.write_now(&file).unwrap();
    let calls = pve.runner.calls.borrow();
    let (argv, stdin) = &calls[0];
    assert_eq!(&argv[..6], ["pct", "exec", "101", "--", "sh", "-c"]);
    let script = &argv[6];
    assert!(script.contains("umask 077") && script.contains(r#"mv -f -- "$2" "$1""#), "{script}");
    assert!(script.find("chown").unwrap() < script.find("mv -f").unwrap(), "owned before it is in place");
    assert_eq!(&argv[7..], ["sh", "/etc/nginx/ssl/web.key", "/etc/nginx/ssl/web.key.phoenix-new", "root:www-data", "640"]);
    assert_eq!(stdin.as_deref(), Some(&b"KEY"[..]));
}

#[test]
fn absent_files_read_as_none_and_failures_are_errors() {
    assert_eq!(target(3, "").read_now(&in_guest(101, GuestKind::Lxc, "/x")).unwrap(), None);
    assert_eq!(target(0, "text").read_now(&in_guest(101, GuestKind::Lxc, "/x")).unwrap(), Some(b"text".to_vec()));
    let error = target(255, "").read_now(&in_guest(101, GuestKind::Lxc, "/x")).unwrap_err();
    assert!(error.message.contains("exit status 255"), "{error}");
}

#[test]
fn vm_commands_use_the_guest_agent_and_its_exit_code() {
    let ok = target(0, r#"{"exitcode":0,"exited":1,"out-data":"PEM"}"#);
    assert_eq!(
        ok.read_now(&in_guest(1001, GuestKind::Vm, "/persistent-storage/portainer/certs/portainer.crt")).unwrap(),
        Some(b"PEM".to_vec())
    );
    // `--timeout 0`: qm waits however long the command takes (its default, 30 s, returns while it runs).
    assert_eq!(&ok.runner.calls.borrow()[0].0[..8], ["qm", "guest", "exec", "1001", "--timeout", "0", "--", "sh"]);

    let refused = target(0, r#"{"exitcode":1,"exited":1,"err-data":"mv: cannot move: Permission denied\n"}"#);
    let file = FileWrite { place: in_guest(1001, GuestKind::Vm, "/etc/x.crt"), content: b"C".to_vec(), owner: None, mode: 0o644 };
    let error = refused.write_now(&file).unwrap_err();
    assert!(error.message.contains("Permission denied"), "{error}");
    let calls = refused.runner.calls.borrow();
    assert_eq!(&calls[0].0[..8], ["qm", "guest", "exec", "1001", "--timeout", "0", "--pass-stdin", "1"], "the content goes through stdin");
    assert!(calls[0].0.contains(&"root:root".to_string()), "no owner given: root");
}

#[test]
fn a_vm_is_not_sent_more_than_its_agent_takes_and_an_unfinished_command_is_an_error() {
    // The agent's exec input: maxLength 65536 in PVE 9.1.3's schema (agent/exec `input-data`).
    let vm = target(0, r#"{"exitcode":0,"exited":1}"#);
    let big = FileWrite { place: in_guest(1001, GuestKind::Vm, "/usr/local/bin/x"), content: vec![0; 65537], owner: None, mode: 0o755 };
    let error = vm.write_now(&big).unwrap_err();
    assert!(error.message.contains("65537 bytes cannot reach a VM") && error.hint.is_some(), "{error}");
    assert!(vm.runner.calls.borrow().is_empty(), "nothing is sent");
    let fits = FileWrite { content: vec![0; 65536], ..big };
    vm.write_now(&fits).unwrap();
    // qm returned with a pid only: the command has not ended.
    let unfinished = target(0, r#"{"pid":4242}"#);
    let error = unfinished.read_now(&in_guest(1001, GuestKind::Vm, "/etc/x")).unwrap_err();
    assert!(error.message.contains("returned before the command ended"), "{error}");
}

#[test]
fn reloads_and_trust_updates_run_in_the_guest() {
    let pve = target(0, "");
    pve.run_now(&PostAction::Reload { guest: 102, guest_kind: GuestKind::Lxc, service: "traefik".into() }).unwrap();
    pve.run_now(&PostAction::UpdateTrust { guest: Some((101, GuestKind::Lxc)) }).unwrap();
    let calls = pve.runner.calls.borrow();
    assert_eq!(calls[0].0, ["pct", "exec", "102", "--", "sh", "-c", r#"systemctl try-reload-or-restart -- "$1""#, "sh", "traefik"]);
    assert_eq!(calls[1].0, ["pct", "exec", "101", "--", "sh", "-c", "update-ca-certificates", "sh"]);
    let failing = target(1, "");
    let error = failing.run_now(&PostAction::Shell { command: "pct exec 101 -- systemctl reload nginx".into() }).unwrap_err();
    assert!(error.message.contains("exit status 1"), "{error}");
}

#[test]
fn a_remote_node_is_reached_through_its_runner() {
    use phoenix_drivers::host::SshRunner;
    // A stand-in for ssh that runs the remote command line locally, as sshd would.
    let dir = std::env::temp_dir().join(format!("phoenix-remote-node-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fake = dir.join("ssh");
    std::fs::write(&fake, "#!/bin/sh\nfor last; do :; done\nexec sh -c \"$last\"\n").unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut node =
        HostTarget::new(GuestAccess::Pve, SshRunner { destination: "root@pve".into(), program: fake.to_string_lossy().into_owned() });
    node.remote_host = true;
    let path = dir.join("etc/dnsmasq.d/phoenix.conf").to_string_lossy().into_owned();
    let place = Place::host(path.clone());
    assert_eq!(node.read_now(&place).unwrap(), None);
    let file = FileWrite { place: place.clone(), content: b"local=/lab/\n".to_vec(), owner: None, mode: 0o640 };
    node.write_now(&file).unwrap();
    assert_eq!(node.read_now(&place).unwrap(), Some(b"local=/lab/\n".to_vec()));
    assert_eq!(std::fs::metadata(&path).map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777).unwrap(), 0o640);
    node.run_now(&PostAction::Command { guest: None, command: format!("test -s {path}") }).unwrap();
    node.remove_now(&place).unwrap();
    assert!(!std::path::Path::new(&path).exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_guest_file_s_mode_and_owner_come_from_stat_in_the_guest() {
    use phoenix_core::deploy::FileMeta;
    let place = in_guest(101, GuestKind::Lxc, "/etc/nginx/ssl/gateway.key");
    assert_eq!(target(0, "640 root:www-data\n").stat_now(&place).unwrap(), Some(FileMeta { mode: 0o640, owner: "root:www-data".into() }));
    assert_eq!(target(3, "").stat_now(&place).unwrap(), None, "exit 3: the file is absent");
    assert!(target(0, "garbage").stat_now(&place).is_err());
}

/// Issue 13: a rehearsal (`sync --root`, `certs --guests-root`) writes below its folder only:
/// a link planted in a guest's folder is refused, and nothing lands where it points.
#[test]
fn a_rehearsal_does_not_write_through_a_planted_link() {
    use phoenix_drivers::host::SystemRunner;
    let dir = std::env::temp_dir().join(format!("phoenix-rehearsal-link-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (root, outside) = (dir.join("root"), dir.join("outside"));
    std::fs::create_dir_all(root.join("guest-101")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("guest-101/etc")).unwrap();
    let mut target = HostTarget::new(GuestAccess::Folders(root.clone()), SystemRunner);
    target.host_root = Some(root.join("host"));
    let file = FileWrite {
        place: in_guest(101, GuestKind::Lxc, "/etc/nginx/ssl/gateway.key"),
        content: b"KEY".to_vec(),
        owner: None,
        mode: 0o600,
    };
    let error = target.write_now(&file).unwrap_err();
    assert!(error.message.contains("is a symbolic link"), "{error}");
    let escape = FileWrite { place: Place::host("/../../outside/x"), ..file };
    assert!(target.write_now(&escape).unwrap_err().message.contains("climbs out"));
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Issue 20: a guest declared on another node of the cluster (the example's 1002 on pve2) is
/// reached through that node: its `qm guest exec` runs over ssh to pve2's management address,
/// batch mode and host key checked; a guest of the first node stays local.
#[test]
fn a_guest_on_another_node_is_reached_through_that_node() {
    let model = phoenix_model::check(&phoenix_testkit::example_config(), &phoenix_testkit::example_source()).model.unwrap();
    let pve = target(0, r#"{"exitcode":0,"exited":1,"out-data":"x"}"#).with_cluster(&model);
    assert_eq!(pve.guest_nodes.get(&1002).map(String::as_str), Some("root@10.0.0.14"));
    pve.read_now(&in_guest(1002, GuestKind::Vm, "/etc/hostname")).unwrap();
    pve.read_now(&in_guest(101, GuestKind::Lxc, "/etc/hostname")).unwrap();
    let calls = pve.runner.calls.borrow();
    let remote = &calls[0].0;
    assert_eq!(&remote[..7], ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "root@10.0.0.14", "--"]);
    assert!(remote[7].starts_with("'qm' 'guest' 'exec' '1002'"), "{}", remote[7]);
    assert_eq!(&calls[1].0[..3], ["pct", "exec", "101"], "the first node's guest is local");
}
