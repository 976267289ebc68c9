//! Scrub: `asof verify --sample/--since` re-hashes a rotating share of the blobs, a
//! corrupt blob is quarantined and its snapshots flagged (API, pages, 503), a mirrored
//! one is fetched again from upstream, and `serve` scrubs on its `[scrub]` schedule.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use asof::domain::Digest;
use common::tree::copy_tree;
use common::upstream::Upstream;
use common::*;
use serde_json::{Value, json};

fn blob_path(data: &Path, d: &Digest) -> PathBuf {
    asof::blob::LocalBlobStore::open(data.join("blobs")).unwrap().path_of(d)
}

/// Overwrites a stored blob's bytes, as a failing disk would.
fn corrupt(data: &Path, d: &Digest, bytes: &[u8]) {
    let path = blob_path(data, d);
    let mut perms = std::fs::metadata(&path).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&path, perms).unwrap();
    std::fs::write(&path, bytes).unwrap();
}

fn verify_json(data: &Path, args: &[&str]) -> (Option<i32>, Value) {
    let mut all = vec!["verify", "--json"];
    all.extend_from_slice(args);
    let out = asof(data, &all);
    let report =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code(), report)
}

fn write_tree(dir: &Path, files: &[(String, Vec<u8>)]) {
    std::fs::create_dir_all(dir).unwrap();
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

fn rfc3339(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0).unwrap().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[test]
fn a_sampled_verify_covers_its_share_of_the_hash_space_and_rotates_through_every_blob() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let files: Vec<(String, Vec<u8>)> =
        (0..40).map(|i| (format!("file-{i:02}.txt"), format!("content number {i}\n").into_bytes())).collect();
    write_tree(&tmp.path().join("t1"), &files);
    publish(&data, "demo", &tmp.path().join("t1"));

    // A 25% share is a quarter of the hash space: the first two bits of the digest.
    let quarter_of = |q: u8| -> (u64, u64) {
        let mine: Vec<_> = files.iter().filter(|(_, b)| Digest::of(b).as_bytes()[0] >> 6 == q).collect();
        (mine.len() as u64, mine.iter().map(|(_, b)| b.len() as u64).sum())
    };
    let mut total = 0;
    for q in [0, 1, 2, 3, 0] {
        let (code, report) = verify_json(&data, &["--sample", "25%"]);
        assert_eq!(code, Some(0), "{report}");
        let (blobs, bytes) = quarter_of(q);
        assert_eq!((report["blobs_verified"].as_u64(), report["bytes_verified"].as_u64()), (Some(blobs), Some(bytes)));
        assert_eq!(report["share_percent"], 25.0);
        total += blobs;
    }
    assert_eq!(total - quarter_of(0).0, 40, "four runs of 25% verified every blob exactly once");

    // --since: only blobs not verified since then. All were, just now; three new ones not.
    let (_, report) = verify_json(&data, &["--since", "1h"]);
    assert_eq!(report["blobs_verified"], 0);
    let newer: Vec<(String, Vec<u8>)> =
        (40..43).map(|i| (format!("file-{i:02}.txt"), format!("content number {i}\n").into_bytes())).collect();
    write_tree(&tmp.path().join("t1"), &newer);
    publish(&data, "demo", &tmp.path().join("t1"));
    let (code, report) = verify_json(&data, &["--since", "1h"]);
    assert_eq!(
        (code, report["blobs_verified"].as_u64(), report["share_percent"].clone()),
        (Some(0), Some(3), Value::Null)
    );
    let (_, report) = verify_json(&data, &["--since", "20200101T000000Z"]);
    assert_eq!(report["blobs_verified"], 0, "everything was verified after 2020");
}

