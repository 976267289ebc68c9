//! `GcCatalog` on the embedded SQLite catalog (schema/0009_lifecycle.sql).

use rusqlite::{Connection, TransactionBehavior, params};

use super::{CatalogError, Result, SqliteCatalog};
use crate::domain::Digest;
use crate::gc::{GcCatalog, GcError, Verdict};

/// `Referenced` if a snapshot or re-signed file names the blob, `RecentlyUsed` if it was
/// uploaded after `before`, else `Collected` (free to go).
fn check(conn: &Connection, sha: &[u8], before: i64) -> Result<Verdict> {
    if referenced(conn, sha)? {
        return Ok(Verdict::Referenced);
    }
    let mut uploaded =
        conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM upload_grants WHERE sha256 = ?1 AND granted_at > ?2)")?;
    if uploaded.query_row(params![sha, before], |r| r.get::<_, bool>(0))? {
        return Ok(Verdict::RecentlyUsed);
    }
    Ok(Verdict::Collected)
}

/// One candidate, inside `gc_collect`'s transaction.
fn collect_one(
    tx: &Connection,
    digest: &Digest,
    before: i64,
    retire: &mut dyn FnMut(&Digest) -> std::io::Result<bool>,
) -> Result<Verdict, GcError> {
    let sha = &digest.as_bytes()[..];
    let sql = |e: rusqlite::Error| GcError::Catalog(e.into());
    let mut due = tx
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM gc_candidates WHERE sha256 = ?1 AND since <= ?2)")
        .map_err(sql)?;
    if !due.query_row(params![sha, before], |r| r.get::<_, bool>(0)).map_err(sql)? {
        return Ok(Verdict::Gone);
    }
    let verdict = match check(tx, sha, before)? {
        Verdict::Collected if !retire(digest)? => Verdict::RecentlyUsed,
        v => v,
    };
    if matches!(verdict, Verdict::Collected | Verdict::Referenced) {
        tx.prepare_cached("DELETE FROM gc_candidates WHERE sha256 = ?1")
            .and_then(|mut s| s.execute([sha]))
            .map_err(sql)?;
    }
    Ok(verdict)
}

fn referenced(conn: &Connection, sha: &[u8]) -> Result<bool> {
    let mut stmt = conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM blob_archives WHERE sha256 = ?1 AND rows > 0) \
             OR EXISTS (SELECT 1 FROM resigned_files WHERE sha256 = ?1)",
    )?;
    Ok(stmt.query_row([sha], |r| r.get::<_, bool>(0))?)
}

fn digest_of(sha: Vec<u8>) -> Result<Digest> {
    Digest::from_slice(&sha).ok_or_else(|| CatalogError::Corrupt("gc candidate digest is not 32 bytes".into()))
}

impl GcCatalog for SqliteCatalog {
    fn gc_due(&self, before: i64, after: Option<(i64, Digest)>, limit: u32) -> Result<Vec<(i64, Digest)>> {
        let conn = self.conn()?;
        let (since, sha) = after.map_or((i64::MIN, Vec::new()), |(s, d)| (s, d.as_bytes().to_vec()));
        let mut stmt = conn.prepare_cached(
            "SELECT since, sha256 FROM gc_candidates WHERE since <= ?1 AND (since, sha256) > (?2, ?3) \
             ORDER BY since, sha256 LIMIT ?4",
        )?;
        let rows =
            stmt.query_map(params![before, since, sha, limit], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)))?;
        rows.map(|r| {
            let (since, sha) = r?;
            Ok((since, digest_of(sha)?))
        })
        .collect()
    }

    fn gc_check(&self, digest: &Digest, before: i64) -> Result<Verdict> {
        let conn = self.conn()?;
        check(&conn, &digest.as_bytes()[..], before)
    }

    fn gc_collect(
        &self,
        batch: &[Digest],
        before: i64,
        retire: &mut dyn FnMut(&Digest) -> std::io::Result<bool>,
    ) -> Result<Vec<Verdict>, GcError> {
        let mut conn = self.conn()?;
        // IMMEDIATE: the write lock every commit takes, held until the bytes are aside.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(CatalogError::from)?;
        let verdicts = batch.iter().map(|d| collect_one(&tx, d, before, retire)).collect::<Result<Vec<_>, _>>()?;
        tx.commit().map_err(CatalogError::from)?;
        Ok(verdicts)
    }

    fn gc_enqueue_if_unreferenced(&self, digest: &Digest, now: i64) -> Result<bool> {
        let conn = self.conn()?;
        let sha = &digest.as_bytes()[..];
        if check(&conn, sha, i64::MAX)? == Verdict::Referenced {
            return Ok(false);
        }
        Ok(conn.execute("INSERT OR IGNORE INTO gc_candidates (sha256, since) VALUES (?1, ?2)", params![sha, now])? == 1)
    }

    fn gc_referenced(&self, digest: &Digest) -> Result<bool> {
        referenced(&*self.conn()?, &digest.as_bytes()[..])
    }

    fn gc_is_candidate(&self, digest: &Digest) -> Result<bool> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM gc_candidates WHERE sha256 = ?1)")?;
        Ok(stmt.query_row([&digest.as_bytes()[..]], |r| r.get::<_, bool>(0))?)
    }
}
