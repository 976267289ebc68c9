//! Black-box HTTP semantics of `asof serve`, one behaviour per test: caching, conditional
//! and range requests, HEAD, by-hash, 404 cases, encoded paths, traversal attempts,
//! listings and the JSON API.

mod common;

use common::*;

const TZ: &str = "pool/main/a/asof-tzdata/asof-tzdata_2025b-0%2bdeb12u1_all.deb";
const PACKAGES_XZ: &str = "dists/stable/main/binary-amd64/Packages.xz";

struct Setup {
    _tmp: tempfile::TempDir,
    server: Server,
    id1: String,
    id2: String,
}

/// Two snapshots of the fixture archive `debian`: v1 then v2.
fn setup_with(config: Option<&str>) -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let id1 = publish(&data, "debian", &fixtures().join("apt/v1"));
    let id2 = publish(&data, "debian", &fixtures().join("apt/v2"));
    let server = match config {
        Some(text) => {
            let path = tmp.path().join("asof.toml");
            std::fs::write(&path, text).unwrap();
            Server::start_with(&data, &["--config", path.to_str().unwrap()])
        }
        None => Server::start(&data),
    };
    Setup { _tmp: tmp, server, id1, id2 }
}

fn setup() -> Setup {
    setup_with(None)
}

fn fixture_bytes(rel: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(rel)).unwrap()
}

#[test]
fn serves_a_file_with_identity_headers() {
    let s = setup();
    let r = s.server.get(&format!("/debian/{}/dists/stable/Release", s.id1));
    let expected = fixture_bytes("apt/v1/dists/stable/Release");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, expected);
    assert_eq!(r.header("content-length"), expected.len().to_string());
    assert_eq!(r.header("etag"), format!("\"{}\"", sha256_hex(&expected)));
    assert_eq!(r.header("accept-ranges"), "bytes");
    assert_eq!(r.header("x-asof-snapshot"), s.id1);
    assert_eq!(r.header("last-modified"), http_date(&s.id1));
    assert_eq!(r.header("content-type"), "text/plain; charset=utf-8");
    assert!(!r.headers.contains_key("content-encoding"), "{:?}", r.headers);
    // An old snapshot never changes.
    assert_eq!(r.header("cache-control"), "public, max-age=31536000, immutable");
}

#[test]
fn head_gives_headers_without_body() {
    let s = setup();
    let expected = fixture_bytes("apt/v2/dists/stable/InRelease");
    let r = s.server.request("HEAD", &format!("/debian/{}/dists/stable/InRelease", s.id2), &[]);
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    assert_eq!(r.header("content-length"), expected.len().to_string());
    assert_eq!(r.header("etag"), format!("\"{}\"", sha256_hex(&expected)));
    assert_eq!(r.header("x-asof-snapshot"), s.id2);
    assert_eq!(r.header("last-modified"), http_date(&s.id2));
    assert_eq!(r.header("cache-control"), "public, max-age=31536000, immutable");
}

#[test]
fn conditional_requests_give_304() {
    let s = setup();
    let path = format!("/debian/{}/{PACKAGES_XZ}", s.id1);
    let xz = fixture_bytes(&format!("apt/v1/{PACKAGES_XZ}"));
    let etag = format!("\"{}\"", sha256_hex(&xz));
    let lm = http_date(&s.id1);

    for headers in
        [[("If-None-Match", etag.as_str())], [("If-None-Match", "\"0000\", *")], [("If-Modified-Since", lm.as_str())]]
    {
        let r = s.server.request("GET", &path, &headers);
        assert_eq!(r.status, 304, "{headers:?}");
        assert!(r.body.is_empty());
        assert_eq!(r.header("etag"), etag);
        assert_eq!(r.header("last-modified"), lm);
        // hyper sends no Content-Length with a 304.
        assert!(!r.headers.contains_key("content-length"), "{:?}", r.headers);
    }

    let r = s.server.request("GET", &path, &[("If-Modified-Since", "Mon, 01 Jan 2001 00:00:00 GMT")]);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, xz);

    // A non-matching If-None-Match wins over a matching If-Modified-Since.
    let r = s.server.request("GET", &path, &[("If-None-Match", "\"other\""), ("If-Modified-Since", &lm)]);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, xz);
}

