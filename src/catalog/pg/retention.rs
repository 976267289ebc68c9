//! `RetentionStore` on PostgreSQL. A deletion locks the archive's row (commits to it wait),
//! and holds `SHARE` locks on the pins and the rollouts, so that no pin or rollout can come
//! to name the snapshot between the check and the delete, as SQLite's write lock ensures.

use std::collections::{HashMap, HashSet};

use postgres::{GenericClient, IsolationLevel, Transaction};

use super::PgCatalog;
use super::rows::{bad, snapshot_id};
use crate::catalog::{DeletedSnapshot, Result};
use crate::domain::{ArchiveName, SnapshotId};
use crate::retention::deletion::{DoomedRow, Held, deleted_spans};
use crate::retention::{Deletion, Pin, Policy, Reclaim, RetentionStore};

fn archive_id(c: &mut impl GenericClient, archive: &ArchiveName) -> Result<Option<i64>> {
    let row = c.query_opt("SELECT id FROM archives WHERE name = $1", &[&archive.as_str()])?;
    Ok(row.map(|r| r.try_get(0)).transpose()?)
}

/// The archive's snapshots as (seq, id), ascending.
fn snapshot_seqs(c: &mut impl GenericClient, archive_id: i64) -> Result<Vec<(i64, i64)>> {
    let rows = c.query("SELECT seq, id FROM snapshots WHERE archive_id = $1 ORDER BY seq", &[&archive_id])?;
    rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect()
}

/// The entry rows no snapshot outside (a, b) sees: they start after `a` and end by `b`.
fn doomed_rows(c: &mut impl GenericClient, archive_id: i64, a: i64, b: i64) -> Result<Vec<DoomedRow>> {
    let rows = c.query(
        "SELECT path, first_seq, sha256, size FROM entries \
         WHERE archive_id = $1 AND last_seq > $2 AND last_seq <= $3 AND first_seq > $2",
        &[&archive_id, &a, &b],
    )?;
    rows.iter()
        .map(|r| {
            Ok(DoomedRow { path: r.try_get(0)?, first_seq: r.try_get(1)?, sha256: r.try_get(2)?, size: r.try_get(3)? })
        })
        .collect()
}

fn resigned_of(c: &mut impl GenericClient, archive_id: i64, seq: i64) -> Result<Vec<(Vec<u8>, i64)>> {
    let rows =
        c.query("SELECT sha256, size FROM resigned_files WHERE archive_id = $1 AND seq = $2", &[&archive_id, &seq])?;
    rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect()
}

fn package_rows_between(c: &mut impl GenericClient, archive_id: i64, a: i64, b: i64) -> Result<u64> {
    let row = c.query_one(
        "SELECT COUNT(*) FROM packages WHERE archive_id = $1 AND last_seq > $2 AND last_seq <= $3 AND first_seq > $2",
        &[&archive_id, &a, &b],
    )?;
    Ok(row.try_get::<_, i64>(0)? as u64)
}

/// Whether anything but the references in `dropping` still names the blob.
fn still_referenced(c: &mut impl GenericClient, sha: &[u8], dropping: &Held) -> Result<bool> {
    let row = c.query_one(
        "SELECT (SELECT COALESCE(SUM(rows), 0)::BIGINT FROM blob_archives WHERE sha256 = $1), \
         (SELECT COUNT(*) FROM resigned_files WHERE sha256 = $1)",
        &[&sha],
    )?;
    let (rows, resigned): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
    Ok(rows > dropping.entry_rows || resigned > dropping.resigned)
}

/// The kept snapshots just before and after `seq`.
fn kept_neighbours(c: &mut impl GenericClient, archive_id: i64, seq: i64) -> Result<(Option<i64>, Option<i64>)> {
    let mut one = |sql: &str| -> Result<Option<i64>> {
        Ok(c.query_opt(sql, &[&archive_id, &seq])?.map(|r| r.try_get(0)).transpose()?)
    };
    Ok((
        one("SELECT seq FROM snapshots WHERE archive_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT 1")?,
        one("SELECT seq FROM snapshots WHERE archive_id = $1 AND seq > $2 ORDER BY seq ASC LIMIT 1")?,
    ))
}

