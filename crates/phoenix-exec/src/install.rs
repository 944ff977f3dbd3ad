//! Installing a set of files as one change: every file is backed up before it is replaced,
//! and [`Installation::roll_back`] puts every one back (or removes it when it did not exist)
//! when a later file or the post-renewal action fails.

use crate::traits::{DriverError, Target};
use phoenix_core::deploy::{FileWrite, Place};

/// Files replaced so far, with what was there before.
#[derive(Debug, Default)]
pub struct Installation {
    replaced: Vec<(FileWrite, Option<Vec<u8>>)>,
}

impl Installation {
    /// Writes `files` in order. On the first failure the files already written are restored
    /// and the error is returned with what the rollback could not restore.
    pub async fn apply(target: &impl Target, files: &[FileWrite]) -> Result<Installation, InstallError> {
        let mut done = Installation::default();
        for file in files {
            let step = match target.read(&file.place).await {
                Ok(before) => target.write(file).await.map(|()| before),
                Err(error) => Err(error),
            };
            match step {
                Ok(before) => done.replaced.push((file.clone(), before)),
                Err(error) => {
                    let unrestored = done.roll_back(target).await;
                    return Err(InstallError { place: file.place.clone(), error, unrestored });
                }
            }
        }
        Ok(done)
    }

    /// Restores every replaced file, last first. Returns the places it could not restore.
    pub async fn roll_back(self, target: &impl Target) -> Vec<(Place, DriverError)> {
        let mut failed = Vec::new();
        for (file, before) in self.replaced.into_iter().rev() {
            let restored = match before {
                Some(content) => target.write(&FileWrite { content, ..file.clone() }).await,
                None => target.remove(&file.place).await,
            };
            if let Err(error) = restored {
                failed.push((file.place, error));
            }
        }
        failed
    }
}

#[derive(Debug)]
pub struct InstallError {
    pub place: Place,
    pub error: DriverError,
    pub unrestored: Vec<(Place, DriverError)>,
}