#[test]
fn ranges_give_206_or_416() {
    let s = setup();
    let path = format!("/debian/{}/{TZ}", s.id1);
    let full = fixture_bytes("apt/v1/pool/main/a/asof-tzdata/asof-tzdata_2025b-0+deb12u1_all.deb");
    let n = full.len();

    let r = s.server.request("GET", &path, &[("Range", "bytes=100-")]);
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &full[100..]);
    assert_eq!(r.header("content-range"), format!("bytes 100-{}/{n}", n - 1));
    assert_eq!(r.header("content-length"), (n - 100).to_string());

    let r = s.server.request("GET", &path, &[("Range", "bytes=-10")]);
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &full[n - 10..]);
    assert_eq!(r.header("content-range"), format!("bytes {}-{}/{n}", n - 10, n - 1));

    let r = s.server.request("GET", &path, &[("Range", "bytes=5-9")]);
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &full[5..10]);
    assert_eq!(r.header("content-range"), format!("bytes 5-9/{n}"));

    // Resume as apt does: Range plus If-Range with the validator it has.
    let etag = format!("\"{}\"", sha256_hex(&full));
    let r = s.server.request("GET", &path, &[("Range", "bytes=100-"), ("If-Range", &etag)]);
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &full[100..]);
    let r = s.server.request("GET", &path, &[("Range", "bytes=100-"), ("If-Range", "\"stale\"")]);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, full);

    let r = s.server.request("GET", &path, &[("Range", &format!("bytes={n}-"))]);
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), format!("bytes */{n}"));
    assert!(r.body.is_empty());
}

#[test]
fn by_hash_serves_any_file_of_the_directory_by_digest() {
    let s = setup();
    for (id, tree) in [(&s.id1, "v1"), (&s.id2, "v2")] {
        let xz = fixture_bytes(&format!("apt/{tree}/{PACKAGES_XZ}"));
        let hash = sha256_hex(&xz);
        let r = s.server.get(&format!("/debian/{id}/dists/stable/main/binary-amd64/by-hash/SHA256/{hash}"));
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.body, xz);
        assert_eq!(r.header("etag"), format!("\"{hash}\""));
    }
    // v2's index is not in v1, and a digest of a file elsewhere is not in this directory.
    let v2_hash = sha256_hex(&fixture_bytes(&format!("apt/v2/{PACKAGES_XZ}")));
    let release_hash = sha256_hex(&fixture_bytes("apt/v1/dists/stable/Release"));
    for hash in [v2_hash, release_hash] {
        let path = format!("dists/stable/main/binary-amd64/by-hash/SHA256/{hash}");
        let r = s.server.get(&format!("/debian/{}/{path}", s.id1));
        r.assert_error(404, &format!("{path} does not exist in debian/{id} (snapshot {id})", id = s.id1));
    }
}

#[test]
fn floor_resolution_and_cache_lifetimes() {
    let s = setup();
    // An ID after the latest snapshot but not yet settled resolves to the latest, briefly cached.
    let soon = id_plus(&s.id2, 1);
    wait_until_past(&soon);
    let r = s.server.get(&format!("/debian/{soon}/dists/stable/Release"));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-asof-snapshot"), s.id2);
    assert_eq!(r.header("cache-control"), "public, max-age=10");
    // The exact latest ID can never change meaning.
    let r = s.server.get(&format!("/debian/{}/dists/stable/Release", s.id2));
    assert_eq!(r.header("cache-control"), "public, max-age=31536000, immutable");
    assert_eq!(r.body, fixture_bytes("apt/v2/dists/stable/Release"));
}

#[test]
fn settled_ids_become_immutable() {
    let s = setup_with(Some("[server]\nsettle_margin_secs = 0\nshort_max_age_secs = 3\n"));
    let later = id_plus(&s.id2, 1);
    wait_until_past(&id_plus(&later, 1));
    let r = s.server.get(&format!("/debian/{later}/dists/stable/Release"));
    assert_eq!(r.status, 200);
    assert_eq!(r.body, fixture_bytes("apt/v2/dists/stable/Release"));
    assert_eq!(r.header("x-asof-snapshot"), s.id2);
    assert_eq!(r.header("cache-control"), "public, max-age=31536000, immutable");
    let r = s.server.get("/debian/");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("cache-control"), "public, max-age=3");
}

