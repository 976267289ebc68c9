//! `ChannelStore` on the embedded SQLite catalog (schema/0008_channels.sql).

use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::{CatalogError, Result, SqliteCatalog};
use crate::domain::{ChannelName, NodeName};
use crate::rollout::gate::RingHealth;
use crate::rollout::store::{ROLLOUT_COLUMNS, RingCount, StoredRollout, parse_spec, pause_reason, rings_json};
use crate::rollout::{ChannelRecord, ChannelStore, ChannelWrite, Event, Rollout};

fn bad(msg: impl Into<String>) -> CatalogError {
    CatalogError::Corrupt(msg.into())
}

fn read_rollout(r: &rusqlite::Row) -> rusqlite::Result<StoredRollout> {
    Ok(StoredRollout {
        id: r.get(0)?,
        requested: r.get(1)?,
        target: r.get(2)?,
        started_at: r.get(3)?,
        status: r.get(4)?,
        reason: r.get(5)?,
        ended_at: r.get(6)?,
        resumed_at: r.get(7)?,
        rings: r.get(8)?,
    })
}

fn record(conn: &rusqlite::Connection, row: (i64, String, String, i64, i64, i64)) -> Result<ChannelRecord> {
    let (cid, name, spec, version, created_at, updated_at) = row;
    let spec = parse_spec(&name, &spec)?;
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ROLLOUT_COLUMNS} FROM rollouts WHERE channel_id = ?1 ORDER BY id DESC LIMIT 1"
    ))?;
    let rollout = stmt.query_row([cid], read_rollout).optional()?.map(StoredRollout::parse).transpose()?;
    Ok(ChannelRecord {
        id: cid,
        name: name.parse().map_err(|e| bad(format!("channel name {name:?}: {e}")))?,
        spec,
        version,
        created_at,
        updated_at,
        rollout,
    })
}

type ChannelRow = (i64, String, String, i64, i64, i64);

fn channel_row(r: &rusqlite::Row) -> rusqlite::Result<ChannelRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
}

const CHANNEL_COLUMNS: &str = "id, name, spec, version, created_at, updated_at";

impl ChannelStore for SqliteCatalog {
    fn channel(&self, name: &ChannelName) -> Result<Option<ChannelRecord>> {
        let conn = self.conn()?;
        let row = conn
            .prepare_cached(&format!("SELECT {CHANNEL_COLUMNS} FROM channels WHERE name = ?1"))?
            .query_row([name.as_str()], channel_row)
            .optional()?;
        row.map(|r| record(&conn, r)).transpose()
    }

    fn channels(&self) -> Result<Vec<ChannelRecord>> {
        let conn = self.conn()?;
        let rows = conn
            .prepare_cached(&format!("SELECT {CHANNEL_COLUMNS} FROM channels ORDER BY name"))?
            .query_map([], channel_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter().map(|r| record(&conn, r)).collect()
    }

    fn save(&self, w: &ChannelWrite) -> Result<bool> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current: Option<(i64, i64)> = tx
            .query_row("SELECT id, version FROM channels WHERE name = ?1", [w.name.as_str()], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        let spec = serde_json::to_string(&w.spec.to_json()).expect("serializable");
        let channel_id = match (current, w.expected_version) {
            (None, None) => {
                tx.execute(
                    "INSERT INTO channels (name, archive, spec, version, created_at, updated_at) \
                     VALUES (?1, ?2, ?3, 1, ?4, ?4)",
                    params![w.name.as_str(), w.spec.archive.as_str(), spec, w.now],
                )?;
                tx.last_insert_rowid()
            }
            (Some((cid, v)), Some(expected)) if v == expected => {
                tx.execute(
                    "UPDATE channels SET archive = ?2, spec = ?3, version = version + 1, updated_at = ?4 WHERE id = ?1",
                    params![cid, w.spec.archive.as_str(), spec, w.now],
                )?;
                // The rings may have changed, and nodes with them: counters are recounted.
                tx.execute(
                    "DELETE FROM rollout_ring_health WHERE rollout_id IN (SELECT id FROM rollouts WHERE channel_id = ?1)",
                    [cid],
                )?;
                cid
            }
            _ => return Ok(false),
        };
        let mut new_id = 0;
        for r in w.rollouts {
            new_id = write_rollout(&tx, channel_id, r)?.unwrap_or(new_id);
        }
        // A new rollout's events name it by id, known only now: 0 stands for "the new one".
        let mut ev = tx.prepare_cached(
            "INSERT INTO channel_events (channel_id, at, actor, action, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for e in w.events {
            let mut detail = e.detail.clone();
            if detail.get("rollout") == Some(&serde_json::json!(0)) {
                detail["rollout"] = serde_json::json!(new_id);
            }
            ev.execute(params![channel_id, e.at, e.actor, e.action, detail.to_string()])?;
        }
        drop(ev);
        tx.commit()?;
        Ok(true)
    }

    fn record_report(&self, rings: &RingCount, node: &NodeName, failed: bool, at: i64) -> Result<Vec<RingHealth>> {
        let mut conn = self.conn()?;
        // IMMEDIATE: reports of one rollout are counted one after the other.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut health = match stored_health(&tx, rings)? {
            Some(h) => h,
            None => {
                let h = rings.count(&reports_since(&tx, rings.rollout_id, rings.since)?);
                tx.execute("DELETE FROM rollout_ring_health WHERE rollout_id = ?1", [rings.rollout_id])?;
                for (ring, c) in h.iter().enumerate() {
                    tx.prepare_cached(
                        "INSERT INTO rollout_ring_health (rollout_id, ring, since, reports, failures) VALUES (?1, ?2, ?3, ?4, ?5)",
                    )?
                    .execute(params![rings.rollout_id, ring as i64, rings.since, c.reports, c.failures])?;
                }
                h
            }
        };
        let previous: Option<(bool, i64)> = tx
            .prepare_cached("SELECT failed, at FROM rollout_reports WHERE rollout_id = ?1 AND node = ?2")?
            .query_row(params![rings.rollout_id, node.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        tx.prepare_cached(
            "INSERT INTO rollout_reports (rollout_id, node, failed, at) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (rollout_id, node) DO UPDATE SET failed = excluded.failed, at = excluded.at",
        )?
        .execute(params![rings.rollout_id, node.as_str(), failed, at])?;
        let ring = (rings.ring_of)(node);
        let h = &mut health[ring];
        h.count_report(previous, failed, rings.since);
        tx.prepare_cached(
            "UPDATE rollout_ring_health SET reports = ?3, failures = ?4 WHERE rollout_id = ?1 AND ring = ?2",
        )?
        .execute(params![rings.rollout_id, ring as i64, h.reports, h.failures])?;
        tx.commit()?;
        Ok(health)
    }

    fn ring_health(&self, rings: &RingCount) -> Result<Vec<RingHealth>> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
        let health = match stored_health(&tx, rings)? {
            Some(h) => h,
            None => rings.count(&reports_since(&tx, rings.rollout_id, rings.since)?),
        };
        tx.finish()?;
        Ok(health)
    }

    fn reports(&self, rollout_id: i64, since: i64) -> Result<Vec<(NodeName, bool)>> {
        reports_since(&*self.conn()?, rollout_id, since)
    }

    fn history(&self, name: &ChannelName) -> Result<Vec<Event>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT e.at, e.actor, e.action, e.detail FROM channel_events e JOIN channels c ON c.id = e.channel_id \
             WHERE c.name = ?1 ORDER BY e.id",
        )?;
        let rows = stmt.query_map([name.as_str()], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?))
        })?;
        rows.map(|r| {
            let (at, actor, action, detail) = r?;
            let detail = serde_json::from_str(&detail).map_err(|e| bad(format!("event detail: {e}")))?;
            Ok(Event { at, actor, action, detail })
        })
        .collect()
    }
}

