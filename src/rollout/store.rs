//! Where channels are kept: the `ChannelStore` trait (SQLite in the embedded default,
//! `catalog::sqlite_channels`). Every write goes through `save`, one transaction guarded by
//! the channel's version, together with the audit events it explains.

use super::Millis;
use super::gate::RingHealth;
use serde::{Deserialize, Serialize};

use super::machine::{Event, RingState, Rollout, Status};
use super::spec::{ChannelSpec, SpecJson};
use crate::catalog::CatalogError;
use crate::domain::{ChannelName, NodeName, SnapshotId};

#[derive(Debug, Clone)]
pub struct ChannelRecord {
    pub id: i64,
    pub name: ChannelName,
    pub spec: ChannelSpec,
    /// Bumped by every write; `save` fails if it moved meanwhile.
    pub version: i64,
    pub created_at: Millis,
    pub updated_at: Millis,
    /// The latest rollout, whatever its status.
    pub rollout: Option<Rollout>,
}

/// One write: the channel (created when `expected_version` is `None`), the rollouts it
/// changes or adds (`id` 0: new), and the events that say why.
pub struct ChannelWrite<'a> {
    pub name: &'a ChannelName,
    pub expected_version: Option<i64>,
    pub spec: &'a ChannelSpec,
    pub rollouts: &'a [Rollout],
    pub events: &'a [Event],
    pub now: Millis,
}

/// What counting a rollout's reports per ring needs: the rollout, the time counting starts
/// (its start or last resume), and which ring each node is in.
pub struct RingCount<'a> {
    pub rollout_id: i64,
    pub since: Millis,
    pub rings: usize,
    pub ring_of: &'a dyn Fn(&NodeName) -> usize,
}

impl RingCount<'_> {
    /// Counts from each node's latest report (the slow way, O(nodes)).
    pub fn count(&self, latest: &[(NodeName, bool)]) -> Vec<RingHealth> {
        let mut out = vec![RingHealth::default(); self.rings];
        for (node, failed) in latest {
            let h = &mut out[(self.ring_of)(node)];
            h.reports += 1;
            h.failures += u32::from(*failed);
        }
        out
    }
}

pub trait ChannelStore: Send + Sync + 'static {
    fn channel(&self, name: &ChannelName) -> Result<Option<ChannelRecord>, CatalogError>;
    fn channels(&self) -> Result<Vec<ChannelRecord>, CatalogError>;
    /// False, and nothing written, when the channel's version is not `expected_version`
    /// (or, creating, when it already exists).
    fn save(&self, write: &ChannelWrite) -> Result<bool, CatalogError>;
    /// Records a node's report on a rollout (its latest replaces earlier ones) and returns
    /// each ring's health counted since `rings.since`, kept as counters: O(rings) per report.
    fn record_report(
        &self,
        rings: &RingCount,
        node: &NodeName,
        failed: bool,
        at: Millis,
    ) -> Result<Vec<RingHealth>, CatalogError>;
    /// Each ring's health since `rings.since` (read only: counted from the reports when no
    /// counters for that `since` exist yet).
    fn ring_health(&self, rings: &RingCount) -> Result<Vec<RingHealth>, CatalogError>;
    /// Each node's latest report on a rollout made at or after `since` (true: failed).
    fn reports(&self, rollout_id: i64, since: Millis) -> Result<Vec<(NodeName, bool)>, CatalogError>;
    /// The channel's audit history, oldest first.
    fn history(&self, name: &ChannelName) -> Result<Vec<Event>, CatalogError>;
}

/// The columns of a `rollouts` row that `StoredRollout` holds, in its order.
pub const ROLLOUT_COLUMNS: &str = "id, requested, target, started_at, status, reason, ended_at, resumed_at, rings";

/// A rollout's row as every catalog stores it; `parse` checks it.
pub struct StoredRollout {
    pub id: i64,
    pub requested: i64,
    pub target: i64,
    pub started_at: i64,
    pub status: String,
    pub reason: Option<String>,
    pub ended_at: Option<i64>,
    pub resumed_at: i64,
    /// JSON: per ring `{from, started_at}`.
    pub rings: String,
}

#[derive(Serialize, Deserialize)]
struct RingRow {
    from: Option<i64>,
    started_at: Option<i64>,
}

fn bad(msg: impl Into<String>) -> CatalogError {
    CatalogError::Corrupt(msg.into())
}

fn snapshot_id(secs: i64) -> Result<SnapshotId, CatalogError> {
    SnapshotId::from_unix(secs).map_err(|e| bad(e.to_string()))
}

impl StoredRollout {
    pub fn parse(self) -> Result<Rollout, CatalogError> {
        let status = match (self.status.as_str(), self.reason) {
            ("running", _) => Status::Running,
            ("paused", reason) => Status::Paused { reason: reason.unwrap_or_default() },
            ("completed", _) => Status::Completed,
            ("aborted", _) => Status::Aborted,
            ("superseded", _) => Status::Superseded,
            (other, _) => return Err(bad(format!("rollout {} has unknown status {other:?}", self.id))),
        };
        let rings: Vec<RingRow> =
            serde_json::from_str(&self.rings).map_err(|e| bad(format!("rollout {} rings: {e}", self.id)))?;
        let rings = rings
            .into_iter()
            .map(|r| Ok(RingState { from: r.from.map(snapshot_id).transpose()?, started_at: r.started_at }))
            .collect::<Result<_, CatalogError>>()?;
        Ok(Rollout {
            id: self.id,
            requested: snapshot_id(self.requested)?,
            target: snapshot_id(self.target)?,
            started_at: self.started_at,
            status,
            ended_at: self.ended_at,
            resumed_at: self.resumed_at,
            rings,
        })
    }
}

/// The rings column of a rollout.
pub fn rings_json(r: &Rollout) -> String {
    let rows: Vec<RingRow> =
        r.rings.iter().map(|x| RingRow { from: x.from.map(SnapshotId::unix), started_at: x.started_at }).collect();
    serde_json::to_string(&rows).expect("serializable")
}

/// The reason column: why a rollout is paused.
pub fn pause_reason(s: &Status) -> Option<&str> {
    match s {
        Status::Paused { reason } => Some(reason),
        _ => None,
    }
}

/// A channel's stored spec, checked as when it was set.
pub fn parse_spec(name: &str, json: &str) -> Result<ChannelSpec, CatalogError> {
    let spec: SpecJson = serde_json::from_str(json).map_err(|e| bad(format!("channel {name} spec: {e}")))?;
    spec.validate().map_err(|e| bad(format!("channel {name} spec: {e}")))
}