const FORMAT_HELP: &str = "snapshot IDs are UTC times written YYYYMMDDTHHMMSSZ, e.g. 20240301T030400Z";

#[test]
fn not_found_cases_answer_404_with_a_reason() {
    let s = setup();
    let (id1, id2) = (&s.id1, &s.id2);
    for (path, message) in [
        (
            "/debian/20000101T000000Z/dists/stable/Release".to_string(),
            format!("20000101T000000Z is before the first snapshot of 'debian' ({id1})"),
        ),
        (
            "/debian/2024-01-01/dists/stable/Release".to_string(),
            format!("'2024-01-01' after archive 'debian' is not a snapshot ID: {FORMAT_HELP}"),
        ),
        (
            "/debian/20241301T000000Z/dists/stable/Release".to_string(),
            format!("'20241301T000000Z' is not a valid date and time: {FORMAT_HELP}"),
        ),
        (
            format!("/debian/{id1}/dists/stable/Nope"),
            format!("dists/stable/Nope does not exist in debian/{id1} (snapshot {id1})"),
        ),
        (format!("/ubuntu/{id1}/dists/stable/Release"), "no archive named 'ubuntu'".to_string()),
        ("/ubuntu/".to_string(), "no archive named 'ubuntu'".to_string()),
        // apt falls back from InRelease to Release only on 404, never on 403 or 5xx.
        (
            format!("/debian/{id1}/dists/unstable/InRelease"),
            format!("dists/unstable/InRelease does not exist in debian/{id1} (snapshot {id1})"),
        ),
    ] {
        s.server.get(&path).assert_error(404, &message);
    }
    // The future: the message names the server's clock when it answered.
    let clock = || chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    let before = clock();
    let r = s.server.get("/debian/29990101T000000Z/dists/stable/Release");
    let after = clock();
    let msg = r.json()["error"].as_str().unwrap().to_string();
    let now = msg
        .strip_prefix("29990101T000000Z is in the future (now is ")
        .and_then(|m| m.strip_suffix(&format!("); the latest snapshot of 'debian' is {id2}")))
        .unwrap_or_else(|| panic!("{msg}"));
    assert!(before.as_str() <= now && now <= after.as_str(), "{before} <= {now} <= {after}");
    r.assert_error(404, &msg);
}

#[test]
fn percent_encoded_paths_decode() {
    let s = setup();
    let tz = fixture_bytes("apt/v1/pool/main/a/asof-tzdata/asof-tzdata_2025b-0+deb12u1_all.deb");
    for p in [TZ, &TZ.replace("%2b", "%2B"), &TZ.replace("%2b", "+"), &TZ.replace("asof", "%61sof")] {
        let r = s.server.get(&format!("/debian/{}/{p}", s.id1));
        assert_eq!(r.status, 200, "{p}");
        assert_eq!(r.body, tz);
    }
}

#[test]
fn traversal_attempts_are_rejected() {
    let s = setup();
    let dots = "'.' and '..' segments are not allowed in request paths";
    let slashes = "slashes inside a segment (encoded '/', or '\\') are not allowed";
    for (p, message) in [
        (format!("/debian/{}/../../../etc/passwd", s.id1), dots),
        (format!("/debian/{}/dists/%2e%2e/%2e%2e/%2e%2e/etc/passwd", s.id1), dots),
        (format!("/debian/{}/dists%2fstable%2fRelease", s.id1), slashes),
        (format!("/debian/{}/..%2f..%2fetc%2fpasswd", s.id1), slashes),
        (format!("/debian/{}/dists/stable/Release%00", s.id1), "control characters are not allowed in request paths"),
        (format!("/debian/{}/..\\..\\etc\\passwd", s.id1), slashes),
    ] {
        let r = s.server.get(&p);
        r.assert_error(400, message);
    }
}

