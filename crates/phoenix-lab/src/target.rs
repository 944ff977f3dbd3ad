//! A bare lab's node and guests as the place `phoenix sync --lab` deploys to. Files go to the
//! lab's folder through the inner target. A rendered file's validate command is carried out
//! the lab's way on the file just written (`nginx -t` on the configuration laid out as the lab
//! runs it, `dnsmasq --test`), so a file the real service would refuse fails its step and is
//! put back. Reloads, restarts and post-renewal actions are left to the lab, which restarts its
//! services once the sync is done; a host command from the manifest is meant for the real node
//! and never runs here.

use crate::net;
use phoenix_core::certificates::renewal::{FileWrite, Place, PostAction};
use phoenix_core::render::{dnsmasq, nginx};
use phoenix_exec::{DriverError, Target};
use phoenix_model::model::{GuestId, GuestKind, Model};
use std::collections::BTreeMap;
use std::sync::Mutex;

pub struct LabTarget<'m, T> {
    inner: T,
    name: String,
    model: &'m Model,
    /// The file last written on each system (`None`: the host), which a validate command checks.
    written: Mutex<BTreeMap<Option<GuestId>, Place>>,
}

impl<'m, T: Target> LabTarget<'m, T> {
    pub fn new(inner: T, name: &str, model: &'m Model) -> LabTarget<'m, T> {
        LabTarget { inner, name: name.to_string(), model, written: Mutex::new(BTreeMap::new()) }
    }

    /// The content of the file last written where `guest` says.
    fn just_written(&self, guest: Option<(GuestId, GuestKind)>) -> Result<String, DriverError> {
        let place = self.written.lock().ok().and_then(|w| w.get(&guest.map(|(id, _)| id)).cloned());
        let place = place.ok_or_else(|| DriverError::new("nothing was written to validate"))?;
        let content = self.inner.read(&place)?.ok_or_else(|| DriverError::new(format!("{place} is missing")))?;
        Ok(String::from_utf8_lossy(&content).into_owned())
    }

    fn check_nginx(&self, guest: Option<(GuestId, GuestKind)>) -> Result<(), DriverError> {
        let Some((id, _)) = guest else { return Err(DriverError::new("nginx runs in a guest")) };
        let key = format!("guest-{id}");
        let installed = crate::deployed::folder(&self.name).join(&key);
        let source = |path: &str, _: &str| installed.join(path.trim_start_matches('/'));
        let scratch = crate::state_dir(&self.name).join(format!("check-{key}"));
        let files = phoenix_core::lab::guest_files(self.model, id);
        net::check_nginx(&scratch, &self.just_written(guest)?, &files, &source).map_err(|e| DriverError::new(e.0))
    }

    fn check_dnsmasq(&self, guest: Option<(GuestId, GuestKind)>) -> Result<(), DriverError> {
        let scratch = crate::state_dir(&self.name).join("check-dns");
        net::check_dnsmasq(&scratch, &self.just_written(guest)?).map_err(|e| DriverError::new(e.0))
    }
}

impl<T: Target> Target for LabTarget<'_, T> {
    fn read(&self, place: &Place) -> Result<Option<Vec<u8>>, DriverError> {
        self.inner.read(place)
    }

    fn write(&self, file: &FileWrite) -> Result<(), DriverError> {
        self.inner.write(file)?;
        if let Ok(mut written) = self.written.lock() {
            written.insert(file.place.guest.map(|(id, _)| id), file.place.clone());
        }
        Ok(())
    }

    fn remove(&self, place: &Place) -> Result<(), DriverError> {
        self.inner.remove(place)
    }

    fn run(&self, action: &PostAction) -> Result<(), DriverError> {
        match action {
            PostAction::Command { guest, command } if command == nginx::VALIDATE => self.check_nginx(*guest),
            PostAction::Command { guest, command } if command == dnsmasq::VALIDATE => self.check_dnsmasq(*guest),
            PostAction::Touch { .. } => self.inner.run(action),
            _ => Ok(()),
        }
    }
}
