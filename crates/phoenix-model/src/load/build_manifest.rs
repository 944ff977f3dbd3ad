//! The certificate manifest, in each shape the original wrote: entries with `guest_id` and
//! `guest_type`, and the later ones without, whose guest is where `cert_path` lies. It reads;
//! judging (unknown guests, unsafe modes) is the validators' job.

use super::build_host::valid_dns_name;
use super::Ctx;
use crate::diag::Diagnostic;
use crate::json::{join, JsonDoc};
use crate::model::*;
use crate::raw::{self, StrOrNum};
use crate::schema::FileKind;
use crate::source::Span;
use std::net::IpAddr;

/// `dns_on_node`: phoenix's DNS is the node's dnsmasq, so dns-01 is the default challenge for
/// entries without an address (issue 18: Step-CA validates through phoenix's resolver).
pub fn build_manifest(model: &mut Model, doc: &JsonDoc, dns_on_node: bool, ctx: &mut Ctx<'_>) {
    let Some(raw::RawManifest(entries)) = ctx.decode::<raw::RawManifest>(doc, FileKind::Manifest, "") else {
        return;
    };
    for (i, entry) in entries.iter().enumerate() {
        let Some(entry) = entry else { continue };
        let pointer = join("", i);
        if let Some(cert) = certificate(model, doc, &pointer, entry, dns_on_node, ctx) {
            model.certificates.push(cert);
        }
    }
}

fn certificate(
    model: &Model,
    doc: &JsonDoc,
    pointer: &str,
    entry: &raw::RawCertificate,
    dns_on_node: bool,
    ctx: &mut Ctx<'_>,
) -> Option<Certificate> {
    let common_name = entry.common_name.clone()?;
    let span = |field: &str| doc.span(&join(pointer, field));
    let cn_span = span("common_name");
    let mut sans = Vec::new();
    for (j, text) in entry.sans.iter().enumerate() {
        let at = doc.span(&join(&join(pointer, "sans"), j));
        match san(text) {
            Some(san) => sans.push(Located::new(san, at)),
            None => ctx.push(Diagnostic::at("PHX-CERT-002", at, format!("SAN `{text}` is neither a DNS name nor an IP address"))),
        }
    }
    if san(&common_name).is_none() {
        ctx.push(Diagnostic::at("PHX-CERT-002", cn_span, format!("common name `{common_name}` is neither a DNS name nor an IP address")));
    }
    for (field, path) in [("cert_path", &entry.cert_path), ("key_path", &entry.key_path)] {
        if path.as_deref().is_some_and(|p| !p.starts_with('/')) {
            ctx.push(Diagnostic::at("PHX-CERT-002", span(field), format!("{field} must be an absolute path")));
        }
    }
    let written = entry.guest_id.as_ref().and_then(|g| {
        let id = g.to_string().trim().parse::<GuestId>().ok()?;
        Some(Located::new(id, span("guest_id")))
    });
    let on_host = entry.cert_path.as_deref().and_then(|p| host_folder_owner(model, p));
    let guest_kind = entry.guest_type.map(|t| match t {
        raw::RawGuestType::Lxc => GuestKind::Lxc,
        raw::RawGuestType::Vm => GuestKind::Vm,
    });
    let (guest, guest_kind, guest_from_path) = match (written, on_host) {
        (Some(guest), _) => (Some(guest), guest_kind, false),
        (None, Some((id, kind))) => (Some(Located::new(id, span("cert_path"))), Some(kind), true),
        (None, None) => (None, guest_kind, false),
    };
    Some(Certificate {
        name: entry.name.clone().unwrap_or_else(|| common_name.clone()),
        // Read as the SANs are (trimmed, lower case, no trailing dot), so the order, the checks
        // and the gateway's server names all see one spelling.
        common_name: Located::new(
            match san(&common_name) {
                Some(San::Dns(name)) => name,
                Some(San::Ip(ip)) => ip.to_string(),
                None => common_name.to_ascii_lowercase(),
            },
            cn_span,
        ),
        sans,
        guest,
        guest_kind,
        cert_path: entry.cert_path.clone(),
        key_path: entry.key_path.clone(),
        owner: entry.owner.clone(),
        permissions: entry.permissions.as_ref().and_then(|p| permissions(span("permissions"), p, ctx)),
        files_on_host: on_host.is_some(),
        guest_from_path,
        include_ca: entry.include_ca.unwrap_or(false),
        usage: match entry.cert_type {
            Some(raw::RawCertType::Client) => CertUsage::Client,
            Some(raw::RawCertType::Both) => CertUsage::Both,
            _ => CertUsage::Server,
        },
        post_renewal_command: entry.post_renewal_command.clone(),
        reload_service: entry.reload_service.clone(),
        challenge: match entry.challenge {
            Some(raw::RawChallenge::TlsAlpn01) => AcmeChallenge::TlsAlpn01,
            Some(raw::RawChallenge::Dns01) => AcmeChallenge::Dns01,
            Some(raw::RawChallenge::Http01) => AcmeChallenge::Http01,
            None if entry.http01_webroot.is_some() => AcmeChallenge::Http01,
            None => default_challenge(entry, dns_on_node),
        },
        http01_webroot: entry.http01_webroot.clone().map(|root| Located::new(root, span("http01_webroot"))),
        span: doc.span(pointer),
    })
}

