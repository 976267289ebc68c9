//! Keeps an archive's package index up to date: snapshots are indexed in order, each in
//! one transaction, by reading only the Packages/Sources indices that changed in it and
//! parsing only their paragraphs that no live row came from. Rows written and rows read in
//! full are O(change); each changed index still costs one read of its file and of its live
//! (row id, digest) pairs from the covering index `packages_live`. Runs after every commit
//! and, for snapshots that predate the index or whose indexing was interrupted, as a
//! background backfill under `asof serve`.

use std::collections::{BTreeSet, HashMap};

use super::parse::{IndexId, Listed, ParagraphHash, for_each_new_paragraph};
use super::spill::PackageSpill;
use super::store::{IndexChanges, PackageRow};
use crate::catalog::{CatalogError, SnapshotKey};
use crate::domain::{ArchiveName, RelPath};
use crate::manifest::Content;
use crate::store::Store;

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("reading blob {path}: {source}")]
    Blob { path: String, source: std::io::Error },
    #[error("temporary file of new packages: {0}")]
    Spill(std::io::Error),
}

#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct IndexReport {
    pub snapshots: u64,
    pub inserted: u64,
    pub closed: u64,
    pub problems: u64,
}

/// Blocking. Indexes every snapshot of `archive` not indexed yet; `progress` is told after
/// each one (done, total).
pub fn index_archive(
    store: &Store,
    archive: &ArchiveName,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<IndexReport, IndexError> {
    let mut report = IndexReport::default();
    let Some(p) = store.packages.index_progress(archive)? else { return Ok(report) };
    for seq in p.indexed_seq + 1..=p.latest_seq {
        let mut changes = index_one(store, p.archive_id, seq)?;
        if !store.packages.apply_index(p.archive_id, seq, &mut changes)? {
            // Another indexer is on this archive: leave the rest to it.
            break;
        }
        report.snapshots += 1;
        report.inserted += changes.insert.iter().map(|(_, rows)| rows.len()).sum::<u64>();
        report.closed += changes.close.len() as u64;
        report.problems += changes.problems.len() as u64;
        for (path, problem) in &changes.problems {
            tracing::warn!(%archive, seq, path, problem, "package index could not be read; its packages are left as they were");
        }
        progress(seq, p.latest_seq);
    }
    Ok(report)
}

/// After a commit: indexing problems are logged, never fail the publish.
pub fn index_after_commit(store: &Store, archive: &ArchiveName) {
    if let Err(e) = index_archive(store, archive, &mut |_, _| {}) {
        tracing::warn!(%archive, error = %e, "package indexing failed; the background backfill will retry");
    }
}

/// What snapshot `seq` changes in the package index.
fn index_one(store: &Store, archive_id: i64, seq: u64) -> Result<IndexChanges, IndexError> {
    let mut indices = BTreeSet::new();
    for path in store.packages.changed_dists_paths(archive_id, seq)? {
        if let Some((id, _)) = IndexId::of_path(&path) {
            indices.insert(id);
        }
    }
    let mut changes = IndexChanges::default();
    let key = SnapshotKey { archive_id, seq };
    for index in indices {
        index_changes(store, key, &index, &mut changes)?;
    }
    Ok(changes)
}

/// Adds what one changed index changes. Only paragraphs whose digest is not among the live
/// rows are parsed, and only the live rows left unmatched are read in full (one lookup by id
/// each): O(change) rows read in full and written, plus one sequential read of the index
/// file and of the index's live (id, digest) pairs.
fn index_changes(
    store: &Store,
    key: SnapshotKey,
    index: &IndexId,
    changes: &mut IndexChanges,
) -> Result<(), IndexError> {
    let mut unmatched: HashMap<Option<ParagraphHash>, Vec<i64>> = HashMap::new();
    for (id, hash) in store.packages.live_paragraphs(key.archive_id, index)? {
        unmatched.entry(hash).or_default().push(id);
    }
    let known = |hash| unmatched.get_mut(&Some(hash)).and_then(Vec::pop).is_some();
    let mut new = PackageSpill::new(&store.scratch);
    match read_current(store, key, index, known, &mut new)? {
        Current::Unreadable { path, problem } => {
            changes.problems.push((path, problem));
            return Ok(());
        }
        Current::Read | Current::Gone => {}
    }
    let left: Vec<i64> = unmatched.into_values().flatten().collect();
    let old = if left.is_empty() { Vec::new() } else { store.packages.packages_by_id(&left)? };
    match_rows(index, old, new, changes).map_err(IndexError::Spill)
}

/// What snapshot `key` has of one index.
enum Current {
    /// Read: the packages of the paragraphs `known` did not claim went to the spill.
    Read,
    /// No variant of the index any more.
    Gone,
    Unreadable {
        path: String,
        problem: String,
    },
}

/// Reads `index` in snapshot `key` from its cheapest variant.
fn read_current(
    store: &Store,
    key: SnapshotKey,
    index: &IndexId,
    known: impl FnMut(ParagraphHash) -> bool,
    new: &mut PackageSpill,
) -> Result<Current, IndexError> {
    let base = match index.kind {
        super::parse::Kind::Binary => {
            format!("dists/{}/{}/binary-{}/Packages", index.suite, index.component, index.architecture)
        }
        super::parse::Kind::Source => format!("dists/{}/{}/source/Sources", index.suite, index.component),
    };
    for variant in [base.clone(), format!("{base}.xz"), format!("{base}.gz")] {
        let Ok(rel) = RelPath::new(&variant) else { continue };
        let Some(entry) = store.catalog.entry(key, &rel)? else { continue };
        let Content::File { sha256, .. } = entry.content else { continue };
        let Some(blob) = store
            .blobs
            .blocking()
            .open(&sha256)
            .map_err(|source| IndexError::Blob { path: variant.clone(), source })?
        else {
            return Ok(Current::Unreadable {
                path: variant,
                problem: format!("blob {sha256} is missing from the store"),
            });
        };
        let found = |hash, listed| new.push(hash, listed);
        return Ok(match for_each_new_paragraph(&variant, index.kind, blob.reader, known, found) {
            Ok(()) => Current::Read,
            Err(e) => Current::Unreadable { path: variant, problem: e.to_string() },
        });
    }
    Ok(Current::Gone)
}

/// Pairs the parsed new paragraphs with the unmatched old rows: the same package (another
/// field of its paragraph changed) keeps its row under the new digest; the rest of the new
/// are inserted and the rest of the old closed.
fn match_rows(
    index: &IndexId,
    old: Vec<PackageRow>,
    mut new: PackageSpill,
    changes: &mut IndexChanges,
) -> std::io::Result<()> {
    let mut by_listed: HashMap<&Listed, Vec<i64>> = HashMap::new();
    for r in &old {
        by_listed.entry(&r.listed).or_default().push(r.id);
    }
    let mut insert = new.sibling();
    for row in new.rows()? {
        let (paragraph, listed) = row?;
        match by_listed.get_mut(&listed).and_then(Vec::pop) {
            Some(id) => changes.rehash.push((id, paragraph)),
            None => insert.push(paragraph, listed),
        }
    }
    if !insert.is_empty() {
        changes.insert.push((index.clone(), insert));
    }
    changes.close.extend(by_listed.into_values().flatten());
    Ok(())
}

/// Under `asof serve` (see `background::every`): indexes what is not indexed yet
/// (snapshots from before the index existed, or whose indexing was interrupted), archive
/// by archive.
pub fn backfill_all(store: &Store) {
    let archives = match store.catalog.archives() {
        Ok(a) => a,
        Err(e) => return tracing::warn!(error = %e, "package index backfill: cannot list archives"),
    };
    for a in archives {
        let mut last_log = std::time::Instant::now();
        let result = index_archive(store, &a.name, &mut |done, total| {
            if last_log.elapsed() >= std::time::Duration::from_secs(5) || done == total {
                tracing::info!(archive = %a.name, done, total, "package index backfill");
                last_log = std::time::Instant::now();
            }
        });
        if let Err(e) = result {
            tracing::warn!(archive = %a.name, error = %e, "package index backfill failed; retrying later");
        }
    }
}
