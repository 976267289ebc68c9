//! `Catalog` itself: floors, stamps, conflicts, atomicity, the seal, listings and concurrent
//! committers.

use crate::catalog::*;
use crate::manifest::Content;

pub(super) fn name(s: &str) -> ArchiveName {
    s.parse().unwrap()
}

pub(super) fn path(s: &str) -> RelPath {
    RelPath::new(s).unwrap()
}

pub(super) fn file(byte: u8) -> Content {
    Content::File { size: u64::from(byte) + 1, sha256: Digest::of(&[byte]) }
}

pub(super) fn upsert(p: &str, content: Content) -> Change {
    Change::Upsert(ManifestEntry { path: path(p), content })
}

pub(super) fn plan(base_seq: u64, files: u64) -> CommitPlan {
    CommitPlan {
        base_seq,
        digest: Digest::of(&base_seq.to_le_bytes()),
        files,
        bytes: 7,
        added: 1,
        changed: 2,
        removed: 3,
        source: serde_json::json!({"method": "conformance", "base": base_seq}),
    }
}

pub(super) fn latest_seq(c: &dyn Catalog, archive: &ArchiveName) -> u64 {
    c.latest(archive).unwrap().map_or(0, |s| s.key.seq)
}

/// Commits on top of the archive's latest snapshot, first sealing 10 s past it so that IDs
/// between snapshots exist without waiting for the clock.
pub(super) fn commit_gapped(c: &dyn Catalog, archive: &ArchiveName, changes: Vec<Change>) -> Snapshot {
    if let Some(latest) = c.latest(archive).unwrap() {
        c.seal(latest.id.unix() + 10).unwrap();
    }
    c.commit(archive, &plan(latest_seq(c, archive), changes.len() as u64), &changes).unwrap()
}

pub(super) fn id(unix: i64) -> SnapshotId {
    SnapshotId::from_unix(unix).unwrap()
}

fn ids(snapshots: &[Snapshot]) -> Vec<SnapshotId> {
    snapshots.iter().map(|s| s.id).collect()
}

pub(crate) fn an_empty_catalog_knows_nothing(fixture: &super::Fixture) {
    let c = &*fixture.catalog;
    c.ping().unwrap();
    assert!(c.archives().unwrap().is_empty());
    let a = name("deb");
    assert!(c.archive(&a).unwrap().is_none());
    assert!(c.latest(&a).unwrap().is_none());
    assert!(c.resolve(&a, SnapshotId::now()).unwrap().is_none());
    assert!(c.snapshots(&a, &SnapshotQuery::default()).unwrap().is_empty());
    let view = c.read_view(&a, SnapshotId::now()).unwrap();
    assert!(!view.archive_exists && view.latest.is_none() && view.floor.is_none() && view.first.is_none());
    let mut visited = 0;
    c.for_each_live(&a, 0, &mut |_| {
        visited += 1;
        Ok(())
    })
    .unwrap();
    assert_eq!(visited, 0);
    let stats = c.stats().unwrap();
    assert_eq!((stats.archives, stats.snapshots, stats.entry_rows), (0, 0, 0));
}

pub(crate) fn a_commit_is_visible_whole_with_its_stamp_and_counts(fixture: &super::Fixture) {
    let c = &*fixture.catalog;
    let a = name("deb");
    let before = SnapshotId::now();
    let s = c.commit(&a, &plan(0, 2), &vec![upsert("dists", Content::Dir), upsert("dists/Release", file(1))]).unwrap();
    let after = SnapshotId::now();
    assert!(before <= s.id && s.id <= after, "stamped at commit: {} not in {before}..={after}", s.id);
    assert_eq!((s.key.seq, s.archive.as_str()), (1, "deb"));
    assert_eq!((s.files, s.bytes, s.added, s.changed, s.removed), (2, 7, 1, 2, 3));
    assert_eq!(s.digest, Digest::of(&0u64.to_le_bytes()));
    assert_eq!(s.source, serde_json::json!({"method": "conformance", "base": 0}));

    let stored = c.latest(&a).unwrap().unwrap();
    assert_eq!(
        (stored.key, stored.id, stored.digest, stored.committed_at_ms),
        (s.key, s.id, s.digest, s.committed_at_ms)
    );
    assert_eq!(stored.source, s.source);
    let summary = c.archive(&a).unwrap().unwrap();
    assert_eq!((summary.snapshots, summary.first, summary.latest), (1, Some(s.id), Some(s.id)));
    let entry = c.entry(s.key, &path("dists/Release")).unwrap().unwrap();
    assert_eq!((entry.content, entry.since), (file(1), s.id));
    assert_eq!(c.stats().unwrap().snapshots, 1);
}

