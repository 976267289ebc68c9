//! Scrub: re-hashes a rotating share of the referenced blobs (`asof verify --sample`, and
//! daily under `serve`), quarantines the ones found corrupt or missing, flags the
//! snapshots that use them, and fetches a mirrored archive's bytes again from upstream.
//!
//! Rotation: a run covers the next slice of the SHA-256 space after a persisted cursor,
//! as wide as its share. Digests are uniform, so a P% slice holds about P% of the blobs,
//! and 100/P consecutive runs cover the space once: every referenced blob, whenever it
//! was added, is verified within 100/P runs. A run reads only the blobs of its slice.

pub mod catalog;
pub mod config;
mod recover;
mod share;
pub mod web;

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

pub use catalog::{Damage, ProblemKind, Quarantined, ScrubCatalog, Selection};
pub use share::{Share, parse_since};

use crate::catalog::CatalogError;
use crate::domain::Digest;
use crate::metrics::Metrics;
use crate::store::Store;

/// Digests read per catalog query.
const BATCH: u32 = 500;
/// Seconds a client is told to wait for a quarantined file: the next scheduled run may
/// bring its bytes back from upstream, an operator may restore them sooner.
pub const RETRY_AFTER_SECS: u64 = 3600;

#[derive(Debug, thiserror::Error)]
pub enum ScrubError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("blob store: {0}")]
    Blob(#[from] io::Error),
    #[error("another scrub is running (lock {0} is held); nothing done")]
    Busy(String),
}

/// What a run verifies.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScrubOptions {
    /// The share of the hash space to cover, continuing the rotation; `None`: every
    /// referenced blob, and the rotation stays where it is.
    pub share: Option<Share>,
    /// Skip blobs verified at or after this Unix time.
    pub not_since: Option<i64>,
    /// Hash at most this many bytes per second.
    pub max_bytes_per_sec: Option<u64>,
}

/// A quarantine lifted by a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Restored {
    pub sha256: Digest,
    /// Where the good bytes came from: an upstream URL, or "the blob store" when they
    /// were put back by other means (a mirror run, an upload, an operator); or "no
    /// snapshot references it any more" (retention removed its snapshots).
    pub from: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ScrubReport {
    /// The share of the blobs this run covered, in percent (none: all of them).
    pub share_percent: Option<f64>,
    pub blobs_verified: u64,
    pub bytes_verified: u64,
    /// Blobs found corrupt or missing by this run, now quarantined.
    pub found: Vec<Quarantined>,
    pub restored: Vec<Restored>,
    /// Every blob still quarantined after the run.
    pub quarantined: Vec<Quarantined>,
}

/// One run: the slice, then the quarantined blobs (good bytes back? upstream?). `Busy`
/// when another run holds the lock.
pub async fn run(store: Store, opts: ScrubOptions, metrics: Option<Arc<Metrics>>) -> Result<ScrubReport, ScrubError> {
    let s = store.clone();
    let m = metrics.clone();
    let (lock, mut report) = blocking(move || {
        let Some(lock) = s.jobs.try_lock_job("scrub")? else {
            return Err(ScrubError::Busy(s.jobs.describe_job_lock("scrub")));
        };
        Ok((lock, sweep(&s, opts, m.as_deref())?))
    })
    .await?;
    for q in blocking({
        let s = store.clone();
        move || Ok(s.scrub.scrub_quarantined()?)
    })
    .await?
    {
        if let Some(r) = recover::recover(&store, &q).await? {
            if let Some(m) = metrics.as_ref().filter(|_| r.from != recover::NO_LONGER_REFERENCED) {
                m.scrub_restored.inc();
            }
            report.restored.push(r);
        }
    }
    let s = store.clone();
    report.quarantined = blocking(move || Ok(s.scrub.scrub_quarantined()?)).await?;
    if let Some(m) = &metrics {
        m.scrub_quarantined.set(report.quarantined.len() as i64);
        m.scrub_last_run.set(chrono::Utc::now().timestamp() as f64);
    }
    // Released on the blocking pool: it may be a round trip to the catalog.
    blocking(move || {
        drop(lock);
        Ok(())
    })
    .await?;
    Ok(report)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ScrubError> + Send + 'static,
) -> Result<T, ScrubError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| ScrubError::Blob(io::Error::other(e)))?
}

