//! `GET|HEAD /<archive>/<ID>/<path>`: bytes, identity and cache headers, resolution of IDs,
//! by-hash, conditional and range requests.

use super::*;

const RELEASE: &str = "dists/stable/Release";
const TZ: &str = "pool/main/a/asof-tzdata/asof-tzdata_2025b-0+deb12u1_all.deb";
const TZ_URL: &str = "pool/main/a/asof-tzdata/asof-tzdata_2025b-0%2bdeb12u1_all.deb";
const HELLO_V1: &str = "pool/main/h/hello-asof/hello-asof_1.0-1_all.deb";
const HELLO_V2: &str = "pool/main/h/hello-asof/hello-asof_1.1-1_all.deb";
const PACKAGES_XZ: &str = "dists/stable/main/binary-amd64/Packages.xz";

/// The headers of a full 200 answer for a file.
fn file_headers<'a>(
    snapshot: &'a str,
    cache: &'a str,
    etag: &'a str,
    modified: &'a str,
    content_type: &'a str,
    len: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("x-asof-snapshot", snapshot),
        ("cache-control", cache),
        ("etag", etag),
        ("last-modified", modified),
        ("accept-ranges", "bytes"),
        ("content-type", content_type),
        ("content-length", len),
        ("x-content-type-options", "nosniff"),
        ("content-security-policy", "sandbox"),
    ]
}

/// Asserts a 200 with the fixture bytes of `rel` in `version`, and every header.
#[track_caller]
fn assert_file(r: &Resp, version: &str, rel: &str, snapshot: SnapshotId, since: SnapshotId, cache: &str, ct: &str) {
    let want = bytes(version, rel);
    let (snap, etag, lm, len) =
        (snapshot.to_string(), format!("\"{}\"", sha256_hex(&want)), http_date(since), want.len().to_string());
    r.assert(200, &file_headers(&snap, cache, &etag, &lm, ct, &len));
    assert!(r.body == want, "{rel} at {snapshot}: body differs from the fixture");
}

#[tokio::test]
async fn files_at_exact_ids_are_immutable_with_their_own_bytes() {
    let app = App::start();
    let (id1, id2) = (app.id1, app.id2);
    let text = "text/plain; charset=utf-8";
    assert_file(&app.get(&format!("/debian/{id1}/{RELEASE}")).await, "v1", RELEASE, id1, id1, IMMUTABLE, text);
    assert_file(&app.get(&format!("/debian/{id2}/{RELEASE}")).await, "v2", RELEASE, id2, id2, IMMUTABLE, text);
    let deb = "application/vnd.debian.binary-package";
    assert_file(&app.get(&format!("/debian/{id1}/{HELLO_V1}")).await, "v1", HELLO_V1, id1, id1, IMMUTABLE, deb);
    assert_file(&app.get(&format!("/debian/{id2}/{HELLO_V2}")).await, "v2", HELLO_V2, id2, id2, IMMUTABLE, deb);
    // Unchanged since v1: Last-Modified is when it appeared, not the snapshot's time.
    assert_file(&app.get(&format!("/debian/{id2}/{TZ_URL}")).await, "v2", TZ, id2, id1, IMMUTABLE, deb);
    let r = app.get(&format!("/debian/{id1}/dists/stable/Release.gpg")).await;
    assert_file(&r, "v1", "dists/stable/Release.gpg", id1, id1, IMMUTABLE, "application/pgp-signature");
    let r = app.get(&format!("/debian/{id1}/dists/stable/main/binary-amd64/Packages.gz")).await;
    assert_file(&r, "v1", "dists/stable/main/binary-amd64/Packages.gz", id1, id1, IMMUTABLE, "application/gzip");
    let r = app.get(&format!("/debian/{id2}/{PACKAGES_XZ}")).await;
    assert_file(&r, "v2", PACKAGES_XZ, id2, id2, IMMUTABLE, "application/x-xz");
}

