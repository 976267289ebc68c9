//! Issue 9: the package index and its API, in process (tower `oneshot` on the real router).
//! Three snapshots in which a library is upgraded twice, a package is removed, one is
//! added and one is rebuilt; every answer is checked at exact and in-between IDs.

use asof::domain::{ArchiveName, SnapshotId};
use asof::http::{AppState, ServeOptions, router};
use asof::publish::{NoProgress, PublishOptions, publish_dir};
use asof::store::Store;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

struct Pkg {
    name: &'static str,
    version: &'static str,
    source: Option<&'static str>,
    bytes: &'static str,
}

fn packages_file(pkgs: &[Pkg]) -> String {
    let mut out = String::new();
    for p in pkgs {
        out.push_str(&format!("Package: {}\n", p.name));
        if let Some(s) = p.source {
            out.push_str(&format!("Source: {s}\n"));
        }
        let file = format!("pool/main/{}/{}_{}_amd64.deb", &p.name[..1], p.name, p.version);
        let sha = asof::domain::Digest::of(p.bytes.as_bytes()).hex();
        out.push_str(&format!(
            "Version: {}\nArchitecture: amd64\nFilename: {file}\nSize: {}\nSHA256: {sha}\n\n",
            p.version,
            p.bytes.len()
        ));
    }
    out
}

fn sources_file(version: &str) -> String {
    format!(
        "Package: openssl\nVersion: {version}\nDirectory: pool/main/o/openssl\nChecksums-Sha256:\n {} 900 openssl_{version}.dsc\n",
        asof::domain::Digest::of(version.as_bytes()).hex()
    )
}

struct App {
    state: AppState,
    ids: Vec<SnapshotId>,
    _tmp: tempfile::TempDir,
}

fn publish_tree(store: &Store, files: &[(&str, String)]) -> SnapshotId {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let opts = PublishOptions { progress: &NoProgress, source: Value::Null, always: true };
    publish_dir(store, &"deb".parse().unwrap(), dir.path(), &opts).unwrap().snapshot
}

/// Snapshots 10 s apart (the seal is raised before each commit), so that IDs between them exist.
fn history(store: &Store) -> Vec<SnapshotId> {
    let v1 = [
        Pkg {
            name: "libssl3",
            version: "3.0.11-1~deb12u1",
            source: Some("openssl (3.0.11-1~deb12u1)"),
            bytes: "ssl 11",
        },
        Pkg { name: "hello", version: "1.0-1", source: None, bytes: "hello" },
        Pkg { name: "oldpkg", version: "1.0", source: None, bytes: "old" },
    ];
    let v2 = [
        Pkg {
            name: "libssl3",
            version: "3.0.13-1~deb12u1",
            source: Some("openssl (3.0.13-1~deb12u1)"),
            bytes: "ssl 13",
        },
        Pkg { name: "hello", version: "1.0-1", source: None, bytes: "hello" },
        Pkg { name: "newpkg", version: "0.1", source: None, bytes: "new" },
    ];
    let v3 = [
        Pkg {
            name: "libssl3",
            version: "3.0.20-1~deb12u1",
            source: Some("openssl (3.0.20-1~deb12u1)"),
            bytes: "ssl 20",
        },
        Pkg { name: "hello", version: "1.0-1", source: None, bytes: "hello rebuilt" },
        Pkg { name: "newpkg", version: "0.1", source: None, bytes: "new" },
    ];
    let mut ids = Vec::new();
    for (pkgs, src) in [(&v1[..], "3.0.11-1~deb12u1"), (&v2[..], "3.0.13-1~deb12u1"), (&v3[..], "3.0.20-1~deb12u1")] {
        if let Some(last) = ids.last() {
            store.catalog.seal(SnapshotId::unix(*last) + 9).unwrap();
        }
        ids.push(publish_tree(
            store,
            &[
                ("dists/stable/main/binary-amd64/Packages", packages_file(pkgs)),
                ("dists/stable/main/source/Sources", sources_file(src)),
                ("dists/stable/Release", format!("Suite: stable\nVersion: {src}\n")),
            ],
        ));
    }
    ids
}

impl App {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open_local(tmp.path()).unwrap();
        let ids = history(&store);
        let state = AppState::new(store.clone(), ServeOptions::default());
        Self { state, ids, _tmp: tmp }
    }

    async fn get(&self, uri: &str) -> (StatusCode, String, Value) {
        let req = Request::builder().uri(uri).body(Body::empty()).unwrap();
        let resp = router(self.state.clone()).oneshot(req).await.unwrap();
        let status = resp.status();
        let cache = resp.headers().get("cache-control").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let json = serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{uri}: not JSON ({e}): {body:?}"));
        (status, cache, json)
    }

    fn between(&self, i: usize) -> SnapshotId {
        SnapshotId::from_unix(self.ids[i].unix() + 5).unwrap()
    }
}

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

