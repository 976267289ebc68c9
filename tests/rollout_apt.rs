//! Real apt (2.6) against the node-facing channel URL `/<archive>/@<channel>/<node>/`,
//! served over TCP by the in-process router: nodes of different rings install different
//! versions, and a ring that moves between InRelease and the indices of one `apt update`
//! never hands apt a mix of two snapshots.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use asof::domain::{ChannelName, NodeName, SnapshotId};
use asof::http::{AppState, ServeOptions, router};
use asof::publish::{NoProgress, PublishOptions, publish_dir};
use asof::rollout::now_ms;
use asof::rollout::service::{Channels, node_answer};
use asof::rollout::spec::SpecJson;
use asof::store::Store;
use axum::extract::Request;
use axum::middleware::{self, Next};
use common::apt::Apt;
use common::fixtures;

struct Fleet {
    tmp: tempfile::TempDir,
    store: Store,
    id1: SnapshotId,
    id2: SnapshotId,
    channel: ChannelName,
}

impl Fleet {
    /// The fixture archive `debian` in two snapshots (hello-asof 1.0-1, then 1.1-1) and a
    /// manual channel `prod` with rings canary 50% and broad 100%.
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open_local(&tmp.path().join("data")).unwrap();
        let opts = PublishOptions { progress: &NoProgress, source: serde_json::Value::Null, always: true };
        let archive = "debian".parse().unwrap();
        let id1 = publish_dir(&store, &archive, &fixtures().join("apt/v1"), &opts).unwrap().snapshot;
        store.catalog.seal(id1.unix() + 5).unwrap();
        let id2 = publish_dir(&store, &archive, &fixtures().join("apt/v2"), &opts).unwrap().snapshot;
        let channel: ChannelName = "prod".parse().unwrap();
        let spec: SpecJson = serde_json::from_value(serde_json::json!({
            "archive": "debian",
            "rings": [{"name": "canary", "percent": 50, "soak_secs": 0}, {"name": "broad", "percent": 100, "soak_secs": 0}],
            "advance": "manual",
        }))
        .unwrap();
        let fleet = Self { tmp, store, id1, id2, channel };
        fleet.channels().put(&fleet.channel, &spec.validate().unwrap(), "test", now_ms()).unwrap();
        fleet
    }

    fn channels(&self) -> Channels<'_> {
        Channels { store: self.store.channels.as_ref(), catalog: self.store.catalog.as_ref() }
    }

    /// The first `web-<i>` node in ring `ring`.
    fn node_in(&self, ring: usize) -> NodeName {
        let rec = self.channels().view(&self.channel, now_ms()).unwrap();
        (0..)
            .map(|i| format!("web-{i}").parse::<NodeName>().unwrap())
            .find(|n| node_answer(&self.channel, &rec, n).ring == ring)
            .unwrap()
    }

    fn apt(&self, name: &str, addr: std::net::SocketAddr, node: &NodeName) -> Apt {
        let keyring = fixtures().join("keys/test-signing.gpg");
        let line = format!("deb [signed-by={}] http://{addr}/debian/@prod/{node}/ stable main", keyring.display());
        Apt::new(&self.tmp.path().join(name), &line, None)
    }
}

