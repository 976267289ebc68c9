//! Black-box: `asof takedown` against a running `asof serve` (effective at once, kept across
//! restarts, undone to the exact bytes), purge and `asof verify`, the audit log, and the
//! real apt-get failing to fetch a taken-down package with the server's status.

mod common;

use std::process::Output;

use common::apt::Apt;
use common::*;

const HELLO: &str = "pool/main/h/hello-asof/hello-asof_1.0-1_all.deb";
const REASON: &str = "court order 2026-17";

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs asof and requires success; returns stdout.
#[track_caller]
fn ok(data: &std::path::Path, args: &[&str]) -> String {
    let out = asof(data, args);
    assert!(out.status.success(), "asof {args:?} failed: {}{}", stdout(&out), stderr(&out));
    stdout(&out)
}

/// Runs asof and requires exit 2 with exactly this error line.
#[track_caller]
fn refused(data: &std::path::Path, args: &[&str], error: &str) {
    let out = asof(data, args);
    assert_eq!((out.status.code(), stderr(&out)), (Some(2), format!("error: {error}\n")), "asof {args:?}");
    assert_eq!(stdout(&out), "");
}

#[track_caller]
fn assert_taken_down(r: &Response, status: u16, path: &str, id: i64) {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!((r.header("content-type"), r.header("cache-control")), ("application/json", "no-cache"));
    let error = format!("{path} is taken down: {REASON}");
    assert_eq!(r.json(), serde_json::json!({"error": error, "status": status, "reason": REASON, "takedown": id}));
}

#[test]
fn a_takedown_applies_to_a_running_server_survives_a_restart_and_undo_restores_the_exact_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let id = publish(&data, "debian", &fixtures().join("apt/v1"));
    let hello = std::fs::read(fixtures().join("apt/v1").join(HELLO)).unwrap();
    let (pinned, live) = (format!("/debian/{id}/{HELLO}"), format!("/debian/{HELLO}"));
    let server = Server::start(&data);
    assert!(server.get(&pinned).body == hello);

    let out = ok(&data, &["takedown", "debian", HELLO, "--reason", REASON, "--status", "451"]);
    assert_eq!(out, format!("takedown 1: debian/{HELLO} taken down (451 {REASON})\n"));
    // The very next request of the running server sees it.
    assert_taken_down(&server.get(&pinned), 451, HELLO, 1);
    assert_taken_down(&server.get(&live), 451, HELLO, 1);
    drop(server);

    let server = Server::start(&data);
    assert_taken_down(&server.get(&pinned), 451, HELLO, 1);
    let out = ok(&data, &["takedown", "--undo", "1"]);
    assert_eq!(out, format!("takedown 1: debian/{HELLO} undone: served again (451 {REASON})\n"));
    let r = server.get(&pinned);
    assert_eq!((r.status, r.header("cache-control")), (200, "public, max-age=31536000, immutable"));
    assert!(r.body == hello, "the exact published bytes again");
    assert!(server.get(&live).body == hello);
    refused(&data, &["takedown", "--undo", "1"], "takedown 1 is already undone");
    verify_clean(&data);
}

