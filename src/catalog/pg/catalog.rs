//! `Catalog` on PostgreSQL: reads, the read view in one statement, and commits.

use postgres::fallible_iterator::FallibleIterator;
use postgres::types::ToSql;
use postgres::{IsolationLevel, Transaction};

use super::apply::apply_changes;
use super::rows::{self, ENTRY_COLUMNS, ENTRY_JOINS, SNAPSHOT_COLUMNS, bad, snapshot_id};
use super::{Conn, PgCatalog};
use crate::catalog::rules::{self, parent_hash};
use crate::catalog::*;

const SUMMARY_SQL: &str = "SELECT a.name, COUNT(s.seq), MIN(s.id), MAX(s.id) \
     FROM archives a LEFT JOIN snapshots s ON s.archive_id = a.id";

/// Everything `ReadView` holds, in one row (see sqlite_read.rs, `VIEW_SQL`): the seal, the
/// archive, its latest snapshot, the floor of $2, the first only when nothing floors $2, and
/// the deletion state only for an ID that is no kept snapshot.
const VIEW_SQL: &str = "SELECT seal.sealed_until, a.id, \
     l.archive_id, l.seq, a.name, l.id, l.committed_at, l.digest, l.files, l.bytes, l.added, l.changed, l.removed, l.source, \
     f.archive_id, f.seq, a.name, f.id, f.committed_at, f.digest, f.files, f.bytes, f.added, f.changed, f.removed, f.source, \
     CASE WHEN l.seq IS NOT NULL AND f.seq IS NULL THEN (SELECT MIN(id) FROM snapshots WHERE archive_id = a.id) END, \
     CASE WHEN l.id IS NULL OR l.id = $2 OR f.id = $2 THEN NULL \
          ELSE (SELECT deleted_at FROM deleted_snapshots WHERE archive_id = a.id AND id = $2) END, \
     CASE WHEN l.id IS NULL OR l.id = $2 OR f.id = $2 THEN false \
          ELSE EXISTS (SELECT 1 FROM retention_policies WHERE archive_id = a.id) \
            OR EXISTS (SELECT 1 FROM deleted_snapshots WHERE archive_id = a.id) END \
     FROM seal \
     LEFT JOIN archives a ON a.name = $1 \
     LEFT JOIN LATERAL (SELECT * FROM snapshots WHERE archive_id = a.id ORDER BY id DESC LIMIT 1) l ON true \
     LEFT JOIN LATERAL (SELECT * FROM snapshots WHERE archive_id = a.id AND id <= $2 ORDER BY id DESC LIMIT 1) f ON true \
     WHERE seal.id = 1";
const LATEST_AT: usize = 2;
const FLOOR_AT: usize = LATEST_AT + 12;
const FIRST_AT: usize = FLOOR_AT + 12;

/// The entry at $2 visible in snapshot $3, with when its content appeared there.
const ENTRY_SQL: &str = "SELECT e.kind, e.size, e.sha256, e.target, COALESCE(s.id, d.id) \
     FROM entries e LEFT JOIN snapshots s ON s.archive_id = e.archive_id AND s.seq = e.first_seq \
     LEFT JOIN deleted_snapshots d ON d.archive_id = e.archive_id AND d.seq = e.first_seq \
     WHERE e.archive_id = $1 AND e.path = $2 AND e.first_seq <= $3 AND (e.last_seq IS NULL OR e.last_seq > $3) \
     ORDER BY e.first_seq DESC LIMIT 1";

fn read_view(c: &mut impl postgres::GenericClient, archive: &ArchiveName, at: SnapshotId) -> Result<ReadView> {
    let r = c.query_one(VIEW_SQL, &[&archive.as_str(), &at.unix()])?;
    let archive_id: Option<i64> = r.try_get(1)?;
    let snapshot = |col: usize| -> Result<Option<Snapshot>> {
        match r.try_get::<_, Option<i64>>(col + 1)? {
            Some(_) => rows::snapshot_of(&r, col, archive.clone()).map(Some),
            None => Ok(None),
        }
    };
    let latest = snapshot(LATEST_AT)?;
    let floor = snapshot(FLOOR_AT)?;
    let first: Option<i64> = r.try_get(FIRST_AT)?;
    let deleted_at: Option<i64> = r.try_get(FIRST_AT + 1)?;
    let retention = deleted_at.is_some() || r.try_get::<_, bool>(FIRST_AT + 2)?;
    Ok(ReadView {
        archive_exists: archive_id.is_some(),
        latest,
        floor,
        first: first.map(snapshot_id).transpose()?,
        sealed_until: r.try_get(0)?,
        deleted: deleted_at.map(|deleted_at| DeletedSnapshot { id: at, deleted_at }),
        retention,
    })
}

