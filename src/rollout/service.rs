//! Channel operations as the HTTP API, the CLI and the background job use them: load,
//! bring up to now, apply, and save with the audit events, retrying when another writer
//! got there first. Blocking: async callers use the blocking pool.

use super::gate::{self, RingHealth};
use super::machine::{self, Event, Rollout, RolloutError, SYSTEM};
use super::spec::{ChannelSpec, SpecError};
use super::store::{ChannelRecord, ChannelStore, ChannelWrite, RingCount};
use super::{Millis, assign};
use crate::catalog::{Catalog, CatalogError};
use crate::domain::{ChannelName, NodeName, SnapshotId};

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("no channel named '{0}'")]
    NoChannel(ChannelName),
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Rollout(#[from] RolloutError),
    #[error("archive '{archive}' has no snapshot at or before {id}")]
    NoSnapshot { archive: String, id: SnapshotId },
    /// The change is valid but not now (e.g. new rings during a rollout).
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

pub type Result<T> = std::result::Result<T, ServiceError>;

/// Saves are retried this often when another writer moved the channel meanwhile.
const RETRIES: usize = 20;

pub struct Channels<'a> {
    pub store: &'a dyn ChannelStore,
    pub catalog: &'a dyn Catalog,
}

impl<'a> Channels<'a> {
    /// The channels of a store, on its catalog.
    pub fn of(store: &'a crate::store::Store) -> Self {
        Self { store: store.channels.as_ref(), catalog: store.catalog.as_ref() }
    }
}

/// What a node should use now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeAnswer {
    pub ring: usize,
    pub snapshot: Option<SnapshotId>,
    pub since: Option<Millis>,
    /// The other ID the node's ring may be moving between (the ring's previous or next),
    /// which by-hash lookups also search (see `http::channel_files`).
    pub other: Option<SnapshotId>,
}

pub fn node_answer(channel: &ChannelName, rec: &ChannelRecord, node: &NodeName) -> NodeAnswer {
    let ring = assign::ring_of(channel, node, &rec.spec.rings);
    let Some(r) = &rec.rollout else { return NodeAnswer { ring, snapshot: None, since: None, other: None } };
    let snapshot = r.serves(ring);
    let other = [Some(r.target), r.rings[ring].from].into_iter().flatten().find(|id| Some(*id) != snapshot);
    NodeAnswer { ring, snapshot, since: r.serving_since(ring), other }
}

