//! `GET /<archive>/<ID>/<path>`: a file as it was at ID, with the caching, conditional and
//! range semantics apt relies on; directories become listings. The live path
//! (`/<archive>/<path>`, the latest snapshot) is served here too, with other cache headers.

use std::io::{Read, Seek, SeekFrom};
use std::time::{Instant, SystemTime};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;

use super::error::ApiError;
use super::{AppState, hot, listing, stream};
use crate::catalog::Entry;
use crate::domain::{ArchiveName, Digest, RelPath, SnapshotId};
use crate::manifest::Content;
use crate::resolve::{
    PathError, Releases, Resolution, Resolved, TimeError, latest_in_view, resolve_id, resolve_in_view, resolve_latest,
    resolve_path,
};

pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

impl From<PathError> for ApiError {
    fn from(e: PathError) -> Self {
        match e {
            PathError::Catalog(c) => c.into(),
            PathError::Release(io) => ApiError::internal(io),
        }
    }
}

impl From<TimeError> for ApiError {
    fn from(e: TimeError) -> Self {
        match e {
            TimeError::Catalog(c) => ApiError::internal(c),
            deleted @ TimeError::Deleted { .. } => ApiError::Gone(deleted.to_string()),
            other => ApiError::NotFound(other.to_string()),
        }
    }
}

/// Resolves an ID for an archive on the blocking pool.
pub async fn resolve(st: &AppState, archive: ArchiveName, id: SnapshotId) -> Result<Resolution, ApiError> {
    st.blocking(move |s| Ok(resolve_id(s.catalog.as_ref(), &archive, id, SnapshotId::now())?)).await
}

/// Which snapshot of an archive a request names.
#[derive(Debug, Clone, Copy)]
pub enum At {
    /// `/<archive>/<ID>/...`: the floor of ID.
    Id(SnapshotId),
    /// `/<archive>/<path>`: the latest snapshot, whatever it is when asked.
    Latest,
}

pub async fn in_snapshot(
    st: &AppState,
    method: &Method,
    headers: &HeaderMap,
    query: Option<&str>,
    archive: ArchiveName,
    at: At,
    path: Option<RelPath>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let hot_key = hot_key(headers, query, &archive, at, path.as_ref());
    let ticket = if hot_key.is_some() { st.hot.ticket(st).await? } else { None };
    if let (Some(key), Some(ticket)) = (&hot_key, ticket)
        && let Some(answer) = st.hot.answer(ticket, key)
    {
        st.metrics.lookup_seconds.observe(started.elapsed().as_secs_f64());
        st.metrics.memory_answer_hits.inc();
        let served = Served { ticket, known_present: true };
        return file_response(st, method, headers, &answer.file, Some(served)).await;
    }
    let creds = super::access::credentials(headers);
    let metrics = st.metrics.clone();
    let cache = st.releases.clone();
    let requested = path.clone();
    let (res, found) = st
        .blocking(move |s| {
            super::access::check_read(s, &metrics, &archive, creds.as_deref())?;
            let catalog = s.catalog.as_ref();
            let releases = Releases { blobs: s.blobs.as_ref(), cache: &cache };
            let (res, direct) = resolve_with_entry(catalog, &archive, at, path.as_ref())?;
            // A path that names nothing is still a lookup done (and timed); only after
            // that is it an error.
            let found = match &path {
                None => Ok(Resolved::Dir(None)),
                Some(p) => match direct
                    .map_or_else(|| resolve_path(catalog, releases, res.snapshot.key, p), |e| Ok(Some(e)))?
                {
                    Some(found) => crate::takedown::screen(s.takedowns.as_ref(), res.snapshot.key, p, found)?
                        .map_err(|hit| ApiError::taken_down(p, hit)),
                    None => Err(not_found(catalog, releases, &res, p)?),
                },
            };
            Ok((res, found))
        })
        .await?;
    st.metrics.lookup_seconds.observe(started.elapsed().as_secs_f64());
    match found? {
        Resolved::File(entry) => {
            let entry = super::signing::variant(st, headers, query, &res, requested.as_ref(), entry).await?;
            let served = ticket.map(|ticket| Served { ticket, known_present: false });
            let file = describe(st, &res, &entry)?;
            let resp = file_response(st, method, headers, &file, served).await?;
            // Only answers that found the blob present are kept (a 304 or 416 did not look).
            let checked = matches!(resp.status(), StatusCode::OK | StatusCode::PARTIAL_CONTENT);
            if let (Some(key), Some(ticket)) = (hot_key, ticket)
                && res.is_final
                && checked
            {
                st.hot.remember(key, hot::Answer { generation: ticket.generation, file });
            }
            Ok(resp)
        }
        Resolved::Dir(dir) => listing::snapshot_dir(st, headers, &res, dir).await,
    }
}

