//! `SpaceCatalog` on the embedded SQLite catalog (schema/0013_space.sql).

use rusqlite::OptionalExtension;

use super::{Result, SqliteCatalog};
use crate::domain::ArchiveName;
use crate::space::{ArchiveBlobs, BlobSpace, SpaceCatalog};

/// The archive's rows of `blob_archives` through its index, each probed by digest for other
/// archives and re-signed files: O(blobs of the archive).
const ARCHIVE_BLOBS: &str = "\
    SELECT COUNT(*), COALESCE(SUM(size), 0), COALESCE(SUM(only), 0), COALESCE(SUM(only * size), 0) FROM ( \
        SELECT b.size AS size, \
            NOT EXISTS (SELECT 1 FROM blob_archives o \
                        WHERE o.sha256 = b.sha256 AND o.archive_id <> b.archive_id AND o.rows > 0) \
            AND NOT EXISTS (SELECT 1 FROM resigned_files r WHERE r.sha256 = b.sha256) AS only \
        FROM blob_archives b INDEXED BY blob_archives_by_archive \
        WHERE b.archive_id = ?1 AND b.rows > 0)";

impl SpaceCatalog for SqliteCatalog {
    fn archive_blobs(&self, archive: &ArchiveName) -> Result<Option<ArchiveBlobs>> {
        let conn = self.conn()?;
        let id: Option<i64> = conn
            .prepare_cached("SELECT id FROM archives WHERE name = ?1")?
            .query_row([archive.as_str()], |r| r.get(0))
            .optional()?;
        let Some(id) = id else { return Ok(None) };
        let mut stmt = conn.prepare_cached(ARCHIVE_BLOBS)?;
        let counts = stmt.query_row([id], |r| {
            let n = |i| r.get::<_, i64>(i).map(|v| v as u64);
            Ok(ArchiveBlobs {
                referenced: BlobSpace { blobs: n(0)?, bytes: n(1)? },
                unique: BlobSpace { blobs: n(2)?, bytes: n(3)? },
            })
        })?;
        Ok(Some(counts))
    }
}
