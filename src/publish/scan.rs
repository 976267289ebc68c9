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
    if !root.is_dir() {
        return Err(ScanError::NotADirectory(root.to_path_buf()));
    }
    let mut out = Vec::new();
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
            out.push(ScannedEntry { path, kind: ScannedKind::Symlink { target } });
        } else if ft.is_file() {
            out.push(ScannedEntry { path, kind: ScannedKind::File });
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
    if out.is_empty() {
        return Err(ScanError::Empty(root.to_path_buf()));
    }
    Ok(out)
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
