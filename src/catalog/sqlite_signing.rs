//! `SigningStore` on the embedded SQLite catalog (schema/0006_signing.sql).

use rusqlite::{OptionalExtension, params};

use super::{CatalogError, Result, SnapshotKey, SqliteCatalog};
use crate::domain::{ArchiveName, Digest, RelPath};
use crate::signing::store::{Recorded, SigningStore, StoredKey};

impl SigningStore for SqliteCatalog {
    fn signing_key(&self, archive: &ArchiveName) -> Result<Option<StoredKey>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT k.fingerprint, k.secret_key, k.public_key, k.set_at FROM archive_signing k \
             JOIN archives a ON a.id = k.archive_id WHERE a.name = ?1",
        )?;
        Ok(stmt
            .query_row([archive.as_str()], |r| {
                Ok(StoredKey {
                    fingerprint: r.get(0)?,
                    secret_key: r.get(1)?,
                    public_key: r.get(2)?,
                    set_at: r.get(3)?,
                })
            })
            .optional()?)
    }

    fn set_signing_key(&self, archive: &ArchiveName, key: Option<&StoredKey>, now: i64) -> Result<bool> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        if key.is_some() {
            tx.execute(
                "INSERT INTO archives (name, created_at) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
                params![archive.as_str(), now],
            )?;
        }
        let id: Option<i64> =
            tx.query_row("SELECT id FROM archives WHERE name = ?1", [archive.as_str()], |r| r.get(0)).optional()?;
        let Some(id) = id else { return Ok(false) };
        let had = tx.execute("DELETE FROM archive_signing WHERE archive_id = ?1", [id])? > 0;
        if let Some(k) = key {
            tx.execute(
                "INSERT INTO archive_signing (archive_id, fingerprint, secret_key, public_key, set_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, k.fingerprint, k.secret_key, k.public_key, k.set_at],
            )?;
        }
        tx.commit()?;
        Ok(had)
    }

    fn resigned_bases(&self, at: SnapshotKey, path: &RelPath) -> Result<u64> {
        let conn = self.conn()?;
        let mut stmt = conn
            .prepare_cached("SELECT COUNT(*) FROM resigned_files WHERE archive_id = ?1 AND seq = ?2 AND path = ?3")?;
        Ok(stmt.query_row(params![at.archive_id, at.seq as i64, path.as_str()], |r| r.get::<_, i64>(0))? as u64)
    }

    fn resigned(&self, at: SnapshotKey, path: &RelPath, base: &str) -> Result<Option<Recorded>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT sha256, size, made_at FROM resigned_files WHERE archive_id = ?1 AND seq = ?2 AND path = ?3 AND base = ?4",
        )?;
        let row: Option<(Vec<u8>, i64, i64)> = stmt
            .query_row(params![at.archive_id, at.seq as i64, path.as_str(), base], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        row.map(|(sha, size, made_at)| {
            let sha256 = Digest::from_slice(&sha)
                .ok_or_else(|| CatalogError::Corrupt("re-signed file digest is not 32 bytes".into()))?;
            Ok(Recorded { sha256, size: size as u64, made_at })
        })
        .transpose()
    }

    fn record_resigned(&self, at: SnapshotKey, path: &RelPath, base: &str, file: Recorded) -> Result<Recorded> {
        self.conn()?.execute(
            "INSERT INTO resigned_files (archive_id, seq, path, base, sha256, size, made_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
            params![
                at.archive_id,
                at.seq as i64,
                path.as_str(),
                base,
                &file.sha256.as_bytes()[..],
                file.size as i64,
                file.made_at
            ],
        )?;
        self.resigned(at, path, base)?.ok_or_else(|| CatalogError::Corrupt("a recorded re-signed file vanished".into()))
    }
}
