//! Snapshot retention: per-archive policies, pins, and which snapshots a policy keeps
//! (`policy`). Deleting the snapshots a policy lets go is not implemented yet; `asof
//! retention plan` shows what it would delete.

pub mod policy;

pub use policy::{Keep, Policy, evaluate};

use serde::Serialize;

use crate::catalog::CatalogError;
use crate::domain::{ArchiveName, SnapshotId};

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
    /// Explicit pins and the targets of each channel's current and previous rollout.
    fn pins(&self, archive: &ArchiveName) -> Result<Vec<Pin>, CatalogError>;
}