#[tokio::test]
async fn an_id_between_snapshots_serves_the_earlier_one_for_good() {
    let app = App::start();
    let between = app.between();
    let r = app.get(&format!("/debian/{between}/{RELEASE}")).await;
    assert_file(&r, "v1", RELEASE, app.id1, app.id1, IMMUTABLE, "text/plain; charset=utf-8");
    let r = app.get(&format!("/debian/{between}/{HELLO_V2}")).await;
    r.assert_error(404, &format!("{HELLO_V2} does not exist in debian/{between} (snapshot {})", app.id1));
}

#[tokio::test]
async fn too_early_future_and_missing_paths_are_404_with_the_reason() {
    let app = App::start();
    let (id1, id2) = (app.id1, app.id2);
    let early = at(id1.unix() - 1);
    app.get(&format!("/debian/{early}/{RELEASE}"))
        .await
        .assert_error(404, &format!("{early} is before the first snapshot of 'debian' ({id1})"));

    let future = at(id2.unix() + 3600);
    let before = SnapshotId::now();
    let r = app.get(&format!("/debian/{future}/{RELEASE}")).await;
    let after = SnapshotId::now();
    // The message names the server's clock, read during the request.
    let msg = r.json()["error"].as_str().unwrap().to_string();
    let now = msg
        .strip_prefix(&format!("{future} is in the future (now is "))
        .and_then(|m| m.strip_suffix(&format!("); the latest snapshot of 'debian' is {id2}")))
        .unwrap_or_else(|| panic!("{msg}"));
    let now: SnapshotId = now.parse().unwrap();
    assert!(before <= now && now <= after, "{before} <= {now} <= {after}");
    r.assert_error(404, &msg);

    app.get(&format!("/debian/{id1}/dists/stable/Nope"))
        .await
        .assert_error(404, &format!("dists/stable/Nope does not exist in debian/{id1} (snapshot {id1})"));
    // apt falls back from InRelease to Release only on 404.
    app.get(&format!("/debian/{id1}/dists/unstable/InRelease"))
        .await
        .assert_error(404, &format!("dists/unstable/InRelease does not exist in debian/{id1} (snapshot {id1})"));
    // A path below a file names nothing.
    app.get(&format!("/debian/{id1}/{RELEASE}/x"))
        .await
        .assert_error(404, &format!("{RELEASE}/x does not exist in debian/{id1} (snapshot {id1})"));
}

#[tokio::test]
async fn by_hash_serves_the_directory_file_with_that_digest_only() {
    let app = App::start();
    let dir = "dists/stable/main/binary-amd64";
    for (id, version) in [(app.id1, "v1"), (app.id2, "v2")] {
        let hash = sha256_hex(&bytes(version, PACKAGES_XZ));
        let r = app.get(&format!("/debian/{id}/{dir}/by-hash/SHA256/{hash}")).await;
        assert_file(&r, version, PACKAGES_XZ, id, id, IMMUTABLE, "application/x-xz");
    }
    let id1 = app.id1;
    let v2_hash = sha256_hex(&bytes("v2", PACKAGES_XZ));
    let path = format!("{dir}/by-hash/SHA256/{v2_hash}");
    app.get(&format!("/debian/{id1}/{path}"))
        .await
        .assert_error(404, &format!("{path} does not exist in debian/{id1} (snapshot {id1})"));
    // A digest of a file in another directory is not in this one.
    let release_hash = sha256_hex(&bytes("v1", RELEASE));
    let path = format!("{dir}/by-hash/SHA256/{release_hash}");
    app.get(&format!("/debian/{id1}/{path}"))
        .await
        .assert_error(404, &format!("{path} does not exist in debian/{id1} (snapshot {id1})"));
}