#[test]
fn directory_listings_in_html_and_json() {
    let s = setup();
    let (id1, id2) = (&s.id1, &s.id2);
    let inrelease = fixture_bytes("apt/v2/dists/stable/InRelease");
    for path in [format!("/debian/{id2}/dists/stable"), format!("/debian/{id2}/dists/stable/")] {
        let r = s.server.get(&path);
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), "text/html; charset=utf-8");
        let html = r.text();
        for row in [
            format!(
                "<tr><td><a href=\"/debian/{id2}/dists/stable/InRelease\">InRelease</a></td><td>{}</td><td>{id2}</td><td><code>{}</code></td></tr>",
                inrelease.len(),
                sha256_hex(&inrelease)
            ),
            format!(
                "<tr><td><a href=\"/debian/{id2}/dists/stable/main/\">main/</a></td><td></td><td>{id1}</td><td></td></tr>"
            ),
        ] {
            assert!(html.contains(&row), "{row} in {html}");
        }
    }
    let r = s.server.request("GET", &format!("/debian/{id2}/dists/stable/"), &[("Accept", "application/json")]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), "application/json");
    let j = r.json();
    let names: Vec<&str> = j["entries"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["InRelease", "Release", "Release.gpg", "main"]);
    let release = fixture_bytes("apt/v2/dists/stable/Release");
    assert_eq!(
        j["entries"][1],
        serde_json::json!({"name": "Release", "path": "dists/stable/Release", "kind": "file", "size": release.len(), "sha256": sha256_hex(&release), "since": id2})
    );
    let r = s.server.request("GET", &format!("/debian/{id1}/"), &[("Accept", "application/json")]);
    assert_eq!(r.status, 200);
    let root = r.json();
    let names: Vec<&str> = root["entries"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["dists", "pool"]);
}

#[test]
fn snapshot_and_archive_lists() {
    let s = setup();
    let r = s.server.get("/debian/");
    assert_eq!((r.status, r.header("content-type")), (200, "text/html; charset=utf-8"));
    let html = r.text();
    // Rows link their snapshots (the compare form above names IDs too).
    let row = |id: &str| html.find(&format!("<tr><td><a href=\"/debian/{id}/\">")).unwrap();
    assert!(row(&s.id2) < row(&s.id1), "newest first");
    assert!(html.contains(&format!("<h2>{}-{}</h2>", &s.id1[..4], &s.id1[4..6])), "grouped by month");
    let j = s.server.request("GET", "/debian", &[("Accept", "application/json")]).json();
    assert_eq!(j["snapshots"][0]["id"], s.id2);
    assert_eq!(j["snapshots"][1]["id"], s.id1);
    let j = s.server.request("GET", "/", &[("Accept", "application/json")]).json();
    assert_eq!(j["archives"][0]["name"], "debian");
    assert_eq!(j["archives"][0]["snapshots"], 2);
    let r = s.server.get("/");
    assert_eq!((r.status, r.header("content-type")), (200, "text/html; charset=utf-8"));
    let row = format!("<tr><td><a href=\"/debian/\">debian</a></td><td>2</td><td>{}</td></tr>", s.id2);
    assert!(r.text().contains(&row), "{row} in {}", r.text());
}

#[test]
fn nested_archive_names_and_symlinks() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let tree = tmp.path().join("tree");
    std::fs::create_dir_all(tree.join("dists/bookworm")).unwrap();
    std::fs::write(tree.join("dists/bookworm/Release"), "real release\n").unwrap();
    std::os::unix::fs::symlink("bookworm", tree.join("dists/stable")).unwrap();
    std::os::unix::fs::symlink("Release", tree.join("dists/bookworm/Release.link")).unwrap();
    let id = publish(&data, "repos/prod/ubuntu/22.04", &tree);
    let server = Server::start(&data);
    for p in ["dists/bookworm/Release", "dists/stable/Release", "dists/stable/Release.link"] {
        let r = server.get(&format!("/repos/prod/ubuntu/22.04/{id}/{p}"));
        assert_eq!(r.status, 200, "{p}: {}", r.text());
        assert_eq!(r.text(), "real release\n");
    }
    let r = server.request(
        "GET",
        &format!("/repos/prod/ubuntu/22.04/{id}/dists/stable/"),
        &[("Accept", "application/json")],
    );
    assert_eq!(r.status, 200);
    let entries = r.json()["entries"].clone();
    let names: Vec<&str> = entries.as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Release", "Release.link"]);
    assert_eq!(entries[1]["kind"], "symlink");
    assert_eq!(entries[1]["target"], "Release");
}

