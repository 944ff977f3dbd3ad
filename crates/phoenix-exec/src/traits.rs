//! The driver traits. Implementations live in phoenix-drivers (real systems) and in tests
//! (fakes); nothing here does I/O.

use phoenix_core::certificates::renewal::OrderRequest;
use phoenix_core::deploy::{FileWrite, Place, PostAction};
use std::future::Future;

/// A failure reported by a driver, in words for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverError {
    pub message: String,
}

impl DriverError {
    pub fn new(message: impl Into<String>) -> DriverError {
        DriverError { message: message.into() }
    }
}

impl std::fmt::Display for DriverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Where files are installed and post-renewal actions run: the machine phoenix runs on and its
/// guests.
pub trait Target {
    /// The file's content, `None` when it does not exist.
    fn read(&self, place: &Place) -> Result<Option<Vec<u8>>, DriverError>;
    /// Replaces the file atomically (a reader sees the old or the new content), with the owner
    /// and mode given; the content is never readable with looser permissions on the way.
    fn write(&self, file: &FileWrite) -> Result<(), DriverError>;
    fn remove(&self, place: &Place) -> Result<(), DriverError>;
    fn run(&self, action: &PostAction) -> Result<(), DriverError>;
}

/// A certificate and its key, as PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct Issued {
    /// The leaf first, then the intermediates.
    pub chain_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key is a secret: never print it.
        f.debug_struct("Issued").field("chain_pem", &self.chain_pem).field("key_pem", &"<secret>").finish()
    }
}

/// Obtains certificates (over ACME in phoenix-drivers).
pub trait Issuer {
    fn issue(&self, order: &OrderRequest) -> impl Future<Output = Result<Issued, DriverError>>;
}
