//! `ChannelStore` on PostgreSQL (schema/postgres/0007_channels.sql). A save locks the
//! channel's row (or, for a new channel, relies on the unique name), and a report locks its
//! rollout's row, where SQLite holds its write lock: reports of one rollout are counted one
//! after the other.

use postgres::{GenericClient, Row, Transaction};

use super::PgCatalog;
use super::rows::bad;
use crate::catalog::Result;
use crate::domain::{ChannelName, NodeName};
use crate::rollout::gate::RingHealth;
use crate::rollout::store::{ROLLOUT_COLUMNS, RingCount, StoredRollout, parse_spec, pause_reason, rings_json};
use crate::rollout::{ChannelRecord, ChannelStore, ChannelWrite, Event, Rollout};

const CHANNEL_COLUMNS: &str = "id, name, spec, version, created_at, updated_at";

fn read_rollout(r: &Row) -> Result<StoredRollout> {
    Ok(StoredRollout {
        id: r.try_get(0)?,
        requested: r.try_get(1)?,
        target: r.try_get(2)?,
        started_at: r.try_get(3)?,
        status: r.try_get(4)?,
        reason: r.try_get(5)?,
        ended_at: r.try_get(6)?,
        resumed_at: r.try_get(7)?,
        rings: r.try_get(8)?,
    })
}

fn record(c: &mut impl GenericClient, r: &Row) -> Result<ChannelRecord> {
    let cid: i64 = r.try_get(0)?;
    let name: String = r.try_get(1)?;
    let spec = parse_spec(&name, r.try_get(2)?)?;
    let rollout = c.query_opt(
        &format!("SELECT {ROLLOUT_COLUMNS} FROM rollouts WHERE channel_id = $1 ORDER BY id DESC LIMIT 1"),
        &[&cid],
    )?;
    Ok(ChannelRecord {
        id: cid,
        name: name.parse().map_err(|e| bad(format!("channel name {name:?}: {e}")))?,
        spec,
        version: r.try_get(3)?,
        created_at: r.try_get(4)?,
        updated_at: r.try_get(5)?,
        rollout: rollout.as_ref().map(read_rollout).transpose()?.map(StoredRollout::parse).transpose()?,
    })
}

/// Inserts (`id` 0, returning the new id) or updates a rollout.
fn write_rollout(tx: &mut Transaction<'_>, channel_id: i64, r: &Rollout) -> Result<Option<i64>> {
    let (requested, target, status, rings) = (r.requested.unix(), r.target.unix(), r.status.name(), rings_json(r));
    let reason = pause_reason(&r.status);
    if r.id == 0 {
        let row = tx.query_one(
            "INSERT INTO rollouts (channel_id, requested, target, started_at, status, reason, ended_at, resumed_at, rings) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
            &[&channel_id, &requested, &target, &r.started_at, &status, &reason, &r.ended_at, &r.resumed_at, &rings],
        )?;
        return Ok(Some(row.try_get(0)?));
    }
    tx.execute(
        "UPDATE rollouts SET status = $5, reason = $6, ended_at = $7, resumed_at = $8, rings = $9 \
         WHERE id = $10 AND channel_id = $1 AND requested = $2 AND target = $3 AND started_at = $4",
        &[&channel_id, &requested, &target, &r.started_at, &status, &reason, &r.ended_at, &r.resumed_at, &rings, &r.id],
    )?;
    Ok(None)
}

fn reports_since(c: &mut impl GenericClient, rollout_id: i64, since: i64) -> Result<Vec<(NodeName, bool)>> {
    let rows = c.query(
        "SELECT node, failed FROM rollout_reports WHERE rollout_id = $1 AND at >= $2 ORDER BY node",
        &[&rollout_id, &since],
    )?;
    rows.iter()
        .map(|r| {
            let node: &str = r.try_get(0)?;
            Ok((node.parse().map_err(|e| bad(format!("report node {node:?}: {e}")))?, r.try_get(1)?))
        })
        .collect()
}

