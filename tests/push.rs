//! Publishing over HTTP: `asof push` end to end with apt, the upload API's refusals, races
//! between publishers, and the token rules (401/403) including private archives with apt.

mod common;

use std::path::Path;

use common::apt::{Apt, apt_download, apt_download_with_auth};
use common::*;

fn token(data: &Path, scopes: &[&str], extra: &[&str]) -> String {
    let mut args = vec!["token", "create", "--name", "test"];
    for s in scopes {
        args.extend(["--scope", s]);
    }
    args.extend_from_slice(extra);
    let out = asof(data, &args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn push(server: &Server, archive: &str, dir: &Path, token: &str) -> Result<serde_json::Value, String> {
    let out = std::process::Command::new(bin())
        .args(["push", &server.url(""), archive, dir.to_str().unwrap(), "--json", "--retries", "1"])
        .env("ASOF_TOKEN", token)
        .output()
        .unwrap();
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn tree_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        total += if p.is_dir() { tree_bytes(&p) } else { std::fs::metadata(&p).unwrap().len() };
    }
    total
}

fn snapshots(server: &Server, archive: &str, token: Option<&str>) -> Vec<serde_json::Value> {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    let r = server.request("GET", &format!("/api/v1/archives/{archive}/-/snapshots?order=asc"), &headers);
    if r.status == 404 {
        // The archive only exists once a commit succeeded.
        r.assert_error(404, &format!("no archive named '{archive}'"));
        return Vec::new();
    }
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["snapshots"].as_array().unwrap().clone()
}

#[test]
fn push_then_apt_installs_and_a_second_push_uploads_only_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let t = token(&data, &["publish:debian"], &[]);
    let server = Server::start(&data);
    let (v1, v2) = (fixtures().join("apt/v1"), fixtures().join("apt/v2"));

    let first = push(&server, "debian", &v1, &t).unwrap();
    assert_eq!(first["uploaded_bytes"], tree_bytes(&v1));
    assert!(first["base"].is_null());
    let tz = std::fs::metadata(v2.join("pool/main/a/asof-tzdata/asof-tzdata_2025b-0+deb12u1_all.deb")).unwrap().len();
    let second = push(&server, "debian", &v2, &t).unwrap();
    assert_eq!(second["uploaded_bytes"], tree_bytes(&v2) - tz, "only the changed blobs are uploaded");
    assert_eq!(second["reused_bytes"], tz);
    assert_eq!(second["base"], first["snapshot"], "committed as a change set against the first");
    let list = snapshots(&server, "debian", None);
    assert_eq!(list.len(), 2);
    assert_eq!(
        (list[1]["added"].as_u64(), list[1]["changed"].as_u64(), list[1]["removed"].as_u64()),
        (Some(2), Some(6), Some(1))
    );
    assert_eq!(list[1]["source"]["method"], "push");

    let keyring = fixtures().join("keys/test-signing.gpg");
    for (i, (snap, tree, deb)) in [
        (&first, &v1, "pool/main/h/hello-asof/hello-asof_1.0-1_all.deb"),
        (&second, &v2, "pool/main/h/hello-asof/hello-asof_1.1-1_all.deb"),
    ]
    .into_iter()
    .enumerate()
    {
        let id = snap["snapshot"].as_str().unwrap();
        let line = format!("deb [signed-by={}] http://{}/debian/{id}/ stable main", keyring.display(), server.addr);
        let got = apt_download(&tmp.path().join(format!("apt{i}")), &line, &["hello-asof"]);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, Path::new(deb).file_name().unwrap().to_str().unwrap());
        assert!(got[0].1 == std::fs::read(tree.join(deb)).unwrap(), "hello-asof differs at {id}");
    }

    // Pushing again after an interruption uploads nothing already there.
    let again = push(&server, "debian", &v2, &t).unwrap();
    assert_eq!(again["uploaded_bytes"], 0);
}

