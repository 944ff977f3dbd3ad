//! pve-firewall's configuration files as the simulator keeps them: parsed on every read and
//! written back after every change by pve-firewall's own reading (`phoenix_core::pve_fw::conf`),
//! so that what a client reads is what pve-firewall's parser makes of the file, and the digests
//! the API hands out (`copy_list_with_digest`, `copy_opject_with_digest` in
//! pve-firewall `src/PVE/Firewall.pm`).
//! What it must not do: answer requests (that is `api`).

pub use phoenix_core::pve_fw::conf::*;
pub use phoenix_core::pve_fw::{addr, rule};
pub mod api;

use std::collections::BTreeMap;

/// `copy_list_with_digest`: SHA-1 over `key:value\n` of each entry's defined scalar keys,
/// sorted, entries in order.
pub fn list_digest<'e>(entries: impl IntoIterator<Item = &'e BTreeMap<String, String>>) -> String {
    let mut context = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
    for entry in entries {
        for (key, value) in entry {
            context.update(key.as_bytes());
            context.update(b":");
            context.update(value.as_bytes());
            context.update(b"\n");
        }
    }
    hex(context.finish().as_ref())
}

/// `copy_opject_with_digest` [sic]: the same over one object's keys.
pub fn object_digest(object: &BTreeMap<String, String>) -> String {
    list_digest([object])
}

/// SHA-1 of a whole file (guest `.conf` digests).
pub fn text_digest(text: &str) -> String {
    hex(ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, text.as_bytes()).as_ref())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_list_digests_to_sha1_of_nothing() {
        assert_eq!(list_digest(std::iter::empty()), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    }
}