/// Why snapshot `seq` must stay (see the SQLite catalog's `must_keep`), else its kept
/// neighbours.
fn must_keep(
    c: &mut impl GenericClient,
    archive: &ArchiveName,
    archive_id: i64,
    seq: i64,
    id: SnapshotId,
) -> Result<Result<(i64, i64), String>> {
    let (Some(before), after) = kept_neighbours(c, archive_id, seq)? else {
        return Ok(Err("it is the first snapshot".into()));
    };
    let Some(after) = after else { return Ok(Err("it is the latest snapshot".into())) };
    let indexed: i64 = c
        .query_one(
            "SELECT COALESCE((SELECT indexed_seq FROM package_index_state WHERE archive_id = $1), 0)",
            &[&archive_id],
        )?
        .try_get(0)?;
    if after > indexed {
        return Ok(Err("the package index has not read it and the snapshot after it yet".into()));
    }
    match pins_on(c, archive)?.into_iter().find(|p| p.id == id) {
        Some(p) => Ok(Err(p.reason)),
        None => Ok(Ok((before, after))),
    }
}

/// Explicit pins, and every snapshot a rollout channel may serve.
fn pins_on(c: &mut impl GenericClient, archive: &ArchiveName) -> Result<Vec<Pin>> {
    let mut out = Vec::new();
    let explicit = c.query(
        "SELECT p.id, p.reason FROM snapshot_pins p JOIN archives a ON a.id = p.archive_id WHERE a.name = $1 \
         ORDER BY p.id",
        &[&archive.as_str()],
    )?;
    for r in explicit {
        let reason: &str = r.try_get(1)?;
        out.push(Pin { id: snapshot_id(r.try_get(0)?)?, reason: format!("pinned: {reason}") });
    }
    // A fleet may run a channel's current target, or be rolled back to the previous one.
    let targets = c.query(
        "SELECT name, target, rn FROM (SELECT c.name, r.target, \
         ROW_NUMBER() OVER (PARTITION BY r.channel_id ORDER BY r.id DESC) AS rn \
         FROM rollouts r JOIN channels c ON c.id = r.channel_id WHERE c.archive = $1) AS latest \
         WHERE rn <= 2 ORDER BY name, rn",
        &[&archive.as_str()],
    )?;
    for r in targets {
        let (name, rn): (&str, i64) = (r.try_get(0)?, r.try_get(2)?);
        let which = if rn == 1 { "current" } else { "previous" };
        out.push(Pin { id: snapshot_id(r.try_get(1)?)?, reason: format!("channel {name}: {which} rollout") });
    }
    // Rings the current rollout has not reached yet still serve what they had before.
    let rings = c.query(
        "SELECT DISTINCT name, (ring->>'from')::BIGINT FROM (SELECT c.name, r.rings, \
         ROW_NUMBER() OVER (PARTITION BY r.channel_id ORDER BY r.id DESC) AS rn \
         FROM rollouts r JOIN channels c ON c.id = r.channel_id WHERE c.archive = $1) AS latest, \
         jsonb_array_elements(latest.rings::jsonb) AS ring \
         WHERE rn = 1 AND ring->>'from' IS NOT NULL AND ring->>'started_at' IS NULL ORDER BY 1, 2",
        &[&archive.as_str()],
    )?;
    for r in rings {
        let name: &str = r.try_get(0)?;
        let from = snapshot_id(r.try_get(1)?)?;
        if out.iter().any(|p| p.id == from && p.reason.starts_with(&format!("channel {name}:"))) {
            continue;
        }
        out.push(Pin { id: from, reason: format!("channel {name}: served by a ring not yet advanced") });
    }
    Ok(out)
}

