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