#[test]
fn purge_deletes_the_bytes_and_verify_reports_them_as_taken_down_not_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let id = publish(&data, "debian", &fixtures().join("apt/v1"));
    publish(&data, "mirror", &fixtures().join("apt/v1"));
    let digests_before = ok(&data, &["snapshots", "debian", "--json"]);
    let hello = std::fs::read(fixtures().join("apt/v1").join(HELLO)).unwrap();
    let hex = sha256_hex(&hello);

    refused(
        &data,
        &["takedown", "debian", HELLO, "--reason", REASON, "--purge"],
        &format!(
            "refusing to purge: the bytes {hex} of debian/{HELLO} are still served at mirror/{HELLO} \
             (take those down too, or take the content down with --sha256)"
        ),
    );
    refused(
        &data,
        &["takedown", "debian", "--reason", REASON],
        "name the file to take down: ARCHIVE PATH, or --sha256 DIGEST for its bytes in every archive",
    );
    let out = ok(&data, &["takedown", "--sha256", &hex, "--reason", REASON, "--purge"]);
    assert_eq!(out, format!("takedown 1: sha256:{hex} (every archive) taken down, bytes purged (410 {REASON})\n"));

    let verify = asof(&data, &["verify"]);
    assert_eq!(verify.status.code(), Some(0), "{}", stderr(&verify));
    assert_eq!(stdout(&verify), format!("taken down: blob {hex} ({} bytes) purged by takedown 1\n", hello.len()));
    assert!(stderr(&verify).ends_with(": 0 problem(s), 1 blob(s) taken down\n"), "{}", stderr(&verify));
    let json: serde_json::Value = serde_json::from_str(&ok(&data, &["verify", "--json"])).unwrap();
    assert_eq!(json["problems"], serde_json::json!([]));
    assert_eq!(json["taken_down"], serde_json::json!([{"digest": hex, "size": hello.len(), "takedown": 1}]));
    // A scrub does not take purged bytes for missing ones: nothing is quarantined (and so
    // nothing would be fetched back from an upstream).
    let scrub = asof(&data, &["verify", "--sample", "100%"]);
    assert_eq!(scrub.status.code(), Some(0), "{}{}", stdout(&scrub), stderr(&scrub));
    verify_clean(&data);

    refused(
        &data,
        &["takedown", "--undo", "1"],
        "takedown 1 cannot be undone: its bytes were purged and are gone from the store",
    );
    // The snapshots' digests are what they were.
    assert_eq!(ok(&data, &["snapshots", "debian", "--json"]), digests_before);

    // The bytes are gone, and the answer is still the takedown's, in both archives.
    let server = Server::start(&data);
    assert_taken_down(&server.get(&format!("/debian/{id}/{HELLO}")), 410, HELLO, 1);
    assert_taken_down(&server.get(&format!("/mirror/{HELLO}")), 410, HELLO, 1);

    // The audit log: who, when, what.
    let list: serde_json::Value = serde_json::from_str(&ok(&data, &["takedown", "--list", "--json"])).unwrap();
    let actor = std::env::var("USER").map_or_else(|_| "cli".to_string(), |u| format!("cli:{u}"));
    assert_eq!(list.as_array().unwrap().len(), 1);
    let t = &list[0];
    assert_eq!(
        (&t["id"], &t["sha256"], &t["status"], &t["reason"], &t["state"]),
        (
            &serde_json::json!(1),
            &serde_json::json!(hex),
            &serde_json::json!(410),
            &serde_json::json!(REASON),
            &serde_json::json!("purged")
        )
    );
    let log = t["log"].as_array().unwrap();
    let actions: Vec<(&str, &str)> =
        log.iter().map(|e| (e["action"].as_str().unwrap(), e["actor"].as_str().unwrap())).collect();
    assert_eq!(actions, [("takedown", actor.as_str()), ("purge", actor.as_str())]);
    let at = log[0]["at"].as_str().unwrap();
    let when = chrono::DateTime::parse_from_rfc3339(at).unwrap();
    assert!((chrono::Utc::now() - when.to_utc()).num_seconds().abs() < 300, "{at}");
    let text = ok(&data, &["takedown", "--list"]);
    assert_eq!(
        text,
        format!(
            "   1  purged  410  sha256:{hex} (every archive)  reason: {REASON}\n      {at} takedown by {actor}\n      {at} purge by {actor}\n"
        )
    );
}

#[test]
fn apt_fails_to_download_a_taken_down_package_with_the_status_line() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let id = publish(&data, "debian", &fixtures().join("apt/v1"));
    let server = Server::start(&data);
    let keyring = fixtures().join("keys/test-signing.gpg");
    let line = format!("deb [signed-by={}] http://{}/debian/{id}/ stable main", keyring.display(), server.addr);
    let apt = Apt::new(&tmp.path().join("apt"), &line, None);
    apt.update().assert_clean();

    for (status, phrase) in [("410", "Gone"), ("451", "Unavailable For Legal Reasons")] {
        ok(&data, &["takedown", "debian", HELLO, "--reason", REASON, "--status", status]);
        let url = format!("http://{}/debian/{id}/{HELLO}", server.addr);
        let port = server.port();
        apt.download(&["hello-asof"])
            .assert_failed_with(&[&format!("E: Failed to fetch {url}  {status}  {phrase} [IP: 127.0.0.1 {port}]")]);
        assert!(apt.downloaded().is_empty());
        let undone = ok(&data, &["takedown", "--list", "--json"]);
        let id_of_last = serde_json::from_str::<serde_json::Value>(&undone).unwrap().as_array().unwrap().len();
        ok(&data, &["takedown", "--undo", &id_of_last.to_string()]);
    }
    // Undone: apt gets the package, byte for byte.
    apt.download(&["hello-asof"]).assert_clean();
    let hello = std::fs::read(fixtures().join("apt/v1").join(HELLO)).unwrap();
    assert!(apt.downloaded() == [("hello-asof_1.0-1_all.deb".to_string(), hello)]);
}

#[test]
fn a_takedown_hiding_bytes_another_takedown_purged_cannot_be_undone() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let tree = tmp.path().join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("one"), "the same bytes at two paths").unwrap();
    std::fs::write(tree.join("two"), "the same bytes at two paths").unwrap();
    publish(&data, "deb", &tree);
    ok(&data, &["takedown", "deb", "one", "--reason", REASON]);
    // Allowed: the other path holding the bytes is hidden by takedown 1.
    ok(&data, &["takedown", "deb", "two", "--reason", REASON, "--purge"]);
    // Serving `one` again would serve bytes that are gone.
    refused(
        &data,
        &["takedown", "--undo", "1"],
        "takedown 1 cannot be undone: its bytes were purged and are gone from the store",
    );
    let server = Server::start(&data);
    assert_taken_down(&server.get("/deb/one"), 410, "one", 1);
    drop(server);
    verify_clean(&data);
}
