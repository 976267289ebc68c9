//! Request and response bodies of the HTTP API, defined once and used by both the server
//! and the `asof push` client so that the two cannot drift apart.

use serde::{Deserialize, Serialize};

use crate::catalog::Snapshot;
use crate::domain::{Digest, SnapshotId};

/// One snapshot as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnapshotJson {
    pub archive: String,
    pub id: SnapshotId,
    pub committed_at: chrono::DateTime<chrono::Utc>,
    #[serde(serialize_with = "ser_digest", deserialize_with = "de_digest")]
    pub digest: Digest,
    pub files: u64,
    pub bytes: u64,
    pub added: u64,
    pub changed: u64,
    pub removed: u64,
    pub source: serde_json::Value,
    /// Where the tree of this snapshot is served.
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub previous: Option<SnapshotId>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub next: Option<SnapshotId>,
    /// The suites' Release files, with their Valid-Until (only in the answers about one
    /// snapshot: `snapshots/<ID>` and `latest`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub releases: Option<Vec<ReleaseJson>>,
    /// Files of this snapshot whose blobs a scrub found corrupt or missing and quarantined
    /// (absent when there are none).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub damaged: Vec<DamagedJson>,
}

/// A file of a snapshot that cannot be served: its blob is quarantined (`scrub`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DamagedJson {
    pub path: String,
    /// The blob's SHA-256, in hex.
    pub sha256: String,
    /// "corrupt" (the bytes do not hash to it) or "missing".
    pub problem: String,
    pub found_at: chrono::DateTime<chrono::Utc>,
}

/// One suite's Release file in a snapshot, and whether apt would still accept it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReleaseJson {
    /// `dists/<suite>/InRelease` (or `Release` where there is no InRelease).
    pub path: String,
    /// Its `Valid-Until`, if it has one (apt refuses it after that unless told not to).
    pub valid_until: Option<chrono::DateTime<chrono::Utc>>,
    /// `valid_until` has passed (as of the answer): apt 2.6 refuses the Release.
    pub expired: bool,
}

impl ReleaseJson {
    pub fn new(r: &crate::resolve::release::SuiteRelease, now: chrono::DateTime<chrono::Utc>) -> Self {
        Self { path: r.path.to_string(), valid_until: r.valid_until, expired: r.valid_until.is_some_and(|v| v < now) }
    }
}

fn ser_digest<S: serde::Serializer>(d: &Digest, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("sha256:{d}"))
}

fn de_digest<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
    let s = String::deserialize(d)?;
    s.trim_start_matches("sha256:").parse().map_err(serde::de::Error::custom)
}

impl From<&Snapshot> for SnapshotJson {
    fn from(s: &Snapshot) -> Self {
        Self {
            archive: s.archive.to_string(),
            id: s.id,
            committed_at: chrono::DateTime::from_timestamp_millis(s.committed_at_ms).unwrap_or_default(),
            digest: s.digest,
            files: s.files,
            bytes: s.bytes,
            added: s.added,
            changed: s.changed,
            removed: s.removed,
            source: s.source.clone(),
            url: format!("/{}/{}/", s.archive, s.id),
            previous: None,
            next: None,
            releases: None,
            damaged: Vec::new(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct SnapshotListJson {
    pub archive: String,
    pub snapshots: Vec<SnapshotJson>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<SnapshotId>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ResolveJson {
    pub requested: SnapshotId,
    /// True when `requested` is exactly a snapshot's ID.
    pub exact: bool,
    /// True when this answer can never change (see docs/api.md).
    #[serde(rename = "final")]
    pub is_final: bool,
    pub snapshot: SnapshotJson,
}

/// One manifest entry as sent by a publisher.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum WireEntry {
    File { path: String, size: u64, sha256: String },
    Symlink { path: String, target: String },
}

impl WireEntry {
    pub fn path(&self) -> &str {
        match self {
            WireEntry::File { path, .. } | WireEntry::Symlink { path, .. } => path,
        }
    }
}

/// `POST /api/v1/archives/<archive>/-/snapshots`: a full manifest, or changes to a base.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitRequest {
    /// With `changes`: the ID of the snapshot they apply to, which must be the latest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<SnapshotId>,
    /// Every file and symlink of the new snapshot (without `base`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<Vec<WireEntry>>,
    /// Entries added or replaced (with `base`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub upsert: Vec<WireEntry>,
    /// Paths removed (with `base`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
    /// Free-form description of where the publish came from, stored with the snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<serde_json::Value>,
}

/// `POST /api/v1/blobs/missing`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MissingRequest {
    pub digests: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MissingResponse {
    pub missing: Vec<String>,
}

/// `PUT /api/v1/blobs/<sha256>`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadResponse {
    pub sha256: String,
    pub size: u64,
    /// False when the blob was already stored and nothing was written.
    pub created: bool,
}

/// The body of every error answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorJson {
    pub error: String,
    pub status: u16,
    /// With 409 on commit: blobs the manifest needs that the server lacks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
}
