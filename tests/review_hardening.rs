//! Adversarial review of issue 8 ("Hardening"): what an attacker or an unlucky operator
//! could still do after it, each pinned by a test that failed before its fix. In process:
//! tower `oneshot` on the real router, over a temp data dir.

mod common;

use common::inproc::App;
use common::small_disk::SmallDisk;

use asof::domain::Digest;
use asof::store::Store;
use axum::http::{Method, StatusCode};
use serde_json::json;

fn file(path: &str, bytes: &[u8]) -> serde_json::Value {
    json!({"kind": "file", "path": path, "size": bytes.len(), "sha256": Digest::of(bytes).hex()})
}

const A: &[u8] = b"file a\n";
const B: &[u8] = b"file b\n";
const C: &[u8] = b"file c\n";

/// A private archive's answers, given to a caller with a read token, must never be stored
/// by a shared cache (a proxy or CDN in front of the service) and served to the next
/// anonymous client: "public" in Cache-Control allows exactly that for a request that
/// carried Authorization (RFC 9111 §3.5). And a list that depends on who asks must say so
/// in Vary, or a cache serves one caller's list to another.
#[tokio::test(flavor = "multi_thread")]
async fn private_answers_are_never_stored_by_shared_caches() {
    let app = App::new();
    app.make_private("secret");
    let id = app.publish("secret", &[("keys/farm.key", A)]);
    let pub_id = app.publish("pub", &[("README", B)]);
    let reader = app.token(&["read:secret"]);
    let immutable_private = "private, max-age=31536000, immutable";
    let short_private = "private, max-age=10";
    for (path, cache) in [
        (format!("/secret/{id}/keys/farm.key"), immutable_private),
        // The latest snapshot's pages gain a "next" link later: short-lived until then.
        (format!("/secret/{id}/keys/"), short_private),
        ("/secret/".to_string(), short_private),
        ("/".to_string(), short_private),
        ("/api/v1/archives".to_string(), short_private),
        ("/api/v1/archives/secret".to_string(), short_private),
        ("/api/v1/archives/secret/-/snapshots".to_string(), short_private),
        (format!("/api/v1/archives/secret/-/snapshots/{id}"), short_private),
        (format!("/api/v1/archives/secret/-/snapshots/{id}/manifest"), immutable_private),
        (format!("/api/v1/archives/secret/-/resolve/{id}"), immutable_private),
        ("/api/v1/archives/secret/-/latest".to_string(), short_private),
    ] {
        let r = app.get(&path, Some(&reader)).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text());
        assert_eq!(r.header("cache-control"), cache, "{path}");
    }
    // Anonymous answers stay shareable: that is what makes the service cheap to mirror.
    let r = app.get(&format!("/pub/{pub_id}/README"), None).await;
    assert_eq!(r.header("cache-control"), "public, max-age=31536000, immutable");
    // Both archive lists differ by caller: a cache must key them by Authorization.
    for path in ["/", "/api/v1/archives"] {
        let r = app.get(path, None).await;
        assert_eq!(r.header("cache-control"), "public, max-age=10", "{path}");
        let vary: Vec<String> =
            r.headers.get_all("vary").iter().map(|v| v.to_str().unwrap().to_ascii_lowercase()).collect();
        assert!(vary.iter().flat_map(|v| v.split(',')).any(|v| v.trim() == "authorization"), "{path}: Vary {vary:?}");
    }
}

