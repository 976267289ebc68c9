//! `TakedownStore`: takedowns by path and by content, their log, undo, probes, and purges
//! refused while the bytes are still served elsewhere.

use super::Fixture;
use super::snapshots::{commit_gapped, file, name, path, upsert};
use crate::domain::Digest;
use crate::takedown::{Action, Added, Hit, State, Status, Takedown, Target, Undone};

fn added(a: Added) -> Takedown {
    match a {
        Added::Added(t) => t,
        other => panic!("expected a new takedown, got {other:?}"),
    }
}

fn actions(t: &Takedown) -> Vec<(Action, String, i64)> {
    t.log.iter().map(|e| (e.action, e.actor.clone(), e.at.timestamp())).collect()
}

pub(crate) fn a_path_takedown_hides_until_undone_and_is_logged(f: &Fixture) {
    let t = &*f.takedowns;
    let deb = name("deb");
    let snap = commit_gapped(&*f.catalog, &deb, vec![upsert("pool/a.deb", file(1)), upsert("pool/b.deb", file(2))]);
    let target = Target::Path { archive: deb.clone(), path: path("pool/a.deb") };
    let ghost = Target::Path { archive: name("ghost"), path: path("pool/a.deb") };
    assert!(matches!(t.add(&ghost, Status::Gone, "r", &[], "ops", 100).unwrap(), Added::NoArchive));
    assert!(!t.any_active().unwrap());
    let made = added(t.add(&target, Status::Legal, "court order 7", &[], "ops", 100).unwrap());
    assert_eq!((made.archive.as_ref(), made.path.as_ref(), made.sha256), (Some(&deb), Some(&path("pool/a.deb")), None));
    assert_eq!((made.status, made.reason.as_str(), made.state), (Status::Legal, "court order 7", State::Active));
    assert_eq!(actions(&made), [(Action::Takedown, "ops".to_owned(), 100)]);
    assert!(
        matches!(t.add(&target, Status::Gone, "again", &[], "ops", 110).unwrap(), Added::Exists(id) if id == made.id)
    );
    assert!(t.any_active().unwrap());

    let hit = t.hit(snap.key.archive_id, &["pool/a.deb"], &Digest::of(b"other")).unwrap();
    assert_eq!(hit, Some(Hit { id: made.id, status: Status::Legal, reason: "court order 7".into() }));
    assert_eq!(
        t.hit(snap.key.archive_id, &["pool/x", "pool/a.deb"], &Digest::of(b"other")).unwrap().map(|h| h.id),
        Some(made.id),
        "the second path"
    );
    assert_eq!(t.hit(snap.key.archive_id, &["pool/b.deb"], &Digest::of(&[2])).unwrap(), None);

    let undone = match t.undo(made.id, "lead", 200).unwrap() {
        Undone::Undone(u) => u,
        other => panic!("expected an undo, got {other:?}"),
    };
    assert_eq!(undone.state, State::Undone);
    assert_eq!(actions(&undone), [(Action::Takedown, "ops".to_owned(), 100), (Action::Undo, "lead".to_owned(), 200)]);
    assert!(matches!(t.undo(made.id, "lead", 210).unwrap(), Undone::AlreadyUndone));
    assert!(matches!(t.undo(made.id + 100, "lead", 210).unwrap(), Undone::NoSuch));
    assert_eq!(t.hit(snap.key.archive_id, &["pool/a.deb"], &Digest::of(&[1])).unwrap(), None);
    assert!(!t.any_active().unwrap());
    // Taken down again: a new takedown, the old one stays in the list as it was.
    let again = added(t.add(&target, Status::Gone, "again", &[], "ops", 300).unwrap());
    let listed: Vec<(i64, State)> = t.list().unwrap().iter().map(|t| (t.id, t.state)).collect();
    assert_eq!(listed, [(made.id, State::Undone), (again.id, State::Active)]);
}

pub(crate) fn a_content_takedown_hides_everywhere_and_path_takedowns_come_first(f: &Fixture) {
    let t = &*f.takedowns;
    let one = commit_gapped(&*f.catalog, &name("one"), vec![upsert("x", file(1))]);
    let two = commit_gapped(&*f.catalog, &name("two"), vec![upsert("y", file(1))]);
    let by_content = added(t.add(&Target::Sha256(Digest::of(&[1])), Status::Gone, "malware", &[], "sec", 100).unwrap());
    assert_eq!((by_content.archive, by_content.path, by_content.sha256), (None, None, Some(Digest::of(&[1]))));
    for (archive_id, p) in [(one.key.archive_id, "x"), (two.key.archive_id, "y")] {
        assert_eq!(t.hit(archive_id, &[p], &Digest::of(&[1])).unwrap().map(|h| h.id), Some(by_content.id));
    }
    let by_path = added(
        t.add(&Target::Path { archive: name("one"), path: path("x") }, Status::Legal, "dmca", &[], "ops", 110).unwrap(),
    );
    assert_eq!(t.hit(one.key.archive_id, &["x"], &Digest::of(&[1])).unwrap().map(|h| h.id), Some(by_path.id));
}

pub(crate) fn a_purge_is_refused_while_the_bytes_are_served_elsewhere(f: &Fixture) {
    let t = &*f.takedowns;
    let deb = name("deb");
    commit_gapped(&*f.catalog, &deb, vec![upsert("a", file(1)), upsert("copy-of-a", file(1))]);
    let bytes = Digest::of(&[1]);
    let a = Target::Path { archive: deb.clone(), path: path("a") };
    match t.add(&a, Status::Gone, "r", &[bytes], "ops", 100).unwrap() {
        Added::StillServed { digest, paths } => assert_eq!((digest, paths), (bytes, vec!["deb/copy-of-a".to_owned()])),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(t.list().unwrap().is_empty(), "a refused purge records nothing, not even the takedown");
    assert!(t.purged().unwrap().is_empty());
    // Hidden everywhere by content, the bytes may go.
    let gone = added(t.add(&Target::Sha256(bytes), Status::Gone, "r", &[bytes], "ops", 200).unwrap());
    assert_eq!(gone.state, State::Purged);
    assert_eq!(actions(&gone), [(Action::Takedown, "ops".to_owned(), 200), (Action::Purge, "ops".to_owned(), 200)]);
    assert_eq!(t.purged().unwrap(), [(bytes, gone.id)]);
    assert!(matches!(t.undo(gone.id, "ops", 300).unwrap(), Undone::Purged));
    // A path takedown over purged bytes cannot be undone either: they are gone.
    let over = added(t.add(&a, Status::Gone, "r", &[], "ops", 400).unwrap());
    assert!(matches!(t.undo(over.id, "ops", 500).unwrap(), Undone::Purged));
}

pub(crate) fn contents_lists_what_a_path_ever_held(f: &Fixture) {
    let t = &*f.takedowns;
    let deb = name("deb");
    assert_eq!(t.contents(&deb, &path("f")).unwrap(), None, "no such archive");
    commit_gapped(&*f.catalog, &deb, vec![upsert("f", file(1))]);
    commit_gapped(&*f.catalog, &deb, vec![upsert("f", file(2))]);
    commit_gapped(&*f.catalog, &deb, vec![upsert("f", file(1))]);
    let mut held = t.contents(&deb, &path("f")).unwrap().unwrap();
    held.sort();
    let mut expected = vec![Digest::of(&[1]), Digest::of(&[2])];
    expected.sort();
    assert_eq!(held, expected);
    assert_eq!(t.contents(&deb, &path("never")).unwrap(), Some(vec![]));
}
