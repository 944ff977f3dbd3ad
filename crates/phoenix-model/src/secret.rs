//! A secret value (an API token, a password, an API key) as a type that never prints: its
//! `Debug` and `Display` show no part of it, so a setting that holds one can be logged,
//! debug-printed or put in an error without leaking it. The value is read only through
//! [`Secret::expose`], at the one place it is sent.

/// A secret value; see the module documentation.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value itself, for the header or body it is sent in.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<not shown>)")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        Ok(())
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Secret {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Secret {
        Secret(value.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::Secret;

    #[test]
    fn neither_debug_nor_display_shows_the_value() {
        let secret = Secret::new("root@pam!phoenix=0d6f3c1e");
        let shown = format!("{secret} {secret:?} {:?}", Some(&secret));
        assert!(!shown.contains("0d6f") && !shown.contains("root@pam"), "{shown}");
        assert_eq!(secret.expose(), "root@pam!phoenix=0d6f3c1e");
    }
}
