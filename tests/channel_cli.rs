//! `asof channel ...` on a local data directory: create, roll out, pause, abort, history,
//! with `--json` pinned field by field and errors with their exit code and text.

mod common;

use common::*;
use serde_json::{Value, json};

fn run(data: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = asof(data, args);
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap(), text(&out.stdout), text(&out.stderr))
}

fn json_of(data: &std::path::Path, args: &[&str]) -> Value {
    let (code, out, err) = run(data, args);
    assert_eq!(code, 0, "asof {args:?}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[test]
fn a_channel_is_managed_from_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let id1 = publish(&data, "debian", &fixtures().join("apt/v1"));
    // A gap, so that an ID strictly between the two snapshots exists.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let id2 = publish(&data, "debian", &fixtures().join("apt/v2"));

    let (code, out, err) = run(
        &data,
        &[
            "channel",
            "create",
            "prod",
            "--archive",
            "debian",
            "--ring",
            "canary:1:30m",
            "--ring",
            "broad:100",
            "--sources",
            "stable main",
        ],
    );
    assert_eq!((code, err.as_str()), (0, "channel prod created\n"), "{out}");
    assert_eq!(out, "prod  archive debian  advance auto  no rollout\n");

    let v = json_of(&data, &["channel", "rollout", "prod", &id2, "--json"]);
    assert_eq!(v["rollout"]["snapshot"], json!(id2));
    assert_eq!(v["rollout"]["state"], "running");
    assert_eq!(
        v["rings"],
        json!([
            {"name": "canary", "percent": 1.0, "soak_secs": 1800},
            {"name": "broad", "percent": 100.0, "soak_secs": 0},
        ])
    );
    let rings: Vec<(Value, Value)> =
        v["rollout"]["rings"].as_array().unwrap().iter().map(|r| (r["name"].clone(), r["snapshot"].clone())).collect();
    assert_eq!(rings, [(json!("canary"), json!(id2)), (json!("broad"), Value::Null)]);

    // The human view: rings, IDs, time to the next ring, failures.
    let (code, out, _) = run(&data, &["channel", "show", "prod"]);
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], format!("prod  archive debian  advance auto  rollout #1 running -> {id2} (asked {id2})"));
    assert_eq!(lines[1], "  ring          percent       soak  snapshot          since                     failures");
    assert!(lines[2].starts_with(&format!("  canary             1%        30m  {id2}  20")), "{out}");
    assert!(lines[2].ends_with("Z  0/0"), "{out}");
    assert_eq!(lines[3], "  broad            100%         0s  -                 -                         0/0");
    assert!(lines[4].starts_with("  next ring: broad in 29m"), "{out}");

    let (code, _, err) = run(&data, &["channel", "resume", "prod"]);
    assert_eq!((code, err.as_str()), (2, "error: the rollout is not paused\n"));
    assert_eq!(
        json_of(&data, &["channel", "pause", "prod", "--json"])["rollout"]["reason"],
        format!("paused by cli:{}", std::env::var("USER").unwrap_or_default()).trim_end_matches(':')
    );
    let v = json_of(&data, &["channel", "abort", "prod", "--json"]);
    assert_eq!(v["rollout"]["state"], "aborted");
    assert_eq!(v["rollout"]["rings"][0]["snapshot"], Value::Null);

    // A non-exact ID resolves by floor: between the two snapshots is the first.
    let between = id_plus(&id1, 1);
    assert!(id1 < between && between < id2);
    let v = json_of(&data, &["channel", "rollout", "prod", &between, "--json"]);
    assert_eq!((&v["rollout"]["snapshot"], &v["rollout"]["requested"]), (&json!(id1), &json!(between)));
    let v = json_of(&data, &["channel", "advance", "prod", "--json"]);
    assert_eq!(v["rollout"]["state"], "completed");

    let list = json_of(&data, &["channel", "list", "--json"]);
    assert_eq!(list["channels"].as_array().unwrap().len(), 1);
    let h = json_of(&data, &["channel", "history", "prod", "--json"]);
    let actions: Vec<&str> = h["events"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        [
            "channel.created",
            "rollout.started",
            "ring.started",
            "rollout.paused",
            "rollout.aborted",
            "rollout.started",
            "ring.started",
            "ring.started",
            "rollout.completed",
        ]
    );

    let (code, _, err) = run(&data, &["channel", "show", "nope"]);
    assert_eq!((code, err.as_str()), (2, "error: no channel named 'nope'\n"));
    let (code, _, err) = run(&data, &["channel", "create", "x", "--archive", "debian", "--ring", "a:50"]);
    assert_eq!(
        (code, err.as_str()),
        (2, "error: the last ring must cover 100 percent of the fleet, so that a rollout reaches every node\n")
    );
    let (code, _, err) = run(&data, &["channel", "create", "x", "--archive", "nope", "--ring", "a:100"]);
    assert_eq!((code, err.as_str()), (2, "error: no archive named 'nope'\n"));
    let (code, _, err) = run(&data, &["channel", "create", "x", "--archive", "debian", "--ring", "a"]);
    assert_eq!((code, err.as_str()), (2, "error: ring 'a': expected NAME:PERCENT[:SOAK], e.g. canary:1:30m\n"));
}
