//! The JSON API for orchestrators under `/api/v1`. Archive names contain `/`, so actions
//! follow a `/-/` separator (no archive segment can be `-`):
//! `/api/v1/archives/<archive>/-/snapshots`, `.../-/snapshots/<ID>`, `.../-/resolve/<ID>`,
//! `.../-/latest`; `/api/v1/archives/<archive>` describes the archive.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::error::ApiError;
use super::files::{IMMUTABLE, resolve};
use crate::catalog::{Snapshot, SnapshotQuery};
use crate::domain::{ArchiveName, Digest, SnapshotId};

pub fn routes() -> Router<AppState> {
    Router::new().route("/archives", get(list_archives)).route("/archives/{*rest}", get(archive_action))
}

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

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Only snapshots at or after this ID.
    pub since: Option<String>,
    /// Only snapshots at or before this ID.
    pub until: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// `desc` (newest first, default) or `asc`.
    pub order: Option<String>,
}

fn parse_id(name: &str, v: &Option<String>) -> Result<Option<SnapshotId>, ApiError> {
    v.as_deref().map(|s| s.parse().map_err(|e| ApiError::BadRequest(format!("parameter '{name}': {e}")))).transpose()
}

pub async fn archive_snapshots_page(
    st: &AppState,
    archive: ArchiveName,
    p: ListParams,
) -> Result<SnapshotListJson, ApiError> {
    let limit = p.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::BadRequest("parameter 'limit' must be between 1 and 1000".into()));
    }
    let descending = match p.order.as_deref() {
        None | Some("desc") => true,
        Some("asc") => false,
        Some(o) => {
            return Err(ApiError::BadRequest(format!("parameter 'order' must be 'asc' or 'desc', not '{o}'")));
        }
    };
    let q = SnapshotQuery {
        since: parse_id("since", &p.since)?,
        until: parse_id("until", &p.until)?,
        after: parse_id("cursor", &p.cursor)?,
        descending,
        limit: limit + 1,
    };
    let name = archive.clone();
    let mut snaps = st
        .blocking(move |s| {
            if s.catalog.archive(&name)?.is_none() {
                return Err(ApiError::NotFound(format!("no archive named '{name}'")));
            }
            Ok(s.catalog.snapshots(&name, &q)?)
        })
        .await?;
    let more = snaps.len() > limit as usize;
    snaps.truncate(limit as usize);
    Ok(SnapshotListJson {
        archive: archive.to_string(),
        next_cursor: if more { snaps.last().map(|s| s.id) } else { None },
        snapshots: snaps.iter().map(SnapshotJson::from).collect(),
    })
}

async fn list_archives(State(st): State<AppState>) -> Result<Response, ApiError> {
    let list = st.blocking(|s| Ok(s.catalog.archives()?)).await?;
    Ok(short(&st, Json(serde_json::json!({ "archives": list })).into_response()))
}

fn short(st: &AppState, mut r: Response) -> Response {
    r.headers_mut().insert(header::CACHE_CONTROL, st.short_cache());
    r
}

fn parse_archive(s: &str) -> Result<ArchiveName, ApiError> {
    s.parse().map_err(|e| ApiError::NotFound(format!("no such archive: {e}")))
}

async fn archive_action(
    State(st): State<AppState>,
    Path(rest): Path<String>,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    // axum has already percent-decoded `rest`; `/-/` cannot occur inside an archive name.
    let (archive, action) = match rest.split_once("/-/") {
        Some((a, act)) => (parse_archive(a)?, act.trim_end_matches('/')),
        None => (parse_archive(&rest)?, ""),
    };
    let parts: Vec<&str> = action.split('/').collect();
    match parts.as_slice() {
        [""] => {
            let name = archive.clone();
            let summary = st
                .blocking(move |s| {
                    s.catalog.archive(&name)?.ok_or_else(|| ApiError::NotFound(format!("no archive named '{name}'")))
                })
                .await?;
            Ok(short(&st, Json(summary).into_response()))
        }
        ["snapshots"] => {
            let Query(p) = params.map_err(|e| ApiError::BadRequest(e.body_text()))?;
            Ok(short(&st, Json(archive_snapshots_page(&st, archive, p).await?).into_response()))
        }
        ["snapshots", id] => {
            let id = parse_path_id(id)?;
            let name = archive.clone();
            let snap = st
                .blocking(move |s| {
                    let found = s.catalog.resolve(&name, id)?.filter(|s| s.id == id);
                    let snap =
                        found.ok_or_else(|| ApiError::NotFound(format!("archive '{name}' has no snapshot {id}")))?;
                    let (previous, next) = s.catalog.neighbours(snap.key)?;
                    Ok(SnapshotJson { previous, next, ..SnapshotJson::from(&snap) })
                })
                .await?;
            // An exact snapshot never changes, but its `next` link can appear later.
            Ok(short(&st, Json(snap).into_response()))
        }
        ["resolve", id] => {
            let id = parse_path_id(id)?;
            let res = resolve(&st, archive, id).await?;
            let is_final = res.is_final;
            let body = ResolveJson {
                requested: res.requested,
                exact: res.requested == res.snapshot.id,
                is_final,
                snapshot: SnapshotJson::from(&res.snapshot),
            };
            let mut r = Json(body).into_response();
            if is_final {
                r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE));
                Ok(r)
            } else {
                Ok(short(&st, r))
            }
        }
        ["latest"] => {
            let name = archive.clone();
            let snap = st
                .blocking(move |s| {
                    let latest = s.catalog.latest(&name)?.ok_or_else(|| {
                        ApiError::NotFound(format!("archive '{name}' does not exist or has no snapshots"))
                    })?;
                    let (previous, _) = s.catalog.neighbours(latest.key)?;
                    Ok(SnapshotJson { previous, ..SnapshotJson::from(&latest) })
                })
                .await?;
            Ok(short(&st, Json(snap).into_response()))
        }
        _ => Err(ApiError::NotFound(format!(
            "unknown API action '{action}': expected snapshots, snapshots/<ID>, resolve/<ID> or latest"
        ))),
    }
}

fn parse_path_id(s: &str) -> Result<SnapshotId, ApiError> {
    s.parse().map_err(|e: crate::domain::SnapshotIdError| ApiError::NotFound(e.to_string()))
}
