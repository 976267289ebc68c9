//! Publishing (and pushing) a tree someone else can write to: a file or a directory swapped
//! for a symlink between the scan and the reading of the files fails the publish with the
//! exact change, commits nothing, and the content outside the tree never reaches the blob
//! store, whatever the stat cache remembers.

use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::{Duration, SystemTime};

use asof::domain::{ArchiveName, Digest};
use asof::publish::{NoProgress, PublishOptions, publish_dir_cached, publish_scanned, scan_tree};
use asof::store::Store;

/// Same length as the in-tree content, so that nothing but the file type differs.
const INSIDE: &str = "Origin: test\n";
const SECRET: &str = "root:secret!\n";

fn opts() -> PublishOptions<'static> {
    PublishOptions { progress: &NoProgress, source: serde_json::json!({"test": true}), always: false }
}

/// A tree with `dists/stable/Release` and a secret file outside it.
fn setup(tmp: &Path) -> (Store, ArchiveName) {
    std::fs::create_dir_all(tmp.join("tree/dists/stable")).unwrap();
    std::fs::write(tmp.join("tree/dists/stable/Release"), INSIDE).unwrap();
    std::fs::write(tmp.join("tree/dists/stable/Packages"), "Package: a\n").unwrap();
    std::fs::create_dir_all(tmp.join("outside/stable")).unwrap();
    std::fs::write(tmp.join("outside/stable/Release"), SECRET).unwrap();
    std::fs::write(tmp.join("outside/stable/Packages"), SECRET).unwrap();
    (Store::open_local(&tmp.join("data")).unwrap(), "race".parse().unwrap())
}

fn assert_secret_not_stored(store: &Store) {
    assert!(
        !store.blobs.blocking().contains(&Digest::of(SECRET.as_bytes())).unwrap(),
        "content from outside the tree was stored"
    );
}

#[test]
fn a_file_swapped_for_a_symlink_after_the_scan_fails_the_publish() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, archive) = setup(tmp.path());
    let tree = tmp.path().join("tree");
    let scanned = scan_tree(&tree).unwrap();

    std::fs::remove_file(tree.join("dists/stable/Release")).unwrap();
    symlink(tmp.path().join("outside/stable/Release"), tree.join("dists/stable/Release")).unwrap();

    let err = publish_scanned(&store, &archive, &tree, &scanned, &opts(), None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "dists/stable/Release changed during the publish: was a regular file, is now a symlink"
    );
    assert!(store.catalog.latest(&archive).unwrap().is_none());
    assert_secret_not_stored(&store);
}

#[test]
fn a_directory_swapped_for_a_symlink_after_the_scan_fails_the_publish() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, archive) = setup(tmp.path());
    let tree = tmp.path().join("tree");
    let scanned = scan_tree(&tree).unwrap();

    // `dists` now leads outside, to a directory holding the same names.
    std::fs::rename(tree.join("dists"), tmp.path().join("moved-away")).unwrap();
    symlink(tmp.path().join("outside"), tree.join("dists")).unwrap();

    let err = publish_scanned(&store, &archive, &tree, &scanned, &opts(), None).unwrap_err();
    // Files are read in parallel: whichever is read first names the same change.
    assert_eq!(err.to_string(), "dists changed during the publish: was a directory, is now a symlink");
    assert!(store.catalog.latest(&archive).unwrap().is_none());
    assert_secret_not_stored(&store);
}

/// A symlink with the size and mtime of the file it replaced, to a file that the stat
/// cache knows, must not be taken for the unchanged file.
#[test]
fn the_stat_cache_does_not_let_a_swapped_symlink_through() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, archive) = setup(tmp.path());
    let tree = tmp.path().join("tree");
    let cache = tmp.path().join("data/cache/race.bin");
    let old = SystemTime::now() - Duration::from_secs(3600);
    for f in ["tree/dists/stable/Release", "outside/stable/Release"] {
        std::fs::File::options().write(true).open(tmp.path().join(f)).unwrap().set_modified(old).unwrap();
    }
    let first = publish_dir_cached(&store, &archive, &tree, &opts(), Some(&cache)).unwrap();

    let scanned = scan_tree(&tree).unwrap();
    // The outside file is the very inode the cache remembers for Release: a hard link made
    // by whoever prepared the swap, then the name in the tree becomes a symlink to it.
    let elsewhere = tmp.path().join("outside/known");
    std::fs::hard_link(tree.join("dists/stable/Release"), &elsewhere).unwrap();
    std::fs::remove_file(tree.join("dists/stable/Release")).unwrap();
    symlink(&elsewhere, tree.join("dists/stable/Release")).unwrap();

    let err = publish_scanned(&store, &archive, &tree, &scanned, &opts(), Some(&cache)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "dists/stable/Release changed during the publish: was a regular file, is now a symlink"
    );
    assert_eq!(store.catalog.latest(&archive).unwrap().unwrap().id, first.snapshot);
}

#[test]
fn a_symlink_retargeted_after_the_scan_fails_the_publish() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, archive) = setup(tmp.path());
    let tree = tmp.path().join("tree");
    symlink("stable", tree.join("dists/bookworm")).unwrap();
    let scanned = scan_tree(&tree).unwrap();

    std::fs::remove_file(tree.join("dists/bookworm")).unwrap();
    symlink("../../outside/stable", tree.join("dists/bookworm")).unwrap();

    let err = publish_scanned(&store, &archive, &tree, &scanned, &opts(), None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "dists/bookworm changed during the publish: was a symlink to \"stable\", is now a symlink to \"../../outside/stable\""
    );
    assert!(store.catalog.latest(&archive).unwrap().is_none());
}

#[test]
fn push_hashing_refuses_a_file_swapped_for_a_symlink() {
    let tmp = tempfile::tempdir().unwrap();
    setup(tmp.path());
    let tree = tmp.path().join("tree");
    let scanned = scan_tree(&tree).unwrap();

    std::fs::remove_file(tree.join("dists/stable/Packages")).unwrap();
    symlink(tmp.path().join("outside/stable/Packages"), tree.join("dists/stable/Packages")).unwrap();

    let bar = indicatif::ProgressBar::hidden();
    let err = asof::push::hash_scanned(&tree, &scanned, &bar).map(|_| ()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "dists/stable/Packages changed during the publish: was a regular file, is now a symlink"
    );

    // A directory swapped the same way.
    std::fs::remove_file(tree.join("dists/stable/Packages")).unwrap();
    std::fs::write(tree.join("dists/stable/Packages"), "Package: a\n").unwrap();
    std::fs::rename(tree.join("dists/stable"), tmp.path().join("moved-away")).unwrap();
    symlink(tmp.path().join("outside/stable"), tree.join("dists/stable")).unwrap();
    let err = asof::push::hash_scanned(&tree, &scanned, &bar).map(|_| ()).unwrap_err();
    assert_eq!(err.to_string(), "dists/stable changed during the publish: was a directory, is now a symlink");
}
