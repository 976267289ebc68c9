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
    assert_eq!(err, "deb: keep last 2; keeps 5 of 6 snapshot(s), deletes 1\n");

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
