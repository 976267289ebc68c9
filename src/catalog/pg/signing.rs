//! `SigningStore` on PostgreSQL (schema/postgres/0003_signing_space_gc.sql).

use super::PgCatalog;
use super::rows::bad;
use crate::catalog::{Result, SnapshotKey};
use crate::domain::{ArchiveName, Digest, RelPath};
use crate::signing::store::{Recorded, SigningStore, StoredKey};

impl SigningStore for PgCatalog {
    fn signing_key(&self, archive: &ArchiveName) -> Result<Option<StoredKey>> {
        let row = self.conn()?.query_opt(
            "SELECT k.fingerprint, k.secret_key, k.public_key, k.set_at FROM archive_signing k \
             JOIN archives a ON a.id = k.archive_id WHERE a.name = $1",
            &[&archive.as_str()],
        )?;
        row.map(|r| {
            Ok(StoredKey {
                fingerprint: r.try_get(0)?,
                secret_key: r.try_get(1)?,
                public_key: r.try_get(2)?,
                set_at: r.try_get(3)?,
            })
        })
        .transpose()
    }

    fn set_signing_key(&self, archive: &ArchiveName, key: Option<&StoredKey>, now: i64) -> Result<bool> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        if key.is_some() {
            tx.execute(
                "INSERT INTO archives (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                &[&archive.as_str(), &now],
            )?;
        }
        // The archive's row locked: two operators setting keys at once apply one after the other.
        let Some(row) = tx.query_opt("SELECT id FROM archives WHERE name = $1 FOR UPDATE", &[&archive.as_str()])?
        else {
            return Ok(false);
        };
        let id: i64 = row.try_get(0)?;
        let had = tx.execute("DELETE FROM archive_signing WHERE archive_id = $1", &[&id])? > 0;
        if let Some(k) = key {
            tx.execute(
                "INSERT INTO archive_signing (archive_id, fingerprint, secret_key, public_key, set_at) \
                 VALUES ($1, $2, $3, $4, $5)",
                &[&id, &k.fingerprint, &k.secret_key, &k.public_key, &k.set_at],
            )?;
        }
        tx.commit()?;
        Ok(had)
    }

    fn resigned(&self, at: SnapshotKey, path: &RelPath, base: &str) -> Result<Option<Recorded>> {
        let row = self.conn()?.query_opt(
            "SELECT sha256, size, made_at FROM resigned_files \
             WHERE archive_id = $1 AND seq = $2 AND path = $3 AND base = $4",
            &[&at.archive_id, &(at.seq as i64), &path.as_str(), &base],
        )?;
        row.map(|r| {
            let sha: &[u8] = r.try_get(0)?;
            Ok(Recorded {
                sha256: Digest::from_slice(sha).ok_or_else(|| bad("re-signed file digest is not 32 bytes"))?,
                size: r.try_get::<_, i64>(1)? as u64,
                made_at: r.try_get(2)?,
            })
        })
        .transpose()
    }

    fn resigned_bases(&self, at: SnapshotKey, path: &RelPath) -> Result<u64> {
        let row = self.conn()?.query_one(
            "SELECT COUNT(*) FROM resigned_files WHERE archive_id = $1 AND seq = $2 AND path = $3",
            &[&at.archive_id, &(at.seq as i64), &path.as_str()],
        )?;
        Ok(row.try_get::<_, i64>(0)? as u64)
    }

    fn record_resigned(&self, at: SnapshotKey, path: &RelPath, base: &str, file: Recorded) -> Result<Recorded> {
        self.conn()?.execute(
            "INSERT INTO resigned_files (archive_id, seq, path, base, sha256, size, made_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
            &[
                &at.archive_id,
                &(at.seq as i64),
                &path.as_str(),
                &base,
                &&file.sha256.as_bytes()[..],
                &(file.size as i64),
                &file.made_at,
            ],
        )?;
        self.resigned(at, path, base)?.ok_or_else(|| bad("a recorded re-signed file vanished"))
    }
}
