//! Issue 8, items 1, 3, 6 and 8, in process (tower `oneshot` on the real router): a
//! publisher cannot read through someone else's blobs, a private archive looks exactly like
//! a missing one, reads never write, and a full disk answers 507.

mod common;

use std::path::Path;
use std::time::Duration;

use common::inproc::App;
use common::small_disk::SmallDisk;

use asof::auth::create_token;
use asof::domain::Digest;
use asof::http::{AppState, ServeOptions, router};
use asof::store::Store;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

const SECRET: &[u8] = b"the private key of the build farm\n";
const PUBLIC: &[u8] = b"a public readme\n";

fn manifest(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let list: Vec<_> = entries
        .iter()
        .map(|(p, b)| serde_json::json!({"kind": "file", "path": p, "size": b.len(), "sha256": Digest::of(b).hex()}))
        .collect();
    serde_json::to_vec(&serde_json::json!({ "manifest": list })).unwrap()
}

fn setup(tmp: &Path) -> App {
    let app = App::open(tmp);
    app.make_private("secret");
    app.publish("secret", &[("keys/farm.key", SECRET)]);
    app.publish("pub", &[("README", PUBLIC)]);
    app
}

#[tokio::test(flavor = "multi_thread")]
async fn a_publisher_cannot_reference_or_probe_a_private_blob() {
    let tmp = tempfile::tempdir().unwrap();
    let app = setup(tmp.path());
    let attacker = app.token(&["publish:up/*"]);
    let secret = Digest::of(SECRET).hex();
    let public = Digest::of(PUBLIC).hex();

    // Probing: the private blob is "missing" to the attacker; the public one is not.
    let probe = serde_json::to_vec(&serde_json::json!({ "digests": [secret, public] })).unwrap();
    let r = app.call(Method::POST, "/api/v1/blobs/missing", Some(&attacker), probe.clone()).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), serde_json::json!({ "missing": [secret] }));

    // Committing a manifest that names it (digests are public) is refused as missing, with
    // no size comparison that would confirm it is stored: the audit's stolen blob.
    let wrong_size = serde_json::to_vec(&serde_json::json!({ "manifest": [
        {"kind": "file", "path": "loot", "size": 1, "sha256": secret}
    ]}))
    .unwrap();
    for body in [manifest(&[("loot", SECRET)]), wrong_size] {
        let r = app.call(Method::POST, "/api/v1/archives/up/stolen/-/snapshots", Some(&attacker), body).await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
        assert_eq!(
            r.json(),
            serde_json::json!({
                "error": "the manifest references 1 blob(s) the server does not have; upload them first",
                "status": 409,
                "missing": [secret],
            })
        );
    }
    let r = app.get("/up/stolen/20300101T000000Z/loot", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "nothing was committed");

    // A public blob may be referenced without uploading it.
    let r = app
        .call(Method::POST, "/api/v1/archives/up/ok/-/snapshots", Some(&attacker), manifest(&[("README", PUBLIC)]))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());

    // Uploading wrong bytes under the digest proves nothing and stores nothing.
    let uri = format!("/api/v1/blobs/{secret}");
    let guess = vec![b'x'; SECRET.len()];
    let r = app.call(Method::PUT, &uri, Some(&attacker), guess).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.json()["error"],
        format!("content hashes to {}, not {secret}; nothing stored", Digest::of(&vec![b'x'; SECRET.len()]).hex())
    );
    let r = app.call(Method::POST, "/api/v1/blobs/missing", Some(&attacker), probe.clone()).await;
    assert_eq!(r.json(), serde_json::json!({ "missing": [secret] }), "a failed upload grants nothing");

    // Someone who really has the bytes may send them: the answer is that of a new blob,
    // the same as for bytes never stored before, and only then may it commit them.
    let r = app.call(Method::PUT, &uri, Some(&attacker), SECRET.to_vec()).await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.json(), serde_json::json!({ "sha256": secret, "size": SECRET.len(), "created": true }));
    let fresh = b"never stored before\n";
    let r = app
        .call(Method::PUT, &format!("/api/v1/blobs/{}", Digest::of(fresh).hex()), Some(&attacker), fresh.to_vec())
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(
        r.json(),
        serde_json::json!({ "sha256": Digest::of(fresh).hex(), "size": fresh.len(), "created": true })
    );
    let r = app.call(Method::POST, "/api/v1/blobs/missing", Some(&attacker), probe.clone()).await;
    assert_eq!(r.json(), serde_json::json!({ "missing": [] }));
    // The grant is the uploader's alone.
    let other = app.token(&["publish:up/*"]);
    let r = app.call(Method::POST, "/api/v1/blobs/missing", Some(&other), probe.clone()).await;
    assert_eq!(r.json(), serde_json::json!({ "missing": [secret] }));
    // Committed into a public archive, the blob is public from then on: that was its
    // uploader's choice.
    let r = app
        .call(Method::POST, "/api/v1/archives/up/own/-/snapshots", Some(&attacker), manifest(&[("key", SECRET)]))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());

    // A publisher that may read the private archive may reference its blobs; so may admins.
    for who in [app.token(&["publish:up/*", "read:secret"]), app.token(&["admin"])] {
        let r = app.call(Method::POST, "/api/v1/blobs/missing", Some(&who), probe.clone()).await;
        assert_eq!(r.json(), serde_json::json!({ "missing": [] }));
        let r = app.call(Method::PUT, &uri, Some(&who), SECRET.to_vec()).await;
        assert_eq!(r.status, StatusCode::OK, "known to this caller: not read again");
        assert_eq!(r.json(), serde_json::json!({ "sha256": secret, "size": SECRET.len(), "created": false }));
    }
}

