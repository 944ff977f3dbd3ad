//! A bare lab's node and guests as the place `phoenix sync --lab` deploys to. Files go to the
//! lab's folder through the inner target. A rendered file's validate command is carried out
//! the lab's way on the file it validates, as written (`nginx -t` on the guest's nginx.conf laid
//! out as the lab runs it, `dnsmasq --test` on dnsmasq's file), so a file the real service
//! would refuse fails its step and is put back. Reloads, restarts and post-renewal actions are left to the lab, which restarts its
//! services once the sync is done; a host command from the manifest is meant for the real node
//! and never runs here.

use crate::net;
use phoenix_core::deploy::{FileWrite, Place, PostAction};
use phoenix_core::render::{dnsmasq, nginx};
use phoenix_core::provision::shell::Shell;
use phoenix_drivers::host::{GuestAccess, HostTarget, SystemRunner};
use phoenix_exec::traits::ShellOutput;
use phoenix_exec::{DriverError, Target};
use phoenix_model::model::{GuestId, GuestKind, Model};

pub struct LabTarget<'m, T> {
    inner: T,
    name: String,
    model: &'m Model,
    /// The lab's real containers, when it has them.
    containers: Option<HostTarget<SystemRunner>>,
}

impl<'m, T: Target> LabTarget<'m, T> {
    pub fn new(inner: T, name: &str, model: &'m Model) -> LabTarget<'m, T> {
        let containers = crate::containers::rootfs(name)
            .map(|_| HostTarget::new(GuestAccess::Lxc(crate::containers::lxc_path(name)), SystemRunner));
        LabTarget { inner, name: name.to_string(), model, containers }
    }

    /// The containers' target when `guest` is one of the lab's real containers and exists (one
    /// not created yet has nothing in it: its empty folder answers).
    fn container(&self, guest: Option<(GuestId, GuestKind)>) -> Option<&HostTarget<SystemRunner>> {
        match guest {
            Some((id, GuestKind::Lxc)) if crate::containers::is_container(&self.name, id) => self.containers.as_ref(),
            _ => None,
        }
    }

    /// Whether `guest` is a container of a lab of real containers (created yet or not).
    fn containerised(&self, guest: Option<(GuestId, GuestKind)>) -> bool {
        self.containers.is_some() && matches!(guest, Some((_, GuestKind::Lxc)))
    }

    /// The content of the file at `path` where `guest` says, as written.
    async fn written(&self, guest: Option<(GuestId, GuestKind)>, path: &str) -> Result<String, DriverError> {
        let place = Place { guest, path: path.to_string() };
        let content = self.inner.read(&place).await?.ok_or_else(|| DriverError::new(format!("{place} is missing")))?;
        Ok(String::from_utf8_lossy(&content).into_owned())
    }

    async fn check_nginx(&self, guest: Option<(GuestId, GuestKind)>) -> Result<(), DriverError> {
        let Some((id, _)) = guest else { return Err(DriverError::new("nginx runs in a guest")) };
        let key = format!("guest-{id}");
        let installed = crate::deployed::folder(&self.name).join(&key);
        let source = |path: &str, _: &str| installed.join(path.trim_start_matches('/'));
        let scratch = crate::state_dir(&self.name).join(format!("check-{key}"));
        let files = phoenix_core::lab::guest_files(self.model, id);
        net::check_nginx(&scratch, &self.written(guest, nginx::PATH).await?, &files, &source).map_err(|e| DriverError::new(e.0))
    }

    async fn check_dnsmasq(&self, guest: Option<(GuestId, GuestKind)>) -> Result<(), DriverError> {
        let scratch = crate::state_dir(&self.name).join("check-dns");
        net::check_dnsmasq(&scratch, &self.written(guest, dnsmasq::PATH).await?).map_err(|e| DriverError::new(e.0))
    }
}

/// The lab's validation (nginx -t, dnsmasq --test in a scratch folder) blocks the thread: the
/// lab is a rehearsal on one machine, and its steps wait for the files they check anyway.
impl<T: Target> Target for LabTarget<'_, T> {
    async fn read(&self, place: &Place) -> Result<Option<Vec<u8>>, DriverError> {
        match self.container(place.guest) {
            Some(container) => container.read(place).await,
            None => self.inner.read(place).await,
        }
    }

    async fn write(&self, file: &FileWrite) -> Result<(), DriverError> {
        match self.container(file.place.guest) {
            Some(container) => container.write(file).await,
            None if self.containerised(file.place.guest) => Err(DriverError::new(format!("{}: the container does not exist", file.place))),
            None => self.inner.write(file).await,
        }
    }

    async fn remove(&self, place: &Place) -> Result<(), DriverError> {
        match self.container(place.guest) {
            Some(container) => container.remove(place).await,
            None => self.inner.remove(place).await,
        }
    }

    async fn stat(&self, place: &Place) -> Result<Option<phoenix_core::deploy::FileMeta>, DriverError> {
        match self.container(place.guest) {
            Some(container) => container.stat(place).await,
            None => self.inner.stat(place).await,
        }
    }

    fn runs_scripts(&self, guest: GuestId, kind: GuestKind) -> bool {
        self.containerised(Some((guest, kind)))
    }

    async fn shell(&self, guest: GuestId, kind: GuestKind, shell: &Shell) -> Result<ShellOutput, DriverError> {
        match self.container(Some((guest, kind))) {
            Some(container) => container.shell(guest, kind, shell).await,
            None => self.inner.shell(guest, kind, shell).await,
        }
    }

    /// A program's source, fetched on the machine the lab runs on.
    async fn fetch(&self, url: &str) -> Result<Vec<u8>, DriverError> {
        match &self.containers {
            Some(containers) => containers.fetch(url).await,
            None => self.inner.fetch(url).await,
        }
    }

    async fn run(&self, action: &PostAction) -> Result<(), DriverError> {
        if let Some(container) = self.container(action_guest(action)) {
            return container.run(action).await;
        }
        match action {
            PostAction::Command { guest, command } if command == nginx::VALIDATE => self.check_nginx(*guest).await,
            PostAction::Command { guest, command } if command == dnsmasq::VALIDATE => self.check_dnsmasq(*guest).await,
            PostAction::Touch { .. } => self.inner.run(action).await,
            _ => Ok(()),
        }
    }
}

/// The guest a post action runs in (`None`: the node, whose commands are meant for the real one).
fn action_guest(action: &PostAction) -> Option<(GuestId, GuestKind)> {
    match action {
        PostAction::Reload { guest, guest_kind, .. } => Some((*guest, *guest_kind)),
        PostAction::UpdateTrust { guest } | PostAction::Command { guest, .. } => *guest,
        PostAction::Touch { place } => place.guest,
        PostAction::Shell { .. } => None,
    }
}
