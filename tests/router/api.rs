//! The read side of the JSON API under `/api/v1`.

use super::*;

#[track_caller]
fn assert_json(r: &Resp, cache: &str, want: Value) {
    let len = r.body.len().to_string();
    r.assert(200, &api_headers(cache, &len));
    assert_eq!(r.json(), want);
}

#[tokio::test]
async fn archives_and_one_archive() {
    let app = App::start();
    let summary =
        json!({"name": "debian", "snapshots": 2, "first": app.id1.to_string(), "latest": app.id2.to_string()});
    // The list differs by caller (private archives only for their readers): Vary says so.
    let list = app.get("/api/v1/archives").await;
    let len = list.body.len().to_string();
    let mut want = api_headers(SHORT, &len);
    want.push(("vary", "authorization"));
    list.assert(200, &want);
    assert_eq!(list.json(), json!({"archives": [summary.clone()]}));
    assert_json(&app.get("/api/v1/archives/debian").await, SHORT, summary.clone());
    assert_json(&app.get("/api/v1/archives/debian/").await, SHORT, summary);
    app.get("/api/v1/archives/nope").await.assert_api_error(404, "no archive named 'nope'");
    app.get("/api/v1/archives/nope/-/latest").await.assert_api_error(404, "no archive named 'nope'");
}

#[tokio::test]
async fn snapshots_page_by_cursor_filter_and_order() {
    let app = App::start();
    let (id1, id2) = (app.id1, app.id2);
    let (s1, s2) = (snapshot_json(&app.snapshot(id1), None, None), snapshot_json(&app.snapshot(id2), None, None));
    let list = |snaps: Vec<Value>, next: Option<SnapshotId>| json!({"archive": "debian", "snapshots": snaps, "next_cursor": next.map(|n| n.to_string())});
    let api = "/api/v1/archives/debian/-/snapshots";
    assert_json(&app.get(api).await, SHORT, list(vec![s2.clone(), s1.clone()], None));
    assert_json(&app.get(&format!("{api}?limit=1")).await, SHORT, list(vec![s2.clone()], Some(id2)));
    assert_json(&app.get(&format!("{api}?limit=1&cursor={id2}")).await, SHORT, list(vec![s1.clone()], None));
    assert_json(&app.get(&format!("{api}?order=asc&limit=1")).await, SHORT, list(vec![s1.clone()], Some(id1)));
    assert_json(
        &app.get(&format!("{api}?order=asc&since={}", app.between())).await,
        SHORT,
        list(vec![s2.clone()], None),
    );
    assert_json(&app.get(&format!("{api}?until={}", app.between())).await, SHORT, list(vec![s1.clone()], None));
    assert_json(&app.get(&format!("{api}?limit=1000&order=desc")).await, SHORT, list(vec![s2, s1], None));

    for (query, message) in [
        ("limit=0", "parameter 'limit' must be between 1 and 1000".to_string()),
        ("limit=1001", "parameter 'limit' must be between 1 and 1000".to_string()),
        ("order=sideways", "parameter 'order' must be 'asc' or 'desc', not 'sideways'".to_string()),
        ("since=yesterday", format!("parameter 'since': 'yesterday' is not a snapshot ID: {FORMAT_HELP}")),
        ("until=20241301T000000Z", format!("parameter 'until': '20241301T000000Z' is not a valid date and time: {FORMAT_HELP}")),
        ("cursor=x", format!("parameter 'cursor': 'x' is not a snapshot ID: {FORMAT_HELP}")),
        (
            "bogus=1",
            "Failed to deserialize query string: bogus: unknown field `bogus`, expected one of `since`, `until`, `limit`, `cursor`, `order`"
                .to_string(),
        ),
        ("limit=ten", "Failed to deserialize query string: limit: invalid digit found in string".to_string()),
    ] {
        app.get(&format!("{api}?{query}")).await.assert_api_error(400, &message);
    }
    app.get("/api/v1/archives/nope/-/snapshots").await.assert_api_error(404, "no archive named 'nope'");
}

