//! In-process tests of the HTTP router: every route driven with `tower::ServiceExt::oneshot`
//! over a temp data dir holding the signed fixture archive, pinning status, headers and
//! bytes without spawning a binary or opening a socket.

mod api;
mod channels;
mod files;
mod listing;
mod live;
mod probes;
mod signing;
mod takedowns;
mod tree_errors;
mod write;

use std::path::{Path, PathBuf};

use asof::auth::{Scope, create_token};
use asof::catalog::Snapshot;
use asof::domain::{ArchiveName, SnapshotId};
use asof::http::{AppState, ServeOptions, router};
use asof::publish::{NoProgress, PublishOptions, publish_dir};
use asof::store::Store;
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use bytes::Bytes;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
pub const SHORT: &str = "public, max-age=10";
pub const WWW_AUTHENTICATE: &str = "Basic realm=\"asof\", Bearer realm=\"asof\"";
pub const FORMAT_HELP: &str = "snapshot IDs are UTC times written YYYYMMDDTHHMMSSZ, e.g. 20240301T030400Z";

/// The fixture archive `debian` in two snapshots, v1 then v2, served by an in-process router.
pub struct App {
    _tmp: tempfile::TempDir,
    pub store: Store,
    pub router: Router,
    pub id1: SnapshotId,
    pub id2: SnapshotId,
}

/// Seconds between the two snapshots: the seal is raised past `id1` before v2 is
/// published, so `id2` is stamped above it without waiting for the clock.
pub const GAP: i64 = 10;

impl App {
    /// One snapshot stamped at the current second (`id1 == id2`), so that the next second
    /// is soon past and can be asked for before it is final.
    pub fn one_fresh_snapshot() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open_local(tmp.path()).unwrap();
        let id = publish(&store, "debian", &fixture("v1"));
        let router = router(AppState::new(store.clone(), ServeOptions::default()));
        App { _tmp: tmp, store, router, id1: id, id2: id }
    }

    pub fn start() -> Self {
        Self::with_options(ServeOptions::default())
    }

    pub fn with_options(options: ServeOptions) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open_local(&tmp.path().join("data")).unwrap();
        let id1 = publish(&store, "debian", &fixture("v1"));
        store.catalog.seal(id1.unix() + GAP).unwrap();
        let id2 = publish(&store, "debian", &fixture("v2"));
        assert!(id2.unix() > id1.unix() + GAP, "{id1} then {id2}");
        let router = router(AppState::new(store.clone(), options));
        Self { _tmp: tmp, store, router, id1, id2 }
    }

    /// An ID strictly between the two snapshots.
    pub fn between(&self) -> SnapshotId {
        at(self.id1.unix() + GAP / 2)
    }

    pub fn snapshot(&self, id: SnapshotId) -> Snapshot {
        self.store.catalog.resolve(&archive("debian"), id).unwrap().filter(|s| s.id == id).unwrap()
    }

    /// A token with these scopes (e.g. `publish:debian`, `admin`), valid until `expires_at`.
    pub fn token_expiring(&self, scopes: &[&str], expires_at: Option<i64>) -> String {
        let scopes: Vec<Scope> = scopes.iter().map(|s| s.parse().unwrap()).collect();
        create_token(self.store.auth.as_ref(), "test", &scopes, expires_at).unwrap().1
    }

    pub fn token(&self, scopes: &[&str]) -> String {
        self.token_expiring(scopes, None)
    }

    pub async fn call(&self, method: &str, uri: &str, headers: &[(&str, &str)], body: impl Into<Body>) -> Resp {
        let mut req = Request::builder().method(Method::from_bytes(method.as_bytes()).unwrap()).uri(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = self.router.clone().oneshot(req.body(body.into()).unwrap()).await.unwrap();
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        Resp { status: parts.status, headers: parts.headers, body }
    }

    pub async fn get(&self, uri: &str) -> Resp {
        self.call("GET", uri, &[], Body::empty()).await
    }

    pub async fn get_with(&self, uri: &str, headers: &[(&str, &str)]) -> Resp {
        self.call("GET", uri, headers, Body::empty()).await
    }
}

pub fn publish(store: &Store, name: &str, dir: &Path) -> SnapshotId {
    let opts = PublishOptions { progress: &NoProgress, source: json!({"method": "test"}), always: true };
    publish_dir(store, &archive(name), dir, &opts).unwrap().snapshot
}

pub fn archive(name: &str) -> ArchiveName {
    name.parse().unwrap()
}

pub fn at(unix: i64) -> SnapshotId {
    SnapshotId::from_unix(unix).unwrap()
}

pub fn fixture(version: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/apt").join(version)
}