fn entry(c: &mut impl postgres::GenericClient, at: SnapshotKey, path: &RelPath) -> Result<Option<Entry>> {
    let Some(r) = c.query_opt(ENTRY_SQL, &[&at.archive_id, &path.as_str(), &(at.seq as i64)])? else {
        return Ok(None);
    };
    Ok(Some(Entry { path: path.clone(), content: rows::content(&r, 0)?, since: snapshot_id(r.try_get(4)?)? }))
}

/// A transaction whose reads all see one snapshot of the database.
fn consistent_read(conn: &mut Conn) -> Result<Transaction<'_>> {
    Ok(conn.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start()?)
}

/// Runs a query and hands each row to `f` as it arrives, without collecting the result.
fn stream(
    c: &mut impl postgres::GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
    mut f: impl FnMut(&postgres::Row) -> Result<()>,
) -> Result<()> {
    let mut rows = c.query_raw(sql, params.iter().copied())?;
    while let Some(row) = rows.next()? {
        f(&row)?;
    }
    Ok(())
}

impl Catalog for PgCatalog {
    fn archives(&self) -> Result<Vec<ArchiveSummary>> {
        let rows = self.conn()?.query(&format!("{SUMMARY_SQL} GROUP BY a.id ORDER BY a.name"), &[])?;
        rows.iter().map(rows::summary).collect()
    }

    fn archive(&self, name: &ArchiveName) -> Result<Option<ArchiveSummary>> {
        let row =
            self.conn()?.query_opt(&format!("{SUMMARY_SQL} WHERE a.name = $1 GROUP BY a.id"), &[&name.as_str()])?;
        row.as_ref().map(rows::summary).transpose()
    }

    fn ping(&self) -> Result<()> {
        self.conn()?.query_one("SELECT 1", &[])?;
        Ok(())
    }

    fn snapshots(&self, archive: &ArchiveName, q: &SnapshotQuery) -> Result<Vec<Snapshot>> {
        let (cmp, order) = if q.descending { ("<", "DESC") } else { (">", "ASC") };
        let sql = format!(
            "SELECT {SNAPSHOT_COLUMNS} FROM snapshots s JOIN archives a ON a.id = s.archive_id \
             WHERE a.name = $1 AND s.id >= $2 AND s.id <= $3 AND ($4::BIGINT IS NULL OR s.id {cmp} $4) \
             ORDER BY s.id {order} LIMIT $5"
        );
        let limit: Option<i64> = (q.limit != 0).then_some(i64::from(q.limit));
        let rows = self.conn()?.query(
            &sql,
            &[
                &archive.as_str(),
                &q.since.map_or(i64::MIN, SnapshotId::unix),
                &q.until.map_or(i64::MAX, SnapshotId::unix),
                &q.after.map(SnapshotId::unix),
                &limit,
            ],
        )?;
        rows.iter().map(rows::snapshot).collect()
    }

    fn resolve(&self, archive: &ArchiveName, at: SnapshotId) -> Result<Option<Snapshot>> {
        let row = self.conn()?.query_opt(
            &format!(
                "SELECT {SNAPSHOT_COLUMNS} FROM snapshots s JOIN archives a ON a.id = s.archive_id \
                 WHERE a.name = $1 AND s.id <= $2 ORDER BY s.id DESC LIMIT 1"
            ),
            &[&archive.as_str(), &at.unix()],
        )?;
        row.as_ref().map(rows::snapshot).transpose()
    }

    fn latest(&self, archive: &ArchiveName) -> Result<Option<Snapshot>> {
        self.resolve(archive, SnapshotId::from_unix(SnapshotId::MAX_UNIX).expect("max id"))
    }

    fn read_view(&self, archive: &ArchiveName, at: SnapshotId) -> Result<ReadView> {
        read_view(&mut *self.conn()?, archive, at)
    }

    fn seal(&self, until: i64) -> Result<i64> {
        // The UPDATE waits for commits holding the seal FOR SHARE (those stamping now).
        let row = self.conn()?.query_one(
            "UPDATE seal SET sealed_until = GREATEST(sealed_until, $1) WHERE id = 1 RETURNING sealed_until",
            &[&until],
        )?;
        Ok(row.try_get(0)?)
    }

    fn neighbours(&self, key: SnapshotKey) -> Result<(Option<SnapshotId>, Option<SnapshotId>)> {
        let mut conn = self.conn()?;
        let mut id = |sql: &str| -> Result<Option<SnapshotId>> {
            let row = conn.query_opt(sql, &[&key.archive_id, &(key.seq as i64)])?;
            row.map(|r| snapshot_id(r.try_get(0)?)).transpose()
        };
        Ok((
            id("SELECT id FROM snapshots WHERE archive_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT 1")?,
            id("SELECT id FROM snapshots WHERE archive_id = $1 AND seq > $2 ORDER BY seq ASC LIMIT 1")?,
        ))
    }

