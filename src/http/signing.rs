//! The HTTP side of the signing mode: which variant of a Release file a request gets, and
//! `GET /api/v1/archives/<archive>/-/signing-key`.

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::ApiError;
use crate::catalog::Entry;
use crate::domain::{ArchiveName, RelPath, SnapshotId};
use crate::manifest::Content;
use crate::resolve::Resolution;
use crate::signing::resign::{ReleaseFile, choose};

/// The entry to serve for `entry` of `res`, asked for as `requested`: a recorded re-signed
/// variant of the suite's Release files when the archive is signed, else `entry` itself.
/// `?original` always asks for the published bytes, and so does a by-hash URL (its bytes
/// must hash to its name).
pub async fn variant(
    st: &AppState,
    req: &HeaderMap,
    query: Option<&str>,
    res: &Resolution,
    requested: Option<&RelPath>,
    entry: Entry,
) -> Result<Entry, ApiError> {
    let Some(file) = ReleaseFile::of(&entry.path) else { return Ok(entry) };
    if requested.is_some_and(|p| p.as_str().split('/').any(|s| s == "by-hash")) {
        return Ok(entry);
    }
    if query.is_some_and(|q| q.split('&').any(|p| p == "original" || p.starts_with("original="))) {
        return Ok(entry);
    }
    // Only a signed archive, or a final answer that may have been recorded re-signed, needs
    // the base URL; an unsigned archive never answers 400 for an odd Host (no file can have
    // been recorded under an invalid base).
    let archive = res.snapshot.archive.clone();
    let key = st.blocking(move |s| Ok(s.signing.signing_key(&archive)?)).await?;
    let signed = key.is_some();
    if !signed && !res.is_final {
        return Ok(entry);
    }
    let base = match base_url(st, req) {
        Err(_) if !signed => return Ok(entry),
        other => other?,
    };
    let Some(base) = base else { return Ok(entry) };
    let (snap, is_final, path) = (res.snapshot.clone(), res.is_final, entry.path.clone());
    let chosen = st.blocking(move |s| choose(s, &snap, is_final, &path, file, &base, key)).await?;
    Ok(match chosen {
        Some(r) => {
            // Strictly after the published file's time, which would answer 304 to a client
            // holding that file.
            let since = SnapshotId::from_unix(r.made_at.max(entry.since.unix() + 1)).unwrap_or(entry.since);
            Entry { content: Content::File { size: r.size, sha256: r.sha256 }, since, ..entry }
        }
        None => entry,
    })
}

/// The base of the `Snapshots:` URL: `public_url`, or `http://<Host>` of the request.
/// `None` without either (an HTTP/1.0 request without Host): such a client gets the original.
fn base_url(st: &AppState, req: &HeaderMap) -> Result<Option<String>, ApiError> {
    if let Some(url) = &st.options.public_url {
        return Ok(Some(url.trim_end_matches('/').to_owned()));
    }
    let Some(host) = req.get(header::HOST) else { return Ok(None) };
    let host = host.to_str().ok().filter(|h| valid_host(h)).ok_or_else(|| {
        ApiError::BadRequest("the Host header is not a valid host[:port] (it names the Snapshots: URL)".into())
    })?;
    Ok(Some(format!("http://{}", host.to_ascii_lowercase())))
}

/// `host[:port]` of RFC 9110 in the forms clients send: a DNS name or IPv4 address, or a
/// bracketed IPv6 address, with an optional numeric port.
fn valid_host(h: &str) -> bool {
    let (name, port) = match h.rsplit_once(':') {
        Some((n, p)) if !n.contains(':') || n.ends_with(']') => (n, Some(p)),
        _ => (h, None),
    };
    let name_ok = if let Some(v6) = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        !v6.is_empty() && v6.chars().all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
    } else {
        !name.is_empty() && name.len() <= 253 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    };
    name_ok && port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.chars().all(|c| c.is_ascii_digit()))
}

/// The archive's public key, armored, for apt's `Signed-By` (read access already checked).
pub async fn key(st: &AppState, archive: ArchiveName) -> Result<Response, ApiError> {
    let name = archive.clone();
    let key = st.blocking(move |s| Ok(s.signing.signing_key(&name)?)).await?;
    let key = key.ok_or_else(|| {
        ApiError::NotFound(format!(
            "archive '{archive}' is not signed by asof (turn it on with `asof archive signing {archive} --key FILE`)"
        ))
    })?;
    let mut resp = key.public_key.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/pgp-keys"));
    h.insert(header::CACHE_CONTROL, st.short_cache());
    h.insert("x-asof-key-fingerprint", HeaderValue::from_str(&key.fingerprint).map_err(ApiError::internal)?);
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::valid_host;

    #[test]
    fn hosts() {
        for ok in ["127.0.0.1:8080", "asof.example", "Asof.Example:80", "[::1]:3142", "[::1]"] {
            assert!(valid_host(ok), "{ok}");
        }
        for bad in ["", "a b", "evil/path", "h:", "h:123456", "h:x", "user@h", "[]:1", "::1"] {
            assert!(!valid_host(bad), "{bad}");
        }
    }
}
