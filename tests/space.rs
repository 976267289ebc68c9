//! Issue 12, item 5: space accounting. Exact blob and byte counts for archives that share
//! blobs (referenced vs unique), the same report from the CLI and the API, private
//! archives hidden from callers without a read token, and the migration's back-fill.

mod common;

use std::path::Path;

use asof::domain::ArchiveName;
use asof::space::{BlobSpace, SpaceReport};
use axum::http::StatusCode;
use common::inproc::App;
use common::*;

const X: &[u8] = b"only in a, 10"; // 13 bytes
const Y: &[u8] = b"shared by a and b: 25 bytes"; // 27 bytes
const Z: &[u8] = b"only in b"; // 9 bytes
const W: &[u8] = b"a, later"; // 8 bytes

/// `a` holds X and Y (twice) then Y and W; `b` holds Y and Z.
fn setup(app: &App) {
    app.publish("a", &[("pool/x", X), ("pool/y", Y), ("pool/y-again", Y)]);
    app.publish("a", &[("pool/y", Y), ("pool/w", W)]);
    app.publish("b", &[("pool/y", Y), ("pool/z", Z)]);
}

fn space(blobs: u64, bytes: u64) -> BlobSpace {
    BlobSpace { blobs, bytes }
}

fn report(app: &App, archive: &str) -> SpaceReport {
    asof::space::report(&app.store, &archive.parse().unwrap()).unwrap().unwrap()
}

#[test]
fn referenced_counts_every_snapshot_once_and_unique_leaves_out_what_others_hold() {
    let app = App::new();
    setup(&app);
    let a = report(&app, "a");
    // X (13), Y (27, once though named twice and in two snapshots), W (8).
    assert_eq!(a.referenced, space(3, 13 + 27 + 8));
    assert_eq!(a.unique, space(2, 13 + 8));
    let b = report(&app, "b");
    assert_eq!(b.referenced, space(2, 27 + 9));
    assert_eq!(b.unique, space(1, 9));
    assert_eq!(asof::space::report(&app.store, &"nope".parse::<ArchiveName>().unwrap()).unwrap(), None);

    // Once b stops holding Y in its latest snapshot, its history still references it.
    app.publish("b", &[("pool/z", Z)]);
    assert_eq!(report(&app, "b").referenced, space(2, 27 + 9));
    assert_eq!(report(&app, "a").unique, space(2, 13 + 8));
}

#[test]
fn the_cli_prints_each_archive_or_one_as_json() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    setup(&App::open(&data));
    let all = asof(&data, &["archive", "space"]);
    assert!(all.status.success(), "{}", String::from_utf8_lossy(&all.stderr));
    assert_eq!(
        String::from_utf8_lossy(&all.stdout),
        "a: references 3 blob(s), 48 bytes; only it: 2 blob(s), 21 bytes\n\
         b: references 2 blob(s), 36 bytes; only it: 1 blob(s), 9 bytes\n"
    );
    let one = asof(&data, &["archive", "space", "b", "--json"]);
    assert!(one.status.success(), "{}", String::from_utf8_lossy(&one.stderr));
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&one.stdout).unwrap(),
        serde_json::json!({
            "archive": "b", "referenced": {"blobs": 2, "bytes": 36}, "unique": {"blobs": 1, "bytes": 9}, "retention": null,
        })
    );
    let every = asof(&data, &["archive", "space", "--json"]);
    let every: serde_json::Value = serde_json::from_slice(&every.stdout).unwrap();
    assert_eq!(every.as_array().map(|a| a.len()), Some(2));
    assert_eq!(every[0]["referenced"], serde_json::json!({"blobs": 3, "bytes": 48}));
    let missing = asof(&data, &["archive", "space", "nope"]);
    assert_eq!(missing.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&missing.stderr), "error: no archive named 'nope'\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_answers_the_report_and_hides_private_archives() {
    let app = App::new();
    setup(&app);
    let r = app.get("/api/v1/archives/a/-/space", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        r.text(),
        r#"{"archive":"a","referenced":{"blobs":3,"bytes":48},"unique":{"blobs":2,"bytes":21},"retention":null}"#
    );
    assert_eq!(r.header("content-type"), "application/json");

    app.make_private("b");
    let hidden = serde_json::json!({"error": "no archive named 'b'", "status": 404});
    let other = app.token(&["read:a"]);
    for auth in [None, Some(other.as_str())] {
        let r = app.get("/api/v1/archives/b/-/space", auth).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert_eq!(r.json(), hidden);
    }
    let reader = app.token(&["read:b"]);
    let r = app.get("/api/v1/archives/b/-/space", Some(&reader)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        r.json(),
        serde_json::json!({
            "archive": "b", "referenced": {"blobs": 2, "bytes": 36}, "unique": {"blobs": 1, "bytes": 9}, "retention": null,
        })
    );
    let r = app.get("/api/v1/archives/nope/-/space", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json(), serde_json::json!({"error": "no archive named 'nope'", "status": 404}));
}

