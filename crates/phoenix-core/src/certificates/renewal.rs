//! What `phoenix certs renew` decides and writes, without doing it: which certificates are due,
//! the ACME order for each, the files an issued certificate becomes (phoenix's store and the
//! guest's paths, with owner and mode), the actions after installation, and the check an issued
//! certificate must pass before anything is installed. Pure: the store's contents and the
//! clock come in; phoenix-exec carries the plan out.

use super::status::{status, Reason};
use crate::pki::CertStore;
use crate::render::traefik::DYNAMIC_PATH;
use phoenix_model::model::{AcmeChallenge, CertUsage, Certificate, GuestId, GuestKind, Model, San};
use phoenix_model::paths::STORE_ROOT_FILE;
use phoenix_model::paths::TRUSTED_ROOT_PATH;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use serde::Serialize;

use crate::deploy::{FileWrite, Place, PostAction, CERT_MODE, KEY_MODE, STORE_KEY_MODE};

/// What phoenix asks the ACME server for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderRequest {
    pub name: String,
    pub common_name: String,
    /// The common name first, then the other SANs, without repeats.
    pub identifiers: Vec<String>,
    pub usage: CertUsage,
    pub challenge: AcmeChallenge,
    /// http-01 through the guest's own web server: the folder it serves at `/`, where the
    /// tokens are written (`<webroot>/.well-known/acme-challenge/<token>`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webroot: Option<crate::deploy::Place>,
}

impl OrderRequest {
    /// The identifiers as SANs (IP addresses and DNS names).
    pub fn sans(&self) -> Vec<San> {
        self.identifiers.iter().map(|text| text.parse().map(San::Ip).unwrap_or_else(|_| San::Dns(text.clone()))).collect()
    }
}

pub fn order_for(cert: &Certificate) -> OrderRequest {
    let mut identifiers = vec![cert.common_name.value.clone()];
    for san in &cert.sans {
        let text = match &san.value {
            San::Dns(name) => name.clone(),
            San::Ip(ip) => ip.to_string(),
        };
        if !identifiers.contains(&text) {
            identifiers.push(text);
        }
    }
    OrderRequest {
        name: cert.name.clone(),
        common_name: cert.common_name.value.clone(),
        identifiers,
        usage: cert.usage,
        challenge: cert.challenge,
        webroot: cert.http01_webroot.as_ref().zip(cert.guest.as_ref()).map(|(root, guest)| crate::deploy::Place {
            guest: Some((guest.value, cert.guest_kind.unwrap_or(GuestKind::Lxc))),
            path: root.value.trim_end_matches('/').to_string(),
        }),
    }
}

/// Whether a certificate is renewed in this run, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "kebab-case")]
pub enum Due {
    /// The status gives reasons.
    Renew { reasons: Vec<Reason> },
    /// `--force`, whatever the status says.
    Forced { reasons: Vec<Reason> },
    /// Nothing to do before `renew_at` (seconds since the epoch).
    UpToDate { renew_at: i64 },
}

impl Due {
    pub fn renews(&self) -> bool {
        !matches!(self, Due::UpToDate { .. })
    }
}

pub fn due(cert: &Certificate, store: &CertStore, now: u64, force: bool) -> Due {
    let current = status(cert, store, now);
    match (force, current.reasons.is_empty(), current.renew_at) {
        (true, _, _) => Due::Forced { reasons: current.reasons },
        (false, true, Some(renew_at)) => Due::UpToDate { renew_at },
        (false, _, _) => Due::Renew { reasons: current.reasons },
    }
}

/// The store's file names for a certificate.
pub fn store_cert_file(name: &str) -> String {
    format!("{name}.crt")
}

pub fn store_key_file(name: &str) -> String {
    format!("{name}.key")
}

fn join(dir: &str, file: &str) -> String {
    format!("{}/{file}", dir.trim_end_matches('/'))
}

/// The store's place for each file a status needs, by file name: `<name>.crt`, `<name>.key` and the root.
pub fn store_places(cert: &Certificate, store_dir: &str) -> Vec<(String, Place)> {
    [store_cert_file(&cert.name), store_key_file(&cert.name), STORE_ROOT_FILE.to_string()]
        .into_iter()
        .map(|file| (file.clone(), Place::host(join(store_dir, &file))))
        .collect()
}