impl Channels<'_> {
    fn load(&self, name: &ChannelName) -> Result<ChannelRecord> {
        self.store.channel(name)?.ok_or_else(|| ServiceError::NoChannel(name.clone()))
    }

    /// The channel as it is at `now` (rings whose time has come have started), read only.
    pub fn view(&self, name: &ChannelName, now: Millis) -> Result<ChannelRecord> {
        let mut rec = self.load(name)?;
        if let Some(r) = rec.rollout.as_mut() {
            machine::settle(&rec.spec, r, now);
        }
        Ok(rec)
    }

    pub fn list(&self, now: Millis) -> Result<Vec<ChannelRecord>> {
        let mut all = self.store.channels()?;
        for rec in &mut all {
            if let Some(r) = rec.rollout.as_mut() {
                machine::settle(&rec.spec, r, now);
            }
        }
        Ok(all)
    }

    /// Creates or changes a channel; true when it was created.
    pub fn put(&self, name: &ChannelName, spec: &ChannelSpec, actor: &str, now: Millis) -> Result<bool> {
        for _ in 0..RETRIES {
            let existing = self.store.channel(name)?;
            let detail = serde_json::to_value(spec.to_json()).expect("serializable");
            let (expected, action) = match &existing {
                None => (None, "channel.created"),
                Some(rec) => {
                    check_change(rec, spec)?;
                    (Some(rec.version), "channel.updated")
                }
            };
            let events = [Event { at: now, actor: actor.into(), action: action.into(), detail }];
            let w = ChannelWrite { name, expected_version: expected, spec, rollouts: &[], events: &events, now };
            if self.store.save(&w)? {
                return Ok(existing.is_none());
            }
        }
        Err(busy(name))
    }

    /// Applies `op` to the channel's rollout brought up to `now`, and saves it.
    fn mutate(
        &self,
        name: &ChannelName,
        now: Millis,
        op: impl Fn(&ChannelSpec, &mut Rollout) -> std::result::Result<Vec<Event>, RolloutError>,
    ) -> Result<ChannelRecord> {
        for _ in 0..RETRIES {
            let mut rec = self.load(name)?;
            let Some(mut r) = rec.rollout.take() else { return Err(RolloutError::NoRollout.into()) };
            let events = op(&rec.spec, &mut r)?;
            if self.save(&rec, &[r], &events, now)? {
                return self.view(name, now);
            }
        }
        Err(busy(name))
    }

    fn save(&self, rec: &ChannelRecord, rollouts: &[Rollout], events: &[Event], now: Millis) -> Result<bool> {
        let w = ChannelWrite {
            name: &rec.name,
            expected_version: Some(rec.version),
            spec: &rec.spec,
            rollouts,
            events,
            now,
        };
        Ok(self.store.save(&w)?)
    }

    /// Starts a rollout to the snapshot at or before `requested`, superseding a running one.
    pub fn start(&self, name: &ChannelName, requested: SnapshotId, actor: &str, now: Millis) -> Result<ChannelRecord> {
        for _ in 0..RETRIES {
            let mut rec = self.load(name)?;
            let snap = self
                .catalog
                .resolve(&rec.spec.archive, requested)?
                .ok_or_else(|| ServiceError::NoSnapshot { archive: rec.spec.archive.to_string(), id: requested })?;
            let mut current = rec.rollout.take();
            let (new, events) = machine::start(&rec.spec, current.as_mut(), requested, snap.id, now, actor)?;
            let rollouts: Vec<Rollout> = current.into_iter().chain([new]).collect();
            if self.save(&rec, &rollouts, &events, now)? {
                return self.view(name, now);
            }
        }
        Err(busy(name))
    }

    pub fn pause(&self, name: &ChannelName, actor: &str, now: Millis) -> Result<ChannelRecord> {
        self.mutate(name, now, |s, r| machine::pause(s, r, now, actor, format!("paused by {actor}")))
    }

    pub fn resume(&self, name: &ChannelName, actor: &str, now: Millis) -> Result<ChannelRecord> {
        self.mutate(name, now, |s, r| machine::resume(s, r, now, actor))
    }

    pub fn abort(&self, name: &ChannelName, actor: &str, now: Millis) -> Result<ChannelRecord> {
        self.mutate(name, now, |s, r| machine::abort(s, r, now, actor))
    }

    pub fn advance(&self, name: &ChannelName, actor: &str, now: Millis) -> Result<ChannelRecord> {
        self.mutate(name, now, |s, r| machine::advance(s, r, now, actor))
    }

    /// Records a node's report on the current rollout; pauses the rollout when its ring's
    /// failures pass the gate. Returns the channel as it is after.
    pub fn report(&self, name: &ChannelName, node: &NodeName, failed: bool, now: Millis) -> Result<ChannelRecord> {
        let rec = self.view(name, now)?;
        let Some(r) = &rec.rollout else { return Err(RolloutError::NoRollout.into()) };
        let ring_of = |n: &NodeName| assign::ring_of(&rec.name, n, &rec.spec.rings);
        let count = RingCount { rollout_id: r.id, since: r.resumed_at, rings: rec.spec.rings.len(), ring_of: &ring_of };
        let mut health = self.store.record_report(&count, node, failed, now)?;
        if r.status != machine::Status::Running {
            return Ok(rec);
        }
        only_started(&mut health, r);
        let Some(reason) = gate::tripped(&rec.spec, &health) else { return Ok(rec) };
        let rollout_id = r.id;
        self.mutate(name, now, |s, r| {
            // Only the rollout the reports were about, and only once.
            if r.id != rollout_id || r.status != machine::Status::Running {
                return Ok(Vec::new());
            }
            machine::pause(s, r, now, SYSTEM, reason.clone())
        })
    }

    /// Per ring, the reports on the current rollout since it started or last resumed.
    pub fn health(&self, rec: &ChannelRecord) -> Result<Vec<RingHealth>> {
        let Some(r) = &rec.rollout else { return Ok(vec![RingHealth::default(); rec.spec.rings.len()]) };
        let ring_of = |n: &NodeName| assign::ring_of(&rec.name, n, &rec.spec.rings);
        let count = RingCount { rollout_id: r.id, since: r.resumed_at, rings: rec.spec.rings.len(), ring_of: &ring_of };
        let mut health = self.store.ring_health(&count)?;
        only_started(&mut health, r);
        Ok(health)
    }

    /// Persists what time has done to every channel (rings started after their soak), with
    /// its events; what the background job runs. Returns how many channels changed.
    pub fn persist_due(&self, now: Millis) -> Result<usize> {
        let mut changed = 0;
        for rec in self.store.channels()? {
            changed += usize::from(self.persist(rec, now)?);
        }
        Ok(changed)
    }

    /// Saves what time has done to one channel; false if nothing (or another writer did).
    fn persist(&self, mut rec: ChannelRecord, now: Millis) -> Result<bool> {
        let Some(mut r) = rec.rollout.take() else { return Ok(false) };
        let events = machine::settle(&rec.spec, &mut r, now);
        if events.is_empty() {
            return Ok(false);
        }
        // A lost race means another writer saved (and settled) it: nothing to redo.
        self.save(&rec, &[r], &events, now)
    }

    /// The audit history, with what time has done persisted first.
    pub fn history(&self, name: &ChannelName, now: Millis) -> Result<Vec<Event>> {
        self.persist(self.load(name)?, now)?;
        Ok(self.store.history(name)?)
    }
}

