//! `ChannelStore`: channels saved with optimistic versions, rollouts inserted then updated,
//! the audit history, and node reports counted per ring.

use super::Fixture;
use crate::domain::{ChannelName, NodeName, SnapshotId};
use crate::rollout::gate::RingHealth;
use crate::rollout::store::RingCount;
use crate::rollout::{Advance, ChannelSpec, ChannelWrite, Event, Gate, Ring, RingState, Rollout, Status};

pub(super) fn spec(archive: &str) -> ChannelSpec {
    ChannelSpec {
        archive: archive.parse().unwrap(),
        rings: vec![
            Ring { name: "canary".into(), basis_points: 500, soak_secs: 60 },
            Ring { name: "broad".into(), basis_points: 10_000, soak_secs: 0 },
        ],
        gate: Gate { max_failure_rate: 0.1, min_reports: 2 },
        advance: Advance::Auto,
        sources: None,
    }
}

fn id(n: i64) -> SnapshotId {
    SnapshotId::from_unix(1_700_000_000 + n).unwrap()
}

fn rollout(id_: i64, status: Status) -> Rollout {
    Rollout {
        id: id_,
        requested: id(9),
        target: id(5),
        started_at: 1_000,
        status,
        ended_at: None,
        resumed_at: 1_000,
        rings: vec![
            RingState { from: Some(id(5)), started_at: Some(1_000) },
            RingState { from: None, started_at: None },
        ],
    }
}

fn event(at: i64, action: &str, detail: serde_json::Value) -> Event {
    Event { at, actor: "ci".into(), action: action.into(), detail }
}

pub(crate) fn channels_are_saved_with_optimistic_versions_and_their_history(f: &Fixture) {
    let c = &*f.channels;
    let name: ChannelName = "prod".parse().unwrap();
    let (first, second) = (spec("deb"), spec("deb2"));
    let write = |expected, spec: &ChannelSpec, rollouts: &[Rollout], events: &[Event], now| {
        c.save(&ChannelWrite { name: &name, expected_version: expected, spec, rollouts, events, now }).unwrap()
    };
    assert!(c.channel(&name).unwrap().is_none());
    let started = [rollout(0, Status::Running)];
    let events = [
        event(1_000, "rollout.started", serde_json::json!({"rollout": 0})),
        event(1_000, "ring.started", serde_json::json!({"ring": 0})),
    ];
    assert!(write(None, &first, &started, &events, 1_000));
    assert!(!write(None, &first, &[], &[], 1_100), "it exists: a create is refused");
    let saved = c.channel(&name).unwrap().unwrap();
    assert_eq!((saved.version, saved.created_at, saved.updated_at), (1, 1_000, 1_000));
    assert_eq!(saved.spec, first);
    let running = saved.rollout.clone().unwrap();
    assert!(running.id > 0);
    assert_eq!(running, Rollout { id: running.id, ..rollout(0, Status::Running) });

    assert!(!write(Some(2), &second, &[], &[], 1_200), "a stale version is refused");
    let paused = Rollout { status: Status::Paused { reason: "2 of 3 canaries failed".into() }, ..running.clone() };
    assert!(write(
        Some(1),
        &second,
        std::slice::from_ref(&paused),
        &[event(1_300, "rollout.paused", serde_json::json!({}))],
        1_300
    ));
    let saved = c.channel(&name).unwrap().unwrap();
    assert_eq!((saved.version, saved.created_at, saved.updated_at, &saved.spec), (2, 1_000, 1_300, &second));
    assert_eq!(saved.rollout, Some(paused), "updated in place");

    let history = c.history(&name).unwrap();
    let actions: Vec<(&str, &serde_json::Value)> = history.iter().map(|e| (e.action.as_str(), &e.detail)).collect();
    assert_eq!(
        actions,
        [
            ("rollout.started", &serde_json::json!({"rollout": running.id})),
            ("ring.started", &serde_json::json!({"ring": 0})),
            ("rollout.paused", &serde_json::json!({})),
        ],
        "the new rollout's id filled in"
    );
    let other: ChannelName = "a-first".parse().unwrap();
    assert!(
        c.save(&ChannelWrite {
            name: &other,
            expected_version: None,
            spec: &first,
            rollouts: &[],
            events: &[],
            now: 5
        })
        .unwrap()
    );
    let names: Vec<String> = c.channels().unwrap().iter().map(|r| r.name.to_string()).collect();
    assert_eq!(names, ["a-first", "prod"]);
    assert!(c.channel(&other).unwrap().unwrap().rollout.is_none());
}

pub(crate) fn reports_are_counted_per_ring_as_they_come(f: &Fixture) {
    let c = &*f.channels;
    let name: ChannelName = "prod".parse().unwrap();
    let s = spec("deb");
    assert!(
        c.save(&ChannelWrite {
            name: &name,
            expected_version: None,
            spec: &s,
            rollouts: &[rollout(0, Status::Running)],
            events: &[],
            now: 1
        })
        .unwrap()
    );
    let rollout_id = c.channel(&name).unwrap().unwrap().rollout.unwrap().id;
    let ring_of = |n: &NodeName| usize::from(!n.as_str().starts_with("canary"));
    let counting = |since| RingCount { rollout_id, since, rings: 2, ring_of: &ring_of };
    let node = |n: &str| -> NodeName { n.parse().unwrap() };
    let h = |reports, failures| RingHealth { reports, failures };
    assert_eq!(c.ring_health(&counting(0)).unwrap(), [h(0, 0), h(0, 0)]);
    assert_eq!(c.record_report(&counting(0), &node("canary-1"), false, 10).unwrap(), [h(1, 0), h(0, 0)]);
    assert_eq!(c.record_report(&counting(0), &node("web-1"), true, 11).unwrap(), [h(1, 0), h(1, 1)]);
    assert_eq!(
        c.record_report(&counting(0), &node("web-1"), false, 12).unwrap(),
        [h(1, 0), h(1, 0)],
        "recovered: one report, no failure"
    );
    assert_eq!(c.record_report(&counting(0), &node("web-2"), true, 13).unwrap(), [h(1, 0), h(2, 1)]);
    assert_eq!(c.ring_health(&counting(0)).unwrap(), [h(1, 0), h(2, 1)]);
    assert_eq!(
        c.reports(rollout_id, 0).unwrap(),
        [(node("canary-1"), false), (node("web-1"), false), (node("web-2"), true)]
    );
    // Resumed at 12: only reports from then on count, recounted once.
    assert_eq!(c.ring_health(&counting(12)).unwrap(), [h(0, 0), h(2, 1)]);
    assert_eq!(c.record_report(&counting(12), &node("canary-1"), true, 20).unwrap(), [h(1, 1), h(2, 1)]);
    assert_eq!(c.reports(rollout_id, 13).unwrap(), [(node("canary-1"), true), (node("web-2"), true)]);
}
