//! The write side of the API: which blobs are missing, streamed blob uploads (hashed while
//! written, stored only if digest and length match), and commits of manifests or change
//! sets. Every endpoint needs a `publish` token (`admin` for archive settings). Which blobs
//! a caller may learn of or reference is decided by `auth::blob_access`.

use std::io;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;

use super::AppState;
use super::access::{self, credentials};
use super::body::{self, TimedBody};
use super::error::ApiError;
use crate::auth::{BlobAccess, Principal};
use crate::blob::{PutError, PutOutcome};
use crate::domain::{ArchiveName, Digest};
use crate::publish::PublishError;
use crate::publish::remote::{RemoteError, commit_staged_request, stage_json};
use crate::publish::staging::DiskStaging;
use crate::store::Store;
use crate::wire::{MissingResponse, SnapshotJson, UploadResponse};

/// Most digests one `missing` request may ask about.
const MAX_MISSING_QUERY: usize = 100_000;

fn blob_access<'a>(s: &'a Store, principal: &'a Principal) -> BlobAccess<'a> {
    BlobAccess { principal, catalog: s.catalog.as_ref(), auth: s.auth.as_ref(), now: chrono::Utc::now().timestamp() }
}

pub async fn missing(State(st): State<AppState>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let creds = credentials(&headers);
    let metrics = st.metrics.clone();
    let principal = st.blocking(move |s| access::require_any_publisher(s, &metrics, creds.as_deref())).await?;
    let req: MissingQuery = body::read_json(&st, &headers, body).await?;
    if req.digests.count > MAX_MISSING_QUERY {
        return Err(ApiError::TooLarge(format!("ask about at most {MAX_MISSING_QUERY} digests per request")));
    }
    let digests = req
        .digests
        .kept
        .iter()
        .map(|d| d.parse::<Digest>().map_err(|e| ApiError::BadRequest(e.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    let missing = st
        .blocking(move |s| {
            let access = blob_access(s, &principal);
            let mut missing = Vec::new();
            for d in digests {
                // A blob the caller may not use is "missing" to it, stored or not.
                if !access.may_use(&d)? || !crate::gc::rely_on(s, &d)? {
                    missing.push(d.hex());
                }
            }
            Ok(missing)
        })
        .await?;
    Ok(Json(MissingResponse { missing }).into_response())
}

/// `wire::MissingRequest` as the server reads it: 16 MiB of `"",` would otherwise become
/// over five million `String`s (some 300 MB) before the count could be checked.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct MissingQuery {
    digests: Bounded,
}

/// The first `MAX_MISSING_QUERY` strings of an array, and how many it had in all.
struct Bounded {
    kept: Vec<String>,
    count: usize,
}

impl<'de> serde::Deserialize<'de> for Bounded {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_seq(Bounded { kept: Vec::new(), count: 0 })
    }
}

impl<'de> serde::de::Visitor<'de> for Bounded {
    type Value = Bounded;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of SHA-256 digests")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(mut self, mut seq: A) -> Result<Bounded, A::Error> {
        while self.count < MAX_MISSING_QUERY {
            let Some(d) = seq.next_element::<String>()? else { return Ok(self) };
            self.kept.push(d);
            self.count += 1;
        }
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
            self.count += 1;
        }
        Ok(self)
    }
}

