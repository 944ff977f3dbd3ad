//! A VM's `volumes`: the entries of type `nfs` become [`NfsVolume`]s (mounted inside the VM by
//! phoenix's provisioning); a malformed one is reported (PHX-VOL-001) and left out, one of
//! another type is reported (PHX-VOL-002) and left to the guest. Only reads and reports.

use super::Ctx;
use crate::diag::Diagnostic;
use crate::json::{join, JsonDoc};
use crate::model::{Located, NfsVolume};
use serde_json::Value;

/// The NFS volumes of the `volumes` list at `pointer`.
pub fn nfs_volumes(doc: &JsonDoc, pointer: &str, volumes: &[Value], ctx: &mut Ctx<'_>) -> Vec<NfsVolume> {
    volumes.iter().enumerate().filter_map(|(i, raw)| volume(doc, &join(pointer, i), raw, ctx)).collect()
}

fn volume(doc: &JsonDoc, pointer: &str, raw: &Value, ctx: &mut Ctx<'_>) -> Option<NfsVolume> {
    let span = doc.span(pointer);
    let text = |key: &str| raw.get(key).and_then(Value::as_str).map(|v| Located::new(v.to_string(), doc.span(&join(pointer, key))));
    match raw.get("type").and_then(Value::as_str) {
        Some("nfs") => {}
        other => {
            let what = other.map_or("no type".to_string(), |t| format!("type `{t}`"));
            ctx.push(
                Diagnostic::at("PHX-VOL-002", span, format!("this volume has {what}: phoenix mounts NFS volumes only"))
                    .help("mount it from the guest's application script, or remove it"),
            );
            return None;
        }
    }
    let server = text("server").filter(|s| s.value.parse::<std::net::Ipv4Addr>().is_ok() || crate::pve::names::dns_name(&s.value));
    let path = text("path").filter(|p| absolute_path(&p.value));
    let mount_point = text("mount_point").filter(|p| absolute_path(&p.value) && p.value != "/");
    match (server, path, mount_point) {
        (Some(server), Some(path), Some(mount_point)) => {
            let name = raw.get("name").and_then(Value::as_str).unwrap_or(&mount_point.value).to_string();
            Some(NfsVolume { name, server, path, mount_point })
        }
        _ => {
            ctx.push(
                Diagnostic::at("PHX-VOL-001", span, "an nfs volume needs a server, an absolute path and an absolute mount_point")
                    .help(r#"write {"type": "nfs", "server": "10.0.0.13", "path": "/export/1001", "mount_point": "/persistent-storage"}"#),
            );
            None
        }
    }
}

/// An absolute path of letters, digits and `/._-`, without empty, `.` or `..` parts: safe in a
/// mount unit, and already what systemd simplifies a path to before naming its unit (it would
/// name `/a//b` and `/a/./b` `a-b.mount`, refusing a unit named otherwise).
fn absolute_path(text: &str) -> bool {
    let inner = text.strip_prefix('/').map(|t| t.strip_suffix('/').unwrap_or(t));
    text.chars().all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c))
        && inner.is_some_and(|inner| inner.is_empty() || inner.split('/').all(|part| !part.is_empty() && part != "." && part != ".."))
}