/// The counters of every ring, if they count from `rings.since` (else they are stale).
fn stored_health(c: &mut impl GenericClient, rings: &RingCount) -> Result<Option<Vec<RingHealth>>> {
    let rows = c.query(
        "SELECT ring, since, reports, failures FROM rollout_ring_health WHERE rollout_id = $1 ORDER BY ring",
        &[&rings.rollout_id],
    )?;
    let rows: Vec<(i64, i64, i64, i64)> =
        rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?))).collect::<Result<_>>()?;
    let current = rows.len() == rings.rings
        && rows.iter().enumerate().all(|(i, (ring, since, _, _))| *ring == i as i64 && *since == rings.since);
    Ok(current.then(|| {
        rows.iter()
            .map(|(_, _, reports, failures)| RingHealth { reports: *reports as u32, failures: *failures as u32 })
            .collect()
    }))
}

/// Recounts a rollout's ring counters from its reports since `rings.since`.
fn recount(tx: &mut Transaction<'_>, rings: &RingCount) -> Result<Vec<RingHealth>> {
    let health = rings.count(&reports_since(tx, rings.rollout_id, rings.since)?);
    tx.execute("DELETE FROM rollout_ring_health WHERE rollout_id = $1", &[&rings.rollout_id])?;
    for (ring, c) in health.iter().enumerate() {
        tx.execute(
            "INSERT INTO rollout_ring_health (rollout_id, ring, since, reports, failures) VALUES ($1, $2, $3, $4, $5)",
            &[&rings.rollout_id, &(ring as i64), &rings.since, &i64::from(c.reports), &i64::from(c.failures)],
        )?;
    }
    Ok(health)
}

impl ChannelStore for PgCatalog {
    fn channel(&self, name: &ChannelName) -> Result<Option<ChannelRecord>> {
        let mut conn = self.conn()?;
        let row =
            conn.query_opt(&format!("SELECT {CHANNEL_COLUMNS} FROM channels WHERE name = $1"), &[&name.as_str()])?;
        row.map(|r| record(&mut *conn, &r)).transpose()
    }

    fn channels(&self) -> Result<Vec<ChannelRecord>> {
        let mut conn = self.conn()?;
        let rows = conn.query(&format!("SELECT {CHANNEL_COLUMNS} FROM channels ORDER BY name"), &[])?;
        rows.iter().map(|r| record(&mut *conn, r)).collect()
    }