    fn entry(&self, at: SnapshotKey, path: &RelPath) -> Result<Option<Entry>> {
        entry(&mut *self.conn()?, at, path)
    }

    fn read_file(&self, archive: &ArchiveName, at: Option<SnapshotId>, path: &RelPath) -> Result<FileRead> {
        let mut conn = self.conn()?;
        let mut tx = consistent_read(&mut conn)?;
        let view = read_view(&mut tx, archive, at.unwrap_or_else(SnapshotId::now))?;
        let served = match at {
            Some(at) => view.serves(at),
            None => view.latest.as_ref(),
        };
        let entry = match served {
            Some(s) => entry(&mut tx, s.key, path)?,
            None => None,
        };
        tx.commit()?;
        Ok(FileRead { view, entry })
    }

    fn children(&self, at: SnapshotKey, dir: &str) -> Result<Vec<Entry>> {
        let rows = self.conn()?.query(
            &format!(
                "SELECT {ENTRY_COLUMNS} FROM {ENTRY_JOINS} WHERE e.archive_id = $1 AND e.parent_hash = $2 \
                 AND e.first_seq <= $3 AND (e.last_seq IS NULL OR e.last_seq > $3) ORDER BY e.path"
            ),
            &[&at.archive_id, &parent_hash(dir), &(at.seq as i64)],
        )?;
        let entries = rows.iter().map(rows::entry).collect::<Result<Vec<_>>>()?;
        Ok(entries.into_iter().filter(|e| e.path.parent() == dir).collect())
    }

    fn child_by_digest(&self, at: SnapshotKey, dir: &str, digest: &Digest) -> Result<Option<Entry>> {
        let rows = self.conn()?.query(
            &format!(
                "SELECT {ENTRY_COLUMNS} FROM {ENTRY_JOINS} WHERE e.archive_id = $1 AND e.parent_hash = $2 \
                 AND e.first_seq <= $3 AND (e.last_seq IS NULL OR e.last_seq > $3) AND e.sha256 = $4 ORDER BY e.path"
            ),
            &[&at.archive_id, &parent_hash(dir), &(at.seq as i64), &&digest.as_bytes()[..]],
        )?;
        let entries = rows.iter().map(rows::entry).collect::<Result<Vec<_>>>()?;
        Ok(entries.into_iter().find(|e| e.path.parent() == dir))
    }

