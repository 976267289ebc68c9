//! Garbage collection of blobs that no snapshot references (`asof gc`, and on a schedule
//! in `serve`), only after a grace period since they became unreferenced.
//!
//! Safety rests on three checks, all needed: the candidate has been unreferenced for the
//! grace period (catalog), its bytes were not stored or claimed by a publisher within it
//! (`BlobStore::retire`), and nothing references it under the catalog's write lock, held
//! while the bytes are moved aside, so no commit can slip in between. Publishers claim only
//! blobs that nothing references when they rely on them (`rely_on`): a referenced blob
//! cannot be collected until one grace period after its last reference goes.

use std::collections::HashSet;
use std::io;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::blob::RetiredBlob;
use crate::catalog::CatalogError;
use crate::domain::{ArchiveName, Digest};
use crate::store::Store;

/// The default grace period: a day, as the issue asks.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(24 * 3600);
/// Candidates read per catalog query.
const BATCH: u32 = 500;
/// Candidates collected per write transaction: few enough that the write lock is held for
/// milliseconds (one rename each), so commits waiting for it are delayed, not starved.
const COLLECT_BATCH: usize = 64;

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
    /// In one write transaction, for each of `batch`: re-checks as `gc_check`, and when
    /// free calls `retire` (which moves the bytes aside, false if they were used lately)
    /// and deletes the row. The verdicts, in the order of `batch`.
    fn gc_collect(
        &self,
        batch: &[Digest],
        before: i64,
        retire: &mut dyn FnMut(&Digest) -> io::Result<bool>,
    ) -> Result<Vec<Verdict>, GcError>;
    /// Records `digest` as unreferenced since `now` unless it is referenced or known.
    fn gc_enqueue_if_unreferenced(&self, digest: &Digest, now: i64) -> Result<bool, CatalogError>;
    /// Whether a snapshot or re-signed file references `digest` now.
    fn gc_referenced(&self, digest: &Digest) -> Result<bool, CatalogError>;
    /// Whether `digest` is a candidate (due or not).
    fn gc_is_candidate(&self, digest: &Digest) -> Result<bool, CatalogError>;
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
    /// Blobs a killed run had set aside in `blobs/gc/` and that were put back (still a
    /// candidate, or referenced). Those it had collected count in `freed_*`.
    pub restored: u64,
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

impl GcReport {
    fn count(&mut self, verdict: Verdict) {
        match verdict {
            Verdict::Referenced => self.referenced += 1,
            Verdict::RecentlyUsed => self.recently_used += 1,
            Verdict::Collected => self.freed_blobs += 1,
            Verdict::Gone => {}
        }
    }
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

/// Makes sure `digest` is stored, for a publisher about to reference it in a commit that
/// follows within the grace period; false when it is not stored (the caller stores it).
///
/// A blob that a snapshot or re-signed file references now is only looked at: it cannot
/// be collected while referenced, and when its last reference goes (retention) it becomes
/// a candidate unreferenced since that moment, due one grace period later. Any other blob
/// is claimed (its modification time set to now), which a collection honours for the
/// grace period; a claim that finds no file (collected meanwhile) answers false, and the
/// caller stores the bytes again. So a publish never pays a write for the unchanged files
/// that make most of each publish.
pub fn rely_on(store: &Store, digest: &Digest) -> io::Result<bool> {
    Ok(rely_on_sized(store, digest)?.is_some())
}

/// `rely_on`, with the stored size.
pub fn rely_on_sized(store: &Store, digest: &Digest) -> io::Result<Option<u64>> {
    if store.gc.gc_referenced(digest).map_err(io::Error::other)? {
        store.blobs.blocking().size(digest)
    } else {
        store.blobs.blocking().claim(digest)
    }
}

/// What a publish may rely on without a claim, a catalog query or a stat per file: the
/// blobs its archive's latest snapshot referenced when the publish started (`rely_on`'s
/// argument: referenced at that moment, so not collectable within one grace period of it).
///
/// Being referenced keeps a blob from gc, not from the two deliberate removals: a scrub
/// quarantine (bytes found bad, moved aside) and a takedown purge (bytes deleted). Both are
/// recorded in the catalog (`scrub_quarantine`, `takedown_purged`) and read here after the
/// manifest, so those blobs are left out of the set and go through `rely_on`, which looks
/// for the bytes (and a publish that has them stores them again, as before). The unchanged
/// files that make most of each publish then cost one binary search.
pub struct Reliance {
    /// Sorted, without duplicates (a vector: half the memory of a hash set).
    live: Vec<Digest>,
}

impl Reliance {
    /// Blocking. Reads the live manifest of `archive`'s latest snapshot once (none: empty;
    /// a snapshot committed meanwhile: empty too, every file then asks `rely_on`).
    pub fn of_latest(store: &Store, archive: &ArchiveName) -> Result<Self, CatalogError> {
        let mut live = Vec::new();
        if let Some(latest) = store.catalog.latest(archive)? {
            let found = store.catalog.for_each_live(archive, latest.key.seq, &mut |e| {
                live.extend(e.content.digest().copied());
                Ok(())
            });
            match found {
                Ok(()) => {}
                Err(CatalogError::Conflict { .. }) => live.clear(),
                Err(e) => return Err(e),
            }
        }
        live.sort_unstable();
        live.dedup();
        if !live.is_empty() {
            let gone: HashSet<Digest> = store
                .scrub
                .scrub_quarantined()?
                .into_iter()
                .map(|q| q.sha256)
                .chain(store.takedowns.purged()?.into_iter().map(|(d, _)| d))
                .collect();
            if !gone.is_empty() {
                live.retain(|d| !gone.contains(d));
            }
        }
        live.shrink_to_fit();
        Ok(Self { live })
    }

