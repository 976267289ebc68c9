//! Takedowns in process: 410/451 with the reason wherever the file was (pinned and live
//! paths, by-hash, channel URLs, re-signed Release files), listings that mark without
//! linking, undo, purge rules, and the admin API.

use asof::takedown::{Status, TakedownError, TakedownRequest, Target, take_down, undo};

use super::*;

const PACKAGES_XZ: &str = "dists/stable/main/binary-amd64/Packages.xz";
const HELLO_V1: &str = "pool/main/h/hello-asof/hello-asof_1.0-1_all.deb";
const REASON: &str = "CVE-2026-0001: ships a backdoor";
/// When the tests' takedowns are made (unix seconds), so that the audit log is exact.
const WHEN: i64 = 1_790_000_000;
const WHEN_RFC3339: &str = "2026-09-21T14:13:20Z";
const BROWSER: (&str, &str) = ("accept", "text/html,application/xhtml+xml,*/*;q=0.8");

fn by_path(archive_name: &str, path: &str, status: Status, purge: bool) -> TakedownRequest {
    TakedownRequest {
        target: Target::Path { archive: archive(archive_name), path: asof::domain::RelPath::new(path).unwrap() },
        status,
        reason: REASON.into(),
        purge,
    }
}

fn by_content(data: &[u8], status: Status, purge: bool) -> TakedownRequest {
    TakedownRequest { target: Target::Sha256(sha256_hex(data).parse().unwrap()), status, reason: REASON.into(), purge }
}

/// Asserts the exact answer for a taken-down file asked for as `path`.
#[track_caller]
fn assert_taken_down(r: &Resp, status: u16, path: &str, id: i64) {
    let error = format!("{path} is taken down: {REASON}");
    r.assert_error_with(status, json!({"error": error, "status": status, "reason": REASON, "takedown": id}), &[]);
}

#[tokio::test]
async fn a_path_takedown_answers_410_at_every_id_live_and_by_hash_and_undo_restores_the_bytes() {
    let app = App::start();
    let (id1, id2, between) = (app.id1, app.id2, app.between());
    let t = take_down(&app.store, &by_path("debian", PACKAGES_XZ, Status::Gone, false), "test", WHEN).unwrap();
    assert_eq!(t.id, 1);
    // The path held different bytes in each snapshot: every one of them is hidden.
    for id in [id1, between, id2] {
        assert_taken_down(&app.get(&format!("/debian/{id}/{PACKAGES_XZ}")).await, 410, PACKAGES_XZ, 1);
    }
    assert_taken_down(&app.get(&format!("/debian/{PACKAGES_XZ}")).await, 410, PACKAGES_XZ, 1);
    // The body byte for byte, and a client holding the old ETag is not told "not modified".
    let etag = format!("\"{}\"", sha256_hex(&bytes("v1", PACKAGES_XZ)));
    let r = app.get_with(&format!("/debian/{id1}/{PACKAGES_XZ}"), &[("if-none-match", &etag)]).await;
    let body = format!(
        "{{\"error\":\"{PACKAGES_XZ} is taken down: {REASON}\",\"status\":410,\"reason\":\"{REASON}\",\"takedown\":1}}"
    );
    assert_eq!((r.status.as_u16(), r.text()), (410, body));
    let head = app.call("HEAD", &format!("/debian/{id1}/{PACKAGES_XZ}"), &[], Body::empty()).await;
    assert_eq!((head.status.as_u16(), head.header("cache-control")), (410, Some("no-cache")));
    let dir = "dists/stable/main/binary-amd64";
    for (id, version) in [(id1, "v1"), (id2, "v2")] {
        let by_hash = format!("{dir}/by-hash/SHA256/{}", sha256_hex(&bytes(version, PACKAGES_XZ)));
        assert_taken_down(&app.get(&format!("/debian/{id}/{by_hash}")).await, 410, &by_hash, 1);
    }
    // Its neighbours are served as before, immutable.
    let gz = "dists/stable/main/binary-amd64/Packages.gz";
    let r = app.get(&format!("/debian/{id1}/{gz}")).await;
    assert_eq!((r.status.as_u16(), r.header("cache-control")), (200, Some(IMMUTABLE)));
    assert!(r.body == bytes("v1", gz));
    // The snapshot's digest is the one recorded at publish time.
    let before = app.snapshot(id1).digest;

    undo(&app.store, 1, "test", WHEN + 1).unwrap();
    for (id, version) in [(id1, "v1"), (id2, "v2")] {
        let r = app.get(&format!("/debian/{id}/{PACKAGES_XZ}")).await;
        assert_eq!((r.status.as_u16(), r.header("cache-control")), (200, Some(IMMUTABLE)));
        assert!(r.body == bytes(version, PACKAGES_XZ), "{id}: the exact bytes again");
    }
    assert!(app.get(&format!("/debian/{PACKAGES_XZ}")).await.body == bytes("v2", PACKAGES_XZ));
    assert_eq!(app.snapshot(id1).digest, before);
    assert!(matches!(undo(&app.store, 1, "test", WHEN), Err(TakedownError::AlreadyUndone(1))));
    assert_eq!(
        undo(&app.store, 7, "test", WHEN).unwrap_err().to_string(),
        "no takedown 7",
        "an unknown takedown is refused"
    );
}

