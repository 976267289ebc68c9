//! Issue 9: `asof diff` and `asof packages` on the signed fixture archives.

mod common;

use common::*;

fn run(data: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = asof(data, args);
    (out.status.code().unwrap(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

#[test]
fn diff_and_package_history_of_the_fixture_snapshots() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let v1 = publish(&data, "demo", &fixtures().join("apt/v1"));
    let v2 = publish(&data, "demo", &fixtures().join("apt/v2"));

    let (code, out, err) = run(&data, &["diff", "demo", &v1, &v2]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(err, format!("demo: {v1} -> {v2}: 2 change(s)\n"));
    assert_eq!(
        out,
        "added      asof-extra - -> 0.1-1  [stable/main amd64]\n\
         upgraded   hello-asof 1.0-1 -> 1.1-1  [stable/main amd64]\n"
    );
    let (_, out, _) = run(&data, &["diff", "demo", &v1, &v2, "--json", "--name", "hello-asof"]);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        json["changes"],
        serde_json::json!([{"name": "hello-asof", "kind": "binary", "architecture": "amd64", "suite": "stable",
            "component": "main", "source": "hello-asof", "old_version": "1.0-1", "new_version": "1.1-1", "change": "upgraded"}])
    );

    let (code, out, _) = run(&data, &["packages", "demo", "hello-asof"]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        format!(
            "1.0-1                    stable/main amd64    {v1} .. {v1}\n1.1-1                    stable/main amd64    {v2} .. (current)\n"
        )
    );
    let (_, out, _) = run(&data, &["packages", "demo", "hello-asof", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let deb = std::fs::read(fixtures().join("apt/v2/pool/main/h/hello-asof/hello-asof_1.1-1_all.deb")).unwrap();
    assert_eq!(json["versions"][1]["sha256"], sha256_hex(&deb));
    assert_eq!(json["versions"][1]["filename"], "pool/main/h/hello-asof/hello-asof_1.1-1_all.deb");

    let (code, _, err) = run(&data, &["packages", "demo", "nothere"]);
    assert_eq!((code, err.as_str()), (2, "error: package 'nothere' was never in archive 'demo'\n"));
    let (code, _, err) = run(&data, &["diff", "demo", "yesterday", &v2]);
    assert_eq!(code, 2);
    assert!(err.starts_with("error: invalid snapshot ID 'yesterday': "), "{err}");
}
