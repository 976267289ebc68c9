//! Metadata: archives, snapshots and their manifests, behind the `Catalog` trait.
//! The embedded default is SQLite (`SqliteCatalog`); PostgreSQL would be a second impl.

mod change_watch;
#[cfg(test)]
pub(crate) mod conformance;
pub mod jobs;
mod migrations;
pub mod pg;
pub mod rules;
mod sqlite;
mod sqlite_auth;
mod sqlite_channels;
mod sqlite_epoch;
mod sqlite_gc;
mod sqlite_packages;
mod sqlite_read;
mod sqlite_retention;
mod sqlite_scrub;
mod sqlite_signing;
mod sqlite_space;
mod sqlite_takedowns;

use serde::Serialize;

pub use change_watch::ChangeWatch;
pub use jobs::{FileJobLocks, JobLock, JobLocks};
pub use pg::PgCatalog;
pub use sqlite::{Reads, SqliteCatalog};

use crate::domain::{ArchiveName, Digest, RelPath, SnapshotId};
use crate::manifest::{Content, ManifestEntry};

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("archive {archive} moved on: expected its latest snapshot to be #{expected}, it is #{actual}")]
    Conflict { archive: ArchiveName, expected: u64, actual: u64 },
    /// The metadata store has no space left for a write; nothing of it was kept.
    #[error("metadata database is full: {0}")]
    DiskFull(String),
    /// Any other failure of the backend: an SQL error, a lost connection, a pool timeout.
    /// Each backend converts its own errors (see `sqlite::backend_error`).
    #[error("metadata database error: {0}")]
    Backend(String),
    #[error("metadata is inconsistent: {0}")]
    Corrupt(String),
    #[error("migrating metadata schema: {0}")]
    Migration(String),
}

pub type Result<T, E = CatalogError> = std::result::Result<T, E>;

impl From<r2d2::Error> for CatalogError {
    fn from(e: r2d2::Error) -> Self {
        CatalogError::Backend(format!("connection pool: {e}"))
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ArchiveSummary {
    pub name: ArchiveName,
    pub snapshots: u64,
    pub first: Option<SnapshotId>,
    pub latest: Option<SnapshotId>,
}

/// Identifies one committed snapshot inside the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotKey {
    pub archive_id: i64,
    pub seq: u64,
}

#[derive(Debug, Clone)]
pub struct Snapshot {
    pub key: SnapshotKey,
    pub archive: ArchiveName,
    pub id: SnapshotId,
    pub committed_at_ms: i64,
    pub digest: Digest,
    pub files: u64,
    pub bytes: u64,
    pub added: u64,
    pub changed: u64,
    pub removed: u64,
    pub source: serde_json::Value,
}

/// A manifest entry as stored: its content plus when that content appeared at its path.
#[derive(Debug, Clone)]
pub struct Entry {
    pub path: RelPath,
    pub content: Content,
    pub since: SnapshotId,
}

impl Entry {
    pub fn to_manifest(&self) -> ManifestEntry {
        ManifestEntry { path: self.path.clone(), content: self.content.clone() }
    }
}

#[derive(Debug, Clone, Default)]
pub struct SnapshotQuery {
    pub since: Option<SnapshotId>,
    pub until: Option<SnapshotId>,
    /// Exclusive cursor: continue after this ID in the chosen order.
    pub after: Option<SnapshotId>,
    pub descending: bool,
    /// Maximum number of snapshots; 0 means no limit.
    pub limit: u32,
}

/// What a commit records about the new snapshot, computed by the publisher against `base`.
#[derive(Debug, Clone)]
pub struct CommitPlan {
    /// The latest snapshot's sequence number the plan was computed against (0: none yet).
    pub base_seq: u64,
    pub digest: Digest,
    pub files: u64,
    pub bytes: u64,
    pub added: u64,
    pub changed: u64,
    pub removed: u64,
    pub source: serde_json::Value,
}

impl CommitPlan {
    /// The snapshot this plan became once committed as `key` and stamped `id`.
    pub fn committed(&self, key: SnapshotKey, archive: &ArchiveName, id: SnapshotId, committed_at_ms: i64) -> Snapshot {
        Snapshot {
            key,
            archive: archive.clone(),
            id,
            committed_at_ms,
            digest: self.digest,
            files: self.files,
            bytes: self.bytes,
            added: self.added,
            changed: self.changed,
            removed: self.removed,
            source: self.source.clone(),
        }
    }
}

/// One change a commit applies to the archive's latest manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// An entry that is new or whose content changed (files, symlinks and directories).
    Upsert(ManifestEntry),
    /// A path that disappears (files, symlinks and directories).
    Remove(RelPath),
}

