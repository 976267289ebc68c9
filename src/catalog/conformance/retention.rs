//! `RetentionStore`: policies, pins (explicit and from rollout channels), and deleting a
//! snapshot: what must stay, what a deletion reclaims, and what it leaves behind.

use super::Fixture;
use super::snapshots::{commit_gapped, file, name, upsert};
use crate::domain::{ChannelName, Digest, SnapshotId};
use crate::packages::store::IndexChanges;
use crate::retention::{Deletion, Policy, Reclaim};
use crate::rollout::{ChannelWrite, RingState, Rollout, Status};

/// Four snapshots of `deb`: `a` is file(1), file(2) (held by the second alone), file(3),
/// file(3) again with `b` = file(4) added.
fn four(f: &Fixture) -> [crate::catalog::Snapshot; 4] {
    let deb = name("deb");
    [
        commit_gapped(&*f.catalog, &deb, vec![upsert("a", file(1))]),
        commit_gapped(&*f.catalog, &deb, vec![upsert("a", file(2))]),
        commit_gapped(&*f.catalog, &deb, vec![upsert("a", file(3))]),
        commit_gapped(&*f.catalog, &deb, vec![upsert("b", file(4))]),
    ]
}

/// Marks snapshots 1..=upto as read by the package index (deletion waits for it).
fn index_upto(f: &Fixture, archive_id: i64, upto: u64) {
    let done = f.packages.index_progress(&name("deb")).unwrap().unwrap().indexed_seq;
    for seq in done + 1..=upto {
        assert!(f.packages.apply_index(archive_id, seq, &mut IndexChanges::default()).unwrap());
    }
}

pub(crate) fn policies_are_set_read_and_removed(f: &Fixture) {
    let r = &*f.retention;
    let deb = name("deb");
    let policy = Policy { keep_last: Some(3), daily: Some(7), ..Policy::default() };
    assert!(!r.set_policy(&deb, Some(&policy), "ops", 100).unwrap(), "no such archive");
    commit_gapped(&*f.catalog, &deb, vec![upsert("a", file(1))]);
    assert_eq!(r.policy(&deb).unwrap(), None);
    assert!(!r.under_retention(&deb).unwrap());
    assert!(r.set_policy(&deb, Some(&policy), "ops", 100).unwrap());
    assert_eq!(r.policy(&deb).unwrap(), Some(policy));
    assert!(r.under_retention(&deb).unwrap());
    assert!(r.set_policy(&deb, None, "ops", 200).unwrap());
    assert_eq!(r.policy(&deb).unwrap(), None);
    assert!(!r.under_retention(&deb).unwrap());
}

pub(crate) fn pins_come_from_operators_and_from_rollout_channels(f: &Fixture) {
    let r = &*f.retention;
    let [s1, s2, s3, s4] = four(f);
    let deb = name("deb");
    let id = |s: &crate::catalog::Snapshot| s.id;
    assert!(!r.pin(&name("ghost"), s1.id, "why", "ops", 1).unwrap());
    assert!(r.pin(&deb, s2.id, "audit 42", "ops", 1).unwrap());
    // A channel whose previous rollout targeted s1 and whose current one targets s4, its
    // second ring not yet advanced from s3.
    let spec = super::channels::spec("deb");
    let rollout = |target: SnapshotId, rings: Vec<RingState>, status| Rollout {
        id: 0,
        requested: target,
        target,
        started_at: 1,
        status,
        ended_at: None,
        resumed_at: 1,
        rings,
    };
    let channel: ChannelName = "prod".parse().unwrap();
    let save = |version, rollouts: &[Rollout]| {
        f.channels
            .save(&ChannelWrite {
                name: &channel,
                expected_version: version,
                spec: &spec,
                rollouts,
                events: &[],
                now: 1,
            })
            .unwrap()
    };
    let done = vec![RingState { from: Some(id(&s1)), started_at: Some(1) }; 2];
    assert!(save(None, &[rollout(id(&s1), done, Status::Completed)]));
    let current = vec![
        RingState { from: Some(id(&s3)), started_at: Some(2) },
        RingState { from: Some(id(&s3)), started_at: None },
    ];
    assert!(save(Some(1), &[rollout(id(&s4), current, Status::Running)]));
    let pins: Vec<(SnapshotId, String)> = r.pins(&deb).unwrap().into_iter().map(|p| (p.id, p.reason)).collect();
    assert_eq!(
        pins,
        [
            (s2.id, "pinned: audit 42".to_owned()),
            (s4.id, "channel prod: current rollout".to_owned()),
            (s1.id, "channel prod: previous rollout".to_owned()),
            (s3.id, "channel prod: served by a ring not yet advanced".to_owned()),
        ]
    );
    assert!(r.unpin(&deb, s2.id).unwrap());
    assert!(!r.unpin(&deb, s2.id).unwrap(), "not pinned any more");
    assert_eq!(r.pins(&deb).unwrap().len(), 3);
}

