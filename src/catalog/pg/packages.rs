//! `PackageStore` on PostgreSQL (schema/postgres/0006_packages.sql). Indexing a snapshot
//! holds an advisory lock per archive, where SQLite holds its write lock: two indexers of
//! one archive apply one after the other, and the second finds the snapshot done.

use postgres::{Row, Transaction};

use super::PgCatalog;
use super::rows::{bad, snapshot_id};
use crate::catalog::{CatalogError, Result};
use crate::domain::{ArchiveName, Digest, SnapshotId};
use crate::packages::parse::{IndexId, Kind, Listed, ParagraphHash, pool_filename};
use crate::packages::store::{
    ChangedRow, IndexChanges, IndexProgress, PackageRow, PackageStore, StoredColumns, StoredRow, Toward,
};

/// The advisory-lock class of package indexing (the object is the archive id).
const INDEX_LOCK: i32 = 0x6173_6f70; // "asop"

const COLUMNS: &str = "p.id, i.kind, i.suite, i.component, i.architecture, p.name, p.version, p.source, \
                       p.source_version, p.filename, p.size, p.sha256, p.first_seq, p.last_seq";
const FROM: &str = "packages p JOIN package_indices i ON i.id = p.index_id";

fn index_of(r: &Row, at: usize) -> Result<IndexId> {
    Ok(IndexId {
        kind: Kind::from_code(i64::from(r.try_get::<_, i16>(at)?)),
        suite: r.try_get(at + 1)?,
        component: r.try_get(at + 2)?,
        architecture: r.try_get(at + 3)?,
    })
}

fn package_row(r: &Row) -> Result<PackageRow> {
    let sha: Option<&[u8]> = r.try_get(11)?;
    Ok(StoredRow {
        id: r.try_get(0)?,
        index: index_of(r, 1)?,
        name: r.try_get(5)?,
        version: r.try_get(6)?,
        source: r.try_get(7)?,
        source_version: r.try_get(8)?,
        filename: r.try_get(9)?,
        size: r.try_get::<_, i64>(10)? as u64,
        sha256: sha.and_then(Digest::from_slice),
        first_seq: r.try_get::<_, i64>(12)? as u64,
        last_seq: r.try_get::<_, Option<i64>>(13)?.map(|v| v as u64),
    }
    .into())
}

/// The id of an index of an archive, created on first use.
fn index_id(tx: &mut Transaction<'_>, archive_id: i64, index: &IndexId) -> Result<i64> {
    let kind = index.kind.code() as i16;
    let key: [&(dyn postgres::types::ToSql + Sync); 5] =
        [&archive_id, &kind, &index.suite, &index.component, &index.architecture];
    tx.execute(
        "INSERT INTO package_indices (archive_id, kind, suite, component, architecture) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT DO NOTHING",
        &key,
    )?;
    let row = tx.query_one(
        "SELECT id FROM package_indices WHERE archive_id = $1 AND kind = $2 AND suite = $3 AND component = $4 \
         AND architecture = $5",
        &key,
    )?;
    Ok(row.try_get(0)?)
}

