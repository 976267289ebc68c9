//! `RetentionStore` on the embedded SQLite catalog (schema/0009_lifecycle.sql).

use rusqlite::{OptionalExtension, params};

use super::{CatalogError, Result, SqliteCatalog};
use crate::domain::{ArchiveName, SnapshotId};
use crate::retention::{Pin, Policy, RetentionStore};

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
        let conn = self.conn()?;
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
        Ok(out)
    }
}
