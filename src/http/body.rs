//! Request bodies, read asynchronously with a progress timeout and a size limit, so that a
//! slow or stalled client holds neither a thread nor unbounded memory.

use std::time::Duration;

use axum::body::{Body, BodyDataStream};
use axum::http::{HeaderMap, header};
use bytes::Bytes;
use futures::StreamExt;

use super::AppState;
use super::error::ApiError;

/// Bytes a body must bring in every `timeout` window: a trickle of a byte a minute would
/// otherwise hold a request (and a connection slot) for as long as the client likes.
pub const MIN_BYTES_PER_WINDOW: u64 = 4096;

/// A body whose every chunk must arrive within `timeout` of the previous one, and which
/// must bring at least `MIN_BYTES_PER_WINDOW` bytes in every `timeout`.
pub struct TimedBody {
    stream: BodyDataStream,
    timeout: Duration,
    window_start: tokio::time::Instant,
    window_bytes: u64,
}

impl TimedBody {
    pub fn new(body: Body, timeout: Duration) -> Self {
        let window_start = tokio::time::Instant::now();
        Self { stream: body.into_data_stream(), timeout, window_start, window_bytes: 0 }
    }

    /// The next chunk, `None` at the end; 408 if the client sent nothing (or next to
    /// nothing) for too long, 400 if the body broke off.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, ApiError> {
        let chunk = match tokio::time::timeout(self.timeout, self.stream.next()).await {
            Err(_) => return Err(ApiError::BodyTimeout(self.timeout.as_secs())),
            Ok(None) => return Ok(None),
            Ok(Some(Ok(chunk))) => chunk,
            Ok(Some(Err(e))) => {
                return Err(ApiError::BadRequest(format!("the request body broke off ({e}); nothing stored")));
            }
        };
        self.window_bytes += chunk.len() as u64;
        if self.window_start.elapsed() >= self.timeout {
            if self.window_bytes < MIN_BYTES_PER_WINDOW {
                return Err(ApiError::BodyTimeout(self.timeout.as_secs()));
            }
            self.window_start = tokio::time::Instant::now();
            self.window_bytes = 0;
        }
        Ok(Some(chunk))
    }
}

/// The declared body length, if any; 400 if it is not a number.
pub fn content_length(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    headers
        .get(header::CONTENT_LENGTH)
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| ApiError::BadRequest("Content-Length is not a number".into()))
        })
        .transpose()
}

/// Reads a whole body of at most `limit` bytes: 413 before reading anything when the
/// declared length is over it, or as soon as the bytes received pass it.
pub async fn read_limited(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    timeout: Duration,
) -> Result<Vec<u8>, ApiError> {
    let too_large = || ApiError::TooLarge(format!("request body is over the {limit}-byte limit"));
    let declared = content_length(headers)?;
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut out = Vec::with_capacity(declared.unwrap_or(0).min(1 << 20) as usize);
    let mut body = TimedBody::new(body, timeout);
    while let Some(chunk) = body.next_chunk().await? {
        if out.len() + chunk.len() > limit {
            return Err(too_large());
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Largest small JSON body (digest lists, settings); manifests are spooled instead.
pub const MAX_SMALL_JSON: usize = 16 << 20;

/// Reads and parses a small JSON body (at most `MAX_SMALL_JSON`) on the blocking pool.
pub async fn read_json<T: serde::de::DeserializeOwned + Send + 'static>(
    st: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<T, ApiError> {
    let limit = MAX_SMALL_JSON.min(st.options.max_manifest_bytes);
    let bytes = read_limited(headers, body, limit, st.options.body_timeout).await?;
    tokio::task::spawn_blocking(move || {
        serde_json::from_slice(&bytes).map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
    })
    .await
    .map_err(ApiError::internal)?
}

/// Writes a body of at most `max_manifest_bytes` to a scratch file as it arrives (413
/// before reading when the declared length is over the limit). The file is deleted when
/// the returned path is dropped.
pub async fn spool(st: &AppState, headers: &HeaderMap, body: Body) -> Result<tempfile::TempPath, ApiError> {
    use tokio::io::AsyncWriteExt;
    let limit = st.options.max_manifest_bytes as u64;
    let too_large = || ApiError::TooLarge(format!("request body is over the {limit}-byte limit"));
    if content_length(headers)?.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let (file, path) = st
        .blocking(|s| {
            std::fs::create_dir_all(&s.scratch)?;
            Ok(tempfile::Builder::new().prefix("body-").tempfile_in(&s.scratch)?.into_parts())
        })
        .await?;
    let mut out = tokio::io::BufWriter::with_capacity(256 * 1024, tokio::fs::File::from_std(file));
    let mut body = TimedBody::new(body, st.options.body_timeout);
    let mut received = 0u64;
    while let Some(chunk) = body.next_chunk().await? {
        received += chunk.len() as u64;
        if received > limit {
            return Err(too_large());
        }
        out.write_all(&chunk).await?;
    }
    out.flush().await?;
    Ok(path)
}
