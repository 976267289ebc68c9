//! `ScrubCatalog` on the embedded SQLite catalog (schema/0012_scrub.sql).

use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::{CatalogError, Result, SqliteCatalog};
use crate::domain::{ArchiveName, Digest};
use crate::scrub::ScrubError;
use crate::scrub::catalog::{Damage, DamageSource, ProblemKind, Quarantined, ScrubCatalog, Selection};

fn digest_of(sha: Vec<u8>) -> Result<Digest> {
    Digest::from_slice(&sha).ok_or_else(|| CatalogError::Corrupt("scrub digest is not 32 bytes".into()))
}

fn kind_of(s: &str) -> Result<ProblemKind> {
    ProblemKind::parse(s).ok_or_else(|| CatalogError::Corrupt(format!("unknown scrub problem kind {s:?}")))
}

const QUARANTINE_COLUMNS: &str = "sha256, kind, found_at, size, detail, refetch";

/// A `scrub_quarantine` row as read: sha256, kind, found_at, size, detail, refetch.
type QuarantineRow = (Vec<u8>, String, i64, i64, String, Option<String>);

fn quarantined_from_row(r: &rusqlite::Row) -> rusqlite::Result<QuarantineRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
}

fn quarantined(row: QuarantineRow) -> Result<Quarantined> {
    let (sha, kind, found_at, size, detail, refetch) = row;
    Ok(Quarantined { sha256: digest_of(sha)?, kind: kind_of(&kind)?, found_at, size: size as u64, detail, refetch })
}