/// The change-set path (base + upsert + remove) end to end on the shapes that are easy to
/// get wrong: each on a fresh archive holding `d/x`, `d/y` and `f`. A refusal is a 400
/// naming the problem; an acceptance yields exactly the tree asked for.
#[tokio::test(flavor = "multi_thread")]
async fn change_set_edge_cases() {
    let app = App::new();
    let admin = app.token(&["admin"]);
    let link = |path: &str, target: &str| json!({"kind": "symlink", "path": path, "target": target});
    let refused: Vec<(serde_json::Value, &str)> = vec![
        (json!({"remove": ["d"]}), "cannot remove d: it is a directory; remove the files below it"),
        (json!({"upsert": [file("d", A)]}), "d/x is below d, which is a file or symlink"),
        (json!({"upsert": [file("f/x", A)]}), "f/x is below f, which is a file or symlink"),
        (json!({"upsert": [file("f", A)], "remove": ["f"]}), "f is listed twice"),
        (json!({"remove": ["d/x", "d/y", "f"]}), "a snapshot needs at least one file"),
        (json!({"remove": ["d/"]}), "remove \"d/\": path 'd/' has an empty segment"),
        (
            json!({"upsert": [link("d/l", "../../f")]}),
            "path \"d/l\": symlink target \"../../f\" points outside the tree",
        ),
        (json!({"manifest": [file("g", A)]}), "give either a full 'manifest' or 'base' with changes, not both"),
    ];
    for (n, (mut body, error)) in refused.into_iter().enumerate() {
        let archive = format!("no{n}");
        body["base"] = json!(app.publish(&archive, &[("d/x", A), ("d/y", B), ("f", C)]));
        let r = app.commit(&archive, &admin, body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.text());
        assert_eq!(r.json(), json!({"error": error, "status": 400}), "{body}");
    }
    // Accepted: (changes, resulting files and symlinks, added, removed).
    let accepted: Vec<(serde_json::Value, Vec<serde_json::Value>, u64, u64)> = vec![
        (json!({}), vec![file("d/x", A), file("d/y", B), file("f", C)], 0, 0),
        (json!({"upsert": [], "remove": []}), vec![file("d/x", A), file("d/y", B), file("f", C)], 0, 0),
        (json!({"upsert": [file("d", A)], "remove": ["d/x", "d/y"]}), vec![file("d", A), file("f", C)], 1, 2),
        (
            json!({"upsert": [file("f/x", A)], "remove": ["f"]}),
            vec![file("d/x", A), file("d/y", B), file("f/x", A)],
            1,
            1,
        ),
        (json!({"upsert": [link("d", "f")], "remove": ["d/x", "d/y"]}), vec![link("d", "f"), file("f", C)], 1, 2),
    ];
    for (n, (mut body, want, added, removed)) in accepted.into_iter().enumerate() {
        let archive = format!("ok{n}");
        body["base"] = json!(app.publish(&archive, &[("d/x", A), ("d/y", B), ("f", C)]));
        let r = app.commit(&archive, &admin, body.clone()).await;
        assert_eq!(r.status, StatusCode::CREATED, "{body}: {}", r.text());
        assert_eq!((r.json()["added"].as_u64(), r.json()["removed"].as_u64()), (Some(added), Some(removed)), "{body}");
        let id = r.json()["id"].as_str().unwrap().to_string();
        let m = app.get(&format!("/api/v1/archives/{archive}/-/snapshots/{id}/manifest"), None).await;
        let got: Vec<serde_json::Value> = m.text().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(got, want, "{body}");
    }
}

/// A commit body that goes on and on: `prefix`, then `unit` repeated, counting what the
/// server reads. It gives up (an I/O error) after `cap` bytes so that a server that
/// would buffer it all fails the test instead of eating the machine's memory.
struct Endless {
    prefix: Vec<u8>,
    unit: &'static [u8],
    sent: usize,
    cap: usize,
}

impl std::io::Read for Endless {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.sent >= self.cap {
            return Err(std::io::Error::other("the test's reader gave up: the server kept reading"));
        }
        let n = buf.len().min(self.cap - self.sent);
        for (i, b) in buf[..n].iter_mut().enumerate() {
            let at = self.sent + i;
            *b = if at < self.prefix.len() {
                self.prefix[at]
            } else {
                self.unit[(at - self.prefix.len()) % self.unit.len()]
            };
        }
        self.sent += n;
        Ok(n)
    }
}

