//! The write side of the API: which blobs are missing, streamed blob uploads (hashed while
//! written, stored only if digest and length match), and commits of manifests or change
//! sets. Every endpoint needs a `publish` token (`admin` for archive settings).

use std::io;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;
use tokio_util::io::{StreamReader, SyncIoBridge};

use super::AppState;
use super::access::{self, credentials};
use super::error::ApiError;
use crate::blob::PutError;
use crate::domain::{ArchiveName, Digest};
use crate::publish::remote::{RemoteError, commit_request};
use crate::wire::{CommitRequest, MissingRequest, MissingResponse, SnapshotJson, UploadResponse};

/// Most digests one `missing` request may ask about.
const MAX_MISSING_QUERY: usize = 100_000;

pub async fn missing(State(st): State<AppState>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let creds = credentials(&headers);
    let metrics = st.metrics.clone();
    st.blocking(move |s| access::require_any_publisher(s, &metrics, creds.as_deref())).await?;
    let req: MissingRequest = read_json(&st, body).await?;
    if req.digests.len() > MAX_MISSING_QUERY {
        return Err(ApiError::TooLarge(format!("ask about at most {MAX_MISSING_QUERY} digests per request")));
    }
    let digests = req
        .digests
        .iter()
        .map(|d| d.parse::<Digest>().map_err(|e| ApiError::BadRequest(e.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    let missing = st
        .blocking(move |s| {
            let mut missing = Vec::new();
            for d in digests {
                if !s.blobs.contains(&d)? {
                    missing.push(d.hex());
                }
            }
            Ok(missing)
        })
        .await?;
    Ok(Json(MissingResponse { missing }).into_response())
}

/// Marks errors of the request body, so they are told apart from errors of the disk.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct ClientBodyError(String);

pub async fn upload(
    State(st): State<AppState>,
    Path(digest): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let digest: Digest = digest.parse().map_err(|e: crate::domain::DigestError| ApiError::BadRequest(e.to_string()))?;
    let creds = credentials(&headers);
    let metrics = st.metrics.clone();
    st.blocking(move |s| access::require_any_publisher(s, &metrics, creds.as_deref())).await?;
    let len: u64 = headers
        .get(header::CONTENT_LENGTH)
        .ok_or(ApiError::LengthRequired)?
        .to_str()
        .ok()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| ApiError::BadRequest("Content-Length is not a number".into()))?;
    let limit = st.options.max_blob_bytes;
    if len > limit {
        return Err(ApiError::TooLarge(format!("blob of {len} bytes is over the {limit}-byte limit")));
    }
    let stream = body.into_data_stream().map_err(|e| io::Error::other(ClientBodyError(e.to_string())));
    let mut reader = SyncIoBridge::new(StreamReader::new(stream));
    let outcome = st
        .blocking(move |s| match s.blobs.put(&mut reader, Some(&digest), Some(len)) {
            Ok(o) => Ok(o),
            Err(PutError::DigestMismatch { expected, actual }) => {
                Err(ApiError::BadRequest(format!("content hashes to {actual}, not {expected}; nothing stored")))
            }
            Err(PutError::LengthMismatch { expected, actual }) => Err(ApiError::BadRequest(format!(
                "body has {}{actual} bytes, Content-Length said {expected}; nothing stored",
                if actual > expected { "at least " } else { "" }
            ))),
            Err(PutError::Io(e)) if e.get_ref().is_some_and(|inner| inner.is::<ClientBodyError>()) => {
                Err(ApiError::BadRequest(format!("the request body broke off ({e}); nothing stored")))
            }
            Err(PutError::Io(e)) => Err(ApiError::internal(e)),
        })
        .await?;
    let status = if outcome.created { StatusCode::CREATED } else { StatusCode::OK };
    let body = UploadResponse { sha256: outcome.digest.hex(), size: outcome.size, created: outcome.created };
    Ok((status, Json(body)).into_response())
}

pub async fn commit(
    st: &AppState,
    archive: ArchiveName,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let started = std::time::Instant::now();
    let creds = credentials(headers);
    let (metrics, name) = (st.metrics.clone(), archive.clone());
    let principal = st.blocking(move |s| access::require_publish(s, &metrics, &name, creds.as_deref())).await?;
    let req: CommitRequest = read_json(st, body).await?;
    let mut source = serde_json::json!({ "method": "push", "token": principal.name, "token_id": principal.token_id });
    if let Some(extra) = &req.source {
        source["client"] = extra.clone();
    }
    let result = st
        .blocking(move |s| {
            commit_request(s, &archive, &req, source).map_err(|e| match e {
                RemoteError::Invalid(m) => ApiError::BadRequest(m),
                RemoteError::MissingBlobs(ref digests) => {
                    ApiError::Conflict { message: e.to_string(), missing: digests.iter().map(Digest::hex).collect() }
                }
                e @ RemoteError::StaleBase { .. } => ApiError::Conflict { message: e.to_string(), missing: Vec::new() },
                other => ApiError::internal(other),
            })
        })
        .await;
    let label = if result.is_ok() { "success" } else { "failure" };
    st.metrics.publishes.with_label_values(&[label]).inc();
    let snapshot = result?;
    st.metrics.publish_seconds.observe(started.elapsed().as_secs_f64());
    tracing::info!(archive = %snapshot.archive, snapshot = %snapshot.id, token = principal.token_id, "push committed");
    let json = SnapshotJson::from(&snapshot);
    let mut resp = (StatusCode::CREATED, Json(&json)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/archives/{}/-/snapshots/{}", snapshot.archive, snapshot.id))
    {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ArchiveSettings {
    private: bool,
}

/// `PUT /api/v1/archives/<archive>` with `{"private": true}`: admin only.
pub async fn settings(
    st: &AppState,
    archive: ArchiveName,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let creds = credentials(headers);
    let metrics = st.metrics.clone();
    st.blocking(move |s| access::require_admin(s, &metrics, creds.as_deref())).await?;
    let settings: ArchiveSettings = read_json(st, body).await?;
    let name = archive.clone();
    st.blocking(move |s| Ok(s.auth.set_private(&name, settings.private, chrono::Utc::now().timestamp())?)).await?;
    Ok(Json(serde_json::json!({ "archive": archive, "private": settings.private })).into_response())
}

async fn read_json<T: serde::de::DeserializeOwned + Send + 'static>(st: &AppState, body: Body) -> Result<T, ApiError> {
    let limit = st.options.max_manifest_bytes;
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::TooLarge(format!("request body is over the {limit}-byte limit, or broke off")))?;
    // Large manifests take a while to parse: keep that off the async workers.
    tokio::task::spawn_blocking(move || {
        serde_json::from_slice(&bytes).map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
    })
    .await
    .map_err(ApiError::internal)?
}
