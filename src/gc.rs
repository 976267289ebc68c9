//! Garbage collection of blobs that no snapshot references (`asof gc`, and on a schedule
//! in `serve`), only after a grace period since they became unreferenced.
//!
//! Safety rests on three checks, all needed: the candidate has been unreferenced for the
//! grace period (catalog), its bytes were not stored or claimed by a publisher within it
//! (`BlobStore::retire`), and nothing references it under the catalog's write lock, held
//! while the bytes are moved aside, so no commit can slip in between.

use std::fs::File;
use std::io;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::blob::RetiredBlob;
use crate::catalog::CatalogError;
use crate::domain::Digest;
use crate::store::Store;

/// The default grace period: a day, as the issue asks.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(24 * 3600);
/// Candidates read per catalog query.
const BATCH: u32 = 500;

#[derive(Debug, thiserror::Error)]
pub enum GcError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("blob store: {0}")]
    Blob(#[from] io::Error),
    #[error("another garbage collection is running (lock {0} is held); nothing done")]
    Busy(String),
}

/// What became of one candidate under the write lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A snapshot or a re-signed file references it again: no longer a candidate.
    Referenced,
    /// Uploaded, stored or claimed within the grace period: kept, asked again next run.
    RecentlyUsed,
    /// Row deleted; the bytes are to be discarded.
    Collected,
    /// No longer a due candidate (another run took it).
    Gone,
}

/// The catalog side of garbage collection (schema/0009_lifecycle.sql).
pub trait GcCatalog: Send + Sync + 'static {
    /// Due candidates (unreferenced since at or before `before`) after the cursor, in order.
    fn gc_due(&self, before: i64, after: Option<(i64, Digest)>, limit: u32)
    -> Result<Vec<(i64, Digest)>, CatalogError>;
    /// Whether a snapshot or re-signed file references `digest` (`Referenced`), or it was
    /// uploaded after `before` (`RecentlyUsed`); `Collected` when neither.
    fn gc_check(&self, digest: &Digest, before: i64) -> Result<Verdict, CatalogError>;
    /// In one write transaction: re-checks as `gc_check`, and when free calls `retire`
    /// (which moves the bytes aside, false if they were used lately) and deletes the row.
    fn gc_collect(
        &self,
        digest: &Digest,
        before: i64,
        retire: &mut dyn FnMut() -> io::Result<bool>,
    ) -> Result<Verdict, GcError>;
    /// Records `digest` as unreferenced since `now` unless it is referenced or known.
    fn gc_enqueue_if_unreferenced(&self, digest: &Digest, now: i64) -> Result<bool, CatalogError>;
}

#[derive(Debug, Clone, Copy)]
pub struct GcOptions {
    pub grace: Duration,
    pub dry_run: bool,
    /// Walk every stored blob first to find unreferenced ones nobody recorded (bytes of a
    /// publish killed before its commit). O(all blobs): an operator's choice, not scheduled.
    pub rescan: bool,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct GcReport {
    pub dry_run: bool,
    pub grace_secs: u64,
    /// Unreferenced blobs newly found by `--rescan`.
    pub enqueued: u64,
    /// Due candidates looked at.
    pub examined: u64,
    /// Blobs deleted (or, with `--dry-run`, that would be).
    pub freed_blobs: u64,
    pub freed_bytes: u64,
    /// Candidates found referenced again (dropped from the candidates).
    pub referenced: u64,
    /// Candidates kept because they were uploaded or used within the grace period.
    pub recently_used: u64,
}

/// A grace period as given: zero is refused, because a publish's claim on a blob is
/// honoured only while it is younger than the grace.
pub fn checked_grace(grace: Duration) -> anyhow::Result<Duration> {
    anyhow::ensure!(
        !grace.is_zero(),
        "the gc grace period must be above zero: a zero grace would collect blobs that publishes in flight have just claimed"
    );
    Ok(grace)
}

/// Runs one collection; `Busy` when another process or task holds the lock.
pub fn run(store: &Store, opts: GcOptions) -> Result<GcReport, GcError> {
    let lock_path = store.scratch.with_file_name("gc.lock");
    let _lock = lock(&lock_path)?;
    let now = chrono::Utc::now().timestamp();
    let before = now - opts.grace.as_secs() as i64;
    let mut report = GcReport { dry_run: opts.dry_run, grace_secs: opts.grace.as_secs(), ..Default::default() };
    if opts.rescan {
        rescan(store, now, &mut report)?;
    }
    let mut cursor = None;
    loop {
        let due = store.gc.gc_due(before, cursor, BATCH)?;
        let Some(last) = due.last() else { break };
        cursor = Some(*last);
        for (_, digest) in &due {
            report.examined += 1;
            let verdict = if opts.dry_run {
                dry_verdict(store, digest, before, opts.grace, &mut report.freed_bytes)?
            } else {
                collect(store, digest, before, opts.grace, &mut report.freed_bytes)?
            };
            match verdict {
                Verdict::Referenced => report.referenced += 1,
                Verdict::RecentlyUsed => report.recently_used += 1,
                Verdict::Collected => report.freed_blobs += 1,
                Verdict::Gone => {}
            }
        }
    }
    Ok(report)
}

/// The file lock that makes one run at a time; the kernel drops it when a holder dies.
fn lock(path: &Path) -> Result<File, GcError> {
    let f = File::options().create(true).truncate(false).write(true).open(path)?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(GcError::Busy(path.display().to_string())),
        Err(std::fs::TryLockError::Error(e)) => Err(e.into()),
    }
}

