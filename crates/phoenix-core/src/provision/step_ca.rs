//! The `step_ca` feature: Step-CA in its guest, laid out as `step ca init` lays it out under
//! STEPPATH=/etc/step-ca. The PKI is made in the guest (its keys never leave it): a root and an
//! intermediate, named as `step_ca.root_ca_name` and `intermediate_ca_name` say, by openssl,
//! once (guarded by the files, never by a marker); the root's certificate is then exported to
//! phoenix's store by sync (`plan::features`). phoenix writes `ca.json` (the ACME provisioner,
//! the certificate lifetimes), installs the binary from `software.step_ca` (SHA-256 checked)
//! and its unit, and waits until the ACME directory answers. Pure: resources out.

use super::features::LOG_DIR;
use super::resource::{Download, GuardedCommand, ManagedFile, Resource};
use super::shell::{quote, retried};
use phoenix_model::model::{Guest, Model};
use serde_json::json;

/// The feature's name, and the name of its command that makes the PKI (sync exports the root
/// when it runs).
pub const STEP_CA: &str = "step_ca";
pub const PKI: &str = "pki";
pub const STEPPATH: &str = "/etc/step-ca";
pub const ROOT_CERT: &str = "/etc/step-ca/certs/root_ca.crt";
pub const INTERMEDIATE_CERT: &str = "/etc/step-ca/certs/intermediate_ca.crt";
pub const ROOT_KEY: &str = "/etc/step-ca/secrets/root_ca_key";
pub const INTERMEDIATE_KEY: &str = "/etc/step-ca/secrets/intermediate_ca_key";
pub const CONFIG: &str = "/etc/step-ca/config/ca.json";
pub const DB: &str = "/etc/step-ca/db";
pub const BINARY: &str = "/usr/local/bin/step-ca";
pub const UNIT: &str = "/etc/systemd/system/step-ca.service";
/// How long the certificates Step-CA issues last, at most and by default: Traefik is told the
/// same (its resolver's `certificatesDuration`), and phoenix renews at two thirds of it.
pub const TLS_CERT_HOURS: u32 = 24;

/// The names the PKI is given when the configuration gives none.
const ROOT_NAME: &str = "phoenix Root CA";
const INTERMEDIATE_NAME: &str = "phoenix Intermediate CA";

/// The script that makes the PKI: EC P-256 keys (0600, the CA's user's), a self-signed root
/// (10 years, CA, path length 1) and an intermediate it signs (5 years, CA, path length 0).
pub fn pki_script(root_name: &str, intermediate_name: &str) -> String {
    format!(
        r#"set -e
umask 077
mkdir -p {STEPPATH}/certs {STEPPATH}/secrets {DB}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
openssl ecparam -name prime256v1 -genkey -noout -out {ROOT_KEY}
openssl req -x509 -new -key {ROOT_KEY} -subj {root} -days 3650 -sha256 \
  -addext 'basicConstraints=critical,CA:TRUE,pathlen:1' -addext 'keyUsage=critical,keyCertSign,cRLSign' -out {ROOT_CERT}
openssl ecparam -name prime256v1 -genkey -noout -out {INTERMEDIATE_KEY}
openssl req -new -key {INTERMEDIATE_KEY} -subj {intermediate} -out "$tmp/intermediate.csr"
printf '%s\n' 'basicConstraints=critical,CA:TRUE,pathlen:0' 'keyUsage=critical,keyCertSign,cRLSign' \
  'subjectKeyIdentifier=hash' 'authorityKeyIdentifier=keyid:always' > "$tmp/extensions"
openssl x509 -req -in "$tmp/intermediate.csr" -CA {ROOT_CERT} -CAkey {ROOT_KEY} -set_serial "0x$(openssl rand -hex 16)" \
  -days 1825 -sha256 -extfile "$tmp/extensions" -out {INTERMEDIATE_CERT}
chmod 0644 {ROOT_CERT} {INTERMEDIATE_CERT}
chmod 0755 {STEPPATH} {STEPPATH}/certs
chown -R step:step {STEPPATH}/secrets {DB}
"#,
        root = quote(&subject(root_name)),
        intermediate = quote(&subject(intermediate_name)),
    )
}

/// openssl's `-subj` for a common name (a `/` in it escaped, as openssl reads it).
fn subject(name: &str) -> String {
    format!("/CN={}", name.replace('/', "\\/"))
}