#[test]
fn json_api_for_orchestrators() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let ids: Vec<String> =
        ["v1", "v2", "v1"].iter().map(|v| publish(&data, "ubuntu/22.04", &fixtures().join("apt").join(v))).collect();
    let server = Server::start(&data);
    let api = |p: &str| server.get(&format!("/api/v1/archives/ubuntu/22.04{p}"));

    let j = server.get("/api/v1/archives").json();
    assert_eq!(j["archives"][0]["name"], "ubuntu/22.04");
    assert_eq!(j["archives"][0]["latest"], ids[2]);
    assert_eq!(api("").json()["first"], ids[0]);

    let page1 = api("/-/snapshots?limit=2").json();
    let got: Vec<&str> = page1["snapshots"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(got, [ids[2].as_str(), ids[1].as_str()]);
    let cursor = page1["next_cursor"].as_str().unwrap();
    let page2 = api(&format!("/-/snapshots?limit=2&cursor={cursor}")).json();
    assert_eq!(page2["snapshots"][0]["id"], ids[0]);
    assert!(page2["next_cursor"].is_null());
    let asc = api(&format!("/-/snapshots?order=asc&since={}", ids[1])).json();
    assert_eq!(asc["snapshots"].as_array().unwrap().len(), 2);
    assert_eq!(asc["snapshots"][0]["id"], ids[1]);
    // Same tree, same digest, whatever the history.
    assert_eq!(page1["snapshots"][0]["digest"], page2["snapshots"][0]["digest"]);
    assert_ne!(page1["snapshots"][0]["digest"], page1["snapshots"][1]["digest"]);

    let details = api(&format!("/-/snapshots/{}", ids[1])).json();
    assert_eq!(details["previous"], ids[0]);
    assert_eq!(details["next"], ids[2]);
    assert_eq!(details["files"], 9);
    assert_eq!(details["url"], format!("/ubuntu/22.04/{}/", ids[1]));

    let resolved = api(&format!("/-/resolve/{}", id_plus(&ids[2], -100_000).max(ids[0].clone()))).json();
    assert_eq!(resolved["snapshot"]["id"], ids[0]);
    assert_eq!(resolved["exact"], true);
    wait_until_past(&id_plus(&ids[2], 1));
    let later = api(&format!("/-/resolve/{}", id_plus(&ids[2], 1))).json();
    assert_eq!(later["snapshot"]["id"], ids[2]);
    assert_eq!(later["exact"], false);
    assert_eq!(later["final"], false);
    assert_eq!(api("/-/latest").json()["id"], ids[2]);

    // Client mistakes are 4xx with a JSON message saying what is wrong.
    for (p, status, message) in [
        ("/-/snapshots?limit=0", 400, "parameter 'limit' must be between 1 and 1000".to_string()),
        ("/-/snapshots?since=yesterday", 400, format!("parameter 'since': 'yesterday' is not a snapshot ID: {FORMAT_HELP}")),
        ("/-/snapshots?order=sideways", 400, "parameter 'order' must be 'asc' or 'desc', not 'sideways'".to_string()),
        (
            "/-/snapshots?bogus=1",
            400,
            "Failed to deserialize query string: bogus: unknown field `bogus`, expected one of `since`, `until`, `limit`, `cursor`, `order`".to_string(),
        ),
        ("/-/snapshots/20240101T000000Z", 404, "archive 'ubuntu/22.04' has no snapshot 20240101T000000Z".to_string()),
        (
            "/-/resolve/20000101T000000Z",
            404,
            format!("20000101T000000Z is before the first snapshot of 'ubuntu/22.04' ({})", ids[0]),
        ),
        ("/-/resolve/not-an-id", 404, format!("'not-an-id' is not a snapshot ID: {FORMAT_HELP}")),
        (
            "/-/frobnicate",
            404,
            "unknown API action 'frobnicate': expected snapshots, snapshots/<ID>, snapshots/<ID>/manifest, resolve/<ID>, latest, diff, packages, packages/<name>, packages/<name>/first, sources/<name> or space".to_string(),
        ),
    ] {
        api(p).assert_error(status, &message);
    }
    server.get("/api/v1/archives/nope/-/latest").assert_error(404, "no archive named 'nope'");
}

