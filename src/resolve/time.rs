//! Floor resolution of snapshot IDs, and when an answer may be served as immutable.
//!
//! IDs are stamped at commit as max(now, previous + 1s), inside the write transaction.
//! So once a reader has seen snapshot L, no later commit can take an ID <= L: the floor of
//! any T <= L is final. For T > L the floor can still change until T is safely in the past:
//! `margin` covers the short window between stamping and commit (and clock jitter).

use std::time::Duration;

use crate::catalog::{Catalog, CatalogError, Snapshot};
use crate::domain::{ArchiveName, SnapshotId};

#[derive(Debug)]
pub struct Resolution {
    pub requested: SnapshotId,
    pub snapshot: Snapshot,
    /// The answer for `requested` can never change.
    pub is_final: bool,
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
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

pub fn resolve_id(
    catalog: &dyn Catalog,
    archive: &ArchiveName,
    requested: SnapshotId,
    now: SnapshotId,
    margin: Duration,
) -> Result<Resolution, TimeError> {
    let Some(latest) = catalog.latest(archive)? else {
        return Err(match catalog.archive(archive)? {
            Some(_) => TimeError::NoSnapshots(archive.clone()),
            None => TimeError::NoArchive(archive.clone()),
        });
    };
    if requested > latest.id && requested > now {
        return Err(TimeError::Future { archive: archive.clone(), requested, now, latest: latest.id });
    }
    if requested >= latest.id {
        let settled = requested.unix() < now.unix() - margin.as_secs() as i64;
        let is_final = requested == latest.id || settled;
        return Ok(Resolution { requested, snapshot: latest, is_final });
    }
    match catalog.resolve(archive, requested)? {
        Some(snapshot) => Ok(Resolution { requested, snapshot, is_final: true }),
        None => {
            let first = catalog.archive(archive)?.and_then(|a| a.first).unwrap_or(latest.id);
            Err(TimeError::BeforeFirst { archive: archive.clone(), requested, first })
        }
    }
}