/// The changes of a commit, produced on demand inside the commit's transaction, so that a
/// large change set can be streamed from disk instead of held in memory.
pub trait ChangeSource: Sync {
    fn for_each(&self, f: &mut dyn FnMut(Change) -> Result<()>) -> Result<()>;
}

impl ChangeSource for [Change] {
    fn for_each(&self, f: &mut dyn FnMut(Change) -> Result<()>) -> Result<()> {
        self.iter().try_for_each(|c| f(c.clone()))
    }
}

impl ChangeSource for Vec<Change> {
    fn for_each(&self, f: &mut dyn FnMut(Change) -> Result<()>) -> Result<()> {
        self.as_slice().for_each(f)
    }
}

/// What a reader needs to resolve an ID, read in one transaction so the parts agree.
#[derive(Debug, Clone)]
pub struct ReadView {
    pub archive_exists: bool,
    pub latest: Option<Snapshot>,
    /// The latest snapshot at or before the requested ID.
    pub floor: Option<Snapshot>,
    /// The archive's first snapshot, looked up only when there is no floor (to tell "before
    /// the first" from "no snapshots"); `None` otherwise.
    pub first: Option<SnapshotId>,
    /// No snapshot will ever be stamped at or before this (see schema/0003_seal.sql).
    pub sealed_until: i64,
    /// Set when the requested ID is exactly that of a snapshot retention deleted.
    pub deleted: Option<DeletedSnapshot>,
    /// The archive has a retention policy, or had snapshots deleted by one: an ID between
    /// snapshots may come to name an older one (docs/api.md, "Deleted snapshots"). Only
    /// looked up for such IDs; false otherwise.
    pub retention: bool,
}

impl ReadView {
    /// The snapshot a request for `at` is served from, as `resolve::resolve_id` picks it
    /// (before its check against the clock): none for the ID of a deleted snapshot or an
    /// ID before the first; the latest at or past it; the floor otherwise.
    pub fn serves(&self, at: SnapshotId) -> Option<&Snapshot> {
        if self.deleted.is_some() {
            return None;
        }
        match &self.latest {
            Some(latest) if at >= latest.id => Some(latest),
            Some(_) => self.floor.as_ref(),
            None => None,
        }
    }
}

/// What a file request reads from the catalog (`Catalog::read_file`).
#[derive(Debug, Clone)]
pub struct FileRead {
    pub view: ReadView,
    /// The entry at the requested path in the snapshot served, symlinks not followed.
    pub entry: Option<Entry>,
}

/// The tombstone of a snapshot that retention deleted.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeletedSnapshot {
    pub id: SnapshotId,
    /// Unix seconds.
    pub deleted_at: i64,
}

/// An archive that references a blob, and whether that archive is private.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobHolder {
    pub archive: ArchiveName,
    pub private: bool,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct CatalogStats {
    pub archives: u64,
    pub snapshots: u64,
    pub entry_rows: u64,
    pub database_bytes: u64,
}