pub(crate) fn ids_resolve_to_the_latest_snapshot_at_or_before_them(fixture: &super::Fixture) {
    let c = &*fixture.catalog;
    let a = name("deb");
    let s1 = commit_gapped(c, &a, vec![upsert("f", file(1))]);
    let s2 = commit_gapped(c, &a, vec![upsert("f", file(2))]);
    assert!(s2.id.unix() >= s1.id.unix() + 11, "the seal left a gap");
    let floor = |unix: i64| c.resolve(&a, id(unix)).unwrap().map(|s| s.id);
    assert_eq!(floor(s1.id.unix() - 1), None, "before the first");
    assert_eq!(floor(s1.id.unix()), Some(s1.id));
    assert_eq!(floor(s2.id.unix() - 1), Some(s1.id), "in between: the one before");
    assert_eq!(floor(s2.id.unix()), Some(s2.id));
    assert_eq!(floor(s2.id.unix() + 1_000_000), Some(s2.id), "past the latest");

    let view = c.read_view(&a, id(s2.id.unix() - 1)).unwrap();
    assert!(view.archive_exists);
    assert_eq!((view.floor.map(|s| s.id), view.latest.map(|s| s.id)), (Some(s1.id), Some(s2.id)));
    let before_first = c.read_view(&a, id(s1.id.unix() - 1)).unwrap();
    assert_eq!((before_first.floor.map(|s| s.id), before_first.first), (None, Some(s1.id)), "what the first is");
    assert!(view.sealed_until >= s1.id.unix() + 10);
    assert_eq!(c.neighbours(s1.key).unwrap(), (None, Some(s2.id)));
    assert_eq!(c.neighbours(s2.key).unwrap(), (Some(s1.id), None));
}

