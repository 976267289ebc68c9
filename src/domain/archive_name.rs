//! `ArchiveName`: one or more `[a-z0-9][a-z0-9._-]*` segments joined by `/` (`ubuntu/22.04/prod`).

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ArchiveName(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArchiveNameError {
    #[error("archive name is empty")]
    Empty,
    #[error("archive name is longer than {max} bytes", max = ArchiveName::MAX_LEN)]
    TooLong,
    #[error(
        "archive name segment '{0}' is invalid: each segment must match [a-z0-9][a-z0-9._-]* and segments are joined by '/'"
    )]
    BadSegment(String),
    #[error("archive name segment '{0}' looks like a snapshot ID, which would make URLs ambiguous")]
    IdShapedSegment(String),
    #[error("archive names cannot start with '{0}': the server uses that path itself")]
    Reserved(String),
}

impl ArchiveName {
    pub const MAX_LEN: usize = 200;
    /// First path segments the server's own routes take.
    pub const RESERVED: &'static [&'static str] = &["api", "healthz", "metrics"];

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_valid_segment(seg: &str) -> bool {
        let mut bytes = seg.bytes();
        matches!(bytes.next(), Some(b'a'..=b'z' | b'0'..=b'9'))
            && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-'))
    }
}

impl FromStr for ArchiveName {
    type Err = ArchiveNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim_matches('/');
        if s.is_empty() {
            return Err(ArchiveNameError::Empty);
        }
        if s.len() > Self::MAX_LEN {
            return Err(ArchiveNameError::TooLong);
        }
        let first = s.split('/').next().unwrap_or_default();
        if Self::RESERVED.contains(&first) {
            return Err(ArchiveNameError::Reserved(first.to_string()));
        }
        for seg in s.split('/') {
            if !Self::is_valid_segment(seg) {
                return Err(ArchiveNameError::BadSegment(seg.chars().take(64).collect()));
            }
            if crate::domain::SnapshotId::looks_like_id(&seg.to_ascii_uppercase()) {
                return Err(ArchiveNameError::IdShapedSegment(seg.to_string()));
            }
        }
        Ok(Self(s.to_string()))
    }
}

impl fmt::Display for ArchiveName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl serde::Serialize for ArchiveName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_nested_names() {
        for ok in ["debian", "ubuntu/22.04/prod", "repos/prod/ubuntu/22.04", "a", "0x_y-z.1"] {
            assert_eq!(ok.parse::<ArchiveName>().unwrap().as_str(), ok);
        }
        assert_eq!("/debian/".parse::<ArchiveName>().unwrap().as_str(), "debian");
    }

    #[test]
    fn rejects_bad_names() {
        for bad in
            ["", "Debian", "a//b", ".hidden", "-x", "a/../b", "a b", "ü", "a/20240101t000000z", "api/v1", "metrics"]
        {
            assert!(bad.parse::<ArchiveName>().is_err(), "{bad}");
        }
    }
}
