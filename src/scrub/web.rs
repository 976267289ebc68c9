//! What the HTTP side shows of scrubbing: the `damaged` flag of snapshots, the warning on
//! pages, and the 503 for a file whose blob is quarantined.

use maud::{Markup, html};

use super::catalog::Damage;
use crate::catalog::Snapshot;
use crate::domain::Digest;
use crate::http::ApiError;
use crate::store::Store;
use crate::wire::{DamagedJson, SnapshotJson};

/// The damaged files of the snapshot at `seq`, from its archive's damage.
pub fn damaged(damage: &[Damage], seq: u64) -> Vec<DamagedJson> {
    damage
        .iter()
        .filter(|d| d.first_seq <= seq && d.last_seq.is_none_or(|l| l > seq))
        .map(|d| DamagedJson {
            path: d.path.clone(),
            sha256: d.sha256.hex(),
            problem: d.kind.as_str().into(),
            found_at: chrono::DateTime::from_timestamp(d.found_at, 0).unwrap_or_default(),
        })
        .collect()
}

/// A snapshot as listed, flagged with its damaged files.
pub fn flagged(snap: &Snapshot, damage: &[Damage]) -> SnapshotJson {
    SnapshotJson { damaged: damaged(damage, snap.key.seq), ..SnapshotJson::from(snap) }
}

/// For a file whose blob the store lacks: the 503 to answer when the blob is quarantined
/// (`None` otherwise). Blocking.
pub fn unavailable(store: &Store, digest: &Digest) -> Result<Option<ApiError>, ApiError> {
    let Some(q) = store.scrub.scrub_find(digest)? else { return Ok(None) };
    let when = chrono::DateTime::from_timestamp(q.found_at, 0).unwrap_or_default();
    Ok(Some(ApiError::Unavailable {
        message: format!(
            "this file cannot be served: its stored bytes (sha256 {}) were found {} on {} and are quarantined until good bytes are restored",
            digest.hex(),
            q.kind.as_str(),
            when.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ),
        retry_after_secs: super::RETRY_AFTER_SECS,
    }))
}

/// HEAD of a file: the answer GET would give when its blob is absent (503 when it is
/// quarantined, else the same 500 as GET's). Blocking.
pub fn head_check(store: &Store, digest: &Digest) -> Result<(), ApiError> {
    if store.blobs.blocking().size(digest)?.is_some() {
        return Ok(());
    }
    Err(absent(store, digest)?)
}

/// Why a file's blob is absent, as the error to answer: 503 when quarantined; otherwise the
/// manifest names a blob the store lacks, which is the server's fault (500). Blocking.
pub fn absent(store: &Store, digest: &Digest) -> Result<ApiError, ApiError> {
    Ok(unavailable(store, digest)?
        .unwrap_or_else(|| ApiError::internal(anyhow::anyhow!("blob {digest} is missing from the store"))))
}

/// The warning at the top of a damaged snapshot's page.
pub fn warning(damaged: &[DamagedJson]) -> Markup {
    html! {
        @if !damaged.is_empty() {
            div.error.damaged {
                p { strong { "Damaged snapshot: " } (damaged.len()) " file(s) of this snapshot cannot be served (their stored bytes failed verification and are quarantined):" }
                ul {
                    @for d in damaged {
                        li { code { (d.path) } " (" (d.problem) ", found " (d.found_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)) ")" }
                    }
                }
            }
        }
    }
}

/// The mark beside a damaged snapshot in an archive's list.
pub fn mark(snapshot: &SnapshotJson) -> Markup {
    html! {
        @if !snapshot.damaged.is_empty() {
            " " span.error.damaged title="files of this snapshot are quarantined" { "damaged (" (snapshot.damaged.len()) ")" }
        }
    }
}
