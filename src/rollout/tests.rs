//! The rollout state machine and the service over the SQLite catalog, driven with explicit
//! times (no sleeping).

use proptest::prelude::*;

use super::machine::{self, SYSTEM, Status};
use super::spec::{Advance, ChannelSpec, Gate, Ring};
use super::*;
use crate::domain::{ChannelName, NodeName, SnapshotId};

fn spec(advance: Advance) -> ChannelSpec {
    ChannelSpec {
        archive: "debian".parse().unwrap(),
        rings: vec![
            Ring { name: "canary".into(), basis_points: 100, soak_secs: 10 },
            Ring { name: "early".into(), basis_points: 1000, soak_secs: 20 },
            Ring { name: "broad".into(), basis_points: 10_000, soak_secs: 0 },
        ],
        gate: Gate { max_failure_rate: 0.2, min_reports: 3 },
        advance,
        sources: Some("bookworm main".into()),
    }
}

fn id(n: i64) -> SnapshotId {
    SnapshotId::from_unix(1_700_000_000 + n).unwrap()
}

const T0: Millis = 1_800_000_000_000;

fn served(r: &Rollout) -> Vec<Option<SnapshotId>> {
    (0..r.rings.len()).map(|i| r.serves(i)).collect()
}

#[test]
fn rings_start_one_soak_after_another() {
    let s = spec(Advance::Auto);
    let (mut r, ev) = machine::start(&s, None, id(5), id(3), T0, "ci").unwrap();
    assert_eq!(ev.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(), ["rollout.started", "ring.started"]);
    assert_eq!(served(&r), [Some(id(3)), None, None]);
    assert!(machine::settle(&s, &mut r, T0 + 9_999).is_empty());
    let ev = machine::settle(&s, &mut r, T0 + 10_000);
    assert_eq!(
        ev[0].detail,
        serde_json::json!({"rollout": 0, "snapshot": id(3), "ring": "early", "advance": "automatic"})
    );
    assert_eq!(ev[0].actor, SYSTEM);
    assert_eq!(served(&r), [Some(id(3)), Some(id(3)), None]);
    // Settled late, the last ring still starts when it was due, and the rollout completes then.
    let ev = machine::settle(&s, &mut r, T0 + 99_000);
    assert_eq!(
        ev.iter().map(|e| (e.action.as_str(), e.at)).collect::<Vec<_>>(),
        [("ring.started", T0 + 30_000), ("rollout.completed", T0 + 30_000)]
    );
    assert_eq!(r.status, Status::Completed);
    assert_eq!(r.serving_since(2), Some(T0 + 30_000));
}

#[test]
fn pause_stops_widening_and_resume_restarts_the_clock() {
    let s = spec(Advance::Auto);
    let (mut r, _) = machine::start(&s, None, id(3), id(3), T0, "ci").unwrap();
    machine::pause(&s, &mut r, T0 + 5_000, "ops", "paused by ops".into()).unwrap();
    assert!(machine::settle(&s, &mut r, T0 + 1_000_000).is_empty());
    assert_eq!(served(&r), [Some(id(3)), None, None]);
    assert_eq!(machine::pause(&s, &mut r, T0 + 6_000, "ops", "x".into()), Err(RolloutError::AlreadyPaused));
    assert_eq!(machine::advance(&s, &mut r, T0 + 6_000, "ops"), Err(RolloutError::Paused("paused by ops".into())));
    // Resumed long after the soak: the next ring starts at once.
    let ev = machine::resume(&s, &mut r, T0 + 50_000, "ops").unwrap();
    assert_eq!(
        ev.iter().map(|e| (e.action.as_str(), e.at)).collect::<Vec<_>>(),
        [("rollout.resumed", T0 + 50_000), ("ring.started", T0 + 50_000)]
    );
    assert_eq!(machine::resume(&s, &mut r, T0 + 50_001, "ops"), Err(RolloutError::NotPaused));
}