/// The challenge of an entry that names none: dns-01 for a wildcard (the only proof of one,
/// RFC 8555 section 7.1.3) and, where phoenix's DNS is the node's dnsmasq, for every entry
/// without an address (an address has no name to hold a TXT record, RFC 8738); else http-01.
fn default_challenge(entry: &raw::RawCertificate, dns_on_node: bool) -> AcmeChallenge {
    let names = || entry.sans.iter().chain(&entry.common_name).map(|n| n.trim());
    if names().any(|n| n.starts_with("*.")) {
        return AcmeChallenge::Dns01;
    }
    let has_address = names().any(|n| matches!(san(n), Some(San::Ip(_))));
    if dns_on_node && !has_address {
        AcmeChallenge::Dns01
    } else {
        AcmeChallenge::Http01
    }
}

/// The guest whose folder on the node holds `path`: a container's bind-mount source, else the
/// original's persistent-data layout (`.../lxc-persistent-data/<ctid>/...`,
/// `.../vm-persistent-data/<vmid>/...`), where its certificate manager wrote the files on the
/// node for the guest to see through its mount.
pub fn host_folder_owner(model: &Model, path: &str) -> Option<(GuestId, GuestKind)> {
    let inside = |folder: &str| {
        let folder = folder.trim_end_matches('/');
        path.strip_prefix(folder).is_some_and(|rest| rest.starts_with('/'))
    };
    let bind = model.guests.values().find(|guest| {
        guest.spec.mounts.iter().any(|mount| matches!(&mount.source, crate::model::MountSource::Bind(host) if inside(&host.value)))
    });
    if let Some(guest) = bind {
        return Some((guest.id, guest.kind));
    }
    // The id must be a folder: the file itself comes after it.
    let (folder, file) = path.rsplit_once('/')?;
    if file.is_empty() {
        return None;
    }
    crate::paths::persistent_data_guest(folder)
}

/// `permissions` as chmod took it: an octal mode of three or four digits.
fn permissions(span: Span, value: &StrOrNum, ctx: &mut Ctx<'_>) -> Option<Located<u32>> {
    let text = value.to_string();
    let parsed = (3..=4).contains(&text.len()).then(|| u32::from_str_radix(&text, 8).ok()).flatten().filter(|m| *m <= 0o7777);
    if parsed.is_none() {
        ctx.push(
            Diagnostic::at("PHX-CERT-002", span, format!("permissions `{text}` is not an octal file mode"))
                .help("write the mode as chmod takes it, e.g. \"640\""),
        );
    }
    parsed.map(|mode| Located::new(mode, span))
}

fn san(text: &str) -> Option<San> {
    if let Ok(ip) = text.trim().parse::<IpAddr>() {
        return Some(San::Ip(ip));
    }
    let lower = text.trim().trim_end_matches('.').to_ascii_lowercase();
    valid_dns_name(&lower).then_some(San::Dns(lower))
}
