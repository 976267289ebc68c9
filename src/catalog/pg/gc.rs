//! `GcCatalog` on PostgreSQL. SQLite's collection holds the write lock every commit takes
//! while it re-checks and sets bytes aside; here a `SHARE` lock on `blob_archives` and
//! `resigned_files` does the same: commits (which insert into them) wait until the batch's
//! bytes are aside, so no commit can come to reference a blob being collected.

use postgres::GenericClient;

use super::PgCatalog;
use super::rows::bad;
use crate::catalog::{CatalogError, Result};
use crate::domain::Digest;
use crate::gc::{GcCatalog, GcError, Verdict};

fn referenced(c: &mut impl GenericClient, sha: &[u8]) -> Result<bool> {
    let row = c.query_one(
        "SELECT EXISTS (SELECT 1 FROM blob_archives WHERE sha256 = $1 AND rows > 0) \
             OR EXISTS (SELECT 1 FROM resigned_files WHERE sha256 = $1)",
        &[&sha],
    )?;
    Ok(row.try_get(0)?)
}

/// `Referenced`, `RecentlyUsed` (uploaded after `before`) or `Collected`.
fn check(c: &mut impl GenericClient, sha: &[u8], before: i64) -> Result<Verdict> {
    if referenced(c, sha)? {
        return Ok(Verdict::Referenced);
    }
    let uploaded = c.query_one(
        "SELECT EXISTS (SELECT 1 FROM upload_grants WHERE sha256 = $1 AND granted_at > $2)",
        &[&sha, &before],
    )?;
    Ok(if uploaded.try_get(0)? { Verdict::RecentlyUsed } else { Verdict::Collected })
}

fn collect_one(
    tx: &mut postgres::Transaction<'_>,
    digest: &Digest,
    before: i64,
    retire: &mut dyn FnMut(&Digest) -> std::io::Result<bool>,
) -> Result<Verdict, GcError> {
    let sha = &digest.as_bytes()[..];
    let due = tx
        .query_one("SELECT EXISTS (SELECT 1 FROM gc_candidates WHERE sha256 = $1 AND since <= $2)", &[&sha, &before])
        .map_err(CatalogError::from)?;
    if !due.try_get::<_, bool>(0).map_err(CatalogError::from)? {
        return Ok(Verdict::Gone);
    }
    let verdict = match check(tx, sha, before)? {
        Verdict::Collected if !retire(digest)? => Verdict::RecentlyUsed,
        v => v,
    };
    if matches!(verdict, Verdict::Collected | Verdict::Referenced) {
        tx.execute("DELETE FROM gc_candidates WHERE sha256 = $1", &[&sha]).map_err(CatalogError::from)?;
    }
    Ok(verdict)
}

impl GcCatalog for PgCatalog {
    fn gc_due(&self, before: i64, after: Option<(i64, Digest)>, limit: u32) -> Result<Vec<(i64, Digest)>> {
        let (since, sha) = after.map_or((i64::MIN, Vec::new()), |(s, d)| (s, d.as_bytes().to_vec()));
        let rows = self.conn()?.query(
            "SELECT since, sha256 FROM gc_candidates WHERE since <= $1 AND (since, sha256) > ($2, $3) \
             ORDER BY since, sha256 LIMIT $4",
            &[&before, &since, &sha, &i64::from(limit)],
        )?;
        rows.iter()
            .map(|r| {
                let sha: &[u8] = r.try_get(1)?;
                let digest = Digest::from_slice(sha).ok_or_else(|| bad("gc candidate digest is not 32 bytes"))?;
                Ok((r.try_get(0)?, digest))
            })
            .collect()
    }

    fn gc_check(&self, digest: &Digest, before: i64) -> Result<Verdict> {
        check(&mut *self.conn()?, &digest.as_bytes()[..], before)
    }

    fn gc_collect(
        &self,
        batch: &[Digest],
        before: i64,
        retire: &mut dyn FnMut(&Digest) -> std::io::Result<bool>,
    ) -> Result<Vec<Verdict>, GcError> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction().map_err(CatalogError::from)?;
        tx.batch_execute("LOCK TABLE blob_archives, resigned_files IN SHARE MODE").map_err(CatalogError::from)?;
        let verdicts = batch.iter().map(|d| collect_one(&mut tx, d, before, retire)).collect::<Result<Vec<_>, _>>()?;
        tx.commit().map_err(CatalogError::from)?;
        Ok(verdicts)
    }

    fn gc_enqueue_if_unreferenced(&self, digest: &Digest, now: i64) -> Result<bool> {
        let mut conn = self.conn()?;
        let sha = &digest.as_bytes()[..];
        if check(&mut *conn, sha, i64::MAX)? == Verdict::Referenced {
            return Ok(false);
        }
        let n = conn.execute(
            "INSERT INTO gc_candidates (sha256, since) VALUES ($1, $2) ON CONFLICT (sha256) DO NOTHING",
            &[&sha, &now],
        )?;
        Ok(n == 1)
    }

    fn gc_referenced(&self, digest: &Digest) -> Result<bool> {
        referenced(&mut *self.conn()?, &digest.as_bytes()[..])
    }

    fn gc_is_candidate(&self, digest: &Digest) -> Result<bool> {
        let row = self
            .conn()?
            .query_one("SELECT EXISTS (SELECT 1 FROM gc_candidates WHERE sha256 = $1)", &[&&digest.as_bytes()[..]])?;
        Ok(row.try_get(0)?)
    }
}