#[test]
fn abort_returns_every_ring_to_what_it_served() {
    let s = spec(Advance::Auto);
    let (mut old, _) = machine::start(&s, None, id(1), id(1), T0, "ci").unwrap();
    machine::settle(&s, &mut old, T0 + 60_000);
    assert_eq!(old.status, Status::Completed);
    let (mut r, _) = machine::start(&s, Some(&mut old), id(2), id(2), T0 + 100_000, "ci").unwrap();
    machine::settle(&s, &mut r, T0 + 110_000);
    assert_eq!(served(&r), [Some(id(2)), Some(id(2)), Some(id(1))]);
    machine::abort(&s, &mut r, T0 + 111_000, "ops").unwrap();
    assert_eq!(served(&r), [Some(id(1)); 3]);
    assert_eq!(r.serving_since(0), Some(T0 + 111_000));
    assert_eq!(machine::abort(&s, &mut r, T0 + 112_000, "ops"), Err(RolloutError::Finished("aborted")));
}

#[test]
fn a_new_rollout_supersedes_a_running_one_ring_by_ring() {
    let s = spec(Advance::Auto);
    let (mut a, _) = machine::start(&s, None, id(1), id(1), T0, "ci").unwrap();
    machine::settle(&s, &mut a, T0 + 60_000);
    let (mut b, _) = machine::start(&s, Some(&mut a), id(2), id(2), T0 + 100_000, "ci").unwrap();
    // b has reached canary and early when c starts: c's rings come from what each served.
    let (c, ev) = machine::start(&s, Some(&mut b), id(3), id(3), T0 + 111_000, "ci").unwrap();
    assert_eq!(b.status, Status::Superseded);
    assert_eq!(ev[1].action, "rollout.superseded");
    assert_eq!(c.rings.iter().map(|r| r.from).collect::<Vec<_>>(), [Some(id(2)), Some(id(2)), Some(id(1))]);
    assert_eq!(served(&c), [Some(id(3)), Some(id(2)), Some(id(1))]);
    let mut c2 = c.clone();
    assert_eq!(
        machine::start(&s, Some(&mut c2), id(3), id(3), T0 + 112_000, "ci").unwrap_err(),
        RolloutError::SameTarget(id(3))
    );
}

#[test]
fn manual_channels_widen_only_on_advance() {
    let s = spec(Advance::Manual);
    let (mut r, _) = machine::start(&s, None, id(1), id(1), T0, "ci").unwrap();
    assert!(machine::settle(&s, &mut r, T0 + 10_000_000).is_empty());
    let ev = machine::advance(&s, &mut r, T0 + 5, "ops").unwrap();
    assert_eq!(ev[0].detail["advance"], "manual");
    assert_eq!(ev[0].actor, "ops");
    machine::advance(&s, &mut r, T0 + 6, "ops").unwrap();
    assert_eq!(r.status, Status::Completed);
    assert_eq!(machine::advance(&s, &mut r, T0 + 7, "ops"), Err(RolloutError::Finished("completed")));
}

#[derive(Debug, Clone)]
enum Op {
    Wait(u32),
    Pause,
    Resume,
    Advance,
    Abort,
    Start,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u32..40_000).prop_map(Op::Wait),
        1 => Just(Op::Pause),
        1 => Just(Op::Resume),
        1 => Just(Op::Advance),
        1 => Just(Op::Abort),
        1 => Just(Op::Start),
    ]
}

