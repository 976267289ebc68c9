//! The request read path: the read view of an ID in one SQLite statement, a path's entry in
//! another, and both in one connection checkout and read transaction for a file request.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::sqlite::{bad, content_from_row};
use super::*;

/// Everything `ReadView` holds, in one row. One statement is one consistent read in WAL
/// mode, so the parts agree without a transaction. The floor is the latest snapshot at or
/// before ?2 (the latest itself when ?2 is past it). `first` is only looked up when nothing
/// floors ?2, and the deletion state only for an ID that is no kept snapshot (as in
/// `resolve_id`: only such an ID can name a deleted one, or come to name an older one).
const VIEW_SQL: &str = "SELECT seal.sealed_until, a.id, \
     l.seq, l.id, l.committed_at, l.digest, l.files, l.bytes, l.added, l.changed, l.removed, l.source, \
     f.seq, f.id, f.committed_at, f.digest, f.files, f.bytes, f.added, f.changed, f.removed, f.source, \
     CASE WHEN l.seq IS NOT NULL AND f.seq IS NULL THEN (SELECT MIN(id) FROM snapshots WHERE archive_id = a.id) END, \
     CASE WHEN l.id IS NULL OR l.id = ?2 OR f.id = ?2 THEN NULL \
          ELSE (SELECT deleted_at FROM deleted_snapshots WHERE archive_id = a.id AND id = ?2) END, \
     CASE WHEN l.id IS NULL OR l.id = ?2 OR f.id = ?2 THEN 0 \
          ELSE EXISTS (SELECT 1 FROM retention_policies WHERE archive_id = a.id) \
            OR EXISTS (SELECT 1 FROM deleted_snapshots WHERE archive_id = a.id) END \
     FROM seal \
     LEFT JOIN archives a ON a.name = ?1 \
     LEFT JOIN snapshots l ON l.archive_id = a.id \
         AND l.seq = (SELECT seq FROM snapshots WHERE archive_id = a.id ORDER BY id DESC LIMIT 1) \
     LEFT JOIN snapshots f ON f.archive_id = a.id \
         AND f.seq = (SELECT seq FROM snapshots WHERE archive_id = a.id AND id <= ?2 ORDER BY id DESC LIMIT 1) \
     WHERE seal.id = 1";

/// Columns of one snapshot in `VIEW_SQL`, from `seq` to `source`.
const SNAPSHOT_WIDTH: usize = 10;
const LATEST_AT: usize = 2;
const FLOOR_AT: usize = LATEST_AT + SNAPSHOT_WIDTH;
const FIRST_AT: usize = FLOOR_AT + SNAPSHOT_WIDTH;

/// The entry at ?2 visible in snapshot ?3, with when its content appeared there. An entry
/// started by a snapshot that retention deleted still says when it changed. The primary
/// key (archive_id, path, first_seq) covers the lookup: one B-tree descent.
const ENTRY_SQL: &str = "SELECT e.kind, e.size, e.sha256, e.target, COALESCE(s.id, d.id) \
     FROM entries e LEFT JOIN snapshots s ON s.archive_id = e.archive_id AND s.seq = e.first_seq \
     LEFT JOIN deleted_snapshots d ON d.archive_id = e.archive_id AND d.seq = e.first_seq \
     WHERE e.archive_id = ?1 AND e.path = ?2 AND e.first_seq <= ?3 AND (e.last_seq IS NULL OR e.last_seq > ?3) \
     ORDER BY e.first_seq DESC LIMIT 1";

/// The read view of `at` in `archive`, from one statement.
pub(super) fn read_view(conn: &Connection, archive: &ArchiveName, at: SnapshotId) -> Result<ReadView> {
    let mut stmt = conn.prepare_cached(VIEW_SQL)?;
    stmt.query_row(params![archive.as_str(), at.unix()], |r| Ok(view_from_row(r, archive, at)))?
}

