//! The lab's certificates. A lab CA (phoenix-sim's [`TestCa`]) stands in for Step-CA: at `lab up`
//! it issues every entry of the certificate manifest, laid out as phoenix's store
//! (`root_ca.crt`, `<name>.crt` with the chain, `<name>.key`), so the static assessment
//! (`--certs`) and the lab's TLS stand-ins use the very same files; a bare lab keeps it to
//! answer `phoenix sync --lab` as its issuer.

use phoenix_model::model::Model;
use phoenix_sim::ca::TestCa;
use rcgen::{CertificateParams, KeyPair};
use std::path::Path;

fn error(e: impl std::fmt::Display) -> crate::LabError {
    crate::LabError(format!("cannot issue the lab's certificates: {e}"))
}

/// A new lab CA named `name`.
pub fn new_ca(name: &str) -> Result<TestCa, crate::LabError> {
    TestCa::try_new(name).map_err(error)
}

/// Issues every manifest certificate from a new CA named `ca_name` into `dir`.
pub fn issue_store(model: &Model, dir: &Path, ca_name: &str) -> Result<(), crate::LabError> {
    phoenix_sim::ca::write_manifest_store_from(&new_ca(ca_name)?, dir, model).map_err(error)
}

/// A self-signed serving certificate for `name` (a service of the lab's own, like the Pebble
/// standing in for Step-CA, whose certificate no hop verifies).
pub fn serving_certificate(cert: &Path, key: &Path, name: &str) -> Result<(), crate::LabError> {
    let pair = KeyPair::generate().map_err(error)?;
    let params = CertificateParams::new(vec![name.to_string(), "localhost".to_string()]).map_err(error)?;
    let signed = params.self_signed(&pair).map_err(error)?;
    std::fs::write(cert, signed.pem()).map_err(error)?;
    std::fs::write(key, pair.serialize_pem()).map_err(error)
}