/// Hashes the chosen blobs, quarantines the bad ones, records the good ones, and moves
/// the rotation on. Blocking.
fn sweep(store: &Store, opts: ScrubOptions, metrics: Option<&Metrics>) -> Result<ScrubReport, ScrubError> {
    let mut report = ScrubReport { share_percent: opts.share.map(Share::percent), ..Default::default() };
    let (ranges, next) = match opts.share {
        Some(share) => {
            let (ranges, next) = share.slice(store.scrub.scrub_cursor()?.0);
            (ranges, Some(next))
        }
        None => (vec![(0, None)], None),
    };
    let mut hasher = Pacer::new(opts.max_bytes_per_sec);
    let now = chrono::Utc::now().timestamp();
    // Bytes a takedown purged on purpose are gone, not missing: never quarantined (and so
    // never fetched back from upstream).
    let purged = crate::takedown::purged_digests(store)?;
    for (from, to) in ranges {
        let mut after: Option<Digest> = None;
        loop {
            let sel = Selection { from, to, after: after.as_ref(), not_since: opts.not_since };
            let page = store.scrub.scrub_referenced(sel, BATCH)?;
            let Some(last) = page.last() else { break };
            after = Some(*last);
            let mut good = Vec::with_capacity(page.len());
            for digest in page.into_iter().filter(|d| !purged.contains_key(d)) {
                match check(store, &digest, &mut hasher, &mut report, metrics)? {
                    Verdict::Good => good.push(digest),
                    Verdict::Known => {}
                    Verdict::Found(found) => {
                        if let Some(m) = metrics {
                            m.scrub_problems.with_label_values(&[found.kind.as_str()]).inc();
                        }
                        report.found.push(found);
                    }
                }
            }
            store.scrub.scrub_mark_verified(&good, now)?;
        }
    }
    if let Some(next) = next {
        store.scrub.scrub_set_cursor(next, chrono::Utc::now().timestamp())?;
    }
    Ok(report)
}

/// What became of one blob of a slice.
enum Verdict {
    /// It hashes to its name.
    Good,
    /// Bad, and quarantined already (or no longer referenced): nothing new.
    Known,
    /// Bad, and quarantined now.
    Found(Quarantined),
}

/// Verifies one blob, quarantining it when bad.
fn check(
    store: &Store,
    digest: &Digest,
    pacer: &mut Pacer,
    report: &mut ScrubReport,
    metrics: Option<&Metrics>,
) -> Result<Verdict, ScrubError> {
    let mut blob = match store.blobs.blocking().open(digest) {
        Ok(Some(blob)) => blob,
        Ok(None) => {
            let location = store.blobs.blocking().describe(digest);
            return quarantine(store, digest, ProblemKind::Missing, &mut || {
                Ok(format!("no bytes in the blob store (expected at {location})"))
            });
        }
        // An open that fails (out of descriptors, permissions) says nothing about the
        // bytes: counted and left in place for the next round, never moved aside, and the
        // run goes on (one stuck blob must not stop the rotation).
        Err(e) => {
            tracing::warn!(sha256 = %digest, error = %e, "scrub could not open a blob; skipped");
            if let Some(m) = metrics {
                m.scrub_problems.with_label_values(&["unreadable"]).inc();
            }
            return Ok(Verdict::Known);
        }
    };
    let mut count = |n: usize| {
        report.bytes_verified += n as u64;
        if let Some(m) = metrics {
            m.scrub_verified_bytes.inc_by(n as u64);
        }
        pacer.pace(n);
    };
    let mut buf = vec![0u8; 256 * 1024];
    let hashed = crate::verify::hash_reader(&mut blob.reader, &mut buf, &mut count);
    drop(blob);
    report.blobs_verified += 1;
    if let Some(m) = metrics {
        m.scrub_verified_blobs.inc();
    }
    let found = match hashed {
        Ok(actual) if actual == *digest => return Ok(Verdict::Good),
        Ok(actual) => format!("content hashes to {actual}"),
        Err(e) => format!("unreadable: {e}"),
    };
    set_aside(store, digest, found)
}

/// Quarantines a corrupt blob, moving its bytes aside.
fn set_aside(store: &Store, digest: &Digest, found: String) -> Result<Verdict, ScrubError> {
    quarantine(store, digest, ProblemKind::Corrupt, &mut || {
        Ok(match store.blobs.blocking().quarantine(digest)? {
            Some(to) => format!("{found}; the bytes were moved to {to}"),
            None => format!("{found}; then the bytes were gone"),
        })
    })
}