#[test]
fn bad_sample_and_since_values_are_refused_precisely() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let cases = [
        (
            vec!["--sample", "150%"],
            "error: invalid value '150%' for '--sample <P>': a share must be a percentage above 0 and at most 100, such as 5% or 5; got \"150%\"",
        ),
        (
            vec!["--sample", "0"],
            "error: invalid value '0' for '--sample <P>': a share must be a percentage above 0 and at most 100, such as 5% or 5; got \"0\"",
        ),
        (
            vec!["--since", "yesterday"],
            "error: invalid value 'yesterday' for '--since <WHEN>': expected a duration such as 7d, an RFC 3339 time such as 2026-11-01T00:00:00Z, or a snapshot ID such as 20261101T000000Z; got \"yesterday\"",
        ),
        (
            vec!["--since", "2999-01-01T00:00:00Z"],
            "error: invalid value '2999-01-01T00:00:00Z' for '--since <WHEN>': \"2999-01-01T00:00:00Z\" is in the future: every blob would count as not verified since then",
        ),
    ];
    for (args, message) in cases {
        let mut all = vec!["verify"];
        all.extend_from_slice(&args);
        let out = asof(&data, &all);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!((out.status.code(), stderr.lines().next()), (Some(2), Some(message)), "{stderr}");
    }
}

/// An archive `demo` with `a.txt` and `b.txt`, the blob of `b.txt` overwritten.
fn damaged_store(tmp: &Path) -> (PathBuf, String, Digest) {
    let data = tmp.join("data");
    write_tree(&tmp.join("t"), &[("a.txt".into(), b"alpha\n".to_vec()), ("b.txt".into(), b"bravo\n".to_vec())]);
    let id = publish(&data, "demo", &tmp.join("t"));
    let b = Digest::of(b"bravo\n");
    corrupt(&data, &b, b"BRAVO\n");
    (data, id, b)
}

#[test]
fn a_corrupt_blob_is_quarantined_its_snapshot_flagged_and_its_file_answers_503() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, id, b) = damaged_store(tmp.path());

    let (code, report) = verify_json(&data, &["--sample", "100%"]);
    assert_eq!(code, Some(1), "a quarantined blob fails the run: {report}");
    assert_eq!(report["blobs_verified"], 2);
    let found = &report["found"][0];
    let found_at = found["found_at"].as_i64().unwrap();
    // The bad bytes are kept aside, under the digest and the time they were moved.
    let aside: Vec<PathBuf> =
        std::fs::read_dir(data.join("blobs/quarantine")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(aside.len(), 1);
    assert!(aside[0].file_name().unwrap().to_str().unwrap().starts_with(&format!("{}.", b.hex())));
    assert_eq!(std::fs::read(&aside[0]).unwrap(), b"BRAVO\n");
    assert!(!blob_path(&data, &b).exists());
    let detail =
        format!("content hashes to {}; the bytes were moved to {}", Digest::of(b"BRAVO\n"), aside[0].display());
    let expected = json!({"sha256": b.hex(), "kind": "corrupt", "found_at": found_at, "size": 6, "detail": detail, "refetch": null});
    assert_eq!((&report["found"], &report["quarantined"]), (&json!([expected]), &json!([expected])));

    // The full verify lists it, and fails, while it is quarantined.
    let out = asof(&data, &["verify"]);
    assert_eq!(out.status.code(), Some(1));
    let when = chrono::DateTime::from_timestamp(found_at, 0).unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("quarantined blob {b}: corrupt since {when}: {detail}\n"));

    let server = Server::start(&data);
    let list: Value = serde_json::from_slice(&server.get("/api/v1/archives/demo/-/snapshots").body).unwrap();
    let flag = json!([{"path": "b.txt", "sha256": b.hex(), "problem": "corrupt", "found_at": rfc3339(found_at)}]);
    assert_eq!(list["snapshots"][0]["damaged"], flag);
    let one: Value =
        serde_json::from_slice(&server.get(&format!("/api/v1/archives/demo/-/snapshots/{id}")).body).unwrap();
    assert_eq!(one["damaged"], flag);

    let r = server.get(&format!("/demo/{id}/b.txt"));
    let message = format!(
        "this file cannot be served: its stored bytes (sha256 {}) were found corrupt on {} and are quarantined until good bytes are restored",
        b.hex(),
        rfc3339(found_at)
    );
    assert_eq!((r.status, r.header("retry-after")), (503, "3600"));
    assert_eq!(serde_json::from_slice::<Value>(&r.body).unwrap(), json!({"error": message, "status": 503}));
    assert_eq!(server.request("HEAD", &format!("/demo/{id}/b.txt"), &[]).status, 503);
    let a = server.get(&format!("/demo/{id}/a.txt"));
    assert_eq!((a.status, a.body.as_slice()), (200, b"alpha\n".as_slice()));

    let html = [("Accept", "text/html")];
    let page = server.request("GET", "/demo/", &html).text();
    assert!(page.contains("Damaged snapshots: </strong>1 snapshot(s) on this page"), "{page}");
    assert!(page.contains("damaged (1)"), "{page}");
    let page = server.request("GET", &format!("/demo/{id}/"), &html).text();
    assert!(
        page.contains(&format!(
            "Damaged snapshot: </strong>1 file(s) of this snapshot cannot be served (their stored bytes failed verification and are quarantined):</p><ul><li><code>b.txt</code> (corrupt, found {})</li></ul>",
            rfc3339(found_at)
        )),
        "{page}"
    );
    drop(server);

    // What an operator does: put the good bytes back (here by publishing them again);
    // the next run finds them intact and lifts the quarantine.
    publish(&data, "demo", &tmp.path().join("t"));
    let (code, report) = verify_json(&data, &["--sample", "100%"]);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["restored"], json!([{"sha256": b.hex(), "from": "the blob store"}]));
    assert_eq!(report["quarantined"], json!([]));
    verify_clean(&data);
    let server = Server::start(&data);
    let list: Value = serde_json::from_slice(&server.get("/api/v1/archives/demo/-/snapshots").body).unwrap();
    assert_eq!(list["snapshots"][1]["id"], id.as_str());
    assert_eq!(list["snapshots"][1].get("damaged"), None, "{list}");
    let r = server.get(&format!("/demo/{id}/b.txt"));
    assert_eq!((r.status, r.body.as_slice()), (200, b"bravo\n".as_slice()));
    // The bad bytes stay where they were put: nothing deletes them automatically.
    assert_eq!(std::fs::read(&aside[0]).unwrap(), b"BRAVO\n");
}

