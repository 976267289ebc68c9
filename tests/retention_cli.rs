//! Retention policies and pins from the command line: `asof archive retention`, `asof pin`
//! and `asof retention plan` (which keeps exactly what the policy, the pins and the
//! channels' current and previous rollouts say; never the first or the latest).

mod common;

use std::path::Path;

use common::*;

fn run(data: &Path, args: &[&str]) -> (i32, String, String) {
    let out = asof(data, args);
    (out.status.code().unwrap(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

fn plan(data: &Path) -> Vec<(String, serde_json::Value)> {
    let (code, out, err) = run(data, &["retention", "plan", "deb", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["id"].as_str().unwrap().to_string(), s["keep"].clone()))
        .collect()
}

#[test]
fn policies_pins_and_channels_decide_what_a_plan_keeps() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let tree = tmp.path().join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    let mut ids = Vec::new();
    for i in 0..6 {
        std::fs::write(tree.join("f"), format!("version {i}")).unwrap();
        ids.push(publish(&data, "deb", &tree));
    }
    assert_eq!(
        run(&data, &["archive", "retention", "deb"]),
        (0, "off (every snapshot is kept)\n".into(), String::new())
    );
    let off = serde_json::json!({"rule": "off"});
    assert_eq!(plan(&data)[1..5].to_vec(), ids[1..5].iter().map(|i| (i.clone(), off.clone())).collect::<Vec<_>>());

    assert_eq!(
        run(&data, &["archive", "retention", "deb", "--keep-last", "2"]),
        (0, String::new(), "retention of deb: keep last 2\n".into())
    );
    assert_eq!(run(&data, &["archive", "retention", "deb"]).1, "keep last 2\n");
    assert_eq!(
        run(&data, &["pin", "deb", &ids[1], "--reason", "audit 42"]),
        (0, String::new(), format!("pinned deb/{}: audit 42\n", ids[1]))
    );
    let (code, _, err) = run(&data, &["channel", "create", "prod", "--archive", "deb", "--ring", "all:100"]);
    assert_eq!((code, err.as_str()), (0, "channel prod created\n"));
    for id in [&ids[0], &ids[2], &ids[3]] {
        let (code, _, err) = run(&data, &["channel", "rollout", "prod", id]);
        assert_eq!(code, 0, "{err}");
    }
    let pinned = |r: &str| serde_json::json!({"rule": "pinned", "detail": r});
    assert_eq!(
        plan(&data),
        vec![
            (ids[0].clone(), serde_json::json!({"rule": "first"})),
            (ids[1].clone(), pinned("pinned: audit 42")),
            (ids[2].clone(), pinned("channel prod: previous rollout")),
            (ids[3].clone(), pinned("channel prod: current rollout")),
            (ids[4].clone(), serde_json::json!({"rule": "last"})),
            (ids[5].clone(), serde_json::json!({"rule": "latest"})),
        ]
    );
    assert_eq!(
        run(&data, &["pin", "deb", &ids[1], "--remove"]),
        (0, String::new(), format!("unpinned deb/{}\n", ids[1]))
    );
    let (code, out, err) = run(&data, &["retention", "plan", "deb"]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        format!(
            "{} keep (first)\n{} delete\n{} keep (channel prod: previous rollout)\n{} keep (channel prod: current rollout)\n{} keep (last)\n{} keep (latest)\n",
            ids[0], ids[1], ids[2], ids[3], ids[4], ids[5]
        )
    );
    assert_eq!(
        err,
        "deb: keep last 2; keeps 5 of 6 snapshot(s), deletes 1 (1 entry rows, 0 package rows; \
         1 blob(s), 9 bytes no longer referenced, freed by gc after its grace)\n"
    );

    // Bad input: clear errors, nothing changed.
    assert_eq!(run(&data, &["pin", "deb", &ids[1], "--remove"]).2, format!("error: deb/{} is not pinned\n", ids[1]));
    assert_eq!(run(&data, &["archive", "retention", "nope", "--daily", "3"]).2, "error: no archive named 'nope'\n");
    assert_eq!(
        run(&data, &["archive", "retention", "deb", "--daily", "0"]).2,
        "error: --keep-last, --daily and --weekly must be at least 1\n"
    );
    assert_eq!(
        run(&data, &["pin", "deb", "20000101T000000Z", "--reason", "x"]).2,
        "error: archive 'deb' has no snapshot at or before 20000101T000000Z\n"
    );
    assert_eq!(run(&data, &["archive", "retention", "deb"]).1, "keep last 2\n");
    assert_eq!(
        run(&data, &["archive", "retention", "deb", "--off"]),
        (0, String::new(), "retention of deb: off (every snapshot is kept)\n".into())
    );
}

#[test]
fn apply_deletes_what_the_plan_lets_go_and_the_deleted_ids_answer_410() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let tree = tmp.path().join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("shared"), "in every snapshot").unwrap();
    let mut ids = Vec::new();
    for i in 0..5 {
        std::fs::write(tree.join("f"), format!("version {i}")).unwrap();
        ids.push(publish(&data, "deb", &tree));
    }
    assert_eq!(
        run(&data, &["retention", "apply", "deb"]),
        (0, String::new(), "deb: no retention policy; every snapshot is kept\n".into())
    );
    run(&data, &["archive", "retention", "deb", "--keep-last", "1"]);
    run(&data, &["pin", "deb", &ids[2], "--reason", "audit"]);
    let (code, out, err) = run(&data, &["retention", "apply", "deb", "--dry-run"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, format!("deb {} would be deleted\ndeb {} would be deleted\n", ids[1], ids[3]));
    let freed = "(2 entry rows, 0 package rows; 2 blob(s), 18 bytes no longer referenced, freed by gc after its grace)";
    assert_eq!(err, format!("deb: would delete 2 snapshot(s) {freed}\ndeb: keep last 1\n"));
    assert_eq!(run(&data, &["snapshots", "deb"]).1.lines().count(), 5, "a dry run deletes nothing");

    let (code, out, err) = run(&data, &["retention", "apply", "--json"]);
    assert_eq!(code, 0, "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        report,
        serde_json::json!([{
            "archive": "deb", "dry_run": false, "deleted": [ids[1], ids[3]], "kept": [],
            "reclaim": {"snapshots": 2, "entry_rows": 2, "package_rows": 0, "blobs": 2, "bytes": 18},
        }])
    );
    let listed: Vec<String> =
        run(&data, &["snapshots", "deb"]).1.lines().map(|l| l.split_whitespace().next().unwrap().to_string()).collect();
    assert_eq!(listed, [ids[0].clone(), ids[2].clone(), ids[4].clone()]);
    verify_clean(&data);

    let server = Server::start(&data);
    let gone = server.get(&format!("/deb/{}/f", ids[1]));
    assert_eq!(gone.status, 410);
    assert!(
        gone.text().starts_with(&format!(
            "{{\"error\":\"snapshot {} of 'deb' was deleted by its retention policy at ",
            ids[1]
        )),
        "{}",
        gone.text()
    );
    assert!(
        gone.text().ends_with(&format!("; the snapshot before it is {}\",\"status\":410}}", ids[0])),
        "{}",
        gone.text()
    );
    // Kept snapshots serve their own bytes; the one after a deleted one still knows when
    // `shared` last changed (the first snapshot) and `f` (itself).
    let kept = server.get(&format!("/deb/{}/f", ids[2]));
    assert_eq!((kept.status, kept.text()), (200, "version 2".to_string()));
    let listing = server.get("/api/v1/archives/deb/-/snapshots?order=asc");
    assert_eq!(listing.status, 200);
    assert_eq!(server.get(&format!("/api/v1/archives/deb/-/snapshots/{}", ids[1])).status, 410);
    assert_eq!(server.get(&format!("/api/v1/archives/deb/-/resolve/{}", ids[3])).status, 410);
    // Under retention an exact ID is still final; a snapshot's page, which links its
    // neighbours, is short-cached.
    let r = server.get(&format!("/api/v1/archives/deb/-/resolve/{}", ids[2]));
    assert_eq!((r.status, r.json()["final"].as_bool()), (200, Some(true)));
    assert_eq!(r.header("cache-control"), "public, max-age=31536000, immutable");
    let page = server.request("GET", &format!("/deb/{}/", ids[2]), &[("accept", "text/html")]);
    assert_eq!((page.status, page.header("cache-control")), (200, "public, max-age=10"));
    let json = listing.json();
    let listed: Vec<&str> = json["snapshots"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(listed, [ids[0].as_str(), ids[2].as_str(), ids[4].as_str()]);
}

#[test]
fn serve_applies_the_policies_of_its_config_file_on_schedule() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let tree = tmp.path().join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    let mut ids = Vec::new();
    for i in 0..4 {
        std::fs::write(tree.join("f"), format!("version {i}")).unwrap();
        ids.push(publish(&data, "deb", &tree));
    }
    let config = tmp.path().join("asof.toml");
    std::fs::write(&config, "[retention]\ninterval = \"1s\"\n[retention.archives.deb]\nkeep_last = 1\n").unwrap();
    let server = Server::start_with(&data, &["--config", config.to_str().unwrap()]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while server.get(&format!("/deb/{}/f", ids[2])).status != 410 {
        assert!(std::time::Instant::now() < deadline, "the schedule did not apply the policy");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    for (i, id) in ids.iter().enumerate() {
        let r = server.get(&format!("/deb/{id}/f"));
        let expect = if i == 1 || i == 2 { 410 } else { 200 };
        assert_eq!(r.status, expect, "{id}: {}", r.text());
    }
    assert_eq!(run(&data, &["archive", "retention", "deb"]).1, "keep last 1\n");
}

#[test]
fn apply_runs_beside_publishes_and_leaves_every_kept_snapshot_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let tree = tmp.path().join("tree");
    std::fs::create_dir_all(tree.join("pool")).unwrap();
    std::fs::write(tree.join("f"), "version 0").unwrap();
    publish(&data, "deb", &tree);
    run(&data, &["archive", "retention", "deb", "--keep-last", "2"]);
    // Publishes and applies interleave: publish i waits for apply i to have run, and the
    // applies go on while the publisher works.
    let applies = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let publisher = {
        let (data, tree, applies) = (data.clone(), tree.clone(), applies.clone());
        std::thread::spawn(move || {
            for i in 1..=12 {
                while applies.load(std::sync::atomic::Ordering::SeqCst) < i {
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
                std::fs::write(tree.join("f"), format!("version {i}")).unwrap();
                std::fs::write(tree.join("pool").join(format!("p{i}")), format!("package {i}")).unwrap();
                publish(&data, "deb", &tree);
            }
        })
    };
    let mut deleted = 0;
    while !publisher.is_finished() {
        let (code, out, err) = run(&data, &["retention", "apply", "deb"]);
        assert_eq!(code, 0, "{err}");
        deleted += out.lines().count();
        applies.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
    assert!(applies.load(std::sync::atomic::Ordering::SeqCst) >= 12, "every publish came after an apply");
    publisher.join().unwrap();
    deleted += run(&data, &["retention", "apply", "deb"]).1.lines().count();
    // The first, and the last two: everything else went, whichever apply took it.
    assert_eq!(run(&data, &["snapshots", "deb"]).1.lines().count(), 3);
    assert_eq!(deleted, 10);
    verify_clean(&data);
}

#[test]
fn two_applies_at_once_delete_each_snapshot_once() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let tree = tmp.path().join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    for i in 0..12 {
        std::fs::write(tree.join("f"), format!("version {i}")).unwrap();
        publish(&data, "deb", &tree);
    }
    run(&data, &["archive", "retention", "deb", "--keep-last", "1"]);
    let applies: Vec<_> = (0..2)
        .map(|_| {
            let data = data.clone();
            std::thread::spawn(move || run(&data, &["retention", "apply", "deb"]))
        })
        .collect();
    let mut deleted = 0;
    for a in applies {
        let (code, out, err) = a.join().unwrap();
        assert_eq!(code, 0, "{err}");
        // The one that lost a race says nothing about it: the snapshot is gone either way.
        assert!(!err.contains(" kept: "), "{err}");
        deleted += out.lines().count();
    }
    assert_eq!(deleted, 10);
    assert_eq!(run(&data, &["snapshots", "deb"]).1.lines().count(), 2);
    verify_clean(&data);
}