#[test]
fn probes_metrics_and_methods() {
    let s = setup();
    let r = s.server.get("/healthz");
    assert_eq!((r.status, r.text()), (200, "ok\n".to_string()));
    let tz = fixture_bytes("apt/v1/pool/main/a/asof-tzdata/asof-tzdata_2025b-0+deb12u1_all.deb");
    assert_eq!(s.server.get(&format!("/debian/{}/{TZ}", s.id1)).body, tz);
    assert_eq!(s.server.get("/debian/20000101T000000Z/x").status, 404);
    let m = s.server.get("/metrics").text();
    let sample = |name: &str| m.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')).map(str::to_string);
    // The request for /metrics itself is counted once it is answered.
    assert_eq!(sample("asof_http_requests_total{status=\"200\"}").as_deref(), Some("2"), "{m}");
    assert_eq!(sample("asof_http_requests_total{status=\"404\"}").as_deref(), Some("1"), "{m}");
    // Lookups that found a snapshot are timed; the one before the first snapshot is not.
    assert_eq!(sample("asof_lookup_duration_seconds_count").as_deref(), Some("1"), "{m}");
    assert_eq!(sample("asof_http_response_body_bytes_total"), Some(tz.len().to_string()), "{m}");
    let r = s.server.request("POST", &format!("/debian/{}/{TZ}", s.id1), &[("Content-Length", "0")]);
    r.assert_error(405, "method not allowed: only GET and HEAD are served here");
    assert_eq!(r.header("allow"), "GET, HEAD");
}

#[test]
fn many_concurrent_requests_while_publishing() {
    let s = setup();
    let data = s.server.data.clone();
    let publisher = std::thread::spawn(move || {
        (0..5)
            .map(|i| publish(&data, "debian", &fixtures().join("apt").join(if i % 2 == 0 { "v1" } else { "v2" })))
            .collect::<Vec<_>>()
    });
    let expected = fixture_bytes("apt/v1/dists/stable/Release");
    std::thread::scope(|scope| {
        for _ in 0..16 {
            scope.spawn(|| {
                for _ in 0..25 {
                    let r = s.server.get(&format!("/debian/{}/dists/stable/Release", s.id1));
                    assert_eq!(r.status, 200);
                    assert_eq!(r.body, expected);
                }
            });
        }
    });
    let new_ids = publisher.join().unwrap();
    let mut all = vec![s.id1.clone(), s.id2.clone()];
    all.extend(new_ids);
    assert!(all.windows(2).all(|w| w[0] < w[1]), "IDs strictly increase: {all:?}");
}

#[test]
fn root_symlinks_and_hostile_paths() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let tree = tmp.path().join("tree");
    std::fs::create_dir_all(tree.join("dists/bookworm")).unwrap();
    std::fs::write(tree.join("dists/bookworm/Release"), "r\n").unwrap();
    // Ubuntu's archive has `ubuntu -> .`; Debian's `dists/stable -> bookworm`.
    std::os::unix::fs::symlink(".", tree.join("ubuntu")).unwrap();
    std::os::unix::fs::symlink("bookworm", tree.join("dists/s")).unwrap();
    let id = publish(&data, "ubuntu", &tree);
    let server = Server::start(&data);
    let r = server.get(&format!("/ubuntu/{id}/ubuntu/dists/bookworm/Release"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), "r\n");
    assert_eq!(server.get(&format!("/ubuntu/{id}/ubuntu/ubuntu/dists/s/Release")).body, b"r\n");
    // A path that becomes too long once a symlinked directory is expanded names nothing.
    let long = format!("/ubuntu/{id}/dists/s/{}", "x".repeat(4090));
    server.get(&long).assert_error(404, "path is longer than 4096 bytes");
    // A leap second is not an ID.
    server
        .get("/ubuntu/20261123T004260Z/dists/bookworm/Release")
        .assert_error(404, &format!("'20261123T004260Z' is not a valid date and time: {FORMAT_HELP}"));
    // A very long path without any ID is answered at once, with 404.
    server
        .get(&format!("/{}", "a/".repeat(20_000)))
        .assert_error(404, &format!("no archive named '{}'", "a/".repeat(100)));
    // Names the server's own routes use cannot be archives.
    let out = asof(&data, &["publish", "api/v1/archives/x", tree.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: invalid archive name 'api/v1/archives/x': archive names cannot start with 'api': the server uses that path itself\n"
    );
}