fn view_from_row(r: &Row, archive: &ArchiveName, at: SnapshotId) -> Result<ReadView> {
    let sealed_until: i64 = r.get(0)?;
    let archive_id: Option<i64> = r.get(1)?;
    let snapshot = |col: usize| -> Result<Option<Snapshot>> {
        match (archive_id, r.get::<_, Option<i64>>(col)?) {
            (Some(archive_id), Some(seq)) => {
                snapshot_at(r, col, SnapshotKey { archive_id, seq: seq as u64 }, archive).map(Some)
            }
            _ => Ok(None),
        }
    };
    let latest = snapshot(LATEST_AT)?;
    // At or past the latest snapshot, the floor is the latest: no need to decode it twice.
    let floor_seq: Option<i64> = r.get(FLOOR_AT)?;
    let floor = match &latest {
        Some(l) if floor_seq == Some(l.key.seq as i64) => Some(l.clone()),
        _ => snapshot(FLOOR_AT)?,
    };
    let id = |v: Option<i64>| v.map(SnapshotId::from_unix).transpose().map_err(|e| bad(e.to_string()));
    let first = id(r.get(FIRST_AT)?)?;
    let deleted_at: Option<i64> = r.get(FIRST_AT + 1)?;
    let retention = deleted_at.is_some() || r.get::<_, bool>(FIRST_AT + 2)?;
    let deleted = deleted_at.map(|deleted_at| DeletedSnapshot { id: at, deleted_at });
    Ok(ReadView { archive_exists: archive_id.is_some(), latest, floor, first, sealed_until, deleted, retention })
}

/// The snapshot whose columns start at `at` in a `VIEW_SQL` row.
fn snapshot_at(r: &Row, at: usize, key: SnapshotKey, archive: &ArchiveName) -> Result<Snapshot> {
    let id: i64 = r.get(at + 1)?;
    let digest: Vec<u8> = r.get(at + 3)?;
    let source: String = r.get(at + 9)?;
    Ok(Snapshot {
        key,
        archive: archive.clone(),
        id: SnapshotId::from_unix(id).map_err(|e| bad(e.to_string()))?,
        committed_at_ms: r.get(at + 2)?,
        digest: Digest::from_slice(&digest).ok_or_else(|| bad("snapshot digest is not 32 bytes"))?,
        files: r.get::<_, i64>(at + 4)? as u64,
        bytes: r.get::<_, i64>(at + 5)? as u64,
        added: r.get::<_, i64>(at + 6)? as u64,
        changed: r.get::<_, i64>(at + 7)? as u64,
        removed: r.get::<_, i64>(at + 8)? as u64,
        source: serde_json::from_str(&source).unwrap_or(serde_json::Value::String(source)),
    })
}

/// The entry at `path` in snapshot `at`, without following symlinks.
pub(super) fn entry(conn: &Connection, at: SnapshotKey, path: &RelPath) -> Result<Option<Entry>> {
    let mut stmt = conn.prepare_cached(ENTRY_SQL)?;
    let row = stmt.query_row(params![at.archive_id, path.as_str(), at.seq as i64], |r| {
        Ok((content_from_row(r, 0)?, r.get::<_, i64>(4)?))
    });
    let Some((content, since)) = row.optional()? else { return Ok(None) };
    // The row matched the path exactly (binary collation): no need to parse it back.
    Ok(Some(Entry {
        path: path.clone(),
        content: content?,
        since: SnapshotId::from_unix(since).map_err(|e| bad(e.to_string()))?,
    }))
}

/// A file request's reads in one read transaction: the view, then the entry in the
/// snapshot the request is served from (see `Catalog::read_file`).
pub(super) fn read_file(
    conn: &Connection,
    archive: &ArchiveName,
    at: Option<SnapshotId>,
    path: &RelPath,
) -> Result<FileRead> {
    in_read_tx(conn, |c| {
        let view = read_view(c, archive, at.unwrap_or_else(SnapshotId::now))?;
        let served = match at {
            Some(at) => view.serves(at),
            None => view.latest.as_ref(),
        };
        let entry = match served {
            Some(s) => entry(c, s.key, path)?,
            None => None,
        };
        Ok(FileRead { view, entry })
    })
}

