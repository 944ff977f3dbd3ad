//! Guests as Proxmox VE keeps them: one `.conf` file per guest under the node
//! (`nodes/<node>/qemu-server/<vmid>.conf`, `nodes/<node>/lxc/<vmid>.conf`), `key: value`
//! lines written sorted after the description comments, then pending and snapshot sections
//! (kept as they are). NIC values are property strings: written through this module they are
//! parsed and printed in the canonical order, and one without a MAC gets a random one, as
//! qemu-server's `$update_vm_api` (`print_net(parse_net(...))`, Network.pm) and
//! pve-container's `parse_lxc_network` / `print_lxc_network` (LXC/Config.pm) do; no code there
//! keeps the previous MAC.

use super::jsonschema;
use super::jsonschema::propstr;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum GuestKind {
    Lxc,
    Qemu,
}

impl GuestKind {
    pub fn segment(self) -> &'static str {
        match self {
            GuestKind::Lxc => "lxc",
            GuestKind::Qemu => "qemu",
        }
    }

    /// The folder of the node's guest configs (`cfs_config_path`).
    pub fn folder(self) -> &'static str {
        match self {
            GuestKind::Lxc => "lxc",
            GuestKind::Qemu => "qemu-server",
        }
    }

    pub fn config_path(self, node: &str, vmid: u32) -> String {
        format!("nodes/{node}/{}/{vmid}.conf", self.folder())
    }

    /// `assert_if_modified`'s text differs between the two (qemu-server's own check).
    pub fn digest_mismatch(self) -> &'static str {
        match self {
            GuestKind::Lxc => "detected modified configuration - file changed by other user? Try again.",
            GuestKind::Qemu => "checksum mismatch (file change by other user?)",
        }
    }

    /// The MAC key of a NIC property string.
    fn mac_key(self) -> &'static str {
        match self {
            GuestKind::Lxc => "hwaddr",
            GuestKind::Qemu => "macaddr",
        }
    }
}

/// A guest's `.conf`: the main section's keys, its raw `lxc.*` lines (in order, repeats kept,
/// written after the keys as pve-container's `write_pct_config` does), and the rest of the file
/// as written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuestConf {
    pub description: Vec<String>,
    pub keys: BTreeMap<String, String>,
    pub raw: Vec<(String, String)>,
    /// Changes waiting for the next start (see `pending`): key and value, keys to delete.
    pub pending: BTreeMap<String, String>,
    pub pending_delete: Vec<String>,
    /// Its header as the guest's kind writes it (see [`pending_header`]).
    pub pending_header: &'static str,
    /// Snapshot sections, untouched.
    pub sections: String,
}

/// The pending section's header: qemu-server's `write_vm_config` writes `[PENDING]`,
/// pve-container's `write_pct_config` `[pve:pending]`.
pub fn pending_header(kind: GuestKind) -> &'static str {
    match kind {
        GuestKind::Lxc => "[pve:pending]",
        GuestKind::Qemu => "[PENDING]",
    }
}

impl GuestConf {
    pub fn parse(text: &str) -> GuestConf {
        let mut conf = GuestConf::default();
        let mut in_pending = false;
        for (index, line) in text.lines().enumerate() {
            if let Some(header) = [GuestKind::Lxc, GuestKind::Qemu].into_iter().map(pending_header).find(|h| *h == line) {
                conf.pending_header = header;
                in_pending = true;
                continue;
            }
            if line.starts_with('[') {
                // Snapshot sections follow the pending one (both writers print it first).
                conf.sections = text.lines().skip(index).map(|l| format!("{l}\n")).collect();
                break;
            }
            if in_pending {
                if let Some((key, value)) = line.split_once(':') {
                    let (key, value) = (key.trim(), value.trim());
                    match key {
                        "delete" => conf.pending_delete = value.split(',').filter(|k| !k.is_empty()).map(str::to_string).collect(),
                        _ => {
                            conf.pending.insert(key.to_string(), value.to_string());
                        }
                    }
                }
                continue;
            }
            if let Some(comment) = line.strip_prefix('#') {
                conf.description.push(comment.to_string());
            } else if let Some((key, value)) = line.split_once(':') {
                let (key, value) = (key.trim().to_string(), value.trim().to_string());
                if key.starts_with("lxc.") {
                    conf.raw.push((key, value));
                } else {
                    conf.keys.insert(key, value);
                }
            }
        }
        conf
    }

