//! `RetentionStore` on the embedded SQLite catalog (schema/0009_lifecycle.sql).

use std::collections::{HashMap, HashSet};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{CatalogError, DeletedSnapshot, Result, SqliteCatalog};
use crate::domain::{ArchiveName, SnapshotId};
use crate::retention::deletion::{DoomedRow, Held, deleted_spans};
use crate::retention::{Deletion, Pin, Policy, Reclaim, RetentionStore};

fn archive_id(conn: &rusqlite::Connection, archive: &ArchiveName) -> Result<Option<i64>> {
    Ok(conn.query_row("SELECT id FROM archives WHERE name = ?1", [archive.as_str()], |r| r.get(0)).optional()?)
}

fn snapshot_id(id: i64) -> Result<SnapshotId> {
    SnapshotId::from_unix(id).map_err(|e| CatalogError::Corrupt(e.to_string()))
}

impl RetentionStore for SqliteCatalog {
    fn policy(&self, archive: &ArchiveName) -> Result<Option<Policy>> {
        let conn = self.conn()?;
        let json: Option<String> = conn
            .query_row(
                "SELECT p.policy FROM retention_policies p JOIN archives a ON a.id = p.archive_id WHERE a.name = ?1",
                [archive.as_str()],
                |r| r.get(0),
            )
            .optional()?;
        json.map(|j| {
            serde_json::from_str(&j).map_err(|e| CatalogError::Corrupt(format!("retention policy of {archive}: {e}")))
        })
        .transpose()
    }

    fn set_policy(&self, archive: &ArchiveName, policy: Option<&Policy>, actor: &str, now: i64) -> Result<bool> {
        let conn = self.conn()?;
        let Some(id) = archive_id(&conn, archive)? else { return Ok(false) };
        match policy {
            Some(p) => conn.execute(
                "INSERT INTO retention_policies (archive_id, policy, set_at, set_by) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (archive_id) DO UPDATE SET policy = excluded.policy, set_at = excluded.set_at, set_by = excluded.set_by",
                params![id, serde_json::to_string(p).expect("a policy serializes"), now, actor],
            )?,
            None => conn.execute("DELETE FROM retention_policies WHERE archive_id = ?1", [id])?,
        };
        Ok(true)
    }

    fn pin(&self, archive: &ArchiveName, id: SnapshotId, reason: &str, actor: &str, now: i64) -> Result<bool> {
        let conn = self.conn()?;
        let Some(archive_id) = archive_id(&conn, archive)? else { return Ok(false) };
        conn.execute(
            "INSERT INTO snapshot_pins (archive_id, id, reason, pinned_at, pinned_by) VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (archive_id, id) DO UPDATE SET reason = excluded.reason, pinned_at = excluded.pinned_at, \
             pinned_by = excluded.pinned_by",
            params![archive_id, id.unix(), reason, now, actor],
        )?;
        Ok(true)
    }

    fn unpin(&self, archive: &ArchiveName, id: SnapshotId) -> Result<bool> {
        let conn = self.conn()?;
        let Some(archive_id) = archive_id(&conn, archive)? else { return Ok(false) };
        Ok(conn
            .execute("DELETE FROM snapshot_pins WHERE archive_id = ?1 AND id = ?2", params![archive_id, id.unix()])?
            == 1)
    }

    fn pins(&self, archive: &ArchiveName) -> Result<Vec<Pin>> {
        pins_on(&*self.conn()?, archive)
    }