/// Inserts (`id` 0, returning the new id) or updates a rollout.
fn write_rollout(tx: &rusqlite::Transaction, channel_id: i64, r: &Rollout) -> Result<Option<i64>> {
    let values = params![
        channel_id,
        r.requested.unix(),
        r.target.unix(),
        r.started_at,
        r.status.name(),
        pause_reason(&r.status),
        r.ended_at,
        r.resumed_at,
        rings_json(r),
        r.id,
    ];
    if r.id == 0 {
        tx.execute(
            "INSERT INTO rollouts (channel_id, requested, target, started_at, status, reason, ended_at, resumed_at, rings) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            &values[..9],
        )?;
        return Ok(Some(tx.last_insert_rowid()));
    } else {
        tx.execute(
            "UPDATE rollouts SET status = ?5, reason = ?6, ended_at = ?7, resumed_at = ?8, rings = ?9 \
             WHERE id = ?10 AND channel_id = ?1 AND requested = ?2 AND target = ?3 AND started_at = ?4",
            values,
        )?;
    }
    Ok(None)
}

fn reports_since(conn: &rusqlite::Connection, rollout_id: i64, since: i64) -> Result<Vec<(NodeName, bool)>> {
    let mut stmt = conn
        .prepare_cached("SELECT node, failed FROM rollout_reports WHERE rollout_id = ?1 AND at >= ?2 ORDER BY node")?;
    let rows = stmt.query_map(params![rollout_id, since], |r| Ok((r.get::<_, String>(0)?, r.get::<_, bool>(1)?)))?;
    rows.map(|r| {
        let (node, failed) = r?;
        Ok((node.parse().map_err(|e| bad(format!("report node {node:?}: {e}")))?, failed))
    })
    .collect()
}

/// The counters of every ring, if they count from `rings.since` (else they are stale).
fn stored_health(conn: &rusqlite::Connection, rings: &RingCount) -> Result<Option<Vec<RingHealth>>> {
    let mut stmt = conn.prepare_cached(
        "SELECT ring, since, reports, failures FROM rollout_ring_health WHERE rollout_id = ?1 ORDER BY ring",
    )?;
    let rows = stmt.query_map([rings.rollout_id], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, u32>(2)?, r.get::<_, u32>(3)?))
    })?;
    let rows: Vec<_> = rows.collect::<rusqlite::Result<_>>()?;
    let current = rows.len() == rings.rings
        && rows.iter().enumerate().all(|(i, (ring, since, _, _))| *ring == i as i64 && *since == rings.since);
    Ok(current.then(|| {
        rows.iter().map(|(_, _, reports, failures)| RingHealth { reports: *reports, failures: *failures }).collect()
    }))
}
