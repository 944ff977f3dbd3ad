//! ACME (RFC 8555) through instant-acme: Step-CA's ACME provisioner in production, Pebble in
//! tests. It keeps one account per directory, answers the http-01 or tls-alpn-01 challenge
//! itself while an order runs (dns-01 through phoenix's dnsmasq: [`dns01`]), and sends its own CSR (so the key never leaves phoenix and the
//! requested EKU is in the request). It must not decide what to order or where the result
//! goes: that is phoenix-core's and phoenix-exec's.

pub mod dns01;
mod responder;

use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount, NewOrder, OrderStatus, RetryPolicy,
};
use phoenix_core::deploy::{FileWrite, Place};
use phoenix_core::certificates::renewal::OrderRequest;
use phoenix_exec::{DriverError, Issued, Issuer};
use phoenix_model::model::{AcmeChallenge, CertUsage, San};
use rcgen::{CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, KeyPair};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use responder::Responder;

/// How to reach the ACME server and where to answer its challenges.
#[derive(Debug, Clone)]
pub struct AcmeSettings {
    /// The directory URL, e.g. `https://ca.internal:9000/acme/acme/directory`.
    pub directory: String,
    /// PEM file with the root that signed the ACME server's TLS certificate (Step-CA's own
    /// root); `None` uses the web's roots.
    pub server_root: Option<PathBuf>,
    /// Where the account's credentials are kept (mode 0600).
    pub account_file: PathBuf,
    /// Where the http-01 responder listens (the CA connects to port 80 of each name).
    pub http01_listen: SocketAddr,
    /// Where the tls-alpn-01 responder listens (the CA connects to port 443 of each name).
    pub tls_alpn01_listen: SocketAddr,
    /// The most one order may take, challenges included.
    pub order_timeout: Duration,
    /// Where dns-01 records go; `None`: an order that needs dns-01 is refused.
    pub dns01: Option<dns01::Dns01Settings>,
}

impl AcmeSettings {
    /// The settings phoenix uses with a certificate store: Step-CA's root and the account kept
    /// in `store`, and two minutes for an order.
    pub fn for_store(directory: String, store: &std::path::Path, http01_listen: SocketAddr, tls_alpn01_listen: SocketAddr) -> AcmeSettings {
        AcmeSettings {
            directory,
            server_root: Some(store.join(phoenix_model::paths::STORE_ROOT_FILE)),
            account_file: store.join("acme-account.json"),
            http01_listen,
            tls_alpn01_listen,
            order_timeout: Duration::from_secs(120),
            dns01: None,
        }
    }
}

pub struct AcmeIssuer {
    settings: AcmeSettings,
    /// Orders run one at a time: the responders bind fixed ports, and the dns-01 records file
    /// holds one order's records (a second order would overwrite, or clear, the first's).
    one_at_a_time: tokio::sync::Mutex<()>,
}

impl AcmeIssuer {
    pub fn new(settings: AcmeSettings) -> AcmeIssuer {
        AcmeIssuer { settings, one_at_a_time: tokio::sync::Mutex::new(()) }
    }

    fn builder(&self) -> Result<instant_acme::AccountBuilder, DriverError> {
        let built = match &self.settings.server_root {
            Some(root) => Account::builder_with_root(root),
            None => Account::builder(),
        };
        built.map_err(|e| DriverError::new(format!("cannot set up the HTTPS client for {}: {e}", self.settings.directory)))
    }

    /// The stored account when it is for this directory, else a new one (then stored).
    async fn account(&self, fresh: bool) -> Result<Account, DriverError> {
        if !fresh {
            if let Some(credentials) = self.stored_credentials() {
                return self
                    .builder()?
                    .from_credentials(credentials)
                    .await
                    .map_err(|e| acme_error(&format!("restoring the ACME account at {}", self.settings.directory), e));
            }
        }
        let new = NewAccount { contact: &[], terms_of_service_agreed: true, only_return_existing: false };
        let (account, credentials) = self
            .builder()?
            .create(&new, self.settings.directory.clone(), None)
            .await
            .map_err(|e| acme_error(&format!("creating an ACME account at {}", self.settings.directory), e))?;
        let stored = serde_json::json!({ "directory": self.settings.directory, "credentials": credentials });
        let text = serde_json::to_vec_pretty(&stored).map_err(|e| DriverError::new(e.to_string()))?;
        crate::host::write_atomic(&self.settings.account_file, &text, 0o600)
            .map_err(|e| DriverError::new(format!("cannot store the ACME account in {}: {e}", self.settings.account_file.display())))?;
        Ok(account)
    }

    fn stored_credentials(&self) -> Option<AccountCredentials> {
        let text = std::fs::read_to_string(&self.settings.account_file).ok()?;
        let mut stored: serde_json::Value = serde_json::from_str(&text).ok()?;
        if stored.get("directory")?.as_str()? != self.settings.directory {
            return None;
        }
        serde_json::from_value(stored.get_mut("credentials")?.take()).ok()
    }

