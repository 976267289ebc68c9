//! `PackageStore` on the embedded SQLite catalog (schema/0005_packages.sql).

use rusqlite::{OptionalExtension, Row, TransactionBehavior, params};

use super::{Result, SqliteCatalog};
use crate::domain::{ArchiveName, Digest};
use crate::packages::parse::{IndexId, Kind, ParagraphHash, pool_filename};
use crate::packages::store::{
    ChangedRow, IndexChanges, IndexProgress, PackageRow, PackageStore, StoredColumns, StoredRow, Toward,
};

// Package columns joined with their index (`p` packages, `i` package_indices).
const COLUMNS: &str = "p.id, i.kind, i.suite, i.component, i.architecture, p.name, p.version, p.source, \
                       p.source_version, p.filename, p.size, p.sha256, p.first_seq, p.last_seq";
const FROM: &str = "packages p JOIN package_indices i ON i.id = p.index_id";

fn row(r: &Row) -> rusqlite::Result<PackageRow> {
    let sha: Option<Vec<u8>> = r.get(11)?;
    let index =
        IndexId { kind: Kind::from_code(r.get(1)?), suite: r.get(2)?, component: r.get(3)?, architecture: r.get(4)? };
    Ok(StoredRow {
        id: r.get(0)?,
        index,
        name: r.get(5)?,
        version: r.get(6)?,
        source: r.get(7)?,
        source_version: r.get(8)?,
        filename: r.get(9)?,
        size: r.get::<_, i64>(10)? as u64,
        sha256: sha.and_then(|s| Digest::from_slice(&s)),
        first_seq: r.get::<_, i64>(12)? as u64,
        last_seq: r.get::<_, Option<i64>>(13)?.map(|v| v as u64),
    }
    .into())
}