#[test]
fn bad_uploads_and_commits_are_refused_and_record_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let t = token(&data, &["publish:debian"], &[]);
    let config = tmp.path().join("asof.toml");
    std::fs::write(&config, "[server]\nmax_blob_bytes = 1000\n").unwrap();
    let server = Server::start_with(&data, &["--config", config.to_str().unwrap()]);
    let bearer = format!("Bearer {t}");
    let auth = ("Authorization", bearer.as_str());
    let put = |digest: &str, len: &str, body: &[u8]| {
        server.request_body("PUT", &format!("/api/v1/blobs/{digest}"), &[auth, ("Content-Length", len)], Some(body))
    };
    let is_missing = |digest: &str| {
        let body = format!("{{\"digests\":[\"{digest}\"]}}");
        let r = server.request_body(
            "POST",
            "/api/v1/blobs/missing",
            &[auth, ("Content-Type", "application/json"), ("Content-Length", &body.len().to_string())],
            Some(body.as_bytes()),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        let missing = r.json();
        assert!(
            missing == serde_json::json!({"missing": [digest]}) || missing == serde_json::json!({"missing": []}),
            "{missing}"
        );
        missing["missing"] == serde_json::json!([digest])
    };
    let data_a = b"hello blob".to_vec();
    let good = sha256_hex(&data_a);

    let other = sha256_hex(b"other");
    let r = put(&other, "10", &data_a);
    r.assert_error(400, &format!("content hashes to {good}, not {other}; nothing stored"));
    assert!(is_missing(&sha256_hex(b"other")) && is_missing(&good));

    // The body breaks off after 10 of 100 bytes.
    let r =
        server.request_broken_off("PUT", &format!("/api/v1/blobs/{good}"), &[auth, ("Content-Length", "100")], &data_a);
    r.assert_error(400, "the request body broke off (error reading a body from connection); nothing stored");
    assert!(is_missing(&good), "a broken-off upload stores nothing");

    let r = put(&good, "5000", &[]);
    r.assert_error(413, "blob of 5000 bytes is over the 1000-byte limit");

    let r = server.request_body(
        "PUT",
        &format!("/api/v1/blobs/{good}"),
        &[auth, ("Transfer-Encoding", "chunked")],
        Some(b"0\r\n\r\n"),
    );
    r.assert_error(411, "a Content-Length header is required");

    let r = put("not-a-digest", "10", &data_a);
    r.assert_error(400, "'not-a-digest' is not a SHA-256 digest (64 hexadecimal characters)");

    let r = put(&good, "10", &data_a);
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json(), serde_json::json!({"sha256": good, "size": 10, "created": true}));
    assert!(!is_missing(&good));
    let r = put(&good, "10", &data_a);
    assert_eq!(r.status, 200, "an existing blob is accepted without rewriting it");
    assert_eq!(r.json()["created"], false);

    let commit = |body: serde_json::Value| {
        let text = body.to_string();
        server.request_body(
            "POST",
            "/api/v1/archives/debian/-/snapshots",
            &[auth, ("Content-Type", "application/json"), ("Content-Length", &text.len().to_string())],
            Some(text.as_bytes()),
        )
    };
    let file =
        |path: &str, digest: &str| serde_json::json!({"kind": "file", "path": path, "size": 10, "sha256": digest});
    let absent = sha256_hex(b"never uploaded!");
    let r = commit(serde_json::json!({"manifest": [file("a", &good), file("b", &absent)]}));
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(
        r.json(),
        serde_json::json!({
            "error": "the manifest references 1 blob(s) the server does not have; upload them first",
            "status": 409,
            "missing": [absent],
        })
    );

    let long = "x/".repeat(2500) + "y";
    for (bad, message) in [
        ("../etc/passwd", "path \"../etc/passwd\": path '../etc/passwd' has a '.' or '..' segment".to_string()),
        ("/etc/passwd", "path \"/etc/passwd\": path is absolute: '/etc/passwd'".to_string()),
        ("a/\u{0}/b", "path \"a/\\0/b\": path contains a NUL or control character".to_string()),
        (long.as_str(), format!("path {:?}: path is longer than 4096 bytes", &long[..120])),
        ("a//b", "path \"a//b\": path 'a//b' has an empty segment".to_string()),
        ("", "path \"\": path is empty".to_string()),
    ] {
        commit(serde_json::json!({"manifest": [file(bad, &good)]})).assert_error(400, &message);
    }
    let r = commit(serde_json::json!({"manifest": [{"kind": "symlink", "path": "evil", "target": "../../etc"}]}));
    r.assert_error(400, "path \"evil\": symlink target \"../../etc\" points outside the tree");
    let r = commit(serde_json::json!({"manifest": [file("a", &good), file("a/b", &good)]}));
    r.assert_error(400, "a/b is below a, which is a file or symlink");
    let r = commit(serde_json::json!({"manifest": [{"kind": "file", "path": "a", "size": 11, "sha256": good}]}));
    r.assert_error(400, &format!("blob {good} is 10 bytes, the manifest says 11"));
    let r = commit(serde_json::json!({"base": "20240101T000000Z", "upsert": [file("a", &good)]}));
    r.assert_error(409, "base 20240101T000000Z is not the latest snapshot of 'debian' (none: the archive has no snapshots); fetch the latest and recompute the changes");
    assert!(snapshots(&server, "debian", None).is_empty(), "nothing recorded");

    let r = commit(serde_json::json!({"manifest": [file("a", &good)]}));
    assert_eq!(r.status, 201, "{}", r.text());
    let first = r.json()["id"].as_str().unwrap().to_string();
    let r = commit(serde_json::json!({"base": first, "upsert": [file("c", &good)], "remove": ["a"]}));
    assert_eq!(r.status, 201, "{}", r.text());
    let second = r.json()["id"].as_str().unwrap().to_string();
    let r = commit(serde_json::json!({"base": first, "upsert": [file("d", &good)]}));
    r.assert_error(
        409,
        &format!(
            "base {first} is not the latest snapshot of 'debian' ({second}); fetch the latest and recompute the changes"
        ),
    );
    assert_eq!(snapshots(&server, "debian", None).len(), 2);
}

