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
    assert!(r.header("last-modified").ends_with("GMT"), "{:?}", r.headers);
    assert!(r.header("content-encoding").is_empty());
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
}

#[test]
fn conditional_requests_give_304() {
    let s = setup();
    let path = format!("/debian/{}/{PACKAGES_XZ}", s.id1);
    let first = s.server.get(&path);
    let etag = first.header("etag").to_string();
    let lm = first.header("last-modified").to_string();

    let r = s.server.request("GET", &path, &[("If-None-Match", &etag)]);
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    assert_eq!(r.header("etag"), etag);

    let r = s.server.request("GET", &path, &[("If-None-Match", "\"0000\", *")]);
    assert_eq!(r.status, 304);

    let r = s.server.request("GET", &path, &[("If-Modified-Since", &lm)]);
    assert_eq!(r.status, 304);

    let r = s.server.request("GET", &path, &[("If-Modified-Since", "Mon, 01 Jan 2001 00:00:00 GMT")]);
    assert_eq!(r.status, 200);

    // A non-matching If-None-Match wins over a matching If-Modified-Since.
    let r = s.server.request("GET", &path, &[("If-None-Match", "\"other\""), ("If-Modified-Since", &lm)]);
    assert_eq!(r.status, 200);
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

    let r = s.server.request("GET", &path, &[("Range", "bytes=5-9")]);
    assert_eq!(r.body, &full[5..10]);

    // Resume as apt does: Range plus If-Range with the validator it has.
    let etag = format!("\"{}\"", sha256_hex(&full));
    let r = s.server.request("GET", &path, &[("Range", "bytes=100-"), ("If-Range", &etag)]);
    assert_eq!(r.status, 206);
    let r = s.server.request("GET", &path, &[("Range", "bytes=100-"), ("If-Range", "\"stale\"")]);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, full);

    let r = s.server.request("GET", &path, &[("Range", &format!("bytes={n}-"))]);
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), format!("bytes */{n}"));
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
    let r = s.server.get(&format!("/debian/{}/dists/stable/main/binary-amd64/by-hash/SHA256/{v2_hash}", s.id1));
    assert_eq!(r.status, 404);
    let release_hash = sha256_hex(&fixture_bytes("apt/v1/dists/stable/Release"));
    let r = s.server.get(&format!("/debian/{}/dists/stable/main/binary-amd64/by-hash/SHA256/{release_hash}", s.id1));
    assert_eq!(r.status, 404);
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
    assert_eq!(r.header("x-asof-snapshot"), s.id2);
    assert_eq!(r.header("cache-control"), "public, max-age=31536000, immutable");
    let r = s.server.get("/debian/");
    assert_eq!(r.header("cache-control"), "public, max-age=3");
}

fn assert_json_404(r: &Response, needle: &str) {
    assert_eq!(r.status, 404, "{}", r.text());
    let msg = r.json()["error"].as_str().unwrap().to_string();
    assert!(msg.contains(needle), "{msg:?} should mention {needle:?}");
}

#[test]
fn not_found_cases_answer_404_with_a_reason() {
    let s = setup();
    assert_json_404(&s.server.get("/debian/20000101T000000Z/dists/stable/Release"), "before the first snapshot");
    assert_json_404(&s.server.get("/debian/29990101T000000Z/dists/stable/Release"), "in the future");
    assert_json_404(&s.server.get("/debian/2024-01-01/dists/stable/Release"), "YYYYMMDDTHHMMSSZ");
    assert_json_404(&s.server.get("/debian/20241301T000000Z/dists/stable/Release"), "YYYYMMDDTHHMMSSZ");
    assert_json_404(&s.server.get(&format!("/debian/{}/dists/stable/Nope", s.id1)), "does not exist");
    assert_json_404(&s.server.get(&format!("/ubuntu/{}/dists/stable/Release", s.id1)), "no archive");
    assert_json_404(&s.server.get("/ubuntu/"), "no archive");
    // apt falls back from InRelease to Release only on 404, never on 403 or 5xx.
    let r = s.server.get(&format!("/debian/{}/dists/unstable/InRelease", s.id1));
    assert_eq!(r.status, 404);
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
    for p in [
        format!("/debian/{}/../../../etc/passwd", s.id1),
        format!("/debian/{}/dists/%2e%2e/%2e%2e/%2e%2e/etc/passwd", s.id1),
        format!("/debian/{}/dists%2fstable%2fRelease", s.id1),
        format!("/debian/{}/..%2f..%2fetc%2fpasswd", s.id1),
        format!("/debian/{}/dists/stable/Release%00", s.id1),
        format!("/debian/{}/..\\..\\etc\\passwd", s.id1),
    ] {
        let r = s.server.get(&p);
        assert_eq!(r.status, 400, "{p}: {}", r.text());
        assert!(r.json()["error"].is_string());
        assert!(!r.text().contains("root:"), "{p}");
    }
}

