//! The JSON API for orchestrators under `/api/v1`. Archive names contain `/`, so actions
//! follow a `/-/` separator (no archive segment can be `-`):
//! `/api/v1/archives/<archive>/-/snapshots`, `.../-/snapshots/<ID>`, `.../-/resolve/<ID>`,
//! `.../-/latest`; `/api/v1/archives/<archive>` describes the archive.

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;

use super::AppState;
use super::error::ApiError;
use super::files::{IMMUTABLE, resolve};
use crate::catalog::SnapshotQuery;
use crate::domain::{ArchiveName, SnapshotId};
use crate::manifest::Content;
use crate::packages::parse::Kind;
use crate::wire::WireEntry;
pub use crate::wire::{ResolveJson, SnapshotJson, SnapshotListJson};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/archives", get(list_archives))
        .route("/archives/{*rest}", get(archive_action).post(archive_post).put(archive_put))
        .route("/blobs/missing", post(super::write::missing))
        .route("/blobs/{digest}", put(super::write::upload))
        .merge(super::channels::routes())
        .merge(super::takedowns::routes())
}

/// Splits `<archive>/-/<action>` (axum has already percent-decoded it; `/-/` cannot occur
/// inside an archive name).
fn split_action(rest: &str) -> Result<(ArchiveName, &str), ApiError> {
    Ok(match rest.split_once("/-/") {
        Some((a, act)) => (parse_archive(a)?, act.trim_end_matches('/')),
        None => (parse_archive(rest.trim_end_matches('/'))?, ""),
    })
}

async fn archive_post(
    State(st): State<AppState>,
    Path(rest): Path<String>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    match split_action(&rest)? {
        (archive, "snapshots") => super::write::commit(&st, archive, &headers, body).await,
        (_, action) => Err(ApiError::MethodNotAllowed { allow: allowed(action) }),
    }
}

async fn archive_put(
    State(st): State<AppState>,
    Path(rest): Path<String>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    match split_action(&rest)? {
        (archive, "") => super::write::settings(&st, archive, &headers, body).await,
        (_, action) => Err(ApiError::MethodNotAllowed { allow: allowed(action) }),
    }
}

/// The methods an archive API path answers.
fn allowed(action: &str) -> &'static str {
    match action {
        "" => "GET, HEAD, PUT",
        "snapshots" => "GET, HEAD, POST",
        _ => super::error::GET_HEAD,
    }
}

/// Blocking. The snapshot with exactly this ID: 410 if retention deleted it, else 404.
fn exact_snapshot(
    s: &crate::store::Store,
    name: &ArchiveName,
    id: SnapshotId,
) -> Result<crate::catalog::Snapshot, ApiError> {
    let missing = || ApiError::NotFound(format!("archive '{name}' has no snapshot {id}"));
    match crate::resolve::resolve_id(s.catalog.as_ref(), name, id, SnapshotId::now()) {
        Ok(res) => Some(res.snapshot).filter(|s| s.id == id).ok_or_else(missing),
        Err(gone @ crate::resolve::TimeError::Deleted { .. }) => Err(gone.into()),
        Err(crate::resolve::TimeError::Catalog(e)) => Err(e.into()),
        Err(_) => Err(missing()),
    }
}

/// `GET .../-/snapshots/<ID>/manifest`: every file and symlink as one JSON object per line,
/// streamed (a client computing a change set needs the base's manifest).
async fn manifest_ndjson(st: &AppState, archive: ArchiveName, id: SnapshotId) -> Result<Response, ApiError> {
    let name = archive.clone();
    let snap = st.blocking(move |s| exact_snapshot(s, &name, id)).await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(16);
    let store = st.store.clone();
    tokio::task::spawn_blocking(move || {
        let mut buf = Vec::with_capacity(64 * 1024);
        let result = store.catalog.for_each_entry(snap.key, &mut |e| {
            let wire = match &e.content {
                Content::File { size, sha256 } => {
                    WireEntry::File { path: e.path.to_string(), size: *size, sha256: sha256.hex() }
                }
                Content::Symlink { target } => WireEntry::Symlink { path: e.path.to_string(), target: target.clone() },
                Content::Dir => return Ok(()),
            };
            serde_json::to_writer(&mut buf, &wire).expect("serializable");
            buf.push(b'\n');
            if buf.len() >= 60 * 1024 && tx.blocking_send(Ok(bytes::Bytes::from(std::mem::take(&mut buf)))).is_err() {
                return Err(crate::catalog::CatalogError::Corrupt("client went away".into()));
            }
            Ok(())
        });
        let last = match result {
            Ok(()) => Ok(bytes::Bytes::from(buf)),
            Err(e) => Err(std::io::Error::other(e.to_string())),
        };
        let _ = tx.blocking_send(last);
    });
    // Fused: body layers (compression) may poll once more after the end.
    let stream = futures::StreamExt::fuse(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }));
    let mut resp = Response::new(axum::body::Body::from_stream(stream));
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE));
    Ok(resp)
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

/// The `limit` of a paged answer: 1 to 1000, 100 when absent.
pub fn page_limit(limit: Option<u32>) -> Result<u32, ApiError> {
    match limit.unwrap_or(100) {
        n @ 1..=1000 => Ok(n),
        _ => Err(ApiError::BadRequest("parameter 'limit' must be between 1 and 1000".into())),
    }
}