/// Writes one snapshot's package changes inside the indexing transaction, as arrays: a
/// round trip per thousand rows, not per row.
fn write_changes(tx: &mut Transaction<'_>, archive_id: i64, seq: i64, changes: &mut IndexChanges) -> Result<()> {
    for ids in changes.close.chunks(BATCH) {
        tx.execute("UPDATE packages SET last_seq = $2 WHERE id = ANY($1) AND last_seq IS NULL", &[&ids, &seq])?;
    }
    for pairs in changes.rehash.chunks(BATCH) {
        let (ids, hashes): (Vec<i64>, Vec<ParagraphHash>) = pairs.iter().copied().unzip();
        tx.execute(
            "UPDATE packages p SET paragraph = u.h FROM unnest($1::bigint[], $2::bigint[]) AS u(id, h) WHERE p.id = u.id",
            &[&ids, &hashes],
        )?;
    }
    for (index, rows) in &mut changes.insert {
        let index_id = index_id(tx, archive_id, index)?;
        let mut batch = NewRows::default();
        for row in rows.rows().map_err(spill_error)? {
            let (paragraph, listed) = row.map_err(spill_error)?;
            batch.push(index, paragraph, listed);
            if batch.names.len() == BATCH {
                std::mem::take(&mut batch).insert(tx, archive_id, index_id, seq)?;
            }
        }
        batch.insert(tx, archive_id, index_id, seq)?;
    }
    let problem = tx.prepare(
        "INSERT INTO package_index_problems (archive_id, seq, path, problem) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (archive_id, seq, path) DO UPDATE SET problem = excluded.problem",
    )?;
    for (path, p) in &changes.problems {
        tx.execute(&problem, &[&archive_id, &seq, path, p])?;
    }
    Ok(())
}

const BATCH: usize = 1000;

/// New package rows of one index, column by column; a field equal to what the package's
/// name, version or pool path imply is stored as NULL, as one at a time did.
#[derive(Default)]
struct NewRows {
    names: Vec<String>,
    versions: Vec<String>,
    sources: Vec<Option<String>>,
    source_versions: Vec<Option<String>>,
    filenames: Vec<Option<String>>,
    sizes: Vec<i64>,
    digests: Vec<Option<Vec<u8>>>,
    paragraphs: Vec<ParagraphHash>,
}

impl NewRows {
    fn push(&mut self, index: &IndexId, paragraph: ParagraphHash, l: Listed) {
        let implied_filename = pool_filename(index, &l.name, &l.version, &l.source);
        self.filenames.push((l.filename != implied_filename).then_some(l.filename));
        self.sources.push((l.source != l.name).then_some(l.source));
        self.source_versions.push((l.source_version != l.version).then_some(l.source_version));
        self.names.push(l.name);
        self.versions.push(l.version);
        self.sizes.push(l.size as i64);
        self.digests.push(l.sha256.map(|d| d.as_bytes().to_vec()));
        self.paragraphs.push(paragraph);
    }

    fn insert(self, tx: &mut Transaction<'_>, archive_id: i64, index_id: i64, seq: i64) -> Result<()> {
        if self.names.is_empty() {
            return Ok(());
        }
        tx.execute(
            "INSERT INTO packages (archive_id, index_id, name, version, source, source_version, filename, \
             size, sha256, first_seq, paragraph) \
             SELECT $1, $2, n, v, s, sv, f, z, d, $3, p \
             FROM unnest($4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::bigint[], $10::bytea[], \
             $11::bigint[]) AS u(n, v, s, sv, f, z, d, p)",
            &[
                &archive_id,
                &index_id,
                &seq,
                &self.names,
                &self.versions,
                &self.sources,
                &self.source_versions,
                &self.filenames,
                &self.sizes,
                &self.digests,
                &self.paragraphs,
            ],
        )?;
        Ok(())
    }
}

/// New rows spilled to a temporary file could not be read back.
fn spill_error(e: std::io::Error) -> CatalogError {
    bad(format!("reading back the new packages of an index: {e}"))
}

impl PackageStore for PgCatalog {
    fn index_progress(&self, archive: &ArchiveName) -> Result<Option<IndexProgress>> {
        let row = self.conn()?.query_opt(
            "SELECT a.id, COALESCE(p.indexed_seq, 0), \
             COALESCE((SELECT MAX(seq) FROM snapshots s WHERE s.archive_id = a.id), 0) \
             FROM archives a LEFT JOIN package_index_state p ON p.archive_id = a.id WHERE a.name = $1",
            &[&archive.as_str()],
        )?;
        row.map(|r| {
            Ok(IndexProgress {
                archive_id: r.try_get(0)?,
                indexed_seq: r.try_get::<_, i64>(1)? as u64,
                latest_seq: r.try_get::<_, i64>(2)? as u64,
            })
        })
        .transpose()
    }