/// The metadata operations asof needs. Methods block; async callers use the blocking pool.
pub trait Catalog: Send + Sync + 'static {
    fn archives(&self) -> Result<Vec<ArchiveSummary>>;
    fn archive(&self, name: &ArchiveName) -> Result<Option<ArchiveSummary>>;
    /// A trivial query, for health checks.
    fn ping(&self) -> Result<()>;

    fn snapshots(&self, archive: &ArchiveName, q: &SnapshotQuery) -> Result<Vec<Snapshot>>;
    /// The latest snapshot at or before `at` (floor).
    fn resolve(&self, archive: &ArchiveName, at: SnapshotId) -> Result<Option<Snapshot>>;
    fn latest(&self, archive: &ArchiveName) -> Result<Option<Snapshot>>;
    /// Everything needed to resolve `at`, from one consistent read.
    fn read_view(&self, archive: &ArchiveName, at: SnapshotId) -> Result<ReadView>;
    /// Advances the seal to `until` (never backwards), waiting for commits in flight.
    /// Returns the seal now in force.
    fn seal(&self, until: i64) -> Result<i64>;
    /// The IDs of the snapshots just before and just after `key`.
    fn neighbours(&self, key: SnapshotKey) -> Result<(Option<SnapshotId>, Option<SnapshotId>)>;

    /// The entry at `path` in a snapshot, without following symlinks.
    fn entry(&self, at: SnapshotKey, path: &RelPath) -> Result<Option<Entry>>;
    /// A file request's reads, from one consistent read (one connection, one transaction):
    /// the read view of `at` and the entry at `path` in the snapshot that serves it
    /// (`ReadView::serves`), symlinks not followed. `None` asks for the live path, as
    /// `resolve::resolve_latest` does: the view of now, and the entry in the latest snapshot.
    /// The common request (a plain file) needs nothing else; `resolve::resolve_path` takes
    /// the rest (symlinks, by-hash, directories).
    fn read_file(&self, archive: &ArchiveName, at: Option<SnapshotId>, path: &RelPath) -> Result<FileRead>;
    /// Direct children of directory `dir` (`""` for the root), sorted by path.
    fn children(&self, at: SnapshotKey, dir: &str) -> Result<Vec<Entry>>;
    /// A direct child file of `dir` whose content has `digest` (apt's by-hash).
    fn child_by_digest(&self, at: SnapshotKey, dir: &str, digest: &Digest) -> Result<Option<Entry>>;
    /// Every entry of a snapshot, in path order.
    fn for_each_entry(&self, at: SnapshotKey, f: &mut dyn FnMut(Entry) -> Result<()>) -> Result<()>;
    /// Every entry (directories included) of the archive's latest snapshot, in path byte
    /// order, streamed from one consistent read; `Conflict` unless that snapshot is
    /// `base_seq` (0: the archive has none, and nothing is visited).
    fn for_each_live(
        &self,
        archive: &ArchiveName,
        base_seq: u64,
        f: &mut dyn FnMut(ManifestEntry) -> Result<()>,
    ) -> Result<()>;

    /// Atomically records a snapshot; fails with `Conflict` if `plan.base_seq` is stale.
    /// The snapshot ID is stamped inside the commit: max(now, previous + 1s).
    fn commit(&self, archive: &ArchiveName, plan: &CommitPlan, changes: &dyn ChangeSource) -> Result<Snapshot>;

    /// Every distinct blob referenced by any snapshot, with the size manifests expect.
    fn referenced_blobs(&self, f: &mut dyn FnMut(Digest, u64) -> Result<()>) -> Result<()>;
    /// The archives whose snapshots reference `digest` (any snapshot, not only the latest).
    fn blob_holders(&self, digest: &Digest) -> Result<Vec<BlobHolder>>;
    fn stats(&self) -> Result<CatalogStats>;
}

/// What the serving caches watch (`http::hot`): a counter the catalog moves whenever
/// something a final answer was derived from may have changed other than by a commit
/// (privacy, retention, takedowns, quarantine, signing), whoever changed it.
pub trait ServeEpoch: Send + Sync + 'static {
    /// The counter, read when no write is in flight; `None` when one is (its outcome is
    /// not known yet). Never waits for a writer. Blocking.
    fn settled_epoch(&self) -> Result<Option<u64>>;
    /// A cheap, non-blocking signal that the catalog may have been written since the last
    /// look, by any process; `None` when the catalog cannot give one (then nothing may be
    /// cached, since nothing would tell when to drop it).
    fn watch(&self) -> std::io::Result<Option<Box<dyn ChangeSignal>>>;
}

/// Everything a catalog backend implements: one object behind every store trait of a
/// `Store` (the embedded SQLite catalog, PostgreSQL).
pub trait CatalogBackend:
    Catalog
    + ServeEpoch
    + crate::auth::AuthStore
    + crate::packages::store::PackageStore
    + crate::signing::SigningStore
    + crate::gc::GcCatalog
    + crate::scrub::ScrubCatalog
    + crate::space::SpaceCatalog
    + crate::retention::RetentionStore
    + crate::takedown::TakedownStore
    + crate::rollout::ChannelStore
{
}

impl<C> CatalogBackend for C where
    C: Catalog
        + ServeEpoch
        + crate::auth::AuthStore
        + crate::packages::store::PackageStore
        + crate::signing::SigningStore
        + crate::gc::GcCatalog
        + crate::scrub::ScrubCatalog
        + crate::space::SpaceCatalog
        + crate::retention::RetentionStore
        + crate::takedown::TakedownStore
        + crate::rollout::ChannelStore
{
}

/// A count that grows whenever the catalog may have been written since the previous look
/// (`ServeEpoch::watch`). Never blocks: requests call it on the event threads.
pub trait ChangeSignal: Send + Sync {
    fn writes(&self) -> u64;
}
