//! Applying a retention policy: the plan (which snapshots go and what that frees, shared by
//! `--dry-run`, `asof retention plan` and the space API) and the deletion, one snapshot per
//! transaction so that publishes and reads go on between them.

use std::collections::HashMap;

use serde::Serialize;

use super::{Deletion, Keep, Policy, Reclaim, evaluate};
use crate::catalog::{CatalogError, SnapshotQuery};
use crate::domain::{ArchiveName, SnapshotId};
use crate::store::Store;

/// One snapshot and why it is kept (`None`: the policy lets it go).
#[derive(Debug, Clone, Serialize)]
pub struct PlanLine {
    pub id: SnapshotId,
    pub keep: Option<Keep>,
}

/// What a policy does to an archive as of `now`.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub archive: ArchiveName,
    pub policy: Policy,
    pub snapshots: Vec<PlanLine>,
    /// What deleting the snapshots it lets go would remove and free.
    pub reclaim: Reclaim,
}

impl Plan {
    pub fn doomed(&self) -> Vec<SnapshotId> {
        self.snapshots.iter().filter(|l| l.keep.is_none()).map(|l| l.id).collect()
    }
}

/// What an apply did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Applied {
    pub deleted: Vec<SnapshotId>,
    /// Snapshots the plan let go but that were kept after all, and why.
    pub kept: Vec<(SnapshotId, String)>,
    pub reclaim: Reclaim,
}

/// The plan for `archive` as of `now` (unix seconds), with what it would free; `None` if
/// there is no such archive. Blocking.
pub fn plan(store: &Store, archive: &ArchiveName, now: i64) -> Result<Option<Plan>, CatalogError> {
    let Some(mut plan) = verdicts(store, archive, now)? else { return Ok(None) };
    let doomed = plan.doomed();
    if !doomed.is_empty() {
        plan.reclaim = store.retention.preview_deletion(archive, &doomed)?;
    }
    Ok(Some(plan))
}

/// The plan without what it frees (`reclaim` left at zero).
fn verdicts(store: &Store, archive: &ArchiveName, now: i64) -> Result<Option<Plan>, CatalogError> {
    if store.catalog.archive(archive)?.is_none() {
        return Ok(None);
    }
    let policy = store.retention.policy(archive)?.unwrap_or_default();
    let mut pins: HashMap<i64, String> = HashMap::new();
    for p in store.retention.pins(archive)? {
        pins.entry(p.id.unix()).and_modify(|r| *r = format!("{r}; {}", p.reason)).or_insert(p.reason);
    }
    let snapshots = store.catalog.snapshots(archive, &SnapshotQuery::default())?;
    let ids: Vec<i64> = snapshots.iter().map(|s| s.id.unix()).collect();
    let verdicts = evaluate(&ids, &policy, &pins, now);
    let lines: Vec<PlanLine> = snapshots.iter().zip(verdicts).map(|(s, keep)| PlanLine { id: s.id, keep }).collect();
    Ok(Some(Plan { archive: archive.clone(), policy, snapshots: lines, reclaim: Reclaim::default() }))
}

/// Deletes the snapshots the archive's policy lets go as of `now`, oldest first, and
/// reports what went. The package index is brought up to date first: it reads snapshots
/// in order and must have read one before it can go. Blocking.
pub fn apply(store: &Store, archive: &ArchiveName, now: i64, actor: &str) -> anyhow::Result<Option<Applied>> {
    if store.retention.policy(archive)?.is_none_or(|p| p.is_off()) {
        return Ok(store.catalog.archive(archive)?.map(|_| Applied::default()));
    }
    crate::packages::index::index_archive(store, archive, &mut |_, _| {})?;
    // The deletions report what they free: no preview needed.
    let Some(plan) = verdicts(store, archive, now)? else { return Ok(None) };
    let mut applied = Applied::default();
    for id in plan.doomed() {
        match store.retention.delete_snapshot(archive, id, actor, now)? {
            Deletion::Deleted(r) => {
                applied.deleted.push(id);
                applied.reclaim += r;
            }
            Deletion::Kept(why) => applied.kept.push((id, why)),
            Deletion::AlreadyGone => {}
        }
    }
    if !applied.deleted.is_empty() {
        tracing::info!(
            %archive,
            deleted = applied.deleted.len(),
            entry_rows = applied.reclaim.entry_rows,
            unreferenced_blobs = applied.reclaim.blobs,
            unreferenced_bytes = applied.reclaim.bytes,
            "retention deleted snapshots"
        );
    }
    Ok(Some(applied))
}

/// The scheduled job of `asof serve`: applies every archive's policy.
pub fn apply_all(store: &Store) {
    // One frontend of a shared catalog applies the policies; the others skip the tick.
    let _lock = match store.jobs.try_lock_job("retention") {
        Ok(Some(lock)) => lock,
        Ok(None) => return tracing::info!("retention skipped: another process is applying it"),
        Err(e) => return tracing::warn!(error = %e, "retention: cannot take its lock; retrying at the next run"),
    };
    let archives = match store.catalog.archives() {
        Ok(a) => a,
        Err(e) => return tracing::warn!(error = %e, "retention: cannot list archives; retrying at the next run"),
    };
    let now = chrono::Utc::now().timestamp();
    for a in archives {
        if let Err(e) = apply(store, &a.name, now, "asof") {
            tracing::warn!(archive = %a.name, error = %e, "retention could not be applied; retrying at the next run");
        }
    }
}