/// What an issued certificate puts into one of its files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Content {
    /// The leaf, then the intermediates.
    Chain,
    /// The leaf alone.
    Leaf,
    Key,
}

/// A file a renewal will write: where, with which owner and mode, holding what. Known before
/// the certificate is issued, so the plan shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedFile {
    pub place: Place,
    /// `user:group`; `None` keeps the writer's.
    pub owner: Option<String>,
    pub mode: u32,
    pub content: Content,
}

/// The files a renewal of `cert` writes. phoenix's store keeps the whole chain (so status can
/// verify it to the root); the guest gets the chain when `include_ca` is set, the leaf otherwise.
pub fn planned_files(cert: &Certificate, store_dir: &str) -> Vec<PlannedFile> {
    let store = |file: String, mode, content| PlannedFile { place: Place::host(join(store_dir, &file)), owner: None, mode, content };
    let mut files = vec![
        store(store_cert_file(&cert.name), CERT_MODE, Content::Chain),
        store(store_key_file(&cert.name), STORE_KEY_MODE, Content::Key),
    ];
    files.extend(installed_files(cert));
    files
}

/// The copies a certificate's service uses (`cert_path`, `key_path`), where they go, owned
/// and moded as the manifest says (`permissions` for both files, as the original did).
pub fn installed_files(cert: &Certificate) -> Vec<PlannedFile> {
    // The original's shape names folders on the node that the guest mounts: write them there.
    let guest = match cert.files_on_host {
        true => None,
        false => cert.guest.as_ref().map(|g| (g.value, cert.guest_kind.unwrap_or(GuestKind::Lxc))),
    };
    let installed = if cert.include_ca { Content::Chain } else { Content::Leaf };
    let given = cert.permissions.as_ref().map(|p| p.value);
    [(&cert.cert_path, CERT_MODE, installed), (&cert.key_path, KEY_MODE, Content::Key)]
        .into_iter()
        .filter_map(|(path, mode, content)| {
            let mode = given.unwrap_or(mode);
            Some(PlannedFile { place: Place { guest, path: path.clone()? }, owner: cert.owner.clone(), mode, content })
        })
        .collect()
}

/// The planned files with the issued certificate's content.
pub fn fill(planned: &[PlannedFile], chain_pem: &str, key_pem: &str) -> Vec<FileWrite> {
    planned
        .iter()
        .map(|file| FileWrite {
            place: file.place.clone(),
            content: match file.content {
                Content::Chain => chain_pem.as_bytes().to_vec(),
                Content::Leaf => leaf_only(chain_pem).into_bytes(),
                Content::Key => key_pem.as_bytes().to_vec(),
            },
            owner: file.owner.clone(),
            mode: file.mode,
        })
        .collect()
}

/// The files an issued certificate becomes (see [`planned_files`]).
pub fn files_for(cert: &Certificate, store_dir: &str, chain_pem: &str, key_pem: &str) -> Vec<FileWrite> {
    fill(&planned_files(cert, store_dir), chain_pem, key_pem)
}

/// One certificate's renewal, decided before anything is ordered: the ACME order, the files it
/// becomes and the actions after them. The plan shows it; the applier carries out exactly it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RenewalPlan {
    pub name: String,
    pub order: OrderRequest,
    pub files: Vec<PlannedFile>,
    pub actions: Vec<PostAction>,
}

pub fn renewal_plan(model: &Model, cert: &Certificate, store_dir: &str) -> RenewalPlan {
    RenewalPlan {
        name: cert.name.clone(),
        order: order_for(cert),
        files: planned_files(cert, store_dir),
        actions: post_actions(model, cert),
    }
}

impl RenewalPlan {
    /// For people: the order, each file with its owner and mode, then the actions.
    pub fn to_text(&self) -> String {
        let mut out = format!("order {} ({:?}, {:?})\n", self.order.identifiers.join(", "), self.order.usage, self.order.challenge);
        for file in &self.files {
            let owner = crate::deploy::owner_text(&file.place, file.owner.as_deref());
            out.push_str(&format!("install {} ({:?}, {owner}, {:04o})\n", file.place, file.content, file.mode));
        }
        for action in &self.actions {
            out.push_str(&format!("then {action}\n"));
        }
        out
    }
}

