//! In-process tests: the real router over a temp data dir, driven with tower `oneshot`.

use std::path::Path;

use asof::auth::{Scope, create_token};
use asof::domain::ArchiveName;
use asof::http::{AppState, ServeOptions, router};
use asof::publish::{NoProgress, PublishOptions, publish_dir};
use asof::store::Store;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("(none)", |v| v.to_str().unwrap())
    }
}

pub struct App {
    pub store: Store,
    pub state: AppState,
    _tmp: Option<tempfile::TempDir>,
}

impl App {
    /// On a data dir of its own, deleted with the app.
    pub fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let app = Self::open(tmp.path());
        Self { _tmp: Some(tmp), ..app }
    }

    /// On `data` (kept by the caller).
    pub fn open(data: &Path) -> Self {
        let store = Store::open_local(data).unwrap();
        let state = AppState::new(store.clone(), ServeOptions::default());
        Self { store, state, _tmp: None }
    }

    pub async fn call(&self, method: Method, uri: &str, auth: Option<&str>, body: Vec<u8>) -> Answer {
        let len = body.len() as u64;
        self.call_with(method, uri, auth, Some(len), body).await
    }

    /// Like `call`, with the Content-Length given (or left out) as is.
    pub async fn call_with(
        &self,
        method: Method,
        uri: &str,
        auth: Option<&str>,
        content_length: Option<u64>,
        body: Vec<u8>,
    ) -> Answer {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        if let Some(n) = content_length {
            req = req.header("content-length", n);
        }
        let resp = router(self.state.clone()).oneshot(req.body(Body::from(body)).unwrap()).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.unwrap().to_bytes().to_vec();
        Answer { status, headers, body }
    }

    pub async fn get(&self, uri: &str, auth: Option<&str>) -> Answer {
        self.call(Method::GET, uri, auth, Vec::new()).await
    }

    pub async fn commit(&self, archive: &str, auth: &str, body: serde_json::Value) -> Answer {
        let uri = format!("/api/v1/archives/{archive}/-/snapshots");
        self.call(Method::POST, &uri, Some(auth), serde_json::to_vec(&body).unwrap()).await
    }

    /// Publishes a tree of these files with the library and returns the snapshot ID.
    pub fn publish(&self, archive: &str, files: &[(&str, &[u8])]) -> String {
        let dir = tempfile::tempdir().unwrap();
        for (path, bytes) in files {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, bytes).unwrap();
        }
        let opts = PublishOptions { progress: &NoProgress, source: serde_json::Value::Null, always: true };
        publish_dir(&self.store, &archive.parse().unwrap(), dir.path(), &opts).unwrap().snapshot.to_string()
    }

    /// A new token with these scopes, as an Authorization value.
    pub fn token(&self, scopes: &[&str]) -> String {
        let scopes: Vec<Scope> = scopes.iter().map(|s| s.parse().unwrap()).collect();
        let (_, token) = create_token(self.store.auth.as_ref(), "t", &scopes, None).unwrap();
        format!("Bearer {token}")
    }

    pub fn make_private(&self, archive: &str) {
        self.store.auth.set_private(&archive.parse::<ArchiveName>().unwrap(), true, 0).unwrap();
    }
}
