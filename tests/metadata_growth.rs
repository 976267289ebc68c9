//! A publish that changes k of n paths adds O(k) metadata: the same k changes on a 10x
//! larger archive add the same number of rows and about the same bytes.

use asof::catalog::CatalogStats;
use asof::domain::{ArchiveName, Digest, RelPath};
use asof::manifest::{Content, ManifestEntry};
use asof::publish::{NoProgress, PublishOptions, commit_manifest};
use asof::store::Store;

/// The manifest of an n-file archive, `changed` files at `version` and the rest at 1. The
/// catalog only sees paths and digests, so manifests are committed directly: writing and
/// deleting thousands of files would only measure the disk.
fn manifest(n: usize, changed: &[usize], version: u32) -> Vec<ManifestEntry> {
    (0..n)
        .map(|i| {
            let v = if changed.contains(&i) { version } else { 1 };
            let path = RelPath::new(&format!("pool/main/{}/pkg{}/pkg{i}_all.deb", i % 26, i % 400)).unwrap();
            let bytes = format!("package {i} version {v}");
            ManifestEntry {
                path,
                content: Content::File { size: bytes.len() as u64, sha256: Digest::of(bytes.as_bytes()) },
            }
        })
        .collect()
}

fn commit(store: &Store, archive: &ArchiveName, entries: Vec<ManifestEntry>) {
    let opts = PublishOptions { progress: &NoProgress, source: serde_json::json!({"test": true}), always: true };
    commit_manifest(store, archive, entries, &opts).unwrap();
}

/// Metadata added by one publish changing `k` files of an `n`-file archive.
fn growth(n: usize, k: usize) -> (CatalogStats, CatalogStats) {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open_local(&tmp.path().join("data")).unwrap();
    let archive: ArchiveName = "growth".parse().unwrap();
    let changed: Vec<usize> = (0..k).map(|j| j * (n / k)).collect();
    commit(&store, &archive, manifest(n, &[], 1));
    let first = store.catalog.stats().unwrap();
    commit(&store, &archive, manifest(n, &changed, 2));
    let second = store.catalog.stats().unwrap();
    (first, second)
}

#[test]
fn publish_metadata_grows_with_changes_not_archive_size() {
    let k = 20;
    let (small_first, small_second) = growth(1_000, k);
    let (big_first, big_second) = growth(10_000, k);

    // Exactly one new interval row per changed path, at either size.
    assert_eq!(small_second.entry_rows - small_first.entry_rows, k as u64);
    assert_eq!(big_second.entry_rows - big_first.entry_rows, k as u64);
    assert_eq!(big_second.snapshots, 2);

    // Bytes on disk move in whole pages; allow a few pages of B-tree slack, but nothing
    // like the first publish, which is O(n).
    let small_bytes = small_second.database_bytes - small_first.database_bytes;
    let big_bytes = big_second.database_bytes - big_first.database_bytes;
    eprintln!(
        "first publish: {} B (n=1000), {} B (n=10000); second publish adds {small_bytes} B and {big_bytes} B for k={k}",
        small_first.database_bytes, big_first.database_bytes
    );
    assert!(big_bytes <= small_bytes + 16 * 4096, "growth depends on n: {small_bytes} vs {big_bytes}");
    assert!(
        big_bytes * 20 < big_first.database_bytes,
        "growth {big_bytes} is not small next to {}",
        big_first.database_bytes
    );
}

#[test]
fn identical_publish_adds_only_a_snapshot_row() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open_local(tmp.path()).unwrap();
    let archive: ArchiveName = "same".parse().unwrap();
    commit(&store, &archive, manifest(300, &[], 1));
    let before = store.catalog.stats().unwrap();
    commit(&store, &archive, manifest(300, &[], 1));
    let after = store.catalog.stats().unwrap();
    assert_eq!(after.entry_rows, before.entry_rows);
    assert_eq!(after.snapshots, before.snapshots + 1);
    assert_eq!(store.catalog.snapshots(&archive, &Default::default()).unwrap().len(), 2);
}
