//! Where archive keys and the re-signed files already served are kept (the catalog).

use crate::catalog::{Result, SnapshotKey};
use crate::domain::{ArchiveName, Digest, RelPath};

/// An archive's key as stored: the armored secret as given, and what was derived from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub fingerprint: String,
    pub secret_key: String,
    pub public_key: String,
    pub set_at: i64,
}

/// One recorded re-signed file: a blob of the blob store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    pub sha256: Digest,
    pub size: u64,
    /// When it was made (unix seconds): its `Last-Modified`, later than the published
    /// file's, so that a client holding that one does not get a 304 for this one.
    pub made_at: i64,
}

/// Methods block; async callers use the blocking pool.
pub trait SigningStore: Send + Sync + 'static {
    /// The archive's current key; `None` when signing is off or the archive is unknown.
    fn signing_key(&self, archive: &ArchiveName) -> Result<Option<StoredKey>>;
    /// Sets (replacing any) or, with `None`, removes the archive's key. Setting one
    /// creates the archive, empty, if it does not exist yet; returns whether a key was set
    /// before.
    fn set_signing_key(&self, archive: &ArchiveName, key: Option<&StoredKey>, now: i64) -> Result<bool>;
    /// The re-signed file recorded for a snapshot's `path` with this `base`, if any.
    fn resigned(&self, at: SnapshotKey, path: &RelPath, base: &str) -> Result<Option<Recorded>>;
    /// How many base URLs have a re-signed file recorded for this snapshot and path.
    fn resigned_bases(&self, at: SnapshotKey, path: &RelPath) -> Result<u64>;
    /// Records a re-signed file unless one is recorded already; returns the one in force
    /// (the first writer's), which every later answer serves.
    fn record_resigned(&self, at: SnapshotKey, path: &RelPath, base: &str, file: Recorded) -> Result<Recorded>;
}
