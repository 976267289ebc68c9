//! The embedded catalog: SQLite in WAL mode behind an r2d2 connection pool.

use std::path::Path;
use std::time::Duration;

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{OptionalExtension, Row, TransactionBehavior, params};

use super::rules::parent_hash;
use super::*;

pub struct SqliteCatalog {
    pool: r2d2::Pool<SqliteConnectionManager>,
}

// Macros rather than consts so that hot queries (floors, listings, by-hash) are string
// literals (`concat!`): building the SQL with format! on every request showed up in the
// lookup benchmark. The request read path itself is in sqlite_read.rs.
macro_rules! snapshot_columns {
    () => {
        "s.archive_id, s.seq, a.name, s.id, s.committed_at, s.digest, s.files, s.bytes, \
         s.added, s.changed, s.removed, s.source"
    };
}
macro_rules! entry_columns {
    () => {
        // An entry started by a snapshot that retention deleted still says when it changed.
        "e.path, e.kind, e.size, e.sha256, e.target, COALESCE(s.id, d.id)"
    };
}
const SNAPSHOT_COLUMNS: &str = snapshot_columns!();
const ENTRY_COLUMNS: &str = entry_columns!();
/// An entry row is visible in snapshot ?3 when its interval covers it.
macro_rules! visible_at {
    () => {
        "e.first_seq <= ?3 AND (e.last_seq IS NULL OR e.last_seq > ?3)"
    };
}

/// Prepared statements kept per connection (rusqlite's default is 16).
const STATEMENT_CACHE: usize = 128;

/// How a process reads the database file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reads {
    /// `pread` into each connection's own small page cache: for commands, whose resident
    /// set then stays small however large the catalog (a publish streams the whole live
    /// manifest once; through a map, every page it read stayed resident, 400 MB at 600,000
    /// files).
    Buffered,
    /// Through a shared memory map (up to 1 GiB): for the server, whose many small lookups
    /// then cost no syscall and no copy for a page already in the OS page cache, whichever
    /// pooled connection asks. Safe with WAL: SQLite maps the file read only and still
    /// writes with `write`; a reader looks a page up in the WAL index before the file, and a
    /// checkpoint never overwrites a page of the file that a reader's snapshot still needs
    /// from it, so the map shows exactly what `pread` would. Mapped pages count as shared
    /// file-backed memory, which the kernel reclaims like any page cache.
    Mapped,
}

impl Reads {
    fn pragmas(self) -> &'static str {
        match self {
            Reads::Buffered => "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
            Reads::Mapped => "PRAGMA mmap_size = 1073741824; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
        }
    }
}

impl SqliteCatalog {
    pub fn open(path: &Path, reads: Reads) -> Result<Self> {
        {
            // The journal mode is a property of the database file: set it once, alone,
            // before pooled connections open concurrently. WAL lets readers run beside a
            // publish.
            let setup = rusqlite::Connection::open(path)?;
            setup.busy_timeout(Duration::from_secs(30))?;
            setup.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
        }
        let manager = SqliteConnectionManager::file(path).with_init(move |c| {
            c.busy_timeout(Duration::from_secs(30))?;
            // Room for every hot statement of the request path and of the other modules.
            c.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
            // FULL makes every commit durable before it is acknowledged.
            c.execute_batch(reads.pragmas())
        });
        let pool = r2d2::Pool::builder()
            .max_size(16)
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(30))
            .build(manager)?;
        migrations::apply(&mut *pool.get()?)?;
        Ok(Self { pool })
    }

    pub(super) fn conn(&self) -> Result<r2d2::PooledConnection<SqliteConnectionManager>> {
        Ok(self.pool.get()?)
    }
}

/// Whether the archive has a retention policy or has had snapshots deleted.
pub(super) fn under_retention(conn: &rusqlite::Connection, archive_id: i64) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM retention_policies WHERE archive_id = ?1) \
             OR EXISTS (SELECT 1 FROM deleted_snapshots WHERE archive_id = ?1)",
        )?
        .query_row([archive_id], |r| r.get::<_, bool>(0))?)
}

impl From<rusqlite::Error> for CatalogError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DiskFull) => CatalogError::DiskFull(e.to_string()),
            _ => CatalogError::Backend(e.to_string()),
        }
    }
}

pub(super) fn bad(msg: impl Into<String>) -> CatalogError {
    CatalogError::Corrupt(msg.into())
}