fn rescan(store: &Store, now: i64, report: &mut GcReport) -> Result<(), GcError> {
    let mut found = Vec::new();
    store.blobs.for_each(&mut |d| {
        found.push(d);
        Ok(())
    })?;
    for d in found {
        if store.gc.gc_enqueue_if_unreferenced(&d, now)? {
            report.enqueued += 1;
        }
    }
    Ok(())
}

fn collect(store: &Store, digest: &Digest, before: i64, grace: Duration, freed: &mut u64) -> Result<Verdict, GcError> {
    let mut retired: Option<Box<dyn RetiredBlob>> = None;
    let verdict = store.gc.gc_collect(digest, before, &mut || {
        retired = store.blobs.retire(digest, grace)?;
        // Absent bytes (deleted by a run killed after its commit): the row goes too.
        Ok(retired.is_some() || store.blobs.size(digest)?.is_none())
    })?;
    if let Some(r) = retired {
        if verdict == Verdict::Collected {
            *freed += r.size();
            r.discard()?;
        } else {
            r.restore()?;
        }
    }
    Ok(verdict)
}

/// What `collect` would decide now, changing nothing.
fn dry_verdict(
    store: &Store,
    digest: &Digest,
    before: i64,
    grace: Duration,
    freed: &mut u64,
) -> Result<Verdict, GcError> {
    let verdict = store.gc.gc_check(digest, before)?;
    if verdict != Verdict::Collected {
        return Ok(verdict);
    }
    Ok(match store.blobs.last_use(digest)? {
        Some((_, used)) if used > std::time::SystemTime::now() - grace => Verdict::RecentlyUsed,
        Some((size, _)) => {
            *freed += size;
            Verdict::Collected
        }
        None => Verdict::Collected,
    })
}

/// Collects every `interval` under `serve` (the first time one interval after start), on
/// the blocking pool; a run that finds another one working skips its turn.
pub fn schedule(store: Store, grace: Duration, interval: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let s = store.clone();
            let opts = GcOptions { grace, dry_run: false, rescan: false };
            match tokio::task::spawn_blocking(move || run(&s, opts)).await {
                Ok(Ok(r)) => tracing::info!(
                    freed_blobs = r.freed_blobs,
                    freed_bytes = r.freed_bytes,
                    examined = r.examined,
                    "garbage collection"
                ),
                Ok(Err(GcError::Busy(lock))) => {
                    tracing::info!(%lock, "garbage collection skipped: another one is running")
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "garbage collection failed; retrying at the next tick"),
                Err(e) => tracing::warn!(error = %e, "garbage collection panicked; retrying at the next tick"),
            }
        }
    });
}