/// The resolution of `at` and, for the common request (a path stored as a plain file), its
/// entry, from one consistent catalog read; `None` when the path needs `resolve_path`
/// (symlinks, by-hash, directories, missing).
fn resolve_with_entry(
    catalog: &dyn crate::catalog::Catalog,
    archive: &ArchiveName,
    at: At,
    path: Option<&RelPath>,
) -> Result<(Resolution, Option<Resolved>), ApiError> {
    let Some(path) = path else {
        let res = match at {
            At::Id(id) => resolve_id(catalog, archive, id, SnapshotId::now())?,
            At::Latest => resolve_latest(catalog, archive)?,
        };
        return Ok((res, None));
    };
    let requested = match at {
        At::Id(id) => Some(id),
        At::Latest => None,
    };
    let read = catalog.read_file(archive, requested, path)?;
    let res = match requested {
        Some(id) => resolve_in_view(read.view, archive, id, SnapshotId::now())?,
        None => latest_in_view(read.view, archive)?,
    };
    let file = read.entry.filter(|e| matches!(e.content, Content::File { .. }));
    Ok((res, file.map(Resolved::File)))
}

/// The memory cache's key for a request that may be answered from it: anonymous (a token
/// can see private archives, and its answers are marked private), with an ID (the live path
/// is never final) and a path. Host and query are part of it: they choose a re-signed
/// Release's variant.
fn hot_key(
    headers: &HeaderMap,
    query: Option<&str>,
    archive: &ArchiveName,
    at: At,
    path: Option<&RelPath>,
) -> Option<String> {
    let (At::Id(id), Some(path)) = (at, path) else { return None };
    if headers.contains_key(header::AUTHORIZATION) {
        return None;
    }
    let host = headers.get(header::HOST).map(|h| String::from_utf8_lossy(h.as_bytes()));
    Some(format!("{archive}\0{id}\0{path}\0{}\0{}", query.unwrap_or_default(), host.unwrap_or_default()))
}

/// How a file answer relates to the memory cache.
#[derive(Clone, Copy)]
struct Served {
    ticket: hot::Ticket,
    /// The answer came from the cache, so its blob was present when it was kept (and
    /// quarantining or purging it since would have dropped it).
    known_present: bool,
}

/// Why `path` names nothing in the resolved snapshot. On the live path, a first segment
/// that is not even at the top of the latest snapshot was more likely meant as an ID
/// (`/debian/stable/Release`): that is what the answer says, as it did before the live path.
fn not_found(
    catalog: &dyn crate::catalog::Catalog,
    releases: Releases<'_>,
    res: &Resolution,
    path: &RelPath,
) -> Result<ApiError, PathError> {
    let archive = &res.snapshot.archive;
    if !res.live {
        let (requested, id) = (res.requested, res.snapshot.id);
        return Ok(ApiError::NotFound(format!("{path} does not exist in {archive}/{requested} (snapshot {id})")));
    }
    let first = path.as_str().split('/').next().unwrap_or_default();
    let first = RelPath::new(first).expect("a segment of a valid path is valid");
    if first == *path || resolve_path(catalog, releases, res.snapshot.key, &first)?.is_none() {
        return Ok(listing::not_an_id(first.as_str(), archive));
    }
    Ok(ApiError::NotFound(format!("{path} does not exist in {archive} (latest snapshot {})", res.snapshot.id)))
}

