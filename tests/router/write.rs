//! The write side: tokens (401/403), blob uploads, the missing-blobs probe, commits and
//! archive settings.

use super::*;

const PUBLISH_SCOPE: &str = "a token with publish scope is required";

/// The write endpoints with a body that passes authorization checks.
fn endpoints() -> Vec<(&'static str, String, String)> {
    let digest = sha256_hex(b"x");
    vec![
        ("POST", "/api/v1/blobs/missing".into(), format!("{{\"digests\":[\"{digest}\"]}}")),
        ("PUT", format!("/api/v1/blobs/{digest}"), "x".into()),
        ("POST", "/api/v1/archives/debian/-/snapshots".into(), "{\"manifest\":[]}".into()),
    ]
}

async fn call_with(app: &App, method: &str, path: &str, body: &str, auth: Option<&str>) -> Resp {
    let len = body.len().to_string();
    let mut headers = vec![("content-length", len.as_str())];
    if let Some(a) = auth {
        headers.push(("authorization", a));
    }
    app.call(method, path, &headers, Body::from(body.to_string())).await
}

async fn call_as(app: &App, method: &str, path: &str, body: &str, token: Option<&str>) -> Resp {
    let bearer = token.map(|t| format!("Bearer {t}"));
    call_with(app, method, path, body, bearer.as_deref()).await
}

#[tokio::test]
async fn writes_without_a_valid_token_are_401_and_naming_the_reason() {
    let app = App::start();
    let now = chrono::Utc::now().timestamp();
    let expired = app.token_expiring(&["publish:debian"], Some(now - 1));
    let revoked = app.token(&["publish:debian"]);
    let revoked_id: i64 = revoked.split('_').nth(1).unwrap().parse().unwrap();
    assert!(app.store.auth.revoke_token(revoked_id, now).unwrap());
    let good = app.token(&["publish:debian"]);
    let wrong_secret = format!("{}{}", &good[..good.len() - 1], if good.ends_with('0') { '1' } else { '0' });
    let unknown_id = format!("asof_999_{}", "0".repeat(64));
    for (method, path, body) in endpoints() {
        for (who, token, message) in [
            ("nobody", None, PUBLISH_SCOPE),
            ("garbage", Some("hunter2"), "malformed token"),
            ("wrong secret", Some(wrong_secret.as_str()), "unknown or invalid token"),
            ("unknown id", Some(unknown_id.as_str()), "unknown or invalid token"),
            ("expired", Some(expired.as_str()), "token has expired"),
            ("revoked", Some(revoked.as_str()), "token has been revoked"),
        ] {
            let r = call_as(&app, method, &path, &body, token).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{who} on {method} {path}");
            r.assert_api_error(401, message);
        }
        // A token may also come as the password of HTTP Basic (apt's auth.conf).
        let basic = format!("Basic {}", base64_encode(&format!("apt:{expired}")));
        call_with(&app, method, &path, &body, Some(&basic)).await.assert_api_error(401, "token has expired");
    }
}

