//! Applying retention: a 200-snapshot history under a daily + weekly policy keeps exactly
//! the expected IDs, deletes O(deleted) rows, leaves every kept snapshot intact (verify),
//! and then real apt installs from kept IDs and from IDs between snapshots by floor, while
//! the exact ID of a deleted snapshot answers 410 and never another snapshot's bytes.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use asof::catalog::SnapshotQuery;
use asof::domain::{ArchiveName, SnapshotId};
use asof::publish::{NoProgress, PublishOptions, publish_dir};
use asof::retention::Policy;
use asof::store::Store;
use chrono::{DateTime, Datelike, Days, NaiveDate, Utc};
use common::apt::{Apt, apt_download};
use common::tree::copy_tree;
use common::*;

const SNAPSHOTS: usize = 200;
const STEP_SECS: i64 = 6 * 3600;

/// Snapshot i holds fixtures/apt/v1 (i even) or v2 (i odd) and a file `stamp` = "i".
/// IDs are spread 6 hours apart (50 days) by sealing just below each one before its
/// commit: a commit is stamped above the seal, so the history lies in the future.
fn build_history(data: &Path) -> Vec<SnapshotId> {
    let store = Store::open_local(data).unwrap();
    let archive: ArchiveName = "deb".parse().unwrap();
    let start = Utc::now().timestamp() + 3600;
    let tmp = tempfile::tempdir().unwrap();
    let trees: Vec<_> = ["v1", "v2"]
        .iter()
        .map(|v| {
            let t = tmp.path().join(v);
            copy_tree(&fixtures().join("apt").join(v), &t);
            t
        })
        .collect();
    let opts = PublishOptions { progress: &NoProgress, source: serde_json::Value::Null, always: true };
    (0..SNAPSHOTS)
        .map(|i| {
            let tree = &trees[i % 2];
            std::fs::write(tree.join("stamp"), i.to_string()).unwrap();
            store.catalog.seal(start + i as i64 * STEP_SECS - 1).unwrap();
            let id = publish_dir(&store, &archive, tree, &opts).unwrap().snapshot;
            assert_eq!(id.unix(), start + i as i64 * STEP_SECS);
            id
        })
        .collect()
}

fn date(id: SnapshotId) -> NaiveDate {
    DateTime::from_timestamp(id.unix(), 0).unwrap().date_naive()
}

/// What "daily for 7 days, weekly for 4 weeks" keeps as of the latest snapshot, worked out
/// from calendar dates: the latest snapshot of each of the 7 UTC days and of each of the 4
/// ISO weeks ending with the latest one, plus the first and the latest.
fn expected_kept(ids: &[SnapshotId]) -> Vec<SnapshotId> {
    let today = date(*ids.last().unwrap());
    let monday = |d: NaiveDate| d - Days::new(u64::from(d.weekday().num_days_from_monday()));
    let mut latest_of: BTreeMap<(u8, NaiveDate), SnapshotId> = BTreeMap::new();
    for &id in ids {
        let d = date(id);
        if d > today - Days::new(7) {
            latest_of.insert((0, d), id);
        }
        if monday(d) >= monday(today) - Days::new(21) {
            latest_of.insert((1, monday(d)), id);
        }
    }
    let mut kept: Vec<SnapshotId> = latest_of.into_values().collect();
    kept.push(ids[0]);
    kept.push(*ids.last().unwrap());
    kept.sort();
    kept.dedup();
    kept
}