/// Headers every answer about a snapshot carries: which snapshot, and how long to cache.
pub fn snapshot_headers(st: &AppState, res: &Resolution) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("x-asof-snapshot", HeaderValue::from_str(&res.snapshot.id.to_string()).expect("ascii"));
    let cache = match (res.live, res.is_final) {
        (true, _) => st.live_cache(),
        (false, true) => HeaderValue::from_static(IMMUTABLE),
        (false, false) => st.short_cache(),
    };
    h.insert(header::CACHE_CONTROL, cache);
    h
}

/// What a file answer says before the request's conditions and range are looked at, its
/// header values made: kept in the memory cache, so that a repeated request formats none.
/// Compact (a few hundred bytes), as tens of thousands are kept.
pub struct FileAnswer {
    snapshot: HeaderValue,
    cache_control: HeaderValue,
    etag: HeaderValue,
    last_modified: HeaderValue,
    content_type: &'static str,
    modified: SystemTime,
    size: u64,
    sha256: Digest,
}

impl FileAnswer {
    fn headers(&self) -> HeaderMap {
        let mut h = HeaderMap::with_capacity(12);
        h.insert("x-asof-snapshot", self.snapshot.clone());
        h.insert(header::CACHE_CONTROL, self.cache_control.clone());
        h.insert(header::ETAG, self.etag.clone());
        h.insert(header::LAST_MODIFIED, self.last_modified.clone());
        h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(self.content_type));
        // Published bytes are the publisher's, not ours: a browser must neither guess a more
        // active type for them nor run them with this origin's rights (an .html or .svg file
        // would otherwise script the service's pages and API).
        h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("sandbox"));
        h
    }
}

fn describe(st: &AppState, res: &Resolution, entry: &Entry) -> Result<FileAnswer, ApiError> {
    let Content::File { size, sha256 } = entry.content else {
        return Err(ApiError::internal(anyhow::anyhow!("resolved a non-file as a file")));
    };
    let mut snapshot = snapshot_headers(st, res);
    let modified: SystemTime = entry.since.datetime().into();
    Ok(FileAnswer {
        snapshot: snapshot.remove("x-asof-snapshot").expect("always set"),
        cache_control: snapshot.remove(header::CACHE_CONTROL).expect("always set"),
        etag: HeaderValue::from_str(&format!("\"{}\"", sha256.hex())).expect("hex is ascii"),
        last_modified: HeaderValue::from_str(&httpdate::fmt_http_date(modified)).expect("ascii"),
        content_type: content_type(entry.path.file_name()),
        modified,
        size,
        sha256,
    })
}

