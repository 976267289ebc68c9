//! Walks a publish tree: regular files and in-tree relative symlinks, nothing else.

use std::path::{Path, PathBuf};

use crate::domain::{RelPath, RelPathError};

#[derive(Debug, Clone)]
pub enum ScannedKind {
    File,
    Symlink { target: String },
}

/// An entry found by the walk. Files are not stat'ed here: the walk reads directories only
/// (file types come with them), and callers stat files in parallel, where cold inode reads
/// can overlap.
#[derive(Debug, Clone)]
pub struct ScannedEntry {
    pub path: RelPath,
    pub kind: ScannedKind,
}

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("{0} is not a directory")]
    NotADirectory(PathBuf),
    #[error("walking {path}: {source}")]
    Walk { path: PathBuf, source: std::io::Error },
    #[error("{0}: file name is not valid UTF-8")]
    NotUtf8(PathBuf),
    #[error("{path}: {source}")]
    BadPath { path: PathBuf, source: RelPathError },
    #[error("{path}: symlink target {target:?} is not valid UTF-8 or is empty")]
    BadTarget { path: RelPath, target: PathBuf },
    #[error("{path}: symlink to {target:?} points outside the tree (absolute or above its root)")]
    EscapingSymlink { path: RelPath, target: String },
    #[error("{path}: only regular files and symlinks can be published, this is a {kind}")]
    Unsupported { path: RelPath, kind: &'static str },
    #[error("the tree {0} has no files")]
    Empty(PathBuf),
}

/// Lists every publishable entry below `root`, sorted by path; the first offending entry
/// makes the whole scan fail, before anything is stored.
pub fn scan_tree(root: &Path) -> Result<Vec<ScannedEntry>, ScanError> {
    let mut out = Vec::new();
    walk(root, &mut |e| out.push(e))?;
    Ok(out)
}

/// What `scan_tree` finds, packed: every path in one string (a tree of a million files
/// costs its path bytes and 8 bytes a file, not two allocations and 48 bytes a file).
#[derive(Default)]
pub struct ScannedTree {
    text: String,
    /// Where each entry's path ends in `text`.
    ends: Vec<u64>,
    /// Symlink targets (few), by entry index, in index order.
    targets: Vec<(usize, String)>,
}

impl ScannedTree {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Entries `range` (a few thousand at a time: a round of a publish), unpacked.
    pub fn entries(&self, range: std::ops::Range<usize>) -> Vec<ScannedEntry> {
        let first_target = self.targets.partition_point(|(i, _)| *i < range.start);
        let mut targets = self.targets[first_target..].iter().peekable();
        range
            .map(|i| {
                let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
                let path = RelPath::new(&self.text[start..self.ends[i] as usize]).expect("checked by the scan");
                let kind = match targets.next_if(|(t, _)| *t == i) {
                    Some((_, target)) => ScannedKind::Symlink { target: target.clone() },
                    None => ScannedKind::File,
                };
                ScannedEntry { path, kind }
            })
            .collect()
    }

    fn push(&mut self, e: ScannedEntry) {
        if let ScannedKind::Symlink { target } = e.kind {
            self.targets.push((self.ends.len(), target));
        }
        self.text.push_str(e.path.as_str());
        self.ends.push(self.text.len() as u64);
    }
}

/// `scan_tree`, packed.
pub fn scan_tree_packed(root: &Path) -> Result<ScannedTree, ScanError> {
    let mut out = ScannedTree::default();
    walk(root, &mut |e| out.push(e))?;
    out.text.shrink_to_fit();
    out.ends.shrink_to_fit();
    Ok(out)
}

