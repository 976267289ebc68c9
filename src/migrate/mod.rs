//! `asof migrate`: an embedded store (a data directory's `asof.db` and `blobs/`) copied into
//! PostgreSQL and object storage. Blobs go first, each hashed on its way in, so that no
//! snapshot ever appears in the destination before its bytes; then the catalog, in one
//! transaction; then every blob the new catalog references is looked up in the new store.
//! Run again after an interruption, it skips the blobs already there and finds the catalog
//! either absent (copies it) or already copied.

pub mod tables;

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, bail};
use rayon::prelude::*;

use crate::blob::{BlockingBlobs, LocalBlobStore, PutError};
use crate::catalog::Reads;
use crate::domain::Digest;
use crate::store::{Location, Store};

/// Blobs per task of the worker threads: few enough that every thread has work (and a
/// network store's requests stay in flight) until the end.
const BATCH: usize = 16;

#[derive(Debug, Default)]
pub struct MigrateReport {
    pub blobs_copied: u64,
    pub bytes_copied: u64,
    pub blobs_present: u64,
    /// Rows per table now in the destination catalog.
    pub rows: tables::RowCounts,
    /// True when an earlier run had copied the catalog already.
    pub catalog_was_there: bool,
    /// Referenced blobs found in the destination with their recorded size.
    pub references_checked: u64,
}

/// Copies the embedded store in `from` to `to` (whose catalog must be PostgreSQL);
/// `progress` shows the blob phase.
pub fn migrate(from: &Path, to: &Location, progress: &indicatif::ProgressBar) -> anyhow::Result<MigrateReport> {
    let Some(catalog_url) = to.catalog.as_deref() else {
        bail!("--to-catalog is required: the PostgreSQL catalog to copy into (postgres://user@host/db)");
    };
    let (source_db, source_blobs) = open_source(from)?;
    let dest = Store::open(to, Reads::Buffered).context("opening the destination")?;
    let mut report = MigrateReport::default();
    copy_blobs(&source_blobs, dest.blobs.blocking(), progress, &mut report)?;
    let mut pg = postgres::Client::connect(catalog_url, postgres::NoTls)
        .map_err(|e| anyhow::anyhow!("connecting to the destination catalog: {e}"))?;
    match tables::copy(&source_db, &mut pg)? {
        tables::Copied::Now(rows) => report.rows = rows,
        tables::Copied::Already(rows) => (report.rows, report.catalog_was_there) = (rows, true),
    }
    report.references_checked = check_references(&mut pg, dest.blobs.blocking())?;
    carry_label_key(from, &mut pg)?;
    Ok(report)
}

/// The source's catalog file and blob store, refusing a directory that is not one.
fn open_source(from: &Path) -> anyhow::Result<(std::path::PathBuf, LocalBlobStore)> {
    let db = crate::store::db_path(from);
    if !db.is_file() {
        bail!("{} holds no embedded catalog ({} is missing)", from.display(), db.display());
    }
    let blobs_dir = from.join("blobs");
    if !blobs_dir.is_dir() {
        bail!("{} holds no blob store ({} is missing)", from.display(), blobs_dir.display());
    }
    let blobs = LocalBlobStore::open(&blobs_dir).with_context(|| format!("opening {}", blobs_dir.display()))?;
    Ok((db, blobs))
}

fn copy_blobs(
    src: &LocalBlobStore,
    dst: &dyn BlockingBlobs,
    progress: &indicatif::ProgressBar,
    report: &mut MigrateReport,
) -> anyhow::Result<()> {
    // One walk of the blob tree gives both the bar's length and the work (32 bytes a blob).
    let mut digests = Vec::new();
    src.for_each(&mut |d| {
        digests.push(d);
        Ok(())
    })?;
    progress.set_length(digests.len() as u64);
    let (copied, bytes, present) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
    digests.par_chunks(BATCH).try_for_each(|batch| {
        batch.iter().try_for_each(|d| {
            match copy_one(src, dst, d)? {
                Some(size) => {
                    copied.fetch_add(1, Ordering::Relaxed);
                    bytes.fetch_add(size, Ordering::Relaxed);
                }
                None => _ = present.fetch_add(1, Ordering::Relaxed),
            }
            progress.inc(1);
            progress.set_message(indicatif::HumanBytes(bytes.load(Ordering::Relaxed)).to_string());
            Ok::<_, io::Error>(())
        })
    })?;
    progress.finish_and_clear();
    (report.blobs_copied, report.bytes_copied, report.blobs_present) =
        (copied.into_inner(), bytes.into_inner(), present.into_inner());
    Ok(())
}

/// Copies one blob unless the destination has it; the bytes copied, or `None`.
fn copy_one(src: &LocalBlobStore, dst: &dyn BlockingBlobs, d: &Digest) -> io::Result<Option<u64>> {
    let Some(mut blob) = src.open(d)? else { return Ok(None) };
    match dst.size(d)? {
        Some(n) if n == blob.len => return Ok(None),
        Some(n) => {
            return Err(io::Error::other(format!(
                "{} holds {n} bytes, but blob {d} has {} in the source; remove it and run again",
                dst.describe(d),
                blob.len
            )));
        }
        None => {}
    }
    dst.put(&mut blob.reader, Some(d), Some(blob.len)).map_err(|e| match e {
        PutError::Io(e) => e,
        bad => io::Error::other(format!("{} in the source: {bad} (run `asof scrub` on it)", src.describe(d))),
    })?;
    Ok(Some(blob.len))
}

/// Every blob the destination catalog references, looked up in the destination store.
fn check_references(pg: &mut postgres::Client, dst: &dyn BlockingBlobs) -> anyhow::Result<u64> {
    let rows = pg.query("SELECT sha256, max(size) FROM blob_archives GROUP BY sha256", &[])?;
    let refs: Vec<(Digest, i64)> = rows
        .iter()
        .map(|r| {
            let raw: Vec<u8> = r.get(0);
            let digest = Digest::from_slice(&raw).context("a digest of blob_archives is not 32 bytes")?;
            Ok((digest, r.get(1)))
        })
        .collect::<anyhow::Result<_>>()?;
    refs.par_iter().try_for_each(|(d, size)| match dst.size(d)? {
        Some(n) if n as i64 == *size || *size == 0 => Ok(()),
        Some(n) => bail!("{} holds {n} bytes; the catalog says {size}", dst.describe(d)),
        None => bail!("blob {d} is referenced but missing from the destination ({})", dst.describe(d)),
    })?;
    Ok(refs.len() as u64)
}

/// The metrics labels of private archives stay as they were (`metrics::archive_label`):
/// the source's `label.key` becomes the catalog's.
fn carry_label_key(from: &Path, pg: &mut postgres::Client) -> anyhow::Result<()> {
    let path = from.join("label.key");
    let key = match std::fs::read(&path) {
        Ok(k) if k.len() == 32 => k,
        Ok(k) => bail!("{} has {} bytes, not 32", path.display(), k.len()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    pg.execute(
        "INSERT INTO installation (id, label_key) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET label_key = EXCLUDED.label_key",
        &[&key],
    )?;
    Ok(())
}