    fn changed_dists_paths(&self, archive_id: i64, seq: u64) -> Result<Vec<String>> {
        let rows = self.conn()?.query(
            "SELECT DISTINCT path FROM entries WHERE archive_id = $1 AND path >= 'dists/' AND path < 'dists0' \
             AND kind = 0 AND (first_seq = $2 OR last_seq = $2) ORDER BY path",
            &[&archive_id, &(seq as i64)],
        )?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    fn live_paragraphs(&self, archive_id: i64, index: &IndexId) -> Result<Vec<(i64, Option<ParagraphHash>)>> {
        let rows = self.conn()?.query(
            "SELECT p.id, p.paragraph FROM packages p WHERE p.last_seq IS NULL AND p.index_id = \
             (SELECT id FROM package_indices WHERE archive_id = $1 AND kind = $2 AND suite = $3 \
             AND component = $4 AND architecture = $5)",
            &[&archive_id, &(index.kind.code() as i16), &index.suite, &index.component, &index.architecture],
        )?;
        rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect()
    }

    fn packages_by_id(&self, ids: &[i64]) -> Result<Vec<PackageRow>> {
        let rows =
            self.conn()?.query(&format!("SELECT {COLUMNS} FROM {FROM} WHERE p.id = ANY($1) ORDER BY p.id"), &[&ids])?;
        // In the order asked, as SQLite answers.
        let mut by_id: std::collections::HashMap<i64, PackageRow> =
            rows.iter().map(package_row).map(|r| r.map(|r| (r.id, r))).collect::<Result<_>>()?;
        Ok(ids.iter().filter_map(|id| by_id.remove(id)).collect())
    }

    fn apply_index(&self, archive_id: i64, seq: u64, changes: &mut IndexChanges) -> Result<bool> {
        let object =
            i32::try_from(archive_id).map_err(|_| bad(format!("archive id {archive_id} out of lock range")))?;
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock($1, $2)", &[&INDEX_LOCK, &object])?;
        let done = tx.query_opt("SELECT indexed_seq FROM package_index_state WHERE archive_id = $1", &[&archive_id])?;
        let done: i64 = done.map(|r| r.try_get(0)).transpose()?.unwrap_or(0);
        if done as u64 + 1 != seq {
            return Ok(false);
        }
        write_changes(&mut tx, archive_id, seq as i64, changes)?;
        tx.execute(
            "INSERT INTO package_index_state (archive_id, indexed_seq) VALUES ($1, $2) \
             ON CONFLICT (archive_id) DO UPDATE SET indexed_seq = excluded.indexed_seq",
            &[&archive_id, &(seq as i64)],
        )?;
        tx.commit()?;
        Ok(true)
    }

    fn package_rows(&self, archive_id: i64, name: &str, kind: Kind) -> Result<Vec<PackageRow>> {
        let rows = self.conn()?.query(
            &format!(
                "SELECT {COLUMNS} FROM {FROM} WHERE p.archive_id = $1 AND p.name = $2 AND i.kind = $3 ORDER BY p.id"
            ),
            &[&archive_id, &name, &(kind.code() as i16)],
        )?;
        rows.iter().map(package_row).collect()
    }

    fn binaries_of(&self, archive_id: i64, source: &str) -> Result<Vec<PackageRow>> {
        // A binary named as its source stores no source (NULL): both forms are asked for.
        let rows = self.conn()?.query(
            &format!(
                "SELECT {COLUMNS} FROM {FROM} WHERE p.archive_id = $1 AND i.kind = 0 \
                 AND (p.source = $2 OR (p.source IS NULL AND p.name = $2)) ORDER BY p.id"
            ),
            &[&archive_id, &source],
        )?;
        rows.iter().map(package_row).collect()
    }

    fn rows_changed_between(&self, archive_id: i64, from_seq: u64, to_seq: u64) -> Result<Vec<ChangedRow>> {
        const CHANGED: &str = "id, index_id, name, version, source, source_version, filename, size, sha256, \
                               first_seq, last_seq";
        let rows = self.conn()?.query(
            &format!(
                "SELECT {CHANGED} FROM packages WHERE archive_id = $1 AND first_seq > $2 AND first_seq <= $3 \
                 UNION ALL SELECT {CHANGED} FROM packages WHERE archive_id = $1 AND last_seq > $2 AND last_seq <= $3 \
                 AND first_seq <= $2"
            ),
            &[&archive_id, &(from_seq as i64), &(to_seq as i64)],
        )?;
        rows.iter()
            .map(|r| {
                let sha: Option<&[u8]> = r.try_get(8)?;
                let sha256 = sha
                    .map(|s| <[u8; 32]>::try_from(s).map_err(|_| bad("package digest is not 32 bytes")))
                    .transpose()?;
                Ok(ChangedRow {
                    id: r.try_get(0)?,
                    index_id: r.try_get(1)?,
                    name: r.try_get(2)?,
                    version: r.try_get(3)?,
                    stored: StoredColumns {
                        source: r.try_get(4)?,
                        source_version: r.try_get(5)?,
                        filename: r.try_get(6)?,
                        size: r.try_get(7)?,
                        sha256,
                    },
                    first_seq: r.try_get::<_, i64>(9)? as u64,
                    last_seq: r.try_get::<_, Option<i64>>(10)?.map(|v| v as u64),
                })
            })
            .collect()
    }

    fn package_indices(&self, archive_id: i64) -> Result<Vec<(i64, IndexId)>> {
        let rows = self.conn()?.query(
            "SELECT id, kind, suite, component, architecture FROM package_indices WHERE archive_id = $1 ORDER BY id",
            &[&archive_id],
        )?;
        rows.iter().map(|r| Ok((r.try_get(0)?, index_of(r, 1)?))).collect()
    }

    fn names_at(&self, archive_id: i64, seq: u64, text: &str, cursor: Option<&str>, limit: u32) -> Result<Vec<String>> {
        let pattern = format!("%{}%", text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
        let rows = self.conn()?.query(
            "SELECT DISTINCT p.name FROM packages p JOIN package_indices i ON i.id = p.index_id \
             WHERE p.archive_id = $1 AND i.kind = 0 AND p.first_seq <= $2 AND (p.last_seq IS NULL OR p.last_seq > $2) \
             AND p.name LIKE $3 ESCAPE '\\' AND ($4::TEXT IS NULL OR p.name > $4) ORDER BY p.name LIMIT $5",
            &[&archive_id, &(seq as i64), &pattern, &cursor, &i64::from(limit)],
        )?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    fn snapshot_id(&self, archive_id: i64, seq: u64, toward: Toward) -> Result<Option<SnapshotId>> {
        let sql = match toward {
            Toward::Later => "SELECT id FROM snapshots WHERE archive_id = $1 AND seq >= $2 ORDER BY seq ASC LIMIT 1",
            Toward::Earlier => "SELECT id FROM snapshots WHERE archive_id = $1 AND seq <= $2 ORDER BY seq DESC LIMIT 1",
        };
        let row = self.conn()?.query_opt(sql, &[&archive_id, &(seq as i64)])?;
        row.map(|r| snapshot_id(r.try_get(0)?)).transpose()
    }

    fn index_problems(&self, archive_id: i64, seq: u64) -> Result<Vec<(String, String)>> {
        let rows = self.conn()?.query(
            "SELECT path, problem FROM package_index_problems WHERE archive_id = $1 AND seq = $2 ORDER BY path",
            &[&archive_id, &(seq as i64)],
        )?;
        rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect()
    }
}