pub async fn archive_snapshots_page(
    st: &AppState,
    archive: ArchiveName,
    p: ListParams,
) -> Result<SnapshotListJson, ApiError> {
    let limit = page_limit(p.limit)?;
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
    let (mut snaps, damage) = st
        .blocking(move |s| {
            if s.catalog.archive(&name)?.is_none() {
                return Err(ApiError::NotFound(format!("no archive named '{name}'")));
            }
            Ok((s.catalog.snapshots(&name, &q)?, s.scrub.scrub_damage(&name)?))
        })
        .await?;
    let more = snaps.len() > limit as usize;
    snaps.truncate(limit as usize);
    Ok(SnapshotListJson {
        archive: archive.to_string(),
        next_cursor: if more { snaps.last().map(|s| s.id) } else { None },
        snapshots: snaps.iter().map(|s| crate::scrub::web::flagged(s, &damage)).collect(),
    })
}

async fn list_archives(State(st): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let list = visible_archives(&st, &headers).await?;
    let mut r = short(&st, Json(serde_json::json!({ "archives": list })).into_response());
    // Private archives are listed only to callers who may read them.
    r.headers_mut().insert(header::VARY, HeaderValue::from_static("authorization"));
    Ok(r)
}

/// The archives this caller may see (private ones only with a token that may read them).
pub async fn visible_archives(
    st: &AppState,
    headers: &HeaderMap,
) -> Result<Vec<crate::catalog::ArchiveSummary>, ApiError> {
    let creds = super::access::credentials(headers);
    let metrics = st.metrics.clone();
    st.blocking(move |s| {
        let who = super::access::principal(s, &metrics, creds.as_deref())?;
        let mut out = Vec::new();
        for a in s.catalog.archives()? {
            if super::access::may_list(s, &a.name, who.as_ref())? {
                out.push(a);
            }
        }
        Ok(out)
    })
    .await
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
    headers: HeaderMap,
    uri: axum::http::Uri,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let (archive, action) = split_action(&rest)?;
    let creds = super::access::credentials(&headers);
    let (metrics, name) = (st.metrics.clone(), archive.clone());
    st.blocking(move |s| super::access::check_read(s, &metrics, &name, creds.as_deref())).await?;
    let parts: Vec<&str> = action.split('/').collect();
    match parts.as_slice() {
        ["snapshots", id, "manifest"] => manifest_ndjson(&st, archive, parse_path_id(id)?).await,
        ["signing-key"] => super::signing::key(&st, archive).await,
        ["diff"] => super::packages::diff(&st, archive, &uri).await,
        ["packages"] => super::packages::search(&st, archive, &uri).await,
        ["packages", name] => super::packages::history(&st, archive, name, Kind::Binary).await,
        ["packages", name, "first"] => super::packages::first(&st, archive, name, &uri).await,
        ["sources", name] => super::packages::history(&st, archive, name, Kind::Source).await,
        ["space"] => {
            let name = archive.clone();
            let report = st
                .blocking(move |s| crate::space::report(s, &name)?.ok_or_else(|| ApiError::no_archive(&name)))
                .await?;
            Ok(short(&st, Json(report).into_response()))
        }
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
            let cache = st.releases.clone();
            let snap = st
                .blocking(move |s| {
                    let snap = exact_snapshot(s, &name, id)?;
                    let (previous, next) = s.catalog.neighbours(snap.key)?;
                    let releases = Some(releases_json(s, &cache, snap.key)?);
                    let damage = s.scrub.scrub_damage(&name)?;
                    Ok(SnapshotJson { previous, next, releases, ..crate::scrub::web::flagged(&snap, &damage) })
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
            let cache = st.releases.clone();
            let snap = st
                .blocking(move |s| {
                    let latest = s.catalog.latest(&name)?.ok_or_else(|| {
                        ApiError::NotFound(format!("archive '{name}' does not exist or has no snapshots"))
                    })?;
                    let (previous, _) = s.catalog.neighbours(latest.key)?;
                    let releases = Some(releases_json(s, &cache, latest.key)?);
                    let damage = s.scrub.scrub_damage(&name)?;
                    Ok(SnapshotJson { previous, releases, ..crate::scrub::web::flagged(&latest, &damage) })
                })
                .await?;
            Ok(short(&st, Json(snap).into_response()))
        }
        _ => Err(ApiError::NotFound(format!(
            "unknown API action '{action}': expected snapshots, snapshots/<ID>, snapshots/<ID>/manifest, resolve/<ID>, latest, diff, packages, packages/<name>, packages/<name>/first, sources/<name> or space"
        ))),
    }
}

/// The suites' Release files of a snapshot, with Valid-Until and whether it has passed.
/// Blocking.
pub fn releases_json(
    s: &crate::store::Store,
    cache: &crate::resolve::release::ReleaseCache,
    key: crate::catalog::SnapshotKey,
) -> Result<Vec<crate::wire::ReleaseJson>, ApiError> {
    let now = chrono::Utc::now();
    let found = crate::resolve::release::suite_releases(s.catalog.as_ref(), s.blobs.as_ref(), cache, key)?;
    Ok(found.iter().map(|r| crate::wire::ReleaseJson::new(r, now)).collect())
}

fn parse_path_id(s: &str) -> Result<SnapshotId, ApiError> {
    s.parse().map_err(|e: crate::domain::SnapshotIdError| ApiError::NotFound(e.to_string()))
}
