//! `SpaceCatalog` on PostgreSQL: the same one-pass count as SQLite's, over the archive's
//! rows of `blob_archives`.

use super::PgCatalog;
use crate::catalog::Result;
use crate::domain::ArchiveName;
use crate::space::{ArchiveBlobs, BlobSpace, SpaceCatalog};

const ARCHIVE_BLOBS: &str = "\
    SELECT COUNT(*), COALESCE(SUM(size), 0)::BIGINT, \
           COUNT(*) FILTER (WHERE sole), COALESCE(SUM(size) FILTER (WHERE sole), 0)::BIGINT FROM ( \
        SELECT b.size AS size, \
            NOT EXISTS (SELECT 1 FROM blob_archives o \
                        WHERE o.sha256 = b.sha256 AND o.archive_id <> b.archive_id AND o.rows > 0) \
            AND NOT EXISTS (SELECT 1 FROM resigned_files r WHERE r.sha256 = b.sha256) AS sole \
        FROM blob_archives b WHERE b.archive_id = $1 AND b.rows > 0) AS blobs";

impl SpaceCatalog for PgCatalog {
    fn archive_blobs(&self, archive: &ArchiveName) -> Result<Option<ArchiveBlobs>> {
        let mut conn = self.conn()?;
        let Some(row) = conn.query_opt("SELECT id FROM archives WHERE name = $1", &[&archive.as_str()])? else {
            return Ok(None);
        };
        let id: i64 = row.try_get(0)?;
        let r = conn.query_one(ARCHIVE_BLOBS, &[&id])?;
        let n = |i| r.try_get::<_, i64>(i).map(|v| v as u64);
        Ok(Some(ArchiveBlobs {
            referenced: BlobSpace { blobs: n(0)?, bytes: n(1)? },
            unique: BlobSpace { blobs: n(2)?, bytes: n(3)? },
        }))
    }
}
