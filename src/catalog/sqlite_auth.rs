//! `AuthStore` on the embedded SQLite catalog.

use rusqlite::{OptionalExtension, params};

use super::{CatalogError, Result, SqliteCatalog};
use crate::auth::{AuthStore, Scope, TokenRecord, scopes_from_json, scopes_to_json};
use crate::domain::{ArchiveName, Digest};

fn record(r: &rusqlite::Row) -> rusqlite::Result<(TokenRecord, Vec<u8>)> {
    let scopes: String = r.get(2)?;
    Ok((
        TokenRecord {
            id: r.get(0)?,
            name: r.get(1)?,
            scopes: scopes_from_json(&scopes),
            created_at: r.get(3)?,
            expires_at: r.get(4)?,
            revoked_at: r.get(5)?,
            last_used_at: r.get(6)?,
        },
        r.get(7)?,
    ))
}

const COLUMNS: &str = "id, name, scopes, created_at, expires_at, revoked_at, last_used_at, secret_hash";

impl AuthStore for SqliteCatalog {
    fn insert_token(
        &self,
        name: &str,
        secret_hash: &Digest,
        scopes: &[Scope],
        now: i64,
        expires_at: Option<i64>,
    ) -> Result<i64> {
        let conn = self.conn()?;
        conn.execute(
            "INSERT INTO tokens (name, secret_hash, scopes, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![name, &secret_hash.as_bytes()[..], scopes_to_json(scopes), now, expires_at],
        )?;
        Ok(conn.last_insert_rowid())
    }

    fn token(&self, id: i64) -> Result<Option<(TokenRecord, Digest)>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM tokens WHERE id = ?1"))?;
        let Some((rec, hash)) = stmt.query_row([id], record).optional()? else { return Ok(None) };
        let hash =
            Digest::from_slice(&hash).ok_or_else(|| CatalogError::Corrupt("token hash is not 32 bytes".into()))?;
        Ok(Some((rec, hash)))
    }

    fn tokens(&self) -> Result<Vec<TokenRecord>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM tokens ORDER BY id"))?;
        let rows = stmt.query_map([], record)?;
        Ok(rows.map(|r| r.map(|(rec, _)| rec)).collect::<rusqlite::Result<_>>()?)
    }

    fn revoke_token(&self, id: i64, now: i64) -> Result<bool> {
        let conn = self.conn()?;
        let n =
            conn.execute("UPDATE tokens SET revoked_at = COALESCE(revoked_at, ?2) WHERE id = ?1", params![id, now])?;
        Ok(n == 1)
    }

    fn set_private(&self, archive: &ArchiveName, private: bool, now: i64) -> Result<()> {
        self.conn()?.execute(
            "INSERT INTO archives (name, created_at, private) VALUES (?1, ?2, ?3) \
             ON CONFLICT (name) DO UPDATE SET private = excluded.private",
            params![archive.as_str(), now, private],
        )?;
        Ok(())
    }

    fn visibility(&self, archive: &ArchiveName) -> Result<Option<bool>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached("SELECT private FROM archives WHERE name = ?1")?;
        Ok(stmt.query_row([archive.as_str()], |r| r.get::<_, bool>(0)).optional()?)
    }

    fn grant_upload(&self, token_id: i64, digest: &Digest, now: i64) -> Result<()> {
        let mut conn = self.conn()?;
        // One transaction, one durable commit per upload: the grant and the gc candidate
        // (uploaded bytes may never be committed: garbage collection looks at them later).
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO upload_grants (token_id, sha256, granted_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (token_id, sha256) DO UPDATE SET granted_at = MAX(granted_at, excluded.granted_at)",
            params![token_id, &digest.as_bytes()[..], now],
        )?;
        tx.execute(
            "INSERT OR IGNORE INTO gc_candidates (sha256, since) VALUES (?1, ?2)",
            params![&digest.as_bytes()[..], now],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn upload_granted(&self, token_id: i64, digest: &Digest, since: i64) -> Result<bool> {
        let conn = self.conn()?;
        let mut stmt = conn
            .prepare_cached("SELECT 1 FROM upload_grants WHERE token_id = ?1 AND sha256 = ?2 AND granted_at >= ?3")?;
        Ok(stmt.exists(params![token_id, &digest.as_bytes()[..], since])?)
    }

    fn touch_tokens(&self, uses: &[(i64, i64)]) -> Result<()> {
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        {
            let mut stmt =
                tx.prepare_cached("UPDATE tokens SET last_used_at = MAX(COALESCE(last_used_at, 0), ?2) WHERE id = ?1")?;
            for (id, at) in uses {
                stmt.execute(params![id, at])?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}