/// The same request against a private archive (as `private`) and against one that does not
/// exist (as `missing`) must answer the same status and the same bytes, name aside.
async fn looks_missing(app: &App, path: &str, auth: Option<&str>) {
    let private = app.get(&path.replace("ARCHIVE", "secret"), auth).await;
    let missing = app.get(&path.replace("ARCHIVE", "absent"), auth).await;
    assert_eq!(private.status, StatusCode::NOT_FOUND, "{path}: {}", private.text());
    assert_eq!(private.status, missing.status, "{path}");
    assert_eq!(private.text(), missing.text().replace("absent", "secret"), "{path}");
    assert!(!private.headers.contains_key("www-authenticate"), "{path}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_private_archive_looks_missing_without_a_read_token() {
    let tmp = tempfile::tempdir().unwrap();
    let app = setup(tmp.path());
    let id = app.store.catalog.latest(&"secret".parse().unwrap()).unwrap().unwrap().id.to_string();
    let stranger = app.token(&["read:pub", "publish:up/*"]);
    let bogus = format!("Bearer asof_999_{}", "a".repeat(64));
    let paths = [
        format!("/ARCHIVE/{id}/keys/farm.key"),
        format!("/ARCHIVE/{id}/keys/"),
        format!("/ARCHIVE/{id}/"),
        "/ARCHIVE/".to_string(),
        "/ARCHIVE/not-an-id/x".to_string(),
        "/ARCHIVE/-/packages?q=k".to_string(),
        "/ARCHIVE/-/packages/farm".to_string(),
        format!("/ARCHIVE/-/diff?from={id}&to={id}"),
        "/ARCHIVE/-/no-such-page".to_string(),
        "/api/v1/archives/ARCHIVE".to_string(),
        "/api/v1/archives/ARCHIVE/-/snapshots".to_string(),
        format!("/api/v1/archives/ARCHIVE/-/snapshots/{id}"),
        format!("/api/v1/archives/ARCHIVE/-/snapshots/{id}/manifest"),
        format!("/api/v1/archives/ARCHIVE/-/resolve/{id}"),
        "/api/v1/archives/ARCHIVE/-/latest".to_string(),
    ];
    for auth in [None, Some(stranger.as_str()), Some(bogus.as_str())] {
        for p in &paths {
            looks_missing(&app, p, auth).await;
        }
    }
    // A reader gets in, whatever the case of the scheme name (RFC 9110: case-insensitive).
    let reader = app.token(&["read:secret"]);
    let secret = reader.strip_prefix("Bearer ").unwrap();
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("apt:{secret}"));
    for auth in
        [format!("Bearer {secret}"), format!("BEARER {secret}"), format!("bAsIc {basic}"), format!("Basic {basic}")]
    {
        let r = app.get(&format!("/secret/{id}/keys/farm.key"), Some(&auth)).await;
        assert_eq!(r.status, StatusCode::OK, "{auth}");
        assert_eq!(r.body, SECRET);
    }
    let metrics = app.get("/metrics", None).await.text();
    assert!(!metrics.contains("secret"), "private names stay out of /metrics:\n{metrics}");
}

