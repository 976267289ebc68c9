//! The command line as an operator uses it: precise errors, exit codes, summaries, and
//! nothing recorded when the input is bad.

mod common;

use std::os::unix::fs::symlink;

use common::*;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn bad_publishes_fail_precisely_and_record_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let tree = tmp.path().join("tree");
    std::fs::create_dir_all(tree.join("dists")).unwrap();
    std::fs::write(tree.join("dists/Release"), "x").unwrap();

    let out = asof(&data, &["publish", "Debian", tree.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "error: invalid archive name 'Debian': archive name segment 'Debian' is invalid: each segment must match [a-z0-9][a-z0-9._-]* and segments are joined by '/'\n"
    );

    let missing = tmp.path().join("missing");
    let out = asof(&data, &["publish", "debian", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        format!("error: publishing {m} as debian: {m} is not a directory\n", m = missing.display())
    );

    symlink("../../../etc/passwd", tree.join("dists/evil")).unwrap();
    let out = asof(&data, &["publish", "debian", tree.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        format!(
            "error: publishing {} as debian: dists/evil: symlink to \"../../../etc/passwd\" points outside the tree (absolute or above its root)\n",
            tree.display()
        )
    );
    std::fs::remove_file(tree.join("dists/evil")).unwrap();

    assert!(std::process::Command::new("mkfifo").arg(tree.join("dists/pipe")).status().unwrap().success());
    let out = asof(&data, &["publish", "debian", tree.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        format!(
            "error: publishing {} as debian: dists/pipe: only regular files and symlinks can be published, this is a named pipe\n",
            tree.display()
        )
    );
    std::fs::remove_file(tree.join("dists/pipe")).unwrap();

    let out = asof(&data, &["snapshots", "debian"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stderr(&out), "error: no archive named 'debian'\n");

    // The same tree, now clean, publishes.
    publish(&data, "debian", &tree);
}

#[test]
fn unchanged_files_are_not_stored_again() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let run = |tree: &str, extra: &[&str]| {
        let dir = fixtures().join("apt").join(tree);
        let mut args = vec!["publish", "debian", dir.to_str().unwrap(), "--json"];
        args.extend_from_slice(extra);
        let out = asof(&data, &args);
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let first = run("v1", &[]);
    assert_eq!((first["files"].as_u64(), first["new_blobs"].as_u64()), (Some(8), Some(8)));
    let second = run("v2", &[]);
    // Only asof-tzdata is shared between v1 and v2.
    assert_eq!((second["files"].as_u64(), second["new_blobs"].as_u64()), (Some(9), Some(8)));
    assert_eq!(
        (second["added"].as_u64(), second["changed"].as_u64(), second["removed"].as_u64()),
        (Some(2), Some(6), Some(1))
    );
    let again = run("v1", &[]);
    assert_eq!(again["new_blobs"], 0);
    assert_eq!(again["digest"], first["digest"], "same tree, same digest");
    let unchanged = run("v1", &["--if-changed"]);
    assert_eq!(unchanged["unchanged"], true);
    assert_eq!(unchanged["snapshot"], again["snapshot"]);

    let list = asof(&data, &["snapshots", "debian"]);
    let text = String::from_utf8(list.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    // Oldest first: ID first, content digest last.
    for (line, report) in lines.iter().zip([&first, &second, &again]) {
        let (id, digest) = (report["snapshot"].as_str().unwrap(), report["digest"].as_str().unwrap());
        assert!(
            line.starts_with(id) && line.ends_with(&format!("sha256:{}", digest.trim_start_matches("sha256:"))),
            "{line} vs {report}"
        );
    }
}

#[test]
fn config_rejects_unknown_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("asof.toml");
    std::fs::write(&cfg, "[server]\nlisten = \"127.0.0.1:0\"\nlisten_port = 1\n").unwrap();
    let out = asof(&tmp.path().join("data"), &["--config", cfg.to_str().unwrap(), "serve"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(
        lines[0],
        format!("error: invalid config {}: TOML parse error at line 3, column 1", cfg.display()),
        "{err}"
    );
    assert_eq!(lines[2..4], ["3 | listen_port = 1", "  | ^^^^^^^^^^^"], "{err}");
    // The list of known keys that follows grows with the configuration.
    assert!(lines[4].starts_with("unknown field `listen_port`, expected one of `listen`, "), "{err}");
}

#[test]
fn serve_stops_gracefully_on_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(bin())
        .arg("--data")
        .arg(tmp.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    use std::io::BufRead;
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert!(line.starts_with("asof listening on http://"), "{line}");
    let pid = child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

#[test]
fn demo_serves_two_different_snapshots() {
    let tmp = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(bin())
        .arg("--data")
        .arg(tmp.path())
        .args(["serve", "--demo", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    use std::io::BufRead;
    let lines: Vec<String> = std::io::BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map(Result::unwrap)
        .take_while(|l| !l.starts_with("asof listening"))
        .collect();
    let _ = child.kill();
    let _ = child.wait();
    let debs: Vec<&String> = lines.iter().filter(|l| l.trim_start().starts_with("deb [signed-by=")).collect();
    assert_eq!(debs.len(), 2, "{lines:?}");
    let keyring = debs[0].split("signed-by=").nth(1).unwrap().split(']').next().unwrap();
    assert!(std::path::Path::new(keyring).is_absolute() && std::path::Path::new(keyring).exists(), "{keyring}");
    let live = lines.iter().find(|l| l.starts_with("the live path")).expect("a live-path line");
    let addr = debs[0].split("http://").nth(1).unwrap().split('/').next().unwrap();
    assert_eq!(
        live,
        &format!(
            "the live path (always the latest snapshot): deb [signed-by={keyring}] http://{addr}/demo/ stable main"
        )
    );
    let out = asof(tmp.path(), &["snapshots", "demo", "--json"]);
    let snaps: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(snaps.as_array().unwrap().len(), 2);
    assert_ne!(snaps[0]["digest"], snaps[1]["digest"]);
}