/// A ring not yet on the target reports on the old ID: not this rollout's health.
fn only_started(health: &mut [RingHealth], r: &Rollout) {
    for (h, ring) in health.iter_mut().zip(&r.rings) {
        if ring.started_at.is_none() {
            *h = RingHealth::default();
        }
    }
}

fn busy(name: &ChannelName) -> ServiceError {
    ServiceError::Conflict(format!("channel '{name}' is being changed by others; try again"))
}

/// What may change on an existing channel: not its archive once it has rolled out, and not
/// its rings while a rollout is active (nodes would change rings mid-rollout).
fn check_change(rec: &ChannelRecord, spec: &ChannelSpec) -> Result<()> {
    let Some(r) = &rec.rollout else { return Ok(()) };
    if spec.archive != rec.spec.archive {
        return Err(ServiceError::Conflict(format!(
            "channel '{}' has rolled out snapshots of '{}'; its archive cannot change",
            rec.name, rec.spec.archive
        )));
    }
    // Each rollout keeps one state per ring (what it serves, since when); a different
    // number of rings would leave rings without one.
    if spec.rings.len() != r.rings.len() {
        return Err(ServiceError::Conflict(format!(
            "channel '{}' has rolled out with {} rings; their number cannot change (create a new channel)",
            rec.name,
            r.rings.len()
        )));
    }
    if r.status.is_active() && !spec.same_rings(&rec.spec) {
        return Err(ServiceError::Conflict(format!(
            "channel '{}' has a {} rollout; its rings cannot change until it completes or is aborted",
            rec.name,
            r.status.name()
        )));
    }
    Ok(())
}

/// The background job of `asof serve`: persists the rings time has started (answers do not
/// wait for it: reads settle in memory; this writes the history and the stored state).
pub fn persist_all(store: &crate::store::Store) {
    let ch = Channels::of(store);
    if let Err(e) = ch.persist_due(super::now_ms()) {
        tracing::warn!(error = %e, "could not advance rollout rings");
    }
}