proptest! {
    /// Whatever operators do, a node's ID only moves forward (targets here only grow),
    /// except when its rollout is aborted.
    #[test]
    fn a_node_never_goes_back_except_by_abort(ops in proptest::collection::vec(op(), 1..60), ring in 0usize..3, manual in any::<bool>()) {
        let s = spec(if manual { Advance::Manual } else { Advance::Auto });
        let mut now = T0;
        let mut next_id = 1;
        let (mut r, _) = machine::start(&s, None, id(next_id), id(next_id), now, "ci").unwrap();
        let mut last = r.serves(ring);
        for op in ops {
            let mut aborted = false;
            match op {
                Op::Wait(ms) => { now += i64::from(ms); machine::settle(&s, &mut r, now); }
                Op::Pause => { let _ = machine::pause(&s, &mut r, now, "ops", "p".into()); }
                Op::Resume => { let _ = machine::resume(&s, &mut r, now, "ops"); }
                Op::Advance => { let _ = machine::advance(&s, &mut r, now, "ops"); }
                Op::Abort => { aborted = machine::abort(&s, &mut r, now, "ops").is_ok(); }
                Op::Start => {
                    next_id += 1;
                    let (n, _) = machine::start(&s, Some(&mut r), id(next_id), id(next_id), now, "ci").unwrap();
                    r = n;
                }
            }
            let served = r.serves(ring);
            if !aborted {
                prop_assert!(served >= last, "ring {ring} went from {last:?} to {served:?} after {op:?}");
            }
            last = served;
            // The ring is served what it started on, or the target: nothing else.
            prop_assert!(served.is_none() || served == Some(r.target) || served == r.rings[ring].from);
        }
    }
}

mod with_store {
    use super::*;
    use crate::rollout::service::{Channels, ServiceError, node_answer};
    use crate::store::Store;