/// The state of a catalog from before schema/0013_space.sql (the last migration).
fn undo_space_migration(db: &Path) {
    let conn = rusqlite::Connection::open(db).unwrap();
    // Back to before 0013_space (and 0014_rollout_health, which came after it).
    conn.execute_batch(
        "DROP TABLE rollout_ring_health; DROP INDEX blob_archives_by_archive; ALTER TABLE blob_archives DROP COLUMN size; \
         DELETE FROM schema_migrations WHERE name IN ('0013_space.sql', '0014_rollout_health.sql');",
    )
    .unwrap();
}

#[test]
fn the_migration_back_fills_the_sizes_of_existing_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    setup(&App::open(&data));
    undo_space_migration(&data.join("asof.db"));
    let app = App::open(&data);
    assert_eq!(report(&app, "a").referenced, space(3, 48));
    assert_eq!(report(&app, "b").unique, space(1, 9));
}

#[test]
fn a_blob_a_re_signed_file_references_is_not_unique() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let app = App::open(&data);
    setup(&app);
    // Re-signed Release files are kept for good: deleting a's snapshots would not free X.
    let db = rusqlite::Connection::open(data.join("asof.db")).unwrap();
    db.execute(
        "INSERT INTO resigned_files (archive_id, seq, path, base, sha256, size, made_at) \
         SELECT id, 1, 'dists/stable/Release', 'http://h/', ?1, ?2, 0 FROM archives WHERE name = 'a'",
        rusqlite::params![&asof::domain::Digest::of(X).as_bytes()[..], X.len() as i64],
    )
    .unwrap();
    let a = report(&app, "a");
    assert_eq!(a.referenced, space(3, 48));
    assert_eq!(a.unique, space(1, 8));
}

#[test]
fn the_report_says_what_the_retention_policy_would_free() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let app = App::open(&data);
    for v in ["version one", "version two!", "version three"] {
        app.publish("c", &[("pool/p", v.as_bytes()), ("pool/shared", X)]);
    }
    let policy = asof::retention::Policy { keep_last: Some(1), ..Default::default() };
    app.store.retention.set_policy(&"c".parse().unwrap(), Some(&policy), "test", 0).unwrap();
    // The middle snapshot goes; only its "version two!" (12 bytes) is referenced nowhere else.
    let r = report(&app, "c");
    assert_eq!(r.retention, Some(asof::space::RetentionSpace { snapshots: 1, frees: space(1, 12) }));
    let out = asof(&data, &["archive", "space", "c"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!(
            "c: references 4 blob(s), {} bytes; only it: 4 blob(s), {} bytes; its retention policy would delete 1 \
             snapshot(s), freeing 1 blob(s), 12 bytes\n",
            11 + 12 + 13 + X.len(),
            11 + 12 + 13 + X.len()
        )
    );
}
