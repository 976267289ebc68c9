//! Questions about packages, answered from the package index: what changed between two
//! snapshots, every version a package ever had, the first snapshot with a version that
//! satisfies a constraint, and a search by name. No HTTP here: `http::packages` maps it.

use std::collections::HashMap;

use serde::Serialize;

use super::parse::{IndexId, Kind};
use super::store::{ChangedRow, PackageRow, Toward};
use super::version::{Constraint, DebVersion};
use crate::catalog::CatalogError;
use crate::domain::SnapshotId;
use crate::store::Store;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Added,
    Removed,
    Upgraded,
    Downgraded,
    /// Same version, different bytes.
    Rebuilt,
}

#[derive(Debug, Clone, Serialize)]
pub struct PackageChange {
    pub name: String,
    pub kind: Kind,
    pub architecture: String,
    pub suite: String,
    pub component: String,
    pub source: String,
    pub old_version: Option<String>,
    pub new_version: Option<String>,
    pub change: ChangeKind,
}

/// Optional filters of a diff.
#[derive(Debug, Default, Clone)]
pub struct DiffFilter {
    pub suite: Option<String>,
    pub architecture: Option<String>,
    pub name: Option<String>,
}

impl DiffFilter {
    fn keeps(&self, r: &PackageRow) -> bool {
        self.keeps_package(&r.index, &r.listed.name)
    }

    fn keeps_package(&self, index: &IndexId, name: &str) -> bool {
        self.suite.as_ref().is_none_or(|s| *s == index.suite)
            && self.architecture.as_ref().is_none_or(|a| *a == index.architecture)
            && self.name.as_ref().is_none_or(|n| n == name)
    }
}

/// Orders versions as dpkg does; a string that is not a valid version sorts by bytes
/// after every valid one (indices are publishers' input).
pub fn cmp_versions(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<DebVersion>(), b.parse::<DebVersion>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        (Ok(_), Err(_)) => std::cmp::Ordering::Less,
        (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
        (Err(_), Err(_)) => a.cmp(b),
    }
}

/// What changed from snapshot `from_seq` to `to_seq` (either order), O(rows changed).
pub fn diff(
    store: &Store,
    archive_id: i64,
    from_seq: u64,
    to_seq: u64,
    filter: &DiffFilter,
) -> Result<Vec<PackageChange>, CatalogError> {
    let (lo, hi) = (from_seq.min(to_seq), from_seq.max(to_seq));
    let indices = IndexOrder::of(store.packages.package_indices(archive_id)?);
    let mut rows = store.packages.rows_changed_between(archive_id, lo, hi)?;
    // Rows in both snapshots or in neither changed nothing between them.
    rows.retain(|r| {
        r.covers(from_seq) != r.covers(to_seq)
            && indices.by_id.get(&r.index_id).is_some_and(|(_, i)| filter.keeps_package(i, &r.name))
    });
    // In place, by (name, index id): a name has rows in few indices, so its groups are put in
    // index order afterwards, and no comparison looks an index up.
    rows.sort_unstable_by(|a, b| a.name.cmp(&b.name).then(a.index_id.cmp(&b.index_id)).then(a.id.cmp(&b.id)));
    let mut out = Vec::new();
    for same_name in rows.chunk_by(|a, b| a.name == b.name) {
        let mut groups: Vec<&[ChangedRow]> = same_name.chunk_by(|a, b| a.index_id == b.index_id).collect();
        groups.sort_by_key(|g| indices.by_id[&g[0].index_id].0);
        for group in groups {
            let (old, new): (Vec<&ChangedRow>, Vec<&ChangedRow>) = group.iter().partition(|r| r.covers(from_seq));
            let index = &indices.by_id[&group[0].index_id].1;
            pair_versions(&old, &new, &mut |o, n| out.extend(change(index, o, n)));
        }
    }
    Ok(out)
}

fn change(index: &IndexId, old: Option<&ChangedRow>, new: Option<&ChangedRow>) -> Option<PackageChange> {
    let change = match (old, new) {
        (Some(_), None) => ChangeKind::Removed,
        (None, Some(_)) => ChangeKind::Added,
        (Some(o), Some(n)) => match cmp_versions(&o.version, &n.version) {
            std::cmp::Ordering::Less => ChangeKind::Upgraded,
            std::cmp::Ordering::Greater => ChangeKind::Downgraded,
            std::cmp::Ordering::Equal => ChangeKind::Rebuilt,
        },
        (None, None) => return None,
    };
    let any = new.or(old)?;
    Some(PackageChange {
        name: any.name.clone(),
        kind: index.kind,
        architecture: index.architecture.clone(),
        suite: index.suite.clone(),
        component: index.component.clone(),
        source: any.source().to_string(),
        old_version: old.map(|r| r.version.clone()),
        new_version: new.map(|r| r.version.clone()),
        change,
    })
}

