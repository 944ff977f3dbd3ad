//! What a guest is made of in Proxmox VE, as the configuration describes it: where it comes
//! from (an OS template, a cloud image, a clone of another guest), its resources, its disk, a
//! container's options and mounts, a VM's cloud-init, and the node's storages they live on.
//! Plain data with spans; turning it into a guest's config keys is phoenix-core's (plan), and
//! nothing here knows the API.

use super::{GuestId, Located};
use crate::source::Span;

/// Where a new guest comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// `template` of a container: an OS template (`storage:vztmpl/file` or a path below a
    /// storage's `template/cache/`).
    OsTemplate(Located<String>),
    /// `template_image` of a VM: a cloud image imported as the VM's disk.
    CloudImage(Located<String>),
    /// `clone_from_ctid` / `clone_from_vmid`, at the source's `template_snapshot_name` when it
    /// has one.
    Clone { from: Located<GuestId>, snapshot: Option<String> },
    /// Nothing says how to create it: phoenix can converge it but not create it.
    Unspecified,
}

/// A container mount point (`mpN`): a bind mount of a host folder, or a volume phoenix
/// allocates on a storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub source: MountSource,
    /// The path inside the container.
    pub path: Located<String>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountSource {
    /// `host_path` of `mount_points`: a bind mount (root only in Proxmox).
    Bind(Located<String>),
    /// `zfs_volumes`: a volume of `size_gb` on the storage `pool`.
    Volume { storage: Located<String>, size_gb: u64 },
}

/// A VM's cloud-init settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CloudInit {
    /// `user_config.username` (`ciuser`).
    pub user: Option<String>,
    /// `user_config.ssh_keys` / `ssh_authorized_keys` (`sshkeys`).
    pub ssh_keys: Vec<String>,
    /// `network_config.searchdomain`.
    pub search_domain: Option<String>,
}

/// The resources and options of a guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestSpec {
    pub origin: Origin,
    pub memory_mb: Option<Located<u64>>,
    pub swap_mb: Option<Located<u64>>,
    pub cores: Option<Located<u32>>,
    /// `storage_pool`: the storage of the root disk.
    pub storage: Option<Located<String>>,
    /// `storage_size_gb` (container) or `disk_size_gb` (VM): resized up, never down.
    pub disk_gb: Option<Located<u64>>,
    pub unprivileged: Option<bool>,
    /// `pct_options`: container features (`nesting=1`, `keyctl=1`, `mount=nfs`, ...).
    pub features: Vec<Located<String>>,
    /// `lxc_options`: raw `lxc.*` lines (root only in Proxmox).
    pub raw_lxc: Vec<Located<String>>,
    pub apparmor_profile: Option<Located<String>>,
    pub mounts: Vec<Mount>,
    /// `gpu_assignment`: the host GPUs passed through (`none`: no GPU).
    pub gpus: Vec<Located<u32>>,
    /// Snapshots taken once at points of the guest's setup: a container's
    /// `enable_lifecycle_snapshots` (`pre-configured`, `final-form`), a VM's `snapshots`.
    pub lifecycle_snapshots: Vec<LifecycleSnapshot>,
    pub cloud_init: CloudInit,
}

/// Where in a guest's setup the original took a snapshot (its lxc-manager's
/// `create_pre_configured_snapshot` after the start, before the features;
/// `create_final_form_snapshot` after them; vm-manager's `manage_snapshots` at
/// `pre-features` and `post-features`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SetupPoint {
    /// Started, before phoenix sets anything up in it.
    BeforeSetup,
    /// After everything the run does to it.
    AfterSetup,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecycleSnapshot {
    pub point: SetupPoint,
    pub name: Located<String>,
}

impl Default for GuestSpec {
    fn default() -> GuestSpec {
        GuestSpec {
            origin: Origin::Unspecified,
            memory_mb: None,
            swap_mb: None,
            cores: None,
            storage: None,
            disk_gb: None,
            unprivileged: None,
            features: Vec::new(),
            raw_lxc: Vec::new(),
            apparmor_profile: None,
            mounts: Vec::new(),
            gpus: Vec::new(),
            lifecycle_snapshots: Vec::new(),
            cloud_init: CloudInit::default(),
        }
    }
}

/// A storage of the node, from the hypervisor file's ZFS datasets (`<pool>-<name>`, as the
/// original registers them with `pvesm`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Storage {
    pub id: String,
    /// `zfspool`, `dir`, ...
    pub kind: String,
    /// Content types (`images`, `rootdir`, `vztmpl`, `iso`, `backup`, `import`).
    pub content: Vec<String>,
    /// Where a `dir` storage keeps its files (the dataset's mount point, `/<pool>/<name>`).
    pub path: Option<String>,
    pub span: Span,
}

impl Storage {
    pub fn holds(&self, content: &str) -> bool {
        self.content.iter().any(|c| c == content)
    }
}