#[tokio::test]
async fn a_451_by_content_hides_the_bytes_in_every_archive_with_a_page_for_browsers() {
    let app = App::start();
    publish(&app.store, "mirror", &fixture("v1"));
    let deb = bytes("v1", HELLO_V1);
    take_down(&app.store, &by_content(&deb, Status::Legal, false), "test", WHEN).unwrap();
    let id1 = app.id1;
    for uri in [format!("/debian/{id1}/{HELLO_V1}"), format!("/mirror/{HELLO_V1}")] {
        assert_taken_down(&app.get(&uri).await, 451, HELLO_V1, 1);
    }
    // A browser gets the same answer as a page.
    let r = app.get_with(&format!("/debian/{id1}/{HELLO_V1}"), &[BROWSER]).await;
    let len = r.body.len().to_string();
    r.assert(
        451,
        &[
            ("content-type", "text/html; charset=utf-8"),
            ("cache-control", "no-cache"),
            ("content-length", &len),
            ("vary", "accept"),
        ],
    );
    let html = r.text();
    let tail = format!(
        "<h2>451 Unavailable For Legal Reasons</h2><p class=\"error\">{HELLO_V1} is taken down: {REASON}</p>\
         <p><a href=\"/\">all archives</a></p></body></html>"
    );
    assert!(html.starts_with("<!DOCTYPE html>") && html.ends_with(&tail), "{html}");
    // A second takedown of the same bytes is refused, naming the first.
    let again = take_down(&app.store, &by_content(&deb, Status::Gone, false), "test", WHEN).unwrap_err();
    assert_eq!(
        again.to_string(),
        format!("sha256:{} is already taken down (takedown 1); undo it first to change it", sha256_hex(&deb))
    );
}

#[tokio::test]
async fn listings_mark_taken_down_files_without_linking_them_and_are_not_immutable() {
    let app = App::start();
    let id1 = app.id1;
    let dir = "dists/stable/main/binary-amd64";
    take_down(&app.store, &by_path("debian", PACKAGES_XZ, Status::Gone, false), "test", WHEN).unwrap();
    let r = app.get_with(&format!("/debian/{id1}/{dir}/"), &[("accept", "application/json")]).await;
    assert_eq!((r.status.as_u16(), r.header("cache-control")), (200, Some(SHORT)));
    let xz = bytes("v1", PACKAGES_XZ);
    let entry = r.json()["entries"].as_array().unwrap().iter().find(|e| e["name"] == "Packages.xz").cloned().unwrap();
    assert_eq!(
        entry,
        json!({
            "name": "Packages.xz", "path": PACKAGES_XZ, "kind": "file", "size": xz.len(),
            "sha256": sha256_hex(&xz), "since": id1.to_string(),
            "taken_down": {"id": 1, "status": 410, "reason": REASON},
        })
    );
    let gz = &r.json()["entries"][1];
    assert_eq!((gz["name"].as_str(), gz.get("taken_down")), (Some("Packages.gz"), None));

    let r = app.get(&format!("/debian/{id1}/{dir}/")).await;
    assert_eq!((r.status.as_u16(), r.header("cache-control")), (200, Some(SHORT)));
    let html = r.text();
    let row = format!(
        "<tr><td>Packages.xz <span class=\"takedown\">taken down (410): {REASON}</span></td><td>{}</td><td>{id1}</td>",
        xz.len()
    );
    assert!(html.contains(&row), "{row} in {html}");
    assert!(!html.contains(&format!("href=\"/debian/{id1}/{PACKAGES_XZ}\"")), "{html}");
    assert!(html.contains(&format!("<a href=\"/debian/{id1}/{dir}/Packages.gz\">Packages.gz</a>")), "{html}");

    // Undone: the listing is the published one again, immutable.
    undo(&app.store, 1, "test", WHEN).unwrap();
    let r = app.get_with(&format!("/debian/{id1}/{dir}/"), &[("accept", "application/json")]).await;
    assert_eq!(r.header("cache-control"), Some(IMMUTABLE));
    assert_eq!(r.json()["entries"].as_array().unwrap().iter().filter(|e| e.get("taken_down").is_some()).count(), 0);
}

