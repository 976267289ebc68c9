//! The serving memory cache (`http::hot`): final answers and small files come from memory,
//! and nothing kept there outlives what it was derived from. Takedowns, undos, retention,
//! privacy and quarantine are made the way the CLI makes them (straight into the catalog,
//! not through this server), interleaved with reads, and the very next read sees them.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use asof::domain::{Digest, RelPath, SnapshotId};
use asof::http::{AppState, ServeOptions};
use asof::takedown::{Status, TakedownRequest, Target, take_down, undo};
use axum::http::StatusCode;
use common::inproc::App;

const FILE: &str = "dists/stable/InRelease";
const BYTES: &[u8] = b"Origin: test\nSuite: stable\n";

fn hits(app: &App) -> (u64, u64) {
    (app.state.metrics.memory_answer_hits.get(), app.state.metrics.memory_file_hits.get())
}

fn takedown(app: &App, status: Status) -> i64 {
    let target = Target::Path { archive: "a".parse().unwrap(), path: RelPath::new(FILE).unwrap() };
    let req = TakedownRequest { target, status, reason: "court order".into(), purge: false };
    take_down(&app.store, &req, "test", 1).unwrap().id
}

#[tokio::test]
async fn repeated_requests_are_answered_from_memory_and_a_takedown_applies_to_the_very_next_one() {
    let app = App::new();
    let id = app.publish("a", &[(FILE, BYTES)]);
    let uri = format!("/a/{id}/{FILE}");

    let first = app.get(&uri, None).await;
    assert_eq!((first.status, first.body.as_slice()), (StatusCode::OK, BYTES));
    assert_eq!(hits(&app), (0, 0), "the first answer is derived from the catalog");
    let second = app.get(&uri, None).await;
    assert_eq!((second.status, second.body.as_slice()), (StatusCode::OK, BYTES));
    assert_eq!(second.headers, first.headers, "the same headers, from memory");
    assert_eq!(hits(&app), (1, 1));

    let taken = takedown(&app, Status::Legal);
    let gone = app.get(&uri, None).await;
    assert_eq!(gone.status, StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS, "{}", gone.text());
    assert_eq!(gone.json()["takedown"], taken);

    undo(&app.store, taken, "test", 2).unwrap();
    let back = app.get(&uri, None).await;
    assert_eq!((back.status, back.body.as_slice()), (StatusCode::OK, BYTES));
    assert_eq!(back.headers, first.headers);
}