#[test]
fn directory_listings_in_html_and_json() {
    let s = setup();
    for path in [format!("/debian/{}/dists/stable", s.id2), format!("/debian/{}/dists/stable/", s.id2)] {
        let r = s.server.get(&path);
        assert_eq!(r.status, 200);
        assert!(r.header("content-type").starts_with("text/html"));
        let html = r.text();
        assert!(html.contains("InRelease") && html.contains("main/"), "{html}");
    }
    let r = s.server.request("GET", &format!("/debian/{}/dists/stable/", s.id2), &[("Accept", "application/json")]);
    let j = r.json();
    let names: Vec<&str> = j["entries"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["InRelease", "Release", "Release.gpg", "main"]);
    let release = &j["entries"][1];
    assert_eq!(release["kind"], "file");
    assert_eq!(release["sha256"], sha256_hex(&fixture_bytes("apt/v2/dists/stable/Release")));
    assert_eq!(release["size"], fixture_bytes("apt/v2/dists/stable/Release").len());
    let root = s.server.request("GET", &format!("/debian/{}/", s.id1), &[("Accept", "application/json")]).json();
    let names: Vec<&str> = root["entries"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["dists", "pool"]);
}

#[test]
fn snapshot_and_archive_lists() {
    let s = setup();
    let html = s.server.get("/debian/").text();
    let (p2, p1) = (html.find(&s.id2).unwrap(), html.find(&s.id1).unwrap());
    assert!(p2 < p1, "newest first");
    assert!(html.contains(&format!("<h2>{}-{}</h2>", &s.id1[..4], &s.id1[4..6])), "grouped by month");
    let j = s.server.request("GET", "/debian", &[("Accept", "application/json")]).json();
    assert_eq!(j["snapshots"][0]["id"], s.id2);
    assert_eq!(j["snapshots"][1]["id"], s.id1);
    let j = s.server.request("GET", "/", &[("Accept", "application/json")]).json();
    assert_eq!(j["archives"][0]["name"], "debian");
    assert_eq!(j["archives"][0]["snapshots"], 2);
    assert!(s.server.get("/").text().contains("href=\"/debian/\""));
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
    assert_eq!(r.json()["entries"][0]["name"], "Release");
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

    // Client mistakes are 4xx with a JSON message.
    for (p, status) in [
        ("/-/snapshots?limit=0", 400),
        ("/-/snapshots?since=yesterday", 400),
        ("/-/snapshots?order=sideways", 400),
        ("/-/snapshots?bogus=1", 400),
        ("/-/snapshots/20240101T000000Z", 404),
        ("/-/resolve/20000101T000000Z", 404),
        ("/-/resolve/not-an-id", 404),
        ("/-/frobnicate", 404),
    ] {
        let r = api(p);
        assert_eq!(r.status, status, "{p}: {}", r.text());
        assert!(r.json()["error"].is_string(), "{p}");
    }
    assert_eq!(server.get("/api/v1/archives/nope/-/latest").status, 404);
}

#[test]
fn probes_metrics_and_methods() {
    let s = setup();
    assert_eq!(s.server.get("/healthz").status, 200);
    s.server.get(&format!("/debian/{}/{TZ}", s.id1));
    s.server.get("/debian/20000101T000000Z/x");
    let m = s.server.get("/metrics").text();
    assert!(m.contains("asof_http_requests_total{status=\"200\"}"), "{m}");
    assert!(m.contains("asof_http_requests_total{status=\"404\"}"), "{m}");
    assert!(m.contains("asof_lookup_duration_seconds_count"), "{m}");
    let served: f64 =
        m.lines().find_map(|l| l.strip_prefix("asof_http_response_body_bytes_total ")).unwrap().parse().unwrap();
    assert!(served >= 1012.0, "{served}");
    let r = s.server.request("POST", &format!("/debian/{}/{TZ}", s.id1), &[("Content-Length", "0")]);
    assert_eq!(r.status, 405);
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
    assert_eq!(server.get(&format!("/ubuntu/{id}/ubuntu/ubuntu/dists/s/Release")).status, 200);
    // A path that becomes too long once a symlinked directory is expanded names nothing.
    let long = format!("/ubuntu/{id}/dists/s/{}", "x".repeat(4090));
    assert_eq!(server.get(&long).status, 404);
    // A leap second is not an ID.
    assert_json_404(&server.get("/ubuntu/20261123T004260Z/dists/bookworm/Release"), "YYYYMMDDTHHMMSSZ");
    // A very long path without any ID is answered at once, with 404.
    assert_eq!(server.get(&format!("/{}", "a/".repeat(20_000))).status, 404);
    // Names the server's own routes use cannot be archives.
    let out = asof(&data, &["publish", "api/v1/archives/x", tree.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot start with 'api'"));
}