#[test]
fn a_daily_and_weekly_policy_keeps_exactly_the_expected_snapshots_and_apt_follows_the_rule() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let ids = build_history(&data);
    let kept = expected_kept(&ids);
    assert!(kept.len() > 8 && kept.len() < 16, "{} kept", kept.len());

    let store = Store::open_local(&data).unwrap();
    let archive: ArchiveName = "deb".parse().unwrap();
    let policy = Policy { daily: Some(7), weekly: Some(4), ..Policy::default() };
    store.retention.set_policy(&archive, Some(&policy), "test", 0).unwrap();
    let now = ids.last().unwrap().unix();
    let plan = asof::retention::plan(&store, &archive, now).unwrap().unwrap();
    let rows_before = store.catalog.stats().unwrap().entry_rows;

    let applied = asof::retention::apply(&store, &archive, now, "test").unwrap().unwrap();
    let deleted: Vec<SnapshotId> = ids.iter().copied().filter(|id| !kept.contains(id)).collect();
    assert_eq!(applied.deleted, deleted);
    assert!(applied.kept.is_empty(), "{:?}", applied.kept);
    let left: Vec<SnapshotId> =
        store.catalog.snapshots(&archive, &SnapshotQuery::default()).unwrap().iter().map(|s| s.id).collect();
    assert_eq!(left, kept);

    // The dry run (one pass per span of deleted snapshots) and the apply (one snapshot per
    // transaction) agree; every deleted stamp is a blob nothing references any more.
    assert_eq!(plan.reclaim, applied.reclaim);
    assert_eq!(applied.reclaim.snapshots, deleted.len() as u64);
    assert_eq!(applied.reclaim.blobs, deleted.len() as u64);
    let stamp_bytes: usize = (0..SNAPSHOTS).filter(|i| deleted.contains(&ids[*i])).map(|i| i.to_string().len()).sum();
    assert_eq!(applied.reclaim.bytes, stamp_bytes as u64);
    assert_eq!(store.catalog.stats().unwrap().entry_rows, rows_before - applied.reclaim.entry_rows);
    let tombstones: Vec<SnapshotId> =
        store.retention.deleted_snapshots(&archive).unwrap().iter().map(|d| d.id).collect();
    assert_eq!(tombstones, deleted);
    // A second apply has nothing left to do.
    assert_eq!(asof::retention::apply(&store, &archive, now, "test").unwrap().unwrap().deleted, []);
    drop(store);
    // Every kept snapshot still hashes to its digest; nothing it needs went.
    verify_clean(&data);

    // The history lies in the future: the server's own schedule (which applies the policy
    // as of the real clock) must stay off here.
    let config = tmp.path().join("asof.toml");
    std::fs::write(&config, "[retention]\ninterval = \"off\"\n").unwrap();
    let server = Server::start_with(&data, &["--config", config.to_str().unwrap()]);
    let index = |id: &SnapshotId| ids.iter().position(|i| i == id).unwrap();
    let stamp = |at: String| server.get(&format!("/deb/{at}/stamp"));

    // Kept and exact: its own bytes, immutable.
    let k = kept[kept.len() / 2];
    let r = stamp(k.to_string());
    assert_eq!((r.status, r.text(), r.header("cache-control")), (200, index(&k).to_string(), asof_immutable()));
    // A deleted snapshot's exact ID: 410, never the bytes of the snapshot before it.
    let d = *deleted.iter().find(|d| index(d) % 2 != index(&floor_of(&kept, **d)) % 2).unwrap();
    let before = floor_of(&kept, d);
    let r = stamp(d.to_string());
    let when = DateTime::from_timestamp(now, 0).unwrap().to_rfc3339();
    r.assert_error(
        410,
        &format!(
            "snapshot {d} of 'deb' was deleted by its retention policy at {when}; the snapshot before it is {before}"
        ),
    );
    // An ID between snapshots resolves by floor to the kept snapshot before it, and is
    // no longer served as immutable: under retention its floor may go too.
    let between = SnapshotId::from_unix(d.unix() + 60).unwrap();
    let r = stamp(between.to_string());
    assert_eq!((r.status, r.text()), (200, index(&before).to_string()));
    assert_eq!(r.header("x-asof-snapshot"), before.to_string());
    assert_eq!(r.header("cache-control"), "public, max-age=10");
    let r = server.get(&format!("/api/v1/archives/deb/-/resolve/{between}"));
    assert_eq!((r.status, r.json()["final"].as_bool(), r.json()["exact"].as_bool()), (200, Some(false), Some(false)));

    // apt: from every kept ID, and from IDs between snapshots: just after a kept one, and
    // just after a deleted one (both get the packages of the kept snapshot before them).
    let keyring = fixtures().join("keys/test-signing.gpg");
    let hello = |i: usize| if i.is_multiple_of(2) { "hello-asof_1.0-1_all.deb" } else { "hello-asof_1.1-1_all.deb" };
    let after_kept = SnapshotId::from_unix(k.unix() + 60).unwrap();
    let mut cases: Vec<(SnapshotId, usize)> = kept.iter().map(|id| (*id, index(id))).collect();
    cases.extend([(after_kept, index(&k)), (between, index(&before))]);
    for (n, (at, expect)) in cases.into_iter().enumerate() {
        let line = format!("deb [signed-by={}] http://{}/deb/{at}/ stable main", keyring.display(), server.addr);
        let got = apt_download(&tmp.path().join(format!("apt{n}")), &line, &["hello-asof"]);
        let v = if expect.is_multiple_of(2) { "v1" } else { "v2" };
        let want =
            std::fs::read(fixtures().join("apt").join(v).join("pool/main/h/hello-asof").join(hello(expect))).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, hello(expect), "at {at}");
        assert!(got[0].1 == want, "hello-asof bytes differ at {at}");
    }
    // apt pinned to the deleted snapshot's exact ID is told it is gone.
    let line = format!("deb [signed-by={}] http://{}/deb/{d}/ stable main", keyring.display(), server.addr);
    let apt = Apt::new(&tmp.path().join("apt-gone"), &line, None);
    let run = apt.update();
    let base = format!("http://{}/deb/{d}", server.addr);
    run.assert_failed_with(&[
        &format!("E: Failed to fetch {base}/dists/stable/InRelease  410  Gone [IP: 127.0.0.1 {}]", server.port()),
        &format!("E: The repository '{base} stable InRelease' is not signed."),
    ]);
}

fn floor_of(kept: &[SnapshotId], id: SnapshotId) -> SnapshotId {
    *kept.iter().rev().find(|k| **k <= id).unwrap()
}

fn asof_immutable() -> &'static str {
    "public, max-age=31536000, immutable"
}

#[test]
fn a_snapshot_is_kept_while_the_package_index_has_not_read_the_one_after_it() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let store = Store::open_local(&data).unwrap();
    let archive: ArchiveName = "deb".parse().unwrap();
    let opts = PublishOptions { progress: &NoProgress, source: serde_json::Value::Null, always: true };
    let ids: Vec<SnapshotId> = ["v1", "v2", "v1"]
        .iter()
        .map(|v| publish_dir(&store, &archive, &fixtures().join("apt").join(v), &opts).unwrap().snapshot)
        .collect();
    asof::packages::index::index_archive(&store, &archive, &mut |_, _| {}).unwrap();
    // As if the third snapshot were committed but not indexed yet: deleting the second
    // would take rows the index needs to read the third.
    let db = rusqlite::Connection::open(data.join("asof.db")).unwrap();
    db.execute("UPDATE package_index_state SET indexed_seq = 2", []).unwrap();
    assert_eq!(
        store.retention.delete_snapshot(&archive, ids[1], "test", 0).unwrap(),
        asof::retention::Deletion::Kept("the package index has not read it and the snapshot after it yet".into())
    );
    db.execute("UPDATE package_index_state SET indexed_seq = 3", []).unwrap();
    assert!(matches!(
        store.retention.delete_snapshot(&archive, ids[1], "test", 0).unwrap(),
        asof::retention::Deletion::Deleted(_)
    ));
}