#[tokio::test(flavor = "multi_thread")]
async fn published_files_cannot_script_the_origin() {
    let tmp = tempfile::tempdir().unwrap();
    let app = App::open(tmp.path());
    let page = b"<html><script>fetch('/api/v1/archives')</script></html>";
    let id = app.publish("web", &[("index.html", page), ("logo.svg", b"<svg/>")]);
    for (path, ctype) in [("index.html", "text/html; charset=utf-8"), ("logo.svg", "application/octet-stream")] {
        let r = app.get(&format!("/web/{id}/{path}"), None).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.headers["content-type"], ctype);
        assert_eq!(r.headers["x-content-type-options"], "nosniff");
        assert_eq!(r.headers["content-security-policy"], "sandbox");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_private_read_answers_while_a_commit_holds_the_write_lock() {
    let tmp = tempfile::tempdir().unwrap();
    let app = setup(tmp.path());
    let id = app.store.catalog.latest(&"secret".parse().unwrap()).unwrap().unwrap().id.to_string();
    let reader = app.token(&["read:secret"]);
    // A writer holds the database's write lock (as a long commit does).
    let db = rusqlite::Connection::open(tmp.path().join("asof.db")).unwrap();
    db.execute_batch("BEGIN IMMEDIATE; UPDATE seal SET sealed_until = sealed_until;").unwrap();
    let started = std::time::Instant::now();
    let r =
        tokio::time::timeout(Duration::from_secs(5), app.get(&format!("/secret/{id}/keys/farm.key"), Some(&reader)))
            .await
            .expect("a read must not wait for the write lock");
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, SECRET);
    assert!(started.elapsed() < Duration::from_secs(1), "took {:?}", started.elapsed());
    db.execute_batch("COMMIT").unwrap();
    // The use is recorded later, in the background.
    app.store.last_use.flush(app.store.auth.as_ref());
    let tokens = app.store.auth.tokens().unwrap();
    let id_of = reader.trim_start_matches("Bearer asof_").split('_').next().unwrap().parse::<i64>().unwrap();
    assert!(tokens.iter().find(|t| t.id == id_of).unwrap().last_used_at.is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn on_a_full_disk_reads_work_and_uploads_answer_507() {
    let disk = SmallDisk::mount(8);
    let data = disk.dir.join("data");
    let app = setup(&data);
    let id = app.store.catalog.latest(&"secret".parse().unwrap()).unwrap().unwrap().id.to_string();
    let reader = app.token(&["read:secret"]);
    let publisher = app.token(&["publish:pub"]);
    disk.fill();

    let r = app.get(&format!("/secret/{id}/keys/farm.key"), Some(&reader)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.body, SECRET);

    let blob = vec![7u8; 1 << 20];
    let uri = format!("/api/v1/blobs/{}", Digest::of(&blob).hex());
    let r = app.call(Method::PUT, &uri, Some(&publisher), blob).await;
    assert_eq!(r.status, StatusCode::INSUFFICIENT_STORAGE);
    assert_eq!(
        r.json(),
        serde_json::json!({ "error": "the server has no space left to store this; nothing was stored", "status": 507 })
    );
    assert_eq!(std::fs::read_dir(data.join("blobs/tmp")).unwrap().count(), 0, "the temp file is gone");

    // A commit body is spooled to the data disk: full, that is a 507 as well.
    let body = manifest(&(0..20_000).map(|_| ("x", PUBLIC)).collect::<Vec<_>>());
    let r = app.call(Method::POST, "/api/v1/archives/pub/-/snapshots", Some(&publisher), body).await;
    assert_eq!(r.status, StatusCode::INSUFFICIENT_STORAGE, "{}", r.text());
    assert_eq!(
        r.json(),
        serde_json::json!({ "error": "the server has no space left to store this; nothing was stored", "status": 507 })
    );
    assert_eq!(std::fs::read_dir(data.join("tmp")).unwrap().count(), 0, "the spooled body is gone");
}

/// With two blocking threads, twenty stalled uploads must not keep a read from answering:
/// bodies are read on the async side and only complete batches reach the blocking pool.
#[test]
fn stalled_uploads_hold_no_blocking_thread() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let tmp = tempfile::tempdir().unwrap();
        let app = setup(tmp.path());
        let id = app.store.catalog.latest(&"pub".parse().unwrap()).unwrap().unwrap().id.to_string();
        let publisher = app.token(&["publish:pub"]);
        let mut senders = Vec::new();
        for i in 0..20u8 {
            let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(1);
            tx.send(Ok(bytes::Bytes::from(vec![i; 10]))).await.unwrap();
            senders.push(tx);
            let stream = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) });
            let req = Request::builder()
                .method(Method::PUT)
                .uri(format!("/api/v1/blobs/{}", "1".repeat(64)))
                .header("authorization", &publisher)
                .header("content-length", 1000)
                .body(Body::from_stream(stream))
                .unwrap();
            let app_router = router(app.state.clone());
            tokio::spawn(async move { app_router.oneshot(req).await });
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let r = tokio::time::timeout(Duration::from_secs(5), app.get(&format!("/pub/{id}/README"), None))
            .await
            .expect("a read must not wait behind stalled uploads");
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body, PUBLIC);
        drop(senders);
    });
}

/// A body that trickles (a byte every 300 ms, under a 1 s body timeout) is abandoned with
/// 408 once a whole window brought less than the minimum, instead of lasting forever.
#[tokio::test(flavor = "multi_thread")]
async fn a_trickling_upload_is_abandoned() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open_local(tmp.path()).unwrap();
    let options = ServeOptions { body_timeout: Duration::from_secs(1), ..ServeOptions::default() };
    let state = AppState::new(store.clone(), options);
    let (_, token) = create_token(store.auth.as_ref(), "t", &["publish:*".parse().unwrap()], None).unwrap();
    let stream = futures::stream::unfold(0u32, |n| async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        (n < 100).then(|| (Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"x")), n + 1))
    });
    let req = Request::builder()
        .method(Method::PUT)
        .uri(format!("/api/v1/blobs/{}", "2".repeat(64)))
        .header("authorization", format!("Bearer {token}"))
        .header("content-length", 100)
        .body(Body::from_stream(stream))
        .unwrap();
    let started = std::time::Instant::now();
    let resp = router(state).oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::REQUEST_TIMEOUT);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(
        &body[..],
        b"{\"error\":\"the request body stalled: less than 4096 bytes arrived in 1 s; nothing stored\",\"status\":408}"
    );
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
}