async fn file_response(
    st: &AppState,
    method: &Method,
    req: &HeaderMap,
    file: &FileAnswer,
    served: Option<Served>,
) -> Result<Response, ApiError> {
    let (last_modified, size, sha256) = (file.modified, file.size, file.sha256);
    let etag = file.etag.to_str().expect("made from hex");
    let mut headers = file.headers();
    if not_modified(req, etag, last_modified) {
        return Ok(with_headers(StatusCode::NOT_MODIFIED, headers, Body::empty()));
    }
    let (status, start, len) = match decide_range(req, etag, last_modified, size) {
        RangeDecision::Full => (StatusCode::OK, 0, size),
        RangeDecision::Partial { start, end } => {
            let v = format!("bytes {start}-{end}/{size}");
            headers.insert(header::CONTENT_RANGE, HeaderValue::from_str(&v).expect("ascii"));
            (StatusCode::PARTIAL_CONTENT, start, end - start + 1)
        }
        RangeDecision::Unsatisfiable => {
            let v = format!("bytes */{size}");
            headers.insert(header::CONTENT_RANGE, HeaderValue::from_str(&v).expect("ascii"));
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(0));
            return Ok(with_headers(StatusCode::RANGE_NOT_SATISFIABLE, headers, Body::empty()));
        }
    };
    if method == Method::GET
        && status == StatusCode::OK
        && let Some(redirect) = presigned_redirect(st, &sha256, size, &headers).await?
    {
        return Ok(redirect);
    }
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if method == Method::HEAD {
        if !served.is_some_and(|s| s.known_present) {
            st.blocking(move |s| crate::scrub::web::head_check(s, &sha256)).await?;
        }
        return Ok(with_headers(status, headers, Body::empty()));
    }
    let body = match open_at(st, served.map(|s| s.ticket), sha256, size, start, len).await? {
        Opened::Whole(bytes) => {
            st.metrics.bytes_served.inc_by(bytes.len() as u64);
            Body::from(bytes)
        }
        Opened::Mapped(file) => stream::body_from_file(file, start, len, st.metrics.clone()),
        Opened::Stream(bytes) => stream::body_from_stream(bytes, st.metrics.clone()),
    };
    Ok(with_headers(status, headers, body))
}

enum Opened {
    /// Small enough to be one chunk: read with the open (or kept in memory), sent in one write.
    Whole(Bytes),
    /// A large file of a backend with local files: sent from memory maps.
    Mapped(std::fs::File),
    /// A blob of a network store, or one without local files.
    Stream(crate::blob::ByteStream),
}

/// The bytes `start..start + len` of a blob of `size` bytes. A file small enough for the
/// memory cache is read whole and kept (when the request may use the cache), whatever range
/// was asked.
async fn open_at(
    st: &AppState,
    ticket: Option<hot::Ticket>,
    digest: Digest,
    size: u64,
    start: u64,
    len: u64,
) -> Result<Opened, ApiError> {
    let range = start as usize..(start + len) as usize;
    if let Some(t) = ticket
        && let Some(bytes) = st.hot.file(t, &digest)
    {
        st.metrics.memory_file_hits.inc();
        return Ok(Opened::Whole(bytes.slice(range)));
    }
    let keep = ticket.filter(|_| size <= st.hot.max_file);
    let (from, count) = if keep.is_some() { (0, size) } else { (start, len) };
    let in_one_piece = keep.is_some() || len <= stream::CHUNK;
    let opened = if st.store.blobs.has_local_files() {
        open_local_at(st, digest, from, count, in_one_piece).await?
    } else {
        open_remote_at(st, digest, from, count, in_one_piece).await?
    };
    match (opened, keep) {
        (Opened::Whole(bytes), Some(t)) => {
            st.hot.remember_file(t.generation, digest, bytes.clone());
            Ok(Opened::Whole(bytes.slice(range)))
        }
        (opened, _) => Ok(opened),
    }
}

/// A redirect of a large whole-file download to a presigned URL of the blob store, when
/// configured and the store can sign one. Cacheable for half the URL's life at most, and
/// privately: the URL grants access on its own.
async fn presigned_redirect(
    st: &AppState,
    digest: &Digest,
    size: u64,
    answer: &HeaderMap,
) -> Result<Option<Response>, ApiError> {
    let Some(over) = st.options.redirect_downloads_over else { return Ok(None) };
    if size < over {
        return Ok(None);
    }
    let ttl = st.options.redirect_ttl;
    let Some(url) = st.store.blobs.presign(digest, ttl).await? else { return Ok(None) };
    let mut headers = HeaderMap::with_capacity(4);
    for name in ["x-asof-snapshot", "etag"] {
        if let Some(v) = answer.get(name) {
            headers.insert(name, v.clone());
        }
    }
    let location = HeaderValue::from_str(&url).map_err(ApiError::internal)?;
    headers.insert(header::LOCATION, location);
    let cache = format!("private, max-age={}", ttl.as_secs() / 2);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_str(&cache).expect("ascii"));
    st.metrics.redirects.inc();
    Ok(Some(with_headers(StatusCode::FOUND, headers, Body::empty())))
}