fn snapshot_from_row(r: &Row) -> rusqlite::Result<Result<Snapshot>> {
    let name: String = r.get(2)?;
    let id: i64 = r.get(3)?;
    let digest: Vec<u8> = r.get(5)?;
    let source: String = r.get(11)?;
    let parsed = (|| {
        Ok(Snapshot {
            key: SnapshotKey { archive_id: r.get(0)?, seq: r.get::<_, i64>(1)? as u64 },
            archive: name.parse().map_err(|e| bad(format!("archive name {name:?}: {e}")))?,
            id: SnapshotId::from_unix(id).map_err(|e| bad(e.to_string()))?,
            committed_at_ms: r.get(4)?,
            digest: Digest::from_slice(&digest).ok_or_else(|| bad("snapshot digest is not 32 bytes"))?,
            files: r.get::<_, i64>(6)? as u64,
            bytes: r.get::<_, i64>(7)? as u64,
            added: r.get::<_, i64>(8)? as u64,
            changed: r.get::<_, i64>(9)? as u64,
            removed: r.get::<_, i64>(10)? as u64,
            source: serde_json::from_str(&source).unwrap_or(serde_json::Value::String(source.clone())),
        })
    })();
    Ok(parsed)
}

pub(super) fn content_from_row(r: &Row, kind_col: usize) -> rusqlite::Result<Result<Content>> {
    let kind: i64 = r.get(kind_col)?;
    let size: i64 = r.get(kind_col + 1)?;
    let sha: Option<Vec<u8>> = r.get(kind_col + 2)?;
    let target: Option<String> = r.get(kind_col + 3)?;
    Ok(match (kind, sha, target) {
        (0, Some(sha), _) => Digest::from_slice(&sha)
            .map(|sha256| Content::File { size: size as u64, sha256 })
            .ok_or_else(|| bad("entry digest is not 32 bytes")),
        (1, _, Some(target)) => Ok(Content::Symlink { target }),
        (2, _, _) => Ok(Content::Dir),
        (k, _, _) => Err(bad(format!("entry of kind {k} lacks its digest or target"))),
    })
}

fn entry_from_row(r: &Row) -> rusqlite::Result<Result<Entry>> {
    let path: String = r.get(0)?;
    let since: i64 = r.get(5)?;
    let content = content_from_row(r, 1)?;
    Ok((|| {
        Ok(Entry {
            path: RelPath::new(&path).map_err(|e| bad(format!("stored path {path:?}: {e}")))?,
            content: content?,
            since: SnapshotId::from_unix(since).map_err(|e| bad(e.to_string()))?,
        })
    })())
}

fn collect<T>(rows: impl Iterator<Item = rusqlite::Result<Result<T>>>) -> Result<Vec<T>> {
    rows.map(|r| r?).collect()
}

fn summary_from_row(r: &Row) -> rusqlite::Result<Result<ArchiveSummary>> {
    let name: String = r.get(0)?;
    let count: i64 = r.get(1)?;
    let first: Option<i64> = r.get(2)?;
    let latest: Option<i64> = r.get(3)?;
    Ok((|| {
        let id = |v: Option<i64>| v.map(SnapshotId::from_unix).transpose().map_err(|e| bad(e.to_string()));
        Ok(ArchiveSummary {
            name: name.parse().map_err(|e| bad(format!("archive name {name:?}: {e}")))?,
            snapshots: count as u64,
            first: id(first)?,
            latest: id(latest)?,
        })
    })())
}

const SUMMARY_SQL: &str = "SELECT a.name, COUNT(s.seq), MIN(s.id), MAX(s.id) \
     FROM archives a LEFT JOIN snapshots s ON s.archive_id = a.id";

