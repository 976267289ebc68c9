//! `GcCatalog`: candidates, their order, and the verdict a collection gives each.

use super::Fixture;
use super::snapshots::{commit_gapped, file, name, upsert};
use crate::domain::Digest;
use crate::gc::Verdict;

pub(crate) fn only_unreferenced_blobs_become_candidates(f: &Fixture) {
    let g = &*f.gc;
    commit_gapped(&*f.catalog, &name("deb"), vec![upsert("x", file(1))]);
    let (referenced, loose) = (Digest::of(&[1]), Digest::of(b"loose"));
    assert!(g.gc_referenced(&referenced).unwrap());
    assert!(!g.gc_referenced(&loose).unwrap());
    assert!(!g.gc_enqueue_if_unreferenced(&referenced, 100).unwrap(), "a snapshot names it");
    assert!(!g.gc_is_candidate(&referenced).unwrap());
    assert!(g.gc_enqueue_if_unreferenced(&loose, 100).unwrap());
    assert!(!g.gc_enqueue_if_unreferenced(&loose, 200).unwrap(), "known already");
    assert!(g.gc_is_candidate(&loose).unwrap());
    assert_eq!(g.gc_due(1000, None, 10).unwrap(), [(100, loose)], "since its first time");
    // An upload makes a blob a candidate too, and keeps it for a while.
    let uploaded = Digest::of(b"uploaded");
    f.auth.grant_upload(7, &uploaded, 500).unwrap();
    assert!(g.gc_is_candidate(&uploaded).unwrap());
    assert_eq!(g.gc_check(&uploaded, 400).unwrap(), Verdict::RecentlyUsed, "uploaded after 400");
    assert_eq!(g.gc_check(&uploaded, 500).unwrap(), Verdict::Collected);
    assert_eq!(g.gc_check(&referenced, 0).unwrap(), Verdict::Referenced);
}

pub(crate) fn due_candidates_come_in_order_after_the_cursor(f: &Fixture) {
    let g = &*f.gc;
    let mut all: Vec<(i64, Digest)> = (0..6u8).map(|i| (100 + i64::from(i % 3), Digest::of(&[i, 9]))).collect();
    for (since, d) in &all {
        assert!(g.gc_enqueue_if_unreferenced(d, *since).unwrap());
    }
    all.sort();
    assert_eq!(g.gc_due(101, None, 100).unwrap(), all[..4], "due: unreferenced since at or before 101");
    assert_eq!(g.gc_due(1000, None, 2).unwrap(), all[..2]);
    assert_eq!(g.gc_due(1000, Some(all[1]), 3).unwrap(), all[2..5], "after the cursor");
    assert!(g.gc_due(1000, Some(all[5]), 3).unwrap().is_empty());
}

pub(crate) fn a_collection_gives_each_candidate_its_verdict(f: &Fixture) {
    let g = &*f.gc;
    let (free, busy, named, absent) = (Digest::of(b"free"), Digest::of(b"busy"), Digest::of(&[1]), Digest::of(b"no"));
    for d in [&free, &busy, &named] {
        assert!(g.gc_enqueue_if_unreferenced(d, 100).unwrap());
    }
    // `named` gets referenced after it became a candidate.
    commit_gapped(&*f.catalog, &name("deb"), vec![upsert("x", file(1))]);
    let mut retired = Vec::new();
    let verdicts = g
        .gc_collect(&[free, busy, named, absent], 200, &mut |d| {
            retired.push(*d);
            Ok(*d != busy) // the blob store saw `busy` used lately
        })
        .unwrap();
    assert_eq!(verdicts, [Verdict::Collected, Verdict::RecentlyUsed, Verdict::Referenced, Verdict::Gone]);
    assert_eq!(retired, [free, busy], "only free-looking blobs are set aside");
    assert!(!g.gc_is_candidate(&free).unwrap(), "collected: row gone");
    assert!(g.gc_is_candidate(&busy).unwrap(), "recently used: asked again next run");
    assert!(!g.gc_is_candidate(&named).unwrap(), "referenced: no longer a candidate");
    // Not due yet: gone for this run.
    assert!(g.gc_enqueue_if_unreferenced(&absent, 300).unwrap());
    assert_eq!(g.gc_collect(&[absent], 200, &mut |_| Ok(true)).unwrap(), [Verdict::Gone]);
}

/// While a collection sets a batch's bytes aside, no commit can come to reference them: the
/// commit waits until the collection's transaction ends (then the blob store's claim and
/// the publisher's re-upload take over, see `gc`).
pub(crate) fn a_commit_waits_while_a_collection_sets_bytes_aside(f: &Fixture) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let blob = Digest::of(&[4]);
    assert!(f.gc.gc_enqueue_if_unreferenced(&blob, 100).unwrap());
    let committed = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let verdicts =
            f.gc.gc_collect(&[blob], 200, &mut |_| {
                scope.spawn(|| {
                    commit_gapped(&*f.catalog, &name("deb"), vec![upsert("x", file(4))]);
                    committed.store(true, Ordering::SeqCst);
                });
                std::thread::sleep(std::time::Duration::from_millis(300));
                assert!(!committed.load(Ordering::SeqCst), "a commit got in while the bytes were set aside");
                Ok(true)
            })
            .unwrap();
        assert_eq!(verdicts, [Verdict::Collected]);
    });
    assert!(committed.load(Ordering::SeqCst), "the commit went ahead afterwards");
}