#[tokio::test]
async fn conditional_requests_answer_304_without_a_body() {
    let app = App::start();
    let id1 = app.id1;
    let uri = format!("/debian/{id1}/{PACKAGES_XZ}");
    let want = bytes("v1", PACKAGES_XZ);
    let etag = format!("\"{}\"", sha256_hex(&want));
    let lm = http_date(id1);
    let snap = id1.to_string();
    let not_modified = vec![
        ("x-asof-snapshot", snap.as_str()),
        ("cache-control", IMMUTABLE),
        ("etag", etag.as_str()),
        ("last-modified", lm.as_str()),
        ("accept-ranges", "bytes"),
        ("content-type", "application/x-xz"),
        // Set by axum from the empty body's size; hyper drops it from a 304 on the wire.
        ("content-length", "0"),
        ("x-content-type-options", "nosniff"),
        ("content-security-policy", "sandbox"),
    ];
    let weak = format!("W/{etag}");
    let later = httpdate::fmt_http_date(std::time::SystemTime::now() + std::time::Duration::from_secs(86_400));
    for headers in [
        vec![("if-none-match", etag.as_str())],
        vec![("if-none-match", "\"0000\", *")],
        vec![("if-none-match", weak.as_str())],
        vec![("if-modified-since", lm.as_str())],
        vec![("if-modified-since", later.as_str())],
        // If-None-Match wins over an older If-Modified-Since.
        vec![("if-none-match", etag.as_str()), ("if-modified-since", "Mon, 01 Jan 2001 00:00:00 GMT")],
    ] {
        let r = app.get_with(&uri, &headers).await;
        r.assert(304, &not_modified);
        assert!(r.body.is_empty(), "{headers:?}");
    }
    let len = want.len().to_string();
    let full = file_headers(&snap, IMMUTABLE, &etag, &lm, "application/x-xz", &len);
    for headers in [
        vec![("if-none-match", "\"other\"")],
        vec![("if-modified-since", "Mon, 01 Jan 2001 00:00:00 GMT")],
        vec![("if-modified-since", "not a date")],
        // A non-matching If-None-Match wins over a matching If-Modified-Since.
        vec![("if-none-match", "\"other\""), ("if-modified-since", lm.as_str())],
    ] {
        let r = app.get_with(&uri, &headers).await;
        r.assert(200, &full);
        assert!(r.body == want, "{headers:?}");
    }
}

#[tokio::test]
async fn ranges_answer_206_or_416_and_if_range_guards_them() {
    let app = App::start();
    let id1 = app.id1;
    let uri = format!("/debian/{id1}/{TZ_URL}");
    let full = bytes("v1", TZ);
    let n = full.len();
    let (snap, etag, lm) = (id1.to_string(), format!("\"{}\"", sha256_hex(&full)), http_date(id1));
    let deb = "application/vnd.debian.binary-package";
    let partial = |r: &Resp, start: usize, end: usize| {
        let (len, range) = ((end - start + 1).to_string(), format!("bytes {start}-{end}/{n}"));
        let mut h = file_headers(&snap, IMMUTABLE, &etag, &lm, deb, &len);
        h.push(("content-range", &range));
        r.assert(206, &h);
        assert!(r.body == full[start..=end], "bytes {start}-{end}");
    };
    partial(&app.get_with(&uri, &[("range", "bytes=100-")]).await, 100, n - 1);
    partial(&app.get_with(&uri, &[("range", "bytes=-10")]).await, n - 10, n - 1);
    partial(&app.get_with(&uri, &[("range", "bytes=5-9")]).await, 5, 9);
    partial(&app.get_with(&uri, &[("range", &format!("bytes=0-{}", n + 100))]).await, 0, n - 1);
    // Resuming as apt does: Range with If-Range holding the validator it has.
    partial(&app.get_with(&uri, &[("range", "bytes=100-"), ("if-range", &etag)]).await, 100, n - 1);
    partial(&app.get_with(&uri, &[("range", "bytes=100-"), ("if-range", &lm)]).await, 100, n - 1);

    let len = n.to_string();
    let whole = file_headers(&snap, IMMUTABLE, &etag, &lm, deb, &len);
    for headers in [
        vec![("range", "bytes=100-"), ("if-range", "\"stale\"")],
        vec![("range", "bytes=100-"), ("if-range", "Mon, 01 Jan 2001 00:00:00 GMT")],
        // Multipart answers are not given; invalid ranges are ignored.
        vec![("range", "bytes=0-1,4-5")],
        vec![("range", "pages=1")],
    ] {
        let r = app.get_with(&uri, &headers).await;
        r.assert(200, &whole);
        assert!(r.body == full, "{headers:?}");
    }

    let r = app.get_with(&uri, &[("range", &format!("bytes={n}-"))]).await;
    let unsatisfiable = format!("bytes */{n}");
    let mut h = file_headers(&snap, IMMUTABLE, &etag, &lm, deb, "0");
    h.push(("content-range", &unsatisfiable));
    r.assert(416, &h);
    assert!(r.body.is_empty());
}

