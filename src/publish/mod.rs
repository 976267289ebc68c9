//! Recording a publish: scan a tree, ingest its blobs, diff it against the archive's latest
//! snapshot and commit the change set. Shared by the CLI, the demo and (later) HTTP uploads.
//!
//! Memory stays flat as the tree grows: files are ingested in rounds of `ROUND` entries
//! whose results go to a disk stage (`staging`; in memory below `IN_MEMORY_MAX` files,
//! where SQLite would cost more time than it saves memory) and the stat cache file before the next
//! round; new blobs are made durable together (`BlobStore::batch`) before the commit.

pub mod changes;
pub mod plan;
pub mod remote;
mod scan;
pub mod staging;
pub mod stat_cache;
pub mod tree;

use std::path::Path;
use std::time::{Duration, Instant};

use rayon::prelude::*;
use serde::Serialize;

pub use plan::{Mode, PlanError, PlannedChanges, StagedSource, Summary, summarize};
pub use scan::{ScanError, ScannedEntry, ScannedKind, ScannedTree, scan_tree, scan_tree_packed};
pub use tree::{TreeError, TreeRoot};

use crate::blob::{BlobBatch, PutError, local::hash_file};
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
    #[error("storing new blobs: {0}")]
    Blobs(PutError),
    #[error(transparent)]
    Stage(#[from] staging::StageError),
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
    let scanned = scan_tree_packed(dir)?;
    let source = Scanned::Packed(&scanned);
    publish_scanned_since(started, store, archive, dir, source, opts, stat_cache, IN_MEMORY_MAX)
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
    let source = Scanned::Entries(scanned);
    publish_scanned_since(Instant::now(), store, archive, dir, source, opts, stat_cache, IN_MEMORY_MAX)
}

/// What a scan found, handed out a round at a time.
#[derive(Clone, Copy)]
enum Scanned<'a> {
    Entries(&'a [ScannedEntry]),
    Packed(&'a ScannedTree),
}

impl<'a> Scanned<'a> {
    fn len(self) -> usize {
        match self {
            Scanned::Entries(e) => e.len(),
            Scanned::Packed(t) => t.len(),
        }
    }

    fn rounds(self) -> impl Iterator<Item = std::borrow::Cow<'a, [ScannedEntry]>> {
        (0..self.len()).step_by(ROUND).map(move |start| {
            let range = start..(start + ROUND).min(self.len());
            match self {
                Scanned::Entries(e) => std::borrow::Cow::Borrowed(&e[range]),
                Scanned::Packed(t) => std::borrow::Cow::Owned(t.entries(range)),
            }
        })
    }
}

#[allow(clippy::too_many_arguments)]
fn publish_scanned_since(
    started: Instant,
    store: &Store,
    archive: &ArchiveName,
    dir: &Path,
    scanned: Scanned<'_>,
    opts: &PublishOptions,
    stat_cache: Option<&Path>,
    in_memory_max: usize,
) -> Result<PublishReport, PublishError> {
    let scanned_at = started.elapsed();
    let root = TreeRoot::open(dir)?;
    opts.progress.start(scanned.len() as u64);
    let cache = stat_cache.map(stat_cache::StatCache::load).unwrap_or_default();
    let reliance = crate::gc::Reliance::of_latest(store, archive)?;
    let mut seen = stat_cache.and_then(|path| {
        stat_cache::CacheWriter::create(path)
            .inspect_err(
                |e| tracing::warn!(error = %e, "could not write the publish cache; the next publish hashes every file"),
            )
            .ok()
    });
    let pool = ingest_pool()?;
    let blobs = store.blobs.blocking().batch();
    let mut stage = if scanned.len() > in_memory_max {
        Stage::Disk(staging::DiskStaging::new(&store.scratch)?)
    } else {
        Stage::Memory(Vec::with_capacity(scanned.len()))
    };
    let ingest = Ingest {
        store,
        root: &root,
        cache: &cache,
        reliance: &reliance,
        blobs: blobs.as_ref(),
        progress: opts.progress,
    };
    let mut done: Vec<Ingested> = Vec::new();
    for round in scanned.rounds().map(Some).chain([None]) {
        // The previous round is staged while this one is ingested.
        let (staged, next) = pool.install(|| {
            rayon::join(
                || stage_round(&mut stage, &mut seen, std::mem::take(&mut done)),
                || round.map_or(Ok(Vec::new()), |r| ingest.round(&r)),
            )
        });
        staged?;
        done = next?;
    }
    let new = pool.install(|| blobs.commit()).map_err(PublishError::Blobs)?;
    let stage = stage.seal()?;
    opts.progress.finish();
    let ingested = started.elapsed();
    let (snapshot, plan_stats) = commit_staged(store, archive, stage.as_ref(), opts)?;
    tracing::debug!(
        scan_ms = scanned_at.as_millis() as u64,
        ingest_ms = (ingested - scanned_at).as_millis() as u64,
        commit_ms = (started.elapsed() - ingested).as_millis() as u64,
        "publish phases"
    );
    if let Some(Err(e)) = seen.map(stat_cache::CacheWriter::finish) {
        tracing::warn!(error = %e, "could not save the publish cache; the next publish hashes every file");
    }
    Ok(PublishReport {
        archive: archive.clone(),
        snapshot: snapshot.id,
        digest: snapshot.digest,
        files: snapshot.files,
        bytes: snapshot.bytes,
        new_blobs: new.blobs,
        new_bytes: new.bytes,
        added: snapshot.added,
        changed: snapshot.changed,
        removed: snapshot.removed,
        duration_ms: started.elapsed().as_millis(),
        unchanged: plan_stats,
    })
}

