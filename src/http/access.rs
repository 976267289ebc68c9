//! Who may do what: reads of private archives need a `read` (or `publish`/`admin`) token,
//! and without one a private archive looks missing (404); writes need a `publish` token for
//! the archive: no or a bad token is 401, the wrong scope 403.
//! Tokens come as `Authorization: Bearer <token>` or as the password of HTTP Basic (so apt
//! can send them from /etc/apt/auth.conf.d). They are never logged.

use axum::http::{HeaderMap, header};
use base64::Engine;

use super::error::ApiError;
use crate::auth::{Principal, authenticate};
use crate::domain::ArchiveName;
use crate::metrics::Metrics;
use crate::store::Store;

/// The token a request carries, if any. Scheme names are case-insensitive (RFC 9110 §11.1).
pub fn credentials(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(rest.to_string());
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(rest).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    Some(text.split_once(':').map_or(text.clone(), |(_, password)| password.to_string()))
}

/// Checks the token if one was given, and notes its use (in memory: reads never write).
/// Blocking: call on the blocking pool.
pub fn principal(store: &Store, metrics: &Metrics, creds: Option<&str>) -> Result<Option<Principal>, ApiError> {
    let Some(token) = creds else { return Ok(None) };
    match authenticate(store.auth.as_ref(), token)? {
        Ok(p) => {
            store.last_use.note(p.token_id, chrono::Utc::now().timestamp());
            Ok(Some(p))
        }
        Err(e) => {
            metrics.auth_failures.with_label_values(&[e.reason()]).inc();
            Err(ApiError::Unauthorized(format!("{e}")))
        }
    }
}

fn refuse(metrics: &Metrics, reason: &'static str, err: ApiError) -> ApiError {
    metrics.auth_failures.with_label_values(&[reason]).inc();
    err
}

/// Blocking. Whether this caller may read `archive`, i.e. may even learn that it exists:
/// public archives are readable by anyone (a token, if sent, is not checked); private ones
/// need a token that may read them. A bad token counts as none (and as an auth failure).
pub fn readable(
    store: &Store,
    metrics: &Metrics,
    archive: &ArchiveName,
    creds: Option<&str>,
) -> Result<bool, ApiError> {
    match store.auth.visibility(archive)? {
        None => Ok(false),
        Some(false) => Ok(true),
        Some(true) => {
            let who = match principal(store, metrics, creds) {
                Err(ApiError::Unauthorized(_)) => return Ok(false),
                other => other?,
            };
            match who {
                Some(p) if p.can_read(archive) => Ok(true),
                Some(_) => {
                    metrics.auth_failures.with_label_values(&["scope"]).inc();
                    Ok(false)
                }
                None => {
                    metrics.auth_failures.with_label_values(&["missing"]).inc();
                    Ok(false)
                }
            }
        }
    }
}

/// Blocking. A private archive the caller may not read answers exactly as a missing one
/// (404, same text), so that its name cannot be probed.
pub fn check_read(
    store: &Store,
    metrics: &Metrics,
    archive: &ArchiveName,
    creds: Option<&str>,
) -> Result<(), ApiError> {
    if readable(store, metrics, archive, creds)? { Ok(()) } else { Err(ApiError::no_archive(archive)) }
}

/// Blocking. Whether a listing may show this archive to this caller.
pub fn may_list(store: &Store, archive: &ArchiveName, who: Option<&Principal>) -> Result<bool, ApiError> {
    Ok(!store.auth.is_private(archive)? || who.is_some_and(|p| p.can_read(archive)))
}

pub fn require_publish(
    store: &Store,
    metrics: &Metrics,
    archive: &ArchiveName,
    creds: Option<&str>,
) -> Result<Principal, ApiError> {
    match principal(store, metrics, creds)? {
        None => {
            Err(refuse(metrics, "missing", ApiError::Unauthorized("a token with publish scope is required".into())))
        }
        Some(p) if p.can_publish(archive) => Ok(p),
        Some(_) => {
            Err(refuse(metrics, "scope", ApiError::Forbidden(format!("this token may not publish to '{archive}'"))))
        }
    }
}

/// Uploading and probing blobs is for publishers of any archive.
pub fn require_any_publisher(store: &Store, metrics: &Metrics, creds: Option<&str>) -> Result<Principal, ApiError> {
    match principal(store, metrics, creds)? {
        None => {
            Err(refuse(metrics, "missing", ApiError::Unauthorized("a token with publish scope is required".into())))
        }
        Some(p) if p.can_publish_somewhere() => Ok(p),
        Some(_) => Err(refuse(metrics, "scope", ApiError::Forbidden("this token has no publish scope".into()))),
    }
}

pub fn require_admin(store: &Store, metrics: &Metrics, creds: Option<&str>) -> Result<Principal, ApiError> {
    match principal(store, metrics, creds)? {
        None => Err(refuse(metrics, "missing", ApiError::Unauthorized("an admin token is required".into()))),
        Some(p) if p.is_admin() => Ok(p),
        Some(_) => Err(refuse(metrics, "scope", ApiError::Forbidden("this token is not an admin token".into()))),
    }
}