    fn save(&self, w: &ChannelWrite) -> Result<bool> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        let current =
            tx.query_opt("SELECT id, version FROM channels WHERE name = $1 FOR UPDATE", &[&w.name.as_str()])?;
        let current: Option<(i64, i64)> =
            current.map(|r| Ok::<_, crate::catalog::CatalogError>((r.try_get(0)?, r.try_get(1)?))).transpose()?;
        let spec = serde_json::to_string(&w.spec.to_json()).expect("serializable");
        let channel_id: i64 = match (current, w.expected_version) {
            (None, None) => {
                // Two creators at once: the unique name lets one insert and the other none.
                let row = tx.query_opt(
                    "INSERT INTO channels (name, archive, spec, version, created_at, updated_at) \
                     VALUES ($1, $2, $3, 1, $4, $4) ON CONFLICT (name) DO NOTHING RETURNING id",
                    &[&w.name.as_str(), &w.spec.archive.as_str(), &spec, &w.now],
                )?;
                match row {
                    Some(r) => r.try_get(0)?,
                    None => return Ok(false),
                }
            }
            (Some((cid, v)), Some(expected)) if v == expected => {
                tx.execute(
                    "UPDATE channels SET archive = $2, spec = $3, version = version + 1, updated_at = $4 WHERE id = $1",
                    &[&cid, &w.spec.archive.as_str(), &spec, &w.now],
                )?;
                // The rings may have changed, and nodes with them: counters are recounted.
                tx.execute(
                    "DELETE FROM rollout_ring_health WHERE rollout_id IN (SELECT id FROM rollouts WHERE channel_id = $1)",
                    &[&cid],
                )?;
                cid
            }
            _ => return Ok(false),
        };
        let mut new_id = 0;
        for r in w.rollouts {
            new_id = write_rollout(&mut tx, channel_id, r)?.unwrap_or(new_id);
        }
        // A new rollout's events name it by id, known only now: 0 stands for "the new one".
        for e in w.events {
            let mut detail = e.detail.clone();
            if detail.get("rollout") == Some(&serde_json::json!(0)) {
                detail["rollout"] = serde_json::json!(new_id);
            }
            tx.execute(
                "INSERT INTO channel_events (channel_id, at, actor, action, detail) VALUES ($1, $2, $3, $4, $5)",
                &[&channel_id, &e.at, &e.actor, &e.action, &detail.to_string()],
            )?;
        }
        tx.commit()?;
        Ok(true)
    }

    fn record_report(&self, rings: &RingCount, node: &NodeName, failed: bool, at: i64) -> Result<Vec<RingHealth>> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        // Reports of one rollout are counted one after the other.
        tx.execute("SELECT 1 FROM rollouts WHERE id = $1 FOR UPDATE", &[&rings.rollout_id])?;
        let mut health = match stored_health(&mut tx, rings)? {
            Some(h) => h,
            None => recount(&mut tx, rings)?,
        };
        let previous = tx.query_opt(
            "SELECT failed, at FROM rollout_reports WHERE rollout_id = $1 AND node = $2",
            &[&rings.rollout_id, &node.as_str()],
        )?;
        let previous: Option<(bool, i64)> =
            previous.map(|r| Ok::<_, crate::catalog::CatalogError>((r.try_get(0)?, r.try_get(1)?))).transpose()?;
        tx.execute(
            "INSERT INTO rollout_reports (rollout_id, node, failed, at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (rollout_id, node) DO UPDATE SET failed = excluded.failed, at = excluded.at",
            &[&rings.rollout_id, &node.as_str(), &failed, &at],
        )?;
        let ring = (rings.ring_of)(node);
        let h = &mut health[ring];
        h.count_report(previous, failed, rings.since);
        tx.execute(
            "UPDATE rollout_ring_health SET reports = $3, failures = $4 WHERE rollout_id = $1 AND ring = $2",
            &[&rings.rollout_id, &(ring as i64), &i64::from(h.reports), &i64::from(h.failures)],
        )?;
        tx.commit()?;
        Ok(health)
    }

    fn ring_health(&self, rings: &RingCount) -> Result<Vec<RingHealth>> {
        let mut conn = self.conn()?;
        let mut tx = conn.build_transaction().isolation_level(postgres::IsolationLevel::RepeatableRead).start()?;
        let health = match stored_health(&mut tx, rings)? {
            Some(h) => h,
            None => rings.count(&reports_since(&mut tx, rings.rollout_id, rings.since)?),
        };
        tx.commit()?;
        Ok(health)
    }

    fn reports(&self, rollout_id: i64, since: i64) -> Result<Vec<(NodeName, bool)>> {
        reports_since(&mut *self.conn()?, rollout_id, since)
    }

    fn history(&self, name: &ChannelName) -> Result<Vec<Event>> {
        let rows = self.conn()?.query(
            "SELECT e.at, e.actor, e.action, e.detail FROM channel_events e JOIN channels c ON c.id = e.channel_id \
             WHERE c.name = $1 ORDER BY e.id",
            &[&name.as_str()],
        )?;
        rows.iter()
            .map(|r| {
                let detail: &str = r.try_get(3)?;
                let detail = serde_json::from_str(detail).map_err(|e| bad(format!("event detail: {e}")))?;
                Ok(Event { at: r.try_get(0)?, actor: r.try_get(1)?, action: r.try_get(2)?, detail })
            })
            .collect()
    }
}