/// Step-CA's `ca.json` (smallstep/certificates authority/config/config.go `Config`): the
/// PKI's files (`root`, `crt`, `key`: Validate refuses them empty), the `address` with its port
/// and the `dnsNames` it serves (refused empty), its `db` (badgerv2, one of smallstep/nosql's
/// types: without a db, ca/ca.go mounts no /acme routes), and one ACME provisioner
/// (authority/provisioner/acme.go) whose `claims` (durations as strings, claims.go; Validate
/// refuses a default above the max) give the certificate lifetimes. The intermediate key is
/// not encrypted, so step-ca starts without a password file (softkms reads a plain PEM key).
pub fn ca_json(model: &Model, guest: &Guest) -> String {
    let ca = model.step_ca.as_ref();
    let port = ca.map_or(9000, |c| c.port);
    let provisioner = ca.map_or("acme", |c| c.acme_provisioner.as_str());
    let mut names: Vec<String> = ca.and_then(|c| c.dns_name.as_ref()).map(|n| n.value.clone()).into_iter().collect();
    names.extend(guest.addresses().map(|a| a.to_string()));
    if names.is_empty() {
        names.push("localhost".into());
    }
    let hours = format!("{TLS_CERT_HOURS}h");
    let config = json!({
        "root": ROOT_CERT,
        "crt": INTERMEDIATE_CERT,
        "key": INTERMEDIATE_KEY,
        "address": format!(":{port}"),
        "dnsNames": names,
        "logger": { "format": "text" },
        "db": { "type": "badgerv2", "dataSource": DB },
        "authority": {
            "provisioners": [{
                "type": "ACME",
                "name": provisioner,
                "claims": { "minTLSCertDuration": "5m", "maxTLSCertDuration": hours, "defaultTLSCertDuration": hours },
            }],
        },
    });
    let mut text = serde_json::to_string_pretty(&config).unwrap_or_default();
    text.push('\n');
    text
}

/// The ACME directory, asked on the guest itself (its name resolved to the loopback) and
/// checked against the root the PKI made.
fn directory_check(model: &Model) -> String {
    let ca = model.step_ca.as_ref();
    let port = ca.map_or(9000, |c| c.port);
    let provisioner = ca.map_or("acme", |c| c.acme_provisioner.as_str());
    let host = ca.and_then(|c| c.dns_name.as_ref()).map_or("localhost".to_string(), |n| n.value.clone());
    let url = quote(&format!("https://{host}:{port}/acme/{provisioner}/directory"));
    let resolve = quote(&format!("{host}:{port}:127.0.0.1"));
    format!("curl -fsS -o /dev/null --max-time 5 --cacert {ROOT_CERT} --resolve {resolve} {url}")
}

pub fn step_ca(model: &Model, guest: &Guest) -> Result<Vec<Resource>, String> {
    let source = model.software.get("step_ca").ok_or("no source for Step-CA: give software.step_ca a url (the step-ca binary) and its sha256")?;
    let names = model.step_ca.as_ref();
    let root = names.and_then(|c| c.root_ca_name.as_deref()).unwrap_or(ROOT_NAME);
    let intermediate = names.and_then(|c| c.intermediate_ca_name.as_deref()).unwrap_or(INTERMEDIATE_NAME);
    let unit = format!(
        "# Rendered by phoenix; do not edit: phoenix sync overwrites it.\n\
         [Unit]\nDescription=Step-CA (phoenix)\nAfter=network-online.target\nWants=network-online.target\n\n\
         [Service]\nUser=step\nGroup=step\nEnvironment=STEPPATH={STEPPATH}\nExecStart={BINARY} {CONFIG}\nRestart=on-failure\n\n\
         [Install]\nWantedBy=multi-user.target\n"
    );
    let check = directory_check(model);
    let command = |name: &str, run: String, done_when: Option<String>, after: &[&str]| {
        let after = after.iter().map(|a| a.to_string()).collect();
        Resource::Command(GuardedCommand { name: name.into(), run, done_when, after, log: Some(format!("{LOG_DIR}/step-ca-{name}.log")) })
    };
    Ok(vec![
        Resource::Packages { names: vec!["openssl".into(), "curl".into()] },
        Resource::Group { name: "step".into() },
        Resource::User { name: "step".into(), group: "step".into(), home: STEPPATH.into() },
        command(PKI, pki_script(root, intermediate), Some(format!("[ -s {INTERMEDIATE_CERT} ] && [ -s {INTERMEDIATE_KEY} ] && [ -s {ROOT_CERT} ]")), &[]),
        Resource::Download(Download { path: BINARY.into(), url: source.url.value.clone(), sha256: source.sha256.clone(), owner: "root:root".into(), mode: 0o755 }),
        Resource::File(ManagedFile::new(CONFIG, ca_json(model, guest), 0o644)),
        Resource::File(ManagedFile::new(UNIT, unit, 0o644)),
        super::features::daemon_reload(&[UNIT.into()]),
        Resource::Service { unit: "step-ca".into(), watch: vec![BINARY.into(), UNIT.into(), CONFIG.into()], reload: false, needs: None },
        // Answers once it has started (a few seconds): waited for, at most 30 s.
        command("acme-directory", retried(&check, 30), Some(check.clone()), &[]),
    ])
}