/// The first PEM block of a chain (ACME returns the leaf first, RFC 8555 section 7.4.2).
fn leaf_only(chain_pem: &str) -> String {
    const END: &str = "-----END CERTIFICATE-----";
    match chain_pem.find(END) {
        Some(at) => format!("{}\n", &chain_pem[..at + END.len()]),
        None => chain_pem.to_string(),
    }
}

/// The actions after installing `cert`: `reload_service` when given (the structured form
/// replaces the shell string), otherwise `post_renewal_command`; plus touching Traefik's
/// dynamic file when the certificate lives in the Traefik guest.
pub fn post_actions(model: &Model, cert: &Certificate) -> Vec<PostAction> {
    let guest = cert.guest.as_ref().map(|g| g.value);
    let kind = cert.guest_kind.unwrap_or(GuestKind::Lxc);
    let mut actions = Vec::new();
    if let (Some(guest), true) = (guest, guest.is_some() && guest == model.edge.traefik) {
        actions.push(PostAction::Touch { place: Place { guest: Some((guest, kind)), path: DYNAMIC_PATH.to_string() } });
    }
    match (&cert.reload_service, &cert.post_renewal_command, guest) {
        (Some(service), _, Some(guest)) => actions.push(PostAction::Reload { guest, guest_kind: kind, service: service.clone() }),
        (_, Some(command), _) => actions.push(PostAction::Shell { command: command.clone() }),
        _ => {}
    }
    actions
}

/// Checks an issued certificate against the manifest and the store's root before anything is
/// installed: names, key, chain to the root, usage. Expiry is the issuer's business (and
/// `--now` may be in the future for a rehearsal), so it is not judged here.
pub fn verify_issued(cert: &Certificate, chain_pem: &str, key_pem: &str, root_pem: &str, now: u64) -> Result<(), Vec<Reason>> {
    let mut store = CertStore::default();
    store.files.insert(store_cert_file(&cert.name), chain_pem.to_string());
    store.files.insert(store_key_file(&cert.name), key_pem.to_string());
    store.files.insert(STORE_ROOT_FILE.to_string(), root_pem.to_string());
    let mut checked = status(cert, &store, now);
    checked.reasons.retain(|r| *r != Reason::ExpiresSoon);
    if CertificateDer::pem_slice_iter(chain_pem.as_bytes()).next().is_none() {
        checked.reasons.push(Reason::Missing);
    }
    if checked.reasons.is_empty() {
        Ok(())
    } else {
        Err(checked.reasons)
    }
}

/// Checks that `pem` holds a CA certificate and returns its subject.
pub fn check_root(pem: &str) -> Result<String, String> {
    use x509_parser::prelude::*;
    let der = CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .ok_or("no PEM certificate in the file")?
        .map_err(|e| format!("bad PEM: {e:?}"))?;
    let (_, parsed) = X509Certificate::from_der(der.as_ref()).map_err(|e| format!("not an X.509 certificate: {e}"))?;
    if !parsed.is_ca() {
        return Err(format!("{} is not a CA certificate", parsed.subject()));
    }
    Ok(parsed.subject().to_string())
}

/// Where the CA root goes so that phoenix, the host and the edge guests trust it: the store's
/// `root_ca.crt`, the host's trust folder (`host_trust_file`), and the gateway's and Traefik's
/// [`TRUSTED_ROOT_PATH`], which their rendered configurations name for verifying upstreams; then the
/// trust stores are rebuilt.
pub fn trust_plan(model: &Model, root_pem: &str, store_dir: &str, host_trust_file: &str) -> (Vec<FileWrite>, Vec<PostAction>) {
    let file = |place: Place| FileWrite { place, content: root_pem.as_bytes().to_vec(), owner: None, mode: CERT_MODE };
    let mut files = vec![file(Place::host(join(store_dir, STORE_ROOT_FILE))), file(Place::host(host_trust_file))];
    let mut actions = vec![PostAction::UpdateTrust { guest: None }];
    let mut edge: Vec<GuestId> = [model.edge.gateway, model.edge.traefik].into_iter().flatten().collect();
    edge.dedup();
    for id in edge {
        let Some(guest) = model.guests.get(&id) else { continue };
        let place = Place { guest: Some((id, guest.kind)), path: TRUSTED_ROOT_PATH.to_string() };
        files.push(file(place));
        actions.push(PostAction::UpdateTrust { guest: Some((id, guest.kind)) });
    }
    (files, actions)
}