/// An archive's indices by id, ranked in (kind, suite, component, architecture) order so
/// that a diff lists changes in that order within a package name.
struct IndexOrder {
    by_id: HashMap<i64, (usize, IndexId)>,
}

impl IndexOrder {
    fn of(mut indices: Vec<(i64, IndexId)>) -> Self {
        indices.sort_by(|a, b| a.1.cmp(&b.1));
        Self { by_id: indices.into_iter().enumerate().map(|(rank, (id, index))| (id, (rank, index))).collect() }
    }
}

/// Pairs the old and new rows of one package in one index: the same version on both
/// sides (with other bytes: a rebuild), then a single remaining old with a single
/// remaining new (an upgrade or downgrade); whatever is left was removed or added.
fn pair_versions(
    old: &[&ChangedRow],
    new: &[&ChangedRow],
    emit: &mut dyn FnMut(Option<&ChangedRow>, Option<&ChangedRow>),
) {
    let mut new_left: Vec<&ChangedRow> = new.to_vec();
    let mut old_left = Vec::new();
    for o in old {
        match new_left.iter().position(|n| n.version == o.version) {
            Some(i) => {
                let n = new_left.remove(i);
                if n.stored != o.stored {
                    emit(Some(o), Some(n));
                }
            }
            None => old_left.push(o),
        }
    }
    if let ([o], [n]) = (old_left.as_slice(), new_left.as_slice()) {
        return emit(Some(o), Some(n));
    }
    for o in old_left {
        emit(Some(o), None);
    }
    for n in new_left {
        emit(None, Some(n));
    }
}

/// One version of a package as the history shows it.
#[derive(Debug, Clone, Serialize)]
pub struct VersionRecord {
    pub name: String,
    pub version: String,
    pub architecture: String,
    pub suite: String,
    pub component: String,
    pub source: String,
    pub source_version: String,
    pub filename: String,
    pub size: u64,
    pub sha256: Option<String>,
    pub first_seen: SnapshotId,
    /// The last snapshot that had it; `None` while the latest snapshot has it.
    pub last_seen: Option<SnapshotId>,
}

/// Turns rows into history records, sorted by version (dpkg order), then index, then time.
pub fn history(store: &Store, archive_id: i64, mut rows: Vec<PackageRow>) -> Result<Vec<VersionRecord>, CatalogError> {
    rows.sort_by(|a, b| {
        cmp_versions(&a.listed.version, &b.listed.version)
            .then_with(|| a.index.cmp(&b.index))
            .then_with(|| a.first_seq.cmp(&b.first_seq))
    });
    let mut ids = SeqIds::new(store, archive_id);
    rows.into_iter()
        .map(|r| {
            Ok(VersionRecord {
                first_seen: ids.id(r.first_seq, Toward::Later)?,
                last_seen: r.last_seq.map(|l| ids.id(l - 1, Toward::Earlier)).transpose()?,
                name: r.listed.name,
                version: r.listed.version,
                architecture: r.index.architecture,
                suite: r.index.suite,
                component: r.index.component,
                source: r.listed.source,
                source_version: r.listed.source_version,
                filename: r.listed.filename,
                size: r.listed.size,
                sha256: r.listed.sha256.map(|d| d.hex()),
            })
        })
        .collect()
}

/// The first snapshot (by sequence) in which `name` has a version satisfying `constraint`,
/// optionally only in one suite or architecture; one indexed query, no scan of snapshots.
pub fn first_satisfying(
    store: &Store,
    archive_id: i64,
    name: &str,
    constraint: &Constraint,
    filter: &DiffFilter,
) -> Result<Option<(u64, PackageRow)>, CatalogError> {
    let best = store
        .packages
        .package_rows(archive_id, name, Kind::Binary)?
        .into_iter()
        .filter(|r| filter.keeps(r))
        .filter(|r| r.listed.version.parse::<DebVersion>().is_ok_and(|v| constraint.satisfied_by(&v)))
        .min_by_key(|r| r.first_seq);
    Ok(best.map(|r| (r.first_seq, r)))
}

/// Snapshot IDs by sequence number, looked up once each.
pub struct SeqIds<'a> {
    store: &'a Store,
    archive_id: i64,
    known: HashMap<(u64, Toward), SnapshotId>,
}

impl<'a> SeqIds<'a> {
    pub fn new(store: &'a Store, archive_id: i64) -> Self {
        Self { store, archive_id, known: HashMap::new() }
    }

    /// The ID of snapshot `seq`, or of the kept one `toward` it if retention deleted it.
    pub fn id(&mut self, seq: u64, toward: Toward) -> Result<SnapshotId, CatalogError> {
        if let Some(id) = self.known.get(&(seq, toward)) {
            return Ok(*id);
        }
        let Some(id) = self.store.packages.snapshot_id(self.archive_id, seq, toward)? else {
            return Err(CatalogError::Corrupt(format!("no snapshot #{seq} in archive {}", self.archive_id)));
        };
        self.known.insert((seq, toward), id);
        Ok(id)
    }
}