/// Removes what only snapshot `seq` (between kept `a` and `b`) held; what it reclaims.
fn remove_snapshot_rows(
    tx: &mut Transaction<'_>,
    archive_id: i64,
    (a, b, seq): (i64, i64, i64),
    now: i64,
) -> Result<Reclaim> {
    let mut reclaim = Reclaim { snapshots: 1, ..Reclaim::default() };
    let mut dropped: HashMap<Vec<u8>, i64> = HashMap::new();
    for row in doomed_rows(tx, archive_id, a, b)? {
        tx.execute(
            "DELETE FROM entries WHERE archive_id = $1 AND path = $2 AND first_seq = $3",
            &[&archive_id, &row.path, &row.first_seq],
        )?;
        // A scrub's flag on the row goes with it.
        tx.execute(
            "DELETE FROM scrub_damage WHERE archive_id = $1 AND path = $2 AND first_seq = $3",
            &[&archive_id, &row.path, &row.first_seq],
        )?;
        reclaim.entry_rows += 1;
        if let Some(sha) = row.sha256 {
            tx.execute(
                "UPDATE blob_archives SET rows = rows - 1 WHERE sha256 = $1 AND archive_id = $2",
                &[&sha, &archive_id],
            )?;
            dropped.insert(sha, row.size);
        }
    }
    reclaim.package_rows = tx.execute(
        "DELETE FROM packages WHERE archive_id = $1 AND last_seq > $2 AND last_seq <= $3 AND first_seq > $2",
        &[&archive_id, &a, &b],
    )?;
    for (sha, size) in resigned_of(tx, archive_id, seq)? {
        dropped.insert(sha, size);
    }
    tx.execute("DELETE FROM resigned_files WHERE archive_id = $1 AND seq = $2", &[&archive_id, &seq])?;
    tx.execute("DELETE FROM package_index_problems WHERE archive_id = $1 AND seq = $2", &[&archive_id, &seq])?;
    for (sha, size) in dropped {
        tx.execute(
            "DELETE FROM blob_archives WHERE sha256 = $1 AND archive_id = $2 AND rows <= 0",
            &[&sha, &archive_id],
        )?;
        if !still_referenced(tx, &sha, &Held::default())? {
            // A candidate for gc from now: an older row restarts its clock (a publish may
            // have relied on the reference without a claim).
            tx.execute(
                "INSERT INTO gc_candidates (sha256, since) VALUES ($1, $2) \
                 ON CONFLICT (sha256) DO UPDATE SET since = GREATEST(gc_candidates.since, excluded.since)",
                &[&sha, &now],
            )?;
            reclaim.blobs += 1;
            reclaim.bytes += size as u64;
        }
    }
    Ok(reclaim)
}

impl RetentionStore for PgCatalog {
    fn policy(&self, archive: &ArchiveName) -> Result<Option<Policy>> {
        let row = self.conn()?.query_opt(
            "SELECT p.policy FROM retention_policies p JOIN archives a ON a.id = p.archive_id WHERE a.name = $1",
            &[&archive.as_str()],
        )?;
        row.map(|r| {
            let json: &str = r.try_get(0)?;
            serde_json::from_str(json).map_err(|e| bad(format!("retention policy of {archive}: {e}")))
        })
        .transpose()
    }

    fn set_policy(&self, archive: &ArchiveName, policy: Option<&Policy>, actor: &str, now: i64) -> Result<bool> {
        let mut conn = self.conn()?;
        let Some(id) = archive_id(&mut *conn, archive)? else { return Ok(false) };
        match policy {
            Some(p) => conn.execute(
                "INSERT INTO retention_policies (archive_id, policy, set_at, set_by) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (archive_id) DO UPDATE SET policy = excluded.policy, set_at = excluded.set_at, \
                 set_by = excluded.set_by",
                &[&id, &serde_json::to_string(p).expect("a policy serializes"), &now, &actor],
            )?,
            None => conn.execute("DELETE FROM retention_policies WHERE archive_id = $1", &[&id])?,
        };
        Ok(true)
    }

    fn pin(&self, archive: &ArchiveName, id: SnapshotId, reason: &str, actor: &str, now: i64) -> Result<bool> {
        let mut conn = self.conn()?;
        let Some(archive_id) = archive_id(&mut *conn, archive)? else { return Ok(false) };
        conn.execute(
            "INSERT INTO snapshot_pins (archive_id, id, reason, pinned_at, pinned_by) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (archive_id, id) DO UPDATE SET reason = excluded.reason, pinned_at = excluded.pinned_at, \
             pinned_by = excluded.pinned_by",
            &[&archive_id, &id.unix(), &reason, &now, &actor],
        )?;
        Ok(true)
    }

    fn unpin(&self, archive: &ArchiveName, id: SnapshotId) -> Result<bool> {
        let mut conn = self.conn()?;
        let Some(archive_id) = archive_id(&mut *conn, archive)? else { return Ok(false) };
        let n =
            conn.execute("DELETE FROM snapshot_pins WHERE archive_id = $1 AND id = $2", &[&archive_id, &id.unix()])?;
        Ok(n == 1)
    }

    fn pins(&self, archive: &ArchiveName) -> Result<Vec<Pin>> {
        pins_on(&mut *self.conn()?, archive)
    }

