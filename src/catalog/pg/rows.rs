//! Decoding PostgreSQL rows into catalog types; a stored value that does not decode is
//! `CatalogError::Corrupt`, never a panic.

use postgres::Row;

use crate::catalog::{ArchiveSummary, CatalogError, Entry, Result, Snapshot, SnapshotKey};
use crate::domain::{ArchiveName, Digest, RelPath, SnapshotId};
use crate::manifest::Content;

pub(super) fn bad(msg: impl Into<String>) -> CatalogError {
    CatalogError::Corrupt(msg.into())
}

pub(super) fn snapshot_id(unix: i64) -> Result<SnapshotId> {
    SnapshotId::from_unix(unix).map_err(|e| bad(e.to_string()))
}

fn archive_name(name: &str) -> Result<ArchiveName> {
    name.parse().map_err(|e| bad(format!("archive name {name:?}: {e}")))
}

fn digest(bytes: &[u8], what: &str) -> Result<Digest> {
    Digest::from_slice(bytes).ok_or_else(|| bad(format!("{what} digest is not 32 bytes")))
}

/// The columns `SNAPSHOT_COLUMNS` selects, from `at` on.
pub(super) const SNAPSHOT_COLUMNS: &str = "s.archive_id, s.seq, a.name, s.id, s.committed_at, s.digest, s.files, \
     s.bytes, s.added, s.changed, s.removed, s.source";

pub(super) fn snapshot(r: &Row) -> Result<Snapshot> {
    let name: &str = r.try_get(2)?;
    snapshot_of(r, 0, archive_name(name)?)
}

/// A snapshot whose columns (archive_id, seq, _, id, committed_at, digest, files, bytes,
/// added, changed, removed, source) start at `at`; the name is given.
pub(super) fn snapshot_of(r: &Row, at: usize, archive: ArchiveName) -> Result<Snapshot> {
    let source: String = r.try_get(at + 11)?;
    Ok(Snapshot {
        key: SnapshotKey { archive_id: r.try_get(at)?, seq: r.try_get::<_, i64>(at + 1)? as u64 },
        archive,
        id: snapshot_id(r.try_get(at + 3)?)?,
        committed_at_ms: r.try_get(at + 4)?,
        digest: digest(r.try_get(at + 5)?, "snapshot")?,
        files: r.try_get::<_, i64>(at + 6)? as u64,
        bytes: r.try_get::<_, i64>(at + 7)? as u64,
        added: r.try_get::<_, i64>(at + 8)? as u64,
        changed: r.try_get::<_, i64>(at + 9)? as u64,
        removed: r.try_get::<_, i64>(at + 10)? as u64,
        source: serde_json::from_str(&source).unwrap_or(serde_json::Value::String(source)),
    })
}

/// Content from (kind, size, sha256, target) starting at `at`.
pub(super) fn content(r: &Row, at: usize) -> Result<Content> {
    let kind: i16 = r.try_get(at)?;
    let size: i64 = r.try_get(at + 1)?;
    let sha: Option<&[u8]> = r.try_get(at + 2)?;
    let target: Option<String> = r.try_get(at + 3)?;
    match (kind, sha, target) {
        (0, Some(sha), _) => Ok(Content::File { size: size as u64, sha256: digest(sha, "entry")? }),
        (1, _, Some(target)) => Ok(Content::Symlink { target }),
        (2, _, _) => Ok(Content::Dir),
        (k, _, _) => Err(bad(format!("entry of kind {k} lacks its digest or target"))),
    }
}

/// The columns `entry` decodes, for `entries e` joined to the snapshot (or tombstone) that
/// started the row.
pub(super) const ENTRY_COLUMNS: &str = "e.path, e.kind, e.size, e.sha256, e.target, COALESCE(s.id, d.id)";
pub(super) const ENTRY_JOINS: &str = "entries e \
     LEFT JOIN snapshots s ON s.archive_id = e.archive_id AND s.seq = e.first_seq \
     LEFT JOIN deleted_snapshots d ON d.archive_id = e.archive_id AND d.seq = e.first_seq";

pub(super) fn entry(r: &Row) -> Result<Entry> {
    let path: &str = r.try_get(0)?;
    Ok(Entry {
        path: RelPath::new(path).map_err(|e| bad(format!("stored path {path:?}: {e}")))?,
        content: content(r, 1)?,
        since: snapshot_id(r.try_get(5)?)?,
    })
}

pub(super) fn summary(r: &Row) -> Result<ArchiveSummary> {
    let first: Option<i64> = r.try_get(2)?;
    let latest: Option<i64> = r.try_get(3)?;
    Ok(ArchiveSummary {
        name: archive_name(r.try_get(0)?)?,
        snapshots: r.try_get::<_, i64>(1)? as u64,
        first: first.map(snapshot_id).transpose()?,
        latest: latest.map(snapshot_id).transpose()?,
    })
}
