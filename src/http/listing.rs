//! Browsable listings: archives at `/`, an archive's snapshots at `/<archive>/`, and
//! directories inside a snapshot. HTML for people, JSON for `Accept: application/json`.

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::api::{SnapshotJson, archive_snapshots_page};
use super::error::ApiError;
use super::files::{self, At, snapshot_headers};
use super::{AppState, pages, wants_json};
use crate::catalog::Entry;
use crate::domain::{ArchiveName, RelPath, SnapshotId};
use crate::manifest::Content;
use crate::resolve::Resolution;

pub async fn archives(st: &AppState, headers: &HeaderMap) -> Result<Response, ApiError> {
    let list = super::api::visible_archives(st, headers).await?;
    let mut resp = if wants_json(headers) {
        Json(serde_json::json!({ "archives": list })).into_response()
    } else {
        pages::respond(pages::listing::archives(&list))
    };
    resp.headers_mut().insert(header::CACHE_CONTROL, st.short_cache());
    resp.headers_mut().insert(header::VARY, HeaderValue::from_static("accept, authorization"));
    Ok(resp)
}

/// A path with no ID-shaped segment: the snapshot list of an archive, or a path in its
/// latest snapshot (the live path). The archive is the longest prefix of the segments that
/// names an archive this caller may read; the rest is the path.
pub async fn archive_or_live(
    st: &AppState,
    method: &Method,
    headers: &HeaderMap,
    segs: Vec<String>,
    query: Option<&str>,
) -> Result<Response, ApiError> {
    // Only prefixes short enough to be archive names are candidates: this bounds the work
    // whatever the length of the request path.
    let mut candidates: Vec<(usize, ArchiveName)> = Vec::new();
    let mut name = String::new();
    for (n, seg) in segs.iter().enumerate() {
        if !name.is_empty() {
            name.push('/');
        }
        name.push_str(seg);
        if name.len() > ArchiveName::MAX_LEN {
            break;
        }
        if let Ok(a) = name.parse::<ArchiveName>() {
            candidates.push((n + 1, a));
        }
    }
    let total = segs.len();
    let creds = super::access::credentials(headers);
    let metrics = st.metrics.clone();
    let found = st
        .blocking(move |s| {
            // Only archives this caller may read count: a private one must look missing.
            for (n, a) in candidates.into_iter().rev() {
                if super::access::readable(s, &metrics, &a, creds.as_deref())? {
                    return Ok(Some((n, a)));
                }
            }
            Ok(None)
        })
        .await?;
    match found {
        Some((n, a)) if n == total => snapshot_list(st, headers, a, query).await,
        Some((n, a)) => {
            // Past the request-path checks, a path that is not a valid RelPath (too long)
            // names nothing.
            let path = RelPath::from_segments(segs[n..].iter().map(String::as_str))
                .map_err(|e| ApiError::NotFound(e.to_string()))?;
            files::in_snapshot(st, method, headers, query, a, At::Latest, Some(path)).await
        }
        None => Err(ApiError::NotFound(format!(
            "no archive named '{}'",
            segs.join("/").chars().take(200).collect::<String>()
        ))),
    }
}

/// The answer when what follows an archive name was presumably meant as a snapshot ID.
pub fn not_an_id(seg: &str, archive: &ArchiveName) -> ApiError {
    ApiError::NotFound(format!(
        "'{}' after archive '{}' is not a snapshot ID: {}",
        seg.chars().take(64).collect::<String>(),
        archive,
        crate::domain::snapshot_id::FORMAT_HELP
    ))
}

/// Snapshots shown per HTML page; `?before=<ID>` pages back in time.
const HTML_PAGE: u32 = 1000;

