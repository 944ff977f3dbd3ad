//! How a command ends: what it found ([`Outcome`]) or why it stopped ([`Failure`], with its
//! causes and a hint), and the one table that turns either into phoenix's exit status.
//! Every command returns `Result<Outcome, Failure>`; nothing else in the CLI picks a number.

use std::error::Error;
use std::fmt::Write;

/// What a command that ran to the end found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything checked is as it should be, or the work is done.
    Ok,
    /// The thing checked is wrong: configuration errors, a failed hop, a failed or skipped
    /// step, a certificate that needs renewal. What was found has been printed.
    Wrong,
    /// `render --diff`: the deployed files differ from the rendered ones.
    Differs,
}

/// Why a command stopped before its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The thing checked is wrong, and that is why phoenix cannot go on (a configuration with
    /// errors given to sync, a failed write of the trust root).
    Wrong,
    /// phoenix could not do its job: bad arguments, an unknown code or file, a folder that is
    /// not there, a system it cannot reach, an output it cannot write.
    CouldNotRun,
}

/// The exit status for every way a command can end (see the README's table).
pub fn status(result: &Result<Outcome, Failure>) -> u8 {
    match result {
        Ok(Outcome::Ok) => 0,
        Ok(Outcome::Wrong) | Err(Failure { kind: Kind::Wrong, .. }) => 1,
        Err(Failure { kind: Kind::CouldNotRun, .. }) => 2,
        Ok(Outcome::Differs) => 3,
    }
}

/// A command's stop: what failed, why (the source chain), and what to do about it.
#[derive(Debug)]
pub struct Failure {
    pub kind: Kind,
    pub message: String,
    pub source: Option<Box<dyn Error + Send + Sync>>,
    pub hint: Option<String>,
    /// Already printed (diagnostics, a report): the message only sums it up.
    pub detail: Option<String>,
}

impl Failure {
    pub fn could_not_run(message: impl Into<String>) -> Failure {
        Failure { kind: Kind::CouldNotRun, message: message.into(), source: None, hint: None, detail: None }
    }

    pub fn wrong(message: impl Into<String>) -> Failure {
        Failure { kind: Kind::Wrong, message: message.into(), source: None, hint: None, detail: None }
    }

    pub fn because(mut self, source: impl Into<Box<dyn Error + Send + Sync>>) -> Failure {
        self.source = Some(source.into());
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Failure {
        self.hint = Some(hint.into());
        self
    }

    /// Text to print before the message (diagnostics that explain it).
    pub fn detail(mut self, detail: impl Into<String>) -> Failure {
        self.detail = Some(detail.into());
        self
    }

    /// The message, each cause on a `caused by:` line (a cause's own hint, when it has one,
    /// is kept), and the hint last.
    pub fn report(&self) -> String {
        let mut out = self.detail.clone().unwrap_or_default();
        let _ = writeln!(out, "phoenix: {}", self.message);
        let mut cause: Option<&(dyn Error + 'static)> = self.source.as_deref().map(|e| e as &(dyn Error + 'static));
        let mut hint = self.hint.clone();
        while let Some(error) = cause {
            let _ = writeln!(out, "  caused by: {error}");
            if let Some(driver) = error.downcast_ref::<phoenix_exec::DriverError>() {
                hint = hint.or_else(|| driver.hint.clone());
            }
            cause = error.source();
        }
        if let Some(hint) = &hint {
            let _ = writeln!(out, "  hint: {hint}");
        }
        out
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl Error for Failure {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl Error for Layer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            self.1.as_deref().map(|e| e as &(dyn Error + 'static))
        }
    }

    #[test]
    fn the_chain_is_printed_cause_by_cause_with_the_hint_last() {
        let tls = Layer("invalid peer certificate: UnknownIssuer", None);
        let connect = Layer("GET https://10.0.0.13:8006/api2/json/version: cannot connect", Some(Box::new(tls)));
        let failure = Failure::could_not_run("cannot observe the system")
            .because(connect)
            .hint("give the CA that signed the node's certificate with --pve-ca FILE");
        insta::assert_snapshot!(failure.report());
    }

    #[test]
    fn the_table_gives_each_kind_its_status() {
        assert_eq!(
            [
                status(&Ok(Outcome::Ok)),
                status(&Ok(Outcome::Wrong)),
                status(&Err(Failure::wrong("x"))),
                status(&Err(Failure::could_not_run("x"))),
                status(&Ok(Outcome::Differs)),
            ],
            [0, 1, 1, 2, 3]
        );
    }
}
