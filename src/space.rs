//! Space accounting (`asof archive space`, `GET /api/v1/archives/<archive>/-/space`): how
//! many blobs and bytes each archive's snapshots reference, and how many of them only it
//! references, read from the per-archive reference counts that every commit keeps.

use serde::Serialize;

use crate::catalog::CatalogError;
use crate::domain::ArchiveName;
use crate::store::Store;

/// A number of distinct blobs and their total size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BlobSpace {
    pub blobs: u64,
    pub bytes: u64,
}

/// What the catalog counts for one archive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ArchiveBlobs {
    /// Distinct blobs any snapshot of the archive references.
    pub referenced: BlobSpace,
    /// Those no other archive's snapshot and no re-signed file references.
    pub unique: BlobSpace,
}

/// The catalog side: one indexed query over the archive's own reference counts
/// (schema/0013_space.sql), never a walk of the blob store.
pub trait SpaceCatalog: Send + Sync + 'static {
    /// `None` when there is no such archive.
    fn archive_blobs(&self, archive: &ArchiveName) -> Result<Option<ArchiveBlobs>, CatalogError>;
}

/// The answer of `asof archive space` and of the API (one JSON object per archive).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpaceReport {
    pub archive: ArchiveName,
    /// Distinct blobs any snapshot of the archive references (what it keeps stored).
    pub referenced: BlobSpace,
    /// Blobs only this archive references: what deleting every snapshot of it would let
    /// garbage collection free.
    pub unique: BlobSpace,
    /// What applying the archive's retention policy now would free (`asof retention apply`):
    /// the snapshots it would delete, and the blobs no snapshot would reference any more.
    /// `null` when the archive has no policy.
    pub retention: Option<RetentionSpace>,
}

/// What a retention policy would free.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RetentionSpace {
    pub snapshots: u64,
    pub frees: BlobSpace,
}

/// Blocking. The space report of `archive`, `None` when there is no such archive.
pub fn report(store: &Store, archive: &ArchiveName) -> Result<Option<SpaceReport>, CatalogError> {
    let Some(counted) = store.space.archive_blobs(archive)? else { return Ok(None) };
    let retention = match store.retention.policy(archive)? {
        Some(p) if !p.is_off() => {
            crate::retention::plan(store, archive, chrono::Utc::now().timestamp())?.map(|plan| RetentionSpace {
                snapshots: plan.reclaim.snapshots,
                frees: BlobSpace { blobs: plan.reclaim.blobs, bytes: plan.reclaim.bytes },
            })
        }
        _ => None,
    };
    Ok(Some(SpaceReport {
        archive: archive.clone(),
        referenced: counted.referenced,
        unique: counted.unique,
        retention,
    }))
}
