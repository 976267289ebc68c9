//! Scopes: `admin`, `publish:<pattern>`, `read:<pattern>`; a pattern is an archive name,
//! a prefix ending in `/*` (`ubuntu/*` covers `ubuntu/22.04`, not `ubuntu`), or `*`.
//! `rollout:<channel>` (or `rollout:*`) may change a rollout channel (src/rollout);
//! `report:<channel>` (or `report:*`) may only report node outcomes to it (for nodes).

use std::fmt;
use std::str::FromStr;

use crate::domain::{ArchiveName, ChannelName};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    All,
    Exact(ArchiveName),
    /// Archive names under this prefix; stored with its trailing `/`.
    Under(String),
}

impl Pattern {
    pub fn matches(&self, archive: &ArchiveName) -> bool {
        match self {
            Pattern::All => true,
            Pattern::Exact(a) => a == archive,
            Pattern::Under(prefix) => archive.as_str().starts_with(prefix.as_str()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Admin,
    Publish(Pattern),
    Read(Pattern),
    /// Change one channel (`Some`) or every channel (`None`, written `rollout:*`).
    Rollout(Option<ChannelName>),
    /// Report node outcomes to one channel (`Some`) or every channel (`None`).
    Report(Option<ChannelName>),
}

#[derive(Debug, thiserror::Error)]
#[error(
    "invalid scope {0:?}: expected admin, publish:<archive|prefix/*|*>, read:<archive|prefix/*|*>, rollout:<channel|*> or report:<channel|*>"
)]
pub struct ScopeError(String);

impl FromStr for Pattern {
    type Err = ScopeError;

    fn from_str(s: &str) -> Result<Self, ScopeError> {
        if s == "*" {
            return Ok(Pattern::All);
        }
        // Archive names forgive stray slashes; a scope must say exactly what it means.
        if s.starts_with('/') || s.ends_with('/') {
            return Err(ScopeError(s.to_string()));
        }
        if let Some(prefix) = s.strip_suffix("/*") {
            let name: ArchiveName = prefix.parse().map_err(|_| ScopeError(s.to_string()))?;
            return Ok(Pattern::Under(format!("{name}/")));
        }
        s.parse().map(Pattern::Exact).map_err(|_| ScopeError(s.to_string()))
    }
}

impl FromStr for Scope {
    type Err = ScopeError;

    fn from_str(s: &str) -> Result<Self, ScopeError> {
        match s.split_once(':') {
            None if s == "admin" => Ok(Scope::Admin),
            Some(("publish", p)) => p.parse().map(Scope::Publish).map_err(|_| ScopeError(s.to_string())),
            Some(("read", p)) => p.parse().map(Scope::Read).map_err(|_| ScopeError(s.to_string())),
            Some(("rollout", "*")) => Ok(Scope::Rollout(None)),
            Some(("rollout", c)) => c.parse().map(|c| Scope::Rollout(Some(c))).map_err(|_| ScopeError(s.to_string())),
            Some(("report", "*")) => Ok(Scope::Report(None)),
            Some(("report", c)) => c.parse().map(|c| Scope::Report(Some(c))).map_err(|_| ScopeError(s.to_string())),
            _ => Err(ScopeError(s.to_string())),
        }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pattern::All => f.write_str("*"),
            Pattern::Exact(a) => write!(f, "{a}"),
            Pattern::Under(prefix) => write!(f, "{prefix}*"),
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Admin => f.write_str("admin"),
            Scope::Publish(p) => write!(f, "publish:{p}"),
            Scope::Read(p) => write!(f, "read:{p}"),
            Scope::Rollout(None) => f.write_str("rollout:*"),
            Scope::Rollout(Some(c)) => write!(f, "rollout:{c}"),
            Scope::Report(None) => f.write_str("report:*"),
            Scope::Report(Some(c)) => write!(f, "report:{c}"),
        }
    }
}

impl serde::Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for s in [
            "admin",
            "publish:debian",
            "publish:ubuntu/*",
            "read:*",
            "read:a/b",
            "rollout:prod",
            "rollout:*",
            "report:prod",
            "report:*",
        ] {
            assert_eq!(s.parse::<Scope>().unwrap().to_string(), s);
        }
        for bad in [
            "",
            "root",
            "publish:",
            "publish:Debian",
            "read:ubuntu/",
            "write:x",
            "publish:a/*/b",
            "rollout:",
            "rollout:a/b",
            "rollout:Prod",
        ] {
            assert!(bad.parse::<Scope>().is_err(), "{bad}");
        }
    }
}