pub(crate) fn a_deletion_keeps_what_must_stay_and_reclaims_what_only_it_held(f: &Fixture) {
    let r = &*f.retention;
    let deb = name("deb");
    let [s1, s2, s3, s4] = four(f);
    let kept = |s: &crate::catalog::Snapshot| match r.delete_snapshot(&deb, s.id, "ops", 500).unwrap() {
        Deletion::Kept(why) => why,
        other => panic!("expected {} kept, got {other:?}", s.id),
    };
    assert_eq!(kept(&s2), "the package index has not read it and the snapshot after it yet");
    index_upto(f, s1.key.archive_id, 4);
    assert_eq!(kept(&s1), "it is the first snapshot");
    assert_eq!(kept(&s4), "it is the latest snapshot");
    assert!(r.pin(&deb, s2.id, "audit 42", "ops", 1).unwrap());
    assert_eq!(kept(&s2), "pinned: audit 42");
    assert!(r.unpin(&deb, s2.id).unwrap());

    // The second alone held a = file(2), 3 bytes.
    let expected = Reclaim { snapshots: 1, entry_rows: 1, package_rows: 0, blobs: 1, bytes: 3 };
    assert_eq!(r.preview_deletion(&deb, &[s2.id]).unwrap(), expected);
    assert_eq!(r.delete_snapshot(&deb, s2.id, "ops", 500).unwrap(), Deletion::Deleted(expected));
    assert_eq!(r.delete_snapshot(&deb, s2.id, "ops", 600).unwrap(), Deletion::AlreadyGone);
    assert!(f.gc.gc_is_candidate(&Digest::of(&[2])).unwrap(), "its blob awaits collection");
    assert!(!f.gc.gc_referenced(&Digest::of(&[2])).unwrap());
    let tombstones: Vec<(SnapshotId, i64)> =
        r.deleted_snapshots(&deb).unwrap().iter().map(|d| (d.id, d.deleted_at)).collect();
    assert_eq!(tombstones, [(s2.id, 500)]);
    assert!(r.under_retention(&deb).unwrap(), "deleted snapshots put it under retention");
    let view = f.catalog.read_view(&deb, s2.id).unwrap();
    assert_eq!(view.deleted.map(|d| (d.id, d.deleted_at)), Some((s2.id, 500)));
    // The others still read as they were.
    let a =
        |s: &crate::catalog::Snapshot| f.catalog.entry(s.key, &super::snapshots::path("a")).unwrap().unwrap().content;
    assert_eq!((a(&s1), a(&s3), a(&s4)), (file(1), file(3), file(3)));
    let ids: Vec<SnapshotId> =
        f.catalog.snapshots(&deb, &crate::catalog::SnapshotQuery::default()).unwrap().iter().map(|s| s.id).collect();
    assert_eq!(ids, [s1.id, s3.id, s4.id]);
    // Deleting the third now spans from the first: file(3) is still the fourth's.
    let expected = Reclaim { snapshots: 1, entry_rows: 0, package_rows: 0, blobs: 0, bytes: 0 };
    assert_eq!(r.preview_deletion(&deb, &[s3.id]).unwrap(), expected);
    assert_eq!(r.delete_snapshot(&deb, s3.id, "ops", 700).unwrap(), Deletion::Deleted(expected));
    assert_eq!(a(&s4), file(3), "the row it started lives on in the fourth");
    assert_eq!(
        f.catalog.entry(s4.key, &super::snapshots::path("a")).unwrap().unwrap().since,
        s3.id,
        "since: the deleted snapshot's ID"
    );
}