pub(crate) fn a_stale_base_is_a_conflict_and_writes_nothing(fixture: &super::Fixture) {
    let c = &*fixture.catalog;
    let a = name("deb");
    commit_gapped(c, &a, vec![upsert("f", file(1))]);
    match c.commit(&a, &plan(0, 1), &vec![upsert("g", file(2))]) {
        Err(CatalogError::Conflict { archive, expected: 0, actual: 1 }) => assert_eq!(archive, a),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(c.snapshots(&a, &SnapshotQuery::default()).unwrap().len(), 1);
    let latest = c.latest(&a).unwrap().unwrap();
    assert!(c.entry(latest.key, &path("g")).unwrap().is_none());
    // A base from the future is as stale.
    assert!(matches!(c.commit(&a, &plan(5, 1), &vec![]), Err(CatalogError::Conflict { expected: 5, actual: 1, .. })));
}

/// A change source that fails half-way, as a publish does when its staged file turns bad.
struct FailingHalfway;

impl ChangeSource for FailingHalfway {
    fn for_each(&self, f: &mut dyn FnMut(Change) -> Result<()>) -> Result<()> {
        f(upsert("written-first", file(3)))?;
        Err(CatalogError::Corrupt("the source failed".into()))
    }
}

pub(crate) fn a_failing_change_leaves_no_part_of_the_commit(fixture: &super::Fixture) {
    let c = &*fixture.catalog;
    let a = name("deb");
    let s1 = commit_gapped(c, &a, vec![upsert("f", file(1))]);
    let err = c.commit(&a, &plan(1, 1), &FailingHalfway).unwrap_err();
    assert_eq!(err.to_string(), "metadata is inconsistent: the source failed");
    let err = c.commit(&a, &plan(1, 1), &vec![upsert("g", file(2)), Change::Remove(path("never-there"))]).unwrap_err();
    assert!(matches!(err, CatalogError::Corrupt(_)), "{err:?}");
    // Nothing of either: no snapshot, no entry, no reference to their blobs.
    assert_eq!(ids(&c.snapshots(&a, &SnapshotQuery::default()).unwrap()), [s1.id]);
    let mut seen = Vec::new();
    c.for_each_live(&a, 1, &mut |e| {
        seen.push(e.path.as_str().to_owned());
        Ok(())
    })
    .unwrap();
    assert_eq!(seen, ["f"]);
    let mut blobs = Vec::new();
    c.referenced_blobs(&mut |d, size| {
        blobs.push((d, size));
        Ok(())
    })
    .unwrap();
    assert_eq!(blobs, [(Digest::of(&[1]), 2)]);
    // And an empty archive that failed its first commit does not appear at all.
    assert!(c.commit(&name("other"), &plan(0, 1), &FailingHalfway).is_err());
    assert!(c.archive(&name("other")).unwrap().is_none_or(|s| s.snapshots == 0));
}

pub(crate) fn ids_strictly_increase_within_a_second_and_above_the_seal(fixture: &super::Fixture) {
    let c = &*fixture.catalog;
    let a = name("deb");
    let mut previous: Option<SnapshotId> = None;
    for i in 0..5u8 {
        let s = c.commit(&a, &plan(latest_seq(c, &a), 1), &vec![upsert("f", file(i))]).unwrap();
        if let Some(p) = previous {
            assert!(s.id > p, "{} after {p}", s.id);
        }
        previous = Some(s.id);
    }
    let sealed = c.seal(previous.unwrap().unix() + 3600).unwrap();
    let s = c.commit(&a, &plan(5, 1), &vec![upsert("f", file(9))]).unwrap();
    assert_eq!(s.id.unix(), sealed + 1, "stamped just above the seal");
    // Another archive shares the seal but not the sequence.
    let b = c.commit(&name("other"), &plan(0, 1), &vec![upsert("f", file(1))]).unwrap();
    assert_eq!(b.key.seq, 1);
    assert!(b.id.unix() > sealed);
}

pub(crate) fn the_seal_never_moves_backwards(fixture: &super::Fixture) {
    let c = &*fixture.catalog;
    let now = SnapshotId::now().unix();
    assert_eq!(c.seal(now).unwrap(), now);
    assert_eq!(c.seal(now - 100).unwrap(), now, "an older seal is ignored");
    assert_eq!(c.seal(now + 5).unwrap(), now + 5);
    assert_eq!(c.read_view(&name("deb"), SnapshotId::now()).unwrap().sealed_until, now + 5);
}

pub(crate) fn entries_children_and_by_digest_follow_the_snapshot(fixture: &super::Fixture) {
    let c = &*fixture.catalog;
    let a = name("deb");
    let s1 = commit_gapped(
        c,
        &a,
        vec![
            upsert("dists", Content::Dir),
            upsert("dists/Release", file(1)),
            upsert("dists/main", Content::Dir),
            upsert("dists/main/Packages", file(2)),
            upsert("dists/stable", Content::Symlink { target: "main".into() }),
        ],
    );
    let s2 = commit_gapped(c, &a, vec![upsert("dists/Release", file(3)), Change::Remove(path("dists/stable"))]);

    let names = |key, dir| -> Vec<String> {
        c.children(key, dir).unwrap().into_iter().map(|e| e.path.as_str().to_owned()).collect()
    };
    assert_eq!(names(s1.key, ""), ["dists"]);
    assert_eq!(names(s1.key, "dists"), ["dists/Release", "dists/main", "dists/stable"]);
    assert_eq!(names(s2.key, "dists"), ["dists/Release", "dists/main"]);
    assert_eq!(names(s2.key, "dists/main"), ["dists/main/Packages"]);

    let link = c.entry(s1.key, &path("dists/stable")).unwrap().unwrap();
    assert_eq!(link.content, Content::Symlink { target: "main".into() });
    assert!(c.entry(s2.key, &path("dists/stable")).unwrap().is_none());
    // `since` is when the content appeared at the path, not the snapshot asked about.
    let unchanged = c.entry(s2.key, &path("dists/main/Packages")).unwrap().unwrap();
    assert_eq!(unchanged.since, s1.id);
    assert_eq!(c.entry(s2.key, &path("dists/Release")).unwrap().unwrap().since, s2.id);

    let by_digest = |key, d: &Digest| c.child_by_digest(key, "dists", d).unwrap().map(|e| e.path.as_str().to_owned());
    assert_eq!(by_digest(s1.key, &Digest::of(&[1])).as_deref(), Some("dists/Release"));
    assert_eq!(by_digest(s2.key, &Digest::of(&[1])), None, "replaced in the second");
    assert_eq!(by_digest(s2.key, &Digest::of(&[2])), None, "not a direct child");

    let mut all = Vec::new();
    c.for_each_entry(s2.key, &mut |e| {
        all.push((e.path.as_str().to_owned(), e.since));
        Ok(())
    })
    .unwrap();
    let expected = [("dists", s1.id), ("dists/Release", s2.id), ("dists/main", s1.id), ("dists/main/Packages", s1.id)];
    assert_eq!(all, expected.map(|(p, s)| (p.to_owned(), s)));

    let read = c.read_file(&a, Some(id(s2.id.unix() - 1)), &path("dists/Release")).unwrap();
    assert_eq!(read.entry.map(|e| e.content), Some(file(1)), "the floor's entry");
    let read = c.read_file(&a, None, &path("dists/Release")).unwrap();
    assert_eq!(read.entry.map(|e| e.content), Some(file(3)), "the live path's entry");
}

pub(crate) fn the_live_manifest_streams_in_path_order_for_its_base_only(fixture: &super::Fixture) {
    let c = &*fixture.catalog;
    let a = name("deb");
    // Inserted out of order, and with names that sort differently by bytes and by locale.
    commit_gapped(
        c,
        &a,
        vec![
            upsert("b", file(1)),
            upsert("B", file(2)),
            upsert("a-b", file(3)),
            upsert("a", Content::Dir),
            upsert("a/z", file(4)),
        ],
    );
    let mut seen = Vec::new();
    c.for_each_live(&a, 1, &mut |e| {
        seen.push(e.path.as_str().to_owned());
        Ok(())
    })
    .unwrap();
    assert_eq!(seen, ["B", "a", "a-b", "a/z", "b"], "path byte order");
    let stale = c.for_each_live(&a, 0, &mut |_| Ok(()));
    assert!(matches!(stale, Err(CatalogError::Conflict { expected: 0, actual: 1, .. })), "{stale:?}");
}

pub(crate) fn snapshot_queries_filter_order_and_page(fixture: &super::Fixture) {
    let c = &*fixture.catalog;
    let a = name("deb");
    let all: Vec<Snapshot> = (0..5u8).map(|i| commit_gapped(c, &a, vec![upsert("f", file(i))])).collect();
    let all_ids = ids(&all);
    let q = |q: SnapshotQuery| ids(&c.snapshots(&a, &q).unwrap());
    assert_eq!(q(SnapshotQuery::default()), all_ids);
    assert_eq!(
        q(SnapshotQuery { descending: true, ..Default::default() }),
        all_ids.iter().rev().copied().collect::<Vec<_>>()
    );
    assert_eq!(
        q(SnapshotQuery { since: Some(all_ids[1]), until: Some(all_ids[3]), ..Default::default() }),
        all_ids[1..=3]
    );
    assert_eq!(q(SnapshotQuery { limit: 2, ..Default::default() }), all_ids[..2]);
    assert_eq!(q(SnapshotQuery { after: Some(all_ids[1]), limit: 2, ..Default::default() }), all_ids[2..4]);
    assert_eq!(
        q(SnapshotQuery { after: Some(all_ids[3]), descending: true, limit: 2, ..Default::default() }),
        [all_ids[2], all_ids[1]]
    );
    let summary = c.archives().unwrap();
    assert_eq!(summary.len(), 1);
    assert_eq!((summary[0].snapshots, summary[0].first, summary[0].latest), (5, Some(all_ids[0]), Some(all_ids[4])));
}

/// Thousands of changes (a backend may send them in batches), blobs shared by many paths,
/// and one path removed and added again within one commit.
pub(crate) fn a_large_commit_lands_whole_and_a_path_may_change_twice(fixture: &super::Fixture) {
    let c = &*fixture.catalog;
    let a = name("deb");
    let p = |i: usize| format!("d{}/f{i:05}", i % 10);
    let first: Vec<Change> = (0..2600).map(|i| upsert(&p(i), file((i % 200) as u8))).collect();
    commit_gapped(c, &a, first);
    let mut second: Vec<Change> = (0..1300).map(|i| upsert(&p(i), file((200 + i % 50) as u8))).collect();
    second.extend((1300..2500).map(|i| Change::Remove(path(&p(i)))));
    commit_gapped(c, &a, second);
    commit_gapped(c, &a, vec![Change::Remove(path(&p(0))), upsert(&p(0), file(7))]);
    let mut live = std::collections::BTreeMap::new();
    c.for_each_live(&a, 3, &mut |e| {
        live.insert(e.path.as_str().to_owned(), e.content.clone());
        Ok(())
    })
    .unwrap();
    assert_eq!(live.len(), 1400, "1,300 changed and 100 untouched");
    assert_eq!(live[&p(0)], file(7));
    assert_eq!(live[&p(1)], file(201));
    assert_eq!(live[&p(2599)], file((2599 % 200) as u8));
    assert_eq!(c.stats().unwrap().entry_rows, 2600 + 1300 + 1);
    let mut blobs = 0;
    c.referenced_blobs(&mut |_, _| {
        blobs += 1;
        Ok(())
    })
    .unwrap();
    assert_eq!(blobs, 250, "the first snapshot's 200 and the second's 50");
}

pub(crate) fn blobs_referenced_and_their_holders(fixture: &super::Fixture) {
    let c = &*fixture.catalog;
    commit_gapped(c, &name("one"), vec![upsert("x", file(1)), upsert("y", file(2))]);
    commit_gapped(c, &name("two"), vec![upsert("x", file(1))]);
    // Replaced later, still referenced by the first snapshot.
    commit_gapped(c, &name("two"), vec![upsert("x", file(3))]);
    let mut blobs = Vec::new();
    c.referenced_blobs(&mut |d, size| {
        blobs.push((d, size));
        Ok(())
    })
    .unwrap();
    blobs.sort();
    let mut expected = vec![(Digest::of(&[1]), 2), (Digest::of(&[2]), 3), (Digest::of(&[3]), 4)];
    expected.sort();
    assert_eq!(blobs, expected, "each distinct blob once");
    let holders = |b: u8| {
        let mut h: Vec<String> =
            c.blob_holders(&Digest::of(&[b])).unwrap().into_iter().map(|h| h.archive.to_string()).collect();
        h.sort();
        h
    };
    assert_eq!(holders(1), ["one", "two"]);
    assert_eq!(holders(2), ["one"]);
    assert!(holders(9).is_empty());
}

/// Several committers race on one archive, retrying on conflict as publishers do; another
/// archive is committed to at the same time, by a thread that advances the seal before each
/// of its commits; a reader takes read views all along. Every commit lands exactly once, in
/// sequence, with strictly increasing IDs; a commit after a seal stamps above it; and no
/// snapshot that a read view did not see yet is stamped at or below the seal it saw (what
/// makes answers up to the seal final).
pub(crate) fn concurrent_committers_all_land_with_increasing_ids(fixture: &super::Fixture) {
    let c = &*fixture.catalog;
    const THREADS: u8 = 4;
    const EACH: u8 = 8;
    let a = name("deb");
    let done = std::sync::atomic::AtomicBool::new(false);
    let mut views: Vec<(i64, u64)> = Vec::new();
    std::thread::scope(|scope| {
        let reader = scope.spawn(|| {
            let mut seen = Vec::new();
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let view = c.read_view(&a, SnapshotId::now()).unwrap();
                seen.push((view.sealed_until, view.latest.map_or(0, |l| l.key.seq)));
            }
            seen
        });
        let mut committers = Vec::new();
        for t in 0..THREADS {
            let a = a.clone();
            committers.push(scope.spawn(move || {
                for i in 0..EACH {
                    let change = vec![upsert(&format!("t{t}/f{i}"), file(t * EACH + i))];
                    loop {
                        match c.commit(&a, &plan(latest_seq(c, &a), 1), &change) {
                            Ok(_) => break,
                            Err(CatalogError::Conflict { .. }) => continue,
                            Err(e) => panic!("commit failed: {e}"),
                        }
                    }
                }
            }));
        }
        committers.push(scope.spawn(|| {
            let b = name("other");
            for i in 0..EACH {
                let sealed = c.seal(SnapshotId::now().unix() + 2 * i64::from(i)).unwrap();
                let s = c.commit(&b, &plan(u64::from(i), 1), &vec![upsert("f", file(i))]).unwrap();
                assert!(s.id.unix() > sealed, "{} stamped at or below the seal {sealed}", s.id);
            }
        }));
        for committer in committers {
            committer.join().unwrap();
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        views = reader.join().unwrap();
    });
    let snapshots = c.snapshots(&a, &SnapshotQuery::default()).unwrap();
    let total = u64::from(THREADS) * u64::from(EACH);
    assert_eq!(snapshots.iter().map(|s| s.key.seq).collect::<Vec<_>>(), (1..=total).collect::<Vec<_>>());
    assert!(snapshots.windows(2).all(|w| w[0].id < w[1].id), "IDs strictly increase: {:?}", ids(&snapshots));
    let mut live = 0;
    c.for_each_live(&a, total, &mut |_| {
        live += 1;
        Ok(())
    })
    .unwrap();
    assert_eq!(live, total, "every committer's file is in the latest manifest");
    assert_eq!(latest_seq(c, &name("other")), u64::from(EACH));
    assert!(!views.is_empty());
    for (sealed_until, seen_seq) in views {
        for later in snapshots.iter().filter(|s| s.key.seq > seen_seq) {
            assert!(
                later.id.unix() > sealed_until,
                "#{} ({}) is at or below a seal already read: {sealed_until}",
                later.key.seq,
                later.id
            );
        }
    }
}