    async fn issue_with<T: phoenix_exec::Target>(&self, account: &Account, order: &OrderRequest, target: &T) -> Result<Issued, DriverError> {
        let identifiers: Vec<Identifier> = order
            .sans()
            .into_iter()
            .map(|san| match san {
                San::Dns(name) => Identifier::Dns(name),
                San::Ip(ip) => Identifier::Ip(ip),
            })
            .collect();
        let mut acme_order = account.new_order(&NewOrder::new(&identifiers)).await.map_err(|e| acme_error("creating the order", e))?;
        let (responder, wanted) = match order.challenge {
            AcmeChallenge::Http01 if order.webroot.is_some() => (None, ChallengeType::Http01),
            AcmeChallenge::Http01 => (Some(Responder::http01(self.settings.http01_listen).await), ChallengeType::Http01),
            AcmeChallenge::TlsAlpn01 => (Some(Responder::tls_alpn01(self.settings.tls_alpn01_listen).await), ChallengeType::TlsAlpn01),
            AcmeChallenge::Dns01 => (None, ChallengeType::Dns01),
        };
        let responder =
            responder.transpose().map_err(|e| DriverError::new(format!("cannot answer {:?} challenges: {e}", order.challenge)))?;
        let dns = match (&responder, &self.settings.dns01) {
            (Some(_), _) => None,
            _ if order.webroot.is_some() => None,
            (None, Some(settings)) => Some(dns01::Dns01::new(settings.clone())),
            (None, None) => {
                return Err(DriverError::new(
                    "the order needs dns-01, and this run has no DNS server of phoenix's to hold the record: dns-01 is answered by \
                     the node's dnsmasq when phoenix runs on that node (not through --ssh, not in a rehearsal or a DNS guest)",
                ))
            }
        };
        let mut tokens = WebRootTokens { target, written: Vec::new() };
        let answer = Answer { responder: responder.as_ref(), dns: dns.as_ref(), webroot: order.webroot.as_ref().map(|root| (root, &mut tokens)) };
        let result = self.validate_and_finalize(&mut acme_order, answer, wanted, order).await;
        if let Some(responder) = responder {
            responder.stop().await;
        }
        // Tokens written into a guest's web root go whatever the outcome; a failure to remove
        // one is said (it proves nothing once its order is over, and the next order writes its own).
        if let Err(error) = tokens.remove_all().await {
            return result.and(Err(error));
        }
        // The records go also when the order failed; a failure to remove them is said, and
        // the next order removes them first.
        let Some(dns) = dns else { return result };
        let cleared = dns.clear().await;
        match result {
            Ok(issued) => cleared.map(|()| issued),
            Err(error) => Err(error),
        }
    }

    async fn validate_and_finalize<T: phoenix_exec::Target>(
        &self,
        acme_order: &mut instant_acme::Order,
        mut answer: Answer<'_, '_, T>,
        wanted: ChallengeType,
        order: &OrderRequest,
    ) -> Result<Issued, DriverError> {
        let (responder, dns) = (answer.responder, answer.dns);
        // dns-01: every record is published (one dnsmasq restart) before any challenge is
        // announced, so the authorizations are read twice.
        if let Some(dns) = dns {
            dns.publish(&self.txt_records(acme_order).await?).await?;
        }
        let mut authorizations = acme_order.authorizations();
        while let Some(authorization) = authorizations.next().await {
            let mut authorization = authorization.map_err(|e| acme_error("reading an authorization", e))?;
            match authorization.status {
                AuthorizationStatus::Valid => continue,
                AuthorizationStatus::Pending => {}
                other => return Err(DriverError::new(format!("authorization is {other:?}"))),
            }
            let mut challenge = authorization
                .challenge(wanted.clone())
                .ok_or_else(|| DriverError::new(format!("the ACME server offers no {wanted:?} challenge")))?;
            if let Some(responder) = responder {
                let identifier = challenge.identifier().to_string();
                let key_authorization = challenge.key_authorization();
                responder.publish(&identifier, &challenge.token, key_authorization.as_str(), key_authorization.digest().as_ref());
            }
            if let Some((root, tokens)) = answer.webroot.as_mut() {
                tokens.write(root, &challenge.token, challenge.key_authorization().as_str()).await?;
            }
            challenge.set_ready().await.map_err(|e| acme_error("announcing the challenge", e))?;
        }
        let retries = RetryPolicy::new().initial_delay(Duration::from_millis(250)).backoff(1.5).timeout(self.settings.order_timeout);
        let status = acme_order.poll_ready(&retries).await.map_err(|e| acme_error("waiting for validation", e))?;
        if status != OrderStatus::Ready {
            return Err(DriverError::new(format!("the order is {status:?} after validation (the CA could not verify the challenge)")));
        }
        let (key_pem, csr) = csr(order)?;
        acme_order.finalize_csr(&csr).await.map_err(|e| acme_error("finalizing the order", e))?;
        let chain_pem = acme_order.poll_certificate(&retries).await.map_err(|e| acme_error("downloading the certificate", e))?;
        Ok(Issued { chain_pem, key_pem })
    }
}

