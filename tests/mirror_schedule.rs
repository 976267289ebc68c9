//! Scheduled mirrors: a run that panics is counted and the schedule goes on; the metrics of
//! a private archive never carry its name.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use asof::domain::ArchiveName;
use asof::metrics::Metrics;
use asof::mirror::MirrorSpec;
use asof::mirror::schedule::{run_on_schedule, run_once};
use asof::store::Store;
use common::fixtures;
use common::upstream::Upstream;

#[tokio::test]
async fn a_panicking_run_is_counted_and_the_next_one_still_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open_local(tmp.path()).unwrap();
    let metrics = Arc::new(Metrics::new());
    let calls = Arc::new(AtomicUsize::new(0));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let run = {
        let calls = calls.clone();
        move || {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            let tx = tx.clone();
            async move {
                if n == 0 {
                    panic!("injected panic in the first run");
                }
                tx.send(n).unwrap();
            }
        }
    };
    let archive: ArchiveName = "sched".parse().unwrap();
    let schedule = tokio::spawn(run_on_schedule(store, archive, Duration::from_millis(10), metrics.clone(), run));
    let second = tokio::time::timeout(Duration::from_secs(20), rx.recv()).await.expect("no second run").unwrap();
    schedule.abort();
    assert_eq!(second, 1);
    let text = metrics.render();
    assert!(text.contains("asof_mirror_runs_total{archive=\"sched\",result=\"panic\"} 1\n"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_archive_name_never_appears_in_metrics() {
    let tmp = tempfile::tempdir().unwrap();
    let upstream = Upstream::start(fixtures().join("apt/v1"));
    let data = tmp.path().join("data");
    let store = Store::open_local(&data).unwrap();
    let archive: ArchiveName = "team/hidden-repo".parse().unwrap();
    let spec = MirrorSpec {
        archive: archive.clone(),
        upstream: upstream.url.clone(),
        suites: vec!["stable".into()],
        components: vec!["main".into()],
        architectures: vec!["amd64".into()],
        scope: Default::default(),
        keyring: Some(fixtures().join("keys/test-signing.gpg")),
        insecure_skip_signature: false,
        allow_missing: false,
    };
    let metrics = Metrics::new();
    // Keyed by the installation's label.key: a guessed name hashed on its own
    // (printf team/hidden-repo | sha256sum | cut -c1-12) must not find the series.
    let key = std::fs::read(data.join("label.key")).unwrap();
    let mut keyed = key.clone();
    keyed.extend_from_slice(b"team/hidden-repo");
    let hashed = format!("private-{}", &asof::domain::Digest::of(&keyed).hex()[..12]);
    assert_eq!(key.len(), 32);
    let guessable = "private-b0dad92ec756";

    // Public: named.
    assert!(run_once(&store, &data, &spec, &metrics).await);
    let text = metrics.render();
    assert!(text.contains("asof_mirror_runs_total{archive=\"team/hidden-repo\",result=\"success\"} 1\n"), "{text}");

    // Made private: from the next run on, only the hash, and the named series are gone.
    store.auth.set_private(&archive, true, chrono::Utc::now().timestamp()).unwrap();
    assert!(run_once(&store, &data, &spec, &metrics).await);
    let text = metrics.render();
    assert!(!text.contains("hidden-repo"), "{text}");
    assert!(text.contains(&format!("asof_mirror_runs_total{{archive=\"{hashed}\",result=\"success\"}} 1\n")), "{text}");
    assert!(text.contains(&format!("asof_mirror_last_success_timestamp_seconds{{archive=\"{hashed}\"}}")), "{text}");
    assert!(!text.contains(guessable), "{text}");

    // A failing run of the private archive is labelled the same way.
    let broken = MirrorSpec { upstream: format!("{}nothing-here/", upstream.url), ..spec };
    assert!(!run_once(&store, &data, &broken, &metrics).await);
    let text = metrics.render();
    assert!(!text.contains("hidden-repo"), "{text}");
    assert!(text.contains(&format!("asof_mirror_runs_total{{archive=\"{hashed}\",result=\"failure\"}} 1\n")), "{text}");
}