/// serde_json holds a whole string in memory before anyone sees it, and serde a whole
/// internally tagged entry (unknown fields too), and a `source` value of any size: one
/// commit body of a single huge string, entry or `source` would take memory in
/// proportion to the body (1 GiB by default), not the "bounded memory" of issue 8. Each
/// must be refused once it passes its limit, having read little more than that.
#[test]
fn a_commit_body_cannot_make_the_parser_buffer_a_huge_value() {
    let file = format!(r#"{{"kind":"file","path":"a","size":1,"sha256":"{}""#, Digest::of(b"x").hex());
    let cases: Vec<(String, &'static [u8], &str)> = vec![
        (
            r#"{"manifest":[{"kind":"file","path":""#.into(),
            b"a",
            "an entry of 'manifest' is longer than 65536 bytes of JSON",
        ),
        (
            r#"{"upsert":[{"kind":"symlink","path":"l","target":""#.into(),
            b"\\n",
            "an entry of 'upsert' is longer than 65536 bytes of JSON",
        ),
        (r#"{""#.into(), b"k", "the body holds a JSON string longer than 65536 bytes"),
        (r#"{"base":""#.into(), b"\\\"", "the body holds a JSON string longer than 65536 bytes"),
        (
            format!(r#"{{"manifest":[{file},"junk":["#),
            b"1,",
            "an entry of 'manifest' is longer than 65536 bytes of JSON",
        ),
        (
            r#"{"upsert":[{"kind":"file","#.into(),
            b"\"k\":1,",
            "an entry of 'upsert' is longer than 65536 bytes of JSON",
        ),
        (r#"{"remove":["a","#.into(), b" ", "a path of 'remove' is longer than 65536 bytes of JSON"),
        (r#"{"source":["#.into(), b"1,", "'source' is longer than 65536 bytes of JSON"),
        (r#"{"source":{"#.into(), b"\"k\":{},", "'source' is longer than 65536 bytes of JSON"),
    ];
    for (prefix, unit, want) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let mut stage = asof::publish::staging::DiskStaging::new(tmp.path()).unwrap();
        let mut body = Endless { prefix: prefix.clone().into_bytes(), unit, sent: 0, cap: 8 << 20 };
        let err = asof::publish::remote::stage_json(&mut body, &mut stage).unwrap_err();
        assert_eq!(err.to_string(), want, "{prefix}…");
        // The limit, plus what the 256 KiB read buffer had fetched ahead.
        assert!(body.sent <= (64 << 10) + (512 << 10), "{prefix}…: read {} bytes", body.sent);
    }
}

/// The same over HTTP: a 400 with the reason, not a server that swells.
#[tokio::test(flavor = "multi_thread")]
async fn a_huge_source_is_refused_with_400() {
    let app = App::new();
    let admin = app.token(&["admin"]);
    app.publish("pub", &[("a", A)]);
    let body = format!(r#"{{"manifest":[{}],"source":"{}"}}"#, file("a", A), "x".repeat(1 << 20));
    let r = app.call(Method::POST, "/api/v1/archives/pub/-/snapshots", Some(&admin), body.into_bytes()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:.300}", r.text());
    assert_eq!(r.json(), json!({"error": "'source' is longer than 65536 bytes of JSON", "status": 400}));
    let body = format!(r#"{{"{}":1}}"#, "k".repeat(1 << 20));
    let r = app.call(Method::POST, "/api/v1/archives/pub/-/snapshots", Some(&admin), body.into_bytes()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:.300}", r.text());
    assert_eq!(r.json(), json!({"error": "the body holds a JSON string longer than 65536 bytes", "status": 400}));
    let big = (0..20_000).map(|i| format!("\"k{i}\":{i}")).collect::<Vec<_>>().join(",");
    let body = format!(r#"{{"manifest":[{}],"source":{{{big}}}}}"#, file("a", A));
    let r = app.call(Method::POST, "/api/v1/archives/pub/-/snapshots", Some(&admin), body.into_bytes()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:.300}", r.text());
    assert_eq!(r.json(), json!({"error": "'source' is longer than 65536 bytes of JSON", "status": 400}));
    // A source of ordinary size is stored with the snapshot.
    let body = json!({"manifest": [file("a", A)], "source": {"ci": "build 42", "tags": ["a", "b"]}});
    let r = app.commit("pub", &admin, body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.json()["source"]["client"], json!({"ci": "build 42", "tags": ["a", "b"]}));
}

/// An upload of a blob the caller may use and the server has is answered without reading
/// the body: the answer must describe the stored blob, not echo the client's
/// Content-Length as the size of "the blob you sent" (bytes of another length cannot hash
/// to that digest).
#[tokio::test(flavor = "multi_thread")]
async fn an_upload_of_a_known_blob_with_the_wrong_length_is_not_acknowledged() {
    let app = App::new();
    app.publish("pub", &[("a", A)]);
    let publisher = app.token(&["publish:up/*"]);
    let digest = Digest::of(A).hex();
    let uri = format!("/api/v1/blobs/{digest}");
    let r = app.call(Method::PUT, &uri, Some(&publisher), b"file a\nand more".to_vec()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"error": format!("blob {digest} has 7 bytes, Content-Length says 15; nothing stored"), "status": 400})
    );
    let r = app.call(Method::PUT, &uri, Some(&publisher), A.to_vec()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json(), json!({"sha256": digest, "size": 7, "created": false}));
}

const DISK_FULL: &str = "the server has no space left to store this; nothing was stored";

/// Item 8 for commits: a commit whose stage, or whose catalog rows, do not fit on the disk
/// must answer 507 like an upload, not 500 "internal error", commit nothing and leave no
/// scratch file behind. Found when the shared disk filled during this review and
/// tests/large_commit.rs got a 500. The scratch directory (`data/tmp`) and the catalog are
/// put on two tmpfs so that each can be the one that fills.
#[tokio::test(flavor = "multi_thread")]
async fn a_commit_that_fills_the_disk_answers_507() {
    let entries: Vec<serde_json::Value> =
        (0..40_000).map(|i| file(&format!("pool/main/p{}/package-{i}_1.0_amd64.deb", i % 100), A)).collect();
    let body = serde_json::to_vec(&json!({ "manifest": entries })).unwrap();
    for full in ["scratch", "catalog"] {
        let main = SmallDisk::mount(64);
        let data = main.dir.join("data");
        let scratch = SmallDisk::mount_at(&data.join("tmp"), 64);
        let app = App::open(&data);
        app.publish("pub", &[("a", A)]);
        let admin = app.token(&["admin"]);
        match full {
            // Room for the spooled body, not for the stage beside it.
            "scratch" => scratch.fill_leaving(body.len() as u64 + (256 << 10)),
            _ => main.fill_leaving(0),
        }
        let r = app.call(Method::POST, "/api/v1/archives/big/-/snapshots", Some(&admin), body.clone()).await;
        assert_eq!(r.status, StatusCode::INSUFFICIENT_STORAGE, "{full}: {}", r.text());
        assert_eq!(r.json(), json!({ "error": DISK_FULL, "status": 507 }), "{full}");
        assert!(app.store.catalog.latest(&"big".parse().unwrap()).unwrap().is_none(), "{full}: nothing committed");
        let left: Vec<String> =
            std::fs::read_dir(&scratch.dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        let filler = if full == "scratch" { vec!["filler".to_string()] } else { vec![] };
        assert_eq!(left, filler, "{full}: spool and stage files are gone");
        drop(scratch);
    }
}

/// When the catalog fails while the blobs of a commit are checked (a busy or broken
/// database), that is the server's failure: it must not come back as `Invalid` (a 400
/// carrying the database's error text to the client).
#[test]
fn a_catalog_failure_while_checking_blobs_is_not_a_bad_request() {
    use asof::catalog::CatalogError;
    use asof::publish::remote::{RemoteError, commit_staged_request, stage_json};
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open_local(tmp.path()).unwrap();
    let mut stage = asof::publish::staging::DiskStaging::new(&store.scratch).unwrap();
    let body = serde_json::to_vec(&json!({ "manifest": [file("a", A)] })).unwrap();
    let header = stage_json(body.as_slice(), &mut stage).unwrap();
    let failing =
        |_: &Digest| -> Result<bool, CatalogError> { Err(CatalogError::Corrupt("database is locked".into())) };
    let err = commit_staged_request(&store, &"x".parse().unwrap(), &header, &stage, json!(null), &failing).unwrap_err();
    assert!(matches!(&err, RemoteError::Catalog(CatalogError::Corrupt(m)) if m == "database is locked"), "{err:?}");
}

/// Item 4 for `POST /api/v1/blobs/missing`: its 16 MiB body may hold five million `""`,
/// which became as many `String`s (some 300 MB) before the 100,000-digest limit was
/// checked. Only the first 100,000 may be kept; the answer stays the 413 it was.
#[test]
fn a_missing_probe_of_millions_of_strings_keeps_the_server_small() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let out = common::asof(&data, &["token", "create", "--scope", "publish:*"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let server = common::Server::start(&data);
    let baseline = server.peak_rss();
    let mut body = b"{\"digests\":[\"\"".to_vec();
    body.extend(std::iter::repeat_n(*b",\"\"", 5_500_000).flatten());
    body.extend_from_slice(b"]}");
    assert!(body.len() < 16 << 20, "under the 16 MiB limit of small JSON bodies");
    let (auth, len) = (format!("Bearer {token}"), body.len().to_string());
    let headers =
        [("Authorization", auth.as_str()), ("Content-Type", "application/json"), ("Content-Length", len.as_str())];
    let r = server.request_body("POST", "/api/v1/blobs/missing", &headers, Some(&body));
    r.assert_error(413, "ask about at most 100000 digests per request");
    let grown = server.peak_rss().saturating_sub(baseline);
    assert!(grown < 64 << 20, "the server grew by {} MB for one probe", grown >> 20);
}
