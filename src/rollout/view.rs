//! The JSON view of a channel and its current rollout, ring by ring: what the API answers
//! and `asof channel show --json` prints.

use serde_json::{Value, json};

use super::gate::RingHealth;
use super::{ChannelRecord, Status, rfc3339};

pub fn time(ms: Option<i64>) -> Value {
    ms.map_or(Value::Null, |t| Value::String(rfc3339(t)))
}

/// A channel and its current rollout, ring by ring, as every answer of this API shows it.
pub fn channel_json(rec: &ChannelRecord, health: &[RingHealth]) -> Value {
    let spec = rec.spec.to_json();
    let rollout = rec.rollout.as_ref().map(|r| {
        let rings: Vec<Value> = spec
            .rings
            .iter()
            .enumerate()
            .map(|(i, ring)| {
                let h = health.get(i).copied().unwrap_or_default();
                json!({
                    "name": ring.name,
                    "snapshot": r.serves(i),
                    "since": time(r.serving_since(i)),
                    "from": r.rings[i].from,
                    "started_at": time(r.rings[i].started_at),
                    "reports": h.reports,
                    "failures": h.failures,
                })
            })
            .collect();
        json!({
            "id": r.id,
            "snapshot": r.target,
            "requested": r.requested,
            "state": r.status.name(),
            "reason": match &r.status { Status::Paused { reason } => Value::String(reason.clone()), _ => Value::Null },
            "started_at": rfc3339(r.started_at),
            "ended_at": time(r.ended_at),
            "next_ring_at": time(r.next_ring_at(&rec.spec).map(|(_, t)| t)),
            "rings": rings,
        })
    });
    json!({
        "channel": rec.name,
        "archive": spec.archive,
        "rings": spec.rings,
        "gate": spec.gate,
        "advance": spec.advance,
        "sources": spec.sources,
        "created_at": rfc3339(rec.created_at),
        "updated_at": rfc3339(rec.updated_at),
        "rollout": rollout,
    })
}
