//! Mirroring never blocks the async workers it runs on: under `asof serve` they are the
//! HTTP server's. A gpgv that takes a second per signature must leave a single-threaded
//! runtime free to run other tasks meanwhile.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use asof::mirror::signature::Gpgv;
use asof::mirror::{MirrorOptions, MirrorSpec, mirror};
use asof::store::Store;
use common::fixtures;
use common::upstream::Upstream;

#[test]
fn a_slow_gpgv_does_not_stall_the_runtime() {
    let tmp = tempfile::tempdir().unwrap();
    let upstream = Upstream::start(fixtures().join("apt/v1"));
    let slow = tmp.path().join("slow-gpgv");
    std::fs::write(&slow, "#!/bin/sh\nsleep 1\nexec gpgv \"$@\"\n").unwrap();
    std::fs::set_permissions(&slow, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let data = tmp.path().join("data");
    let store = Store::open_local(&data).unwrap();
    let spec = MirrorSpec {
        archive: "debian".parse().unwrap(),
        upstream: upstream.url.clone(),
        suites: vec!["stable".into()],
        components: vec!["main".into()],
        architectures: vec!["amd64".into()],
        scope: Default::default(),
        keyring: Some(fixtures().join("keys/test-signing.gpg")),
        insecure_skip_signature: false,
        allow_missing: false,
    };
    let mut opts = MirrorOptions::for_data_dir(&data);
    opts.gpgv = Gpgv { program: slow, timeout: Duration::from_secs(60) };

    // One worker thread: anything blocking it stops the ticker.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let ticks = Arc::new(Mutex::new(Vec::new()));
        let ticker = tokio::spawn({
            let ticks = ticks.clone();
            async move {
                let mut every = tokio::time::interval(Duration::from_millis(20));
                loop {
                    every.tick().await;
                    ticks.lock().unwrap().push(Instant::now());
                }
            }
        });
        tokio::task::yield_now().await;
        let started = Instant::now();
        let report = mirror(&store, &spec, &opts).await.unwrap();
        let took = started.elapsed();
        ticker.abort();

        assert_eq!(report.signature, "verified (D35193C26D156CC17F75638D588654D34D56B23D)");
        // InRelease and Release.gpg are both checked: two gpgv runs of a second each.
        assert!(took >= Duration::from_secs(2), "the slow gpgv was not used: the mirror took {took:?}");
        let ticks = ticks.lock().unwrap();
        let during: Vec<Instant> = ticks.iter().copied().filter(|t| *t >= started).collect();
        let longest = during.windows(2).map(|w| w[1] - w[0]).max().unwrap();
        assert!(longest < Duration::from_millis(800), "the runtime stalled for {longest:?} during the mirror");
        assert!(during.len() >= 40, "only {} ticks in {took:?}", during.len());
    });
}