#[tokio::test]
async fn a_path_purge_is_refused_while_other_paths_serve_the_bytes_and_undo_after_purge_is_refused() {
    let app = App::start();
    // The same .deb in a second archive.
    publish(&app.store, "mirror", &fixture("v1"));
    let deb = bytes("v1", HELLO_V1);
    let err = take_down(&app.store, &by_path("debian", HELLO_V1, Status::Gone, true), "test", WHEN).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "refusing to purge: the bytes {} of debian/{HELLO_V1} are still served at mirror/{HELLO_V1} \
             (take those down too, or take the content down with --sha256)",
            sha256_hex(&deb)
        )
    );
    // Nothing was recorded and nothing deleted.
    assert_eq!(app.store.takedowns.list().unwrap(), vec![]);
    assert!(app.get(&format!("/debian/{}/{HELLO_V1}", app.id1)).await.body == deb);

    // Once the other path is taken down, the purge may go ahead.
    take_down(&app.store, &by_path("mirror", HELLO_V1, Status::Gone, false), "test", WHEN).unwrap();
    let t = take_down(&app.store, &by_path("debian", HELLO_V1, Status::Gone, true), "test", WHEN).unwrap();
    let digest = sha256_hex(&deb).parse().unwrap();
    assert_eq!(app.store.blobs.blocking().size(&digest).unwrap(), None, "the bytes are gone");
    assert_taken_down(&app.get(&format!("/debian/{}/{HELLO_V1}", app.id1)).await, 410, HELLO_V1, t.id);
    assert_eq!(
        undo(&app.store, t.id, "test", WHEN).unwrap_err().to_string(),
        "takedown 2 cannot be undone: its bytes were purged and are gone from the store"
    );
    // verify: taken down, not missing.
    let report = asof::verify::verify(&app.store).unwrap();
    assert_eq!(report.problems, vec![]);
    assert_eq!(report.taken_down, vec![asof::verify::TakenDownBlob { digest, size: deb.len() as u64, takedown: 2 }]);
}

#[tokio::test]
async fn a_takedown_must_name_a_file_that_exists() {
    let app = App::start();
    let cases = [
        (by_path("nosuch", HELLO_V1, Status::Gone, false), "no archive named 'nosuch'".to_string()),
        (
            by_path("debian", "pool/nope.deb", Status::Gone, false),
            "no snapshot of debian has a file at pool/nope.deb".into(),
        ),
        (
            by_path("debian", "dists/stable", Status::Gone, false),
            "no snapshot of debian has a file at dists/stable".into(),
        ),
        (
            by_content(b"never published", Status::Gone, false),
            format!("no snapshot of any archive has a file with sha256 {}", sha256_hex(b"never published")),
        ),
    ];
    for (req, message) in cases {
        assert_eq!(take_down(&app.store, &req, "test", WHEN).unwrap_err().to_string(), message);
    }
    assert_eq!(app.store.takedowns.list().unwrap(), vec![]);
}

