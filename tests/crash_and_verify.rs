//! A publish killed at any point leaves no snapshot and no corrupt blob, and a later
//! publish works; `verify` finds corrupted and missing blobs and tampered manifests.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

fn make_tree(dir: &Path, files: usize, size: usize, salt: &str) {
    for i in 0..files {
        let sub = dir.join(format!("pool/main/p{}", i % 17));
        std::fs::create_dir_all(&sub).unwrap();
        let mut data = format!("{salt}:{i}:").into_bytes();
        data.resize(size, (i % 251) as u8);
        std::fs::write(sub.join(format!("pkg{i}_1.0_all.deb")), data).unwrap();
    }
}

fn snapshot_count(data: &Path, archive: &str) -> usize {
    let out = asof(data, &["snapshots", archive, "--json"]);
    if !out.status.success() {
        // The archive only exists once a publish committed.
        assert_eq!(out.status.code(), Some(2));
        assert_eq!(String::from_utf8_lossy(&out.stderr), format!("error: no archive named '{archive}'\n"));
        return 0;
    }
    serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap().as_array().unwrap().len()
}

fn blob_count(data: &Path) -> usize {
    walkdir(&data.join("blobs/sha256"))
}

/// Blobs being written: a publish writes all its temp files before any blob appears.
fn temp_count(data: &Path) -> usize {
    walkdir(&data.join("blobs/tmp"))
}

fn walkdir(p: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(p) else {
        return 0;
    };
    rd.map(|e| e.unwrap()).map(|e| if e.file_type().unwrap().is_dir() { walkdir(&e.path()) } else { 1 }).sum()
}

#[test]
fn killed_publishes_leave_nothing_half_written() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut committed = 0;
    let mut killed_midway = 0;
    for (attempt, delay_ms) in [10u64, 40, 80, 150, 250, 400].into_iter().enumerate() {
        let tree = tmp.path().join(format!("tree{attempt}"));
        make_tree(&tree, 300, 48 * 1024, &format!("attempt{attempt}"));
        let blobs_before = blob_count(&data);
        let temps_before = temp_count(&data);
        let mut child = Command::new(bin())
            .arg("--data")
            .arg(&data)
            .args(["publish", "crashy"])
            .arg(&tree)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL: no chance to clean up.
        let status = child.wait().unwrap();
        let snapshots = snapshot_count(&data, "crashy");
        if status.success() {
            committed += 1;
        } else {
            assert_eq!(status.signal(), Some(9), "publish failed on its own: {status:?}");
            if blob_count(&data) > blobs_before || temp_count(&data) > temps_before {
                killed_midway += 1;
            }
            // Killed after its commit (while indexing packages or exiting): the snapshot is
            // complete and stays. Killed before: nothing of it is visible.
            if snapshots == committed + 1 {
                committed += 1;
            }
        }
        assert_eq!(snapshots, committed, "after attempt {attempt} ({delay_ms} ms)");
        verify_clean(&data);
    }
    assert!(killed_midway > 0, "no attempt was killed while it was storing blobs; the test proved nothing");

    // The next publish of an interrupted tree works and reuses what was already stored.
    let tree = tmp.path().join("tree0");
    let out = asof(&data, &["publish", "crashy", tree.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["files"], 300);
    assert_eq!(snapshot_count(&data, "crashy"), committed + 1);
    verify_clean(&data);
}

fn blob_path(data: &Path, hex: &str) -> std::path::PathBuf {
    data.join("blobs/sha256").join(&hex[..2]).join(&hex[2..4]).join(hex)
}

fn verify_output(data: &Path) -> (bool, String) {
    let out = asof(data, &["verify"]);
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn verify_reports_corrupt_and_missing_blobs() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let id = publish(&data, "debian", &fixtures().join("apt/v1"));
    verify_clean(&data);

    let release = std::fs::read(fixtures().join("apt/v1/dists/stable/Release")).unwrap();
    let release_hex = sha256_hex(&release);
    let path = blob_path(&data, &release_hex);
    let mut perms = std::fs::metadata(&path).unwrap().permissions();
    assert!(perms.readonly(), "blobs are stored read-only");
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&path, perms).unwrap();
    let mut bytes = release.clone();
    bytes[0] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();

    let deb = std::fs::read(fixtures().join("apt/v1/pool/main/h/hello-asof/hello-asof_1.0-1_all.deb")).unwrap();
    let deb_hex = sha256_hex(&deb);
    std::fs::remove_file(blob_path(&data, &deb_hex)).unwrap();

    let (ok, out) = verify_output(&data);
    assert!(!ok, "verify must fail");
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            format!("corrupt blob {release_hex}: content hashes to {} ({})", sha256_hex(&bytes), path.display()),
            format!(
                "missing blob {deb_hex} ({} bytes), used by debian/{id}/pool/main/h/hello-asof/hello-asof_1.0-1_all.deb",
                deb.len()
            ),
        ],
        "exactly the two problems: {out}"
    );
}

#[test]
fn verify_reports_a_manifest_that_no_longer_matches_its_digest() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let id = publish(&data, "debian", &fixtures().join("apt/v1"));
    let db = rusqlite::Connection::open(data.join("asof.db")).unwrap();
    let n = db
        .execute("UPDATE entries SET path = 'dists/stable/Release.renamed' WHERE path = 'dists/stable/Release'", [])
        .unwrap();
    assert_eq!(n, 1);
    drop(db);
    let (ok, out) = verify_output(&data);
    assert!(!ok);
    // What the manifest now hashes to: the digest of the tree with that file renamed.
    let renamed = tmp.path().join("renamed");
    copy_dir(&fixtures().join("apt/v1"), &renamed);
    std::fs::rename(renamed.join("dists/stable/Release"), renamed.join("dists/stable/Release.renamed")).unwrap();
    assert_eq!(
        out,
        format!(
            "snapshot debian/{id}: manifest hashes to {}, recorded digest is {}\n",
            digest_of(&tmp.path().join("scratch"), &renamed),
            digest_of(&tmp.path().join("scratch"), &fixtures().join("apt/v1"))
        )
    );
}

/// The content digest of a tree, as a publish to a scratch data dir reports it.
fn digest_of(scratch: &Path, tree: &Path) -> String {
    let out = asof(scratch, &["publish", "scratch", tree.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    report["digest"].as_str().unwrap().trim_start_matches("sha256:").to_string()
}

fn copy_dir(from: &Path, to: &Path) {
    for e in walkdir::WalkDir::new(from) {
        let e = e.unwrap();
        let target = to.join(e.path().strip_prefix(from).unwrap());
        if e.file_type().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}