/// The bytes of a fixture file, e.g. `bytes("v1", "dists/stable/Release")`.
pub fn bytes(version: &str, rel: &str) -> Vec<u8> {
    std::fs::read(fixture(version).join(rel)).unwrap()
}

pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

/// Every file of a fixture tree as (path, bytes), sorted by path.
pub fn tree_files(version: &str) -> Vec<(String, Vec<u8>)> {
    let root = fixture(version);
    let mut out: Vec<(String, Vec<u8>)> = walkdir::WalkDir::new(&root)
        .into_iter()
        .map(Result::unwrap)
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let rel = e.path().strip_prefix(&root).unwrap().to_str().unwrap().to_string();
            (rel, std::fs::read(e.path()).unwrap())
        })
        .collect();
    out.sort();
    out
}

pub fn http_date(id: SnapshotId) -> String {
    httpdate::fmt_http_date(id.datetime().into())
}

/// The JSON the API gives for a snapshot of the fixture archive, written out field by field.
pub fn snapshot_json(s: &Snapshot, previous: Option<SnapshotId>, next: Option<SnapshotId>) -> Value {
    let mut j = json!({
        "archive": s.archive.as_str(),
        "id": s.id.to_string(),
        "committed_at": chrono::DateTime::from_timestamp_millis(s.committed_at_ms).unwrap(),
        "digest": format!("sha256:{}", s.digest.hex()),
        "files": s.files,
        "bytes": s.bytes,
        "added": s.added,
        "changed": s.changed,
        "removed": s.removed,
        "source": {"method": "test"},
        "url": format!("/{}/{}/", s.archive, s.id),
    });
    if let Some(p) = previous {
        j["previous"] = json!(p.to_string());
    }
    if let Some(n) = next {
        j["next"] = json!(n.to_string());
    }
    j
}

/// The JSON of the answers about one snapshot (`snapshots/<ID>`, `latest`): as
/// `snapshot_json`, with the suites' Release files (the fixture's has no Valid-Until).
pub fn snapshot_detail_json(s: &Snapshot, previous: Option<SnapshotId>, next: Option<SnapshotId>) -> Value {
    let mut j = snapshot_json(s, previous, next);
    j["releases"] = json!([{"path": "dists/stable/InRelease", "valid_until": null, "expired": false}]);
    j
}

/// The headers of a JSON answer of the API (which may be compressed, hence the Vary).
pub fn api_headers<'a>(cache: &'a str, len: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("content-type", "application/json"),
        ("cache-control", cache),
        ("content-length", len),
        ("vary", "accept-encoding"),
    ]
}

#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    /// The single value of a header, `None` if absent.
    pub fn header(&self, name: &str) -> Option<&str> {
        let mut all = self.headers.get_all(name).iter();
        let first = all.next()?;
        assert!(all.next().is_none(), "header {name} is repeated: {:?}", self.headers);
        Some(first.to_str().unwrap())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// Asserts the status, and that exactly these headers (names lowercase) are present
    /// with exactly these values.
    #[track_caller]
    pub fn assert(&self, status: u16, headers: &[(&str, &str)]) {
        assert_eq!(self.status.as_u16(), status, "{}", self.text());
        let mut got: Vec<(String, String)> =
            self.headers.iter().map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap().to_string())).collect();
        got.sort();
        let mut want: Vec<(String, String)> = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        want.sort();
        assert_eq!(got, want, "headers of a {status} answer");
    }

    /// Asserts an error answer: the status, its JSON body exactly, and its headers.
    #[track_caller]
    pub fn assert_error(&self, status: u16, message: &str) {
        self.assert_error_with(status, json!({"error": message, "status": status}), &[]);
    }

    /// As `assert_error`, for answers under `/api/v1` (which may be compressed).
    #[track_caller]
    pub fn assert_api_error(&self, status: u16, message: &str) {
        self.assert_error_with(status, json!({"error": message, "status": status}), &[("vary", "accept-encoding")]);
    }

    /// As `assert_error`, with the whole body and the headers beyond the common ones.
    #[track_caller]
    pub fn assert_error_with(&self, status: u16, body: Value, extra: &[(&str, &str)]) {
        let len = self.body.len().to_string();
        let mut headers =
            vec![("content-type", "application/json"), ("cache-control", "no-cache"), ("content-length", len.as_str())];
        if status == 401 {
            headers.push(("www-authenticate", WWW_AUTHENTICATE));
        }
        if status == 405 && !extra.iter().any(|(k, _)| *k == "allow") {
            headers.push(("allow", "GET, HEAD"));
        }
        headers.extend_from_slice(extra);
        self.assert(status, &headers);
        assert_eq!(self.json(), body);
    }
}

/// Sleeps until the clock is past `id`.
pub fn wait_until_past(id: SnapshotId) {
    while SnapshotId::now() <= id {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
