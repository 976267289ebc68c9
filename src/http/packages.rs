//! The package API under `/api/v1/archives/<archive>/-/`: `diff`, `packages` (search),
//! `packages/<name>`, `packages/<name>/first` and `sources/<name>`. IDs resolve by floor as
//! file URLs do; answers that can never change are cached as immutable.

use axum::Json;
use axum::extract::Query;
use axum::http::{HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::AppState;
use super::error::ApiError;
use super::files::{IMMUTABLE, resolve};
use crate::catalog::Snapshot;
use crate::domain::{ArchiveName, SnapshotId};
use crate::packages::parse::Kind;
use crate::packages::query::{self, DiffFilter, PackageChange, VersionRecord};
use crate::packages::version::Constraint;
use crate::resolve::Resolution;

pub fn params<T: serde::de::DeserializeOwned>(uri: &Uri) -> Result<T, ApiError> {
    Query::<T>::try_from_uri(uri).map(|q| q.0).map_err(|e| ApiError::BadRequest(e.body_text()))
}

pub fn id_param(name: &str, v: &str) -> Result<SnapshotId, ApiError> {
    v.parse().map_err(|e| ApiError::BadRequest(format!("parameter '{name}': {e}")))
}

pub fn cached(st: &AppState, body: Response, immutable: bool) -> Response {
    let mut r = body;
    let v = if immutable { HeaderValue::from_static(IMMUTABLE) } else { st.short_cache() };
    r.headers_mut().insert(header::CACHE_CONTROL, v);
    r
}

/// The archive's id, once its package index covers snapshot `seq` (503 until then).
async fn indexed_through(st: &AppState, archive: &ArchiveName, seq: u64) -> Result<i64, ApiError> {
    let name = archive.clone();
    let p = st.blocking(move |s| s.packages.index_progress(&name)?.ok_or_else(|| ApiError::no_archive(&name))).await?;
    if p.indexed_seq < seq {
        return Err(ApiError::Unavailable {
            message: format!(
                "the package index of '{archive}' is still being built ({} of {} snapshots); try again shortly",
                p.indexed_seq, p.latest_seq
            ),
            retry_after_secs: 5,
        });
    }
    Ok(p.archive_id)
}

fn resolved_json(r: &Resolution) -> serde_json::Value {
    serde_json::json!({ "requested": r.requested, "snapshot": r.snapshot.id, "final": r.is_final })
}

/// `?from=&to=[&suite=][&architecture=][&name=]` of the diff API and page.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiffParams {
    pub from: String,
    pub to: String,
    pub suite: Option<String>,
    pub architecture: Option<String>,
    pub name: Option<String>,
}

/// Two resolved IDs and the package changes between them.
pub struct DiffAnswer {
    pub from: Resolution,
    pub to: Resolution,
    pub changes: Vec<PackageChange>,
}

/// The package changes between two IDs of an archive (O(changes)); the JSON and HTML diffs.
pub async fn diff_between(
    st: &AppState,
    archive: &ArchiveName,
    from: SnapshotId,
    to: SnapshotId,
    filter: DiffFilter,
) -> Result<DiffAnswer, ApiError> {
    let from = resolve(st, archive.clone(), from).await?;
    let to = resolve(st, archive.clone(), to).await?;
    let archive_id = indexed_through(st, archive, from.snapshot.key.seq.max(to.snapshot.key.seq)).await?;
    let (a, b) = (from.snapshot.key.seq, to.snapshot.key.seq);
    let changes = st.blocking(move |s| Ok(query::diff(s, archive_id, a, b, &filter)?)).await?;
    Ok(DiffAnswer { from, to, changes })
}

pub async fn diff(st: &AppState, archive: ArchiveName, uri: &Uri) -> Result<Response, ApiError> {
    let p: DiffParams = params(uri)?;
    let (from, to) = (id_param("from", &p.from)?, id_param("to", &p.to)?);
    let filter = DiffFilter { suite: p.suite, architecture: p.architecture, name: p.name };
    let DiffAnswer { from, to, changes } = diff_between(st, &archive, from, to, filter).await?;
    let body = serde_json::json!({
        "archive": archive,
        "from": resolved_json(&from),
        "to": resolved_json(&to),
        "changes": changes,
    });
    Ok(cached(st, Json(body).into_response(), from.is_final && to.is_final))
}

/// Every version a package (or a source package, with its binaries) ever had.
pub struct History {
    pub versions: Vec<VersionRecord>,
    /// For a source package: the binaries built from it.
    pub binaries: Option<Vec<VersionRecord>>,
}

/// The history of `name`, through the latest snapshot; 404 if it was never in the archive.
pub async fn package_history(
    st: &AppState,
    archive: &ArchiveName,
    name: &str,
    kind: Kind,
) -> Result<History, ApiError> {
    let latest = latest_snapshot(st, archive).await?;
    let archive_id = indexed_through(st, archive, latest.key.seq).await?;
    let n = name.to_string();
    let history = st
        .blocking(move |s| {
            let rows = s.packages.package_rows(archive_id, &n, kind)?;
            let versions = query::history(s, archive_id, rows)?;
            let binaries = match kind {
                Kind::Source => Some(query::history(s, archive_id, s.packages.binaries_of(archive_id, &n)?)?),
                Kind::Binary => None,
            };
            Ok(History { versions, binaries })
        })
        .await?;
    if history.versions.is_empty() {
        let what = if kind == Kind::Source { "source package" } else { "package" };
        return Err(ApiError::NotFound(format!("{what} '{name}' was never in archive '{archive}'")));
    }
    Ok(history)
}

