//! Floor resolution of snapshot IDs, and when an answer may be served as immutable.
//!
//! IDs are stamped at commit above the previous snapshot and above the seal (see
//! schema/0003_seal.sql). So once a reader has seen snapshot L, no later commit can take an
//! ID <= L: the floor of any T <= L is final. For T > L the floor is final once T is at or
//! below the seal read in the same transaction; until then it is served with a short
//! max-age. Neither rule depends on the reader's or a publisher's clock; the clock only
//! decides when an ID is "in the future" (404).
//!
//! Retention is the exception (docs/api.md, "Deleted snapshots"): the exact ID of a deleted
//! snapshot answers 410, and in an archive under retention an ID between snapshots is never
//! final, because the snapshot it floors to may be deleted later.

use crate::catalog::{Catalog, CatalogError, ReadView, Snapshot};
use crate::domain::{ArchiveName, SnapshotId};

#[derive(Debug)]
pub struct Resolution {
    pub requested: SnapshotId,
    pub snapshot: Snapshot,
    /// The answer for `requested` can never change.
    pub is_final: bool,
    /// Asked for as the archive's latest snapshot (the live path, no ID in the URL): the
    /// answer changes with the next commit, however old the snapshot is.
    pub live: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum TimeError {
    #[error("no archive named '{0}'")]
    NoArchive(ArchiveName),
    #[error("archive '{0}' has no snapshots yet")]
    NoSnapshots(ArchiveName),
    #[error("{requested} is before the first snapshot of '{archive}' ({first})")]
    BeforeFirst { archive: ArchiveName, requested: SnapshotId, first: SnapshotId },
    #[error("{requested} is in the future (now is {now}); the latest snapshot of '{archive}' is {latest}")]
    Future { archive: ArchiveName, requested: SnapshotId, now: SnapshotId, latest: SnapshotId },
    #[error("{}", deleted_message(archive, *requested, *deleted_at, *floor))]
    Deleted { archive: ArchiveName, requested: SnapshotId, deleted_at: i64, floor: Option<SnapshotId> },
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

fn deleted_message(archive: &ArchiveName, requested: SnapshotId, deleted_at: i64, floor: Option<SnapshotId>) -> String {
    let when =
        chrono::DateTime::from_timestamp(deleted_at, 0).map_or_else(|| deleted_at.to_string(), |t| t.to_rfc3339());
    let before = floor.map_or_else(String::new, |f| format!("; the snapshot before it is {f}"));
    format!("snapshot {requested} of '{archive}' was deleted by its retention policy at {when}{before}")
}

pub fn resolve_id(
    catalog: &dyn Catalog,
    archive: &ArchiveName,
    requested: SnapshotId,
    now: SnapshotId,
) -> Result<Resolution, TimeError> {
    resolve_in_view(catalog.read_view(archive, requested)?, archive, requested, now)
}

/// `resolve_id` on a view already read for `requested` (as `Catalog::read_file` reads it
/// along with a file's entry, whose snapshot is the one this resolves to).
pub fn resolve_in_view(
    view: ReadView,
    archive: &ArchiveName,
    requested: SnapshotId,
    now: SnapshotId,
) -> Result<Resolution, TimeError> {
    let Some(latest) = view.latest else {
        return Err(if view.archive_exists {
            TimeError::NoSnapshots(archive.clone())
        } else {
            TimeError::NoArchive(archive.clone())
        });
    };
    if requested > latest.id && requested > now {
        return Err(TimeError::Future { archive: archive.clone(), requested, now, latest: latest.id });
    }
    if let Some(d) = view.deleted {
        let floor = view.floor.map(|f| f.id);
        return Err(TimeError::Deleted { archive: archive.clone(), requested, deleted_at: d.deleted_at, floor });
    }
    // Under retention an ID between snapshots can come to name an older one (its floor may
    // be deleted), so only exact IDs are final there: they serve their bytes or 410, never
    // other bytes.
    let exact = |s: &Snapshot| s.id == requested;
    if requested >= latest.id {
        let is_final = exact(&latest) || (requested.unix() <= view.sealed_until && !view.retention);
        return Ok(Resolution { requested, snapshot: latest, is_final, live: false });
    }
    match view.floor {
        Some(snapshot) => {
            let is_final = exact(&snapshot) || !view.retention;
            Ok(Resolution { requested, snapshot, is_final, live: false })
        }
        None => {
            Err(TimeError::BeforeFirst { archive: archive.clone(), requested, first: view.first.unwrap_or(latest.id) })
        }
    }
}

/// The archive's latest snapshot, for the live path (`/<archive>/<path>` with no ID).
pub fn resolve_latest(catalog: &dyn Catalog, archive: &ArchiveName) -> Result<Resolution, TimeError> {
    latest_in_view(catalog.read_view(archive, SnapshotId::now())?, archive)
}

/// `resolve_latest` on a view already read (`Catalog::read_file` with no ID reads one).
pub fn latest_in_view(view: ReadView, archive: &ArchiveName) -> Result<Resolution, TimeError> {
    match view.latest {
        Some(latest) => Ok(Resolution { requested: latest.id, snapshot: latest, is_final: false, live: true }),
        None if view.archive_exists => Err(TimeError::NoSnapshots(archive.clone())),
        None => Err(TimeError::NoArchive(archive.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::{NoProgress, PublishOptions, publish_dir};
    use crate::store::Store;

    fn publish(store: &Store, archive: &ArchiveName, content: &str) -> SnapshotId {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), content).unwrap();
        let opts = PublishOptions { progress: &NoProgress, source: serde_json::Value::Null, always: true };
        publish_dir(store, archive, dir.path(), &opts).unwrap().snapshot
    }

    #[test]
    fn the_seal_makes_answers_final_and_later_commits_stamp_above_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_local(dir.path()).unwrap();
        let archive: ArchiveName = "a".parse().unwrap();
        let first = publish(&store, &archive, "1");
        let later = SnapshotId::from_unix(first.unix() + 30).unwrap();
        let far_future = SnapshotId::from_unix(first.unix() + 3600).unwrap();

        // Past the latest snapshot, unsealed: the latest, but not final.
        let r = resolve_id(store.catalog.as_ref(), &archive, later, far_future).unwrap();
        assert_eq!((r.snapshot.id, r.is_final), (first, false));

        // Sealed: final, and a new commit (even with a clock behind) lands after the seal.
        store.catalog.seal(later.unix()).unwrap();
        let r = resolve_id(store.catalog.as_ref(), &archive, later, far_future).unwrap();
        assert_eq!((r.snapshot.id, r.is_final), (first, true));
        let second = publish(&store, &archive, "2");
        assert!(second > later, "{second} must be stamped above the seal {later}");
        let r = resolve_id(store.catalog.as_ref(), &archive, later, far_future).unwrap();
        assert_eq!(r.snapshot.id, first, "a final answer did not change");

        // The seal never moves back.
        assert_eq!(store.catalog.seal(0).unwrap(), later.unix());

        // Before the first snapshot, and in the future.
        let before = SnapshotId::from_unix(first.unix() - 1).unwrap();
        assert!(matches!(
            resolve_id(store.catalog.as_ref(), &archive, before, far_future),
            Err(TimeError::BeforeFirst { .. })
        ));
        let now = SnapshotId::now();
        let future = SnapshotId::from_unix(second.unix().max(now.unix()) + 10).unwrap();
        assert!(matches!(resolve_id(store.catalog.as_ref(), &archive, future, now), Err(TimeError::Future { .. })));
    }
}