    fn preview_deletion(&self, archive: &ArchiveName, ids: &[SnapshotId]) -> Result<Reclaim> {
        let mut conn = self.conn()?;
        let mut tx =
            conn.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start()?;
        let Some(archive_id) = archive_id(&mut tx, archive)? else { return Ok(Reclaim::default()) };
        let seqs = snapshot_seqs(&mut tx, archive_id)?;
        let doomed: HashSet<i64> = ids.iter().map(|i| i.unix()).collect();
        let mut reclaim = Reclaim::default();
        let mut unreferenced: HashMap<Vec<u8>, Held> = HashMap::new();
        // Each run of deleted snapshots between two kept ones goes as one span.
        for (a, b, run) in deleted_spans(&seqs, &doomed) {
            reclaim.snapshots += run.len() as u64;
            for row in doomed_rows(&mut tx, archive_id, a, b)? {
                reclaim.entry_rows += 1;
                if let Some(sha) = row.sha256 {
                    unreferenced.entry(sha).or_insert(Held { size: row.size, ..Held::default() }).entry_rows += 1;
                }
            }
            reclaim.package_rows += package_rows_between(&mut tx, archive_id, a, b)?;
            for seq in run {
                for (sha, size) in resigned_of(&mut tx, archive_id, seq)? {
                    unreferenced.entry(sha).or_insert(Held { size, ..Held::default() }).resigned += 1;
                }
            }
        }
        for (sha, held) in unreferenced {
            if !still_referenced(&mut tx, &sha, &held)? {
                reclaim.blobs += 1;
                reclaim.bytes += held.size as u64;
            }
        }
        tx.commit()?;
        Ok(reclaim)
    }

    fn delete_snapshot(&self, archive: &ArchiveName, id: SnapshotId, actor: &str, now: i64) -> Result<Deletion> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        let Some(row) = tx.query_opt("SELECT id FROM archives WHERE name = $1 FOR UPDATE", &[&archive.as_str()])?
        else {
            return Ok(Deletion::Kept("no such archive".into()));
        };
        let archive_id: i64 = row.try_get(0)?;
        tx.batch_execute("LOCK TABLE snapshot_pins, rollouts IN SHARE MODE")?;
        let found = tx.query_opt(
            "SELECT seq, committed_at, digest FROM snapshots WHERE archive_id = $1 AND id = $2",
            &[&archive_id, &id.unix()],
        )?;
        let Some(found) = found else { return Ok(Deletion::AlreadyGone) };
        let (seq, committed_at, digest): (i64, i64, Vec<u8>) =
            (found.try_get(0)?, found.try_get(1)?, found.try_get(2)?);
        let (a, b) = match must_keep(&mut tx, archive, archive_id, seq, id)? {
            Ok(neighbours) => neighbours,
            Err(why) => return Ok(Deletion::Kept(why)),
        };
        let reclaim = remove_snapshot_rows(&mut tx, archive_id, (a, b, seq), now)?;
        tx.execute(
            "INSERT INTO deleted_snapshots (archive_id, seq, id, committed_at, digest, deleted_at, deleted_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[&archive_id, &seq, &id.unix(), &committed_at, &digest, &now, &actor],
        )?;
        tx.execute("DELETE FROM snapshots WHERE archive_id = $1 AND seq = $2", &[&archive_id, &seq])?;
        tx.commit()?;
        Ok(Deletion::Deleted(reclaim))
    }

    fn under_retention(&self, archive: &ArchiveName) -> Result<bool> {
        let row = self.conn()?.query_one(
            "SELECT EXISTS (SELECT 1 FROM retention_policies p JOIN archives a ON a.id = p.archive_id WHERE a.name = $1) \
             OR EXISTS (SELECT 1 FROM deleted_snapshots d JOIN archives a ON a.id = d.archive_id WHERE a.name = $1)",
            &[&archive.as_str()],
        )?;
        Ok(row.try_get(0)?)
    }

    fn deleted_snapshots(&self, archive: &ArchiveName) -> Result<Vec<DeletedSnapshot>> {
        let rows = self.conn()?.query(
            "SELECT d.id, d.deleted_at FROM deleted_snapshots d JOIN archives a ON a.id = d.archive_id \
             WHERE a.name = $1 ORDER BY d.id",
            &[&archive.as_str()],
        )?;
        rows.iter()
            .map(|r| Ok(DeletedSnapshot { id: snapshot_id(r.try_get(0)?)?, deleted_at: r.try_get(1)? }))
            .collect()
    }
}
