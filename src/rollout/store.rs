//! Where channels are kept: the `ChannelStore` trait (SQLite in the embedded default,
//! `catalog::sqlite_channels`). Every write goes through `save`, one transaction guarded by
//! the channel's version, together with the audit events it explains.

use super::Millis;
use super::gate::RingHealth;
use super::machine::{Event, Rollout};
use super::spec::ChannelSpec;
use crate::catalog::CatalogError;
use crate::domain::{ChannelName, NodeName};

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
