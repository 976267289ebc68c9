//! The fleet test of rollout channels, against the real `asof serve`: 1,000 node names
//! through a three-ring rollout with soak times of seconds. At every moment each node's
//! answer matches its ring; a pause stops the widening; failure reports over the gate pause
//! the rollout by themselves; abort returns every ring to the old ID; real apt on two nodes
//! of different rings, each with a static channel URL, installs the old and the new version
//! respectively, and after the rollout both install the new one.

mod common;

use std::time::{Duration, Instant};

use asof::domain::{ChannelName, NodeName};
use asof::rollout::Ring;
use asof::rollout::assign::ring_of;
use common::apt::Apt;
use common::*;
use serde_json::{Value, json};

const SOAK_SECS: u64 = 3;
const RING_NAMES: [&str; 3] = ["canary", "early", "broad"];

struct Fleet {
    server: Server,
    token: String,
    /// (name, ring index) of 1,000 nodes.
    nodes: Vec<(String, usize)>,
    tmp: tempfile::TempDir,
}

impl Fleet {
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Response {
        let auth = format!("Bearer {}", self.token);
        let bytes = body.map(|b| serde_json::to_vec(&b).unwrap()).unwrap_or_default();
        let len = bytes.len().to_string();
        let headers = [("authorization", auth.as_str()), ("content-length", len.as_str())];
        self.server.request_body(method, path, &headers, Some(&bytes))
    }

    #[track_caller]
    fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let r = self.call(method, path, body);
        assert!(r.status == 200 || r.status == 201, "{method} {path}: {} {}", r.status, r.text());
        r.json()
    }

    fn channel(&self) -> Value {
        self.server.get("/api/v1/channels/prod").json()
    }

    /// Every node's answer, checked against the channel as it was just before and just
    /// after: a ring started before is on `new`, one not started after is on `old`.
    #[track_caller]
    fn sweep(&self, old: &str, new: &str) -> Vec<String> {
        let before = self.channel();
        let answers: Vec<Value> = self
            .nodes
            .iter()
            .map(|(n, _)| self.server.get(&format!("/api/v1/channels/prod/nodes/{n}")).json())
            .collect();
        let after = self.channel();
        let started = |c: &Value, ring: usize| {
            let r = &c["rollout"];
            r["state"] != "aborted" && !r["rings"][ring]["started_at"].is_null()
        };
        let mut out = Vec::new();
        for ((name, ring), a) in self.nodes.iter().zip(&answers) {
            assert_eq!(a["ring"], RING_NAMES[*ring], "{name}");
            let snap = a["snapshot"].as_str().unwrap().to_string();
            if started(&before, *ring) {
                assert_eq!(snap, new, "{name} of ring {ring}: its ring had started");
            } else if !started(&after, *ring) {
                assert_eq!(snap, old, "{name} of ring {ring}: its ring had not started");
            } else {
                assert!(snap == old || snap == new, "{name}: {snap}");
            }
            out.push(snap);
        }
        out
    }

    fn apt(&self, label: &str, node: &str) -> Apt {
        let keyring = fixtures().join("keys/test-signing.gpg");
        let line = format!(
            "deb [signed-by={}] http://{}/debian/@prod/{node}/ stable main",
            keyring.display(),
            self.server.addr
        );
        Apt::new(&self.tmp.path().join(label), &line, None)
    }
}

/// `apt-get update` and `download hello-asof` in a fresh root: the .deb's name.
fn hello(apt: &Apt) -> String {
    apt.update().assert_clean();
    apt.download(&["hello-asof"]).assert_clean();
    let got = apt.downloaded();
    assert_eq!(got.len(), 1);
    got[0].0.clone()
}

fn millis(v: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap().timestamp_millis()
}