/// A blob of this machine's store, in one hop to the blocking pool: mapped when large,
/// else read whole.
async fn open_local_at(
    st: &AppState,
    digest: Digest,
    from: u64,
    count: u64,
    in_one_piece: bool,
) -> Result<Opened, ApiError> {
    st.blocking(move |s| {
        if !in_one_piece && let Some(file) = s.blobs.blocking().open_local(&digest)? {
            return Ok(Opened::Mapped(file));
        }
        // A quarantined blob (found bad by a scrub) answers 503 with when and why.
        let Some(mut blob) = s.blobs.blocking().open(&digest)? else {
            return Err(crate::scrub::web::absent(s, &digest)?);
        };
        blob.reader.seek(SeekFrom::Start(from))?;
        let mut buf = vec![0u8; count as usize];
        blob.reader.read_exact(&mut buf)?;
        Ok(Opened::Whole(Bytes::from(buf)))
    })
    .await
}

/// A blob of a network store, streamed as it arrives without a thread waiting on it.
async fn open_remote_at(
    st: &AppState,
    digest: Digest,
    from: u64,
    count: u64,
    in_one_piece: bool,
) -> Result<Opened, ApiError> {
    let Some(bytes) = st.store.blobs.get_range(&digest, from..from + count).await? else {
        return Err(st.blocking(move |s| Err(crate::scrub::web::absent(s, &digest)?)).await?);
    };
    if in_one_piece {
        return Ok(Opened::Whole(Bytes::from(crate::blob::stream::collect(bytes).await?)));
    }
    Ok(Opened::Stream(bytes))
}

fn with_headers(status: StatusCode, headers: HeaderMap, body: Body) -> Response {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    *resp.headers_mut() = headers;
    resp
}

/// The value of a header that must appear once; `None` if absent or repeated (RFC 9110
/// says to ignore If-Modified-Since and Range then).
fn single<'a>(req: &'a HeaderMap, name: &header::HeaderName) -> Option<&'a str> {
    let mut all = req.get_all(name).iter();
    let first = all.next()?;
    if all.next().is_some() {
        return None;
    }
    first.to_str().ok()
}

/// RFC 9110 §13.2.2: If-None-Match wins over If-Modified-Since when both are present.
fn not_modified(req: &HeaderMap, etag: &str, last_modified: SystemTime) -> bool {
    if req.contains_key(header::IF_NONE_MATCH) {
        // A list header: its lines combine.
        return req
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .any(|t| t == "*" || t.trim_start_matches("W/") == etag);
    }
    if let Some(ims) = single(req, &header::IF_MODIFIED_SINCE)
        && let Ok(since) = httpdate::parse_http_date(ims)
    {
        return last_modified <= since;
    }
    false
}

#[derive(Debug, PartialEq, Eq)]
enum RangeDecision {
    Full,
    Partial { start: u64, end: u64 },
    Unsatisfiable,
}

fn decide_range(req: &HeaderMap, etag: &str, last_modified: SystemTime, size: u64) -> RangeDecision {
    let Some(range) = single(req, &header::RANGE) else {
        return RangeDecision::Full;
    };
    if req.get_all(header::IF_RANGE).iter().count() > 1 {
        return RangeDecision::Full;
    }
    if let Some(if_range) = single(req, &header::IF_RANGE) {
        // A validator that no longer matches means "send me the whole new thing".
        let matches = if if_range.starts_with('"') {
            if_range == etag
        } else {
            httpdate::parse_http_date(if_range).is_ok_and(|t| t == last_modified)
        };
        if !matches {
            return RangeDecision::Full;
        }
    }
    // Syntactically invalid ranges are ignored (RFC 9110 §14.2).
    let Ok(parsed) = http_range_header::parse_range_header(range) else {
        return RangeDecision::Full;
    };
    match parsed.validate(size) {
        Ok(ranges) if ranges.len() == 1 => RangeDecision::Partial { start: *ranges[0].start(), end: *ranges[0].end() },
        // Multipart answers are allowed to be skipped: send the whole file.
        Ok(_) => RangeDecision::Full,
        Err(_) => RangeDecision::Unsatisfiable,
    }
}

