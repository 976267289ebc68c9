//! Recording a publish: scan a tree, ingest its blobs, diff it against the archive's latest
//! snapshot and commit the change set. Shared by the CLI, the demo and (later) HTTP uploads.

mod plan;
pub mod remote;
mod scan;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rayon::prelude::*;
use serde::Serialize;

pub use plan::plan_commit;
pub use scan::{ScanError, ScannedEntry, ScannedKind, scan_tree};

use crate::blob::{PutError, local::hash_file};
use crate::catalog::{CatalogError, Snapshot};
use crate::domain::{ArchiveName, Digest, RelPath};
use crate::manifest::{Content, ManifestEntry};
use crate::store::Store;

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Scan(#[from] ScanError),
    #[error("reading {path}: {source}")]
    Read { path: RelPath, source: std::io::Error },
    #[error("{path} changed while it was being published ({source}); publish again once the tree is stable")]
    Unstable { path: RelPath, source: PutError },
    #[error("storing {path}: {source}")]
    Store { path: RelPath, source: PutError },
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("gave up after {0} attempts: other publishes to the same archive kept committing first")]
    TooManyConflicts(u32),
}

/// Receives progress while a publish hashes and stores files (a terminal bar, or nothing).
pub trait Progress: Sync {
    fn start(&self, files: u64, bytes: u64);
    fn advance(&self, bytes: u64);
    fn finish(&self);
}

pub struct NoProgress;
impl Progress for NoProgress {
    fn start(&self, _: u64, _: u64) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
}

#[derive(Debug, Clone, Serialize)]
pub struct PublishReport {
    pub archive: ArchiveName,
    pub snapshot: crate::domain::SnapshotId,
    pub digest: Digest,
    pub files: u64,
    pub bytes: u64,
    pub new_blobs: u64,
    pub new_bytes: u64,
    pub added: u64,
    pub changed: u64,
    pub removed: u64,
    pub duration_ms: u128,
    /// Set when the tree was identical to the latest snapshot and no snapshot was made.
    pub unchanged: bool,
}

pub struct PublishOptions<'a> {
    pub progress: &'a dyn Progress,
    /// How the snapshot was made, stored with it (`{"method": "publish", ...}`).
    pub source: serde_json::Value,
    /// Record a snapshot even if nothing changed since the latest one.
    pub always: bool,
}

/// Publishes the tree under `dir` as a new snapshot of `archive`.
pub fn publish_dir(
    store: &Store,
    archive: &ArchiveName,
    dir: &Path,
    opts: &PublishOptions,
) -> Result<PublishReport, PublishError> {
    let started = Instant::now();
    let scanned = scan_tree(dir)?;
    let total_bytes: u64 = scanned.iter().map(|e| e.size).sum();
    opts.progress.start(scanned.len() as u64, total_bytes);
    let new_blobs = AtomicU64::new(0);
    let new_bytes = AtomicU64::new(0);
    let manifest: Vec<ManifestEntry> = scanned
        .par_iter()
        .map(|e| {
            let content = match &e.kind {
                ScannedKind::Symlink { target } => Content::Symlink { target: target.clone() },
                ScannedKind::File => {
                    let (digest, size, created) = ingest_file(store, &dir.join(e.path.as_str()), &e.path)?;
                    if created {
                        new_blobs.fetch_add(1, Ordering::Relaxed);
                        new_bytes.fetch_add(size, Ordering::Relaxed);
                    }
                    opts.progress.advance(size);
                    Content::File { size, sha256: digest }
                }
            };
            Ok(ManifestEntry { path: e.path.clone(), content })
        })
        .collect::<Result<_, PublishError>>()?;
    opts.progress.finish();
    let (snapshot, plan_stats) = commit_manifest(store, archive, manifest, opts)?;
    Ok(PublishReport {
        archive: archive.clone(),
        snapshot: snapshot.id,
        digest: snapshot.digest,
        files: snapshot.files,
        bytes: snapshot.bytes,
        new_blobs: new_blobs.into_inner(),
        new_bytes: new_bytes.into_inner(),
        added: snapshot.added,
        changed: snapshot.changed,
        removed: snapshot.removed,
        duration_ms: started.elapsed().as_millis(),
        unchanged: plan_stats,
    })
}

/// Hashes a file first, so that a blob already stored costs one read and no write.
fn ingest_file(store: &Store, file: &Path, path: &RelPath) -> Result<(Digest, u64, bool), PublishError> {
    let read_err = |source| PublishError::Read { path: path.clone(), source };
    let (digest, size) = hash_file(file).map_err(read_err)?;
    if store.blobs.contains(&digest).map_err(read_err)? {
        return Ok((digest, size, false));
    }
    let mut f = std::fs::File::open(file).map_err(read_err)?;
    match store.blobs.put(&mut f, Some(&digest), Some(size)) {
        Ok(out) => Ok((out.digest, out.size, out.created)),
        Err(e @ (PutError::DigestMismatch { .. } | PutError::LengthMismatch { .. })) => {
            Err(PublishError::Unstable { path: path.clone(), source: e })
        }
        Err(e) => Err(PublishError::Store { path: path.clone(), source: e }),
    }
}

/// Diffs a complete manifest against the archive's latest snapshot and commits it,
/// re-planning if another publish commits first. Returns the snapshot (the latest one,
/// unchanged, when nothing differs and `always` is off) and whether nothing changed.
pub fn commit_manifest(
    store: &Store,
    archive: &ArchiveName,
    manifest: Vec<ManifestEntry>,
    opts: &PublishOptions,
) -> Result<(Snapshot, bool), PublishError> {
    const ATTEMPTS: u32 = 5;
    for attempt in 1..=ATTEMPTS {
        let (latest, live) = store.catalog.live_manifest(archive)?;
        let plan = plan_commit(latest.as_ref(), &live, &manifest, opts.source.clone());
        if let Some(latest) = latest
            && plan.upserts.is_empty()
            && plan.removals.is_empty()
            && !opts.always
        {
            return Ok((latest, true));
        }
        match store.catalog.commit(archive, &plan) {
            Ok(s) => return Ok((s, false)),
            Err(CatalogError::Conflict { .. }) if attempt < ATTEMPTS => {
                tracing::info!(%archive, attempt, "another publish committed first; planning again");
                std::thread::sleep(Duration::from_millis(50 * attempt as u64));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(PublishError::TooManyConflicts(ATTEMPTS))
}
