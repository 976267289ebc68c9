//! `ScrubCatalog` on PostgreSQL (schema/postgres/0005_scrub.sql). Quarantining holds a
//! `SHARE` lock on `blob_archives`, where SQLite holds its write lock: no commit, retention
//! or collection changes who references the blob while its damage is recorded.

use postgres::Row;

use super::PgCatalog;
use super::rows::bad;
use crate::catalog::{CatalogError, Result};
use crate::domain::{ArchiveName, Digest};
use crate::scrub::ScrubError;
use crate::scrub::catalog::{Damage, DamageSource, ProblemKind, Quarantined, ScrubCatalog, Selection};

fn digest(sha: &[u8]) -> Result<Digest> {
    Digest::from_slice(sha).ok_or_else(|| bad("scrub digest is not 32 bytes"))
}

fn kind(s: &str) -> Result<ProblemKind> {
    ProblemKind::parse(s).ok_or_else(|| bad(format!("unknown scrub problem kind {s:?}")))
}

const QUARANTINE_COLUMNS: &str = "sha256, kind, found_at, size, detail, refetch";

fn quarantined(r: &Row) -> Result<Quarantined> {
    Ok(Quarantined {
        sha256: digest(r.try_get(0)?)?,
        kind: kind(r.try_get(1)?)?,
        found_at: r.try_get(2)?,
        size: r.try_get::<_, i64>(3)? as u64,
        detail: r.try_get(4)?,
        refetch: r.try_get(5)?,
    })
}

impl ScrubCatalog for PgCatalog {
    fn scrub_cursor(&self) -> Result<(u64, Option<i64>)> {
        let Some(row) = self.conn()?.query_opt("SELECT position, moved_at FROM scrub_cursor WHERE id = 1", &[])? else {
            return Ok((0, None));
        };
        let pos: &[u8] = row.try_get(0)?;
        let pos: [u8; 8] = pos.try_into().map_err(|_| bad("scrub cursor is not 8 bytes"))?;
        Ok((u64::from_be_bytes(pos), Some(row.try_get(1)?)))
    }

    fn scrub_set_cursor(&self, position: u64, at: i64) -> Result<()> {
        self.conn()?.execute(
            "INSERT INTO scrub_cursor (id, position, moved_at) VALUES (1, $1, $2) \
             ON CONFLICT (id) DO UPDATE SET position = excluded.position, moved_at = excluded.moved_at",
            &[&&position.to_be_bytes()[..], &at],
        )?;
        Ok(())
    }

    fn scrub_referenced(&self, sel: Selection<'_>, limit: u32) -> Result<Vec<Digest>> {
        let from = sel.from.to_be_bytes().to_vec();
        let after = sel.after.map(|d| d.as_bytes().to_vec()).unwrap_or_default();
        let to = sel.to.map(|t| t.to_be_bytes().to_vec());
        let rows = self.conn()?.query(
            "SELECT DISTINCT b.sha256 FROM blob_archives b \
             WHERE b.rows > 0 AND b.sha256 >= $1 AND b.sha256 > $2 AND ($3::BYTEA IS NULL OR b.sha256 < $3) \
             AND ($4::BIGINT IS NULL OR NOT EXISTS \
                  (SELECT 1 FROM scrub_verified v WHERE v.sha256 = b.sha256 AND v.verified_at >= $4)) \
             ORDER BY b.sha256 LIMIT $5",
            &[&from, &after, &to, &sel.not_since, &i64::from(limit)],
        )?;
        rows.iter().map(|r| digest(r.try_get(0)?)).collect()
    }

    fn scrub_mark_verified(&self, digests: &[Digest], at: i64) -> Result<()> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        let mark = tx.prepare(
            "INSERT INTO scrub_verified (sha256, verified_at) VALUES ($1, $2) \
             ON CONFLICT (sha256) DO UPDATE SET verified_at = excluded.verified_at",
        )?;
        for d in digests {
            tx.execute(&mark, &[&&d.as_bytes()[..], &at])?;
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
        let mut tx = conn.transaction().map_err(CatalogError::from)?;
        tx.batch_execute("LOCK TABLE blob_archives IN SHARE MODE").map_err(CatalogError::from)?;
        // The entry rows naming the blob, in the archives that reference it.
        let rows = tx
            .query(
                "SELECT e.archive_id, e.path, e.first_seq, e.size FROM blob_archives b \
                 JOIN entries e ON e.archive_id = b.archive_id AND e.sha256 = b.sha256 \
                 WHERE b.sha256 = $1 AND b.rows > 0",
                &[&sha],
            )
            .map_err(CatalogError::from)?;
        if rows.is_empty() {
            return Ok(false);
        }
        let mut size = 0i64;
        for r in &rows {
            let (archive_id, path, first_seq): (i64, &str, i64) = (
                r.try_get(0).map_err(CatalogError::from)?,
                r.try_get(1).map_err(CatalogError::from)?,
                r.try_get(2).map_err(CatalogError::from)?,
            );
            size = r.try_get(3).map_err(CatalogError::from)?;
            tx.execute(
                "INSERT INTO scrub_damage (archive_id, path, first_seq, sha256) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (archive_id, path, first_seq) DO UPDATE SET sha256 = excluded.sha256",
                &[&archive_id, &path, &first_seq, &sha],
            )
            .map_err(CatalogError::from)?;
        }
        let detail = set_aside()?;
        tx.execute(
            "INSERT INTO scrub_quarantine (sha256, kind, found_at, size, detail, refetch) \
             VALUES ($1, $2, $3, $4, $5, NULL) \
             ON CONFLICT (sha256) DO UPDATE SET kind = excluded.kind, found_at = excluded.found_at, \
             size = excluded.size, detail = excluded.detail, refetch = NULL",
            &[&sha, &kind.as_str(), &found_at, &size, &detail],
        )
        .map_err(CatalogError::from)?;
        tx.commit().map_err(CatalogError::from)?;
        Ok(true)
    }