async fn snapshot_list(
    st: &AppState,
    headers: &HeaderMap,
    archive: ArchiveName,
    query: Option<&str>,
) -> Result<Response, ApiError> {
    let before = query
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("before=")))
        .map(|v| v.parse::<SnapshotId>().map_err(|e| ApiError::BadRequest(format!("parameter 'before': {e}"))))
        .transpose()?;
    let creds = super::access::credentials(headers);
    let (metrics, name) = (st.metrics.clone(), archive.clone());
    st.blocking(move |s| super::access::check_read(s, &metrics, &name, creds.as_deref())).await?;
    let mut resp = if wants_json(headers) {
        let page = archive_snapshots_page(st, archive, Default::default()).await?;
        Json(page).into_response()
    } else {
        let name = archive.clone();
        // One more than a page: the snapshot before the page's last row, for its diff link.
        let mut all: Vec<SnapshotJson> = st
            .blocking(move |s| {
                let q = crate::catalog::SnapshotQuery {
                    descending: true,
                    limit: HTML_PAGE + 1,
                    after: before,
                    ..Default::default()
                };
                let damage = s.scrub.scrub_damage(&name)?;
                Ok(s.catalog.snapshots(&name, &q)?.iter().map(|s| crate::scrub::web::flagged(s, &damage)).collect())
            })
            .await?;
        let before_page = (all.len() > HTML_PAGE as usize).then(|| all.pop().map(|s| s.id)).flatten();
        let older = before_page.and(all.last().map(|s| s.id));
        pages::respond(pages::listing::snapshot_list(&archive, &all, before_page, older))
    };
    resp.headers_mut().insert(header::CACHE_CONTROL, st.short_cache());
    resp.headers_mut().insert(header::VARY, HeaderValue::from_static("accept, authorization"));
    Ok(resp)
}

#[derive(Serialize)]
struct DirEntryJson {
    name: String,
    path: RelPath,
    #[serde(flatten)]
    content: Content,
    since: SnapshotId,
    /// Set when a takedown hides the file: its number, status and reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    taken_down: Option<crate::takedown::Hit>,
}

#[derive(Serialize)]
struct DirJson<'a> {
    archive: &'a ArchiveName,
    requested: SnapshotId,
    snapshot: SnapshotId,
    path: String,
    entries: Vec<DirEntryJson>,
}

pub async fn snapshot_dir(
    st: &AppState,
    headers: &HeaderMap,
    res: &Resolution,
    dir: Option<RelPath>,
) -> Result<Response, ApiError> {
    let key = res.snapshot.key;
    let dir_str = dir.as_ref().map_or(String::new(), |d| d.to_string());
    let lookup = dir_str.clone();
    let (children, marks): (Vec<Entry>, Vec<_>) = st
        .blocking(move |s| {
            let children = s.catalog.children(key, &lookup)?;
            let marks = crate::takedown::marks(s.takedowns.as_ref(), key, &children)?;
            Ok((children, marks))
        })
        .await?;
    // Takedowns are the one thing that changes a final snapshot's listing.
    let taken_down = marks.iter().any(Option::is_some);
    let archive = &res.snapshot.archive;
    // The HTML links the next snapshot: until there is one, the page can still change.
    let mut awaits_next = false;
    let mut resp = if wants_json(headers) {
        let entries = children
            .into_iter()
            .zip(marks)
            .map(|(e, taken_down)| DirEntryJson {
                name: e.path.file_name().to_string(),
                path: e.path.clone(),
                content: e.content,
                since: e.since,
                taken_down,
            })
            .collect();
        Json(DirJson { archive, requested: res.requested, snapshot: res.snapshot.id, path: dir_str, entries })
            .into_response()
    } else {
        let (key, cache, top, name) = (res.snapshot.key, st.releases.clone(), dir.is_none(), archive.clone());
        let (neighbours, releases, damaged, retention) = st
            .blocking(move |s| {
                // The top of a snapshot shows its suites' Release files and their Valid-Until.
                let releases = if top { super::api::releases_json(s, &cache, key)? } else { Vec::new() };
                let damaged = crate::scrub::web::damaged(&s.scrub.scrub_damage(&name)?, key.seq);
                let retention = s.retention.under_retention(&name)?;
                Ok((s.catalog.neighbours(key)?, releases, damaged, retention))
            })
            .await?;
        // "Not expired" turns into "expired" with time, a damaged snapshot is mended, and
        // retention may delete a neighbour: until then the page can change.
        awaits_next = neighbours.1.is_none()
            || retention
            || releases.iter().any(|r| r.valid_until.is_some() && !r.expired)
            || !damaged.is_empty();
        let warning = crate::scrub::web::warning(&damaged);
        pages::respond(pages::listing::snapshot_dir(
            res,
            dir.as_ref(),
            &children,
            &marks,
            neighbours,
            &releases,
            warning,
        ))
    };
    for (k, v) in snapshot_headers(st, res) {
        if let Some(k) = k {
            resp.headers_mut().insert(k, v);
        }
    }
    if (awaits_next || taken_down) && !res.live {
        resp.headers_mut().insert(header::CACHE_CONTROL, st.short_cache());
    }
    resp.headers_mut().insert(header::VARY, HeaderValue::from_static("accept"));
    Ok(resp)
}