/// Entries ingested per round (see the module's note).
const ROUND: usize = 8192;

/// One ingested entry, and the file state to remember for the next publish.
type Ingested = (RelPath, Content, Option<(stat_cache::Stat, Digest)>);

/// Ingest waits on the disk (reads, fsyncs) more than on the CPU: more threads than cores
/// let those waits overlap; hashing still uses every core.
fn ingest_pool() -> Result<rayon::ThreadPool, PublishError> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).max(2) * 4;
    rayon::ThreadPoolBuilder::new().num_threads(threads).thread_name(|i| format!("ingest-{i}")).build().map_err(|e| {
        PublishError::Read { path: RelPath::new("(thread pool)").expect("valid"), source: std::io::Error::other(e) }
    })
}

/// Trees up to this many files keep their manifest in memory.
const IN_MEMORY_MAX: usize = 100_000;

/// Where the ingested manifest goes until the commit.
enum Stage {
    Memory(Vec<ManifestEntry>),
    Disk(staging::DiskStaging),
}

impl Stage {
    fn insert(&mut self, path: RelPath, content: Content) -> Result<(), PublishError> {
        match self {
            Stage::Memory(v) => v.push(ManifestEntry { path, content }),
            Stage::Disk(d) => d.insert(&path, &plan::Staged::Put(content))?,
        }
        Ok(())
    }

    fn seal(self) -> Result<Box<dyn StagedSource>, PublishError> {
        Ok(match self {
            Stage::Memory(v) => Box::new(plan::MemoryStaged::full(v)),
            Stage::Disk(mut d) => {
                d.seal()?;
                Box::new(d)
            }
        })
    }
}

fn stage_round(
    stage: &mut Stage,
    seen: &mut Option<stat_cache::CacheWriter>,
    done: Vec<Ingested>,
) -> Result<(), PublishError> {
    for (path, content, state) in done {
        stage.insert(path, content)?;
        if let (Some(w), Some((stat, digest))) = (seen.as_mut(), state)
            && let Err(e) = w.push(&stat, &digest)
        {
            tracing::warn!(error = %e, "could not write the publish cache; the next publish hashes every file");
            *seen = None;
        }
    }
    Ok(())
}

/// What ingesting one entry needs.
struct Ingest<'a> {
    store: &'a Store,
    root: &'a TreeRoot,
    cache: &'a stat_cache::StatCache,
    reliance: &'a crate::gc::Reliance,
    blobs: &'a dyn BlobBatch,
    progress: &'a dyn Progress,
}