/// Serves `app` on 127.0.0.1:0 until the test ends.
async fn serve(app: axum::Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn deb(version: &str, name: &str) -> Vec<u8> {
    std::fs::read(fixtures().join("apt").join(version).join("pool/main/h/hello-asof").join(name)).unwrap()
}

/// `apt-get update` then `download hello-asof`, both clean; the .deb this run fetched.
async fn install_hello(apt: Apt) -> (String, Vec<u8>) {
    tokio::task::spawn_blocking(move || {
        let before = apt.downloaded();
        apt.update().assert_clean();
        apt.download(&["hello-asof"]).assert_clean();
        let mut new: Vec<_> = apt.downloaded().into_iter().filter(|f| !before.contains(f)).collect();
        assert_eq!(new.len(), 1, "{:?}", new.iter().map(|f| &f.0).collect::<Vec<_>>());
        new.remove(0)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_of_two_rings_install_their_ring_s_version() {
    let fleet = Fleet::new();
    let ch = fleet.channels();
    ch.start(&fleet.channel, fleet.id1, "test", now_ms()).unwrap();
    ch.advance(&fleet.channel, "test", now_ms()).unwrap();
    ch.start(&fleet.channel, fleet.id2, "test", now_ms()).unwrap();
    let addr = serve(router(AppState::new(fleet.store.clone(), ServeOptions::default()))).await;
    let (canary, broad) = (fleet.node_in(0), fleet.node_in(1));
    let (v1, v2) = (deb("v1", "hello-asof_1.0-1_all.deb"), deb("v2", "hello-asof_1.1-1_all.deb"));
    let got = install_hello(fleet.apt("canary", addr, &canary)).await;
    assert!(got == ("hello-asof_1.1-1_all.deb".to_string(), v2.clone()), "canary got {}", got.0);
    let broad_apt = fleet.apt("broad", addr, &broad);
    let got = install_hello(fleet.apt("broad", addr, &broad)).await;
    assert!(got == ("hello-asof_1.0-1_all.deb".to_string(), v1), "broad got {}", got.0);
    // The ring moves: the same static line now installs the new version.
    fleet.channels().advance(&fleet.channel, "test", now_ms()).unwrap();
    let got = install_hello(broad_apt).await;
    assert!(got == ("hello-asof_1.1-1_all.deb".to_string(), v2), "broad got {}", got.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ring_moving_in_the_middle_of_apt_update_is_seen_whole() {
    let fleet = Fleet::new();
    let ch = fleet.channels();
    ch.start(&fleet.channel, fleet.id1, "test", now_ms()).unwrap();
    ch.advance(&fleet.channel, "test", now_ms()).unwrap();
    ch.start(&fleet.channel, fleet.id2, "test", now_ms()).unwrap();
    let broad = fleet.node_in(1);
    // Right after the broad node's InRelease (of the first snapshot) has been answered, and
    // before apt asks for any index, the broad ring moves to the second snapshot.
    let moved = Arc::new(AtomicBool::new(false));
    let store = fleet.store.clone();
    let inrelease = format!("/debian/@prod/{broad}/dists/stable/InRelease");
    let (m, c) = (moved.clone(), fleet.channel.clone());
    let app = router(AppState::new(fleet.store.clone(), ServeOptions::default())).layer(middleware::from_fn(
        move |req: Request, next: Next| {
            let (m, c, store, inrelease) = (m.clone(), c.clone(), store.clone(), inrelease.clone());
            async move {
                let is_inrelease = req.uri().path() == inrelease;
                let resp = next.run(req).await;
                if is_inrelease && !m.swap(true, Ordering::SeqCst) {
                    tokio::task::spawn_blocking(move || {
                        let ch = Channels { store: store.channels.as_ref(), catalog: store.catalog.as_ref() };
                        ch.advance(&c, "test", now_ms()).unwrap();
                    })
                    .await
                    .unwrap();
                }
                resp
            }
        },
    ));
    let addr = serve(app).await;
    let apt = fleet.apt("broad", addr, &broad);
    let got = install_hello(apt).await;
    assert!(moved.load(Ordering::SeqCst), "the ring never moved during the update");
    // apt's indices are the first snapshot's (its InRelease's), and so is the package,
    // though the node's URL serves the second snapshot by now.
    assert!(got == ("hello-asof_1.0-1_all.deb".to_string(), deb("v1", "hello-asof_1.0-1_all.deb")), "got {}", got.0);
    let rec = fleet.channels().view(&fleet.channel, now_ms()).unwrap();
    assert_eq!(node_answer(&fleet.channel, &rec, &broad).snapshot, Some(fleet.id2));
    // The next update sees the second snapshot whole.
    let got = install_hello(fleet.apt("broad", addr, &broad)).await;
    assert_eq!(got.0, "hello-asof_1.1-1_all.deb");
}
