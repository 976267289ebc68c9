//! Takedowns: a file hidden from every snapshot that holds it, by path in one archive or
//! by content in every archive, answered 410 or 451 with a reason; reversible unless its
//! bytes were purged; every step kept in an audit log. Manifests and snapshot digests are
//! never touched: a takedown filters what is served (`screen`, `marks`).

mod ops;
mod serve;

pub use ops::{TakedownError, TakedownRequest, purged_digests, take_down, undo};
pub use serve::{marks, screen};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::catalog::CatalogError;
use crate::domain::{ArchiveName, Digest, RelPath};

/// What a takedown hides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `path` in every snapshot of `archive`.
    Path { archive: ArchiveName, path: RelPath },
    /// Every file with these bytes, in every snapshot of every archive.
    Sha256(Digest),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Path { archive, path } => write!(f, "{archive}/{path}"),
            Target::Sha256(d) => write!(f, "sha256:{d}"),
        }
    }
}

/// The two answers a takedown may give: 410 Gone, or 451 Unavailable For Legal Reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(into = "u16")]
pub enum Status {
    Gone,
    Legal,
}

impl Status {
    pub fn code(self) -> u16 {
        match self {
            Status::Gone => 410,
            Status::Legal => 451,
        }
    }

    pub fn from_code(code: u16) -> Option<Self> {
        match code {
            410 => Some(Status::Gone),
            451 => Some(Status::Legal),
            _ => None,
        }
    }
}

impl From<Status> for u16 {
    fn from(s: Status) -> u16 {
        s.code()
    }
}

/// Where a takedown stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// In force; the bytes are still stored.
    Active,
    /// In force, and the bytes are deleted: it can no longer be undone.
    Purged,
    /// Undone: the file is served again.
    Undone,
}

impl State {
    /// From the catalog's two flags: a purge is never undone, whatever `active` says.
    pub fn from_flags(active: bool, purged: bool) -> Self {
        match (active, purged) {
            (_, true) => State::Purged,
            (true, false) => State::Active,
            (false, false) => State::Undone,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Takedown,
    Undo,
    Purge,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Takedown => "takedown",
            Action::Undo => "undo",
            Action::Purge => "purge",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Action::Takedown, Action::Undo, Action::Purge].into_iter().find(|a| a.as_str() == s)
    }
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    pub action: Action,
    pub actor: String,
    pub at: DateTime<Utc>,
}

/// A takedown as recorded, with its audit log (oldest first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Takedown {
    pub id: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archive: Option<ArchiveName>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<RelPath>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<Digest>,
    pub status: Status,
    pub reason: String,
    pub state: State,
    pub log: Vec<Event>,
}

/// What a request for a taken-down file meets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hit {
    pub id: i64,
    pub status: Status,
    pub reason: String,
}

/// What `TakedownStore::add` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Added {
    Added(Takedown),
    /// The path takedown names an archive that does not exist.
    NoArchive,
    /// An active takedown of the same target exists already.
    Exists(i64),
    /// A path takedown's purge would delete `digest`, still served at `paths`
    /// (`archive/path`, a few of them): nothing was recorded.
    StillServed {
        digest: Digest,
        paths: Vec<String>,
    },
}

/// What `TakedownStore::undo` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Undone {
    Undone(Takedown),
    NoSuch,
    AlreadyUndone,
    /// Its bytes were deleted: nothing is left to serve.
    Purged,
}

/// Where takedowns are kept (schema/0011_takedowns.sql). Methods block.
pub trait TakedownStore: Send + Sync + 'static {
    /// Records an active takedown and its log line, and when `purge` is not empty, marks
    /// those digests purged (log line too), all in one transaction. For a path takedown,
    /// the purge is refused (`StillServed`) if any of the digests is the content of a file
    /// at a path no takedown in force hides, in any snapshot of any archive, checked in
    /// the same transaction (no commit can land in between). That check reads every entry
    /// of the archives that hold the bytes.
    fn add(
        &self,
        target: &Target,
        status: Status,
        reason: &str,
        purge: &[Digest],
        actor: &str,
        now: i64,
    ) -> Result<Added, CatalogError>;
    /// Ends a takedown that was not purged.
    fn undo(&self, id: i64, actor: &str, now: i64) -> Result<Undone, CatalogError>;
    /// Every takedown ever made, in force or not, oldest first.
    fn list(&self) -> Result<Vec<Takedown>, CatalogError>;
    /// Whether any takedown is in force (listings skip their probes when none is).
    fn any_active(&self) -> Result<bool, CatalogError>;
    /// The takedown in force hiding a file of archive `archive_id` (a catalog key) that
    /// is reached by one of `paths` (one or two) or has content `sha256`; path takedowns first.
    fn hit(&self, archive_id: i64, paths: &[&str], sha256: &Digest) -> Result<Option<Hit>, CatalogError>;
    /// Every distinct file content `path` ever had in `archive`; `None`: no such archive.
    fn contents(&self, archive: &ArchiveName, path: &RelPath) -> Result<Option<Vec<Digest>>, CatalogError>;
    /// Every digest a purge deleted, with the takedown that did it.
    fn purged(&self) -> Result<Vec<(Digest, i64)>, CatalogError>;
}