pub async fn history(st: &AppState, archive: ArchiveName, name: &str, kind: Kind) -> Result<Response, ApiError> {
    let History { versions, binaries } = package_history(st, &archive, name, kind).await?;
    let mut body = serde_json::json!({ "archive": archive, "name": name, "versions": versions });
    if let Some(b) = binaries {
        body["binaries"] = serde_json::to_value(b).map_err(ApiError::internal)?;
    }
    // `last_seen` of current versions fills in later: not immutable.
    Ok(cached(st, Json(body).into_response(), false))
}

/// The archive's latest snapshot (404 if it has none).
pub async fn latest_snapshot(st: &AppState, archive: &ArchiveName) -> Result<Snapshot, ApiError> {
    let archive = archive.clone();
    st.blocking(move |s| s.catalog.latest(&archive)?.ok_or_else(|| ApiError::no_archive(&archive))).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FirstParams {
    version: String,
    suite: Option<String>,
    architecture: Option<String>,
}

pub async fn first(st: &AppState, archive: ArchiveName, name: &str, uri: &Uri) -> Result<Response, ApiError> {
    let p: FirstParams = params(uri)?;
    let constraint: Constraint =
        p.version.parse().map_err(|e| ApiError::BadRequest(format!("parameter 'version': {e}")))?;
    let latest = latest_snapshot(st, &archive).await?;
    let archive_id = indexed_through(st, &archive, latest.key.seq).await?;
    let filter = DiffFilter { suite: p.suite, architecture: p.architecture, name: None };
    let (n, c, a) = (name.to_string(), constraint.clone(), archive.clone());
    let found = st
        .blocking(move |s| {
            let Some((seq, row)) = query::first_satisfying(s, archive_id, &n, &c, &filter)? else { return Ok(None) };
            let id = query::SeqIds::new(s, archive_id).id(seq, crate::packages::store::Toward::Later)?;
            Ok(Some((id, row, s.retention.under_retention(&a)?)))
        })
        .await?;
    let Some((id, row, retention)) = found else {
        return Err(ApiError::NotFound(format!("no snapshot of '{archive}' has {name} {constraint}")));
    };
    let body = serde_json::json!({
        "archive": archive,
        "name": name,
        "constraint": constraint.to_string(),
        "snapshot": id,
        "url": format!("/{archive}/{id}/"),
        "version": row.listed.version,
        "suite": row.index.suite,
        "component": row.index.component,
        "architecture": row.index.architecture,
    });
    // The first snapshot with such a version stays the first: history only grows forward,
    // unless retention deletes it (then the first kept one after it is the answer).
    Ok(cached(st, Json(body).into_response(), !retention))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchParams {
    at: String,
    #[serde(default)]
    q: String,
    /// `substring` (default) or `prefix`.
    #[serde(rename = "match")]
    mode: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

/// One page of package names found in a snapshot.
pub struct Found {
    pub at: Resolution,
    pub names: Vec<String>,
    /// More names follow the last one.
    pub more: bool,
}

/// Binary package names in snapshot `at` containing (or, with `prefix`, starting with) `q`,
/// in name order after `cursor`, at most `limit`.
pub async fn search_names(
    st: &AppState,
    archive: &ArchiveName,
    at: SnapshotId,
    q: &str,
    prefix: bool,
    limit: u32,
    cursor: Option<String>,
) -> Result<Found, ApiError> {
    let at = resolve(st, archive.clone(), at).await?;
    let seq = at.snapshot.key.seq;
    let archive_id = indexed_through(st, archive, seq).await?;
    let q = q.to_string();
    let mut names = st
        .blocking(move |s| {
            let mut names = Vec::new();
            let mut after = cursor;
            // Prefix mode filters the substring matches; page until `limit` are found.
            loop {
                let page = s.packages.names_at(archive_id, seq, &q, after.as_deref(), limit + 1)?;
                let done = page.len() <= limit as usize;
                after = page.last().cloned();
                names.extend(page.into_iter().filter(|n| !prefix || n.starts_with(&q)));
                if done || names.len() > limit as usize {
                    return Ok(names);
                }
            }
        })
        .await?;
    let more = names.len() > limit as usize;
    names.truncate(limit as usize);
    Ok(Found { at, names, more })
}

pub async fn search(st: &AppState, archive: ArchiveName, uri: &Uri) -> Result<Response, ApiError> {
    let p: SearchParams = params(uri)?;
    let limit = super::api::page_limit(p.limit)?;
    let prefix = match p.mode.as_deref() {
        None | Some("substring") => false,
        Some("prefix") => true,
        Some(o) => {
            return Err(ApiError::BadRequest(format!("parameter 'match' must be 'substring' or 'prefix', not '{o}'")));
        }
    };
    let at = id_param("at", &p.at)?;
    let Found { at, names, more } = search_names(st, &archive, at, &p.q, prefix, limit, p.cursor).await?;
    let body = serde_json::json!({
        "archive": archive,
        "at": resolved_json(&at),
        "q": p.q,
        "match": if prefix { "prefix" } else { "substring" },
        "packages": names,
        "next_cursor": if more { names.last().cloned() } else { None },
    });
    Ok(cached(st, Json(body).into_response(), at.is_final))
}
