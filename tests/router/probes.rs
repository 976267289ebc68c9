//! `/healthz` and `/metrics`.

use super::*;

#[tokio::test]
async fn healthz_answers_ok_uncached() {
    let app = App::start();
    let r = app.get("/healthz").await;
    r.assert(
        200,
        &[("content-type", "text/plain; charset=utf-8"), ("cache-control", "no-cache"), ("content-length", "3")],
    );
    assert_eq!(r.body, "ok\n");
    let r = app.call("POST", "/healthz", &[], Body::empty()).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
}

/// The value of one sample line of the Prometheus text, e.g. `asof_http_requests_total{status="200"}`.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn metrics_count_requests_bytes_lookups_and_auth_failures() {
    let app = App::start();
    let (id1, tz) = (app.id1, "pool/main/a/asof-tzdata/asof-tzdata_2025b-0+deb12u1_all.deb");
    let size = bytes("v1", tz).len() as f64;
    assert_eq!(app.get(&format!("/debian/{id1}/{tz}")).await.status, StatusCode::OK);
    assert_eq!(app.get(&format!("/debian/{id1}/{tz}")).await.status, StatusCode::OK);
    assert_eq!(app.get(&format!("/debian/{id1}/nope")).await.status, StatusCode::NOT_FOUND);
    let auth = [("authorization", "Bearer hunter2")];
    let r = app.call("POST", "/api/v1/blobs/missing", &auth, Body::from("{}")).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    let r = app.get("/metrics").await;
    let len = r.body.len().to_string();
    r.assert(
        200,
        &[("content-type", "text/plain; version=0.0.4"), ("cache-control", "no-cache"), ("content-length", &len)],
    );
    let m = r.text();
    // The request for /metrics itself is counted after its answer is rendered.
    assert_eq!(sample(&m, "asof_http_requests_total{status=\"200\"}"), Some(2.0), "{m}");
    assert_eq!(sample(&m, "asof_http_requests_total{status=\"404\"}"), Some(1.0), "{m}");
    assert_eq!(sample(&m, "asof_http_requests_total{status=\"401\"}"), Some(1.0), "{m}");
    assert_eq!(sample(&m, "asof_http_response_body_bytes_total"), Some(2.0 * size), "{m}");
    assert_eq!(sample(&m, "asof_lookup_duration_seconds_count"), Some(3.0), "{m}");
    assert_eq!(sample(&m, "asof_auth_failures_total{reason=\"malformed\"}"), Some(1.0), "{m}");
    let again = app.get("/metrics").await.text();
    assert_eq!(sample(&again, "asof_http_requests_total{status=\"200\"}"), Some(3.0), "{again}");
}
