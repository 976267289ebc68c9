//! Rate limits: 429 with Retry-After and a JSON body, loopback exemption, token buckets
//! apart from address buckets, a higher limit for immutable files, and the metric. The
//! router is driven in process with the client address set as the accept loop sets it;
//! one test goes through the real binary.

mod common;

use std::net::SocketAddr;

use asof::http::{AppState, Rate, RateLimitOptions, ServeOptions, router};
use asof::store::Store;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use tower::ServiceExt;

struct Answer {
    status: StatusCode,
    retry_after: Option<u64>,
    cache_control: String,
    body: serde_json::Value,
}

struct App {
    app: axum::Router,
    state: AppState,
    _dir: tempfile::TempDir,
}

impl App {
    fn new(limits: RateLimitOptions) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_local(dir.path()).unwrap();
        let state = AppState::new(store, ServeOptions { rate_limits: limits, ..ServeOptions::default() });
        Self { app: router(state.clone()), state, _dir: dir }
    }

    async fn get(&self, from: &str, path: &str, auth: Option<&str>) -> Answer {
        let mut req = Request::get(path).body(Body::empty()).unwrap();
        req.extensions_mut().insert(ConnectInfo(from.parse::<SocketAddr>().unwrap()));
        if let Some(a) = auth {
            req.headers_mut().insert(header::AUTHORIZATION, a.parse().unwrap());
        }
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let retry_after = resp.headers().get(header::RETRY_AFTER).map(|v| v.to_str().unwrap().parse().unwrap());
        let cache_control =
            resp.headers().get(header::CACHE_CONTROL).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
        let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        Answer { status, retry_after, cache_control, body }
    }

    fn throttled(&self, class: &str) -> u64 {
        let text = self.state.metrics.render();
        let prefix = format!("asof_throttled_requests_total{{class=\"{class}\"}} ");
        text.lines().find_map(|l| l.strip_prefix(&prefix)).map_or(0, |v| v.parse().unwrap())
    }
}

/// One request every 100 s after the burst: nothing refills during a test.
fn slow(burst: u32) -> Rate {
    Rate::new(0.01, burst).unwrap()
}

fn refused(class: &str, who: &str) -> serde_json::Value {
    serde_json::json!({
        "error": format!("too many {class} requests from this {who}; retry after the time in Retry-After"),
        "status": 429
    })
}

#[tokio::test]
async fn over_the_limit_answers_429_with_retry_after_and_a_json_body() {
    let app = App::new(RateLimitOptions { listings: slow(2), ..RateLimitOptions::default() });
    for _ in 0..2 {
        assert_eq!(app.get("203.0.113.7:40000", "/", None).await.status, StatusCode::OK);
    }
    let over = app.get("203.0.113.7:40001", "/", None).await;
    assert_eq!(over.status, StatusCode::TOO_MANY_REQUESTS);
    let retry = over.retry_after.expect("Retry-After header");
    assert!((99..=100).contains(&retry), "Retry-After {retry}: one token per 100 s");
    assert_eq!(over.body, refused("listings", "address"));
    assert_eq!(over.cache_control, "no-cache");
    assert_eq!(app.throttled("listings"), 1);
    // Another address has its own bucket.
    assert_eq!(app.get("198.51.100.1:40000", "/", None).await.status, StatusCode::OK);
    assert_eq!(app.throttled("listings"), 1);
}