    fn setup() -> (tempfile::TempDir, Store, Vec<SnapshotId>) {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open_local(tmp.path()).unwrap();
        let archive = "debian".parse().unwrap();
        let mut ids = Vec::new();
        for i in 0..2 {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("f"), format!("v{i}")).unwrap();
            let opts = crate::publish::PublishOptions {
                progress: &crate::publish::NoProgress,
                source: serde_json::Value::Null,
                always: true,
            };
            ids.push(crate::publish::publish_dir(&store, &archive, dir.path(), &opts).unwrap().snapshot);
        }
        (tmp, store, ids)
    }

    #[test]
    fn the_number_of_rings_is_fixed_once_a_channel_has_rolled_out() {
        let (_tmp, store, ids) = setup();
        let ch = Channels::of(&store);
        let name: ChannelName = "prod".parse().unwrap();
        let s = spec(Advance::Auto);
        ch.put(&name, &s, "admin", T0).unwrap();
        ch.start(&name, ids[1], "ci", T0 + 1).unwrap();
        ch.abort(&name, "ci", T0 + 2).unwrap();
        let mut two = s.clone();
        two.rings.remove(1);
        match ch.put(&name, &two, "admin", T0 + 3) {
            Err(ServiceError::Conflict(m)) => assert_eq!(
                m,
                "channel 'prod' has rolled out with 3 rings; their number cannot change (create a new channel)"
            ),
            other => panic!("{other:?}"),
        }
        // The same number of rings with other soak times is a change like any other.
        let mut slower = s.clone();
        slower.rings[0].soak_secs = 60;
        assert!(!ch.put(&name, &slower, "admin", T0 + 4).unwrap());
        let view = ch.view(&name, T0 + 5).unwrap();
        assert_eq!(view.spec.rings[0].soak_secs, 60);
    }

    #[test]
    fn a_rollout_is_stored_settled_and_audited() {
        let (_tmp, store, ids) = setup();
        let ch = Channels::of(&store);
        let name: ChannelName = "prod".parse().unwrap();
        let s = spec(Advance::Auto);
        assert!(ch.put(&name, &s, "admin", T0).unwrap());
        assert!(!ch.put(&name, &s, "admin", T0 + 1).unwrap());
        // Non-exact IDs resolve by floor: a minute after the last snapshot is the last.
        let requested = SnapshotId::from_unix(ids[1].unix() + 60).unwrap();
        let rec = ch.start(&name, requested, "ci", T0 + 2).unwrap();
        let r = rec.rollout.as_ref().unwrap();
        assert_eq!((r.requested, r.target), (requested, ids[1]));
        // Read-only views settle in memory; the store still has the old rings until persisted.
        assert_eq!(served(ch.view(&name, T0 + 10_002).unwrap().rollout.as_ref().unwrap())[1], Some(ids[1]));
        assert_eq!(served(store.channels.channel(&name).unwrap().unwrap().rollout.as_ref().unwrap())[1], None);
        assert_eq!(ch.persist_due(T0 + 10_002).unwrap(), 1);
        assert_eq!(ch.persist_due(T0 + 10_003).unwrap(), 0);
        // Rings cannot change mid-rollout; the archive never once rolled out.
        let mut other = s.clone();
        other.rings[0].basis_points = 200;
        assert!(matches!(ch.put(&name, &other, "admin", T0 + 3), Err(ServiceError::Conflict(_))));
        let mut moved = s.clone();
        moved.archive = "ubuntu".parse().unwrap();
        assert!(matches!(ch.put(&name, &moved, "admin", T0 + 3), Err(ServiceError::Conflict(_))));
        let before = "19990101T000000Z".parse().unwrap();
        assert!(matches!(ch.start(&name, before, "ci", T0 + 4), Err(ServiceError::NoSnapshot { .. })));

        let h = ch.history(&name, T0 + 40_000).unwrap();
        let actions: Vec<(&str, &str)> = h.iter().map(|e| (e.actor.as_str(), e.action.as_str())).collect();
        assert_eq!(
            actions,
            [
                ("admin", "channel.created"),
                ("admin", "channel.updated"),
                ("ci", "rollout.started"),
                ("ci", "ring.started"),
                ("asof", "ring.started"),
                ("asof", "ring.started"),
                ("asof", "rollout.completed"),
            ]
        );
        let rid = store.channels.channel(&name).unwrap().unwrap().rollout.unwrap().id;
        assert_eq!(h[2].detail, serde_json::json!({"rollout": rid, "snapshot": ids[1], "requested": requested}));
        assert_eq!(h[5].at, T0 + 2 + 30_000);
    }

    #[test]
    fn failures_over_the_gate_pause_the_rollout_with_the_reason() {
        let (_tmp, store, ids) = setup();
        let ch = Channels::of(&store);
        let name: ChannelName = "prod".parse().unwrap();
        let mut s = spec(Advance::Auto);
        s.rings[0].basis_points = 5000;
        s.rings[1].basis_points = 7500;
        ch.put(&name, &s, "admin", T0).unwrap();
        ch.start(&name, ids[1], "ci", T0).unwrap();
        let rec = ch.view(&name, T0).unwrap();
        let canary: Vec<NodeName> = (0..100)
            .map(|i| format!("n{i}").parse().unwrap())
            .filter(|n| node_answer(&name, &rec, n).ring == 0)
            .take(5)
            .collect();
        ch.report(&name, &canary[0], false, T0 + 1).unwrap();
        ch.report(&name, &canary[1], true, T0 + 2).unwrap();
        // 1 of 2 failed, but fewer than min_reports (3) reported.
        assert_eq!(ch.view(&name, T0 + 3).unwrap().rollout.unwrap().status, Status::Running);
        let rec = ch.report(&name, &canary[2], false, T0 + 3).unwrap();
        assert_eq!(
            rec.rollout.unwrap().status,
            Status::Paused {
                reason: "health gate: 1 of 3 reporting nodes of ring 'canary' failed (33.3%), over the channel's 20.0%"
                    .into()
            }
        );
        let h = store.channels.history(&name).unwrap();
        assert_eq!((h.last().unwrap().actor.as_str(), h.last().unwrap().action.as_str()), ("asof", "rollout.paused"));
        // Resumed, the gate counts only later reports.
        let rec = ch.resume(&name, "ops", T0 + 4).unwrap();
        assert_eq!(ch.health(&rec).unwrap()[0], gate::RingHealth { reports: 0, failures: 0 });
        assert_eq!(rec.rollout.unwrap().status, Status::Running);
    }

    #[test]
    fn per_ring_counters_agree_with_a_recount_of_every_report() {
        let (_tmp, store, ids) = setup();
        let ch = Channels::of(&store);
        let name: ChannelName = "prod".parse().unwrap();
        let mut s = spec(Advance::Auto);
        s.gate = Gate { max_failure_rate: 1.0, min_reports: 1 };
        ch.put(&name, &s, "admin", T0).unwrap();
        ch.start(&name, ids[1], "ci", T0).unwrap();
        let nodes: Vec<NodeName> = (0..40).map(|i| format!("n{i}").parse().unwrap()).collect();
        let recount = |at: Millis| {
            let rec = ch.view(&name, at).unwrap();
            let r = rec.rollout.clone().unwrap();
            let ring_of = |n: &NodeName| assign::ring_of(&name, n, &rec.spec.rings);
            let count = store::RingCount { rollout_id: r.id, since: r.resumed_at, rings: 3, ring_of: &ring_of };
            (
                store.channels.ring_health(&count).unwrap(),
                count.count(&store.channels.reports(r.id, r.resumed_at).unwrap()),
            )
        };
        let mut t = T0 + 1;
        // Reports, repeated reports that change their outcome, a pause and a resume (which
        // starts counting afresh), then more reports: the counters always match a recount.
        for round in 0..3 {
            for (i, n) in nodes.iter().enumerate() {
                ch.report(&name, n, (i + round) % 3 == 0, t).unwrap();
                t += 1;
                let (counted, recounted) = recount(t);
                assert_eq!(counted, recounted, "round {round}, node {n}");
            }
            if round == 1 {
                ch.pause(&name, "ops", t).unwrap();
                ch.resume(&name, "ops", t + 1).unwrap();
                t += 2;
                assert_eq!(recount(t).0, vec![gate::RingHealth::default(); 3]);
            }
        }
        let (counted, _) = recount(t);
        assert_eq!(counted.iter().map(|h| h.reports).sum::<u32>(), 40);
        // Rings may change once the rollout is over; nodes move ring, counters follow.
        ch.abort(&name, "ops", t).unwrap();
        let mut moved = s.clone();
        moved.rings[0].basis_points = 5000;
        moved.rings[1].basis_points = 9000;
        ch.put(&name, &moved, "admin", t + 1).unwrap();
        t += 2;
        for (i, n) in nodes.iter().enumerate() {
            ch.report(&name, n, i % 2 == 1, t).unwrap();
            t += 1;
            let (counted, recounted) = recount(t);
            assert_eq!(counted, recounted, "after the rings changed, node {n}");
        }
    }

    #[test]
    fn concurrent_writers_agree_on_one_outcome() {
        let (_tmp, store, ids) = setup();
        let name: ChannelName = "prod".parse().unwrap();
        let ch = Channels::of(&store);
        ch.put(&name, &spec(Advance::Manual), "admin", T0).unwrap();
        ch.start(&name, ids[1], "ci", T0).unwrap();
        // A stale version writes nothing.
        let rec = store.channels.channel(&name).unwrap().unwrap();
        let stale = ChannelWrite {
            name: &name,
            expected_version: Some(rec.version - 1),
            spec: &rec.spec,
            rollouts: &[],
            events: &[],
            now: T0,
        };
        assert!(!store.channels.save(&stale).unwrap());
        // Eight writers pause at once: one succeeds, the others are told it is paused.
        let results: Vec<Result<(), String>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|i| {
                    let store = store.clone();
                    let name = name.clone();
                    scope.spawn(move || {
                        let ch = Channels::of(&store);
                        ch.pause(&name, &format!("op{i}"), T0 + 1).map(|_| ()).map_err(|e| e.to_string())
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{results:?}");
        for r in results.iter().filter_map(|r| r.as_ref().err()) {
            assert_eq!(r, "the rollout is already paused");
        }
        let h = store.channels.history(&name).unwrap();
        assert_eq!(h.iter().filter(|e| e.action == "rollout.paused").count(), 1);
    }
}
