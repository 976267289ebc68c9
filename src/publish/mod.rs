//! Recording a publish: scan a tree, ingest its blobs, diff it against the archive's latest
//! snapshot and commit the change set. Shared by the CLI, the demo and (later) HTTP uploads.

pub mod changes;
pub mod plan;
pub mod remote;
mod scan;
pub mod staging;
pub mod stat_cache;
pub mod tree;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rayon::prelude::*;
use serde::Serialize;

pub use plan::{Mode, PlanError, PlannedChanges, StagedSource, Summary, summarize};
pub use scan::{ScanError, ScannedEntry, ScannedKind, scan_tree};
pub use tree::{TreeError, TreeRoot};

use crate::blob::{PutError, local::hash_file};
use crate::catalog::{CatalogError, Snapshot};
use crate::domain::{ArchiveName, Digest, RelPath};
use crate::manifest::{Content, ManifestEntry};
use crate::store::Store;

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Scan(#[from] ScanError),
    #[error(transparent)]
    Tree(#[from] TreeError),
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
    #[error("{0}")]
    Invalid(String),
}

/// Receives progress while a publish hashes and stores files (a terminal bar, or nothing).
pub trait Progress: Sync {
    fn start(&self, files: u64);
    /// One more file done, of `bytes` bytes.
    fn advance(&self, bytes: u64);
    fn finish(&self);
}

pub struct NoProgress;
impl From<PlanError> for PublishError {
    fn from(e: PlanError) -> Self {
        match e {
            PlanError::Invalid(m) => PublishError::Invalid(m),
            PlanError::Catalog(c) => PublishError::Catalog(c),
        }
    }
}

impl Progress for NoProgress {
    fn start(&self, _: u64) {}
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

/// Publishes the tree under `dir` as a new snapshot of `archive`, hashing every file.
pub fn publish_dir(
    store: &Store,
    archive: &ArchiveName,
    dir: &Path,
    opts: &PublishOptions,
) -> Result<PublishReport, PublishError> {
    publish_dir_cached(store, archive, dir, opts, None)
}

/// As `publish_dir`, skipping the hashing of files that `stat_cache` (a file, see the
/// `stat_cache` module) knows unchanged since the last publish, and updating it.
pub fn publish_dir_cached(
    store: &Store,
    archive: &ArchiveName,
    dir: &Path,
    opts: &PublishOptions,
    stat_cache: Option<&Path>,
) -> Result<PublishReport, PublishError> {
    let started = Instant::now();
    let scanned = scan_tree(dir)?;
    publish_scanned_since(started, store, archive, dir, &scanned, opts, stat_cache)
}

/// The second half of a publish: reads what `scan_tree(dir)` found (never through a
/// symlink, see `tree`), stores it and commits. Separate so that a test can change the tree
/// between the two halves.
pub fn publish_scanned(
    store: &Store,
    archive: &ArchiveName,
    dir: &Path,
    scanned: &[ScannedEntry],
    opts: &PublishOptions,
    stat_cache: Option<&Path>,
) -> Result<PublishReport, PublishError> {
    publish_scanned_since(Instant::now(), store, archive, dir, scanned, opts, stat_cache)
}

fn publish_scanned_since(
    started: Instant,
    store: &Store,
    archive: &ArchiveName,
    dir: &Path,
    scanned: &[ScannedEntry],
    opts: &PublishOptions,
    stat_cache: Option<&Path>,
) -> Result<PublishReport, PublishError> {
    let scanned_at = started.elapsed();
    let root = TreeRoot::open(dir)?;
    opts.progress.start(scanned.len() as u64);
    let new_blobs = AtomicU64::new(0);
    let new_bytes = AtomicU64::new(0);
    let cache = stat_cache.map(stat_cache::StatCache::load).unwrap_or_default();
    let reliance = crate::gc::Reliance::of_latest(store, archive)?;
    let seen: std::sync::Mutex<Vec<(stat_cache::Stat, Digest)>> = Default::default();
    // Ingest waits on the disk (reads, fsyncs) more than on the CPU: more threads than cores
    // let those waits overlap; hashing still uses every core.
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).max(2) * 4;
    let pool =
        rayon::ThreadPoolBuilder::new().num_threads(threads).thread_name(|i| format!("ingest-{i}")).build().map_err(
            |e| PublishError::Read {
                path: RelPath::new("(thread pool)").expect("valid"),
                source: std::io::Error::other(e),
            },
        )?;
    let manifest: Vec<ManifestEntry> = pool.install(|| {
        scanned
            .par_iter()
            .map_init(
                || root.cursor(),
                |cursor, e| {
                    let content = match &e.kind {
                        ScannedKind::Symlink { target } => {
                            root.check_symlink(&e.path, target)?;
                            Content::Symlink { target: target.clone() }
                        }
                        ScannedKind::File => {
                            // The cache is consulted with an lstat reached through no symlink, and
                            // a symlink there is an error: one with a copied size and mtime, to a
                            // file the cache knows, cannot pass for the file it replaced.
                            let lstat = if cache.is_empty() { None } else { Some(cursor.stat_file(&e.path)?) };
                            // A remembered digest counts only while its blob is still stored
                            // (claimed only if nothing references it: `gc::Reliance`).
                            let known = lstat.map(|st| stat_cache::Stat::of_raw(&st)).and_then(|stat| {
                                cache
                                    .lookup(&stat)
                                    .filter(|d| reliance.rely_on(store, d).unwrap_or(false))
                                    .map(|d| (stat, d))
                            });
                            let (stat, digest, size, created) = match known {
                                Some((stat, d)) => (stat, d, stat.size(), false),
                                None => {
                                    let (mut file, meta) = cursor.open_file(&e.path)?;
                                    let (d, size, created) = ingest_file(store, &reliance, &mut file, &e.path)?;
                                    (stat_cache::Stat::of(&meta), d, size, created)
                                }
                            };
                            seen.lock().expect("not poisoned").push((stat, digest));
                            if created {
                                new_blobs.fetch_add(1, Ordering::Relaxed);
                                new_bytes.fetch_add(size, Ordering::Relaxed);
                            }
                            opts.progress.advance(size);
                            Content::File { size, sha256: digest }
                        }
                    };
                    Ok(ManifestEntry { path: e.path.clone(), content })
                },
            )
            .collect::<Result<_, PublishError>>()
    })?;
    opts.progress.finish();
    let ingested = started.elapsed();
    let (snapshot, plan_stats) = commit_manifest(store, archive, manifest, opts)?;
    tracing::debug!(
        scan_ms = scanned_at.as_millis() as u64,
        ingest_ms = (ingested - scanned_at).as_millis() as u64,
        commit_ms = (started.elapsed() - ingested).as_millis() as u64,
        "publish phases"
    );
    if let Some(path) = stat_cache
        && let Err(e) = stat_cache::StatCache::save(path, &seen.into_inner().expect("not poisoned"))
    {
        tracing::warn!(error = %e, "could not save the publish cache; the next publish hashes every file");
    }
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

/// Hashes a file first, so that a blob already stored costs one read and no write. The
/// same descriptor is read again to store it: a path could meanwhile name something else.
fn ingest_file(
    store: &Store,
    reliance: &crate::gc::Reliance,
    file: &mut std::fs::File,
    path: &RelPath,
) -> Result<(Digest, u64, bool), PublishError> {
    use std::io::{Seek, SeekFrom};
    let read_err = |source| PublishError::Read { path: path.clone(), source };
    let (digest, size) = hash_file(file).map_err(read_err)?;
    if reliance.rely_on(store, &digest).map_err(read_err)? {
        return Ok((digest, size, false));
    }
    file.seek(SeekFrom::Start(0)).map_err(read_err)?;
    match store.blobs.put(file, Some(&digest), Some(size)) {
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
    let staged = plan::MemoryStaged::full(manifest);
    commit_staged(store, archive, &staged, opts)
}

/// Plans and commits a full tree that is staged, re-planning if another publish commits
/// first.
pub fn commit_staged(
    store: &Store,
    archive: &ArchiveName,
    staged: &dyn StagedSource,
    opts: &PublishOptions,
) -> Result<(Snapshot, bool), PublishError> {
    const ATTEMPTS: u32 = 5;
    for attempt in 1..=ATTEMPTS {
        let latest = store.catalog.latest(archive)?;
        let result = plan_and_commit(store, archive, latest.as_ref(), staged, Mode::Full, opts);
        match result {
            Err(PublishError::Catalog(CatalogError::Conflict { .. })) if attempt < ATTEMPTS => {
                tracing::info!(%archive, attempt, "another publish committed first; planning again");
                std::thread::sleep(Duration::from_millis(50 * attempt as u64));
            }
            other => return other,
        }
    }
    Err(PublishError::TooManyConflicts(ATTEMPTS))
}

/// One attempt: both walks against `base` (which must still be the latest at commit, or
/// the catalog answers `Conflict`). With `always` off, an unchanged full tree makes no
/// snapshot and `base` is returned.
pub fn plan_and_commit(
    store: &Store,
    archive: &ArchiveName,
    base: Option<&Snapshot>,
    staged: &dyn StagedSource,
    mode: Mode,
    opts: &PublishOptions,
) -> Result<(Snapshot, bool), PublishError> {
    let summary = summarize(store.catalog.as_ref(), archive, base, staged, mode, opts.source.clone())?;
    if let Some(base) = base.filter(|b| summary.unchanged_from(Some(b)) && !opts.always) {
        return Ok((base.clone(), true));
    }
    let changes = PlannedChanges { catalog: store.catalog.as_ref(), archive, staged, mode, summary: &summary };
    let snapshot = store.catalog.commit(archive, &summary.plan, &changes)?;
    crate::packages::index::index_after_commit(store, archive);
    Ok((snapshot, false))
}
