//! The rollout channel API: exact JSON, statuses and errors of `/api/v1/channels/...`.

use base64::Engine;

use super::*;

const API: &str = "/api/v1/channels/prod";

/// Replaces every RFC 3339 time in `v` by "<t>", after checking it lies in `lo..=hi` (ms).
fn times(v: &mut Value, lo: i64, hi: i64) {
    match v {
        Value::String(s) if s.len() == 24 && s.ends_with('Z') && s.as_bytes()[10] == b'T' => {
            let t = chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis();
            assert!((lo..=hi).contains(&t), "{s} outside the test's window");
            *s = "<t>".into();
        }
        Value::Array(a) => a.iter_mut().for_each(|x| times(x, lo, hi)),
        Value::Object(o) => o.values_mut().for_each(|x| times(x, lo, hi)),
        _ => {}
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn spec(advance: &str) -> Value {
    json!({
        "archive": "debian",
        "rings": [
            {"name": "canary", "percent": 50, "soak_secs": 3600},
            {"name": "broad", "percent": 100, "soak_secs": 0},
        ],
        "gate": {"max_failure_rate": 0.25, "min_reports": 2},
        "advance": advance,
        "sources": "stable main",
    })
}

fn rings_json() -> Value {
    json!([
        {"name": "canary", "percent": 50.0, "soak_secs": 3600},
        {"name": "broad", "percent": 100.0, "soak_secs": 0},
    ])
}

impl App {
    async fn send(&self, method: &str, uri: &str, token: Option<&str>, body: Option<Value>) -> Resp {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers: Vec<(&str, &str)> = vec![("host", "asof.test")];
        if let Some(a) = &auth {
            headers.push(("authorization", a));
        }
        let bytes = body.map(|b| serde_json::to_vec(&b).unwrap()).unwrap_or_default();
        let len = bytes.len().to_string();
        headers.push(("content-length", &len));
        self.call(method, uri, &headers, Body::from(bytes)).await
    }

    /// A node of the fixture channel `prod` in this ring (0 canary, 1 broad).
    fn node_in(&self, ring: usize) -> String {
        nodes_in(ring, 1).remove(0)
    }
}

/// The first `n` nodes `web-<i>` that the fixture channel `prod` puts in `ring`.
fn nodes_in(ring: usize, n: usize) -> Vec<String> {
    let c: asof::domain::ChannelName = "prod".parse().unwrap();
    let rings = [
        asof::rollout::Ring { name: "canary".into(), basis_points: 5000, soak_secs: 3600 },
        asof::rollout::Ring { name: "broad".into(), basis_points: 10_000, soak_secs: 0 },
    ];
    (0..)
        .map(|i| format!("web-{i}"))
        .filter(|x| asof::rollout::assign::ring_of(&c, &x.parse().unwrap(), &rings) == ring)
        .take(n)
        .collect()
}

#[track_caller]
fn assert_channel(r: &Resp, status: u16, lo: i64, want: Value) {
    let len = r.body.len().to_string();
    r.assert(
        status,
        &[
            ("content-type", "application/json"),
            ("cache-control", "no-store"),
            ("content-length", &len),
            ("vary", "accept-encoding"),
        ],
    );
    let mut got = r.json();
    times(&mut got, lo, now());
    assert_eq!(got, want);
}

#[tokio::test]
async fn a_channel_is_created_changed_and_shown() {
    let app = App::start();
    let admin = app.token(&["admin"]);
    let t0 = now();
    let created = app.send("PUT", API, Some(&admin), Some(spec("auto"))).await;
    let want = json!({
        "channel": "prod",
        "archive": "debian",
        "rings": rings_json(),
        "gate": {"max_failure_rate": 0.25, "min_reports": 2},
        "advance": "auto",
        "sources": "stable main",
        "created_at": "<t>",
        "updated_at": "<t>",
        "rollout": null,
    });
    assert_channel(&created, 201, t0, want.clone());
    assert_channel(&app.send("GET", API, None, None).await, 200, t0, want.clone());
    let mut manual = want.clone();
    manual["advance"] = json!("manual");
    let scoped = app.token(&["rollout:prod"]);
    assert_channel(&app.send("PUT", API, Some(&scoped), Some(spec("manual"))).await, 200, t0, manual.clone());
    let list = app.send("GET", "/api/v1/channels", None, None).await;
    let mut got = list.json();
    times(&mut got, t0, now());
    assert_eq!(got, json!({"channels": [manual]}));

    // Who may change it.
    app.send("PUT", API, None, Some(spec("auto")))
        .await
        .assert_api_error(401, "an admin token or one with scope rollout:prod is required");
    for scopes in [&["read:*"][..], &["publish:debian"], &["rollout:staging"]] {
        let t = app.token(scopes);
        app.send("PUT", API, Some(&t), Some(spec("auto")))
            .await
            .assert_api_error(403, "this token may not change channel 'prod'");
        app.send("POST", &format!("{API}/pause"), Some(&t), None)
            .await
            .assert_api_error(403, "this token may not change channel 'prod'");
    }
}

#[tokio::test]
async fn bad_channels_are_refused_with_the_reason() {
    let app = App::start();
    let admin = app.token(&["admin"]);
    let put = |body: Value| {
        let admin = admin.clone();
        let app = &app;
        async move { app.send("PUT", API, Some(&admin), Some(body)).await }
    };
    let mut not_whole = spec("auto");
    not_whole["rings"][1]["percent"] = json!(90);
    put(not_whole).await.assert_api_error(
        400,
        "the last ring must cover 100 percent of the fleet, so that a rollout reaches every node",
    );
    let mut shrinking = spec("auto");
    shrinking["rings"][0]["percent"] = json!(100);
    put(shrinking).await.assert_api_error(
        400,
        "ring 'broad': percent must be above 0, at most 100, in steps of 0.01, and above the previous ring's (rings are cumulative)",
    );
    let mut gate = spec("auto");
    gate["gate"]["min_reports"] = json!(0);
    put(gate).await.assert_api_error(400, "gate: max_failure_rate must be between 0 and 1 and min_reports at least 1");
    let mut missing = spec("auto");
    missing["archive"] = json!("nope");
    put(missing).await.assert_api_error(400, "archive: no archive named 'nope'");
    let mut extra = spec("auto");
    extra["colour"] = json!("red");
    let r = put(extra).await;
    assert_eq!(r.status, 400);
    assert!(
        r.json()["error"].as_str().unwrap().starts_with("invalid JSON body: unknown field `colour`"),
        "{}",
        r.text()
    );
    app.send("PUT", "/api/v1/channels/Prod", Some(&admin), Some(spec("auto"))).await.assert_api_error(
        400,
        "channel name 'Prod' is invalid: it must match [a-z0-9][a-z0-9._-]* (one segment, no '/')",
    );
    app.send("GET", API, None, None).await.assert_api_error(404, "no channel named 'prod'");
    app.send("GET", &format!("{API}/nodes/web-1"), None, None).await.assert_api_error(404, "no channel named 'prod'");
    app.send("GET", &format!("{API}/history"), None, None).await.assert_api_error(404, "no channel named 'prod'");
    app.send("POST", &format!("{API}/pause"), Some(&admin), None)
        .await
        .assert_api_error(404, "no channel named 'prod'");
    app.send("POST", &format!("{API}/explode"), Some(&admin), None).await.assert_api_error(
        404,
        "no channel action 'explode': expected rollouts, pause, resume, abort, advance or reports",
    );
}

#[tokio::test]
async fn a_rollout_moves_ring_by_ring_and_answers_each_node() {
    let app = App::start();
    let admin = app.token(&["admin"]);
    let t0 = now();
    app.send("PUT", API, Some(&admin), Some(spec("manual"))).await;
    let (canary, broad) = (app.node_in(0), app.node_in(1));
    let node = |n: &str, ring: &str, snap: Option<SnapshotId>| {
        json!({
            "channel": "prod",
            "node": n,
            "ring": ring,
            "snapshot": snap.map(|s| s.to_string()),
            "since": snap.map(|_| "<t>"),
            "sources_line": snap.map(|s| format!("deb http://asof.test/debian/{s}/ stable main")),
        })
    };
    assert_channel(
        &app.send("GET", &format!("{API}/nodes/{canary}"), None, None).await,
        200,
        t0,
        node(&canary, "canary", None),
    );
    app.send("POST", &format!("{API}/pause"), Some(&admin), None).await.assert_api_error(409, "channel has no rollout");

    // Non-exact IDs resolve by floor: between the two snapshots rolls out the first.
    let between = app.between().to_string();
    let r = app.send("POST", &format!("{API}/rollouts"), Some(&admin), Some(json!({"snapshot": between}))).await;
    let (id1, id2) = (app.id1.to_string(), app.id2.to_string());
    let ring = |name: &str, snap: Option<&str>, started: bool| {
        json!({"name": name, "snapshot": snap, "since": started.then_some("<t>"), "from": null,
               "started_at": started.then_some("<t>"), "reports": 0, "failures": 0})
    };
    let mut rollout = json!({
        "id": 1, "snapshot": id1, "requested": between, "state": "running", "reason": null,
        "started_at": "<t>", "ended_at": null, "next_ring_at": null,
        "rings": [ring("canary", Some(&id1), true), ring("broad", None, false)],
    });
    assert_channel(
        &r,
        201,
        t0,
        json!({
            "channel": "prod", "archive": "debian", "rings": rings_json(),
            "gate": {"max_failure_rate": 0.25, "min_reports": 2}, "advance": "manual", "sources": "stable main",
            "created_at": "<t>", "updated_at": "<t>", "rollout": rollout.clone(),
        }),
    );
    assert_channel(
        &app.send("GET", &format!("{API}/nodes/{canary}"), None, None).await,
        200,
        t0,
        node(&canary, "canary", Some(app.id1)),
    );
    assert_channel(
        &app.send("GET", &format!("{API}/nodes/{broad}"), None, None).await,
        200,
        t0,
        node(&broad, "broad", None),
    );

    // Pause, and what a paused rollout refuses.
    let r = app.send("POST", &format!("{API}/pause"), Some(&admin), None).await;
    rollout["state"] = json!("paused");
    rollout["reason"] = json!("paused by test");
    assert_eq!(r.status, 200);
    let mut got = r.json();
    times(&mut got, t0, now());
    assert_eq!(got["rollout"], rollout);
    app.send("POST", &format!("{API}/pause"), Some(&admin), None)
        .await
        .assert_api_error(409, "the rollout is already paused");
    app.send("POST", &format!("{API}/advance"), Some(&admin), None)
        .await
        .assert_api_error(409, "the rollout is paused (paused by test); resume it first");
    app.send("POST", &format!("{API}/resume"), Some(&admin), None).await;
    let r = app.send("POST", &format!("{API}/advance"), Some(&admin), None).await;
    assert_eq!(r.json()["rollout"]["state"], "completed");
    assert_channel(
        &app.send("GET", &format!("{API}/nodes/{broad}"), None, None).await,
        200,
        t0,
        node(&broad, "broad", Some(app.id1)),
    );

    // A second rollout, aborted: every ring back on the first.
    app.send("POST", &format!("{API}/rollouts"), Some(&admin), Some(json!({"snapshot": id2}))).await;
    app.send("POST", &format!("{API}/rollouts"), Some(&admin), Some(json!({"snapshot": id2})))
        .await
        .assert_api_error(409, &format!("snapshot {id2} is already what this channel rolls out"));
    assert_eq!(app.send("GET", &format!("{API}/nodes/{canary}"), None, None).await.json()["snapshot"], id2);
    let r = app.send("POST", &format!("{API}/abort"), Some(&admin), None).await;
    assert_eq!(r.json()["rollout"]["state"], "aborted");
    for n in [&canary, &broad] {
        assert_eq!(app.send("GET", &format!("{API}/nodes/{n}"), None, None).await.json()["snapshot"], id1);
    }
    app.send("POST", &format!("{API}/resume"), Some(&admin), None)
        .await
        .assert_api_error(409, "the rollout is aborted: only a running or paused rollout can be changed");
    app.send("POST", &format!("{API}/rollouts"), Some(&admin), Some(json!({"snapshot": "19990101T000000Z"})))
        .await
        .assert_api_error(400, "archive 'debian' has no snapshot at or before 19990101T000000Z");
    app.send("POST", &format!("{API}/rollouts"), Some(&admin), Some(json!({"snapshot": "yesterday"})))
        .await
        .assert_api_error(400, &format!("snapshot: 'yesterday' is not a snapshot ID: {FORMAT_HELP}"));

    let h = app.send("GET", &format!("{API}/history"), None, None).await;
    let mut got = h.json();
    times(&mut got, t0, now());
    let actions: Vec<(String, String)> = got["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["actor"].as_str().unwrap().to_string(), e["action"].as_str().unwrap().to_string()))
        .collect();
    let want: Vec<(String, String)> = [
        ("test", "channel.created"),
        ("test", "rollout.started"),
        ("test", "ring.started"),
        ("test", "rollout.paused"),
        ("test", "rollout.resumed"),
        ("test", "ring.started"),
        ("asof", "rollout.completed"),
        ("test", "rollout.started"),
        ("test", "ring.started"),
        ("test", "rollout.aborted"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(actions, want);
    assert_eq!(
        got["events"][3],
        json!({"at": "<t>", "actor": "test", "action": "rollout.paused",
        "detail": {"rollout": 1, "snapshot": id1, "reason": "paused by test"}})
    );
}

#[tokio::test]
async fn failure_reports_over_the_gate_pause_the_rollout() {
    let app = App::start();
    let admin = app.token(&["admin"]);
    let t0 = now();
    app.send("PUT", API, Some(&admin), Some(spec("auto"))).await;
    app.send("POST", &format!("{API}/rollouts"), Some(&admin), Some(json!({"snapshot": app.id2.to_string()}))).await;
    let canary = nodes_in(0, 2);
    let report = |node: &str, outcome: &str| json!({"node": node, "outcome": outcome});
    let r = app.send("POST", &format!("{API}/reports"), Some(&admin), Some(report(&canary[0], "success"))).await;
    let mut got = r.json();
    // Automatic: the next ring starts one soak (an hour) after the first.
    let at = |k: &str| chrono::DateTime::parse_from_rfc3339(got["rollout"][k].as_str().unwrap()).unwrap();
    assert_eq!((at("next_ring_at") - at("started_at")).num_seconds(), 3600);
    times(&mut got, t0, now() + 3_601_000);
    assert_eq!(got["report"], json!({"node": canary[0], "ring": "canary", "outcome": "success"}));
    assert_eq!(got["rollout"]["rings"][0]["reports"], 1);
    let r = app.send("POST", &format!("{API}/reports"), Some(&admin), Some(report(&canary[1], "failure"))).await;
    let got = r.json();
    assert_eq!(got["rollout"]["state"], "paused");
    assert_eq!(
        got["rollout"]["reason"],
        "health gate: 1 of 2 reporting nodes of ring 'canary' failed (50.0%), over the channel's 25.0%"
    );
    assert_eq!(got["rollout"]["rings"][0]["failures"], 1);
    app.send("POST", &format!("{API}/reports"), Some(&admin), Some(report("-bad", "failure"))).await.assert_api_error(
        400,
        "node: node name '-bad' is invalid: it must match [A-Za-z0-9][A-Za-z0-9._-]* (a host name)",
    );
    let r = app.send("POST", &format!("{API}/reports"), Some(&admin), Some(report("x", "meh"))).await;
    assert_eq!(r.status, 400, "{}", r.text());
    app.send("POST", &format!("{API}/reports"), None, Some(report("x", "failure")))
        .await
        .assert_api_error(401, "a token with scope report:prod or rollout:prod (or admin) is required");
    // A node's token may report, and nothing more.
    let node = app.token(&["report:prod"]);
    let r = app.send("POST", &format!("{API}/reports"), Some(&node), Some(report(&canary[0], "success"))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    app.send("POST", &format!("{API}/resume"), Some(&node), None)
        .await
        .assert_api_error(403, "this token may not change channel 'prod'");
    let other = app.token(&["report:staging"]);
    app.send("POST", &format!("{API}/reports"), Some(&other), Some(report(&canary[0], "failure")))
        .await
        .assert_api_error(403, "this token may not report to channel 'prod'");
}

#[tokio::test]
async fn a_channel_of_a_private_archive_looks_missing_to_others() {
    let app = App::start();
    let admin = app.token(&["admin"]);
    app.store.auth.set_private(&archive("debian"), true, 0).unwrap();
    assert_eq!(app.send("PUT", API, Some(&admin), Some(spec("auto"))).await.status, 201);
    app.send("GET", API, None, None).await.assert_api_error(404, "no channel named 'prod'");
    app.send("GET", &format!("{API}/nodes/web-1"), None, None).await.assert_api_error(404, "no channel named 'prod'");
    assert_eq!(app.send("GET", "/api/v1/channels", None, None).await.json(), json!({"channels": []}));
    let reader = app.token(&["read:debian"]);
    assert_eq!(app.send("GET", API, Some(&reader), None).await.status, 200);
    // A rollout token for another channel cannot name the private archive either.
    let other = app.token(&["rollout:staging"]);
    let mut s = spec("auto");
    s["archive"] = json!("debian");
    app.send("PUT", "/api/v1/channels/staging", Some(&other), Some(s))
        .await
        .assert_api_error(400, "archive: no archive named 'debian'");
}

#[tokio::test]
async fn the_node_url_serves_the_node_s_snapshot_without_date_validators() {
    let app = App::start();
    let admin = app.token(&["admin"]);
    app.send("PUT", API, Some(&admin), Some(spec("manual"))).await;
    let (canary, broad) = (app.node_in(0), app.node_in(1));
    let url = |node: &str, path: &str| format!("/debian/@prod/{node}/{path}");
    app.get(&url(&canary, "dists/stable/InRelease")).await.assert_error(
        404,
        &format!("channel 'prod' has not rolled out to node '{canary}' yet: its ring has no snapshot"),
    );
    app.get("/debian/@staging/web-1/dists/stable/InRelease")
        .await
        .assert_error(404, "archive 'debian' has no channel 'staging'");
    app.get("/ubuntu/@prod/web-1/").await.assert_error(404, "no archive named 'ubuntu'");
    app.get("/debian/@prod").await.assert_error(404, "a channel URL names the node: /debian/@prod/<node>/<path>");

    app.send("POST", &format!("{API}/rollouts"), Some(&admin), Some(json!({"snapshot": app.id1.to_string()}))).await;
    app.send("POST", &format!("{API}/advance"), Some(&admin), None).await;
    app.send("POST", &format!("{API}/rollouts"), Some(&admin), Some(json!({"snapshot": app.id2.to_string()}))).await;
    let release = "dists/stable/InRelease";
    let (v1, v2) = (bytes("v1", release), bytes("v2", release));
    for (node, body, id) in [(&canary, &v2, app.id2), (&broad, &v1, app.id1)] {
        // A date from the future would make a file answer 304; here it is ignored.
        let r = app.get_with(&url(node, release), &[("if-modified-since", "Fri, 01 Jan 2100 00:00:00 GMT")]).await;
        let (etag, len) = (format!("\"{}\"", sha256_hex(body)), body.len().to_string());
        let id = id.to_string();
        r.assert(
            200,
            &[
                ("x-asof-snapshot", &id),
                ("cache-control", "no-cache"),
                ("etag", &etag),
                ("accept-ranges", "bytes"),
                ("content-type", "text/plain; charset=utf-8"),
                ("x-content-type-options", "nosniff"),
                ("content-security-policy", "sandbox"),
                ("content-length", &len),
            ],
        );
        assert!(r.body == *body);
    }
    // by-hash answers across the ring's two IDs (immutable: named by content), pool files too.
    let packages = bytes("v1", "dists/stable/main/binary-amd64/Packages.xz");
    let by_hash = format!("dists/stable/main/binary-amd64/by-hash/SHA256/{}", sha256_hex(&packages));
    let r = app.get(&url(&canary, &by_hash)).await;
    assert_eq!((r.status.as_u16(), r.header("cache-control")), (200, Some(IMMUTABLE)));
    assert!(r.body == packages);
    let deb = "pool/main/h/hello-asof/hello-asof_1.0-1_all.deb";
    assert!(app.get(&url(&canary, deb)).await.body == bytes("v1", deb));
    // Not so for the rest of dists/: a Packages file is the current ID's or nothing.
    let gone = app.get(&url(&canary, "dists/stable/main/binary-amd64/Packages.xz")).await;
    assert!(gone.body == bytes("v2", "dists/stable/main/binary-amd64/Packages.xz"));

    // A private archive's node URL needs a read token, as its files do (apt sends it as the
    // Basic password from auth.conf).
    app.store.auth.set_private(&archive("debian"), true, 0).unwrap();
    app.get(&url(&canary, release)).await.assert_error(404, "no archive named 'debian'");
    let reader = app.token(&["read:debian"]);
    let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("apt:{reader}")));
    let r = app.get_with(&url(&canary, release), &[("authorization", &basic)]).await;
    assert_eq!(r.status, 200);
    assert!(r.body == v2);
    assert_eq!(r.header("cache-control"), Some("no-cache"));
}

#[tokio::test]
async fn the_channel_page_shows_the_rings_as_a_timeline() {
    let app = App::start();
    let admin = app.token(&["admin"]);
    app.send("PUT", API, Some(&admin), Some(spec("manual"))).await;
    assert!(app.get("/debian/-/channels/prod").await.text().contains("<p id=\"rollout\">No rollout yet.</p>"));
    app.send("POST", &format!("{API}/rollouts"), Some(&admin), Some(json!({"snapshot": app.id1.to_string()}))).await;
    app.send("POST", &format!("{API}/advance"), Some(&admin), None).await;
    app.send("POST", &format!("{API}/rollouts"), Some(&admin), Some(json!({"snapshot": app.id2.to_string()}))).await;
    asof::packages::index::index_archive(&app.store, &archive("debian"), &mut |_, _| {}).unwrap();
    let diff = app.get(&format!("/api/v1/archives/debian/-/diff?from={}&to={}", app.id1, app.id2)).await.json();
    let n = diff["changes"].as_array().unwrap().len();
    assert!(n > 0);

    let r = app.get("/debian/-/channels/prod").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let html = r.text();
    let (id1, id2) = (app.id1, app.id2);
    // The canary is on the new ID with the changes from the old one; broad still on the old.
    let diff_link = format!("<a href=\"/debian/-/diff?from={id1}&amp;to={id2}\">{n} changes</a>");
    let canary =
        format!("<tr><td>canary</td><td>50%</td><td>3600 s</td><td><a href=\"/debian/{id2}/\">{id2}</a></td><td>");
    let broad = format!("<tr><td>broad</td><td>100%</td><td>0 s</td><td><a href=\"/debian/{id1}/\">{id1}</a></td><td>");
    for want in [&canary, &broad, &diff_link] {
        assert!(html.contains(want.as_str()), "{want} not in {html}");
    }
    assert_eq!(html.matches(&diff_link).count(), 2, "both rings come from the old ID");
    assert!(
        html.contains(&format!(
            "Rollout #2 of <a href=\"/debian/{id2}/\">{id2}</a> (asked {id2}), <strong>running</strong>"
        )),
        "{html}"
    );
    app.get("/debian/-/channels/nope").await.assert_error(404, "archive 'debian' has no channel 'nope'");
    app.store.auth.set_private(&archive("debian"), true, 0).unwrap();
    app.get("/debian/-/channels/prod").await.assert_error(404, "no archive named 'debian'");
}

#[tokio::test]
async fn metrics_show_each_ring_s_snapshot_and_the_nodes_that_asked() {
    let app = App::start();
    let admin = app.token(&["admin"]);
    app.send("PUT", API, Some(&admin), Some(spec("manual"))).await;
    app.send("POST", &format!("{API}/rollouts"), Some(&admin), Some(json!({"snapshot": app.id1.to_string()}))).await;
    app.send("POST", &format!("{API}/advance"), Some(&admin), None).await;
    app.send("POST", &format!("{API}/rollouts"), Some(&admin), Some(json!({"snapshot": app.id2.to_string()}))).await;
    let canary = nodes_in(0, 2);
    // One canary node asks twice (API and node URL), another once: two nodes.
    app.get(&format!("{API}/nodes/{}", canary[0])).await;
    app.get(&format!("/debian/@prod/{}/dists/stable/InRelease", canary[0])).await;
    app.get(&format!("/debian/@prod/{}/dists/stable/Release", canary[1])).await;
    app.get(&format!("{API}/nodes/{}", app.node_in(1))).await;
    let metrics = app.get("/metrics").await.text();
    let lines: Vec<&str> = metrics.lines().filter(|l| l.starts_with("asof_channel_")).collect();
    assert_eq!(
        lines,
        [
            "asof_channel_ring_nodes_last_hour{channel=\"prod\",ring=\"broad\"} 1".to_string(),
            "asof_channel_ring_nodes_last_hour{channel=\"prod\",ring=\"canary\"} 2".to_string(),
            format!(
                "asof_channel_ring_snapshot_timestamp_seconds{{channel=\"prod\",ring=\"broad\"}} {}",
                app.id1.unix()
            ),
            format!(
                "asof_channel_ring_snapshot_timestamp_seconds{{channel=\"prod\",ring=\"canary\"}} {}",
                app.id2.unix()
            ),
        ]
    );
    // A private archive's channel is not named.
    app.store.auth.set_private(&archive("debian"), true, 0).unwrap();
    let metrics = app.get("/metrics").await.text();
    assert!(!metrics.contains("channel=\"prod\""), "{metrics}");
    assert_eq!(
        metrics
            .lines()
            .filter(|l| l.starts_with("asof_channel_ring_snapshot") && l.contains("channel=\"private-"))
            .count(),
        2
    );
}