impl Ingest<'_> {
    fn round(&self, entries: &[ScannedEntry]) -> Result<Vec<Ingested>, PublishError> {
        entries.par_iter().map_init(|| self.root.cursor(), |cursor, e| self.entry(cursor, e)).collect()
    }

    fn entry(&self, cursor: &mut tree::DirCursor<'_>, e: &ScannedEntry) -> Result<Ingested, PublishError> {
        let (root, cache, store) = (self.root, self.cache, self.store);
        if let ScannedKind::Symlink { target } = &e.kind {
            root.check_symlink(&e.path, target)?;
            return Ok((e.path.clone(), Content::Symlink { target: target.clone() }, None));
        }
        // The cache is consulted with an lstat reached through no symlink, and a symlink
        // there is an error: one with a copied size and mtime, to a file the cache knows,
        // cannot pass for the file it replaced.
        let lstat = if cache.is_empty() { None } else { Some(cursor.stat_file(&e.path)?) };
        // A remembered digest counts only while its blob is still stored (claimed only if
        // nothing references it: `gc::Reliance`).
        let known = lstat.map(|st| stat_cache::Stat::of_raw(&st)).and_then(|stat| {
            cache.lookup(&stat).filter(|d| self.reliance.rely_on(store, d).unwrap_or(false)).map(|d| (stat, d))
        });
        let (stat, digest, size) = match known {
            Some((stat, d)) => (stat, d, stat.size()),
            None => {
                let (mut file, meta) = cursor.open_file(&e.path)?;
                let (d, size) = self.file(&mut file, &e.path)?;
                (stat_cache::Stat::of(&meta), d, size)
            }
        };
        self.progress.advance(size);
        Ok((e.path.clone(), Content::File { size, sha256: digest }, Some((stat, digest))))
    }

    fn file(&self, file: &mut std::fs::File, path: &RelPath) -> Result<(Digest, u64), PublishError> {
        hash_and_store(file, path, self.blobs, |d| self.reliance.rely_on(self.store, d))
    }
}

/// Hashes a file first, so that a blob already stored costs one read and no write. The same
/// descriptor is read again to store it (into `blobs`, durable at its commit): a path could
/// meanwhile name something else. `relied` says whether a digest is known to be stored.
pub(crate) fn hash_and_store(
    file: &mut std::fs::File,
    path: &RelPath,
    blobs: &dyn BlobBatch,
    relied: impl FnOnce(&Digest) -> std::io::Result<bool>,
) -> Result<(Digest, u64), PublishError> {
    use std::io::{Seek, SeekFrom};
    let read_err = |source| PublishError::Read { path: path.clone(), source };
    let (digest, size) = hash_file(file).map_err(read_err)?;
    if relied(&digest).map_err(read_err)? {
        return Ok((digest, size));
    }
    file.seek(SeekFrom::Start(0)).map_err(read_err)?;
    match blobs.put_deferred(file, Some(&digest), Some(size)) {
        Ok(out) => Ok(out),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn publish_with(store: &Store, dir: &Path, cache: &Path, in_memory_max: usize) -> PublishReport {
        let opts = PublishOptions { progress: &NoProgress, source: serde_json::Value::Null, always: true };
        let scanned = scan_tree_packed(dir).unwrap();
        let archive: ArchiveName = "a".parse().unwrap();
        let source = Scanned::Packed(&scanned);
        publish_scanned_since(Instant::now(), store, &archive, dir, source, &opts, Some(cache), in_memory_max).unwrap()
    }

    #[test]
    fn a_tree_staged_on_disk_commits_what_one_staged_in_memory_does() {
        let tree = tempfile::tempdir().unwrap();
        // More than one round, names whose byte order differs from the walk's ("p-x" < "p/").
        for i in 0..(ROUND + 100) {
            let dir = tree.path().join(format!("p{}", i % 3)).join(format!("d{}", i % 11));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(format!("f{i}")), format!("{}", i % 5000)).unwrap();
        }
        std::fs::write(tree.path().join("p-x"), "dash").unwrap();
        std::os::unix::fs::symlink("p0/d0/f0", tree.path().join("link")).unwrap();
        let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (memory, disk) = (Store::open_local(d1.path()).unwrap(), Store::open_local(d2.path()).unwrap());
        let a = publish_with(&memory, tree.path(), &d1.path().join("cache/c.bin"), usize::MAX);
        let b = publish_with(&disk, tree.path(), &d2.path().join("cache/c.bin"), 0);
        assert_eq!((b.files, b.added, b.new_blobs), ((ROUND + 102) as u64, (ROUND + 102) as u64, 5001));
        assert_eq!(
            (a.digest, a.files, a.bytes, a.new_blobs, a.new_bytes),
            (b.digest, b.files, b.bytes, b.new_blobs, b.new_bytes)
        );
        // Changed, added and removed files, the second time through the stat cache.
        std::fs::write(tree.path().join("p0/d0/f0"), "changed").unwrap();
        std::fs::write(tree.path().join("p1/new"), "new").unwrap();
        std::fs::remove_file(tree.path().join("p-x")).unwrap();
        let a = publish_with(&memory, tree.path(), &d1.path().join("cache/c.bin"), usize::MAX);
        let b = publish_with(&disk, tree.path(), &d2.path().join("cache/c.bin"), 0);
        assert_eq!((b.added, b.changed, b.removed, b.new_blobs), (1, 1, 1, 2));
        assert_eq!((a.digest, a.added, a.changed, a.removed), (b.digest, b.added, b.changed, b.removed));
    }
}
