//! Running programs on the machine phoenix runs on (`pct`, `qm`, `sh -c`), behind a trait so
//! the commands phoenix builds can be checked without a Proxmox node.

use phoenix_exec::DriverError;
use std::io::Write;
use std::process::{Command, Stdio};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandOutput {
    /// The exit code; `None` when a signal ended the program.
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl CommandOutput {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// The first line of stderr, or the exit status, for an error message.
    pub fn summary(&self) -> String {
        let stderr = String::from_utf8_lossy(&self.stderr);
        match (stderr.lines().find(|l| !l.trim().is_empty()), self.code) {
            (Some(line), _) => line.trim().to_string(),
            (None, Some(code)) => format!("exit status {code}"),
            (None, None) => "ended by a signal".to_string(),
        }
    }
}

pub trait CommandRunner {
    /// Runs `argv` (no shell) with `stdin` as its standard input.
    fn run(&self, argv: &[String], stdin: Option<&[u8]>) -> Result<CommandOutput, DriverError>;
}

/// Runs programs for real.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemRunner;

impl CommandRunner for SystemRunner {
    fn run(&self, argv: &[String], stdin: Option<&[u8]>) -> Result<CommandOutput, DriverError> {
        let (program, args) = argv.split_first().ok_or_else(|| DriverError::new("empty command"))?;
        let mut child = Command::new(program)
            .args(args)
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| DriverError::new(format!("cannot run {program}: {e}")))?;
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(input).map_err(|e| DriverError::new(format!("cannot write to {program}: {e}")))?;
        }
        let output = child.wait_with_output().map_err(|e| DriverError::new(format!("{program}: {e}")))?;
        Ok(CommandOutput { code: output.status.code(), stdout: output.stdout, stderr: output.stderr })
    }
}

/// Runs programs on another machine (the Proxmox node) through `ssh`, non-interactively and
/// with the host key checked against known_hosts. The command line is quoted for the remote
/// shell, so arguments arrive as they were given.
#[derive(Debug, Clone)]
pub struct SshRunner {
    /// `user@host`.
    pub destination: String,
    /// The ssh program (tests put a stand-in here).
    pub program: String,
}

impl SshRunner {
    pub fn new(destination: impl Into<String>) -> SshRunner {
        SshRunner { destination: destination.into(), program: "ssh".into() }
    }

    /// The remote command line: each argument in single quotes.
    pub fn remote_command(argv: &[String]) -> String {
        argv.iter().map(|a| format!("'{}'", a.replace('\'', r"'\''"))).collect::<Vec<_>>().join(" ")
    }
}

impl SshRunner {
    /// The local command line that runs `argv` on the node: non-interactive, host key checked.
    pub fn command_line(&self, argv: &[String]) -> Vec<String> {
        let options = ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"].map(String::from);
        [self.program.clone()]
            .into_iter()
            .chain(options)
            .chain([self.destination.clone(), "--".into(), Self::remote_command(argv)])
            .collect()
    }

    /// A stand-in for ssh in `dir` that hands the remote command line to a local shell, as
    /// sshd does (for tests).
    #[cfg(test)]
    pub(crate) fn stand_in(dir: &std::path::Path) -> SshRunner {
        std::fs::create_dir_all(dir).unwrap();
        let fake = dir.join("ssh");
        std::fs::write(&fake, "#!/bin/sh\nfor last; do :; done\nexec sh -c \"$last\"\n").unwrap();
        std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        SshRunner { destination: "root@pve".into(), program: fake.to_string_lossy().into_owned() }
    }
}

impl CommandRunner for SshRunner {
    fn run(&self, argv: &[String], stdin: Option<&[u8]>) -> Result<CommandOutput, DriverError> {
        SystemRunner.run(&self.command_line(argv), stdin)
    }
}

/// This machine, or the node over SSH: chosen at run time.
#[derive(Debug, Clone)]
pub enum NodeRunner {
    Local(SystemRunner),
    Ssh(SshRunner),
}

impl CommandRunner for NodeRunner {
    fn run(&self, argv: &[String], stdin: Option<&[u8]>) -> Result<CommandOutput, DriverError> {
        match self {
            NodeRunner::Local(runner) => runner.run(argv, stdin),
            NodeRunner::Ssh(runner) => runner.run(argv, stdin),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_arguments_survive_the_remote_shell() {
        let argv: Vec<String> =
            ["sh", "-c", r#"printf '%s|' "$@""#, "sh", "a b", "it's", "$HOME", ""].iter().map(|s| s.to_string()).collect();
        let dir = std::env::temp_dir().join(format!("phoenix-ssh-{}", std::process::id()));
        let runner = SshRunner::stand_in(&dir);
        let output = runner.run(&argv, None).unwrap();
        assert!(output.success(), "{}", output.summary());
        assert_eq!(String::from_utf8(output.stdout).unwrap(), "a b|it's|$HOME||");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