    fn preview_deletion(&self, archive: &ArchiveName, ids: &[SnapshotId]) -> Result<Reclaim> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
        let Some(archive_id) = archive_id(&tx, archive)? else { return Ok(Reclaim::default()) };
        let seqs = snapshot_seqs(&tx, archive_id)?;
        let doomed: HashSet<i64> = ids.iter().map(|i| i.unix()).collect();
        let mut reclaim = Reclaim::default();
        let mut unreferenced: HashMap<Vec<u8>, Held> = HashMap::new();
        // Each run of deleted snapshots between two kept ones goes as one span.
        for (a, b, run) in deleted_spans(&seqs, &doomed) {
            reclaim.snapshots += run.len() as u64;
            for row in doomed_rows(&tx, archive_id, a, b)? {
                reclaim.entry_rows += 1;
                if let Some(sha) = row.sha256 {
                    unreferenced.entry(sha).or_insert(Held { size: row.size, ..Held::default() }).entry_rows += 1;
                }
            }
            reclaim.package_rows += tx
                .prepare_cached(
                    "SELECT COUNT(*) FROM packages WHERE archive_id = ?1 AND last_seq > ?2 AND last_seq <= ?3 AND first_seq > ?2",
                )?
                .query_row(params![archive_id, a, b], |r| r.get::<_, i64>(0))? as u64;
            for seq in run {
                for (sha, size) in resigned_of(&tx, archive_id, seq)? {
                    unreferenced.entry(sha).or_insert(Held { size, ..Held::default() }).resigned += 1;
                }
            }
        }
        for (sha, held) in unreferenced {
            if !still_referenced(&tx, &sha, &held)? {
                reclaim.blobs += 1;
                reclaim.bytes += held.size as u64;
            }
        }
        tx.finish()?;
        Ok(reclaim)
    }

    fn delete_snapshot(&self, archive: &ArchiveName, id: SnapshotId, actor: &str, now: i64) -> Result<Deletion> {
        let mut conn = self.conn()?;
        // IMMEDIATE: the write lock commits take, so neighbours and pins cannot move under us.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let Some(archive_id) = archive_id(&tx, archive)? else { return Ok(Deletion::Kept("no such archive".into())) };
        let found = tx
            .query_row(
                "SELECT seq, committed_at, digest FROM snapshots WHERE archive_id = ?1 AND id = ?2",
                params![archive_id, id.unix()],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, Vec<u8>>(2)?)),
            )
            .optional()?;
        let Some((seq, committed_at, digest)) = found else { return Ok(Deletion::AlreadyGone) };
        let (a, b) = match must_keep(&tx, archive, archive_id, seq, id)? {
            Ok(neighbours) => neighbours,
            Err(why) => return Ok(Deletion::Kept(why)),
        };
        let mut reclaim = Reclaim { snapshots: 1, ..Reclaim::default() };
        let mut dropped: HashMap<Vec<u8>, i64> = HashMap::new();
        for row in doomed_rows(&tx, archive_id, a, b)? {
            tx.prepare_cached("DELETE FROM entries WHERE archive_id = ?1 AND path = ?2 AND first_seq = ?3")?
                .execute(params![archive_id, row.path, row.first_seq])?;
            // A scrub's flag on the row goes with it.
            tx.prepare_cached("DELETE FROM scrub_damage WHERE archive_id = ?1 AND path = ?2 AND first_seq = ?3")?
                .execute(params![archive_id, row.path, row.first_seq])?;
            reclaim.entry_rows += 1;
            if let Some(sha) = row.sha256 {
                tx.prepare_cached("UPDATE blob_archives SET rows = rows - 1 WHERE sha256 = ?1 AND archive_id = ?2")?
                    .execute(params![sha, archive_id])?;
                dropped.insert(sha, row.size);
            }
        }
        reclaim.package_rows = tx
            .prepare_cached(
                "DELETE FROM packages WHERE archive_id = ?1 AND last_seq > ?2 AND last_seq <= ?3 AND first_seq > ?2",
            )?
            .execute(params![archive_id, a, b])? as u64;
        for (sha, size) in resigned_of(&tx, archive_id, seq)? {
            dropped.insert(sha, size);
        }
        tx.execute("DELETE FROM resigned_files WHERE archive_id = ?1 AND seq = ?2", params![archive_id, seq])?;
        tx.execute("DELETE FROM package_index_problems WHERE archive_id = ?1 AND seq = ?2", params![archive_id, seq])?;
        for (sha, size) in dropped {
            tx.prepare_cached("DELETE FROM blob_archives WHERE sha256 = ?1 AND archive_id = ?2 AND rows <= 0")?
                .execute(params![sha, archive_id])?;
            if !still_referenced(&tx, &sha, &Held::default())? {
                // From now on it is a candidate for gc, which deletes it a grace period after
                // now: an older row (a re-upload of a then-referenced blob, say) restarts its
                // clock, since a publish may have relied on the reference without a claim.
                tx.prepare_cached(
                    "INSERT INTO gc_candidates (sha256, since) VALUES (?1, ?2) \
                     ON CONFLICT (sha256) DO UPDATE SET since = MAX(since, excluded.since)",
                )?
                .execute(params![sha, now])?;
                reclaim.blobs += 1;
                reclaim.bytes += size as u64;
            }
        }
        tx.execute(
            "INSERT INTO deleted_snapshots (archive_id, seq, id, committed_at, digest, deleted_at, deleted_by) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![archive_id, seq, id.unix(), committed_at, digest, now, actor],
        )?;
        tx.execute("DELETE FROM snapshots WHERE archive_id = ?1 AND seq = ?2", params![archive_id, seq])?;
        tx.commit()?;
        Ok(Deletion::Deleted(reclaim))
    }

    fn under_retention(&self, archive: &ArchiveName) -> Result<bool> {
        let conn = self.conn()?;
        let Some(id) = archive_id(&conn, archive)? else { return Ok(false) };
        super::sqlite::under_retention(&conn, id)
    }

    fn deleted_snapshots(&self, archive: &ArchiveName) -> Result<Vec<DeletedSnapshot>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT d.id, d.deleted_at FROM deleted_snapshots d JOIN archives a ON a.id = d.archive_id \
             WHERE a.name = ?1 ORDER BY d.id",
        )?;
        let rows = stmt.query_map([archive.as_str()], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?;
        rows.map(|row| {
            let (id, deleted_at) = row?;
            Ok(DeletedSnapshot { id: snapshot_id(id)?, deleted_at })
        })
        .collect()
    }
}