#[tokio::test]
async fn head_gives_the_headers_of_get_and_no_body() {
    let app = App::start();
    let id2 = app.id2;
    let uri = format!("/debian/{id2}/dists/stable/InRelease");
    let want = bytes("v2", "dists/stable/InRelease");
    let (snap, etag, lm, len) =
        (id2.to_string(), format!("\"{}\"", sha256_hex(&want)), http_date(id2), want.len().to_string());
    let headers = file_headers(&snap, IMMUTABLE, &etag, &lm, "text/plain; charset=utf-8", &len);
    let r = app.call("HEAD", &uri, &[], Body::empty()).await;
    r.assert(200, &headers);
    assert!(r.body.is_empty());

    let r = app.call("HEAD", &uri, &[("range", "bytes=10-19")], Body::empty()).await;
    let range = format!("bytes 10-19/{}", want.len());
    let mut h = file_headers(&snap, IMMUTABLE, &etag, &lm, "text/plain; charset=utf-8", "10");
    h.push(("content-range", &range));
    r.assert(206, &h);
    assert!(r.body.is_empty());

    let r = app.call("HEAD", &format!("/debian/{id2}/nope"), &[], Body::empty()).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn head_and_get_agree_when_the_store_lacks_a_blob() {
    let app = App::start();
    let id2 = app.id2;
    let want = bytes("v2", "dists/stable/InRelease");
    app.store.blobs.blocking().remove(&asof::domain::Digest::of(&want)).unwrap();
    let uri = format!("/debian/{id2}/dists/stable/InRelease");
    // Our fault, not the client's: the same 500 to both (HEAD used to say 200).
    for method in ["GET", "HEAD"] {
        let r = app.call(method, &uri, &[], Body::empty()).await;
        assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{method}");
    }
}

#[tokio::test]
async fn percent_encoded_paths_name_the_same_file() {
    let app = App::start();
    let id1 = app.id1;
    let deb = "application/vnd.debian.binary-package";
    for p in [TZ_URL, &TZ_URL.replace("%2b", "%2B"), TZ, &TZ_URL.replace("asof", "%61sof")] {
        let r = app.get(&format!("/debian/{id1}/{p}")).await;
        assert_file(&r, "v1", TZ, id1, id1, IMMUTABLE, deb);
    }
}

#[tokio::test]
async fn ids_after_the_latest_are_short_lived_until_sealed() {
    // One snapshot stamped at the current second, so that the next second is soon past.
    let app = App::one_fresh_snapshot();
    let id = app.id1;
    let later = at(id.unix() + 1);
    wait_until_past(later);
    let r = app.get(&format!("/debian/{later}/{RELEASE}")).await;
    assert_file(&r, "v1", RELEASE, id, id, SHORT, "text/plain; charset=utf-8");
    let r = app.get(&format!("/api/v1/archives/debian/-/resolve/{later}")).await;
    let len = r.body.len().to_string();
    r.assert(200, &api_headers(SHORT, &len));
    let snap = app.snapshot(id);
    assert_eq!(
        r.json(),
        json!({"requested": later.to_string(), "exact": false, "final": false, "snapshot": snapshot_json(&snap, None, None)})
    );
    // Once the seal passes the ID, the same answer is final.
    app.store.catalog.seal(later.unix()).unwrap();
    let r = app.get(&format!("/debian/{later}/{RELEASE}")).await;
    assert_file(&r, "v1", RELEASE, id, id, IMMUTABLE, "text/plain; charset=utf-8");
    let r = app.get(&format!("/api/v1/archives/debian/-/resolve/{later}")).await;
    let len = r.body.len().to_string();
    r.assert(200, &api_headers(IMMUTABLE, &len));
    assert_eq!(r.json()["final"], true);
}

/// The hex a fixture's Release lists for `path` (relative to `dists/stable/`) under `field`.
fn listed_hex(version: &str, field: &str, path: &str) -> String {
    let release = String::from_utf8(bytes(version, RELEASE)).unwrap();
    let section = release.split_once(&format!("\n{field}:\n")).unwrap_or_else(|| panic!("{field} in {version}")).1;
    section
        .lines()
        .take_while(|l| l.starts_with(' '))
        .find_map(|l| l.strip_suffix(&format!(" {path}")).map(|l| l.split_whitespace().next().unwrap().to_string()))
        .unwrap_or_else(|| panic!("{path} under {field} in {version}"))
}

#[tokio::test]
async fn by_hash_serves_every_hash_the_release_lists() {
    let app = App::start();
    let id = publish(&app.store, "sha512", &fixture("sha512"));
    let dir = "dists/stable/main/binary-amd64";
    for name in ["Packages", "Packages.gz", "Packages.xz"] {
        let rel = format!("{dir}/{name}");
        let want = bytes("sha512", &rel);
        let direct = app.get(&format!("/sha512/{id}/{rel}")).await;
        for field in ["MD5Sum", "SHA1", "SHA256", "SHA512"] {
            let hex = listed_hex("sha512", field, &format!("main/binary-amd64/{name}"));
            for hex in [hex.clone(), hex.to_uppercase()] {
                let r = app.get(&format!("/sha512/{id}/{dir}/by-hash/{field}/{hex}")).await;
                assert_eq!((r.status.as_u16(), &r.headers), (200, &direct.headers), "{field} of {name}");
                assert!(r.body == want, "{field} of {name}: body differs");
            }
        }
    }
    // The live path too.
    let sha512 = listed_hex("sha512", "SHA512", "main/binary-amd64/Packages.xz");
    let r = app.get(&format!("/sha512/{dir}/by-hash/SHA512/{sha512}")).await;
    assert_eq!((r.status.as_u16(), r.header("cache-control")), (200, Some("public, max-age=60")));
    assert!(r.body == bytes("sha512", PACKAGES_XZ));

    // Only in the directory the Release lists the file in, and only hashes it lists.
    for path in [
        format!("dists/stable/by-hash/SHA512/{sha512}"),
        format!("dists/stable/main/by-hash/SHA512/{sha512}"),
        format!("{dir}/by-hash/SHA512/{}", "0".repeat(128)),
        format!("{dir}/by-hash/SHA512/{}", &sha512[..64]),
        format!("{dir}/by-hash/SHA1/{sha512}"),
        format!("{dir}/by-hash/sha512/{sha512}"),
    ] {
        app.get(&format!("/sha512/{id}/{path}"))
            .await
            .assert_error(404, &format!("{path} does not exist in sha512/{id} (snapshot {id})"));
    }
}

#[tokio::test]
async fn by_hash_of_other_hashes_stays_in_its_snapshot() {
    let app = App::start();
    let (id1, id2) = (app.id1, app.id2);
    let dir = "dists/stable/main/binary-amd64";
    for (id, version) in [(id1, "v1"), (id2, "v2")] {
        let md5 = listed_hex(version, "MD5Sum", "main/binary-amd64/Packages.xz");
        let r = app.get(&format!("/debian/{id}/{dir}/by-hash/MD5Sum/{md5}")).await;
        assert_file(&r, version, PACKAGES_XZ, id, id, IMMUTABLE, "application/x-xz");
    }
    // v2's index is not in v1, and v1's Release lists no SHA512 at all.
    let v2_md5 = listed_hex("v2", "MD5Sum", "main/binary-amd64/Packages.xz");
    let path = format!("{dir}/by-hash/MD5Sum/{v2_md5}");
    app.get(&format!("/debian/{id1}/{path}"))
        .await
        .assert_error(404, &format!("{path} does not exist in debian/{id1} (snapshot {id1})"));
    let sha512 = listed_hex("sha512", "SHA512", "main/binary-amd64/Packages.xz");
    let path = format!("{dir}/by-hash/SHA512/{sha512}");
    app.get(&format!("/debian/{id1}/{path}"))
        .await
        .assert_error(404, &format!("{path} does not exist in debian/{id1} (snapshot {id1})"));
}