    /// `rely_on`, answered from the set when it can be.
    pub fn rely_on(&self, store: &Store, digest: &Digest) -> io::Result<bool> {
        if self.live.binary_search(digest).is_ok() { Ok(true) } else { rely_on(store, digest) }
    }
}

/// Runs one collection; `Busy` when another process or task holds the lock.
pub fn run(store: &Store, opts: GcOptions) -> Result<GcReport, GcError> {
    let Some(_lock) = store.jobs.try_lock_job("gc")? else {
        return Err(GcError::Busy(store.jobs.describe_job_lock("gc")));
    };
    let now = chrono::Utc::now().timestamp();
    let before = now - opts.grace.as_secs() as i64;
    let mut report = GcReport { dry_run: opts.dry_run, grace_secs: opts.grace.as_secs(), ..Default::default() };
    if !opts.dry_run {
        recover(store, &mut report)?;
    }
    if opts.rescan {
        rescan(store, now, &mut report)?;
    }
    let mut cursor = None;
    loop {
        let due = store.gc.gc_due(before, cursor, BATCH)?;
        let Some(last) = due.last() else { break };
        cursor = Some(*last);
        let digests: Vec<Digest> = due.iter().map(|(_, d)| *d).collect();
        report.examined += digests.len() as u64;
        for chunk in digests.chunks(COLLECT_BATCH) {
            if opts.dry_run {
                for digest in chunk {
                    let verdict = dry_verdict(store, digest, before, opts.grace, &mut report.freed_bytes)?;
                    report.count(verdict);
                }
            } else {
                collect(store, chunk, before, opts.grace, &mut report)?;
            }
        }
    }
    Ok(report)
}

/// Resolves the blobs a killed run left set aside; only under the gc lock, since a live
/// run's blobs set aside are its own. A blob still a candidate (its run did not commit) or
/// referenced goes back; one whose row is gone and that nothing references was collected
/// by a committed run, and goes.
fn recover(store: &Store, report: &mut GcReport) -> Result<(), GcError> {
    for (digest, blob) in store.blobs.blocking().left_aside()? {
        if store.gc.gc_is_candidate(&digest)? || store.gc.gc_referenced(&digest)? {
            blob.restore()?;
            report.restored += 1;
        } else {
            report.freed_blobs += 1;
            report.freed_bytes += blob.size();
            blob.discard()?;
        }
    }
    Ok(())
}

fn rescan(store: &Store, now: i64, report: &mut GcReport) -> Result<(), GcError> {
    let mut found = Vec::new();
    store.blobs.blocking().for_each(&mut |d| {
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

/// One write transaction over `batch`; the bytes collected are deleted after its commit
/// (the row before the bytes, never the reverse). Then waits as long as the lock was held,
/// so that a commit waiting for the write lock finds it free.
fn collect(
    store: &Store,
    batch: &[Digest],
    before: i64,
    grace: Duration,
    report: &mut GcReport,
) -> Result<(), GcError> {
    let mut retired: Vec<(Digest, Box<dyn RetiredBlob>)> = Vec::new();
    let started = Instant::now();
    let verdicts = store.gc.gc_collect(batch, before, &mut |digest| {
        let r = store.blobs.blocking().retire(digest, grace)?;
        // Absent bytes (deleted by a run killed after its commit): the row goes too.
        let free = r.is_some() || store.blobs.blocking().size(digest)?.is_none();
        retired.extend(r.map(|r| (*digest, r)));
        Ok(free)
    })?;
    let held = started.elapsed();
    // Every retired blob is settled even if one fails: one left to its Drop would be put
    // back with its candidate row already gone (an orphan until --rescan).
    let mut first_error = None;
    for (digest, blob) in retired {
        let verdict = batch.iter().zip(&verdicts).find(|(d, _)| **d == digest).map(|(_, v)| *v);
        let size = blob.size();
        let settled = if verdict == Some(Verdict::Collected) { blob.discard() } else { blob.restore() };
        match settled {
            Ok(()) if verdict == Some(Verdict::Collected) => report.freed_bytes += size,
            Ok(()) => {}
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e.into());
    }
    verdicts.into_iter().for_each(|v| report.count(v));
    std::thread::sleep(held);
    Ok(())
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
    Ok(match store.blobs.blocking().last_use(digest)? {
        Some((_, used)) if used > std::time::SystemTime::now() - grace => Verdict::RecentlyUsed,
        Some((size, _)) => {
            *freed += size;
            Verdict::Collected
        }
        None => Verdict::Collected,
    })
}

/// Collects every `interval` under `serve` (the first time one interval after start); a
/// run that finds another one working skips its turn.
pub fn schedule(store: Store, grace: Duration, interval: Duration) {
    crate::background::every_after("garbage collection", interval, interval, store, move |s| {
        match run(s, GcOptions { grace, dry_run: false, rescan: false }) {
            Ok(r) => tracing::info!(
                freed_blobs = r.freed_blobs,
                freed_bytes = r.freed_bytes,
                examined = r.examined,
                "garbage collection"
            ),
            Err(GcError::Busy(lock)) => tracing::info!(%lock, "garbage collection skipped: another one is running"),
            Err(e) => tracing::warn!(error = %e, "garbage collection failed; retrying at the next tick"),
        }
    });
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use std::sync::{Arc, Mutex};

    use super::*;

    /// The SQLite catalog, recording the size of every `gc_collect` batch.
    struct Counting {
        inner: Arc<dyn GcCatalog>,
        batches: Arc<Mutex<Vec<usize>>>,
    }

    impl GcCatalog for Counting {
        fn gc_due(
            &self,
            before: i64,
            after: Option<(i64, Digest)>,
            limit: u32,
        ) -> Result<Vec<(i64, Digest)>, CatalogError> {
            self.inner.gc_due(before, after, limit)
        }
        fn gc_check(&self, digest: &Digest, before: i64) -> Result<Verdict, CatalogError> {
            self.inner.gc_check(digest, before)
        }
        fn gc_collect(
            &self,
            batch: &[Digest],
            before: i64,
            retire: &mut dyn FnMut(&Digest) -> io::Result<bool>,
        ) -> Result<Vec<Verdict>, GcError> {
            self.batches.lock().unwrap().push(batch.len());
            self.inner.gc_collect(batch, before, retire)
        }
        fn gc_enqueue_if_unreferenced(&self, digest: &Digest, now: i64) -> Result<bool, CatalogError> {
            self.inner.gc_enqueue_if_unreferenced(digest, now)
        }
        fn gc_referenced(&self, digest: &Digest) -> Result<bool, CatalogError> {
            self.inner.gc_referenced(digest)
        }
        fn gc_is_candidate(&self, digest: &Digest) -> Result<bool, CatalogError> {
            self.inner.gc_is_candidate(digest)
        }
    }

    #[test]
    fn candidates_are_collected_in_write_transactions_of_64() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open_local(dir.path()).unwrap();
        let batches = Arc::new(Mutex::new(Vec::new()));
        store.gc = Arc::new(Counting { inner: store.gc.clone(), batches: batches.clone() });
        let old = filetime::FileTime::from_system_time(std::time::SystemTime::now() - 2 * DEFAULT_GRACE);
        let long_ago = chrono::Utc::now().timestamp() - 2 * DEFAULT_GRACE.as_secs() as i64;
        for i in 0..150u32 {
            let out = store.blobs.blocking().put(&mut &i.to_le_bytes()[..], None, None).unwrap();
            let path = dir.path().join("blobs/sha256").join(&out.digest.hex()[..2]).join(&out.digest.hex()[2..4]);
            filetime::set_file_mtime(path.join(out.digest.hex()), old).unwrap();
            assert!(store.gc.gc_enqueue_if_unreferenced(&out.digest, long_ago).unwrap());
        }
        let report = run(&store, GcOptions { grace: DEFAULT_GRACE, dry_run: false, rescan: false }).unwrap();
        assert_eq!((report.examined, report.freed_blobs, report.freed_bytes), (150, 150, 600));
        assert_eq!(*batches.lock().unwrap(), vec![64, 64, 22]);
    }

    /// Candidates without bytes (cheap to collect), due since long ago.
    fn many_candidates(dir: &Path, n: u32) {
        let db = rusqlite::Connection::open(dir.join("asof.db")).unwrap();
        let tx = db.unchecked_transaction().unwrap();
        for i in 0..n {
            let d = Digest::of(&i.to_le_bytes());
            tx.execute("INSERT INTO gc_candidates (sha256, since) VALUES (?1, 0)", [&d.as_bytes()[..]]).unwrap();
        }
        tx.commit().unwrap();
    }

    #[test]
    fn a_commit_waiting_for_the_write_lock_gets_it_while_a_long_collection_runs() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_local(dir.path()).unwrap();
        many_candidates(dir.path(), 30_000);
        let gc_store = store.clone();
        let gc = std::thread::spawn(move || {
            let report = run(&gc_store, GcOptions { grace: DEFAULT_GRACE, dry_run: false, rescan: false }).unwrap();
            (report.freed_blobs, Instant::now())
        });
        std::thread::sleep(Duration::from_millis(200));
        let file = crate::manifest::Content::File { size: 1, sha256: Digest::of(b"x") };
        let manifest =
            vec![crate::manifest::ManifestEntry { path: crate::domain::RelPath::new("a").unwrap(), content: file }];
        let opts = crate::publish::PublishOptions {
            progress: &crate::publish::NoProgress,
            source: serde_json::Value::Null,
            always: true,
        };
        crate::publish::commit_manifest(&store, &"deb".parse().unwrap(), manifest, &opts).unwrap();
        let committed = Instant::now();
        let (freed, finished) = gc.join().unwrap();
        assert_eq!(freed, 30_000);
        assert!(committed < finished, "the commit waited for the whole collection");
    }

    #[test]
    fn reliance_trusts_the_live_manifest_without_a_stat_except_quarantined_or_purged_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_local(dir.path()).unwrap();
        let archive: ArchiveName = "deb".parse().unwrap();
        let tree = tempfile::tempdir().unwrap();
        for name in ["kept", "removed", "bad", "purged"] {
            std::fs::write(tree.path().join(name), name).unwrap();
        }
        let opts = crate::publish::PublishOptions {
            progress: &crate::publish::NoProgress,
            source: serde_json::Value::Null,
            always: true,
        };
        crate::publish::publish_dir(&store, &archive, tree.path(), &opts).unwrap();
        let [kept, removed, bad, purged] = ["kept", "removed", "bad", "purged"].map(|n| Digest::of(n.as_bytes()));
        let quarantined = store
            .scrub
            .scrub_quarantine(&bad, crate::scrub::ProblemKind::Corrupt, 0, &mut || {
                store.blobs.blocking().quarantine(&bad).map(|w| w.expect("stored"))
            })
            .unwrap();
        assert!(quarantined);
        let takedown = crate::takedown::TakedownRequest {
            target: crate::takedown::Target::Sha256(purged),
            status: crate::takedown::Status::Gone,
            reason: "test".into(),
            purge: true,
        };
        crate::takedown::take_down(&store, &takedown, "test", 0).unwrap();
        let reliance = Reliance::of_latest(&store, &archive).unwrap();
        // Deleted behind the catalog's back after the set was read: trusted without a look,
        // which is the stat this set saves (gc never takes a referenced blob).
        store.blobs.blocking().remove(&removed).unwrap();
        assert!(reliance.rely_on(&store, &kept).unwrap());
        assert!(reliance.rely_on(&store, &removed).unwrap());
        // Quarantined and purged bytes are looked for, and are not there.
        assert!(!reliance.rely_on(&store, &bad).unwrap());
        assert!(!reliance.rely_on(&store, &purged).unwrap());
        // So a publish that has those bytes stores them again.
        let report = crate::publish::publish_dir(&store, &archive, tree.path(), &opts).unwrap();
        assert_eq!((report.new_blobs, report.new_bytes), (2, 9));
        assert_eq!(store.blobs.blocking().size(&bad).unwrap(), Some(3));
        assert_eq!(store.blobs.blocking().size(&purged).unwrap(), Some(6));
        assert_eq!(store.blobs.blocking().size(&removed).unwrap(), None);
    }
}