fn change(name: &str, old: Option<&str>, new: Option<&str>, change: &str, source: &str) -> Value {
    json!({"name": name, "kind": "binary", "architecture": "amd64", "suite": "stable", "component": "main",
           "source": source, "old_version": old, "new_version": new, "change": change})
}

#[tokio::test(flavor = "multi_thread")]
async fn diff_between_snapshots_at_exact_and_in_between_ids() {
    let app = App::new();
    let (s1, s3) = (app.ids[0], app.ids[2]);
    let want = json!([
        change("hello", Some("1.0-1"), Some("1.0-1"), "rebuilt", "hello"),
        change("libssl3", Some("3.0.11-1~deb12u1"), Some("3.0.20-1~deb12u1"), "upgraded", "openssl"),
        change("newpkg", None, Some("0.1"), "added", "newpkg"),
        change("oldpkg", Some("1.0"), None, "removed", "oldpkg"),
        {"name": "openssl", "kind": "source", "architecture": "source", "suite": "stable", "component": "main",
         "source": "openssl", "old_version": "3.0.11-1~deb12u1", "new_version": "3.0.20-1~deb12u1", "change": "upgraded"},
    ]);
    for (from, to) in [(s1, s3), (app.between(0), s3)] {
        let (status, cache, body) = app.get(&format!("/api/v1/archives/deb/-/diff?from={from}&to={to}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(cache, IMMUTABLE);
        assert_eq!(body["from"], json!({"requested": from, "snapshot": s1, "final": true}));
        assert_eq!(body["changes"], want);
    }
    // Backwards, the same changes the other way round.
    let (_, _, body) = app.get(&format!("/api/v1/archives/deb/-/diff?from={s3}&to={s1}&name=libssl3")).await;
    assert_eq!(
        body["changes"],
        json!([change("libssl3", Some("3.0.20-1~deb12u1"), Some("3.0.11-1~deb12u1"), "downgraded", "openssl")])
    );
    // Filters, and a snapshot to itself.
    let (_, _, body) =
        app.get(&format!("/api/v1/archives/deb/-/diff?from={s1}&to={}&architecture=source", app.ids[1])).await;
    assert_eq!(body["changes"].as_array().unwrap().len(), 1);
    let (_, _, body) = app.get(&format!("/api/v1/archives/deb/-/diff?from={s3}&to={s3}")).await;
    assert_eq!(body["changes"], json!([]));
    let (status, _, body) = app.get("/api/v1/archives/deb/-/diff?from=yesterday&to=now").await;
    assert_eq!(
        (status, body),
        (
            StatusCode::BAD_REQUEST,
            json!({"error": format!("parameter 'from': {}", "yesterday".parse::<SnapshotId>().unwrap_err()), "status": 400})
        )
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_version_of_a_package_with_first_and_last_seen() {
    let app = App::new();
    let [s1, s2, s3] = [app.ids[0], app.ids[1], app.ids[2]];
    let (status, cache, body) = app.get("/api/v1/archives/deb/-/packages/libssl3").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(cache, "public, max-age=10");
    let seen: Vec<(String, Value, Value)> = body["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["version"].as_str().unwrap().to_string(), v["first_seen"].clone(), v["last_seen"].clone()))
        .collect();
    assert_eq!(
        seen,
        vec![
            ("3.0.11-1~deb12u1".to_string(), json!(s1), json!(s1)),
            ("3.0.13-1~deb12u1".to_string(), json!(s2), json!(s2)),
            ("3.0.20-1~deb12u1".to_string(), json!(s3), Value::Null),
        ]
    );
    let v = &body["versions"][0];
    assert_eq!(v["filename"], "pool/main/l/libssl3_3.0.11-1~deb12u1_amd64.deb");
    assert_eq!(v["source"], "openssl");
    assert_eq!(v["source_version"], "3.0.11-1~deb12u1");
    assert_eq!(v["size"], 6);
    // A removed package keeps its history.
    let (_, _, body) = app.get("/api/v1/archives/deb/-/packages/oldpkg").await;
    assert_eq!(body["versions"][0]["last_seen"], json!(s1));
    let (status, _, body) = app.get("/api/v1/archives/deb/-/packages/nothere").await;
    assert_eq!(
        (status, body),
        (StatusCode::NOT_FOUND, json!({"error": "package 'nothere' was never in archive 'deb'", "status": 404}))
    );
    // A source package, with the binaries built from it.
    let (_, _, body) = app.get("/api/v1/archives/deb/-/sources/openssl").await;
    assert_eq!(body["versions"].as_array().unwrap().len(), 3);
    assert_eq!(body["versions"][2]["filename"], "pool/main/o/openssl/openssl_3.0.20-1~deb12u1.dsc");
    assert_eq!(body["binaries"].as_array().unwrap().len(), 3);
    assert_eq!(body["binaries"][0]["name"], "libssl3");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_first_snapshot_with_a_fixed_version() {
    let app = App::new();
    let [_, s2, s3] = [app.ids[0], app.ids[1], app.ids[2]];
    for (constraint, want) in [
        ("%3E%3D3.0.13", s2),
        ("%3E%3D3.0.13-1~deb12u1", s2),
        ("%3E%3E3.0.13-1~deb12u1", s3),
        ("%3D3.0.20-1~deb12u1", s3),
        ("%3C%3C3.0.12", app.ids[0]),
    ] {
        let (status, cache, body) =
            app.get(&format!("/api/v1/archives/deb/-/packages/libssl3/first?version={constraint}")).await;
        assert_eq!(status, StatusCode::OK, "{constraint}: {body}");
        assert_eq!(cache, IMMUTABLE);
        assert_eq!(body["snapshot"], json!(want), "{constraint}");
        assert_eq!(body["url"], format!("/deb/{want}/"));
    }
    let (status, cache, body) =
        app.get("/api/v1/archives/deb/-/packages/libssl3/first?version=%3E%3E3.0.20-1~deb12u1").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(cache, "no-cache");
    assert_eq!(body, json!({"error": "no snapshot of 'deb' has libssl3 >>3.0.20-1~deb12u1", "status": 404}));
    let (status, _, _) = app.get("/api/v1/archives/deb/-/packages/libssl3/first?version=%3E3.0").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, _, body) =
        app.get("/api/v1/archives/deb/-/packages/libssl3/first?version=%3E%3D3.0.13&suite=unstable").await;
    assert_eq!(body["error"], "no snapshot of 'deb' has libssl3 >=3.0.13");
}

#[tokio::test(flavor = "multi_thread")]
async fn search_by_name_in_one_snapshot() {
    let app = App::new();
    let (_, cache, body) = app.get(&format!("/api/v1/archives/deb/-/packages?at={}&q=pkg", app.between(0))).await;
    assert_eq!(cache, IMMUTABLE);
    assert_eq!(body["at"]["snapshot"], json!(app.ids[0]));
    assert_eq!(body["packages"], json!(["oldpkg"]));
    let (_, _, body) = app.get(&format!("/api/v1/archives/deb/-/packages?at={}&q=pkg", app.ids[2])).await;
    assert_eq!(body["packages"], json!(["newpkg"]));
    let (_, _, body) = app.get(&format!("/api/v1/archives/deb/-/packages?at={}&q=l", app.ids[2])).await;
    assert_eq!(body["packages"], json!(["hello", "libssl3"]));
    let (_, _, body) = app.get(&format!("/api/v1/archives/deb/-/packages?at={}&q=l&match=prefix", app.ids[2])).await;
    assert_eq!(body["packages"], json!(["libssl3"]));
    let (_, _, body) = app.get(&format!("/api/v1/archives/deb/-/packages?at={}&limit=1", app.ids[2])).await;
    assert_eq!((body["packages"].clone(), body["next_cursor"].clone()), (json!(["hello"]), json!("hello")));
    let (_, _, body) =
        app.get(&format!("/api/v1/archives/deb/-/packages?at={}&limit=2&cursor=hello", app.ids[2])).await;
    assert_eq!((body["packages"].clone(), body["next_cursor"].clone()), (json!(["libssl3", "newpkg"]), Value::Null));
}

#[test]
fn the_backfill_indexes_existing_snapshots_the_same_way() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open_local(tmp.path()).unwrap();
    history(&store);
    let archive: ArchiveName = "deb".parse().unwrap();
    let p = store.packages.index_progress(&archive).unwrap().unwrap();
    let dump = |store: &Store| {
        let db = rusqlite::Connection::open(tmp.path().join("asof.db")).unwrap();
        let mut stmt =
            db.prepare("SELECT name, version, first_seq, last_seq FROM packages ORDER BY name, first_seq").unwrap();
        let rows: Vec<(String, String, i64, Option<i64>)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let _ = store;
        rows
    };
    let before = dump(&store);
    assert_eq!(before.len(), 10, "{before:?}");
    // As an upgraded data directory has it: snapshots, but no package index yet.
    let db = rusqlite::Connection::open(tmp.path().join("asof.db")).unwrap();
    db.execute_batch("DELETE FROM packages; DELETE FROM package_index_state;").unwrap();
    let mut seen = Vec::new();
    let report =
        asof::packages::index::index_archive(&store, &archive, &mut |done, total| seen.push((done, total))).unwrap();
    assert_eq!(seen, vec![(1, 3), (2, 3), (3, 3)]);
    assert_eq!((report.snapshots, report.inserted, report.closed), (3, 10, 6));
    assert_eq!(dump(&store), before);
    assert_eq!(store.packages.index_progress(&archive).unwrap().unwrap().indexed_seq, p.latest_seq);
}

#[test]
fn a_tree_that_is_not_an_apt_archive_or_has_a_broken_index_still_publishes() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open_local(tmp.path()).unwrap();
    let id = publish_tree(&store, &[("README", "just files\n".into())]);
    let archive: ArchiveName = "deb".parse().unwrap();
    assert_eq!(store.packages.index_progress(&archive).unwrap().unwrap().indexed_seq, 1);
    let broken = publish_tree(
        &store,
        &[("dists/stable/main/binary-amd64/Packages", "Package: x\nVersion: 1\nSize: many\n".into())],
    );
    assert!(broken > id);
    let p = store.packages.index_progress(&archive).unwrap().unwrap();
    assert_eq!((p.indexed_seq, p.latest_seq), (2, 2));
    assert_eq!(
        store.packages.index_problems(p.archive_id, 2).unwrap(),
        vec![(
            "dists/stable/main/binary-amd64/Packages".to_string(),
            "paragraph 1: Size \"many\" is not a number".to_string()
        )]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_debian_index_is_indexed() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open_local(tmp.path()).unwrap();
    let real = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/debian/bookworm-updates");
    let read = |p: &str| std::fs::read_to_string(real.join(p)).unwrap();
    let packages = read("main/binary-amd64/Packages");
    let id = publish_tree(
        &store,
        &[
            ("dists/bookworm-updates/InRelease", read("InRelease")),
            ("dists/bookworm-updates/main/binary-amd64/Packages", packages.clone()),
        ],
    );
    let state = AppState::new(store.clone(), ServeOptions::default());
    let get = |uri: String| {
        let state = state.clone();
        async move {
            let resp = router(state).oneshot(Request::builder().uri(uri).body(Body::empty()).unwrap()).await.unwrap();
            let status = resp.status();
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            (status, serde_json::from_slice::<Value>(&body).unwrap())
        }
    };
    // Every paragraph of the real index is a package of the snapshot.
    let names: Vec<&str> = packages.lines().filter_map(|l| l.strip_prefix("Package: ")).collect();
    assert_eq!(names.len(), 38);
    let (_, body) = get(format!("/api/v1/archives/deb/-/packages?at={id}&limit=1000")).await;
    let mut want: Vec<&str> = names.clone();
    want.sort();
    want.dedup();
    assert_eq!(body["packages"], json!(want));
    let (status, body) = get("/api/v1/archives/deb/-/packages/tzdata".to_string()).await;
    assert_eq!(status, StatusCode::OK);
    let v = &body["versions"][0];
    assert_eq!(
        (v["version"].as_str(), v["suite"].as_str(), v["architecture"].as_str()),
        (Some("2025b-0+deb12u1"), Some("bookworm-updates"), Some("amd64"))
    );
    assert_eq!(v["filename"], "pool/main/t/tzdata/tzdata_2025b-0+deb12u1_all.deb");
    let (status, body) = get("/api/v1/archives/deb/-/packages/tzdata/first?version=%3E%3D2025a".to_string()).await;
    assert_eq!((status, body["snapshot"].clone()), (StatusCode::OK, json!(id)));
}

/// A package row: (name, version, first_seq, last_seq, paragraph digest).
type Row = (String, String, i64, Option<i64>, Option<i64>);

/// Package rows of the test archive.
fn package_rows(data: &std::path::Path) -> Vec<Row> {
    let db = rusqlite::Connection::open(data.join("asof.db")).unwrap();
    let mut stmt =
        db.prepare("SELECT name, version, first_seq, last_seq, paragraph FROM packages ORDER BY name, id").unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn digest_of(paragraph: &str) -> i64 {
    i64::from_be_bytes(asof::domain::Digest::of(paragraph.as_bytes()).as_bytes()[..8].try_into().unwrap())
}

#[test]
fn a_paragraph_changed_only_in_fields_the_index_does_not_keep_keeps_its_row() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open_local(tmp.path()).unwrap();
    let hello = |description: &str| format!("Package: hello\nVersion: 1.0\nDescription: {description}\n");
    let other = |version: &str| format!("Package: other\nVersion: {version}\n");
    let packages = |parts: &[String]| parts.join("\n");
    let path = "dists/stable/main/binary-amd64/Packages";
    publish_tree(&store, &[(path, packages(&[hello("first"), other("1")]))]);
    assert_eq!(
        package_rows(tmp.path()),
        vec![
            ("hello".into(), "1.0".into(), 1, None, Some(digest_of(&hello("first")))),
            ("other".into(), "1".into(), 1, None, Some(digest_of(&other("1")))),
        ]
    );
    // Only the description changes, and `other` is upgraded: hello keeps its row under the
    // new paragraph's digest; other's row is closed and a new one starts.
    publish_tree(&store, &[(path, packages(&[hello("second"), other("2")]))]);
    assert_eq!(
        package_rows(tmp.path()),
        vec![
            ("hello".into(), "1.0".into(), 1, None, Some(digest_of(&hello("second")))),
            ("other".into(), "1".into(), 1, Some(2), Some(digest_of(&other("1")))),
            ("other".into(), "2".into(), 2, None, Some(digest_of(&other("2")))),
        ]
    );
    // Rows indexed before rows kept digests (NULL) are matched by content, not replaced.
    let db = rusqlite::Connection::open(tmp.path().join("asof.db")).unwrap();
    db.execute("UPDATE packages SET paragraph = NULL", []).unwrap();
    publish_tree(&store, &[(path, packages(&[hello("third"), other("2"), other("2")]))]);
    assert_eq!(
        package_rows(tmp.path()),
        vec![
            ("hello".into(), "1.0".into(), 1, None, Some(digest_of(&hello("third")))),
            ("other".into(), "1".into(), 1, Some(2), None),
            ("other".into(), "2".into(), 2, None, Some(digest_of(&other("2")))),
            ("other".into(), "2".into(), 3, None, Some(digest_of(&other("2")))),
        ]
    );
}

#[test]
fn an_index_larger_than_memory_holds_is_indexed_through_its_spill_file() {
    // 20,000 packages: more new rows than indexing keeps in memory (8,192), so most of
    // them go through the temporary file, on the first publish and on a later one.
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open_local(tmp.path()).unwrap();
    let para = |i: u32, version: &str, description: &str| {
        format!("Package: p{i:05}\nVersion: {version}\nArchitecture: amd64\nSize: {i}\nDescription: {description}\n")
    };
    let path = "dists/stable/main/binary-amd64/Packages";
    let first: Vec<String> = (0..20_000).map(|i| para(i, "1", "d")).collect();
    publish_tree(&store, &[(path, first.join("\n"))]);
    // p15000 changes only its description, p19000 is upgraded, p18000 is removed and
    // p20000 is new.
    let second: Vec<String> = (0..=20_000)
        .filter(|&i| i != 18_000)
        .map(|i| match i {
            15_000 => para(i, "1", "changed"),
            19_000 => para(i, "2", "d"),
            _ => para(i, "1", "d"),
        })
        .collect();
    publish_tree(&store, &[(path, second.join("\n"))]);
    let rows = package_rows(tmp.path());
    assert_eq!(rows.len(), 20_002);
    let of = |name: &str| rows.iter().filter(|r| r.0 == name).cloned().collect::<Vec<_>>();
    let row = |name: &str, version: &str, first, last, paragraph: &str| {
        (name.to_string(), version.to_string(), first, last, Some(digest_of(paragraph)))
    };
    assert_eq!(of("p00000"), [row("p00000", "1", 1, None, &para(0, "1", "d"))]);
    assert_eq!(of("p15000"), [row("p15000", "1", 1, None, &para(15_000, "1", "changed"))]);
    assert_eq!(of("p18000"), [row("p18000", "1", 1, Some(2), &para(18_000, "1", "d"))]);
    assert_eq!(
        of("p19000"),
        [row("p19000", "1", 1, Some(2), &para(19_000, "1", "d")), row("p19000", "2", 2, None, &para(19_000, "2", "d"))]
    );
    assert_eq!(of("p19999"), [row("p19999", "1", 1, None, &para(19_999, "1", "d"))]);
    assert_eq!(of("p20000"), [row("p20000", "1", 2, None, &para(20_000, "1", "d"))]);
    assert_eq!(std::fs::read_dir(tmp.path().join("tmp")).unwrap().count(), 0, "no spill file is left behind");
}
