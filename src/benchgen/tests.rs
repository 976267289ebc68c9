use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use sha2::{Digest as _, Sha256};

use super::*;
use crate::domain::ArchiveName;
use crate::publish::{NoProgress, PublishOptions, publish_dir};
use crate::store::Store;

fn tiny(out: &Path, seed: u64) -> GenOptions {
    let mut o = GenOptions::new(out, seed, 60, 3, 0.1);
    o.size_scale = 0.002; // median payload ≈ 200 bytes
    o.xz_preset = 1;
    o
}

/// Every file and symlink under `root` with its bytes (or link target), sorted by path.
fn snapshot_of(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(root).sort_by_file_name() {
        let e = e.unwrap();
        let rel = e.path().strip_prefix(root).unwrap().to_string_lossy().into_owned();
        if e.file_type().is_symlink() {
            out.push((rel, fs::read_link(e.path()).unwrap().into_os_string().into_encoded_bytes()));
        } else if e.file_type().is_file() {
            out.push((rel, fs::read(e.path()).unwrap()));
        }
    }
    out
}

#[test]
fn same_seed_gives_byte_identical_trees() {
    let tmp = tempfile::tempdir().unwrap();
    let a = generate(&tiny(&tmp.path().join("a"), 42)).unwrap();
    let b = generate(&tiny(&tmp.path().join("b"), 42)).unwrap();
    let c = generate(&tiny(&tmp.path().join("c"), 43)).unwrap();
    assert_eq!(a, b);
    let tree_a = snapshot_of(&tmp.path().join("a"));
    assert!(tree_a.len() > 3 * 60, "only {} files", tree_a.len());
    assert!(tree_a == snapshot_of(&tmp.path().join("b")), "same seed, different trees");
    assert!(tree_a != snapshot_of(&tmp.path().join("c")), "different seeds, same trees");
    assert_ne!(a.publishes, c.publishes);
}

#[test]
fn history_has_churn_hard_links_and_consistent_release() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("gen");
    let s = generate(&tiny(&out, 7)).unwrap();
    assert_eq!(s.publishes.len(), 3);
    let first = &s.publishes[0];
    assert!(first.packages >= 60);
    assert_eq!(first.added, first.files);
    for p in &s.publishes[1..] {
        assert!(p.touched_packages >= 6, "{p:?}");
        assert!(p.added > 0 && p.removed > 0 && p.changed >= 2, "{p:?}");
    }
    // Unchanged pool files are hard links to the previous tree.
    let (t0, t1) = (out.join("0000"), out.join("0001"));
    let common: Vec<String> = {
        let p1 = pool_files(&t1).unwrap();
        let set = path_set(&p1);
        pool_files(&t0).unwrap().into_iter().filter(|p| set.contains(p.as_str())).collect()
    };
    assert!(!common.is_empty());
    for p in &common {
        assert_eq!(fs::metadata(t0.join(p)).unwrap().ino(), fs::metadata(t1.join(p)).unwrap().ino(), "{p}");
    }
    // Release lists every index with its size and SHA-256.
    let release = fs::read_to_string(t1.join("dists/bookworm/Release")).unwrap();
    let sha_section = release.split("SHA256:\n").nth(1).unwrap();
    let mut listed = 0;
    for line in sha_section.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let data = fs::read(t1.join("dists/bookworm").join(parts[2])).unwrap();
        assert_eq!(parts[1].parse::<usize>().unwrap(), data.len(), "{}", parts[2]);
        assert_eq!(parts[0], hex::encode(Sha256::digest(&data)), "{}", parts[2]);
        listed += 1;
    }
    assert_eq!(listed, 16);
    // Every pool file is in an index, with its size.
    let packages = fs::read_to_string(t1.join("dists/bookworm/main/binary-amd64/Packages")).unwrap()
        + &fs::read_to_string(t1.join("dists/bookworm/contrib/binary-amd64/Packages")).unwrap();
    for p in pool_files(&t1).unwrap() {
        let size = fs::metadata(t1.join(&p)).unwrap().len();
        assert!(packages.contains(&format!("Filename: {p}\nSize: {size}\n")), "{p} not indexed");
    }
    assert!(t1.join("dists/stable").is_symlink());
    let changes = fs::read_to_string(out.join("changes/0001.tsv")).unwrap();
    assert_eq!(changes.lines().filter(|l| l.starts_with("add\t")).count() as u64, s.publishes[1].added);
    assert_eq!(changes.lines().filter(|l| l.starts_with("remove\t")).count() as u64, s.publishes[1].removed);
}