#[test]
fn a_thousand_nodes_follow_a_three_ring_rollout() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let old = publish(&data, "debian", &fixtures().join("apt/v1"));
    let new = publish(&data, "debian", &fixtures().join("apt/v2"));
    let token = {
        let store = asof::store::Store::open_local(&data).unwrap();
        let scopes = ["rollout:prod".parse().unwrap()];
        asof::auth::create_token(store.auth.as_ref(), "orchestrator", &scopes, None).unwrap().1
    };
    let channel: ChannelName = "prod".parse().unwrap();
    let rings: Vec<Ring> = [(100, SOAK_SECS), (1000, SOAK_SECS), (10_000, 0)]
        .iter()
        .zip(RING_NAMES)
        .map(|((bp, soak), name)| Ring { name: name.into(), basis_points: *bp, soak_secs: *soak })
        .collect();
    let nodes: Vec<(String, usize)> = (0..1000)
        .map(|i| {
            let n = format!("node-{i:04}");
            let ring = ring_of(&channel, &n.parse::<NodeName>().unwrap(), &rings);
            (n, ring)
        })
        .collect();
    let per_ring: Vec<usize> = (0..3).map(|r| nodes.iter().filter(|n| n.1 == r).count()).collect();
    assert!(per_ring.iter().all(|&c| c > 0), "{per_ring:?}");
    let fleet = Fleet { server: Server::start(&data), token, nodes, tmp };
    let node_of = |ring: usize| fleet.nodes.iter().find(|n| n.1 == ring).unwrap().0.clone();
    let (canary, broad) = (node_of(0), node_of(2));

    let created = fleet.call(
        "PUT",
        "/api/v1/channels/prod",
        Some(json!({
            "archive": "debian",
            "rings": [
                {"name": "canary", "percent": 1, "soak_secs": SOAK_SECS},
                {"name": "early", "percent": 10, "soak_secs": SOAK_SECS},
                {"name": "broad", "percent": 100, "soak_secs": 0},
            ],
            "gate": {"max_failure_rate": 0.2, "min_reports": 3},
            "sources": "stable main",
        })),
    );
    assert_eq!(created.status, 201, "{}", created.text());

    // The old ID everywhere, advanced by hand past the soaks.
    fleet.ok("POST", "/api/v1/channels/prod/rollouts", Some(json!({"snapshot": old})));
    fleet.ok("POST", "/api/v1/channels/prod/advance", None);
    assert_eq!(fleet.ok("POST", "/api/v1/channels/prod/advance", None)["rollout"]["state"], "completed");
    assert!(fleet.sweep("-", &old).iter().all(|s| *s == old));

    // The new ID: the canary at once; a pause holds the rest past the soak.
    fleet.ok("POST", "/api/v1/channels/prod/rollouts", Some(json!({"snapshot": new})));
    let paused = fleet.ok("POST", "/api/v1/channels/prod/pause", None);
    assert_eq!(paused["rollout"]["reason"], "paused by orchestrator");
    std::thread::sleep(Duration::from_secs(SOAK_SECS + 1));
    let got = fleet.sweep(&old, &new);
    for ((name, ring), snap) in fleet.nodes.iter().zip(&got) {
        assert_eq!(snap, if *ring == 0 { &new } else { &old }, "{name} while paused");
    }
    // Real apt with a static line per node: the canary installs the new version, a broad
    // node the old one.
    assert_eq!(hello(&fleet.apt("canary-1", &canary)), "hello-asof_1.1-1_all.deb");
    assert_eq!(hello(&fleet.apt("broad-1", &broad)), "hello-asof_1.0-1_all.deb");
    let n = fleet.server.get(&format!("/api/v1/channels/prod/nodes/{canary}")).json();
    assert_eq!(n["sources_line"], format!("deb http://{}/debian/{new}/ stable main", fleet.server.addr));

    // Resumed after the soak: the early ring starts at once. Its failures trip the gate.
    let resumed = fleet.ok("POST", "/api/v1/channels/prod/resume", None);
    assert_eq!(resumed["rollout"]["rings"][1]["snapshot"], json!(new));
    let early_nodes: Vec<&String> = fleet.nodes.iter().filter(|n| n.1 == 1).map(|n| &n.0).take(3).collect();
    for (i, node) in early_nodes.iter().enumerate() {
        let r = fleet.ok("POST", "/api/v1/channels/prod/reports", Some(json!({"node": node, "outcome": "failure"})));
        let state = &r["rollout"]["state"];
        assert_eq!(*state, if i < 2 { "running" } else { "paused" }, "after {} failures", i + 1);
    }
    let c = fleet.channel();
    assert_eq!(
        c["rollout"]["reason"],
        "health gate: 3 of 3 reporting nodes of ring 'early' failed (100.0%), over the channel's 20.0%"
    );
    assert_eq!(c["rollout"]["rings"][1]["failures"], 3);
    std::thread::sleep(Duration::from_secs(SOAK_SECS + 1));
    assert_eq!(fleet.channel()["rollout"]["rings"][2]["started_at"], Value::Null, "the gate stopped the widening");

    // Abort: every ring back on the old ID.
    assert_eq!(fleet.ok("POST", "/api/v1/channels/prod/abort", None)["rollout"]["state"], "aborted");
    assert!(fleet.sweep(&old, &new).iter().all(|s| *s == old));

    // Again, left alone: the rings widen one soak apart, and every answer in between
    // matches its ring.
    fleet.ok("POST", "/api/v1/channels/prod/rollouts", Some(json!({"snapshot": new})));
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = fleet.sweep(&old, &new);
    let mut sweeps = 1;
    while fleet.channel()["rollout"]["state"] != "completed" {
        assert!(Instant::now() < deadline, "the rollout did not complete");
        let now = fleet.sweep(&old, &new);
        for (((name, _), a), b) in fleet.nodes.iter().zip(&last).zip(&now) {
            assert!(!(*a == new && *b == old), "{name} went back from the new ID");
        }
        last = now;
        sweeps += 1;
    }
    assert!(sweeps >= 3, "only {sweeps} sweeps during the rollout");
    assert!(fleet.sweep(&old, &new).iter().all(|s| *s == new));
    let rings = fleet.channel()["rollout"]["rings"].clone();
    let starts: Vec<i64> = (0..3).map(|i| millis(&rings[i]["started_at"])).collect();
    assert_eq!([starts[1] - starts[0], starts[2] - starts[1]], [SOAK_SECS as i64 * 1000; 2]);

    // After the rollout both nodes install the new version with the same static lines.
    assert_eq!(hello(&fleet.apt("canary-2", &canary)), "hello-asof_1.1-1_all.deb");
    assert_eq!(hello(&fleet.apt("broad-2", &broad)), "hello-asof_1.1-1_all.deb");

    // The background job of `serve` writes what time did into the history (read here from
    // the database, not through the API, which would persist it itself).
    std::thread::sleep(Duration::from_millis(1500));
    let store = asof::store::Store::open_local(&data).unwrap();
    let h = store.channels.history(&channel).unwrap();
    let auto: Vec<&str> = h.iter().filter(|e| e.actor == "asof").map(|e| e.action.as_str()).collect();
    // The early ring restarts by itself on resume, its soak being over.
    assert_eq!(
        auto,
        ["rollout.completed", "ring.started", "rollout.paused", "ring.started", "ring.started", "rollout.completed"]
    );
    assert_eq!(h.last().unwrap().at, starts[2]);
}