/// Calls `found` for every publishable entry below `root`, sorted by path, and fails on
/// the first offending one or when there is none.
fn walk(root: &Path, found: &mut dyn FnMut(ScannedEntry)) -> Result<(), ScanError> {
    if !root.is_dir() {
        return Err(ScanError::NotADirectory(root.to_path_buf()));
    }
    let mut any = false;
    // Directories are read in parallel (jwalk): on a cold cache each read waits on the disk,
    // and an archive has tens of thousands of them.
    let walk = jwalk::WalkDir::new(root)
        .min_depth(1)
        .follow_links(false)
        .skip_hidden(false)
        .sort(true)
        .parallelism(jwalk::Parallelism::RayonNewPool(8));
    for item in walk {
        let item = item.map_err(|e| ScanError::Walk {
            path: e.path().map_or_else(|| root.to_path_buf(), Path::to_path_buf),
            source: e.into_io_error().unwrap_or_else(|| std::io::Error::other("filesystem loop")),
        })?;
        let item_path = item.path();
        let ft = item.file_type();
        if ft.is_dir() {
            continue;
        }
        let rel = item_path.strip_prefix(root).expect("the walk yields paths under root");
        let rel_str = rel.to_str().ok_or_else(|| ScanError::NotUtf8(item_path.clone()))?;
        let path = RelPath::new(rel_str).map_err(|source| ScanError::BadPath { path: rel.to_path_buf(), source })?;
        let walk_err = |source| ScanError::Walk { path: item_path.clone(), source };
        if ft.is_symlink() {
            let raw = std::fs::read_link(&item_path).map_err(walk_err)?;
            let target = raw
                .to_str()
                .filter(|t| !t.is_empty())
                .ok_or_else(|| ScanError::BadTarget { path: path.clone(), target: raw.clone() })?
                .to_string();
            if path.resolve_link(&target).is_none() {
                return Err(ScanError::EscapingSymlink { path, target });
            }
            any = true;
            found(ScannedEntry { path, kind: ScannedKind::Symlink { target } });
        } else if ft.is_file() {
            any = true;
            found(ScannedEntry { path, kind: ScannedKind::File });
        } else {
            use std::os::unix::fs::FileTypeExt;
            let kind = if ft.is_fifo() {
                "named pipe"
            } else if ft.is_socket() {
                "socket"
            } else if ft.is_block_device() || ft.is_char_device() {
                "device"
            } else {
                "special file"
            };
            return Err(ScanError::Unsupported { path, kind });
        }
    }
    if !any {
        return Err(ScanError::Empty(root.to_path_buf()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn scans_files_and_inner_symlinks() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("dists/bookworm")).unwrap();
        std::fs::write(d.path().join("dists/bookworm/Release"), "x").unwrap();
        symlink("bookworm", d.path().join("dists/stable")).unwrap();
        let got = scan_tree(d.path()).unwrap();
        let paths: Vec<_> = got.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["dists/bookworm/Release", "dists/stable"]);
    }

    #[test]
    fn the_packed_scan_unpacks_to_the_same_entries_in_any_range() {
        let d = tempfile::tempdir().unwrap();
        for i in 0..40 {
            let dir = d.path().join(format!("pool/p{}", i % 7));
            std::fs::create_dir_all(&dir).unwrap();
            if i % 5 == 0 {
                symlink(format!("../p{}/f{}", (i + 1) % 7, i + 1), dir.join(format!("l{i}"))).unwrap();
            } else {
                std::fs::write(dir.join(format!("f{i}")), i.to_string()).unwrap();
            }
        }
        let show = |e: &ScannedEntry| match &e.kind {
            ScannedKind::File => e.path.to_string(),
            ScannedKind::Symlink { target } => format!("{} -> {target}", e.path),
        };
        let want: Vec<String> = scan_tree(d.path()).unwrap().iter().map(show).collect();
        assert_eq!(want.iter().filter(|w| w.contains(" -> ")).count(), 8);
        let packed = scan_tree_packed(d.path()).unwrap();
        assert_eq!(packed.len(), 40);
        let all: Vec<String> = packed.entries(0..40).iter().map(show).collect();
        assert_eq!(all, want);
        for (start, end) in [(0, 3), (3, 17), (17, 40), (5, 5), (39, 40)] {
            let part: Vec<String> = packed.entries(start..end).iter().map(show).collect();
            assert_eq!(part, want[start..end], "{start}..{end}");
        }
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(
            scan_tree_packed(empty.path()).err().unwrap().to_string(),
            format!("the tree {} has no files", empty.path().display())
        );
    }

    #[test]
    fn refuses_escaping_symlinks_and_fifos() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("f"), "x").unwrap();
        symlink("../../etc/passwd", d.path().join("evil")).unwrap();
        assert!(matches!(scan_tree(d.path()), Err(ScanError::EscapingSymlink { .. })));
        std::fs::remove_file(d.path().join("evil")).unwrap();
        symlink("/etc/passwd", d.path().join("abs")).unwrap();
        assert!(matches!(scan_tree(d.path()), Err(ScanError::EscapingSymlink { .. })));
        std::fs::remove_file(d.path().join("abs")).unwrap();
        let fifo = d.path().join("pipe");
        let status = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(status.success());
        assert!(matches!(scan_tree(d.path()), Err(ScanError::Unsupported { .. })));
    }
}