#[test]
fn publish_reports_match_the_generator_summary() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("gen");
    let s = generate(&tiny(&out, 11)).unwrap();
    let store = Store::open_local(&tmp.path().join("data")).unwrap();
    let archive: ArchiveName = "bench".parse().unwrap();
    let opts = PublishOptions { progress: &NoProgress, source: serde_json::json!({"test": true}), always: true };
    for p in &s.publishes {
        let r = publish_dir(&store, &archive, &out.join(&p.tree), &opts).unwrap();
        assert_eq!(
            (r.files, r.added, r.changed, r.removed),
            (p.files, p.added, p.changed, p.removed),
            "publish {}: asof {r:?} vs generator {p:?}",
            p.tree
        );
        assert_eq!(r.bytes, p.bytes);
        if p.index > 0 {
            // Only the new pool files and the changed indices are new blobs.
            assert!(r.new_blobs <= p.added + p.changed, "{r:?} {p:?}");
            assert!(r.new_bytes >= p.new_pool_bytes, "{r:?} {p:?}");
        }
    }
}

#[test]
fn dpkg_deb_accepts_a_generated_package() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("gen");
    generate(&tiny(&out, 3)).unwrap();
    let tree = out.join("0002");
    let pools = pool_files(&tree).unwrap();
    for p in pools.iter().take(3) {
        let deb = tree.join(p);
        let info = Command::new("dpkg-deb").arg("--info").arg(&deb).output().expect("dpkg-deb is installed");
        assert!(info.status.success(), "{p}: {}", String::from_utf8_lossy(&info.stderr));
        let text = String::from_utf8_lossy(&info.stdout);
        let name = Path::new(p).file_name().unwrap().to_str().unwrap().split('_').next().unwrap();
        assert!(text.contains(&format!(" Package: {name}\n")), "{text}");
        for field in ["Version:", "Architecture:", "Maintainer:", "Installed-Size:", "Description:"] {
            assert!(text.contains(field), "{field} missing: {text}");
        }
        let contents = Command::new("dpkg-deb").arg("--contents").arg(&deb).output().unwrap();
        assert!(contents.status.success(), "{p}: {}", String::from_utf8_lossy(&contents.stderr));
        assert!(String::from_utf8_lossy(&contents.stdout).contains("payload.bin"));
    }
}

/// The paths that differ between two trees: present in one only, or with other bytes (or
/// another link target).
fn real_diff(old: &Path, new: &Path) -> Vec<String> {
    let old: BTreeMap<String, Vec<u8>> = snapshot_of(old).into_iter().collect();
    let new: BTreeMap<String, Vec<u8>> = snapshot_of(new).into_iter().collect();
    let mut out: Vec<String> = new.iter().filter(|(p, b)| old.get(*p) != Some(*b)).map(|(p, _)| p.clone()).collect();
    out.extend(old.keys().filter(|p| !new.contains_key(*p)).cloned());
    out.sort();
    out
}

fn change_list(out: &Path, tree: &str) -> Vec<String> {
    fs::read_to_string(out.join(format!("{tree}.changes"))).unwrap().lines().map(str::to_string).collect()
}

#[test]
fn change_lists_name_exactly_the_paths_a_diff_of_the_trees_finds() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("gen");
    let s = generate(&tiny(&out, 5)).unwrap();
    let empty = tmp.path().join("empty");
    fs::create_dir(&empty).unwrap();
    // The first list names every path of the first tree.
    assert_eq!(change_list(&out, "0000"), real_diff(&empty, &out.join("0000")));
    for k in 1..s.publishes.len() {
        let (prev, tree) = (tree_name(k - 1), tree_name(k));
        let listed = change_list(&out, &tree);
        assert_eq!(listed, real_diff(&out.join(&prev), &out.join(&tree)), "{prev} -> {tree}");
        let p = &s.publishes[k];
        assert_eq!(listed.len() as u64, p.added + p.changed + p.removed, "{p:?}");
        for index in
            ["dists/bookworm/Release", "dists/bookworm/InRelease", "dists/bookworm/main/binary-amd64/Packages.xz"]
        {
            assert!(listed.iter().any(|l| l == index), "{index} missing from {tree}.changes");
        }
        assert!(!listed.iter().any(|l| l == "dists/stable"), "the unchanged symlink is listed in {tree}.changes");
        // Removed pool files are listed too, not only added ones.
        let removed: Vec<&String> = listed.iter().filter(|l| !out.join(&tree).join(l).exists()).collect();
        assert_eq!(removed.len() as u64, p.removed, "{tree}: {removed:?}");
    }
}
