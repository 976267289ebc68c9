//! Snapshot retention: per-archive policies, pins, which snapshots a policy keeps
//! (`policy`), and applying it (`apply`): deleting the others' metadata, one snapshot per
//! transaction, in time proportional to what is deleted.

pub mod apply;
pub mod deletion;
pub mod policy;

pub use apply::{Applied, Plan, apply, plan};
pub use policy::{Keep, Policy, evaluate};

use serde::Serialize;

use crate::catalog::{CatalogError, DeletedSnapshot};
use crate::domain::{ArchiveName, SnapshotId};

/// What deleting snapshots removes (or would remove). Blobs and bytes count the blobs no
/// snapshot references any more: gc deletes them once its grace period has passed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Reclaim {
    pub snapshots: u64,
    pub entry_rows: u64,
    pub package_rows: u64,
    pub blobs: u64,
    pub bytes: u64,
}

impl std::ops::AddAssign for Reclaim {
    fn add_assign(&mut self, o: Self) {
        self.snapshots += o.snapshots;
        self.entry_rows += o.entry_rows;
        self.package_rows += o.package_rows;
        self.blobs += o.blobs;
        self.bytes += o.bytes;
    }
}

/// The outcome of deleting one snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deletion {
    Deleted(Reclaim),
    /// Already deleted (by another apply running at the same time).
    AlreadyGone,
    /// Kept after all, and why (re-checked under the write lock: first, latest, pinned
    /// since the plan was made, not yet read by the package index).
    Kept(String),
}

/// A snapshot kept whatever the policy says, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pin {
    pub id: SnapshotId,
    /// `pinned: <reason>` for `asof pin`, `channel <name>: current rollout` (or previous).
    pub reason: String,
}

/// Where policies and pins are kept (schema/0009_lifecycle.sql).
pub trait RetentionStore: Send + Sync + 'static {
    /// The archive's policy; `None` when it has none (retention off).
    fn policy(&self, archive: &ArchiveName) -> Result<Option<Policy>, CatalogError>;
    /// Sets (or with `None` removes) the policy; false if there is no such archive.
    fn set_policy(
        &self,
        archive: &ArchiveName,
        policy: Option<&Policy>,
        actor: &str,
        now: i64,
    ) -> Result<bool, CatalogError>;
    /// Pins snapshot `id` (an exact snapshot ID); false if there is no such archive.
    fn pin(
        &self,
        archive: &ArchiveName,
        id: SnapshotId,
        reason: &str,
        actor: &str,
        now: i64,
    ) -> Result<bool, CatalogError>;
    /// Removes a pin; false if there was none.
    fn unpin(&self, archive: &ArchiveName, id: SnapshotId) -> Result<bool, CatalogError>;
    /// Explicit pins, the targets of each channel's current and previous rollout, and what
    /// the rings of a current rollout still serve.
    fn pins(&self, archive: &ArchiveName) -> Result<Vec<Pin>, CatalogError>;
    /// What deleting the snapshots with these IDs would remove and free (read only).
    fn preview_deletion(&self, archive: &ArchiveName, ids: &[SnapshotId]) -> Result<Reclaim, CatalogError>;
    /// Deletes one snapshot: the rows only it held, its re-signed files and package rows;
    /// blobs nothing references any more become gc candidates; a tombstone keeps its ID.
    fn delete_snapshot(
        &self,
        archive: &ArchiveName,
        id: SnapshotId,
        actor: &str,
        now: i64,
    ) -> Result<Deletion, CatalogError>;
    /// Whether the archive has a policy or had snapshots deleted: then the pages that link
    /// a snapshot's neighbours can change (two index probes).
    fn under_retention(&self, archive: &ArchiveName) -> Result<bool, CatalogError>;
    /// Tombstones of the archive's deleted snapshots, oldest first.
    fn deleted_snapshots(&self, archive: &ArchiveName) -> Result<Vec<DeletedSnapshot>, CatalogError>;
}
