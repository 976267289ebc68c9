//! Browsable listings: archives at `/`, an archive's snapshots at `/<archive>/`, and
//! directories inside a snapshot. HTML for people, JSON for `Accept: application/json`.

use std::fmt::Write as _;

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Serialize;

use super::api::{SnapshotJson, archive_snapshots_page};
use super::error::ApiError;
use super::files::snapshot_headers;
use super::{AppState, wants_json};
use crate::catalog::Entry;
use crate::domain::{ArchiveName, RelPath, SnapshotId};
use crate::manifest::Content;
use crate::resolve::Resolution;

pub async fn archives(st: &AppState, headers: &HeaderMap) -> Result<Response, ApiError> {
    let list = super::api::visible_archives(st, headers).await?;
    let mut resp = if wants_json(headers) {
        Json(serde_json::json!({ "archives": list })).into_response()
    } else {
        let mut body = String::new();
        for a in &list {
            let latest = a.latest.map_or_else(|| "-".to_string(), |l| l.to_string());
            let _ = write!(
                body,
                "<tr><td><a href=\"/{n}/\">{n}</a></td><td>{}</td><td>{}</td></tr>",
                a.snapshots,
                esc(&latest),
                n = esc(a.name.as_str())
            );
        }
        Html(page(
            "asof: archives",
            "<a href=\"/\">asof</a>",
            &format!("<table><tr><th>archive</th><th>snapshots</th><th>latest</th></tr>{body}</table>"),
        ))
        .into_response()
    };
    resp.headers_mut().insert(header::CACHE_CONTROL, st.short_cache());
    resp.headers_mut().insert(header::VARY, HeaderValue::from_static("accept, authorization"));
    Ok(resp)
}

