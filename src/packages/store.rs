//! Where the package index is kept: the `PackageStore` trait (SQLite in the embedded
//! default, `catalog::sqlite_packages`).

use super::parse::{IndexId, Kind, Listed, ParagraphHash};
use super::spill::PackageSpill;
use crate::catalog::CatalogError;
use crate::domain::ArchiveName;

/// Which kept snapshot stands for a deleted one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Toward {
    /// The first kept snapshot at or after it (where a row is first seen).
    Later,
    /// The last kept snapshot at or before it (where a row is last seen).
    Earlier,
}

/// One package row: what one index listed, from snapshot `first_seq` up to, not
/// including, `last_seq` (`None` while it is in the latest snapshot).
#[derive(Debug, Clone)]
pub struct PackageRow {
    pub id: i64,
    pub index: IndexId,
    pub listed: Listed,
    pub first_seq: u64,
    pub last_seq: Option<u64>,
}

/// A package row's columns as every catalog stores them: source, source version and file
/// name only where they differ from what they default to (the name, the version, and
/// Debian's pool layout).
pub struct StoredRow {
    pub id: i64,
    pub index: IndexId,
    pub name: String,
    pub version: String,
    pub source: Option<String>,
    pub source_version: Option<String>,
    pub filename: Option<String>,
    pub size: u64,
    pub sha256: Option<crate::domain::Digest>,
    pub first_seq: u64,
    pub last_seq: Option<u64>,
}

impl From<StoredRow> for PackageRow {
    fn from(r: StoredRow) -> Self {
        let source = r.source.unwrap_or_else(|| r.name.clone());
        let filename = match r.filename {
            Some(f) => f,
            None => super::parse::pool_filename(&r.index, &r.name, &r.version, &source),
        };
        PackageRow {
            id: r.id,
            index: r.index,
            listed: Listed {
                source,
                source_version: r.source_version.unwrap_or_else(|| r.version.clone()),
                name: r.name,
                version: r.version,
                filename,
                size: r.size,
                sha256: r.sha256,
            },
            first_seq: r.first_seq,
            last_seq: r.last_seq,
        }
    }
}

impl PackageRow {
    /// Whether the row is in snapshot `seq`.
    pub fn covers(&self, seq: u64) -> bool {
        self.first_seq <= seq && self.last_seq.is_none_or(|l| l > seq)
    }
}

/// A row as a diff reads it: its index as an id and the columns as stored (NULL where
/// derivable), no strings made up. Two rows of one package, index and version list the same
/// thing exactly when their `stored` columns are equal.
#[derive(Debug)]
pub struct ChangedRow {
    pub id: i64,
    pub index_id: i64,
    pub name: String,
    pub version: String,
    pub stored: StoredColumns,
    pub first_seq: u64,
    pub last_seq: Option<u64>,
}

#[derive(Debug, PartialEq, Eq)]
pub struct StoredColumns {
    /// `None`: the same as the name.
    pub source: Option<String>,
    pub source_version: Option<String>,
    pub filename: Option<String>,
    pub size: i64,
    pub sha256: Option<[u8; 32]>,
}

impl ChangedRow {
    pub fn covers(&self, seq: u64) -> bool {
        self.first_seq <= seq && self.last_seq.is_none_or(|l| l > seq)
    }

    pub fn source(&self) -> &str {
        self.stored.source.as_deref().unwrap_or(&self.name)
    }
}

/// How far an archive's package index has got.
#[derive(Debug, Clone, Copy)]
pub struct IndexProgress {
    pub archive_id: i64,
    pub indexed_seq: u64,
    pub latest_seq: u64,
}

/// One snapshot's worth of index changes, applied in one transaction.
#[derive(Debug, Default)]
pub struct IndexChanges {
    pub close: Vec<i64>,
    /// New rows by index: (paragraph digest, package), in memory or spilled to a file
    /// (a first publish inserts every package of the archive).
    pub insert: Vec<(IndexId, PackageSpill)>,
    /// Rows that stay, whose paragraph changed in fields the index does not keep (or that
    /// were indexed before rows kept a digest): (row id, the new paragraph's digest).
    pub rehash: Vec<(i64, ParagraphHash)>,
    /// (path, problem) of indices that could not be read.
    pub problems: Vec<(String, String)>,
}

pub trait PackageStore: Send + Sync + 'static {
    /// `None` when there is no such archive.
    fn index_progress(&self, archive: &ArchiveName) -> Result<Option<IndexProgress>, CatalogError>;
    /// Paths under `dists/` whose content appears or ends at snapshot `seq`.
    fn changed_dists_paths(&self, archive_id: i64, seq: u64) -> Result<Vec<String>, CatalogError>;
    /// (row id, paragraph digest) of the rows of one index in the latest indexed snapshot.
    fn live_paragraphs(
        &self,
        archive_id: i64,
        index: &IndexId,
    ) -> Result<Vec<(i64, Option<ParagraphHash>)>, CatalogError>;
    /// The rows with these ids.
    fn packages_by_id(&self, ids: &[i64]) -> Result<Vec<PackageRow>, CatalogError>;
    /// Records snapshot `seq` as indexed (from `seq - 1`) with its changes; false, and
    /// nothing written, if another indexer got there first.
    fn apply_index(&self, archive_id: i64, seq: u64, changes: &mut IndexChanges) -> Result<bool, CatalogError>;
    /// Every row ever recorded for a package name (binaries, or sources when `kind` says),
    /// and for sources also the binaries built from it when `with_binaries`.
    fn package_rows(&self, archive_id: i64, name: &str, kind: Kind) -> Result<Vec<PackageRow>, CatalogError>;
    /// Binary rows whose source package is `source`.
    fn binaries_of(&self, archive_id: i64, source: &str) -> Result<Vec<PackageRow>, CatalogError>;
    /// Rows that start or end in snapshots `(from_seq, to_seq]`.
    fn rows_changed_between(
        &self,
        archive_id: i64,
        from_seq: u64,
        to_seq: u64,
    ) -> Result<Vec<ChangedRow>, CatalogError>;
    /// Every index of an archive, by id.
    fn package_indices(&self, archive_id: i64) -> Result<Vec<(i64, IndexId)>, CatalogError>;
    /// Distinct binary package names in snapshot `seq` containing `text`, in name order,
    /// after `cursor`, at most `limit`.
    fn names_at(
        &self,
        archive_id: i64,
        seq: u64,
        text: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>, CatalogError>;
    /// The ID of snapshot `seq` of an archive or, if retention deleted it, of the kept
    /// snapshot nearest to it in the direction `toward` (rows keep the sequence numbers
    /// of deleted snapshots: a row first seen in one was first served by the next kept).
    fn snapshot_id(
        &self,
        archive_id: i64,
        seq: u64,
        toward: Toward,
    ) -> Result<Option<crate::domain::SnapshotId>, CatalogError>;
    /// Problems recorded while indexing snapshot `seq`.
    fn index_problems(&self, archive_id: i64, seq: u64) -> Result<Vec<(String, String)>, CatalogError>;
}
