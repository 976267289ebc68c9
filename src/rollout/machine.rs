//! How a rollout moves: start, automatic ring advance after each soak, manual advance,
//! pause, resume, abort and supersede, as pure functions of (state, now). The state at any
//! moment follows from the stored state and the clock, so answers are right between the
//! background ticks that persist it, and tests need no sleeping.

use serde::Serialize;

use super::Millis;
use super::spec::{Advance, ChannelSpec};
use crate::domain::SnapshotId;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum Status {
    Running,
    /// Stopped widening; `reason` says who or what paused it.
    Paused {
        reason: String,
    },
    /// Every ring is on the target.
    Completed,
    /// Every ring is back on the ID it had before this rollout.
    Aborted,
    /// A newer rollout took over.
    Superseded,
}

impl Status {
    pub fn name(&self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Paused { .. } => "paused",
            Status::Completed => "completed",
            Status::Aborted => "aborted",
            Status::Superseded => "superseded",
        }
    }

    /// Running or paused: the rollout may still widen.
    pub fn is_active(&self) -> bool {
        matches!(self, Status::Running | Status::Paused { .. })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingState {
    /// What the ring served before this rollout (`None`: the channel had nothing yet).
    pub from: Option<SnapshotId>,
    /// When the ring moved to the target.
    pub started_at: Option<Millis>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollout {
    /// Assigned by the store; 0 until stored.
    pub id: i64,
    /// The ID asked for and the snapshot it resolved to (by floor), which is what rolls out.
    pub requested: SnapshotId,
    pub target: SnapshotId,
    pub started_at: Millis,
    pub status: Status,
    /// When the rollout stopped being active (completed, aborted, superseded).
    pub ended_at: Option<Millis>,
    /// The last start or resume: no ring starts by itself before it, and the health gate
    /// counts only reports after it.
    pub resumed_at: Millis,
    pub rings: Vec<RingState>,
}

/// One line of a channel's audit history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    pub at: Millis,
    /// The token name of whoever did it; `asof` for what the clock or the gate did.
    pub actor: String,
    pub action: String,
    pub detail: serde_json::Value,
}

/// The actor of automatic changes.
pub const SYSTEM: &str = "asof";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RolloutError {
    #[error("channel has no rollout")]
    NoRollout,
    #[error("the rollout is {0}: only a running or paused rollout can be changed")]
    Finished(&'static str),
    #[error("the rollout is already paused")]
    AlreadyPaused,
    #[error("the rollout is not paused")]
    NotPaused,
    #[error("the rollout is paused ({0}); resume it first")]
    Paused(String),
    #[error("snapshot {0} is already what this channel rolls out")]
    SameTarget(SnapshotId),
}

fn event(at: Millis, actor: &str, action: &str, detail: serde_json::Value) -> Event {
    Event { at, actor: actor.to_string(), action: action.to_string(), detail }
}

impl Rollout {
    /// The ID ring `ring` serves (`None`: nothing yet).
    pub fn serves(&self, ring: usize) -> Option<SnapshotId> {
        let r = &self.rings[ring];
        match (&self.status, r.started_at) {
            (Status::Aborted, _) => r.from,
            (_, Some(_)) => Some(self.target),
            (_, None) => r.from,
        }
    }

    /// Since when ring `ring` serves what it serves.
    pub fn serving_since(&self, ring: usize) -> Option<Millis> {
        match (&self.status, self.rings[ring].started_at) {
            (Status::Aborted, Some(_)) => self.ended_at,
            (Status::Aborted, None) | (_, None) => None,
            (_, Some(t)) => Some(t),
        }
    }

    /// When the next ring starts by itself, if it will (running, automatic).
    pub fn next_ring_at(&self, spec: &ChannelSpec) -> Option<(usize, Millis)> {
        if self.status != Status::Running || spec.advance != Advance::Auto {
            return None;
        }
        let next = self.rings.iter().position(|r| r.started_at.is_none())?;
        let prev = next.checked_sub(1)?;
        let prev_start = self.rings[prev].started_at?;
        let soak = spec.rings[prev].soak_secs as i64 * 1000;
        Some((next, (prev_start + soak).max(self.resumed_at)))
    }

    fn active(&self) -> Result<(), RolloutError> {
        if self.status.is_active() { Ok(()) } else { Err(RolloutError::Finished(self.status.name())) }
    }

    fn detail(&self, extra: serde_json::Value) -> serde_json::Value {
        let mut d = serde_json::json!({ "rollout": self.id, "snapshot": self.target });
        if let (Some(o), serde_json::Value::Object(e)) = (d.as_object_mut(), extra) {
            o.extend(e);
        }
        d
    }

    /// Moves ring `ring` to the target at `at`; `actor: None` is the clock.
    fn start_ring(&mut self, spec: &ChannelSpec, ring: usize, at: Millis, actor: Option<&str>, out: &mut Vec<Event>) {
        self.rings[ring].started_at = Some(at);
        let how = if actor.is_none() { "automatic" } else { "manual" };
        let actor = actor.unwrap_or(SYSTEM);
        out.push(event(
            at,
            actor,
            "ring.started",
            self.detail(serde_json::json!({ "ring": spec.rings[ring].name, "advance": how })),
        ));
        if self.rings.iter().all(|r| r.started_at.is_some()) {
            self.status = Status::Completed;
            self.ended_at = Some(at);
            out.push(event(at, SYSTEM, "rollout.completed", self.detail(serde_json::json!({}))));
        }
    }
}

/// Brings a rollout up to `now`: starts every ring whose time has come, each at the moment
/// it became due (not when this runs), so the outcome does not depend on when it runs.
pub fn settle(spec: &ChannelSpec, r: &mut Rollout, now: Millis) -> Vec<Event> {
    let mut out = Vec::new();
    while let Some((ring, due)) = r.next_ring_at(spec) {
        if due > now {
            break;
        }
        r.start_ring(spec, ring, due, None, &mut out);
    }
    out
}

/// A new rollout to `target` (already resolved) that supersedes `current`: ring 1 moves at
/// once; each ring remembers what it served, which is what abort returns it to.
pub fn start(
    spec: &ChannelSpec,
    current: Option<&mut Rollout>,
    requested: SnapshotId,
    target: SnapshotId,
    now: Millis,
    actor: &str,
) -> Result<(Rollout, Vec<Event>), RolloutError> {
    let mut out = Vec::new();
    let from: Vec<Option<SnapshotId>> = match current {
        None => vec![None; spec.rings.len()],
        Some(cur) => {
            out.extend(settle(spec, cur, now));
            if cur.status.is_active() && cur.target == target {
                return Err(RolloutError::SameTarget(target));
            }
            let from = (0..cur.rings.len()).map(|i| cur.serves(i)).collect();
            if cur.status.is_active() {
                cur.status = Status::Superseded;
                cur.ended_at = Some(now);
                out.push(event(now, actor, "rollout.superseded", cur.detail(serde_json::json!({ "by": target }))));
            }
            from
        }
    };
    let mut r = Rollout {
        id: 0,
        requested,
        target,
        started_at: now,
        status: Status::Running,
        ended_at: None,
        resumed_at: now,
        rings: from.into_iter().map(|from| RingState { from, started_at: None }).collect(),
    };
    out.push(event(now, actor, "rollout.started", r.detail(serde_json::json!({ "requested": requested }))));
    r.start_ring(spec, 0, now, Some(actor), &mut out);
    out.extend(settle(spec, &mut r, now));
    Ok((r, out))
}

pub fn pause(
    spec: &ChannelSpec,
    r: &mut Rollout,
    now: Millis,
    actor: &str,
    reason: String,
) -> Result<Vec<Event>, RolloutError> {
    let mut out = settle(spec, r, now);
    r.active()?;
    if matches!(r.status, Status::Paused { .. }) {
        return Err(RolloutError::AlreadyPaused);
    }
    out.push(event(now, actor, "rollout.paused", r.detail(serde_json::json!({ "reason": reason }))));
    r.status = Status::Paused { reason };
    Ok(out)
}

pub fn resume(spec: &ChannelSpec, r: &mut Rollout, now: Millis, actor: &str) -> Result<Vec<Event>, RolloutError> {
    r.active()?;
    if r.status == Status::Running {
        return Err(RolloutError::NotPaused);
    }
    r.status = Status::Running;
    r.resumed_at = now;
    let mut out = vec![event(now, actor, "rollout.resumed", r.detail(serde_json::json!({})))];
    out.extend(settle(spec, r, now));
    Ok(out)
}

pub fn abort(spec: &ChannelSpec, r: &mut Rollout, now: Millis, actor: &str) -> Result<Vec<Event>, RolloutError> {
    let mut out = settle(spec, r, now);
    r.active()?;
    r.status = Status::Aborted;
    r.ended_at = Some(now);
    out.push(event(now, actor, "rollout.aborted", r.detail(serde_json::json!({}))));
    Ok(out)
}

/// Starts the next ring now, soaked or not (either advance mode).
pub fn advance(spec: &ChannelSpec, r: &mut Rollout, now: Millis, actor: &str) -> Result<Vec<Event>, RolloutError> {
    let mut out = settle(spec, r, now);
    r.active()?;
    if let Status::Paused { reason } = &r.status {
        return Err(RolloutError::Paused(reason.clone()));
    }
    let next = r.rings.iter().position(|x| x.started_at.is_none()).expect("an active rollout has an unstarted ring");
    r.start_ring(spec, next, now, Some(actor), &mut out);
    Ok(out)
}
