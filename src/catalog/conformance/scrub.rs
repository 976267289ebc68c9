//! `ScrubCatalog`: the cursor, selections of referenced digests, verified times, and
//! quarantine with the damage it records.

use super::Fixture;
use super::snapshots::{commit_gapped, file, name, upsert};
use crate::domain::Digest;
use crate::scrub::catalog::{ProblemKind, Selection};

fn prefix(d: &Digest) -> u64 {
    u64::from_be_bytes(d.as_bytes()[..8].try_into().unwrap())
}

pub(crate) fn the_cursor_starts_at_zero_and_is_kept(f: &Fixture) {
    let s = &*f.scrub;
    assert_eq!(s.scrub_cursor().unwrap(), (0, None));
    s.scrub_set_cursor(u64::MAX - 5, 100).unwrap();
    assert_eq!(s.scrub_cursor().unwrap(), (u64::MAX - 5, Some(100)));
    s.scrub_set_cursor(7, 200).unwrap();
    assert_eq!(s.scrub_cursor().unwrap(), (7, Some(200)));
}

pub(crate) fn selections_cut_the_digest_space_and_skip_what_was_verified(f: &Fixture) {
    let s = &*f.scrub;
    let changes = (0..6u8).map(|i| upsert(&format!("f{i}"), file(i))).collect();
    commit_gapped(&*f.catalog, &name("deb"), changes);
    let mut all: Vec<Digest> = (0..6u8).map(|i| Digest::of(&[i])).collect();
    all.sort();
    let select = |from, to, after, not_since, limit| {
        s.scrub_referenced(Selection { from, to, after, not_since }, limit).unwrap()
    };
    assert_eq!(select(0, None, None, None, 100), all);
    assert_eq!(select(0, None, None, None, 2), all[..2]);
    assert_eq!(select(0, None, Some(&all[1]), None, 100), all[2..], "after the cursor");
    assert_eq!(select(prefix(&all[2]), Some(prefix(&all[4])), None, None, 100), all[2..4], "a slice by prefix");
    s.scrub_mark_verified(&all[..3], 100).unwrap();
    assert_eq!(select(0, None, None, Some(100), 100), all[3..], "verified at or after 100");
    assert_eq!(select(0, None, None, Some(101), 100), all);
    s.scrub_mark_verified(&all[..1], 300).unwrap();
    assert_eq!(select(0, None, None, Some(200), 100), all[1..]);
}

pub(crate) fn quarantine_records_the_damage_until_lifted(f: &Fixture) {
    let s = &*f.scrub;
    let deb = name("deb");
    let first = commit_gapped(&*f.catalog, &deb, vec![upsert("pool/a", file(1)), upsert("pool/b", file(2))]);
    let second = commit_gapped(&*f.catalog, &deb, vec![upsert("pool/a", file(3))]);
    let (bad, loose) = (Digest::of(&[1]), Digest::of(b"loose"));
    let mut calls = 0;
    assert!(
        !s.scrub_quarantine(&loose, ProblemKind::Missing, 50, &mut || {
            calls += 1;
            Ok("nowhere".into())
        })
        .unwrap()
    );
    assert_eq!(calls, 0, "nothing referenced: nothing set aside");
    assert!(s.scrub_is_referenced(&bad).unwrap());
    assert!(s.scrub_quarantine(&bad, ProblemKind::Corrupt, 100, &mut || Ok("moved to quarantine/x".into())).unwrap());
    let q = s.scrub_find(&bad).unwrap().unwrap();
    assert_eq!((q.sha256, q.kind, q.found_at, q.size), (bad, ProblemKind::Corrupt, 100, 2));
    assert_eq!((q.detail.as_str(), q.refetch), ("moved to quarantine/x", None));
    assert_eq!(s.scrub_quarantined().unwrap().len(), 1);
    let damage: Vec<_> =
        s.scrub_damage(&deb).unwrap().into_iter().map(|d| (d.path, d.sha256, d.first_seq, d.last_seq)).collect();
    assert_eq!(damage, [("pool/a".to_owned(), bad, first.key.seq, Some(second.key.seq))], "the first snapshot only");
    let sources = s.scrub_sources(&bad).unwrap();
    assert_eq!(sources.len(), 1);
    assert_eq!((sources[0].archive.as_str(), sources[0].path.as_str()), ("deb", "pool/a"));
    assert_eq!(sources[0].source, first.source);
    s.scrub_note_refetch(&bad, "upstream 404").unwrap();
    assert_eq!(s.scrub_find(&bad).unwrap().unwrap().refetch.as_deref(), Some("upstream 404"));
    s.scrub_lift(&bad).unwrap();
    assert_eq!(s.scrub_find(&bad).unwrap(), None);
    assert!(s.scrub_damage(&deb).unwrap().is_empty());
}