    fn scrub_quarantined(&self) -> Result<Vec<Quarantined>> {
        let rows =
            self.conn()?.query(&format!("SELECT {QUARANTINE_COLUMNS} FROM scrub_quarantine ORDER BY sha256"), &[])?;
        rows.iter().map(quarantined).collect()
    }

    fn scrub_find(&self, digest: &Digest) -> Result<Option<Quarantined>> {
        let row = self.conn()?.query_opt(
            &format!("SELECT {QUARANTINE_COLUMNS} FROM scrub_quarantine WHERE sha256 = $1"),
            &[&&digest.as_bytes()[..]],
        )?;
        row.as_ref().map(quarantined).transpose()
    }

    fn scrub_lift(&self, digest: &Digest) -> Result<()> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        tx.execute("DELETE FROM scrub_damage WHERE sha256 = $1", &[&&digest.as_bytes()[..]])?;
        tx.execute("DELETE FROM scrub_quarantine WHERE sha256 = $1", &[&&digest.as_bytes()[..]])?;
        tx.commit()?;
        Ok(())
    }

    fn scrub_note_refetch(&self, digest: &Digest, note: &str) -> Result<()> {
        self.conn()?
            .execute("UPDATE scrub_quarantine SET refetch = $2 WHERE sha256 = $1", &[&&digest.as_bytes()[..], &note])?;
        Ok(())
    }

    fn scrub_is_referenced(&self, digest: &Digest) -> Result<bool> {
        let row = self.conn()?.query_one(
            "SELECT EXISTS (SELECT 1 FROM blob_archives WHERE sha256 = $1 AND rows > 0)",
            &[&&digest.as_bytes()[..]],
        )?;
        Ok(row.try_get(0)?)
    }

    fn scrub_sources(&self, digest: &Digest) -> Result<Vec<DamageSource>> {
        let rows = self.conn()?.query(
            "SELECT a.name, d.path, s.source FROM scrub_damage d JOIN archives a ON a.id = d.archive_id \
             JOIN snapshots s ON s.archive_id = d.archive_id \
             AND s.seq = (SELECT MIN(seq) FROM snapshots WHERE archive_id = d.archive_id AND seq >= d.first_seq) \
             WHERE d.sha256 = $1 ORDER BY a.name, d.path, d.first_seq DESC",
            &[&&digest.as_bytes()[..]],
        )?;
        rows.iter()
            .map(|r| {
                let archive: String = r.try_get(0)?;
                let source: &str = r.try_get(2)?;
                let source =
                    serde_json::from_str(source).map_err(|e| bad(format!("snapshot source of {archive}: {e}")))?;
                Ok(DamageSource { archive, path: r.try_get(1)?, source })
            })
            .collect()
    }

    fn scrub_damage(&self, archive: &ArchiveName) -> Result<Vec<Damage>> {
        let rows = self.conn()?.query(
            "SELECT d.path, d.sha256, q.kind, q.found_at, d.first_seq, e.last_seq \
             FROM archives a JOIN scrub_damage d ON d.archive_id = a.id \
             JOIN scrub_quarantine q ON q.sha256 = d.sha256 \
             JOIN entries e ON e.archive_id = d.archive_id AND e.path = d.path AND e.first_seq = d.first_seq \
             WHERE a.name = $1 ORDER BY d.path, d.first_seq",
            &[&archive.as_str()],
        )?;
        rows.iter()
            .map(|r| {
                Ok(Damage {
                    path: r.try_get(0)?,
                    sha256: digest(r.try_get(1)?)?,
                    kind: kind(r.try_get(2)?)?,
                    found_at: r.try_get(3)?,
                    first_seq: r.try_get::<_, i64>(4)? as u64,
                    last_seq: r.try_get::<_, Option<i64>>(5)?.map(|l| l as u64),
                })
            })
            .collect()
    }
}