    pub fn to_text(&self) -> String {
        let mut out: String = self.description.iter().map(|d| format!("#{d}\n")).collect();
        for (key, value) in self.keys.iter().chain(self.raw.iter().map(|(k, v)| (k, v))) {
            out.push_str(&format!("{key}: {value}\n"));
        }
        if !self.pending.is_empty() || !self.pending_delete.is_empty() {
            out.push_str(&format!("\n{}\n", self.pending_header));
            if !self.pending_delete.is_empty() {
                out.push_str(&format!("delete: {}\n", self.pending_delete.join(",")));
            }
            for (key, value) in &self.pending {
                out.push_str(&format!("{key}: {value}\n"));
            }
        }
        if !self.sections.is_empty() {
            out.push('\n');
            out.push_str(&self.sections);
        }
        out
    }
}

/// Random MACs with Proxmox's prefix (`random_ether_addr` with datacenter.cfg's default
/// `mac_prefix` BC:24:11), from a seeded generator so runs are repeatable.
#[derive(Debug, Clone)]
pub struct MacSource(u64);

impl MacSource {
    pub fn new(seed: u64) -> MacSource {
        MacSource(seed | 1)
    }

    pub fn next_mac(&mut self) -> String {
        // xorshift64*: enough to make MACs differ, not a secret.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let bits = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        let [a, b, c, ..] = bits.to_be_bytes();
        format!("BC:24:11:{a:02X}:{b:02X}:{c:02X}")
    }
}

/// A NIC value written through the API, as it is stored: parsed with the schema's format,
/// a MAC generated when none is given, printed canonically. `format` is the `net[n]`
/// parameter's inline format from the schema.
pub fn normalise_nic(kind: GuestKind, format: &Map<String, Value>, key: &str, value: &str, macs: &mut MacSource) -> Result<String, String> {
    let mut gaps = Vec::new();
    let mut values = propstr::parse(format, value, key, &mut gaps).map_err(|m| format!("invalid format - {m}"))?;
    if !gaps.is_empty() {
        return Err(format!("phoenix-sim: {}", gaps.iter().map(|g| g.0.clone()).collect::<Vec<_>>().join("; ")));
    }
    if kind == GuestKind::Lxc {
        // parse_lxc_network always sets the type.
        values.insert("type".into(), "veth".into());
    }
    values.entry(kind.mac_key().to_string()).or_insert_with(|| macs.next_mac());
    Ok(propstr::print(format, &values))
}

/// A config as `GET .../config` returns it: every key, typed as the method's `returns` says,
/// and the file's digest.
pub fn config_json(conf: &GuestConf, digest: &str, returns: &Value) -> Value {
    let properties = returns.get("properties").and_then(Value::as_object);
    let mut object = Map::new();
    for (key, value) in &conf.keys {
        let schema = properties.and_then(|p| jsonschema::property(p, key));
        object.insert(key.clone(), super::typed(value, schema));
    }
    if !conf.description.is_empty() {
        object.insert("description".into(), Value::String(conf.description.join("\n")));
    }
    if !conf.raw.is_empty() {
        let pairs = conf.raw.iter().map(|(k, v)| Value::Array(vec![Value::String(k.clone()), Value::String(v.clone())])).collect();
        object.insert("lxc".into(), Value::Array(pairs));
    }
    object.insert("digest".into(), Value::String(digest.to_string()));
    Value::Object(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_files_round_trip_sorted() {
        let text = "#web server\nnet0: name=eth0,bridge=vmbr0\narch: amd64\n\n[snap1]\narch: amd64\n";
        let conf = GuestConf::parse(text);
        assert_eq!(conf.keys["net0"], "name=eth0,bridge=vmbr0");
        assert_eq!(conf.to_text(), "#web server\narch: amd64\nnet0: name=eth0,bridge=vmbr0\n\n[snap1]\narch: amd64\n");
    }

    #[test]
    fn macs_carry_proxmoxs_prefix_and_differ() {
        let mut macs = MacSource::new(7);
        let (a, b) = (macs.next_mac(), macs.next_mac());
        assert!(a.starts_with("BC:24:11:") && a.len() == 17);
        assert_ne!(a, b);
    }
}