/// Runs `f` in one read transaction. BEGIN and COMMIT go through the statement cache: parsed
/// once per connection, not once per request as `Connection::transaction` does.
fn in_read_tx<T>(conn: &Connection, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
    conn.prepare_cached("BEGIN DEFERRED")?.execute([])?;
    let out = f(conn);
    let end = conn.prepare_cached(if out.is_ok() { "COMMIT" } else { "ROLLBACK" }).and_then(|mut s| s.execute([]));
    if end.is_err() && !conn.is_autocommit() {
        // Never hand a connection with an open transaction back to the pool.
        let _ = conn.execute_batch("ROLLBACK");
    }
    let out = out?;
    end?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Catalog, SqliteCatalog};
    use crate::manifest::ManifestEntry;
    use crate::retention::RetentionStore;

    fn file(byte: u8) -> Content {
        Content::File { size: 1, sha256: Digest::of(&[byte]) }
    }

    /// Commits `path` with content `byte`, stamped after `after` (the seal leaves a gap, so
    /// that IDs between snapshots exist).
    fn commit(catalog: &SqliteCatalog, archive: &ArchiveName, base_seq: u64, changes: Vec<Change>) -> SnapshotId {
        if let Some(latest) = catalog.latest(archive).unwrap() {
            catalog.seal(latest.id.unix() + 10).unwrap();
        }
        let plan = CommitPlan {
            base_seq,
            digest: Digest::of(&[base_seq as u8]),
            files: 1,
            bytes: 1,
            added: 0,
            changed: 0,
            removed: 0,
            source: serde_json::json!({"method": "test"}),
        };
        catalog.commit(archive, &plan, &changes).unwrap().id
    }

    fn upsert(path: &str, content: Content) -> Change {
        Change::Upsert(ManifestEntry { path: RelPath::new(path).unwrap(), content })
    }

    fn id(unix: i64) -> SnapshotId {
        SnapshotId::from_unix(unix).unwrap()
    }

    /// Three snapshots 11 s apart: `f` is 1, 2, 3; `only2` exists in the second only; the
    /// second is then deleted by retention.
    fn history() -> (tempfile::TempDir, SqliteCatalog, ArchiveName, [SnapshotId; 3]) {
        let dir = tempfile::tempdir().unwrap();
        let catalog = SqliteCatalog::open(&dir.path().join("asof.db"), super::super::Reads::Mapped).unwrap();
        let archive: ArchiveName = "a".parse().unwrap();
        let s1 = commit(&catalog, &archive, 0, vec![upsert("f", file(1))]);
        let s2 = commit(&catalog, &archive, 1, vec![upsert("f", file(2)), upsert("only2", file(9))]);
        let s3 =
            commit(&catalog, &archive, 2, vec![upsert("f", file(3)), Change::Remove(RelPath::new("only2").unwrap())]);
        (dir, catalog, archive, [s1, s2, s3])
    }

    fn content_at(
        catalog: &SqliteCatalog,
        archive: &ArchiveName,
        at: Option<SnapshotId>,
        path: &str,
    ) -> Option<Content> {
        catalog.read_file(archive, at, &RelPath::new(path).unwrap()).unwrap().entry.map(|e| e.content)
    }

    #[test]
    fn read_file_reads_the_entry_of_the_snapshot_an_id_is_served_from() {
        let (_dir, catalog, archive, [s1, s2, s3]) = history();
        let at = |unix| content_at(&catalog, &archive, Some(id(unix)), "f");
        assert_eq!(at(s1.unix() - 1), None, "before the first snapshot");
        assert_eq!(at(s1.unix()), Some(file(1)));
        assert_eq!(at(s2.unix() - 1), Some(file(1)), "between: the floor");
        assert_eq!(at(s2.unix()), Some(file(2)));
        assert_eq!(at(s3.unix()), Some(file(3)));
        assert_eq!(at(s3.unix() + 1_000_000), Some(file(3)), "past the latest");
        assert_eq!(content_at(&catalog, &archive, Some(s2), "only2"), Some(file(9)));
        assert_eq!(content_at(&catalog, &archive, Some(s3), "only2"), None, "removed in the third");
        assert_eq!(content_at(&catalog, &archive, None, "f"), Some(file(3)), "the live path");

        let read = catalog.read_file(&archive, Some(s2), &RelPath::new("f").unwrap()).unwrap();
        let entry = read.entry.unwrap();
        assert_eq!((entry.path.as_str(), entry.since), ("f", s2));
        assert_eq!(read.view.floor.map(|f| f.id), Some(s2));
        assert_eq!(read.view.latest.map(|l| l.id), Some(s3));
    }

    #[test]
    fn read_file_gives_the_view_read_view_gives_and_no_entry_for_a_deleted_snapshot() {
        let (_dir, catalog, archive, [s1, s2, s3]) = history();
        // As if the package index had read every snapshot: else retention keeps them.
        let conn = catalog.conn().unwrap();
        conn.execute("INSERT INTO package_index_state (archive_id, indexed_seq) VALUES (1, 3)", []).unwrap();
        drop(conn);
        assert!(matches!(
            catalog.delete_snapshot(&archive, s2, "test", s3.unix()).unwrap(),
            crate::retention::Deletion::Deleted(_)
        ));
        for unix in [s1.unix() - 1, s1.unix(), s2.unix() - 1, s2.unix(), s2.unix() + 1, s3.unix(), s3.unix() + 5] {
            let read = catalog.read_file(&archive, Some(id(unix)), &RelPath::new("f").unwrap()).unwrap();
            let view = catalog.read_view(&archive, id(unix)).unwrap();
            assert_eq!(format!("{:?}", read.view), format!("{view:?}"), "at {unix}");
        }
        let read = catalog.read_file(&archive, Some(s2), &RelPath::new("f").unwrap()).unwrap();
        assert_eq!(read.view.deleted.map(|d| (d.id, d.deleted_at)), Some((s2, s3.unix())));
        assert!(read.entry.is_none(), "a deleted snapshot serves nothing");
        // Between the first and the third, under retention: the first serves, still saying
        // since when.
        let read = catalog.read_file(&archive, Some(id(s2.unix() + 1)), &RelPath::new("f").unwrap()).unwrap();
        assert!(read.view.retention);
        assert_eq!(read.entry.map(|e| (e.content, e.since)), Some((file(1), s1)));
    }

    #[test]
    fn read_view_of_unknown_and_empty_archives() {
        let (_dir, catalog, _archive, [s1, ..]) = history();
        let other: ArchiveName = "other".parse().unwrap();
        let read = catalog.read_file(&other, Some(s1), &RelPath::new("f").unwrap()).unwrap();
        assert!(!read.view.archive_exists && read.view.latest.is_none() && read.entry.is_none());
        assert_eq!(read.view.sealed_until, catalog.seal(0).unwrap(), "the seal is read all the same");
    }

    #[test]
    fn a_failed_read_ends_its_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("t.db")).unwrap();
        let failed: Result<()> = in_read_tx(&conn, |c| {
            assert!(!c.is_autocommit(), "inside the transaction");
            Err(bad("boom"))
        });
        assert_eq!(failed.unwrap_err().to_string(), "metadata is inconsistent: boom");
        assert!(conn.is_autocommit(), "rolled back");
        assert_eq!(in_read_tx(&conn, |c| Ok(c.query_row("SELECT 7", [], |r| r.get::<_, i64>(0))?)).unwrap(), 7);
        assert!(conn.is_autocommit(), "committed");
    }
}
