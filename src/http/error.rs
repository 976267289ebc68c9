//! `ApiError`: the one error type at the HTTP edge, with an explicit status for each
//! variant. Internal details are logged, never sent to clients.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::wire::ErrorJson;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    /// The exact ID of a snapshot that retention deleted.
    #[error("{0}")]
    Gone(String),
    /// `allow` lists the methods the path does answer (the Allow header).
    #[error("{}", method_message(allow))]
    MethodNotAllowed { allow: &'static str },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{message}")]
    Conflict { message: String, missing: Vec<String> },
    #[error("{0}")]
    TooLarge(String),
    #[error("a Content-Length header is required")]
    LengthRequired,
    /// Over a rate limit; the client may retry after this many seconds.
    #[error("{message}")]
    TooManyRequests { message: String, retry_after_secs: u64 },
    /// The client sent no byte of its body for this many seconds.
    #[error("the request body stalled: less than 4096 bytes arrived in {0} s; nothing stored")]
    BodyTimeout(u64),
    /// Not answerable yet (e.g. the package index is still being built); retry later.
    #[error("{message}")]
    Unavailable { message: String, retry_after_secs: u64 },
    /// A file hidden by a takedown (`takedown`): 410 or 451, with the takedown's reason.
    #[error("{path} is taken down: {reason}")]
    TakenDown { status: crate::takedown::Status, reason: String, path: String, takedown: i64 },
    /// The server's disk (or bucket) is full: nothing was stored.
    #[error("{0}")]
    InsufficientStorage(String),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Gone(_) => StatusCode::GONE,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::LengthRequired => StatusCode::LENGTH_REQUIRED,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::TakenDown { status: crate::takedown::Status::Gone, .. } => StatusCode::GONE,
            ApiError::TakenDown { status: crate::takedown::Status::Legal, .. } => {
                StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS
            }
            ApiError::InsufficientStorage(_) => StatusCode::INSUFFICIENT_STORAGE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The one answer for an archive that does not exist or that the caller may not read.
    pub fn no_archive(name: &crate::domain::ArchiveName) -> Self {
        ApiError::NotFound(format!("no archive named '{name}'"))
    }

    /// The answer for `path` when a takedown hides the file it names.
    pub fn taken_down(path: &crate::domain::RelPath, hit: crate::takedown::Hit) -> Self {
        ApiError::TakenDown { status: hit.status, reason: hit.reason, path: path.to_string(), takedown: hit.id }
    }

    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        ApiError::Internal(e.into())
    }
}

pub const GET_HEAD: &str = "GET, HEAD";

fn method_message(allow: &str) -> String {
    if allow == GET_HEAD {
        "method not allowed: only GET and HEAD are served here".to_string()
    } else {
        format!("method not allowed: this path answers {allow}")
    }
}

/// Gives the 405s that axum answers by itself (a route that exists, but not for this
/// method) the JSON body every other error has, keeping axum's Allow header.
pub async fn json_405(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let resp = next.run(req).await;
    if resp.status() != StatusCode::METHOD_NOT_ALLOWED || resp.headers().contains_key(header::CONTENT_TYPE) {
        return resp;
    }
    let allow = resp.headers().get(header::ALLOW).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let allow = allow.split(',').map(str::trim).filter(|m| !m.is_empty()).collect::<Vec<_>>().join(", ");
    let body =
        ErrorJson { error: format!("method not allowed: this path answers {allow}"), status: 405, missing: Vec::new() };
    let bytes = serde_json::to_vec(&body).expect("serializable");
    let mut out =
        (StatusCode::METHOD_NOT_ALLOWED, [(header::CONTENT_TYPE, "application/json")], bytes.clone()).into_response();
    out.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    out.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&allow) {
        out.headers_mut().insert(header::ALLOW, v);
    }
    out
}

/// Largest JSON error body turned into a page (error bodies are one message).
const MAX_ERROR_BODY: usize = 64 << 10;

/// Renders JSON errors of the tree and page routes as an HTML page, same status and
/// headers, when the client prefers HTML. API clients (and curl, apt) keep the JSON.
pub async fn html_errors(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let html = super::prefers_html(req.headers()) && !req.uri().path().starts_with("/api/");
    let resp = next.run(req).await;
    let is_json = resp.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes() == b"application/json");
    if !html || !is_json || !(resp.status().is_client_error() || resp.status().is_server_error()) {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let message = match axum::body::to_bytes(body, MAX_ERROR_BODY).await {
        Ok(bytes) => serde_json::from_slice::<ErrorJson>(&bytes).map(|e| e.error).unwrap_or_default(),
        Err(_) => String::new(),
    };
    let page = super::pages::error::error_page(parts.status, &message).into_string();
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    parts.headers.insert(header::CONTENT_LENGTH, HeaderValue::from(page.len()));
    parts.headers.insert(header::VARY, HeaderValue::from_static("accept"));
    Response::from_parts(parts, axum::body::Body::from(page))
}

/// The error body of a taken-down file: the common fields, then the takedown's own.
#[derive(serde::Serialize)]
struct TakenDownJson<'a> {
    error: String,
    status: u16,
    reason: &'a str,
    takedown: i64,
}

const DISK_FULL: &str = "the server has no space left to store this; nothing was stored";

impl From<crate::catalog::CatalogError> for ApiError {
    fn from(e: crate::catalog::CatalogError) -> Self {
        match &e {
            crate::catalog::CatalogError::DiskFull(_) => {
                tracing::error!(error = %e, "metadata write failed: disk full");
                ApiError::InsufficientStorage(DISK_FULL.into())
            }
            _ => ApiError::internal(e),
        }
    }
}

impl From<std::io::Error> for ApiError {
    fn from(e: std::io::Error) -> Self {
        // ENOSPC, and EDQUOT (a quota is a full disk for this process too).
        if e.kind() == std::io::ErrorKind::StorageFull || e.raw_os_error() == Some(122) {
            tracing::error!(error = %e, "blob write failed: disk full");
            return ApiError::InsufficientStorage(DISK_FULL.into());
        }
        ApiError::internal(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let ApiError::Internal(e) = &self {
            tracing::error!(error = format!("{e:#}"), "request failed");
        }
        let missing = match &self {
            ApiError::Conflict { missing, .. } => missing.clone(),
            _ => Vec::new(),
        };
        let body = ErrorJson { error: self.to_string(), status: status.as_u16(), missing };
        let mut resp = match &self {
            // The reason and the takedown's number, for clients that show them on their own.
            ApiError::TakenDown { reason, takedown, .. } => {
                let body = TakenDownJson { error: body.error, status: body.status, reason, takedown: *takedown };
                (status, Json(body)).into_response()
            }
            _ => (status, Json(body)).into_response(),
        };
        resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        if let ApiError::MethodNotAllowed { allow } = &self {
            resp.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        if let ApiError::TooManyRequests { retry_after_secs, .. } | ApiError::Unavailable { retry_after_secs, .. } =
            &self
        {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
        }
        if status == StatusCode::UNAUTHORIZED {
            // Basic lets apt answer from /etc/apt/auth.conf.d; Bearer is for API clients.
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"asof\", Bearer realm=\"asof\""),
            );
        }
        resp
    }
}