/// How this order's challenges are answered: phoenix's responder, dns-01 records, or token
/// files in a guest's web root.
struct Answer<'a, 't, T> {
    responder: Option<&'a Responder>,
    dns: Option<&'a dns01::Dns01>,
    webroot: Option<(&'a Place, &'a mut WebRootTokens<'t, T>)>,
}

/// http-01 tokens written into a guest's web root (`http01_webroot`), served by the guest's own
/// web server at `/.well-known/acme-challenge/<token>` (RFC 8555 section 8.3).
struct WebRootTokens<'t, T> {
    target: &'t T,
    written: Vec<Place>,
}

impl<T: phoenix_exec::Target> WebRootTokens<'_, T> {
    async fn write(&mut self, root: &Place, token: &str, key_authorization: &str) -> Result<(), DriverError> {
        // A token is base64url (RFC 8555 section 8.1): never a path of its own.
        if token.is_empty() || !token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err(DriverError::new(format!("the ACME server sent a token that is not base64url: {token:?}")));
        }
        let place = Place { guest: root.guest, path: format!("{}/.well-known/acme-challenge/{token}", root.path) };
        let file = FileWrite { place: place.clone(), content: key_authorization.as_bytes().to_vec(), owner: None, mode: 0o644 };
        self.target.write(&file).await.map_err(|e| DriverError::new(format!("writing the http-01 token to {place}: {}", e.message)))?;
        self.written.push(place);
        Ok(())
    }

    async fn remove_all(&mut self) -> Result<(), DriverError> {
        for place in std::mem::take(&mut self.written) {
            self.target.remove(&place).await.map_err(|e| DriverError::new(format!("removing the http-01 token {place}: {}", e.message)))?;
        }
        Ok(())
    }
}

impl AcmeIssuer {
    /// The dns-01 record of each pending authorization: its name without `*.` (a wildcard is
    /// proven at its base name, RFC 8555 section 8.4) and the key authorization's digest.
    async fn txt_records(&self, acme_order: &mut instant_acme::Order) -> Result<Vec<dns01::TxtRecord>, DriverError> {
        let mut records = Vec::new();
        let mut authorizations = acme_order.authorizations();
        while let Some(authorization) = authorizations.next().await {
            let mut authorization = authorization.map_err(|e| acme_error("reading an authorization", e))?;
            if authorization.status != AuthorizationStatus::Pending {
                continue;
            }
            let challenge = authorization
                .challenge(ChallengeType::Dns01)
                .ok_or_else(|| DriverError::new("the ACME server offers no dns-01 challenge"))?;
            let name = match challenge.identifier().identifier {
                Identifier::Dns(name) => name.clone(),
                other => return Err(DriverError::new(format!("{other:?} cannot be proven over dns-01"))),
            };
            records.push(dns01::TxtRecord { name, value: challenge.key_authorization().dns_value() });
        }
        records.sort();
        Ok(records)
    }
}

impl Issuer for AcmeIssuer {
    async fn issue<T: phoenix_exec::Target>(&self, order: &OrderRequest, target: &T) -> Result<Issued, DriverError> {
        let _turn = self.one_at_a_time.lock().await;
        let deadline = self.settings.order_timeout + Duration::from_secs(10);
        let attempt = async {
            // Records an interrupted dns-01 order left behind go first.
            if let Some(settings) = &self.settings.dns01 {
                dns01::Dns01::new(settings.clone()).clear().await?;
            }
            let stored = self.stored_credentials().is_some();
            let account = self.account(false).await?;
            match self.issue_with(&account, order, target).await {
                // A stored account the server no longer knows (Pebble forgets everything on
                // restart; a CA can be rebuilt): register again, once.
                Err(error) if stored && error.message.contains("accountDoesNotExist") => {
                    let account = self.account(true).await?;
                    self.issue_with(&account, order, target).await
                }
                other => other,
            }
        };
        tokio::time::timeout(deadline, attempt)
            .await
            .unwrap_or_else(|_| Err(DriverError::new(format!("the ACME order did not finish within {}s", deadline.as_secs()))))
    }
}

fn acme_error(doing: &str, error: instant_acme::Error) -> DriverError {
    DriverError::new(format!("{doing}: {}", crate::http::with_causes(&error)))
}

/// A fresh ECDSA P-256 key and a CSR for the order's names and usage.
fn csr(order: &OrderRequest) -> Result<(String, Vec<u8>), DriverError> {
    let key = KeyPair::generate().map_err(|e| DriverError::new(format!("cannot generate a key: {e}")))?;
    let mut params =
        CertificateParams::new(order.identifiers.clone()).map_err(|e| DriverError::new(format!("bad name in the order: {e}")))?;
    let mut subject = DistinguishedName::new();
    subject.push(DnType::CommonName, order.common_name.clone());
    params.distinguished_name = subject;
    params.extended_key_usages = match order.usage {
        CertUsage::Server => vec![ExtendedKeyUsagePurpose::ServerAuth],
        CertUsage::Client => vec![ExtendedKeyUsagePurpose::ClientAuth],
        CertUsage::Both => vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth],
    };
    let request = params.serialize_request(&key).map_err(|e| DriverError::new(format!("cannot build the CSR: {e}")))?;
    Ok((key.serialize_pem(), request.der().to_vec()))
}