impl Catalog for SqliteCatalog {
    fn archives(&self) -> Result<Vec<ArchiveSummary>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&format!("{SUMMARY_SQL} GROUP BY a.id ORDER BY a.name"))?;
        collect(stmt.query_map([], summary_from_row)?)
    }

    fn archive(&self, name: &ArchiveName) -> Result<Option<ArchiveSummary>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&format!("{SUMMARY_SQL} WHERE a.name = ?1 GROUP BY a.id"))?;
        stmt.query_row([name.as_str()], summary_from_row).optional()?.transpose()
    }

    fn ping(&self) -> Result<()> {
        self.conn()?.query_row("SELECT 1", [], |_| Ok(()))?;
        Ok(())
    }

    fn snapshots(&self, archive: &ArchiveName, q: &SnapshotQuery) -> Result<Vec<Snapshot>> {
        let conn = self.conn()?;
        let (cmp, order) = if q.descending { ("<", "DESC") } else { (">", "ASC") };
        let sql = format!(
            "SELECT {SNAPSHOT_COLUMNS} FROM snapshots s JOIN archives a ON a.id = s.archive_id \
             WHERE a.name = ?1 AND s.id >= ?2 AND s.id <= ?3 AND (?4 IS NULL OR s.id {cmp} ?4) \
             ORDER BY s.id {order} LIMIT ?5"
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(
            params![
                archive.as_str(),
                q.since.map_or(i64::MIN, SnapshotId::unix),
                q.until.map_or(i64::MAX, SnapshotId::unix),
                q.after.map(SnapshotId::unix),
                if q.limit == 0 { -1 } else { i64::from(q.limit) },
            ],
            snapshot_from_row,
        )?;
        collect(rows)
    }

    fn resolve(&self, archive: &ArchiveName, at: SnapshotId) -> Result<Option<Snapshot>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(concat!(
            "SELECT ",
            snapshot_columns!(),
            " FROM snapshots s JOIN archives a ON a.id = s.archive_id \
             WHERE a.name = ?1 AND s.id <= ?2 ORDER BY s.id DESC LIMIT 1"
        ))?;
        stmt.query_row(params![archive.as_str(), at.unix()], snapshot_from_row).optional()?.transpose()
    }

    fn read_view(&self, archive: &ArchiveName, at: SnapshotId) -> Result<ReadView> {
        sqlite_read::read_view(&*self.conn()?, archive, at)
    }

    fn seal(&self, until: i64) -> Result<i64> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute("UPDATE seal SET sealed_until = MAX(sealed_until, ?1) WHERE id = 1", [until])?;
        let now: i64 = tx.query_row("SELECT sealed_until FROM seal WHERE id = 1", [], |r| r.get(0))?;
        tx.commit()?;
        Ok(now)
    }

    fn latest(&self, archive: &ArchiveName) -> Result<Option<Snapshot>> {
        self.resolve(archive, SnapshotId::from_unix(253_402_300_799).expect("max id"))
    }

    fn neighbours(&self, key: SnapshotKey) -> Result<(Option<SnapshotId>, Option<SnapshotId>)> {
        let conn = self.conn()?;
        // Sequence numbers have gaps where retention deleted snapshots.
        let id = |sql: &str| -> Result<Option<SnapshotId>> {
            conn.prepare_cached(sql)?
                .query_row(params![key.archive_id, key.seq as i64], |r| r.get::<_, i64>(0))
                .optional()?
                .map(|v| SnapshotId::from_unix(v).map_err(|e| bad(e.to_string())))
                .transpose()
        };
        Ok((
            id("SELECT id FROM snapshots WHERE archive_id = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT 1")?,
            id("SELECT id FROM snapshots WHERE archive_id = ?1 AND seq > ?2 ORDER BY seq ASC LIMIT 1")?,
        ))
    }

    fn entry(&self, at: SnapshotKey, path: &RelPath) -> Result<Option<Entry>> {
        sqlite_read::entry(&*self.conn()?, at, path)
    }

    fn read_file(&self, archive: &ArchiveName, at: Option<SnapshotId>, path: &RelPath) -> Result<FileRead> {
        sqlite_read::read_file(&*self.conn()?, archive, at, path)
    }

    fn children(&self, at: SnapshotKey, dir: &str) -> Result<Vec<Entry>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(concat!(
            "SELECT ",
            entry_columns!(),
            " FROM entries e LEFT JOIN snapshots s ON s.archive_id = e.archive_id AND s.seq = e.first_seq \
             LEFT JOIN deleted_snapshots d ON d.archive_id = e.archive_id AND d.seq = e.first_seq \
             WHERE e.archive_id = ?1 AND e.parent_hash = ?2 AND ",
            visible_at!(),
            " ORDER BY e.path"
        ))?;
        let rows = collect(stmt.query_map(params![at.archive_id, parent_hash(dir), at.seq as i64], entry_from_row)?)?;
        Ok(rows.into_iter().filter(|e| e.path.parent() == dir).collect())
    }

    fn child_by_digest(&self, at: SnapshotKey, dir: &str, digest: &Digest) -> Result<Option<Entry>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(concat!(
            "SELECT ",
            entry_columns!(),
            " FROM entries e LEFT JOIN snapshots s ON s.archive_id = e.archive_id AND s.seq = e.first_seq \
             LEFT JOIN deleted_snapshots d ON d.archive_id = e.archive_id AND d.seq = e.first_seq \
             WHERE e.archive_id = ?1 AND e.parent_hash = ?2 AND ",
            visible_at!(),
            " AND e.sha256 = ?4 ORDER BY e.path"
        ))?;
        let rows = stmt.query_map(
            params![at.archive_id, parent_hash(dir), at.seq as i64, &digest.as_bytes()[..]],
            entry_from_row,
        )?;
        Ok(collect(rows)?.into_iter().find(|e| e.path.parent() == dir))
    }

    fn for_each_entry(&self, at: SnapshotKey, f: &mut dyn FnMut(Entry) -> Result<()>) -> Result<()> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {ENTRY_COLUMNS} FROM entries e LEFT JOIN snapshots s ON s.archive_id = e.archive_id AND s.seq = e.first_seq \
             LEFT JOIN deleted_snapshots d ON d.archive_id = e.archive_id AND d.seq = e.first_seq \
             WHERE e.archive_id = ?1 AND e.first_seq <= ?2 AND (e.last_seq IS NULL OR e.last_seq > ?2) ORDER BY e.path"
        ))?;
        let mut rows = stmt.query(params![at.archive_id, at.seq as i64])?;
        while let Some(row) = rows.next()? {
            f(entry_from_row(row)??)?;
        }
        Ok(())
    }

    fn for_each_live(
        &self,
        archive: &ArchiveName,
        base_seq: u64,
        f: &mut dyn FnMut(ManifestEntry) -> Result<()>,
    ) -> Result<()> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
        let latest: Option<(i64, i64)> = tx
            .query_row(
                "SELECT s.archive_id, s.seq FROM snapshots s JOIN archives a ON a.id = s.archive_id \
                 WHERE a.name = ?1 ORDER BY s.seq DESC LIMIT 1",
                [archive.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let actual = latest.map_or(0, |(_, seq)| seq as u64);
        if actual != base_seq {
            return Err(CatalogError::Conflict { archive: archive.clone(), expected: base_seq, actual });
        }
        let Some((archive_id, _)) = latest else { return Ok(()) };
        let mut stmt = tx.prepare_cached(
            "SELECT path, kind, size, sha256, target FROM entries INDEXED BY entries_live \
             WHERE archive_id = ?1 AND last_seq IS NULL ORDER BY path",
        )?;
        let mut rows = stmt.query([archive_id])?;
        while let Some(r) = rows.next()? {
            let path: String = r.get(0)?;
            let content = content_from_row(r, 1)??;
            let path = RelPath::new(&path).map_err(|e| bad(format!("stored path {path:?}: {e}")))?;
            f(ManifestEntry { path, content })?;
        }
        Ok(())
    }

    fn commit(&self, archive: &ArchiveName, plan: &CommitPlan, changes: &dyn ChangeSource) -> Result<Snapshot> {
        let mut conn = self.conn()?;
        // IMMEDIATE takes the write lock up front: publishes to any archive are serialized,
        // so the base check and the ID stamp below cannot race another writer.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let archive_id: i64 = match tx
            .query_row("SELECT id FROM archives WHERE name = ?1", [archive.as_str()], |r| r.get(0))
            .optional()?
        {
            Some(id) => id,
            None => {
                tx.execute(
                    "INSERT INTO archives (name, created_at) VALUES (?1, ?2)",
                    params![archive.as_str(), chrono::Utc::now().timestamp()],
                )?;
                tx.last_insert_rowid()
            }
        };
        let (prev_seq, prev_id): (u64, Option<i64>) = tx
            .query_row(
                "SELECT seq, id FROM snapshots WHERE archive_id = ?1 ORDER BY seq DESC LIMIT 1",
                [archive_id],
                |r| Ok((r.get::<_, i64>(0)? as u64, Some(r.get(1)?))),
            )
            .optional()?
            .unwrap_or((0, None));
        if prev_seq != plan.base_seq {
            return Err(CatalogError::Conflict { archive: archive.clone(), expected: plan.base_seq, actual: prev_seq });
        }
        let seq = prev_seq as i64 + 1;
        {
            let mut close = tx.prepare_cached(
                "UPDATE entries INDEXED BY entries_live SET last_seq = ?3 \
                 WHERE archive_id = ?1 AND path = ?2 AND last_seq IS NULL",
            )?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO entries (archive_id, path, first_seq, last_seq, parent_hash, kind, size, sha256, target) \
                 VALUES (?1, ?2, ?3, NULL, ?4, ?5, ?6, ?7, ?8)",
            )?;
            let mut hold = tx.prepare_cached(
                "INSERT INTO blob_archives (sha256, archive_id, rows, size) VALUES (?1, ?2, 1, ?3) \
                 ON CONFLICT (sha256, archive_id) DO UPDATE SET rows = rows + 1",
            )?;
            changes.for_each(&mut |change| {
                match change {
                    Change::Remove(path) => {
                        if close.execute(params![archive_id, path.as_str(), seq])? != 1 {
                            return Err(bad(format!("cannot remove {path}: it is not in snapshot #{prev_seq}")));
                        }
                    }
                    Change::Upsert(e) => {
                        close.execute(params![archive_id, e.path.as_str(), seq])?;
                        if let Content::File { sha256, size } = &e.content {
                            hold.execute(params![&sha256.as_bytes()[..], archive_id, *size as i64])?;
                        }
                        let (sha, target) = match &e.content {
                            Content::File { sha256, .. } => (Some(&sha256.as_bytes()[..]), None),
                            Content::Symlink { target } => (None, Some(target.as_str())),
                            Content::Dir => (None, None),
                        };
                        insert.execute(params![
                            archive_id,
                            e.path.as_str(),
                            seq,
                            parent_hash(e.path.parent()),
                            e.content.kind_code(),
                            e.content.size() as i64,
                            sha,
                            target
                        ])?;
                    }
                }
                Ok(())
            })?;
        }
        let sealed_until: i64 = tx.query_row("SELECT sealed_until FROM seal WHERE id = 1", [], |r| r.get(0))?;
        let now = chrono::Utc::now();
        let previous = prev_id.map(SnapshotId::from_unix).transpose().map_err(|e| bad(e.to_string()))?;
        let snapshot_id = rules::stamp(now.timestamp(), previous, sealed_until)
            .ok_or_else(|| bad(format!("archive {archive} has no snapshot ID left after {previous:?}")))?;
        let id = snapshot_id.unix();
        tx.execute(
            "INSERT INTO snapshots (archive_id, seq, id, committed_at, digest, files, bytes, added, changed, removed, source) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                archive_id,
                seq,
                id,
                now.timestamp_millis(),
                &plan.digest.as_bytes()[..],
                plan.files as i64,
                plan.bytes as i64,
                plan.added as i64,
                plan.changed as i64,
                plan.removed as i64,
                plan.source.to_string(),
            ],
        )?;
        tx.commit()?;
        Ok(plan.committed(SnapshotKey { archive_id, seq: seq as u64 }, archive, snapshot_id, now.timestamp_millis()))
    }

    fn referenced_blobs(&self, f: &mut dyn FnMut(Digest, u64) -> Result<()>) -> Result<()> {
        let conn = self.conn()?;
        let mut stmt =
            conn.prepare_cached("SELECT sha256, MIN(size) FROM entries WHERE sha256 IS NOT NULL GROUP BY sha256")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let sha: Vec<u8> = row.get(0)?;
            let size: i64 = row.get(1)?;
            f(Digest::from_slice(&sha).ok_or_else(|| bad("entry digest is not 32 bytes"))?, size as u64)?;
        }
        Ok(())
    }

    fn blob_holders(&self, digest: &Digest) -> Result<Vec<BlobHolder>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT a.name, a.private FROM blob_archives b JOIN archives a ON a.id = b.archive_id \
             WHERE b.sha256 = ?1 AND b.rows > 0 ORDER BY a.name",
        )?;
        let rows = stmt.query_map([&digest.as_bytes()[..]], |r| {
            let name: String = r.get(0)?;
            let private: bool = r.get(1)?;
            Ok(name
                .parse()
                .map(|archive| BlobHolder { archive, private })
                .map_err(|e| bad(format!("archive name {name:?}: {e}"))))
        })?;
        collect(rows)
    }

    fn stats(&self) -> Result<CatalogStats> {
        let conn = self.conn()?;
        let count = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).map(|v| v as u64);
        Ok(CatalogStats {
            archives: count("SELECT COUNT(*) FROM archives")?,
            snapshots: count("SELECT COUNT(*) FROM snapshots")?,
            entry_rows: count("SELECT COUNT(*) FROM entries")?,
            database_bytes: count("SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()")?,
        })
    }
}

#[cfg(test)]
mod conformance {
    use std::sync::Arc;

    use super::{Reads, SqliteCatalog};
    use crate::catalog::conformance::{Fixture, catalog_conformance};

    fn fresh(reads: Reads) -> Option<Fixture> {
        let dir = tempfile::tempdir().unwrap();
        let catalog = SqliteCatalog::open(&dir.path().join("asof.db"), reads).unwrap();
        Some(Fixture::of(Arc::new(catalog), dir))
    }

    mod mapped {
        use super::*;
        catalog_conformance!(fresh(Reads::Mapped));
    }

    mod buffered {
        use super::*;
        catalog_conformance!(fresh(Reads::Buffered));
    }
}