/// The archive's snapshots as (seq, id), ascending.
fn snapshot_seqs(conn: &Connection, archive_id: i64) -> Result<Vec<(i64, i64)>> {
    let mut stmt = conn.prepare_cached("SELECT seq, id FROM snapshots WHERE archive_id = ?1 ORDER BY seq")?;
    let rows = stmt.query_map([archive_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The entry rows no snapshot outside (a, b) sees: they start after `a` and end by `b`.
fn doomed_rows(conn: &Connection, archive_id: i64, a: i64, b: i64) -> Result<Vec<DoomedRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT path, first_seq, sha256, size FROM entries INDEXED BY entries_closed \
         WHERE archive_id = ?1 AND last_seq > ?2 AND last_seq <= ?3 AND first_seq > ?2",
    )?;
    let rows = stmt.query_map(params![archive_id, a, b], |r| {
        Ok(DoomedRow { path: r.get(0)?, first_seq: r.get(1)?, sha256: r.get(2)?, size: r.get(3)? })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn resigned_of(conn: &Connection, archive_id: i64, seq: i64) -> Result<Vec<(Vec<u8>, i64)>> {
    let mut stmt = conn.prepare_cached("SELECT sha256, size FROM resigned_files WHERE archive_id = ?1 AND seq = ?2")?;
    let rows = stmt.query_map(params![archive_id, seq], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Whether anything but the references in `dropping` still names the blob.
fn still_referenced(conn: &Connection, sha: &[u8], dropping: &Held) -> Result<bool> {
    let (rows, resigned): (i64, i64) = conn
        .prepare_cached(
            "SELECT (SELECT COALESCE(SUM(rows), 0) FROM blob_archives WHERE sha256 = ?1), \
             (SELECT COUNT(*) FROM resigned_files WHERE sha256 = ?1)",
        )?
        .query_row([sha], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows > dropping.entry_rows || resigned > dropping.resigned)
}

/// The kept snapshots just before and after `seq`.
fn kept_neighbours(conn: &Connection, archive_id: i64, seq: i64) -> Result<(Option<i64>, Option<i64>)> {
    let one = |sql: &str| -> Result<Option<i64>> {
        Ok(conn.prepare_cached(sql)?.query_row(params![archive_id, seq], |r| r.get(0)).optional()?)
    };
    Ok((
        one("SELECT seq FROM snapshots WHERE archive_id = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT 1")?,
        one("SELECT seq FROM snapshots WHERE archive_id = ?1 AND seq > ?2 ORDER BY seq ASC LIMIT 1")?,
    ))
}

/// Why snapshot `seq` must stay, checked under the write lock: whatever the plan said, the
/// first and the latest snapshot, a pin made since, and a snapshot the package index has
/// not read yet, or whose successor it has not read (it reads snapshots in order, and
/// reading the successor needs the rows the deletion removes). Else its kept neighbours.
fn must_keep(
    conn: &Connection,
    archive: &ArchiveName,
    archive_id: i64,
    seq: i64,
    id: SnapshotId,
) -> Result<Result<(i64, i64), String>> {
    let (Some(before), after) = kept_neighbours(conn, archive_id, seq)? else {
        return Ok(Err("it is the first snapshot".into()));
    };
    let Some(after) = after else { return Ok(Err("it is the latest snapshot".into())) };
    let indexed: i64 = conn.query_row(
        "SELECT COALESCE((SELECT indexed_seq FROM package_index_state WHERE archive_id = ?1), 0)",
        [archive_id],
        |r| r.get(0),
    )?;
    if after > indexed {
        return Ok(Err("the package index has not read it and the snapshot after it yet".into()));
    }
    match pins_on(conn, archive)?.into_iter().find(|p| p.id == id) {
        Some(p) => Ok(Err(p.reason)),
        None => Ok(Ok((before, after))),
    }
}

/// Explicit pins, and every snapshot a rollout channel may serve (see `RetentionStore::pins`).
fn pins_on(conn: &Connection, archive: &ArchiveName) -> Result<Vec<Pin>> {
    let mut out = Vec::new();
    let mut explicit = conn.prepare_cached(
        "SELECT p.id, p.reason FROM snapshot_pins p JOIN archives a ON a.id = p.archive_id WHERE a.name = ?1 ORDER BY p.id",
    )?;
    for row in explicit.query_map([archive.as_str()], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))? {
        let (id, reason) = row?;
        out.push(Pin { id: snapshot_id(id)?, reason: format!("pinned: {reason}") });
    }
    // A fleet may run a channel's current target, or be rolled back to the previous one.
    let mut channels = conn.prepare_cached(
        "SELECT name, target, rn FROM (SELECT c.name, r.target, \
         ROW_NUMBER() OVER (PARTITION BY r.channel_id ORDER BY r.id DESC) AS rn \
         FROM rollouts r JOIN channels c ON c.id = r.channel_id WHERE c.archive = ?1) WHERE rn <= 2 ORDER BY name, rn",
    )?;
    for row in channels
        .query_map([archive.as_str()], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?)))?
    {
        let (name, target, rn) = row?;
        let which = if rn == 1 { "current" } else { "previous" };
        out.push(Pin { id: snapshot_id(target)?, reason: format!("channel {name}: {which} rollout") });
    }
    // Rings the current rollout has not reached yet still serve what they had before.
    let mut rings = conn.prepare_cached(
        "SELECT DISTINCT name, json_extract(ring.value, '$.from') FROM (SELECT c.name, r.rings, \
         ROW_NUMBER() OVER (PARTITION BY r.channel_id ORDER BY r.id DESC) AS rn \
         FROM rollouts r JOIN channels c ON c.id = r.channel_id WHERE c.archive = ?1), json_each(rings) AS ring \
         WHERE rn = 1 AND json_extract(ring.value, '$.from') IS NOT NULL \
         AND json_extract(ring.value, '$.started_at') IS NULL ORDER BY 1, 2",
    )?;
    for row in rings.query_map([archive.as_str()], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
        let (name, from) = row?;
        let from = snapshot_id(from)?;
        if out.iter().any(|p| p.id == from && p.reason.starts_with(&format!("channel {name}:"))) {
            continue;
        }
        out.push(Pin { id: from, reason: format!("channel {name}: served by a ring not yet advanced") });
    }
    Ok(out)
}
