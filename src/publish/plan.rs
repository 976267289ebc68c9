//! Turns "the latest manifest" and "the new manifest" into the O(changes) commit plan.

use std::collections::{BTreeSet, HashMap};

use crate::catalog::{CommitPlan, Snapshot};
use crate::domain::RelPath;
use crate::manifest::{Content, ManifestEntry, content_digest, implied_dirs};

/// `live` is the manifest of `latest` as stored (directories included); `next` holds the
/// files and symlinks of the new tree (directories are derived here).
pub fn plan_commit(
    latest: Option<&Snapshot>,
    live: &[ManifestEntry],
    next: &[ManifestEntry],
    source: serde_json::Value,
) -> CommitPlan {
    let old: HashMap<&str, &Content> = live.iter().map(|e| (e.path.as_str(), &e.content)).collect();
    let next_dirs = implied_dirs(next.iter().map(|e| &e.path));
    let next_paths: BTreeSet<&str> =
        next.iter().map(|e| e.path.as_str()).chain(next_dirs.iter().map(String::as_str)).collect();

    let (mut added, mut changed) = (0, 0);
    let mut upserts = Vec::new();
    for e in next {
        match old.get(e.path.as_str()) {
            Some(c) if **c == e.content => {}
            Some(_) => {
                changed += 1;
                upserts.push(e.clone());
            }
            None => {
                added += 1;
                upserts.push(e.clone());
            }
        }
    }
    for d in &next_dirs {
        if old.get(d.as_str()) != Some(&&Content::Dir) {
            let path = RelPath::new(d).expect("ancestors of valid paths are valid");
            upserts.push(ManifestEntry { path, content: Content::Dir });
        }
    }
    let mut removed = 0;
    let removals: Vec<RelPath> = live
        .iter()
        .filter(|e| !next_paths.contains(e.path.as_str()))
        .inspect(|e| {
            if e.content != Content::Dir {
                removed += 1;
            }
        })
        .map(|e| e.path.clone())
        .collect();

    CommitPlan {
        base_seq: latest.map_or(0, |s| s.key.seq),
        upserts,
        removals,
        digest: content_digest(next),
        files: next.len() as u64,
        bytes: next.iter().map(|e| e.content.size()).sum(),
        added,
        changed,
        removed,
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Digest;

    fn file(p: &str, data: &str) -> ManifestEntry {
        ManifestEntry {
            path: RelPath::new(p).unwrap(),
            content: Content::File { size: data.len() as u64, sha256: Digest::of(data.as_bytes()) },
        }
    }
    fn dir(p: &str) -> ManifestEntry {
        ManifestEntry { path: RelPath::new(p).unwrap(), content: Content::Dir }
    }

    #[test]
    fn plan_contains_only_changes() {
        let live = vec![dir("a"), file("a/x", "1"), file("a/y", "2"), dir("b"), file("b/z", "3")];
        let next = vec![file("a/x", "1"), file("a/y", "changed"), file("c/new", "4")];
        let plan = plan_commit(None, &live, &next, serde_json::Value::Null);
        let up: Vec<_> = plan.upserts.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(up, ["a/y", "c/new", "c"]);
        let rm: Vec<_> = plan.removals.iter().map(|p| p.as_str()).collect();
        assert_eq!(rm, ["b", "b/z"]);
        assert_eq!((plan.added, plan.changed, plan.removed), (1, 1, 1));
        assert_eq!(plan.files, 3);
    }
}
