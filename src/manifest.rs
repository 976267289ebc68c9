//! What a snapshot contains: entries (file, symlink, directory) and the content digest
//! that names a tree independently of the history that produced it.

use serde::Serialize;

use crate::domain::digest::Hasher;
use crate::domain::{Digest, RelPath};

/// The content at one path. Directories are derived from the files below them: they are
/// stored so that listings are cheap, but never part of the content digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Content {
    File { size: u64, sha256: Digest },
    Symlink { target: String },
    Dir,
}

impl Content {
    pub fn kind_code(&self) -> i64 {
        match self {
            Content::File { .. } => 0,
            Content::Symlink { .. } => 1,
            Content::Dir => 2,
        }
    }

    pub fn kind_name(&self) -> &'static str {
        match self {
            Content::File { .. } => "file",
            Content::Symlink { .. } => "symlink",
            Content::Dir => "dir",
        }
    }

    pub fn size(&self) -> u64 {
        match self {
            Content::File { size, .. } => *size,
            _ => 0,
        }
    }

    pub fn digest(&self) -> Option<&Digest> {
        match self {
            Content::File { sha256, .. } => Some(sha256),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ManifestEntry {
    pub path: RelPath,
    #[serde(flatten)]
    pub content: Content,
}

/// Digest over the full manifest of files and symlinks, sorted by path bytes. The same
/// tree always gives the same digest; `verify` recomputes it from the stored history.
pub fn content_digest<'a>(entries: impl IntoIterator<Item = &'a ManifestEntry>) -> Digest {
    let mut sorted: Vec<&ManifestEntry> = entries.into_iter().filter(|e| e.content != Content::Dir).collect();
    sorted.sort_by(|a, b| a.path.as_str().as_bytes().cmp(b.path.as_str().as_bytes()));
    let mut d = DigestBuilder::new();
    for e in sorted {
        d.push(&e.path, &e.content);
    }
    d.finish()
}

/// `content_digest` fed one entry at a time, in path byte order (streamed plans).
pub struct DigestBuilder(Hasher);

impl DigestBuilder {
    pub fn new() -> Self {
        let mut h = Hasher::new();
        h.update(b"asof-manifest-v1\n");
        Self(h)
    }

    /// Adds the next entry; directories are not part of the digest and are skipped.
    pub fn push(&mut self, path: &RelPath, content: &Content) {
        match content {
            Content::File { size, sha256 } => {
                self.0.update(format!("F\0{path}\0{size}\0{}\n", sha256.hex()).as_bytes())
            }
            Content::Symlink { target } => self.0.update(format!("L\0{path}\0{target}\n").as_bytes()),
            Content::Dir => {}
        }
    }

    pub fn finish(self) -> Digest {
        self.0.finish()
    }
}

impl Default for DigestBuilder {
    fn default() -> Self {
        Self::new()
    }
}

/// The directories implied by a set of paths (every proper ancestor of every entry).
pub fn implied_dirs<'a>(paths: impl IntoIterator<Item = &'a RelPath>) -> std::collections::BTreeSet<String> {
    let mut dirs = std::collections::BTreeSet::new();
    for p in paths {
        for a in p.ancestors() {
            dirs.insert(a.to_string());
        }
    }
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(p: &str, data: &[u8]) -> ManifestEntry {
        ManifestEntry {
            path: RelPath::new(p).unwrap(),
            content: Content::File { size: data.len() as u64, sha256: Digest::of(data) },
        }
    }

    #[test]
    fn digest_ignores_order_and_dirs() {
        let a = vec![file("b", b"1"), file("a/x", b"2")];
        let mut b = vec![file("a/x", b"2"), file("b", b"1")];
        assert_eq!(content_digest(&a), content_digest(&b));
        b.push(ManifestEntry { path: RelPath::new("a").unwrap(), content: Content::Dir });
        assert_eq!(content_digest(&a), content_digest(&b));
        b[0] = file("a/x", b"3");
        assert_ne!(content_digest(&a), content_digest(&b));
    }
}