#[test]
fn serve_scrubs_on_its_schedule_and_counts_what_it_found() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, id, b) = damaged_store(tmp.path());
    let config = tmp.path().join("asof.toml");
    std::fs::write(&config, "[scrub]\ninterval = \"1s\"\nshare = \"100%\"\n").unwrap();
    let server = Server::start_with(&data, &["--config", config.to_str().unwrap()]);

    let deadline = Instant::now() + Duration::from_secs(60);
    let metrics = loop {
        let m = server.get("/metrics").text();
        if m.lines().any(|l| l.starts_with("asof_scrub_last_run_timestamp_seconds ") && !l.ends_with(" 0")) {
            break m;
        }
        assert!(Instant::now() < deadline, "no scrub run within 60 s:\n{m}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let value = |name: &str| -> f64 {
        let line = metrics.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_else(|| panic!("{name}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    // Found once, however many runs have seen it since.
    assert_eq!(value("asof_scrub_problems_total{kind=\"corrupt\"}"), 1.0);
    assert_eq!(value("asof_scrub_problems_total{kind=\"missing\"}"), 0.0);
    assert_eq!(value("asof_scrub_quarantined_blobs"), 1.0);
    // The first run hashed both blobs (6 bytes each), each later one the good one.
    let blobs = value("asof_scrub_verified_blobs_total");
    assert!(blobs >= 2.0, "{metrics}");
    assert_eq!(value("asof_scrub_verified_bytes_total"), 6.0 * blobs);
    let now = chrono::Utc::now().timestamp() as f64;
    assert!((now - 60.0..=now + 1.0).contains(&value("asof_scrub_last_run_timestamp_seconds")));

    let r = server.get(&format!("/demo/{id}/b.txt"));
    assert_eq!((r.status, r.header("retry-after")), (503, "3600"));
    let list: Value = serde_json::from_slice(&server.get("/api/v1/archives/demo/-/snapshots").body).unwrap();
    assert_eq!(list["snapshots"][0]["damaged"][0]["sha256"], b.hex());
}

const HELLO: &str = "pool/main/h/hello-asof/hello-asof_1.0-1_all.deb";

fn mirror(data: &Path, upstream: &str) -> Value {
    let out = common::upstream::mirror_stable(data, upstream, &fixtures().join("keys/test-signing.gpg"), &[]);
    assert!(out.status.success(), "mirror failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_corrupt_mirrored_blob_is_fetched_again_from_upstream_or_stays_quarantined_when_upstream_lost_it() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let up = tmp.path().join("upstream");
    copy_tree(&fixtures().join("apt/v1"), &up);
    let upstream = Upstream::start(up.clone());
    let id = mirror(&data, &upstream.url)["snapshot"].as_str().unwrap().to_string();
    let original = std::fs::read(up.join(HELLO)).unwrap();
    let d = Digest::of(&original);
    let url = format!("{}{HELLO}", upstream.url);

    corrupt(&data, &d, b"not a package");
    let (code, report) = verify_json(&data, &["--sample", "100%"]);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["found"][0]["sha256"], d.hex());
    assert_eq!(report["restored"], json!([{"sha256": d.hex(), "from": url}]));
    assert_eq!(report["quarantined"], json!([]));
    assert_eq!(std::fs::read(blob_path(&data, &d)).unwrap(), original);
    let server = Server::start(&data);
    let r = server.get(&format!("/debian/{id}/{HELLO}"));
    assert_eq!((r.status, r.body == original), (200, true));
    let list: Value = serde_json::from_slice(&server.get("/api/v1/archives/debian/-/snapshots").body).unwrap();
    assert_eq!(list["snapshots"][0]["id"], id.as_str());
    assert_eq!(list["snapshots"][0].get("damaged"), None, "the flag is lifted: {list}");
    drop(server);

    // Upstream lost it: it stays quarantined, and says why.
    corrupt(&data, &d, b"not a package");
    std::fs::remove_file(up.join(HELLO)).unwrap();
    let (code, report) = verify_json(&data, &["--sample", "100%"]);
    assert_eq!(code, Some(1), "{report}");
    assert_eq!(report["quarantined"][0]["refetch"], format!("upstream no longer has it: {url}: not found"));
    let server = Server::start(&data);
    assert_eq!(server.get(&format!("/debian/{id}/{HELLO}")).status, 503);
    drop(server);

    // Upstream has other bytes under that name: not taken.
    let mut other = original.clone();
    other[0] ^= 0xff;
    std::fs::write(up.join(HELLO), &other).unwrap();
    let (code, report) = verify_json(&data, &["--sample", "100%"]);
    assert_eq!(code, Some(1), "{report}");
    assert_eq!(
        report["quarantined"][0]["refetch"],
        format!("upstream no longer has it: {url}: different bytes (SHA-256 {})", Digest::of(&other))
    );
    assert!(!blob_path(&data, &d).exists());

    // Back upstream: the next run restores it.
    std::fs::write(up.join(HELLO), &original).unwrap();
    let (code, report) = verify_json(&data, &["--sample", "5%"]);
    assert_eq!((code, &report["restored"][0]["from"]), (Some(0), &json!(url)), "{report}");
    assert_eq!(std::fs::read(blob_path(&data, &d)).unwrap(), original);

    // An index whose name upstream has moved on is still found by its hash.
    let index = "dists/stable/main/binary-amd64/Packages";
    let bytes = std::fs::read(up.join(index)).unwrap();
    let p = Digest::of(&bytes);
    corrupt(&data, &p, b"Package: nonsense\n");
    std::fs::write(up.join(index), b"Package: newer\n").unwrap();
    let by_hash = up.join("dists/stable/main/binary-amd64/by-hash/SHA256");
    std::fs::create_dir_all(&by_hash).unwrap();
    std::fs::write(by_hash.join(p.hex()), &bytes).unwrap();
    let (code, report) = verify_json(&data, &["--sample", "100%"]);
    let from = format!("{}dists/stable/main/binary-amd64/by-hash/SHA256/{}", upstream.url, p.hex());
    assert_eq!((code, &report["restored"]), (Some(0), &json!([{"sha256": p.hex(), "from": from}])), "{report}");
    let server = Server::start(&data);
    let r = server.get(&format!("/debian/{id}/{index}"));
    assert_eq!((r.status, r.body == bytes), (200, true));
}

#[test]
fn hashing_keeps_to_the_byte_rate_asked_for() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_tree(&tmp.path().join("t"), &[("big".into(), vec![7u8; 3000])]);
    publish(&data, "demo", &tmp.path().join("t"));
    let start = Instant::now();
    let (code, report) = verify_json(&data, &["--sample", "100%", "--max-bytes-per-sec", "2000"]);
    assert_eq!((code, report["bytes_verified"].as_u64()), (Some(0), Some(3000)));
    // 3000 bytes at 2000 per second: at least 1.5 s.
    assert!(start.elapsed() >= Duration::from_millis(1500), "{:?}", start.elapsed());
    let out = asof(&data, &["verify", "--sample", "5%", "--max-bytes-per-sec", "0"]);
    assert_eq!(
        (out.status.code(), String::from_utf8_lossy(&out.stderr).trim_end()),
        (Some(2), "error: --max-bytes-per-sec must be at least 1")
    );
}

#[test]
fn a_missing_blob_is_quarantined_as_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, id, _) = damaged_store(tmp.path());
    let a = Digest::of(b"alpha\n");
    std::fs::remove_file(blob_path(&data, &a)).unwrap();
    let (code, report) = verify_json(&data, &["--sample", "100%"]);
    assert_eq!(code, Some(1), "{report}");
    let kinds: Vec<(&str, &str)> = report["quarantined"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| (q["sha256"].as_str().unwrap(), q["kind"].as_str().unwrap()))
        .collect();
    let (a_hex, b_hex) = (a.hex(), Digest::of(b"bravo\n").hex());
    let mut expected = vec![(a_hex.as_str(), "missing"), (b_hex.as_str(), "corrupt")];
    expected.sort();
    assert_eq!(kinds, expected);
    let missing = report["quarantined"].as_array().unwrap().iter().find(|q| q["kind"] == "missing").unwrap();
    assert_eq!(
        missing["detail"],
        format!("no bytes in the blob store (expected at {})", blob_path(&data, &a).display())
    );
    let server = Server::start(&data);
    let r = server.get(&format!("/demo/{id}/a.txt"));
    assert_eq!(r.status, 503);
    let message = format!(
        "this file cannot be served: its stored bytes (sha256 {a_hex}) were found missing on {} and are quarantined until good bytes are restored",
        rfc3339(missing["found_at"].as_i64().unwrap())
    );
    assert_eq!(serde_json::from_slice::<Value>(&r.body).unwrap(), json!({"error": message, "status": 503}));
}

#[test]
fn a_quarantined_blob_no_snapshot_references_any_more_is_forgotten_and_its_bytes_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, _, b) = damaged_store(tmp.path());
    assert_eq!(verify_json(&data, &["--sample", "100%"]).0, Some(1));
    // As when retention deletes the only snapshot that held it (its reference count).
    let db = rusqlite::Connection::open(data.join("asof.db")).unwrap();
    db.execute("UPDATE blob_archives SET rows = 0 WHERE sha256 = ?1", [&b.as_bytes()[..]]).unwrap();
    let (code, report) = verify_json(&data, &["--sample", "100%"]);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["restored"], json!([{"sha256": b.hex(), "from": "no snapshot references it any more"}]));
    assert_eq!((report["blobs_verified"].as_u64(), &report["quarantined"]), (Some(1), &json!([])));
    let aside: Vec<_> = std::fs::read_dir(data.join("blobs/quarantine")).unwrap().collect();
    assert_eq!(aside.len(), 1, "the bad bytes stay for the operator");
}
