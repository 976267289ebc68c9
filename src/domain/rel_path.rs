//! `RelPath`: a safe relative path inside an archive tree: `/`-separated UTF-8 segments,
//! none empty, `.` or `..`, no NUL or control characters. Every path from a URL, a tree
//! walk or a manifest becomes one before it touches storage.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RelPath(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RelPathError {
    #[error("path is empty")]
    Empty,
    #[error("path is absolute: '{0}'")]
    Absolute(String),
    #[error("path '{0}' has an empty segment")]
    EmptySegment(String),
    #[error("path '{0}' has a '.' or '..' segment")]
    DotSegment(String),
    #[error("path contains a NUL or control character")]
    ControlCharacter,
    #[error("path is longer than {max} bytes", max = RelPath::MAX_LEN)]
    TooLong,
    #[error("path segment is longer than {max} bytes", max = RelPath::MAX_SEGMENT_LEN)]
    SegmentTooLong,
    #[error("path is not valid UTF-8: {0}")]
    NotUtf8(String),
}

impl RelPath {
    pub const MAX_LEN: usize = 4096;
    pub const MAX_SEGMENT_LEN: usize = 255;

    pub fn new(s: &str) -> Result<Self, RelPathError> {
        if s.is_empty() {
            return Err(RelPathError::Empty);
        }
        if s.len() > Self::MAX_LEN {
            return Err(RelPathError::TooLong);
        }
        if s.starts_with('/') {
            return Err(RelPathError::Absolute(s.to_string()));
        }
        if s.chars().any(char::is_control) {
            return Err(RelPathError::ControlCharacter);
        }
        for seg in s.split('/') {
            match seg {
                "" => return Err(RelPathError::EmptySegment(s.to_string())),
                "." | ".." => return Err(RelPathError::DotSegment(s.to_string())),
                _ if seg.len() > Self::MAX_SEGMENT_LEN => return Err(RelPathError::SegmentTooLong),
                _ => {}
            }
        }
        Ok(Self(s.to_string()))
    }

    /// Builds a path from already-decoded segments (e.g. URL segments), refusing any
    /// segment that would smuggle a separator in.
    pub fn from_segments<'a>(segs: impl IntoIterator<Item = &'a str>) -> Result<Self, RelPathError> {
        let segs: Vec<&str> = segs.into_iter().collect();
        if segs.iter().any(|s| s.contains('/')) {
            return Err(RelPathError::EmptySegment(segs.join("/")));
        }
        Self::new(&segs.join("/"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The directory holding this path; `""` is the tree's root.
    pub fn parent(&self) -> &str {
        self.0.rsplit_once('/').map_or("", |(dir, _)| dir)
    }

    pub fn file_name(&self) -> &str {
        self.0.rsplit_once('/').map_or(&self.0, |(_, name)| name)
    }

    /// Every proper ancestor directory, outermost first (`a`, `a/b` for `a/b/c`).
    pub fn ancestors(&self) -> impl Iterator<Item = &str> {
        self.0.match_indices('/').map(|(i, _)| &self.0[..i])
    }

    /// Resolves a symlink target written relative to this path's directory, lexically.
    /// `None` when the target is absolute or climbs out of the tree.
    pub fn resolve_link(&self, target: &str) -> Option<LinkTarget> {
        if target.starts_with('/') {
            return None;
        }
        let mut parts: Vec<&str> = self.parent().split('/').filter(|s| !s.is_empty()).collect();
        for seg in target.split('/') {
            match seg {
                "" | "." => {}
                ".." => {
                    parts.pop()?;
                }
                s => parts.push(s),
            }
        }
        if parts.is_empty() {
            // `ubuntu -> .` in Ubuntu's archive: a link to the tree's root.
            return Some(LinkTarget::Root);
        }
        RelPath::new(&parts.join("/")).ok().map(LinkTarget::Path)
    }
}

/// Where an in-tree symlink leads: the root of the tree, or a path in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkTarget {
    Root,
    Path(RelPath),
}

impl LinkTarget {
    /// `rest` below the target, e.g. `bookworm` + `Release` → `bookworm/Release`.
    pub fn join(&self, rest: &str) -> Option<RelPath> {
        match self {
            LinkTarget::Root => RelPath::new(rest).ok(),
            LinkTarget::Path(p) => RelPath::new(&format!("{p}/{rest}")).ok(),
        }
    }
}

impl fmt::Display for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl serde::Serialize for RelPath {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_archive_paths() {
        let p = RelPath::new("pool/main/t/tzdata/tzdata_2025b-0+deb12u1_all.deb").unwrap();
        assert_eq!(p.parent(), "pool/main/t/tzdata");
        assert_eq!(p.file_name(), "tzdata_2025b-0+deb12u1_all.deb");
        assert_eq!(p.ancestors().collect::<Vec<_>>(), ["pool", "pool/main", "pool/main/t", "pool/main/t/tzdata"]);
        assert_eq!(RelPath::new("InRelease").unwrap().parent(), "");
    }

    #[test]
    fn rejects_escapes() {
        for bad in ["", "/etc/passwd", "a//b", "a/./b", "../x", "a/..", "a\0b", "a\nb", "a/"] {
            assert!(RelPath::new(bad).is_err(), "{bad:?}");
        }
        assert!(RelPath::new(&"a".repeat(256)).is_err());
        assert!(RelPath::from_segments(["a", "b/c"]).is_err());
    }

    #[test]
    fn resolves_links_inside_the_tree_only() {
        let link = RelPath::new("dists/stable").unwrap();
        let path = |t: Option<LinkTarget>| match t {
            Some(LinkTarget::Path(p)) => p.to_string(),
            other => panic!("{other:?}"),
        };
        assert_eq!(path(link.resolve_link("bookworm")), "dists/bookworm");
        let deep = RelPath::new("a/b/c").unwrap();
        assert_eq!(path(deep.resolve_link("../../x/./y")), "x/y");
        assert_eq!(RelPath::new("ubuntu").unwrap().resolve_link("."), Some(LinkTarget::Root));
        assert_eq!(deep.resolve_link("../.."), Some(LinkTarget::Root));
        assert!(deep.resolve_link("../../../x").is_none());
        assert!(deep.resolve_link("/etc").is_none());
    }
}