#[test]
fn concurrent_pushes_never_mix() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let t = token(&data, &["publish:race"], &[]);
    let server = Server::start(&data);
    let trees = [fixtures().join("apt/v1"), fixtures().join("apt/v2")];
    // The content digests of the two trees, from local publishes elsewhere.
    let digests: Vec<String> = trees
        .iter()
        .map(|tree| {
            let out = asof(&tmp.path().join("scratch"), &["publish", "x", tree.to_str().unwrap(), "--json"]);
            serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["digest"].as_str().unwrap().to_string()
        })
        .collect();
    let results: Vec<Result<serde_json::Value, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..6)
            .map(|i| {
                let (server, tree, t) = (&server, &trees[i % 2], &t);
                s.spawn(move || push(server, "race", tree, t))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for r in &results {
        if let Err(e) = r {
            // A push may only lose the race: every attempt overtaken by another commit.
            assert_eq!(
                e.lines().last().unwrap(),
                "error: the archive kept moving: 5 attempts to commit against its latest snapshot were overtaken",
                "{e}"
            );
        }
    }
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert!(ok >= 1);
    let list = snapshots(&server, "race", None);
    assert_eq!(list.len(), ok);
    let ids: Vec<&str> = list.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "strictly increasing: {ids:?}");
    for s in &list {
        let d = s["digest"].as_str().unwrap().trim_start_matches("sha256:");
        assert!(digests.iter().any(|x| x == d), "snapshot {} mixes the two trees", s["id"]);
    }
}

#[test]
fn write_endpoints_need_the_right_token() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let publish = token(&data, &["publish:debian"], &[]);
    let other = token(&data, &["publish:ubuntu/*"], &[]);
    let reader = token(&data, &["read:*"], &[]);
    let expired = token(&data, &["publish:debian"], &["--expires", "1s"]);
    let revoked = token(&data, &["publish:debian"], &[]);
    let revoked_id = revoked.split('_').nth(1).unwrap().to_string();
    assert!(asof(&data, &["token", "revoke", &revoked_id]).status.success());
    let admin = token(&data, &["admin"], &[]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let server = Server::start(&data);
    let digest = sha256_hex(b"x");
    let endpoints: Vec<(&str, String, String)> = vec![
        ("POST", "/api/v1/blobs/missing".into(), format!("{{\"digests\":[\"{digest}\"]}}")),
        ("PUT", format!("/api/v1/blobs/{digest}"), "x".into()),
        ("POST", "/api/v1/archives/debian/-/snapshots".into(), "{\"manifest\":[]}".into()),
    ];
    let call = |method: &str, path: &str, body: &str, token: Option<&str>| {
        let auth = token.map(|t| format!("Bearer {t}"));
        let len = body.len().to_string();
        let mut headers = vec![("Content-Length", len.as_str())];
        if let Some(a) = &auth {
            headers.push(("Authorization", a.as_str()));
        }
        server.request_body(method, path, &headers, Some(body.as_bytes()))
    };
    let bad_secret = format!("asof_1_{}", "0".repeat(64));
    for (method, path, body) in &endpoints {
        for (who, token, status) in [
            ("nobody", None, 401),
            ("garbage", Some("hunter2"), 401),
            ("wrong secret", Some(bad_secret.as_str()), 401),
            ("expired", Some(expired.as_str()), 401),
            ("revoked", Some(revoked.as_str()), 401),
            ("reader", Some(reader.as_str()), 403),
        ] {
            let r = call(method, path, body, token);
            let message = match (who, status) {
                ("nobody", _) => "a token with publish scope is required",
                ("garbage", _) => "malformed token",
                ("wrong secret", _) => "unknown or invalid token",
                ("expired", _) => "token has expired",
                ("revoked", _) => "token has been revoked",
                _ if path.contains("/archives/") => "this token may not publish to 'debian'",
                _ => "this token has no publish scope",
            };
            r.assert_error(status, message);
            if status == 401 {
                assert_eq!(r.header("www-authenticate"), "Basic realm=\"asof\", Bearer realm=\"asof\"", "{who}");
            }
        }
    }
    // A publisher of the right archive gets past authorization, to the endpoint's own answer.
    let r = call("POST", "/api/v1/blobs/missing", &endpoints[0].2, Some(&publish));
    assert_eq!((r.status, r.json()), (200, serde_json::json!({"missing": [digest]})));
    let r = call("PUT", &endpoints[1].1, "x", Some(&publish));
    assert_eq!((r.status, r.json()), (201, serde_json::json!({"sha256": digest, "size": 1, "created": true})));
    let r = call("POST", "/api/v1/archives/debian/-/snapshots", "{\"manifest\":[]}", Some(&publish));
    r.assert_error(400, "a snapshot needs at least one file");
    let r = call("POST", "/api/v1/archives/debian/-/snapshots", "{\"manifest\":[]}", Some(&other));
    r.assert_error(403, "this token may not publish to 'debian'");
    // Archive settings are for admins.
    let body = "{\"private\":true}";
    call("PUT", "/api/v1/archives/debian", body, Some(&publish)).assert_error(403, "this token is not an admin token");
    call("PUT", "/api/v1/archives/debian", body, None).assert_error(401, "an admin token is required");
    let r = call("PUT", "/api/v1/archives/debian", body, Some(&admin));
    assert_eq!((r.status, r.json()), (200, serde_json::json!({"archive": "debian", "private": true})));
    let metrics = server.get("/metrics").text();
    // Each refusal above counted once, under its reason.
    for (reason, count) in
        [("missing", 4), ("invalid", 3), ("malformed", 3), ("expired", 3), ("revoked", 3), ("scope", 5)]
    {
        let line = format!("asof_auth_failures_total{{reason=\"{reason}\"}} {count}");
        assert!(metrics.lines().any(|l| l == line), "{line} in {metrics}");
    }
    // Tokens are stored hashed: the secret is nowhere in the database.
    let db = std::fs::read(data.join("asof.db")).unwrap();
    let secret = publish.rsplit('_').next().unwrap();
    assert!(!db.windows(secret.len()).any(|w| w == secret.as_bytes()));
}

