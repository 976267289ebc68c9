//! The live path `/<archive>/<path>`: the latest snapshot served as the pinned path serves
//! it (bytes, Range, HEAD, conditional GET, listings, access) with a short cache, never
//! `immutable`; and which archive a path names when archive names nest.

use super::*;

const LIVE: &str = "public, max-age=60";
const RELEASE: &str = "dists/stable/Release";
const TZ: &str = "pool/main/a/asof-tzdata/asof-tzdata_2025b-0+deb12u1_all.deb";
const TZ_URL: &str = "pool/main/a/asof-tzdata/asof-tzdata_2025b-0%2bdeb12u1_all.deb";
const TEXT: &str = "text/plain; charset=utf-8";
const DEB: &str = "application/vnd.debian.binary-package";

/// Every header of a file answer but the content length.
fn file_headers(snapshot: SnapshotId, cache: &str, data: &[u8], since: SnapshotId, ct: &str) -> Vec<(String, String)> {
    [
        ("x-asof-snapshot", snapshot.to_string()),
        ("cache-control", cache.to_string()),
        ("etag", format!("\"{}\"", sha256_hex(data))),
        ("last-modified", http_date(since)),
        ("accept-ranges", "bytes".to_string()),
        ("content-type", ct.to_string()),
        ("x-content-type-options", "nosniff".to_string()),
        ("content-security-policy", "sandbox".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

#[track_caller]
fn assert_with(r: &Resp, status: u16, mut headers: Vec<(String, String)>, extra: &[(&str, String)]) {
    headers.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
    let refs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    r.assert(status, &refs);
}

#[tokio::test]
async fn live_files_are_the_latest_bytes_with_a_short_cache_and_the_pinned_etag() {
    let app = App::start();
    let (id1, id2) = (app.id1, app.id2);
    for (rel, url, version, since, ct) in [(RELEASE, RELEASE, "v2", id2, TEXT), (TZ, TZ_URL, "v2", id1, DEB)] {
        let want = bytes(version, rel);
        let len = want.len().to_string();
        let live = app.get(&format!("/debian/{url}")).await;
        assert_with(&live, 200, file_headers(id2, LIVE, &want, since, ct), &[("content-length", len.clone())]);
        assert!(live.body == want, "{rel}: live body differs from the fixture");
        let pinned = app.get(&format!("/debian/{id2}/{url}")).await;
        assert_with(&pinned, 200, file_headers(id2, IMMUTABLE, &want, since, ct), &[("content-length", len.clone())]);
        assert_eq!(pinned.body, live.body);

        let head = app.call("HEAD", &format!("/debian/{url}"), &[], Body::empty()).await;
        assert_with(&head, 200, file_headers(id2, LIVE, &want, since, ct), &[("content-length", len)]);
        assert!(head.body.is_empty());
    }
}

#[tokio::test]
async fn live_ranges_and_conditional_requests_behave_as_pinned() {
    let app = App::start();
    let (id1, id2) = (app.id1, app.id2);
    let want = bytes("v2", TZ);
    let n = want.len();
    let uri = format!("/debian/{TZ_URL}");
    let etag = format!("\"{}\"", sha256_hex(&want));
    let r = app.get_with(&uri, &[("range", "bytes=2-5")]).await;
    let range = [("content-range", format!("bytes 2-5/{n}")), ("content-length", "4".to_string())];
    assert_with(&r, 206, file_headers(id2, LIVE, &want, id1, DEB), &range);
    assert_eq!(r.body[..], want[2..=5]);
    let r = app.get_with(&uri, &[("range", format!("bytes={n}-").as_str())]).await;
    let unsat = [("content-range", format!("bytes */{n}")), ("content-length", "0".to_string())];
    assert_with(&r, 416, file_headers(id2, LIVE, &want, id1, DEB), &unsat);

    let r = app.get_with(&uri, &[("if-none-match", etag.as_str())]).await;
    assert_with(&r, 304, file_headers(id2, LIVE, &want, id1, DEB), &[("content-length", "0".to_string())]);
    assert!(r.body.is_empty());
    let r = app.get_with(&uri, &[("if-none-match", "\"other\"")]).await;
    assert_with(&r, 200, file_headers(id2, LIVE, &want, id1, DEB), &[("content-length", n.to_string())]);
}

#[tokio::test]
async fn the_live_cache_lifetime_is_configurable() {
    let app = App::with_options(ServeOptions { live_max_age: std::time::Duration::from_secs(7), ..Default::default() });
    let r = app.get(&format!("/debian/{RELEASE}")).await;
    assert_eq!(r.header("cache-control"), Some("public, max-age=7"));
    let r = app.get_with("/debian/dists/", &[("accept", "application/json")]).await;
    assert_eq!(r.header("cache-control"), Some("public, max-age=7"));
}

#[tokio::test]
async fn a_new_snapshot_changes_what_the_live_path_serves() {
    let app = App::start();
    let uri = format!("/debian/{RELEASE}");
    let before = app.get(&uri).await;
    assert!(before.body == bytes("v2", RELEASE));
    let old_etag = before.header("etag").unwrap().to_string();
    app.store.catalog.seal(app.id2.unix() + GAP).unwrap();
    let id3 = publish(&app.store, "debian", &fixture("v1"));
    let want = bytes("v1", RELEASE);
    let r = app.get_with(&uri, &[("if-none-match", old_etag.as_str())]).await;
    let len = want.len().to_string();
    assert_with(&r, 200, file_headers(id3, LIVE, &want, id3, TEXT), &[("content-length", len)]);
    assert!(r.body == want, "the live path serves the new snapshot's bytes");
    // The pinned path of the older snapshot did not move.
    assert!(app.get(&format!("/debian/{}/{RELEASE}", app.id2)).await.body == bytes("v2", RELEASE));
}

#[tokio::test]
async fn live_directory_listings_link_the_live_path() {
    let app = App::start();
    let (id1, id2) = (app.id1, app.id2);
    let r = app.get_with("/debian/dists/stable/main/", &[("accept", "application/json")]).await;
    let len = r.body.len().to_string();
    let snap = id2.to_string();
    r.assert(
        200,
        &[
            ("content-type", "application/json"),
            ("cache-control", LIVE),
            ("vary", "accept"),
            ("content-length", &len),
            ("x-asof-snapshot", &snap),
        ],
    );
    let pinned = app.get_with(&format!("/debian/{id2}/dists/stable/main/"), &[("accept", "application/json")]).await;
    assert_eq!(r.json(), pinned.json(), "same listing as the pinned path of the latest snapshot");

    let r = app.get("/debian/dists/").await;
    assert_eq!(r.header("cache-control"), Some(LIVE));
    let html = r.text();
    for fragment in [
        format!("<tr><td><a href=\"/debian/dists/stable/\">stable/</a></td><td></td><td>{id1}</td><td></td></tr>"),
        format!("<p>The latest snapshot of debian: <a href=\"/debian/{id2}/\">{id2}</a>.</p>"),
    ] {
        assert!(html.contains(&fragment), "{fragment} in {html}");
    }
}

#[tokio::test]
async fn live_misses_say_what_is_missing_or_that_an_id_was_expected() {
    let app = App::start();
    let id2 = app.id2;
    app.get("/debian/dists/unstable/InRelease")
        .await
        .assert_error(404, &format!("dists/unstable/InRelease does not exist in debian (latest snapshot {id2})"));
    app.get("/debian/dists/stable/Release/x")
        .await
        .assert_error(404, &format!("dists/stable/Release/x does not exist in debian (latest snapshot {id2})"));
    // A first segment that is nothing at the top of the snapshot was meant as an ID.
    app.get("/debian/yesterday/dists/stable/Release")
        .await
        .assert_error(404, &format!("'yesterday' after archive 'debian' is not a snapshot ID: {FORMAT_HELP}"));
    app.get("/debian/latest")
        .await
        .assert_error(404, &format!("'latest' after archive 'debian' is not a snapshot ID: {FORMAT_HELP}"));
}

/// A tree with one file at `rel` holding `content`.
fn tree(rel: &str, content: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
    dir
}

#[tokio::test]
async fn nested_archive_names_take_the_longest_readable_prefix() {
    let app = App::start();
    // `a` holds a file at b/x, and `a/b` is an archive of its own holding x.
    let a_id = publish(&app.store, "a", tree("b/x", "in a\n").path());
    let ab_id = publish(&app.store, "a/b", tree("x", "in a/b\n").path());
    let r = app.get("/a/b/x").await;
    assert_eq!(
        (r.status.as_u16(), r.text(), r.header("x-asof-snapshot")),
        (200, "in a/b\n".into(), Some(ab_id.to_string().as_str()))
    );
    // Exactly an archive name: its snapshot list, as before.
    let r = app.get_with("/a/b/", &[("accept", "application/json")]).await;
    assert_eq!(r.json()["snapshots"][0]["id"], json!(ab_id.to_string()), "{}", r.text());
    let r = app.get_with("/a/", &[("accept", "application/json")]).await;
    assert_eq!(r.json()["snapshots"][0]["id"], json!(a_id.to_string()), "{}", r.text());
    // a/b/x in `a` is shadowed by the archive `a/b`; its pinned path still reaches it.
    assert_eq!(app.get(&format!("/a/{a_id}/b/x")).await.text(), "in a\n");

    // Private and unreadable, `a/b` does not count: the path falls to `a`, which tells
    // nothing about `a/b`.
    app.store.auth.set_private(&archive("a/b"), true, 0).unwrap();
    let r = app.get("/a/b/x").await;
    assert_eq!((r.status.as_u16(), r.text(), r.header("cache-control")), (200, "in a\n".into(), Some(LIVE)));
    app.get("/a/b/y").await.assert_error(404, &format!("b/y does not exist in a (latest snapshot {a_id})"));
    let r = app.get_with("/a/b/", &[("accept", "application/json")]).await;
    assert_eq!((r.json()["archive"].as_str(), r.json()["path"].as_str()), (Some("a"), Some("b")), "{}", r.text());
    // Its readers reach it, and get a private cache.
    let token = app.token(&["read:a/b"]);
    let bearer = format!("Bearer {token}");
    let r = app.get_with("/a/b/x", &[("authorization", bearer.as_str())]).await;
    assert_eq!(
        (r.status.as_u16(), r.text(), r.header("cache-control")),
        (200, "in a/b\n".into(), Some("private, max-age=60"))
    );
}

#[tokio::test]
async fn a_private_archive_is_missing_on_the_live_path_to_those_who_cannot_read_it() {
    let app = App::start();
    app.store.auth.set_private(&archive("debian"), true, 0).unwrap();
    app.get(&format!("/debian/{RELEASE}")).await.assert_error(404, &format!("no archive named 'debian/{RELEASE}'"));
    let bearer = format!("Bearer {}", app.token(&["read:debian"]));
    let r = app.get_with(&format!("/debian/{RELEASE}"), &[("authorization", bearer.as_str())]).await;
    assert_eq!((r.status.as_u16(), r.header("cache-control")), (200, Some("private, max-age=60")));
    assert!(r.body == bytes("v2", RELEASE));
}