#[tokio::test]
async fn one_snapshot_with_its_neighbours() {
    let app = App::start();
    let (id1, id2) = (app.id1, app.id2);
    let api = "/api/v1/archives/debian/-/snapshots";
    let (s1, s2) = (app.snapshot(id1), app.snapshot(id2));
    assert_json(&app.get(&format!("{api}/{id1}")).await, SHORT, snapshot_detail_json(&s1, None, Some(id2)));
    assert_json(&app.get(&format!("{api}/{id2}")).await, SHORT, snapshot_detail_json(&s2, Some(id1), None));
    let between = app.between();
    app.get(&format!("{api}/{between}"))
        .await
        .assert_api_error(404, &format!("archive 'debian' has no snapshot {between}"));
    app.get(&format!("{api}/latest"))
        .await
        .assert_api_error(404, &format!("'latest' is not a snapshot ID: {FORMAT_HELP}"));
}

#[tokio::test]
async fn manifest_streams_every_file_as_ndjson() {
    let app = App::start();
    for (id, version) in [(app.id1, "v1"), (app.id2, "v2")] {
        let r = app.get(&format!("/api/v1/archives/debian/-/snapshots/{id}/manifest")).await;
        r.assert(
            200,
            &[("content-type", "application/x-ndjson"), ("cache-control", IMMUTABLE), ("vary", "accept-encoding")],
        );
        let want: String = tree_files(version)
            .iter()
            .map(|(path, b)| {
                format!(
                    "{{\"kind\":\"file\",\"path\":\"{path}\",\"size\":{},\"sha256\":\"{}\"}}\n",
                    b.len(),
                    sha256_hex(b)
                )
            })
            .collect();
        assert_eq!(r.text(), want, "{version}");
    }
    let between = app.between();
    app.get(&format!("/api/v1/archives/debian/-/snapshots/{between}/manifest"))
        .await
        .assert_api_error(404, &format!("archive 'debian' has no snapshot {between}"));
}

#[tokio::test]
async fn resolve_and_latest() {
    let app = App::start();
    let (id1, id2) = (app.id1, app.id2);
    let (s1, s2) = (app.snapshot(id1), app.snapshot(id2));
    let resolve = |id: SnapshotId| format!("/api/v1/archives/debian/-/resolve/{id}");
    let between = app.between();
    assert_json(
        &app.get(&resolve(between)).await,
        IMMUTABLE,
        json!({"requested": between.to_string(), "exact": false, "final": true, "snapshot": snapshot_json(&s1, None, None)}),
    );
    assert_json(
        &app.get(&resolve(id2)).await,
        IMMUTABLE,
        json!({"requested": id2.to_string(), "exact": true, "final": true, "snapshot": snapshot_json(&s2, None, None)}),
    );
    let early = at(id1.unix() - 1);
    app.get(&resolve(early))
        .await
        .assert_api_error(404, &format!("{early} is before the first snapshot of 'debian' ({id1})"));
    app.get("/api/v1/archives/debian/-/resolve/not-an-id")
        .await
        .assert_api_error(404, &format!("'not-an-id' is not a snapshot ID: {FORMAT_HELP}"));
    app.get(&resolve(early).replace("/debian/", "/nope/")).await.assert_api_error(404, "no archive named 'nope'");

    assert_json(&app.get("/api/v1/archives/debian/-/latest").await, SHORT, snapshot_detail_json(&s2, Some(id1), None));
}