impl ScrubCatalog for SqliteCatalog {
    fn scrub_cursor(&self) -> Result<(u64, Option<i64>)> {
        let conn = self.conn()?;
        let row: Option<(Vec<u8>, i64)> = conn
            .query_row("SELECT position, moved_at FROM scrub_cursor WHERE id = 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let Some((pos, at)) = row else { return Ok((0, None)) };
        let pos = pos.try_into().map_err(|_| CatalogError::Corrupt("scrub cursor is not 8 bytes".into()))?;
        Ok((u64::from_be_bytes(pos), Some(at)))
    }

    fn scrub_set_cursor(&self, position: u64, at: i64) -> Result<()> {
        let conn = self.conn()?;
        conn.execute(
            "INSERT INTO scrub_cursor (id, position, moved_at) VALUES (1, ?1, ?2) \
             ON CONFLICT (id) DO UPDATE SET position = ?1, moved_at = ?2",
            params![&position.to_be_bytes()[..], at],
        )?;
        Ok(())
    }

    fn scrub_referenced(&self, sel: Selection<'_>, limit: u32) -> Result<Vec<Digest>> {
        let conn = self.conn()?;
        // Blobs compare bytewise (memcmp, then length): an 8-byte bound sorts before every
        // digest it prefixes, so `>= from` and `< to` cut the space exactly at prefixes.
        let from = sel.from.to_be_bytes().to_vec();
        let after = sel.after.map(|d| d.as_bytes().to_vec()).unwrap_or_default();
        let to = sel.to.map(|t| t.to_be_bytes().to_vec());
        let mut stmt = conn.prepare_cached(
            "SELECT DISTINCT b.sha256 FROM blob_archives b \
             WHERE b.rows > 0 AND b.sha256 >= ?1 AND b.sha256 > ?2 AND (?3 IS NULL OR b.sha256 < ?3) \
             AND (?4 IS NULL OR NOT EXISTS \
                  (SELECT 1 FROM scrub_verified v WHERE v.sha256 = b.sha256 AND v.verified_at >= ?4)) \
             ORDER BY b.sha256 LIMIT ?5",
        )?;
        let rows = stmt.query_map(params![from, after, to, sel.not_since, limit], |r| r.get::<_, Vec<u8>>(0))?;
        rows.map(|r| digest_of(r?)).collect()
    }

    fn scrub_mark_verified(&self, digests: &[Digest], at: i64) -> Result<()> {
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO scrub_verified (sha256, verified_at) VALUES (?1, ?2) \
                 ON CONFLICT (sha256) DO UPDATE SET verified_at = ?2",
            )?;
            for d in digests {
                stmt.execute(params![&d.as_bytes()[..], at])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn scrub_quarantine(
        &self,
        digest: &Digest,
        kind: ProblemKind,
        found_at: i64,
        set_aside: &mut dyn FnMut() -> std::io::Result<String>,
    ) -> Result<bool, ScrubError> {
        let sha = &digest.as_bytes()[..];
        let mut conn = self.conn()?;
        // IMMEDIATE: gc and commits take the same lock, so the blob stays referenced.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(CatalogError::from)?;
        let archives: Vec<i64> = {
            let mut stmt = tx
                .prepare_cached("SELECT archive_id FROM blob_archives WHERE sha256 = ?1 AND rows > 0")
                .map_err(CatalogError::from)?;
            stmt.query_map([sha], |r| r.get(0)).and_then(|rows| rows.collect()).map_err(CatalogError::from)?
        };
        if archives.is_empty() {
            return Ok(false);
        }
        let mut size = 0i64;
        for archive_id in archives {
            // No index by digest on entries: a scan of the archive's rows, once per
            // quarantined blob (a rare event), rather than an index every publish pays for.
            let mut stmt = tx
                .prepare_cached("SELECT path, first_seq, size FROM entries WHERE archive_id = ?1 AND sha256 = ?2")
                .map_err(CatalogError::from)?;
            let rows: Vec<(String, i64, i64)> = stmt
                .query_map(params![archive_id, sha], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .and_then(|rows| rows.collect())
                .map_err(CatalogError::from)?;
            for (path, first_seq, s) in rows {
                size = s;
                tx.execute(
                    "INSERT OR REPLACE INTO scrub_damage (archive_id, path, first_seq, sha256) VALUES (?1, ?2, ?3, ?4)",
                    params![archive_id, path, first_seq, sha],
                )
                .map_err(CatalogError::from)?;
            }
        }
        let detail = set_aside()?;
        tx.execute(
            "INSERT OR REPLACE INTO scrub_quarantine (sha256, kind, found_at, size, detail, refetch) \
             VALUES (?1, ?2, ?3, ?4, ?5, NULL)",
            params![sha, kind.as_str(), found_at, size, detail],
        )
        .map_err(CatalogError::from)?;
        tx.commit().map_err(CatalogError::from)?;
        Ok(true)
    }

    fn scrub_quarantined(&self) -> Result<Vec<Quarantined>> {
        let conn = self.conn()?;
        let mut stmt =
            conn.prepare_cached(&format!("SELECT {QUARANTINE_COLUMNS} FROM scrub_quarantine ORDER BY sha256"))?;
        let rows: Vec<_> = stmt.query_map([], quarantined_from_row)?.collect::<rusqlite::Result<_>>()?;
        rows.into_iter().map(quarantined).collect()
    }

    fn scrub_find(&self, digest: &Digest) -> Result<Option<Quarantined>> {
        let conn = self.conn()?;
        let mut stmt =
            conn.prepare_cached(&format!("SELECT {QUARANTINE_COLUMNS} FROM scrub_quarantine WHERE sha256 = ?1"))?;
        stmt.query_row([&digest.as_bytes()[..]], quarantined_from_row).optional()?.map(quarantined).transpose()
    }

    fn scrub_lift(&self, digest: &Digest) -> Result<()> {
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM scrub_damage WHERE sha256 = ?1", [&digest.as_bytes()[..]])?;
        tx.execute("DELETE FROM scrub_quarantine WHERE sha256 = ?1", [&digest.as_bytes()[..]])?;
        tx.commit()?;
        Ok(())
    }

    fn scrub_note_refetch(&self, digest: &Digest, note: &str) -> Result<()> {
        let conn = self.conn()?;
        conn.execute(
            "UPDATE scrub_quarantine SET refetch = ?2 WHERE sha256 = ?1",
            params![&digest.as_bytes()[..], note],
        )?;
        Ok(())
    }

    fn scrub_is_referenced(&self, digest: &Digest) -> Result<bool> {
        let conn = self.conn()?;
        let mut stmt =
            conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM blob_archives WHERE sha256 = ?1 AND rows > 0)")?;
        Ok(stmt.query_row([&digest.as_bytes()[..]], |r| r.get(0))?)
    }

    fn scrub_sources(&self, digest: &Digest) -> Result<Vec<DamageSource>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT a.name, d.path, s.source FROM scrub_damage d JOIN archives a ON a.id = d.archive_id \
             JOIN snapshots s ON s.archive_id = d.archive_id \
             AND s.seq = (SELECT MIN(seq) FROM snapshots WHERE archive_id = d.archive_id AND seq >= d.first_seq) \
             WHERE d.sha256 = ?1 ORDER BY a.name, d.path, d.first_seq DESC",
        )?;
        let rows: Vec<(String, String, String)> = stmt
            .query_map([&digest.as_bytes()[..]], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?;
        rows.into_iter()
            .map(|(archive, path, source)| {
                let source = serde_json::from_str(&source)
                    .map_err(|e| CatalogError::Corrupt(format!("snapshot source of {archive}: {e}")))?;
                Ok(DamageSource { archive, path, source })
            })
            .collect()
    }

    fn scrub_damage(&self, archive: &ArchiveName) -> Result<Vec<Damage>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT d.path, d.sha256, q.kind, q.found_at, d.first_seq, e.last_seq \
             FROM archives a JOIN scrub_damage d ON d.archive_id = a.id \
             JOIN scrub_quarantine q ON q.sha256 = d.sha256 \
             JOIN entries e ON e.archive_id = d.archive_id AND e.path = d.path AND e.first_seq = d.first_seq \
             WHERE a.name = ?1 ORDER BY d.path, d.first_seq",
        )?;
        type Row = (String, Vec<u8>, String, i64, i64, Option<i64>);
        let rows: Vec<Row> = stmt
            .query_map([archive.as_str()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))?
            .collect::<rusqlite::Result<_>>()?;
        rows.into_iter()
            .map(|(path, sha, kind, found_at, first, last)| {
                Ok(Damage {
                    path,
                    sha256: digest_of(sha)?,
                    kind: kind_of(&kind)?,
                    found_at,
                    first_seq: first as u64,
                    last_seq: last.map(|l| l as u64),
                })
            })
            .collect()
    }
}