fn content_type(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map(|(_, e)| e);
    match ext {
        Some("deb" | "udeb" | "ddeb") => "application/vnd.debian.binary-package",
        Some("gz") => "application/gzip",
        Some("xz") => "application/x-xz",
        Some("bz2") => "application/x-bzip2",
        Some("zst") => "application/zstd",
        Some("gpg" | "asc" | "sig") => "application/pgp-signature",
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("json") => "application/json",
        Some("txt" | "dsc" | "changes" | "diff") => "text/plain; charset=utf-8",
        None if matches!(name, "Release" | "InRelease" | "Packages" | "Sources" | "Index")
            || name.starts_with("Translation-") =>
        {
            "text/plain; charset=utf-8"
        }
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdrs(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (k.clone(), HeaderValue::from_str(v).unwrap())).collect()
    }

    #[test]
    fn ranges() {
        let t = SystemTime::UNIX_EPOCH;
        let e = "\"abc\"";
        assert_eq!(
            decide_range(&hdrs(&[(header::RANGE, "bytes=2-")]), e, t, 10),
            RangeDecision::Partial { start: 2, end: 9 }
        );
        assert_eq!(
            decide_range(&hdrs(&[(header::RANGE, "bytes=-3")]), e, t, 10),
            RangeDecision::Partial { start: 7, end: 9 }
        );
        assert_eq!(decide_range(&hdrs(&[(header::RANGE, "bytes=10-")]), e, t, 10), RangeDecision::Unsatisfiable);
        assert_eq!(decide_range(&hdrs(&[(header::RANGE, "bytes=0-1,4-5")]), e, t, 10), RangeDecision::Full);
        assert_eq!(decide_range(&hdrs(&[(header::RANGE, "pages=1")]), e, t, 10), RangeDecision::Full);
        let stale = hdrs(&[(header::RANGE, "bytes=2-"), (header::IF_RANGE, "\"other\"")]);
        assert_eq!(decide_range(&stale, e, t, 10), RangeDecision::Full);
        let fresh = hdrs(&[(header::RANGE, "bytes=2-"), (header::IF_RANGE, e)]);
        assert_eq!(decide_range(&fresh, e, t, 10), RangeDecision::Partial { start: 2, end: 9 });
        let mut twice = hdrs(&[(header::RANGE, "bytes=2-")]);
        twice.append(header::RANGE, HeaderValue::from_static("bytes=3-"));
        assert_eq!(decide_range(&twice, e, t, 10), RangeDecision::Full);
    }

    #[test]
    fn if_none_match_lines_combine() {
        let t = SystemTime::UNIX_EPOCH;
        let mut h = hdrs(&[(header::IF_NONE_MATCH, "\"x\"")]);
        h.append(header::IF_NONE_MATCH, HeaderValue::from_static("\"abc\""));
        assert!(not_modified(&h, "\"abc\"", t));
        let mut ims = hdrs(&[(header::IF_MODIFIED_SINCE, "Thu, 01 Jan 2099 00:00:00 GMT")]);
        assert!(not_modified(&ims, "\"abc\"", t));
        ims.append(header::IF_MODIFIED_SINCE, HeaderValue::from_static("Thu, 01 Jan 2099 00:00:00 GMT"));
        assert!(!not_modified(&ims, "\"abc\"", t), "repeated If-Modified-Since is ignored");
    }
}
