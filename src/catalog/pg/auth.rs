//! `AuthStore` on PostgreSQL (schema/postgres/0002_auth.sql).

use postgres::Row;

use super::PgCatalog;
use super::rows::bad;
use crate::auth::{AuthStore, Scope, TokenRecord, scopes_from_json, scopes_to_json};
use crate::catalog::Result;
use crate::domain::{ArchiveName, Digest};

const COLUMNS: &str = "id, name, scopes, created_at, expires_at, revoked_at, last_used_at, secret_hash";

fn record(r: &Row) -> Result<(TokenRecord, Digest)> {
    let hash: &[u8] = r.try_get(7)?;
    let record = TokenRecord {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        scopes: scopes_from_json(r.try_get(2)?),
        created_at: r.try_get(3)?,
        expires_at: r.try_get(4)?,
        revoked_at: r.try_get(5)?,
        last_used_at: r.try_get(6)?,
    };
    Ok((record, Digest::from_slice(hash).ok_or_else(|| bad("token hash is not 32 bytes"))?))
}

impl AuthStore for PgCatalog {
    fn insert_token(
        &self,
        name: &str,
        secret_hash: &Digest,
        scopes: &[Scope],
        now: i64,
        expires_at: Option<i64>,
    ) -> Result<i64> {
        let row = self.conn()?.query_one(
            "INSERT INTO tokens (name, secret_hash, scopes, created_at, expires_at) VALUES ($1, $2, $3, $4, $5) \
             RETURNING id",
            &[&name, &&secret_hash.as_bytes()[..], &scopes_to_json(scopes), &now, &expires_at],
        )?;
        Ok(row.try_get(0)?)
    }

    fn token(&self, id: i64) -> Result<Option<(TokenRecord, Digest)>> {
        let row = self.conn()?.query_opt(&format!("SELECT {COLUMNS} FROM tokens WHERE id = $1"), &[&id])?;
        row.as_ref().map(record).transpose()
    }

    fn tokens(&self) -> Result<Vec<TokenRecord>> {
        let rows = self.conn()?.query(&format!("SELECT {COLUMNS} FROM tokens ORDER BY id"), &[])?;
        rows.iter().map(|r| record(r).map(|(rec, _)| rec)).collect()
    }

    fn revoke_token(&self, id: i64, now: i64) -> Result<bool> {
        let n = self
            .conn()?
            .execute("UPDATE tokens SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1", &[&id, &now])?;
        Ok(n == 1)
    }

    fn set_private(&self, archive: &ArchiveName, private: bool, now: i64) -> Result<()> {
        self.conn()?.execute(
            "INSERT INTO archives (name, created_at, private) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET private = excluded.private",
            &[&archive.as_str(), &now, &private],
        )?;
        Ok(())
    }

    fn visibility(&self, archive: &ArchiveName) -> Result<Option<bool>> {
        let row = self.conn()?.query_opt("SELECT private FROM archives WHERE name = $1", &[&archive.as_str()])?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    fn grant_upload(&self, token_id: i64, digest: &Digest, now: i64) -> Result<()> {
        let mut conn = self.conn()?;
        // The grant and the gc candidate in one commit (uploaded bytes may never be
        // committed: garbage collection looks at them later).
        let mut tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO upload_grants (token_id, sha256, granted_at) VALUES ($1, $2, $3) \
             ON CONFLICT (token_id, sha256) DO UPDATE \
             SET granted_at = GREATEST(upload_grants.granted_at, excluded.granted_at)",
            &[&token_id, &&digest.as_bytes()[..], &now],
        )?;
        tx.execute(
            "INSERT INTO gc_candidates (sha256, since) VALUES ($1, $2) ON CONFLICT (sha256) DO NOTHING",
            &[&&digest.as_bytes()[..], &now],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn upload_granted(&self, token_id: i64, digest: &Digest, since: i64) -> Result<bool> {
        let row = self.conn()?.query_one(
            "SELECT EXISTS (SELECT 1 FROM upload_grants WHERE token_id = $1 AND sha256 = $2 AND granted_at >= $3)",
            &[&token_id, &&digest.as_bytes()[..], &since],
        )?;
        Ok(row.try_get(0)?)
    }

    fn touch_tokens(&self, uses: &[(i64, i64)]) -> Result<()> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        let touch =
            tx.prepare("UPDATE tokens SET last_used_at = GREATEST(COALESCE(last_used_at, 0), $2) WHERE id = $1")?;
        for (id, at) in uses {
            tx.execute(&touch, &[id, at])?;
        }
        tx.commit()?;
        Ok(())
    }
}