#[tokio::test]
async fn unknown_actions_and_methods() {
    let app = App::start();
    let expected = "expected snapshots, snapshots/<ID>, snapshots/<ID>/manifest, resolve/<ID>, latest, diff, packages, packages/<name>, packages/<name>/first, sources/<name> or space";
    for action in ["frobnicate", "snapshots/x/y/z", "resolve"] {
        app.get(&format!("/api/v1/archives/debian/-/{action}"))
            .await
            .assert_api_error(404, &format!("unknown API action '{action}': {expected}"));
    }
    // Archive names are validated like everywhere else.
    app.get("/api/v1/archives/Debian/-/latest").await.assert_api_error(
        404,
        "no such archive: archive name segment 'Debian' is invalid: each segment must match [a-z0-9][a-z0-9._-]* and segments are joined by '/'",
    );
    // Writes to read-only actions.
    let r = app.call("POST", "/api/v1/archives/debian/-/latest", &[("content-length", "2")], Body::from("{}")).await;
    r.assert_error_with(
        405,
        json!({"error": "method not allowed: only GET and HEAD are served here", "status": 405}),
        &[("vary", "accept-encoding")],
    );
    // The Allow header names what the path does answer.
    for (method, path, allow) in [
        ("PUT", "/api/v1/archives/debian/-/snapshots", "GET, HEAD, POST"),
        ("POST", "/api/v1/archives/debian", "GET, HEAD, PUT"),
    ] {
        let r = app.call(method, path, &[("content-length", "2")], Body::from("{}")).await;
        let message = format!("method not allowed: this path answers {allow}");
        r.assert_error_with(
            405,
            json!({"error": message, "status": 405}),
            &[("vary", "accept-encoding"), ("allow", allow)],
        );
    }
    // Routes axum answers 405 for by itself get the same JSON body.
    for (method, path, allow) in [("POST", "/healthz", "GET, HEAD"), ("DELETE", "/api/v1/archives", "GET, HEAD")] {
        let r = app.call(method, path, &[], Body::empty()).await;
        let message = format!("method not allowed: this path answers {allow}");
        r.assert_error_with(405, json!({"error": message, "status": 405}), &[]);
    }
}

/// A Release with a Valid-Until in the past: the snapshot's JSON and its page say so.
#[tokio::test]
async fn an_expired_release_is_shown_as_expired() {
    let app = App::start();
    let id = publish(&app.store, "security", &fixture("expired"));
    let s = app.store.catalog.resolve(&archive("security"), id).unwrap().unwrap();
    let mut want = snapshot_json(&s, None, None);
    want["releases"] =
        json!([{"path": "dists/stable/InRelease", "valid_until": "2024-01-08T00:00:00Z", "expired": true}]);
    assert_json(&app.get(&format!("/api/v1/archives/security/-/snapshots/{id}")).await, SHORT, want.clone());
    assert_json(&app.get("/api/v1/archives/security/-/latest").await, SHORT, want);

    let r = app.get(&format!("/security/{id}/")).await;
    assert_eq!(r.status, StatusCode::OK);
    let row = format!(
        "<tr><td><a href=\"/security/{id}/dists/stable/InRelease\">dists/stable/InRelease</a></td>\
         <td>2024-01-08T00:00:00Z</td>\
         <td>yes: apt refuses it unless told not to check (Acquire::Check-Valid-Until=false)</td></tr>"
    );
    assert!(r.text().contains(&row), "{row} in {}", r.text());
    // The fixture without Valid-Until: none, not expired, and the page of a snapshot with a
    // next one is final.
    let r = app.get(&format!("/debian/{}/", app.id1)).await;
    let row = format!(
        "<tr><td><a href=\"/debian/{}/dists/stable/InRelease\">dists/stable/InRelease</a></td><td>none</td><td>no</td></tr>",
        app.id1
    );
    assert!(r.text().contains(&row), "{row} in {}", r.text());
    assert_eq!(r.header("cache-control"), Some(IMMUTABLE));
}

/// A Valid-Until still ahead: not expired, and the page stays short-lived (it will change
/// when the date passes) even once a later snapshot exists.
#[tokio::test]
async fn a_release_not_yet_expired_keeps_its_page_short_lived() {
    let app = App::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("dists/future")).unwrap();
    std::fs::write(
        dir.path().join("dists/future/Release"),
        "Suite: future\nValid-Until: Fri, 01 Jan 2100 00:00:00 UTC\nSHA256:\n",
    )
    .unwrap();
    let first = publish(&app.store, "fut", dir.path());
    app.store.catalog.seal(first.unix() + GAP).unwrap();
    let second = publish(&app.store, "fut", dir.path());
    let r = app.get(&format!("/api/v1/archives/fut/-/snapshots/{first}")).await;
    assert_eq!(
        r.json()["releases"],
        json!([{"path": "dists/future/Release", "valid_until": "2100-01-01T00:00:00Z", "expired": false}])
    );
    assert_eq!(r.json()["next"], json!(second.to_string()));
    let r = app.get(&format!("/fut/{first}/")).await;
    assert_eq!(r.header("cache-control"), Some(SHORT));
    assert!(r.text().contains("<td>2100-01-01T00:00:00Z</td><td>no</td>"), "{}", r.text());
}