#[test]
fn private_archives_need_a_read_token_also_for_apt() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    assert!(asof(&data, &["archive", "private", "secret/repo"]).status.success());
    let publisher = token(&data, &["publish:secret/*"], &[]);
    let reader = token(&data, &["read:secret/repo"], &[]);
    let stranger = token(&data, &["read:other"], &[]);
    let server = Server::start(&data);
    let pushed = push(&server, "secret/repo", &fixtures().join("apt/v1"), &publisher).unwrap();
    let id = pushed["snapshot"].as_str().unwrap();
    let file = format!("/secret/repo/{id}/dists/stable/InRelease");

    // Without a token that may read it, a private archive looks missing (tests/private_access.rs
    // pins the exact bodies).
    assert_eq!(server.get(&file).status, 404);
    assert_eq!(server.get("/secret/repo/").status, 404);
    assert_eq!(server.get("/api/v1/archives/secret/repo/-/latest").status, 404);
    let listed = server.request("GET", "/api/v1/archives", &[]).json();
    assert_eq!(listed["archives"].as_array().unwrap().len(), 0, "hidden from anonymous listings");
    let bearer = format!("Bearer {stranger}");
    assert_eq!(server.request("GET", &file, &[("Authorization", &bearer)]).status, 404);
    let bearer = format!("Bearer {reader}");
    assert_eq!(server.request("GET", &file, &[("Authorization", &bearer)]).status, 200);
    let listed = server.request("GET", "/api/v1/archives", &[("Authorization", &bearer)]).json();
    assert_eq!(listed["archives"][0]["name"], "secret/repo");

    let keyring = fixtures().join("keys/test-signing.gpg");
    let line = format!("deb [signed-by={}] http://{}/secret/repo/{id}/ stable main", keyring.display(), server.addr);
    let anonymous = Apt::new(&tmp.path().join("apt-anon"), &line, None);
    // Without credentials the archive looks missing to apt too: InRelease and Release 404.
    anonymous.update().assert_failed_with(&[&format!(
        "E: The repository 'http://{}/secret/repo/{id} stable Release' does not have a Release file.",
        server.addr
    )]);
    let auth = format!("machine http://{}/secret/repo login apt password {reader}\n", server.addr);
    let got = apt_download_with_auth(&tmp.path().join("apt-auth"), &line, &["hello-asof"], Some(&auth));
    let deb = "pool/main/h/hello-asof/hello-asof_1.0-1_all.deb";
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, "hello-asof_1.0-1_all.deb");
    assert!(got[0].1 == std::fs::read(fixtures().join("apt/v1").join(deb)).unwrap());
}
