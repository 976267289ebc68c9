//! The catalog side of scrubbing (schema/0012_scrub.sql): the rotating cursor, when each
//! blob last verified, and the quarantined blobs with the entries they damage.

use serde::Serialize;

use crate::catalog::CatalogError;
use crate::domain::{ArchiveName, Digest};

/// What was wrong with a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// Its bytes do not hash to its name.
    Corrupt,
    /// A snapshot references it and the store does not have it.
    Missing,
}

impl ProblemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemKind::Corrupt => "corrupt",
            ProblemKind::Missing => "missing",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "corrupt" => Some(ProblemKind::Corrupt),
            "missing" => Some(ProblemKind::Missing),
            _ => None,
        }
    }
}

/// A quarantined blob, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Quarantined {
    pub sha256: Digest,
    pub kind: ProblemKind,
    /// Unix seconds.
    pub found_at: i64,
    pub size: u64,
    pub detail: String,
    /// The outcome of the last attempt to fetch the bytes again from a mirror's upstream.
    pub refetch: Option<String>,
}

/// One entry row naming a quarantined blob: damaged are the snapshots `first_seq` up to,
/// not including, `last_seq` (none: up to the latest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    pub path: String,
    pub sha256: Digest,
    pub kind: ProblemKind,
    pub found_at: i64,
    pub first_seq: u64,
    pub last_seq: Option<u64>,
}

/// Where a quarantined blob came from: a path of an archive and the `source` of the
/// snapshot that first had it there (a mirror's names its upstream).
#[derive(Debug, Clone)]
pub struct DamageSource {
    pub archive: String,
    pub path: String,
    pub source: serde_json::Value,
}

/// The referenced digests a run looks at: those whose first 8 bytes (big-endian) are in
/// `from..to` (`to` none: to the end of the space), after `after`, and (with `not_since`)
/// not verified at or after that time.
#[derive(Debug, Clone, Copy)]
pub struct Selection<'a> {
    pub from: u64,
    pub to: Option<u64>,
    pub after: Option<&'a Digest>,
    pub not_since: Option<i64>,
}

pub trait ScrubCatalog: Send + Sync + 'static {
    /// Where the next slice starts (0 at first), and when a run moved it there (none:
    /// never).
    fn scrub_cursor(&self) -> Result<(u64, Option<i64>), CatalogError>;
    fn scrub_set_cursor(&self, position: u64, at: i64) -> Result<(), CatalogError>;
    /// Referenced digests of the selection, in order, at most `limit`.
    fn scrub_referenced(&self, sel: Selection<'_>, limit: u32) -> Result<Vec<Digest>, CatalogError>;
    /// Records that these blobs hashed to their names at `at` (one transaction).
    fn scrub_mark_verified(&self, digests: &[Digest], at: i64) -> Result<(), CatalogError>;
    /// In one write transaction: unless `digest` is no longer referenced (then `false`,
    /// nothing done), records it quarantined with the entry rows that name it, and calls
    /// `set_aside` (which moves its bytes away); an error from it records nothing.
    fn scrub_quarantine(
        &self,
        digest: &Digest,
        kind: ProblemKind,
        found_at: i64,
        set_aside: &mut dyn FnMut() -> std::io::Result<String>,
    ) -> Result<bool, crate::scrub::ScrubError>;
    /// Every quarantined blob, in digest order.
    fn scrub_quarantined(&self) -> Result<Vec<Quarantined>, CatalogError>;
    fn scrub_find(&self, digest: &Digest) -> Result<Option<Quarantined>, CatalogError>;
    /// Good bytes are back: forgets the quarantine and the damage.
    fn scrub_lift(&self, digest: &Digest) -> Result<(), CatalogError>;
    fn scrub_note_refetch(&self, digest: &Digest, note: &str) -> Result<(), CatalogError>;
    /// Whether any snapshot still names `digest`.
    fn scrub_is_referenced(&self, digest: &Digest) -> Result<bool, CatalogError>;
    fn scrub_sources(&self, digest: &Digest) -> Result<Vec<DamageSource>, CatalogError>;
    /// The damage in an archive (empty for nearly every archive: one index probe).
    fn scrub_damage(&self, archive: &ArchiveName) -> Result<Vec<Damage>, CatalogError>;
}