#[tokio::test]
async fn loopback_is_exempt_by_default_and_limited_when_configured() {
    let exempt = App::new(RateLimitOptions { listings: slow(1), ..RateLimitOptions::default() });
    for from in ["127.0.0.1:5000", "[::1]:5000", "[::ffff:127.0.0.1]:5000", "127.0.0.1:5000", "[::1]:5000"] {
        assert_eq!(exempt.get(from, "/", None).await.status, StatusCode::OK, "from {from}");
    }
    assert_eq!(exempt.throttled("listings"), 0);

    let limited =
        App::new(RateLimitOptions { exempt_loopback: false, listings: slow(1), ..RateLimitOptions::default() });
    assert_eq!(limited.get("127.0.0.1:5000", "/", None).await.status, StatusCode::OK);
    let over = limited.get("127.0.0.1:5001", "/", None).await;
    assert_eq!(over.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(over.body, refused("listings", "address"));
    assert_eq!(limited.throttled("listings"), 1);
}

#[tokio::test]
async fn a_token_has_its_own_bucket_whatever_address_it_comes_from() {
    // `/healthz` is in the api class.
    let app = App::new(RateLimitOptions { api: slow(2), ..RateLimitOptions::default() });
    let bearer = Some("Bearer s3cret-token");
    assert_eq!(app.get("203.0.113.1:1", "/healthz", bearer).await.status, StatusCode::OK);
    assert_eq!(app.get("203.0.113.1:1", "/healthz", bearer).await.status, StatusCode::OK);
    // A fresh address, the same token: the token's bucket is empty.
    let other = app.get("203.0.113.2:1", "/healthz", bearer).await;
    assert_eq!(other.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(other.body, refused("api", "token"));
    // The same token sent as the password of HTTP Basic (as apt does) is the same bucket.
    let basic = format!("Basic {}", base64_encode("apt:s3cret-token"));
    assert_eq!(app.get("203.0.113.3:1", "/healthz", Some(&basic)).await.body, refused("api", "token"));
    // Another token is not affected.
    assert_eq!(app.get("203.0.113.4:1", "/healthz", Some("Bearer other")).await.status, StatusCode::OK);
    // Without a token, the first address is still limited by its own bucket.
    let first = app.get("203.0.113.1:1", "/healthz", None).await;
    assert_eq!(first.body, refused("api", "address"));
    // The second address spent one of its two on the refused request.
    assert_eq!(app.get("203.0.113.2:1", "/healthz", None).await.status, StatusCode::OK);
    assert_eq!(app.throttled("api"), 3);
}

#[tokio::test]
async fn immutable_files_have_a_limit_apart_from_listings() {
    let app = App::new(RateLimitOptions { listings: slow(1), files_immutable: slow(3), ..RateLimitOptions::default() });
    let from = "192.0.2.9:7000";
    assert_eq!(app.get(from, "/", None).await.status, StatusCode::OK);
    assert_eq!(app.get(from, "/", None).await.status, StatusCode::TOO_MANY_REQUESTS);
    // Files of an old ID are still served (404 here: there is no such archive).
    let file = "/debian/20200101T000000Z/dists/stable/InRelease";
    for _ in 0..3 {
        assert_eq!(app.get(from, file, None).await.status, StatusCode::NOT_FOUND);
    }
    let over = app.get(from, file, None).await;
    assert_eq!(over.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(over.body, refused("files_immutable", "address"));
    assert_eq!((app.throttled("listings"), app.throttled("files_immutable"), app.throttled("files")), (1, 1, 0));
}

#[tokio::test]
async fn disabled_limits_never_refuse() {
    let app = App::new(RateLimitOptions { enabled: false, listings: slow(1), ..RateLimitOptions::default() });
    for _ in 0..5 {
        assert_eq!(app.get("203.0.113.7:1", "/", None).await.status, StatusCode::OK);
    }
    assert_eq!(app.throttled("listings"), 0);
}

fn base64_encode(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Through the real server: the accept loop hands the client address to the limiter, and
/// the config file sets the limits.
#[test]
fn the_server_limits_by_config_file() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("asof.toml");
    std::fs::write(
        &config,
        "[server.rate_limits]\nexempt_loopback = false\nlistings = { per_second = 0.01, burst = 2 }\n",
    )
    .unwrap();
    let server = common::Server::start_with(&tmp.path().join("data"), &["--config", config.to_str().unwrap()]);
    assert_eq!(server.get("/").status, 200);
    assert_eq!(server.get("/").status, 200);
    let over = server.get("/");
    assert_eq!(over.status, 429);
    let retry: u64 = over.header("retry-after").parse().unwrap();
    assert!((99..=100).contains(&retry), "Retry-After {retry}");
    assert_eq!(over.json(), refused("listings", "address"));
    let metrics = server.get("/metrics").text();
    assert!(metrics.lines().any(|l| l == "asof_throttled_requests_total{class=\"listings\"} 1"), "{metrics}");
}