#[tokio::test]
async fn the_takedown_log_is_shown_to_admins_only() {
    let app = App::start();
    let deb = bytes("v1", HELLO_V1);
    take_down(&app.store, &by_path("debian", PACKAGES_XZ, Status::Gone, false), "cli:alice", WHEN).unwrap();
    undo(&app.store, 1, "cli:bob", WHEN + 60).unwrap();
    take_down(&app.store, &by_content(&deb, Status::Legal, true), "cli:carol", WHEN + 120).unwrap();
    let at = |secs: i64| {
        chrono::DateTime::from_timestamp(WHEN + secs, 0).unwrap().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    assert_eq!(at(0), WHEN_RFC3339);
    let want = json!({"takedowns": [
        {"id": 1, "archive": "debian", "path": PACKAGES_XZ, "status": 410, "reason": REASON, "state": "undone",
         "log": [{"action": "takedown", "actor": "cli:alice", "at": at(0)}, {"action": "undo", "actor": "cli:bob", "at": at(60)}]},
        {"id": 2, "sha256": sha256_hex(&deb), "status": 451, "reason": REASON, "state": "purged",
         "log": [{"action": "takedown", "actor": "cli:carol", "at": at(120)}, {"action": "purge", "actor": "cli:carol", "at": at(120)}]},
    ]});
    let admin = format!("Bearer {}", app.token(&["admin"]));
    let r = app.get_with("/api/v1/takedowns", &[("authorization", &admin)]).await;
    let len = r.body.len().to_string();
    r.assert(
        200,
        &[
            ("content-type", "application/json"),
            ("cache-control", "no-store"),
            ("content-length", &len),
            ("vary", "accept-encoding"),
        ],
    );
    assert_eq!(r.json(), want);
    app.get("/api/v1/takedowns").await.assert_api_error(401, "an admin token is required");
    let publisher = format!("Bearer {}", app.token(&["publish:*"]));
    app.get_with("/api/v1/takedowns", &[("authorization", &publisher)])
        .await
        .assert_api_error(403, "this token is not an admin token");
}

#[tokio::test]
async fn channel_urls_and_re_signed_release_files_answer_the_takedown_too() {
    let app = App::start();
    let admin = format!("Bearer {}", app.token(&["admin"]));
    let send = |uri: String, body: Value| {
        let bytes = serde_json::to_vec(&body).unwrap();
        let len = bytes.len().to_string();
        let admin = admin.clone();
        let app = &app;
        async move {
            let r = app
                .call(
                    "POST",
                    &uri,
                    &[("authorization", &admin), ("content-length", &len), ("host", "asof.test")],
                    bytes,
                )
                .await;
            assert!(r.status.is_success(), "{uri}: {}", r.text());
        }
    };
    let spec = json!({
        "archive": "debian",
        "rings": [{"name": "all", "percent": 100, "soak_secs": 0}],
        "gate": {"max_failure_rate": 0.25, "min_reports": 2},
        "advance": "manual",
        "sources": "stable main",
    });
    let spec = serde_json::to_vec(&spec).unwrap();
    let len = spec.len().to_string();
    let r =
        app.call("PUT", "/api/v1/channels/prod", &[("authorization", &admin), ("content-length", &len)], spec).await;
    assert_eq!(r.status, 201, "{}", r.text());
    send("/api/v1/channels/prod/rollouts".into(), json!({"snapshot": app.id1.to_string()})).await;
    let node_url = format!("/debian/@prod/web-1/{HELLO_V1}");
    let r = app.get(&node_url).await;
    assert!(r.status == 200 && r.body == bytes("v1", HELLO_V1), "{}: {}", r.status, r.text());

    take_down(&app.store, &by_path("debian", HELLO_V1, Status::Legal, false), "test", WHEN).unwrap();
    assert_taken_down(&app.get(&node_url).await, 451, HELLO_V1, 1);

    // Re-signed Release files (signing mode) are the file too.
    super::signing::enable(&app, &super::signing::fixture_key());
    let release = "dists/stable/InRelease";
    let live = format!("/debian/{release}");
    let r = app.get_with(&live, &[("host", "asof.test")]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.body != bytes("v2", release), "re-signed, not the published bytes");
    // On a node URL too, `?original` answers the published bytes.
    let node_release = format!("/debian/@prod/web-1/{release}");
    let r = app.get_with(&node_release, &[("host", "asof.test")]).await;
    assert!(r.status == 200 && r.body != bytes("v1", release), "{}: re-signed on the node URL", r.status);
    let r = app.get_with(&format!("{node_release}?original"), &[("host", "asof.test")]).await;
    assert_eq!((r.status.as_u16(), r.body.to_vec()), (200, bytes("v1", release)));
    take_down(&app.store, &by_path("debian", release, Status::Gone, false), "test", WHEN).unwrap();
    for uri in [live.clone(), format!("/debian/{}/{release}", app.id2), format!("{live}?original")] {
        assert_taken_down(&app.get_with(&uri, &[("host", "asof.test")]).await, 410, release, 2);
    }
}