fn quarantine(
    store: &Store,
    digest: &Digest,
    kind: ProblemKind,
    set_aside: &mut dyn FnMut() -> io::Result<String>,
) -> Result<Verdict, ScrubError> {
    if store.scrub.scrub_find(digest)?.is_some() {
        return Ok(Verdict::Known);
    }
    let found_at = chrono::Utc::now().timestamp();
    if !store.scrub.scrub_quarantine(digest, kind, found_at, set_aside)? {
        return Ok(Verdict::Known);
    }
    tracing::error!(sha256 = %digest, kind = kind.as_str(), "scrub quarantined a blob");
    Ok(store.scrub.scrub_find(digest)?.map_or(Verdict::Known, Verdict::Found))
}

/// Keeps hashing under a byte rate by sleeping the (blocking) thread when ahead.
struct Pacer {
    rate: Option<u64>,
    start: Instant,
    bytes: u64,
}

impl Pacer {
    fn new(rate: Option<u64>) -> Self {
        Self { rate, start: Instant::now(), bytes: 0 }
    }

    fn pace(&mut self, n: usize) {
        let Some(rate) = self.rate else { return };
        self.bytes += n as u64;
        let due = Duration::from_secs_f64(self.bytes as f64 / rate as f64);
        if let Some(ahead) = due.checked_sub(self.start.elapsed()) {
            std::thread::sleep(ahead);
        }
    }
}

/// How long after start the first scheduled run comes when no run ever moved the
/// rotation (at most): soon, but not in the rush of a start.
const FIRST_RUN: Duration = Duration::from_secs(300);

/// When the next run is due, from the last run that moved the rotation (by `serve` or
/// `asof verify --sample`): restarts do not put it off.
fn first_run(last: Option<i64>, interval: Duration, now: i64) -> Duration {
    match last {
        None => interval.min(FIRST_RUN),
        Some(at) => {
            let due = at.saturating_add(interval.as_secs().try_into().unwrap_or(i64::MAX));
            Duration::from_secs(due.saturating_sub(now).max(0) as u64).min(interval)
        }
    }
}

/// Scrubs every `interval` under `serve`, the first time when the last run (persisted)
/// says the next is due; a run that finds another one working skips its turn.
pub fn schedule(store: Store, opts: ScrubOptions, interval: Duration, metrics: Arc<Metrics>) {
    tokio::spawn(async move {
        let s = store.clone();
        let last = match blocking(move || Ok(s.scrub.scrub_cursor()?)).await {
            Ok((_, last)) => last,
            Err(e) => {
                tracing::warn!(error = %e, "scrub: cannot read when the last run was; the first run is one interval away");
                Some(chrono::Utc::now().timestamp())
            }
        };
        let start = tokio::time::Instant::now() + first_run(last, interval, chrono::Utc::now().timestamp());
        let mut tick = tokio::time::interval_at(start, interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match run(store.clone(), opts, Some(metrics.clone())).await {
                Ok(r) => tracing::info!(
                    blobs = r.blobs_verified,
                    bytes = r.bytes_verified,
                    found = r.found.len(),
                    restored = r.restored.len(),
                    quarantined = r.quarantined.len(),
                    "scrub"
                ),
                Err(ScrubError::Busy(lock)) => tracing::info!(%lock, "scrub skipped: another one is running"),
                Err(e) => tracing::warn!(error = %e, "scrub failed; retrying at the next tick"),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_scheduled_run_follows_the_last_one_across_restarts() {
        let day = Duration::from_secs(86400);
        assert_eq!(first_run(None, day, 1000), FIRST_RUN);
        assert_eq!(first_run(None, Duration::from_secs(2), 1000), Duration::from_secs(2));
        // The last run 20 h ago: the next one in 4 h, not a day after this start.
        assert_eq!(first_run(Some(1000), day, 1000 + 20 * 3600), Duration::from_secs(4 * 3600));
        assert_eq!(first_run(Some(1000), day, 1000 + 30 * 3600), Duration::ZERO, "overdue: at once");
        // A clock set back never puts it further off than one interval.
        assert_eq!(first_run(Some(1000 + 50 * 3600), day, 1000), day);
    }
}