/// A path with no ID-shaped segment: the snapshot list of an archive, or an archive
/// followed by something that should have been an ID.
pub async fn archive_or_bad_id(
    st: &AppState,
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
        Some((n, a)) => Err(ApiError::NotFound(format!(
            "'{}' after archive '{}' is not a snapshot ID: {}",
            segs[n].chars().take(64).collect::<String>(),
            a,
            crate::domain::snapshot_id::FORMAT_HELP
        ))),
        None => Err(ApiError::NotFound(format!(
            "no archive named '{}'",
            segs.join("/").chars().take(200).collect::<String>()
        ))),
    }
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
        let mut all: Vec<SnapshotJson> = st
            .blocking(move |s| {
                let q = crate::catalog::SnapshotQuery {
                    descending: true,
                    limit: HTML_PAGE + 1,
                    after: before,
                    ..Default::default()
                };
                Ok(s.catalog.snapshots(&name, &q)?.iter().map(SnapshotJson::from).collect())
            })
            .await?;
        let older = (all.len() > HTML_PAGE as usize).then(|| {
            all.truncate(HTML_PAGE as usize);
            all.last().map(|s| s.id)
        });
        let mut body = String::new();
        let mut month = String::new();
        for s in &all {
            let m = s.id.datetime().format("%Y-%m").to_string();
            if m != month {
                if !month.is_empty() {
                    body.push_str("</table>");
                }
                let _ = write!(
                    body,
                    "<h2>{m}</h2><table><tr><th>snapshot</th><th>files</th><th>bytes</th><th>changes</th><th>digest</th></tr>"
                );
                month = m;
            }
            let _ = write!(
                body,
                "<tr><td><a href=\"/{a}/{id}/\">{id}</a></td><td>{}</td><td>{}</td><td>+{} ~{} -{}</td><td><code>{}</code></td></tr>",
                s.files,
                s.bytes,
                s.added,
                s.changed,
                s.removed,
                &s.digest.hex()[..16],
                a = esc(archive.as_str()),
                id = s.id
            );
        }
        if !month.is_empty() {
            body.push_str("</table>");
        }
        if let Some(Some(last)) = older {
            let _ = write!(body, "<p><a href=\"/{}/?before={last}\">older snapshots</a></p>", esc(archive.as_str()));
        }
        let title = format!("asof: {}", archive);
        Html(page(&title, &crumbs(&archive, None, None), &body)).into_response()
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
    let children: Vec<Entry> = st.blocking(move |s| Ok(s.catalog.children(key, &lookup)?)).await?;
    let archive = &res.snapshot.archive;
    let mut resp = if wants_json(headers) {
        let entries = children
            .into_iter()
            .map(|e| DirEntryJson {
                name: e.path.file_name().to_string(),
                path: e.path.clone(),
                content: e.content,
                since: e.since,
            })
            .collect();
        Json(DirJson { archive, requested: res.requested, snapshot: res.snapshot.id, path: dir_str, entries })
            .into_response()
    } else {
        let base = format!("/{}/{}/", archive, res.requested);
        let mut rows = String::new();
        for e in &children {
            let name = e.path.file_name();
            let href =
                format!("{base}{}{}", url_path(e.path.as_str()), if e.content == Content::Dir { "/" } else { "" });
            let (size, digest, shown) = match &e.content {
                Content::File { size, sha256 } => {
                    (size.to_string(), format!("<code>{sha256}</code>"), name.to_string())
                }
                Content::Symlink { target } => (String::new(), format!("→ {}", esc(target)), name.to_string()),
                Content::Dir => (String::new(), String::new(), format!("{name}/")),
            };
            let _ = write!(
                rows,
                "<tr><td><a href=\"{}\">{}</a></td><td>{size}</td><td>{}</td><td>{digest}</td></tr>",
                esc(&href),
                esc(&shown),
                e.since
            );
        }
        let note = if res.requested == res.snapshot.id {
            String::new()
        } else {
            format!(
                "<p>{} resolves to snapshot <a href=\"/{a}/{id}/\">{id}</a>.</p>",
                res.requested,
                a = esc(archive.as_str()),
                id = res.snapshot.id
            )
        };
        let body =
            format!("{note}<table><tr><th>name</th><th>size</th><th>since</th><th>sha256</th></tr>{rows}</table>");
        let title = format!("asof: {}/{}/{}", archive, res.requested, dir_str);
        Html(page(&title, &crumbs(archive, Some(res.requested), dir.as_ref()), &body)).into_response()
    };
    for (k, v) in snapshot_headers(st, res) {
        if let Some(k) = k {
            resp.headers_mut().insert(k, v);
        }
    }
    resp.headers_mut().insert(header::VARY, HeaderValue::from_static("accept"));
    Ok(resp)
}

fn crumbs(archive: &ArchiveName, id: Option<SnapshotId>, dir: Option<&RelPath>) -> String {
    let mut out = format!("<a href=\"/\">asof</a> / <a href=\"/{a}/\">{a}</a>", a = esc(archive.as_str()));
    if let Some(id) = id {
        let mut href = format!("/{archive}/{id}/");
        let _ = write!(out, " / <a href=\"{}\">{id}</a>", esc(&href));
        if let Some(dir) = dir {
            for seg in dir.as_str().split('/') {
                href.push_str(&url_path(seg));
                href.push('/');
                let _ = write!(out, " / <a href=\"{}\">{}</a>", esc(&href), esc(seg));
            }
        }
    }
    out
}

fn page(title: &str, crumbs: &str, body: &str) -> String {
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{}</title><style>\
         body{{font-family:system-ui,sans-serif;margin:2em;}}table{{border-collapse:collapse}}\
         td,th{{padding:2px 12px;text-align:left}}tr:nth-child(even){{background:#f4f4f4}}code{{font-size:90%}}\
         </style></head><body><h1>{crumbs}</h1>{body}</body></html>",
        esc(title)
    )
}

/// Percent-encodes what would end or confuse a URL path inside a link.
fn url_path(p: &str) -> String {
    use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
    const SET: &AsciiSet = &CONTROLS.add(b' ').add(b'"').add(b'#').add(b'%').add(b'<').add(b'>').add(b'?').add(b'`');
    utf8_percent_encode(p, SET).to_string()
}

/// Escapes text for HTML element content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