fn base64_encode(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[tokio::test]
async fn writes_with_the_wrong_scope_are_403() {
    let app = App::start();
    let reader = app.token(&["read:*"]);
    let other = app.token(&["publish:ubuntu/*"]);
    for (method, path, body) in endpoints() {
        let message = if path.contains("/archives/") {
            "this token may not publish to 'debian'"
        } else {
            "this token has no publish scope"
        };
        call_as(&app, method, &path, &body, Some(&reader)).await.assert_api_error(403, message);
    }
    // A publisher of other archives may upload blobs but not commit here.
    let r = call_as(&app, "POST", "/api/v1/archives/debian/-/snapshots", "{\"manifest\":[]}", Some(&other)).await;
    r.assert_api_error(403, "this token may not publish to 'debian'");
    // Basic credentials carry the token too.
    let basic = format!("Basic {}", base64_encode(&format!("apt:{reader}")));
    let r = call_with(&app, "POST", "/api/v1/archives/debian/-/snapshots", "{}", Some(&basic)).await;
    r.assert_api_error(403, "this token may not publish to 'debian'");
}

#[tokio::test]
async fn uploads_check_length_and_digest_and_store_nothing_wrong() {
    let app = App::start();
    let t = app.token(&["publish:debian"]);
    let auth = format!("Bearer {t}");
    let data = b"hello blob";
    let good = sha256_hex(data);
    let put = |digest: String, headers: Vec<(&'static str, String)>, body: Vec<u8>| {
        let auth = auth.clone();
        let app = &app;
        async move {
            let mut h: Vec<(&str, &str)> = vec![("authorization", auth.as_str())];
            h.extend(headers.iter().map(|(k, v)| (*k, v.as_str())));
            app.call("PUT", &format!("/api/v1/blobs/{digest}"), &h, Body::from(body)).await
        }
    };
    let len = |n: usize| vec![("content-length", n.to_string())];

    put("not-a-digest".into(), len(10), data.to_vec())
        .await
        .assert_api_error(400, "'not-a-digest' is not a SHA-256 digest (64 hexadecimal characters)");
    put(good.clone(), vec![], data.to_vec()).await.assert_api_error(411, "a Content-Length header is required");
    put(good.clone(), vec![("content-length", "ten".into())], data.to_vec())
        .await
        .assert_api_error(400, "Content-Length is not a number");
    let over = ServeOptions::default().max_blob_bytes + 1;
    put(good.clone(), vec![("content-length", over.to_string())], vec![])
        .await
        .assert_api_error(413, &format!("blob of {over} bytes is over the {}-byte limit", over - 1));
    let other = sha256_hex(b"other");
    put(other.clone(), len(10), data.to_vec())
        .await
        .assert_api_error(400, &format!("content hashes to {good}, not {other}; nothing stored"));
    put(good.clone(), len(20), data.to_vec())
        .await
        .assert_api_error(400, "body has 10 bytes, Content-Length said 20; nothing stored");
    put(good.clone(), len(5), data.to_vec())
        .await
        .assert_api_error(400, "body has at least 10 bytes, Content-Length said 5; nothing stored");
    for d in [&good, &other] {
        let digest = d.parse().unwrap();
        assert!(!app.store.blobs.blocking().contains(&digest).unwrap(), "{d} must not be stored");
    }

    let r = put(good.clone(), len(10), data.to_vec()).await;
    let n = r.body.len().to_string();
    r.assert(201, &[("content-type", "application/json"), ("content-length", &n), ("vary", "accept-encoding")]);
    assert_eq!(r.json(), json!({"sha256": good, "size": 10, "created": true}));
    let mut stored = Vec::new();
    let mut blob = app.store.blobs.blocking().open(&good.parse().unwrap()).unwrap().unwrap();
    std::io::Read::read_to_end(&mut blob.reader, &mut stored).unwrap();
    assert_eq!(stored, data);
}

async fn missing(app: &App, token: &str, body: &str) -> Resp {
    call_as(app, "POST", "/api/v1/blobs/missing", body, Some(token)).await
}

#[tokio::test]
async fn the_missing_probe_lists_digests_never_stored() {
    let app = App::start();
    let t = app.token(&["publish:debian"]);
    let never = [sha256_hex(b"never 1"), sha256_hex(b"never 2")];
    let r = missing(&app, &t, &json!({"digests": never}).to_string()).await;
    let n = r.body.len().to_string();
    r.assert(200, &[("content-type", "application/json"), ("content-length", &n), ("vary", "accept-encoding")]);
    assert_eq!(r.json(), json!({"missing": never}));

    missing(&app, &t, "{\"digests\":[\"xyz\"]}")
        .await
        .assert_api_error(400, "'xyz' is not a SHA-256 digest (64 hexadecimal characters)");
    missing(&app, &t, "{\"digests\":")
        .await
        .assert_api_error(400, "invalid JSON body: EOF while parsing a value at line 1 column 11");
    missing(&app, &t, "{\"digest\":[]}")
        .await
        .assert_api_error(400, "invalid JSON body: unknown field `digest`, expected `digests` at line 1 column 9");
}

fn file(path: &str, size: usize, digest: &str) -> Value {
    json!({"kind": "file", "path": path, "size": size, "sha256": digest})
}

async fn commit(app: &App, token: &str, body: Value) -> Resp {
    call_as(app, "POST", "/api/v1/archives/pushed/-/snapshots", &body.to_string(), Some(token)).await
}

#[tokio::test]
async fn commits_need_stored_blobs_and_a_sound_tree() {
    let app = App::start();
    let t = app.token(&["publish:pushed"]);
    // Blobs of the fixture tree are stored already (published as 'debian').
    let release = bytes("v1", "dists/stable/Release");
    let (good, size) = (sha256_hex(&release), release.len());
    let absent = [sha256_hex(b"never uploaded 1"), sha256_hex(b"never uploaded 2")];
    let mut want_missing = absent.to_vec();
    want_missing.sort();

    let r = commit(
        &app,
        &t,
        json!({"manifest": [file("a", size, &good), file("b", 1, &absent[0]), file("c", 1, &absent[1])]}),
    )
    .await;
    r.assert_error_with(
        409,
        json!({
            "error": "the manifest references 2 blob(s) the server does not have; upload them first",
            "status": 409,
            "missing": want_missing,
        }),
        &[("vary", "accept-encoding")],
    );

    let long = "x/".repeat(2500) + "y";
    for (body, message) in [
        (json!({"manifest": [file("../etc/passwd", size, &good)]}), "path \"../etc/passwd\": path '../etc/passwd' has a '.' or '..' segment".to_string()),
        (json!({"manifest": [file("/etc/passwd", size, &good)]}), "path \"/etc/passwd\": path is absolute: '/etc/passwd'".to_string()),
        (json!({"manifest": [file("a//b", size, &good)]}), "path \"a//b\": path 'a//b' has an empty segment".to_string()),
        (json!({"manifest": [file("", size, &good)]}), "path \"\": path is empty".to_string()),
        (json!({"manifest": [file(&long, size, &good)]}), format!("path {:?}: path is longer than 4096 bytes", &long[..120])),
        (json!({"manifest": [file("a", size, "xyz")]}), "path \"a\": 'xyz' is not a SHA-256 digest (64 hexadecimal characters)".to_string()),
        (
            json!({"manifest": [{"kind": "symlink", "path": "evil", "target": "../../etc"}]}),
            "path \"evil\": symlink target \"../../etc\" points outside the tree".to_string(),
        ),
        (json!({"manifest": [file("a", size, &good), file("a/b", size, &good)]}), "a/b is below a, which is a file or symlink".to_string()),
        (json!({"manifest": [file("a", size, &good), file("a", size, &good)]}), "a is listed twice".to_string()),
        (json!({"manifest": []}), "a snapshot needs at least one file".to_string()),
        (json!({"manifest": [file("a", size + 1, &good)]}), format!("blob {good} is {size} bytes, the manifest says {}", size + 1)),
        (json!({}), "the request needs a 'manifest', or a 'base' with 'upsert'/'remove'".to_string()),
        (
            json!({"manifest": [file("a", size, &good)], "remove": ["b"]}),
            "give either a full 'manifest' or 'base' with 'upsert'/'remove', not both".to_string(),
        ),
        (json!({"manifes": []}), "invalid JSON body: unknown field `manifes`, expected one of `base`, `manifest`, `upsert`, `remove`, `source` at line 1 column 11".to_string()),
    ] {
        commit(&app, &t, body.clone()).await.assert_api_error(400, &message);
    }
    // With a base, the archive must have it as its latest snapshot.
    let base = "20240101T000000Z";
    commit(&app, &t, json!({"base": base, "upsert": [file("a", size, &good)]})).await.assert_api_error(
        409,
        &format!("base {base} is not the latest snapshot of 'pushed' (none: the archive has no snapshots); fetch the latest and recompute the changes"),
    );
    assert!(app.store.catalog.latest(&archive("pushed")).unwrap().is_none(), "nothing recorded");
}

#[tokio::test]
async fn a_commit_is_201_with_the_location_of_the_new_snapshot() {
    let app = App::start();
    let t = app.token(&["publish:pushed"]);
    let release = bytes("v1", "dists/stable/Release");
    let (good, size) = (sha256_hex(&release), release.len());
    let r =
        commit(&app, &t, json!({"manifest": [file("dists/Release", size, &good)], "source": {"ci": "job 7"}})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let id: SnapshotId = r.json()["id"].as_str().unwrap().parse().unwrap();
    let location = format!("/api/v1/archives/pushed/-/snapshots/{id}");
    let n = r.body.len().to_string();
    r.assert(
        201,
        &[
            ("content-type", "application/json"),
            ("content-length", &n),
            ("location", &location),
            ("vary", "accept-encoding"),
        ],
    );
    let snap = app.store.catalog.latest(&archive("pushed")).unwrap().unwrap();
    assert_eq!(snap.id, id);
    let mut want = snapshot_json(&snap, None, None);
    want["source"] = json!({"method": "push", "token": "test", "token_id": t.split('_').nth(1).unwrap().parse::<i64>().unwrap(), "client": {"ci": "job 7"}});
    assert_eq!(r.json(), want);
    assert_eq!(snap.source, want["source"]);
    // The new snapshot serves the bytes of the blob.
    let got = app.get(&format!("/pushed/{id}/dists/Release")).await;
    assert_eq!(got.status, StatusCode::OK);
    assert!(got.body == release);

    // A change set against the latest is accepted; against a stale base it is 409.
    let r = commit(
        &app,
        &t,
        json!({"base": id.to_string(), "upsert": [file("dists/Other", size, &good)], "remove": ["dists/Release"]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let second = r.json()["id"].as_str().unwrap().to_string();
    let r = commit(&app, &t, json!({"base": id.to_string(), "upsert": [file("dists/Third", size, &good)]})).await;
    r.assert_api_error(
        409,
        &format!(
            "base {id} is not the latest snapshot of 'pushed' ({second}); fetch the latest and recompute the changes"
        ),
    );
    let r = commit(&app, &t, json!({"base": second, "remove": ["dists/Nope"]})).await;
    r.assert_api_error(400, &format!("cannot remove dists/Nope: it is not in {second}"));
}

#[tokio::test]
async fn archive_settings_are_for_admins() {
    let app = App::start();
    let publisher = app.token(&["publish:debian"]);
    let admin = app.token(&["admin"]);
    let uri = "/api/v1/archives/newrepo";
    let body = "{\"private\":true}";
    call_as(&app, "PUT", uri, body, None).await.assert_api_error(401, "an admin token is required");
    call_as(&app, "PUT", uri, body, Some("hunter2")).await.assert_api_error(401, "malformed token");
    call_as(&app, "PUT", uri, body, Some(&publisher)).await.assert_api_error(403, "this token is not an admin token");
    call_as(&app, "PUT", uri, "{\"private\":\"yes\"}", Some(&admin)).await.assert_api_error(
        400,
        "invalid JSON body: invalid type: string \"yes\", expected a boolean at line 1 column 16",
    );
    call_as(&app, "PUT", "/api/v1/archives/newrepo/-/latest", body, Some(&admin)).await.assert_error_with(
        405,
        json!({"error": "method not allowed: only GET and HEAD are served here", "status": 405}),
        &[("vary", "accept-encoding")],
    );
    let r = call_as(&app, "PUT", uri, body, Some(&admin)).await;
    let n = r.body.len().to_string();
    r.assert(200, &[("content-type", "application/json"), ("content-length", &n), ("vary", "accept-encoding")]);
    assert_eq!(r.json(), json!({"archive": "newrepo", "private": true}));
    assert!(app.store.auth.is_private(&archive("newrepo")).unwrap());
    let r = call_as(&app, "PUT", uri, "{\"private\":false}", Some(&admin)).await;
    assert_eq!(r.json(), json!({"archive": "newrepo", "private": false}));
    assert!(!app.store.auth.is_private(&archive("newrepo")).unwrap());
}

#[tokio::test]
async fn json_bodies_over_their_limits_are_413() {
    let app = App::with_options(ServeOptions { max_manifest_bytes: 100, ..ServeOptions::default() });
    let t = app.token(&["publish:pushed"]);
    let manifest = json!({"manifest": [file("a/long/enough/path/to/go/over/the/limit", 1, &sha256_hex(b"x"))]});
    assert!(manifest.to_string().len() > 100);
    commit(&app, &t, manifest).await.assert_api_error(413, "request body is over the 100-byte limit");
    missing(&app, &t, &json!({"digests": [sha256_hex(b"1"), sha256_hex(b"2")]}).to_string())
        .await
        .assert_api_error(413, "request body is over the 100-byte limit");

    // However large the body limit, one probe asks about at most 100,000 digests.
    let app = App::start();
    let t = app.token(&["publish:debian"]);
    let digest = sha256_hex(b"x");
    let body = json!({"digests": vec![digest; 100_001]}).to_string();
    missing(&app, &t, &body).await.assert_api_error(413, "ask about at most 100000 digests per request");
}