pub async fn upload(
    State(st): State<AppState>,
    Path(digest): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let digest: Digest = digest.parse().map_err(|e: crate::domain::DigestError| ApiError::BadRequest(e.to_string()))?;
    let creds = credentials(&headers);
    let metrics = st.metrics.clone();
    let principal = st.blocking(move |s| access::require_any_publisher(s, &metrics, creds.as_deref())).await?;
    let len = body::content_length(&headers)?.ok_or(ApiError::LengthRequired)?;
    let limit = st.options.max_blob_bytes;
    if len > limit {
        return Err(ApiError::TooLarge(format!("blob of {len} bytes is over the {limit}-byte limit")));
    }
    let p = principal.clone();
    let known = st
        .blocking(move |s| {
            Ok(if blob_access(s, &p).may_use(&digest)? { s.blobs.blocking().claim(&digest)? } else { None })
        })
        .await?;
    if let Some(size) = known {
        // The caller can read this blob already: nothing to send, nothing to hide. Bytes of
        // another length cannot be these, and the answer must not claim they were stored.
        if size != len {
            return Err(ApiError::BadRequest(format!(
                "blob {digest} has {size} bytes, Content-Length says {len}; nothing stored"
            )));
        }
        let body = UploadResponse { sha256: digest.hex(), size, created: false };
        return Ok((StatusCode::OK, Json(body)).into_response());
    }
    let outcome = receive_blob(&st, body, digest, len).await?;
    let token_id = principal.token_id;
    st.blocking(move |s| Ok(s.auth.grant_upload(token_id, &digest, chrono::Utc::now().timestamp())?)).await?;
    // Whether an identical blob was stored already is not this caller's business: the
    // answer is the same either way (see auth::blob_access).
    let body = UploadResponse { sha256: outcome.digest.hex(), size: outcome.size, created: true };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// Hands the body to the blob store as it arrives (no thread waits on the client). A
/// failure of the client's (a stall, too many bytes) ends the stream and is answered as
/// such rather than as the store's error.
async fn receive_blob(st: &AppState, body: Body, digest: Digest, len: u64) -> Result<PutOutcome, ApiError> {
    let client_fault = Arc::new(Mutex::new(None::<ApiError>));
    let fault = client_fault.clone();
    let start = Some((TimedBody::new(body, st.options.body_timeout), 0u64));
    let chunks = futures::stream::unfold(start, move |state| {
        let fault = fault.clone();
        async move {
            let (mut body, received) = state?;
            let failed = |e: ApiError| {
                *fault.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                Some((Err(io::Error::other("the upload failed")), None))
            };
            match body.next_chunk().await {
                Ok(None) => None,
                Ok(Some(chunk)) if received + chunk.len() as u64 > len => failed(ApiError::BadRequest(format!(
                    "body has at least {} bytes, Content-Length said {len}; nothing stored",
                    received + chunk.len() as u64
                ))),
                Ok(Some(chunk)) => {
                    let received = received + chunk.len() as u64;
                    Some((Ok(chunk), Some((body, received))))
                }
                Err(e) => failed(e),
            }
        }
    });
    let result = st.store.blobs.put(chunks.boxed(), Some(&digest), Some(len)).await;
    if let Some(e) = client_fault.lock().unwrap_or_else(|p| p.into_inner()).take() {
        return Err(e);
    }
    result.map_err(put_error)
}

fn put_error(e: PutError) -> ApiError {
    match e {
        PutError::DigestMismatch { expected, actual } => {
            ApiError::BadRequest(format!("content hashes to {actual}, not {expected}; nothing stored"))
        }
        PutError::LengthMismatch { expected, actual } => {
            ApiError::BadRequest(format!("body has {actual} bytes, Content-Length said {expected}; nothing stored"))
        }
        PutError::Io(e) => ApiError::from(e),
    }
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
    // The body goes to disk as it arrives, then is parsed entry by entry into a stage:
    // however large the manifest, memory stays flat (docs/api.md, "Limits").
    let spooled = body::spool(st, headers, body).await?;
    let base_source = serde_json::json!({ "method": "push", "token": principal.name, "token_id": principal.token_id });
    let who = principal.clone();
    let result = st
        .blocking(move |s| {
            let mut stage = DiskStaging::new(&s.scratch).map_err(|e| remote_error(e.into()))?;
            let file = std::fs::File::open(&spooled)?;
            let header = stage_json(file, &mut stage).map_err(remote_error)?;
            drop(spooled);
            let mut source = base_source;
            if let Some(extra) = &header.source {
                source["client"] = extra.clone();
            }
            let access = blob_access(s, &who);
            commit_staged_request(s, &archive, &header, &stage, source, &|d| access.may_use(d)).map_err(remote_error)
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

fn remote_error(e: RemoteError) -> ApiError {
    match e {
        RemoteError::Invalid(m) => ApiError::BadRequest(m),
        RemoteError::MissingBlobs(ref digests) => {
            ApiError::Conflict { message: e.to_string(), missing: digests.iter().map(Digest::hex).collect() }
        }
        e @ RemoteError::StaleBase { .. } => ApiError::Conflict { message: e.to_string(), missing: Vec::new() },
        RemoteError::Catalog(c) | RemoteError::Publish(PublishError::Catalog(c)) => ApiError::from(c),
        RemoteError::Store(io) => ApiError::from(io),
        other => ApiError::internal(other),
    }
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
    let settings: ArchiveSettings = body::read_json(st, headers, body).await?;
    let name = archive.clone();
    st.blocking(move |s| Ok(s.auth.set_private(&name, settings.private, chrono::Utc::now().timestamp())?)).await?;
    Ok(Json(serde_json::json!({ "archive": archive, "private": settings.private })).into_response())
}