/// The id of an index of an archive, created on first use.
fn index_id(tx: &rusqlite::Transaction, archive_id: i64, index: &IndexId) -> Result<i64> {
    tx.prepare_cached(
        "INSERT OR IGNORE INTO package_indices (archive_id, kind, suite, component, architecture) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![archive_id, index.kind.code(), index.suite, index.component, index.architecture])?;
    Ok(tx
        .prepare_cached(
            "SELECT id FROM package_indices WHERE archive_id = ?1 AND kind = ?2 AND suite = ?3 AND component = ?4 \
             AND architecture = ?5",
        )?
        .query_row(params![archive_id, index.kind.code(), index.suite, index.component, index.architecture], |r| {
            r.get(0)
        })?)
}

impl PackageStore for SqliteCatalog {
    fn index_progress(&self, archive: &ArchiveName) -> Result<Option<IndexProgress>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT a.id, COALESCE(p.indexed_seq, 0), COALESCE((SELECT MAX(seq) FROM snapshots s WHERE s.archive_id = a.id), 0) \
             FROM archives a LEFT JOIN package_index_state p ON p.archive_id = a.id WHERE a.name = ?1",
        )?;
        Ok(stmt
            .query_row([archive.as_str()], |r| {
                Ok(IndexProgress {
                    archive_id: r.get(0)?,
                    indexed_seq: r.get::<_, i64>(1)? as u64,
                    latest_seq: r.get::<_, i64>(2)? as u64,
                })
            })
            .optional()?)
    }

    fn changed_dists_paths(&self, archive_id: i64, seq: u64) -> Result<Vec<String>> {
        let conn = self.conn()?;
        // A range of the primary key (archive, path): only rows under dists/ are read.
        let mut stmt = conn.prepare_cached(
            "SELECT DISTINCT path FROM entries WHERE archive_id = ?1 AND path >= 'dists/' AND path < 'dists0' \
             AND kind = 0 AND (first_seq = ?2 OR last_seq = ?2)",
        )?;
        let rows = stmt.query_map(params![archive_id, seq as i64], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn live_paragraphs(&self, archive_id: i64, index: &IndexId) -> Result<Vec<(i64, Option<ParagraphHash>)>> {
        let conn = self.conn()?;
        // Covered by the partial index packages_live (index_id, paragraph).
        let mut stmt = conn.prepare_cached(
            "SELECT p.id, p.paragraph FROM packages p WHERE p.last_seq IS NULL AND p.index_id = \
             (SELECT id FROM package_indices WHERE archive_id = ?1 AND kind = ?2 AND suite = ?3 \
             AND component = ?4 AND architecture = ?5)",
        )?;
        let rows = stmt.query_map(
            params![archive_id, index.kind.code(), index.suite, index.component, index.architecture],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn packages_by_id(&self, ids: &[i64]) -> Result<Vec<PackageRow>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM {FROM} WHERE p.id = ?1"))?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.extend(stmt.query_row([id], row).optional()?);
        }
        Ok(out)
    }

    fn apply_index(&self, archive_id: i64, seq: u64, changes: &mut IndexChanges) -> Result<bool> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let done: i64 = tx
            .query_row("SELECT indexed_seq FROM package_index_state WHERE archive_id = ?1", [archive_id], |r| r.get(0))
            .optional()?
            .unwrap_or(0);
        if done as u64 + 1 != seq {
            return Ok(false);
        }
        {
            let mut close =
                tx.prepare_cached("UPDATE packages SET last_seq = ?2 WHERE id = ?1 AND last_seq IS NULL")?;
            for id in &changes.close {
                close.execute(params![id, seq as i64])?;
            }
            let mut rehash = tx.prepare_cached("UPDATE packages SET paragraph = ?2 WHERE id = ?1")?;
            for (id, paragraph) in &changes.rehash {
                rehash.execute(params![id, paragraph])?;
            }
            let mut insert = tx.prepare_cached(
                "INSERT INTO packages (archive_id, index_id, name, version, source, source_version, filename, \
                 size, sha256, first_seq, paragraph) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?;
            for (index, rows) in &mut changes.insert {
                let index_id = index_id(&tx, archive_id, index)?;
                for row in rows.rows().map_err(spill_error)? {
                    let (paragraph, l) = row.map_err(spill_error)?;
                    insert.execute(params![
                        archive_id,
                        index_id,
                        l.name,
                        l.version,
                        (l.source != l.name).then_some(&l.source),
                        (l.source_version != l.version).then_some(&l.source_version),
                        (l.filename != pool_filename(index, &l.name, &l.version, &l.source)).then_some(&l.filename),
                        l.size as i64,
                        l.sha256.map(|d| d.as_bytes().to_vec()),
                        seq as i64,
                        paragraph
                    ])?;
                }
            }
            let mut problem = tx.prepare_cached(
                "INSERT OR REPLACE INTO package_index_problems (archive_id, seq, path, problem) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for (path, p) in &changes.problems {
                problem.execute(params![archive_id, seq as i64, path, p])?;
            }
        }
        tx.execute(
            "INSERT INTO package_index_state (archive_id, indexed_seq) VALUES (?1, ?2) \
             ON CONFLICT (archive_id) DO UPDATE SET indexed_seq = excluded.indexed_seq",
            params![archive_id, seq as i64],
        )?;
        tx.commit()?;
        Ok(true)
    }

    fn package_rows(&self, archive_id: i64, name: &str, kind: Kind) -> Result<Vec<PackageRow>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM {FROM} WHERE p.archive_id = ?1 AND p.name = ?2 AND i.kind = ?3"
        ))?;
        let rows = stmt.query_map(params![archive_id, name, kind.code()], row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn binaries_of(&self, archive_id: i64, source: &str) -> Result<Vec<PackageRow>> {
        let conn = self.conn()?;
        // A binary named as its source stores no source (NULL): both forms are asked for.
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM {FROM} WHERE p.archive_id = ?1 AND i.kind = 0 \
             AND (p.source = ?2 OR (p.source IS NULL AND p.name = ?2))"
        ))?;
        let rows = stmt.query_map(params![archive_id, source], row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn rows_changed_between(&self, archive_id: i64, from_seq: u64, to_seq: u64) -> Result<Vec<ChangedRow>> {
        let conn = self.conn()?;
        // UNION ALL, the second half skipping what the first has: no temp b-tree to
        // de-duplicate (it was most of a diff's time). No join: the index is an id.
        const CHANGED: &str = "id, index_id, name, version, source, source_version, filename, size, sha256, \
                               first_seq, last_seq";
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {CHANGED} FROM packages WHERE archive_id = ?1 AND first_seq > ?2 AND first_seq <= ?3 \
             UNION ALL SELECT {CHANGED} FROM packages WHERE archive_id = ?1 AND last_seq > ?2 AND last_seq <= ?3 \
             AND first_seq <= ?2"
        ))?;
        let rows = stmt.query_map(params![archive_id, from_seq as i64, to_seq as i64], |r| {
            Ok(ChangedRow {
                id: r.get(0)?,
                index_id: r.get(1)?,
                name: r.get(2)?,
                version: r.get(3)?,
                stored: StoredColumns {
                    source: r.get(4)?,
                    source_version: r.get(5)?,
                    filename: r.get(6)?,
                    size: r.get(7)?,
                    sha256: r.get(8)?,
                },
                first_seq: r.get::<_, i64>(9)? as u64,
                last_seq: r.get::<_, Option<i64>>(10)?.map(|v| v as u64),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn package_indices(&self, archive_id: i64) -> Result<Vec<(i64, IndexId)>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT id, kind, suite, component, architecture FROM package_indices WHERE archive_id = ?1",
        )?;
        let rows = stmt.query_map([archive_id], |r| {
            let index = IndexId {
                kind: Kind::from_code(r.get(1)?),
                suite: r.get(2)?,
                component: r.get(3)?,
                architecture: r.get(4)?,
            };
            Ok((r.get(0)?, index))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn names_at(&self, archive_id: i64, seq: u64, text: &str, cursor: Option<&str>, limit: u32) -> Result<Vec<String>> {
        let conn = self.conn()?;
        let pattern = format!("%{}%", text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
        let mut stmt = conn.prepare_cached(
            "SELECT DISTINCT p.name FROM packages p JOIN package_indices i ON i.id = p.index_id \
             WHERE p.archive_id = ?1 AND i.kind = 0 AND p.first_seq <= ?2 AND (p.last_seq IS NULL OR p.last_seq > ?2) \
             AND p.name LIKE ?3 ESCAPE '\\' AND (?4 IS NULL OR p.name > ?4) ORDER BY p.name LIMIT ?5",
        )?;
        let rows = stmt.query_map(params![archive_id, seq as i64, pattern, cursor, limit as i64], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn snapshot_id(&self, archive_id: i64, seq: u64, toward: Toward) -> Result<Option<crate::domain::SnapshotId>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(match toward {
            Toward::Later => "SELECT id FROM snapshots WHERE archive_id = ?1 AND seq >= ?2 ORDER BY seq ASC LIMIT 1",
            Toward::Earlier => "SELECT id FROM snapshots WHERE archive_id = ?1 AND seq <= ?2 ORDER BY seq DESC LIMIT 1",
        })?;
        let id: Option<i64> = stmt.query_row(params![archive_id, seq as i64], |r| r.get(0)).optional()?;
        id.map(|v| crate::domain::SnapshotId::from_unix(v).map_err(|e| super::CatalogError::Corrupt(e.to_string())))
            .transpose()
    }

    fn index_problems(&self, archive_id: i64, seq: u64) -> Result<Vec<(String, String)>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT path, problem FROM package_index_problems WHERE archive_id = ?1 AND seq = ?2 ORDER BY path",
        )?;
        let rows = stmt.query_map(params![archive_id, seq as i64], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

/// New rows spilled to a temporary file could not be read back.
fn spill_error(e: std::io::Error) -> super::CatalogError {
    super::CatalogError::Corrupt(format!("reading back the new packages of an index: {e}"))
}
