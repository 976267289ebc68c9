//! `ChannelName` (a rollout channel: `[a-z0-9][a-z0-9._-]*`, one segment) and `NodeName`
//! (a fleet node as it names itself: a host name, `[A-Za-z0-9][A-Za-z0-9._-]*`).

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChannelName(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChannelNameError {
    #[error("channel name is empty")]
    Empty,
    #[error("channel name is longer than {max} bytes", max = ChannelName::MAX_LEN)]
    TooLong,
    #[error("channel name '{0}' is invalid: it must match [a-z0-9][a-z0-9._-]* (one segment, no '/')")]
    Invalid(String),
}

impl ChannelName {
    pub const MAX_LEN: usize = 64;

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ChannelName {
    type Err = ChannelNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(ChannelNameError::Empty);
        }
        if s.len() > Self::MAX_LEN {
            return Err(ChannelNameError::TooLong);
        }
        // The same alphabet as an archive segment, so a channel prints safely in URLs,
        // scopes (`rollout:<channel>`) and the `@<channel>` apt path.
        if !crate::domain::ArchiveName::is_valid_segment(s) {
            return Err(ChannelNameError::Invalid(s.chars().take(64).collect()));
        }
        Ok(Self(s.to_string()))
    }
}

impl fmt::Display for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl serde::Serialize for ChannelName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeName(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NodeNameError {
    #[error("node name is empty")]
    Empty,
    #[error("node name is longer than {max} bytes", max = NodeName::MAX_LEN)]
    TooLong,
    #[error("node name '{0}' is invalid: it must match [A-Za-z0-9][A-Za-z0-9._-]* (a host name)")]
    Invalid(String),
}

impl NodeName {
    /// A fully qualified DNS name is at most 253 bytes.
    pub const MAX_LEN: usize = 253;

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for NodeName {
    type Err = NodeNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(NodeNameError::Empty);
        }
        if s.len() > Self::MAX_LEN {
            return Err(NodeNameError::TooLong);
        }
        let mut bytes = s.bytes();
        let ok = bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
            && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !ok {
            return Err(NodeNameError::Invalid(s.chars().take(64).collect()));
        }
        Ok(Self(s.to_string()))
    }
}

impl fmt::Display for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl serde::Serialize for NodeName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names() {
        for ok in ["prod", "web-fleet", "a", "db_2.x"] {
            assert_eq!(ok.parse::<ChannelName>().unwrap().as_str(), ok);
        }
        assert_eq!("".parse::<ChannelName>(), Err(ChannelNameError::Empty));
        assert_eq!("x".repeat(65).parse::<ChannelName>(), Err(ChannelNameError::TooLong));
        for bad in ["Prod", "a/b", "-x", ".x", "@x", "a b", "ü"] {
            assert_eq!(bad.parse::<ChannelName>(), Err(ChannelNameError::Invalid(bad.into())), "{bad}");
        }
    }

    #[test]
    fn node_names() {
        for ok in ["web-001", "Node.example.com", "10.0.0.1", "x_y"] {
            assert_eq!(ok.parse::<NodeName>().unwrap().as_str(), ok);
        }
        assert_eq!("".parse::<NodeName>(), Err(NodeNameError::Empty));
        assert_eq!("n".repeat(254).parse::<NodeName>(), Err(NodeNameError::TooLong));
        for bad in ["-web", "a/b", "a b", "a:b", "ü"] {
            assert_eq!(bad.parse::<NodeName>(), Err(NodeNameError::Invalid(bad.into())), "{bad}");
        }
    }
}