#[tokio::test]
async fn a_publish_keeps_final_answers_in_memory_but_a_range_or_a_token_is_answered_as_before() {
    let app = App::new();
    let id = app.publish("a", &[(FILE, BYTES)]);
    let uri = format!("/a/{id}/{FILE}");
    app.get(&uri, None).await;
    app.publish("a", &[(FILE, b"newer")]);
    let again = app.get(&uri, None).await;
    assert_eq!((again.status, again.body.as_slice()), (StatusCode::OK, BYTES));
    assert_eq!(hits(&app), (1, 1), "a commit changes no final answer");

    let req = axum::http::Request::get(&uri).header("range", "bytes=7-10").body(axum::body::Body::empty()).unwrap();
    let resp = tower::ServiceExt::oneshot(asof::http::router(app.state.clone()), req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(resp.headers()["content-range"], format!("bytes 7-10/{}", BYTES.len()));
    let body = http_body_util::BodyExt::collect(resp.into_body()).await.unwrap().to_bytes();
    assert_eq!(&body[..], &BYTES[7..=10]);
    assert_eq!(hits(&app), (2, 2), "a range is cut from the bytes in memory");

    // A request with a token is answered from the catalog (its answer is private).
    let token = app.token(&["read:a"]);
    let with_token = app.get(&uri, Some(&token)).await;
    assert_eq!(
        (with_token.status, with_token.header("cache-control")),
        (StatusCode::OK, "private, max-age=31536000, immutable")
    );
    assert_eq!(hits(&app), (2, 2));
}

#[tokio::test]
async fn making_an_archive_private_hides_what_was_in_memory_at_once() {
    let app = App::new();
    let id = app.publish("a", &[(FILE, BYTES)]);
    let uri = format!("/a/{id}/{FILE}");
    assert_eq!(app.get(&uri, None).await.status, StatusCode::OK);
    app.make_private("a");
    let hidden = app.get(&uri, None).await;
    assert_eq!((hidden.status, hidden.json()["error"].as_str()), (StatusCode::NOT_FOUND, Some("no archive named 'a'")));
}

#[tokio::test]
async fn a_snapshot_deleted_by_retention_answers_410_right_after_it_was_served_from_memory() {
    let app = App::new();
    app.publish("a", &[(FILE, b"first")]);
    let old = app.publish("a", &[(FILE, BYTES)]);
    app.publish("a", &[(FILE, b"newer")]);
    let uri = format!("/a/{old}/{FILE}");
    app.get(&uri, None).await;
    assert_eq!(app.get(&uri, None).await.status, StatusCode::OK);
    let archive = "a".parse().unwrap();
    let deletion =
        app.store.retention.delete_snapshot(&archive, old.parse::<SnapshotId>().unwrap(), "test", 3).unwrap();
    assert!(matches!(deletion, asof::retention::Deletion::Deleted(_)), "{deletion:?}");
    assert_eq!(app.get(&uri, None).await.status, StatusCode::GONE);
}

#[tokio::test]
async fn a_quarantined_blob_is_not_served_from_memory() {
    let app = App::new();
    let id = app.publish("a", &[(FILE, BYTES)]);
    let uri = format!("/a/{id}/{FILE}");
    app.get(&uri, None).await;
    assert_eq!(app.get(&uri, None).await.body, BYTES);
    let digest = Digest::of(BYTES);
    let blobs = app.store.blobs.clone();
    let mut set_aside = || blobs.blocking().quarantine(&digest).map(|to| to.unwrap_or_default());
    assert!(app.store.scrub.scrub_quarantine(&digest, asof::scrub::ProblemKind::Corrupt, 4, &mut set_aside).unwrap());
    assert_eq!(app.get(&uri, None).await.status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn with_the_memory_cache_off_every_answer_comes_from_the_catalog() {
    let mut app = App::new();
    app.state = AppState::new(app.store.clone(), ServeOptions { memory_cache_bytes: 0, ..ServeOptions::default() });
    let id = app.publish("a", &[(FILE, BYTES)]);
    let uri = format!("/a/{id}/{FILE}");
    for _ in 0..3 {
        assert_eq!(app.get(&uri, None).await.body, BYTES);
    }
    assert_eq!(hits(&app), (0, 0));
}

/// Readers hammer one final URL while takedowns and undos commit from another thread. Every
/// request that started after a change's commit returned must see that change; requests
/// before it are mostly answered from memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_read_that_starts_after_a_takedown_or_undo_commits_sees_the_old_answer() {
    let app = Arc::new(App::new());
    let id = app.publish("a", &[(FILE, BYTES)]);
    let uri = Arc::new(format!("/a/{id}/{FILE}"));
    let stop = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for _ in 0..4 {
        let (app, uri, stop) = (app.clone(), uri.clone(), stop.clone());
        readers.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let started = Instant::now();
                let status = app.get(&uri, None).await.status;
                seen.push((started, Instant::now(), status));
            }
            seen
        }));
    }
    // (when the call began, when it returned, the status every later request must get): the
    // commit happened somewhere in between.
    let changes = {
        let app = app.clone();
        tokio::task::spawn_blocking(move || {
            let mut changes = vec![];
            for round in 0..10 {
                std::thread::sleep(std::time::Duration::from_millis(30));
                let begun = Instant::now();
                let taken = takedown(&app, if round % 2 == 0 { Status::Gone } else { Status::Legal });
                let status = StatusCode::from_u16(if round % 2 == 0 { 410 } else { 451 }).unwrap();
                changes.push((begun, Instant::now(), status));
                std::thread::sleep(std::time::Duration::from_millis(30));
                let begun = Instant::now();
                undo(&app.store, taken, "test", 2).unwrap();
                changes.push((begun, Instant::now(), StatusCode::OK));
            }
            changes
        })
        .await
        .unwrap()
    };
    stop.store(true, Ordering::SeqCst);
    let mut checked = 0;
    for reader in readers {
        for (started, finished, status) in reader.await.unwrap() {
            // A change that may have committed while the request ran may or may not show: not
            // checked.
            if changes.iter().any(|(begun, returned, _)| *begun <= finished && *returned >= started) {
                continue;
            }
            // The last change committed before this request started decides its answer.
            let Some((_, _, expected)) = changes.iter().rev().find(|(_, returned, _)| *returned < started) else {
                continue;
            };
            assert_eq!(status, *expected, "a request started after the change committed");
            checked += 1;
        }
    }
    assert!(checked > 100, "only {checked} requests checked");
    assert!(hits(&app).0 > 50, "answers from memory: {:?}", hits(&app));
}

/// Files too large for memory are sent from memory maps, one MiB at a time: whole, and in
/// ranges that start and end between those steps, byte for byte.
#[tokio::test]
async fn a_large_file_is_sent_whole_and_in_ranges_across_map_steps() {
    let app = App::new();
    let big: Vec<u8> = (0..5 * 1024 * 1024 + 17).map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let id = app.publish("a", &[("pool/big.deb", &big)]);
    let uri = format!("/a/{id}/pool/big.deb");
    let whole = app.get(&uri, None).await;
    assert_eq!((whole.status, whole.header("content-length")), (StatusCode::OK, big.len().to_string().as_str()));
    assert!(whole.body == big, "the whole file, byte for byte");
    for (start, end) in [(0, 2 * 1024 * 1024), (2 * 1024 * 1024 - 1, 4 * 1024 * 1024 + 1), (300_000, big.len() - 1)] {
        let req = axum::http::Request::get(&uri)
            .header("range", format!("bytes={start}-{end}"))
            .body(axum::body::Body::empty())
            .unwrap();
        let resp = tower::ServiceExt::oneshot(asof::http::router(app.state.clone()), req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
        let body = http_body_util::BodyExt::collect(resp.into_body()).await.unwrap().to_bytes();
        assert!(body[..] == big[start..=end], "bytes {start}-{end}");
    }
    assert_eq!(app.state.metrics.memory_file_hits.get(), 0, "too large to keep in memory");
}