    fn for_each_entry(&self, at: SnapshotKey, f: &mut dyn FnMut(Entry) -> Result<()>) -> Result<()> {
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM {ENTRY_JOINS} WHERE e.archive_id = $1 AND e.first_seq <= $2 \
             AND (e.last_seq IS NULL OR e.last_seq > $2) ORDER BY e.path"
        );
        stream(&mut *self.conn()?, &sql, &[&at.archive_id, &(at.seq as i64)], |r| f(rows::entry(r)?))
    }

    fn for_each_live(
        &self,
        archive: &ArchiveName,
        base_seq: u64,
        f: &mut dyn FnMut(ManifestEntry) -> Result<()>,
    ) -> Result<()> {
        let mut conn = self.conn()?;
        let mut tx = consistent_read(&mut conn)?;
        let latest = tx.query_opt(
            "SELECT s.archive_id, s.seq FROM snapshots s JOIN archives a ON a.id = s.archive_id \
             WHERE a.name = $1 ORDER BY s.seq DESC LIMIT 1",
            &[&archive.as_str()],
        )?;
        let latest: Option<(i64, i64)> =
            latest.map(|r| Ok::<_, CatalogError>((r.try_get(0)?, r.try_get(1)?))).transpose()?;
        let actual = latest.map_or(0, |(_, seq)| seq as u64);
        if actual != base_seq {
            return Err(CatalogError::Conflict { archive: archive.clone(), expected: base_seq, actual });
        }
        let Some((archive_id, _)) = latest else { return Ok(()) };
        stream(
            &mut tx,
            "SELECT path, kind, size, sha256, target FROM entries WHERE archive_id = $1 AND last_seq IS NULL ORDER BY path",
            &[&archive_id],
            |r| {
                let path: &str = r.try_get(0)?;
                let path = RelPath::new(path).map_err(|e| bad(format!("stored path {path:?}: {e}")))?;
                f(ManifestEntry { path, content: rows::content(r, 1)? })
            },
        )?;
        tx.commit()?;
        Ok(())
    }

    fn commit(&self, archive: &ArchiveName, plan: &CommitPlan, changes: &dyn ChangeSource) -> Result<Snapshot> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        let now = chrono::Utc::now();
        let (archive_id, prev) = lock_archive(&mut tx, archive, now.timestamp())?;
        let prev_seq = prev.map_or(0, |(seq, _)| seq);
        if prev_seq != plan.base_seq {
            return Err(CatalogError::Conflict { archive: archive.clone(), expected: plan.base_seq, actual: prev_seq });
        }
        let seq = prev_seq as i64 + 1;
        apply_changes(&mut tx, archive_id, seq, prev_seq, changes)?;
        // Last, so that `seal` waits only for commits about to stamp.
        let sealed_until: i64 =
            tx.query_one("SELECT sealed_until FROM seal WHERE id = 1 FOR SHARE", &[])?.try_get(0)?;
        let previous = prev.map(|(_, id)| snapshot_id(id)).transpose()?;
        let id = rules::stamp(now.timestamp(), previous, sealed_until)
            .ok_or_else(|| bad(format!("archive {archive} has no snapshot ID left after {previous:?}")))?;
        tx.execute(
            "INSERT INTO snapshots (archive_id, seq, id, committed_at, digest, files, bytes, added, changed, removed, source) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            &[
                &archive_id,
                &seq,
                &id.unix(),
                &now.timestamp_millis(),
                &&plan.digest.as_bytes()[..],
                &(plan.files as i64),
                &(plan.bytes as i64),
                &(plan.added as i64),
                &(plan.changed as i64),
                &(plan.removed as i64),
                &plan.source.to_string(),
            ],
        )?;
        // Other frontends learn of the new snapshot at once (delivered at commit).
        tx.execute("SELECT pg_notify('asof_commit', $1)", &[&archive.as_str()])?;
        tx.commit()?;
        Ok(plan.committed(SnapshotKey { archive_id, seq: seq as u64 }, archive, id, now.timestamp_millis()))
    }

    fn referenced_blobs(&self, f: &mut dyn FnMut(Digest, u64) -> Result<()>) -> Result<()> {
        stream(
            &mut *self.conn()?,
            "SELECT sha256, MIN(size) FROM entries WHERE sha256 IS NOT NULL GROUP BY sha256",
            &[],
            |r| {
                let sha: &[u8] = r.try_get(0)?;
                let size: i64 = r.try_get(1)?;
                f(Digest::from_slice(sha).ok_or_else(|| bad("entry digest is not 32 bytes"))?, size as u64)
            },
        )
    }

    fn blob_holders(&self, digest: &Digest) -> Result<Vec<BlobHolder>> {
        let rows = self.conn()?.query(
            "SELECT a.name, a.private FROM blob_archives b JOIN archives a ON a.id = b.archive_id \
             WHERE b.sha256 = $1 AND b.rows > 0 ORDER BY a.name",
            &[&&digest.as_bytes()[..]],
        )?;
        rows.iter()
            .map(|r| {
                let name: &str = r.try_get(0)?;
                let archive = name.parse().map_err(|e| bad(format!("archive name {name:?}: {e}")))?;
                Ok(BlobHolder { archive, private: r.try_get(1)? })
            })
            .collect()
    }

    fn stats(&self) -> Result<CatalogStats> {
        let r = self.conn()?.query_one(
            "SELECT (SELECT COUNT(*) FROM archives), (SELECT COUNT(*) FROM snapshots), \
             (SELECT COUNT(*) FROM entries), pg_database_size(current_database())",
            &[],
        )?;
        Ok(CatalogStats {
            archives: r.try_get::<_, i64>(0)? as u64,
            snapshots: r.try_get::<_, i64>(1)? as u64,
            entry_rows: r.try_get::<_, i64>(2)? as u64,
            database_bytes: r.try_get::<_, i64>(3)? as u64,
        })
    }
}

/// Creates the archive if needed and locks its row for the rest of the transaction, so that
/// commits to it are serialized; answers its id and its latest (seq, ID).
fn lock_archive(tx: &mut Transaction<'_>, archive: &ArchiveName, now: i64) -> Result<(i64, Option<(u64, i64)>)> {
    tx.execute(
        "INSERT INTO archives (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        &[&archive.as_str(), &now],
    )?;
    let archive_id: i64 =
        tx.query_one("SELECT id FROM archives WHERE name = $1 FOR UPDATE", &[&archive.as_str()])?.try_get(0)?;
    let prev =
        tx.query_opt("SELECT seq, id FROM snapshots WHERE archive_id = $1 ORDER BY seq DESC LIMIT 1", &[&archive_id])?;
    let prev = prev.map(|r| Ok::<_, CatalogError>((r.try_get::<_, i64>(0)? as u64, r.try_get(1)?))).transpose()?;
    Ok((archive_id, prev))
}
