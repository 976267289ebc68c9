//! `asof push`: publishes a local tree to a remote asof over HTTP. Hashes files in parallel,
//! asks which blobs the server lacks, uploads only those (bounded parallelism, retries),
//! then commits a change set against the remote latest snapshot (or a full manifest).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use rayon::prelude::*;
use reqwest::StatusCode;
use serde::Serialize;

use crate::blob::local::hash_file;
use crate::domain::{ArchiveName, RelPath, SnapshotId};
use crate::publish::changes::{Found, Listed, NO_BASE, look};
use crate::publish::{PublishError, ScannedEntry, ScannedKind, TreeError, TreeRoot, scan_tree};
use crate::wire::{CommitRequest, ErrorJson, MissingRequest, MissingResponse, SnapshotJson, WireEntry};

pub struct PushOptions {
    pub server: String,
    pub archive: ArchiveName,
    pub dir: PathBuf,
    pub token: String,
    pub jobs: usize,
    pub retries: u32,
    pub progress: indicatif::ProgressBar,
    /// Push only these paths (`--changes`): see `push_changes`.
    pub changes: Option<Vec<Listed>>,
}

#[derive(Debug, Serialize)]
pub struct PushReport {
    pub archive: ArchiveName,
    pub snapshot: SnapshotId,
    pub base: Option<SnapshotId>,
    pub files: u64,
    pub bytes: u64,
    pub uploaded_files: u64,
    pub uploaded_bytes: u64,
    pub reused_bytes: u64,
    pub duration_ms: u128,
}

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error(transparent)]
    Scan(#[from] crate::publish::ScanError),
    #[error(transparent)]
    Tree(#[from] TreeError),
    #[error("reading {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("server URL {0:?} must start with http:// or https://")]
    BadUrl(String),
    #[error("{what}: {status}: {message}")]
    Server { what: String, status: StatusCode, message: String },
    #[error("{what}: {reason}")]
    Transport { what: String, reason: String },
    #[error("{0} changed while it was being pushed; push again once the tree is stable")]
    Unstable(String),
    #[error("the archive kept moving: {0} attempts to commit against its latest snapshot were overtaken")]
    Overtaken(u32),
    #[error(transparent)]
    Changes(#[from] PublishError),
    #[error(
        "another publish committed while pushing; the change list was relative to {0}: list the changes since the \
         latest snapshot, or push the whole tree"
    )]
    ChangesOvertaken(SnapshotId),
}

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
    archive: ArchiveName,
}

impl Client {
    fn url(&self, path: &str) -> String {
        format!("{}/api/v1/{path}", self.base)
    }

    fn archive_url(&self, action: &str) -> String {
        self.url(&format!("archives/{}/-/{action}", self.archive))
    }

    fn req(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        self.http.request(method, url).bearer_auth(&self.token)
    }
}

async fn error_of(what: &str, resp: reqwest::Response) -> PushError {
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    let message = serde_json::from_str::<ErrorJson>(&text).map(|e| e.error).unwrap_or(text);
    PushError::Server { what: what.to_string(), status, message }
}

fn transport(what: &str, e: reqwest::Error) -> PushError {
    let mut reason = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(cause) = src {
        reason.push_str(&format!(": {cause}"));
        src = cause.source();
    }
    PushError::Transport { what: what.to_string(), reason }
}

pub async fn push(opts: PushOptions) -> Result<PushReport, PushError> {
    let started = Instant::now();
    let base = opts.server.trim_end_matches('/').to_string();
    if !base.starts_with("http://") && !base.starts_with("https://") {
        return Err(PushError::BadUrl(opts.server.clone()));
    }
    let http = reqwest::Client::builder()
        .user_agent(concat!("asof/", env!("CARGO_PKG_VERSION"), " (+push)"))
        .connect_timeout(Duration::from_secs(15))
        .build()
        .map_err(|e| transport("HTTP client", e))?;
    let client = Arc::new(Client { http, base, token: opts.token.clone(), archive: opts.archive.clone() });
    if let Some(listed) = &opts.changes {
        return push_changes(&client, listed, &opts, started).await;
    }

    // 1. Hash the tree locally, in parallel.
    let dir = opts.dir.clone();
    let bar = opts.progress.clone();
    let (root, local) = tokio::task::spawn_blocking(move || hash_tree(&dir, &bar))
        .await
        .map_err(|e| PushError::Transport { what: "hashing".into(), reason: e.to_string() })??;
    let root = Arc::new(root);
    let files = local.len() as u64;
    let bytes: u64 = local.values().map(|e| if let WireEntry::File { size, .. } = e { *size } else { 0 }).sum();

    // 2. Upload what the server lacks.
    let uploaded = upload_missing(&client, &root, local.values(), &opts).await?;

    // 3. Commit: a change set against the remote latest, retried if someone else commits
    //    first; a full manifest when the archive has no snapshot yet.
    const ATTEMPTS: u32 = 5;
    for _ in 0..ATTEMPTS {
        let latest = latest(&client).await?;
        let req = match latest {
            None => CommitRequest {
                base: None,
                manifest: Some(local.values().cloned().collect()),
                upsert: Vec::new(),
                remove: Vec::new(),
                source: Some(source(&opts.dir)),
            },
            Some(id) => {
                let remote = remote_manifest(&client, id).await?;
                let upsert = local.iter().filter(|(p, e)| remote.get(*p) != Some(e)).map(|(_, e)| e.clone()).collect();
                let remove = remote.keys().filter(|p| !local.contains_key(*p)).cloned().collect();
                CommitRequest { base: Some(id), manifest: None, upsert, remove, source: Some(source(&opts.dir)) }
            }
        };
        let resp = client
            .req(reqwest::Method::POST, &client.archive_url("snapshots"))
            .json(&req)
            .send()
            .await
            .map_err(|e| transport("committing", e))?;
        match resp.status() {
            StatusCode::CREATED => {
                let snap: SnapshotJson = resp.json().await.map_err(|e| transport("committing", e))?;
                return Ok(PushReport {
                    archive: opts.archive,
                    snapshot: snap.id,
                    base: req.base,
                    files,
                    bytes,
                    uploaded_files: uploaded.files,
                    uploaded_bytes: uploaded.bytes,
                    reused_bytes: uploaded.reused_bytes,
                    duration_ms: started.elapsed().as_millis(),
                });
            }
            // A 409 either lists missing blobs (final) or says the base moved on: then
            // someone committed in between, and the change set is computed again.
            StatusCode::CONFLICT => {
                let text = resp.text().await.unwrap_or_default();
                let body: Option<ErrorJson> = serde_json::from_str(&text).ok();
                if body.as_ref().is_none_or(|b| !b.missing.is_empty()) {
                    let message = body.map_or(text, |b| b.error);
                    return Err(PushError::Server { what: "committing".into(), status: StatusCode::CONFLICT, message });
                }
                tracing::info!("the archive moved on while pushing; recomputing the change set");
            }
            _ => return Err(error_of("committing", resp).await),
        }
    }
    Err(PushError::Overtaken(ATTEMPTS))
}

/// What the upload step sent and what the server already had.
struct Uploaded {
    files: u64,
    bytes: u64,
    reused_bytes: u64,
}

/// Asks the server which blobs of `entries` it lacks and uploads those, `opts.jobs` at once.
async fn upload_missing(
    client: &Arc<Client>,
    root: &Arc<TreeRoot>,
    entries: impl Iterator<Item = &WireEntry>,
    opts: &PushOptions,
) -> Result<Uploaded, PushError> {
    let mut sizes: HashMap<String, (u64, String)> = HashMap::new();
    for e in entries {
        if let WireEntry::File { path, size, sha256 } = e {
            sizes.entry(sha256.clone()).or_insert((*size, path.clone()));
        }
    }
    let digests: Vec<String> = sizes.keys().cloned().collect();
    let mut missing = Vec::new();
    for chunk in digests.chunks(10_000) {
        let resp = client
            .req(reqwest::Method::POST, &client.url("blobs/missing"))
            .json(&MissingRequest { digests: chunk.to_vec() })
            .send()
            .await
            .map_err(|e| transport("asking for missing blobs", e))?;
        if !resp.status().is_success() {
            return Err(error_of("asking for missing blobs", resp).await);
        }
        let m: MissingResponse = resp.json().await.map_err(|e| transport("asking for missing blobs", e))?;
        missing.extend(m.missing);
    }
    let upload_total: u64 = missing.iter().map(|d| sizes[d].0).sum();
    opts.progress.set_length(upload_total);
    opts.progress.set_position(0);
    opts.progress.set_message(format!("uploading {} blobs", missing.len()));
    let uploaded = Arc::new(AtomicU64::new(0));
    let results: Vec<Result<(), PushError>> = futures::stream::iter(missing.iter().map(|digest| {
        let (size, path) = sizes[digest].clone();
        let (client, root, digest, bar, uploaded) =
            (client.clone(), root.clone(), digest.clone(), opts.progress.clone(), uploaded.clone());
        let retries = opts.retries;
        async move {
            upload(&client, &root, &path, &digest, size, retries).await?;
            uploaded.fetch_add(size, Ordering::Relaxed);
            bar.inc(size);
            Ok(())
        }
    }))
    .buffer_unordered(opts.jobs.max(1))
    .collect()
    .await;
    results.into_iter().collect::<Result<Vec<()>, _>>()?;
    opts.progress.finish_and_clear();
    let bytes = uploaded.load(Ordering::Relaxed);
    Ok(Uploaded {
        files: missing.len() as u64,
        bytes,
        reused_bytes: sizes.values().map(|(s, _)| s).sum::<u64>() - bytes,
    })
}

/// `push --changes`: hashes and uploads only the listed files and commits them as a change
/// set against the remote latest snapshot, never reading the remote manifest. A listed path
/// absent from the tree is sent as removed; the server refuses one it does not have, or one
/// that is a directory there (its files must be listed). Not retried if another publisher
/// commits first: the list said what changed since the snapshot it was made against.
async fn push_changes(
    client: &Arc<Client>,
    listed: &[Listed],
    opts: &PushOptions,
    started: Instant,
) -> Result<PushReport, PushError> {
    let base = latest(client).await?.ok_or_else(|| PublishError::Invalid(NO_BASE.into()))?;
    let (dir, listed_owned, bar) = (opts.dir.clone(), listed.to_vec(), opts.progress.clone());
    let (root, upsert, remove) =
        tokio::task::spawn_blocking(move || hash_listed(&dir, &listed_owned, &bar))
            .await
            .map_err(|e| PushError::Transport { what: "hashing".into(), reason: e.to_string() })??;
    let root = Arc::new(root);
    let uploaded = upload_missing(client, &root, upsert.iter(), opts).await?;
    let req = CommitRequest { base: Some(base), manifest: None, upsert, remove, source: Some(source(&opts.dir)) };
    let resp = client
        .req(reqwest::Method::POST, &client.archive_url("snapshots"))
        .json(&req)
        .send()
        .await
        .map_err(|e| transport("committing", e))?;
    match resp.status() {
        StatusCode::CREATED => {
            let snap: SnapshotJson = resp.json().await.map_err(|e| transport("committing", e))?;
            Ok(PushReport {
                archive: opts.archive.clone(),
                snapshot: snap.id,
                base: Some(base),
                files: snap.files,
                bytes: snap.bytes,
                uploaded_files: uploaded.files,
                uploaded_bytes: uploaded.bytes,
                reused_bytes: uploaded.reused_bytes,
                duration_ms: started.elapsed().as_millis(),
            })
        }
        StatusCode::CONFLICT => {
            let text = resp.text().await.unwrap_or_default();
            match serde_json::from_str::<ErrorJson>(&text) {
                Ok(body) if body.missing.is_empty() => Err(PushError::ChangesOvertaken(base)),
                body => {
                    let message = body.map_or(text, |b| b.error);
                    Err(PushError::Server { what: "committing".into(), status: StatusCode::CONFLICT, message })
                }
            }
        }
        _ => Err(error_of("committing", resp).await),
    }
}

/// Looks at every listed path of the tree under `dir` and hashes the files among them, in
/// parallel: the entries to upsert, and the paths to remove (absent, or now a directory).
fn hash_listed(
    dir: &Path,
    listed: &[Listed],
    bar: &indicatif::ProgressBar,
) -> Result<(TreeRoot, Vec<WireEntry>, Vec<String>), PushError> {
    let root = TreeRoot::open(dir)?;
    let mut cursor = root.cursor();
    let found: Vec<(&Listed, Found)> =
        listed.iter().map(|l| look(&mut cursor, &l.path).map(|f| (l, f))).collect::<Result<_, _>>()?;
    bar.set_length(found.len() as u64);
    bar.set_message(format!("hashing {} listed paths", found.len()));
    let hashed: Vec<Result<WireEntry, String>> = found
        .par_iter()
        .map_init(
            || root.cursor(),
            |cursor, (l, found)| {
                let path = l.path.to_string();
                let entry = match found {
                    Found::File => {
                        let (file, _) = cursor.open_file(&l.path)?;
                        let (digest, size) =
                            hash_file(&file).map_err(|source| PushError::Read { path: path.clone(), source })?;
                        Ok(WireEntry::File { path, size, sha256: digest.hex() })
                    }
                    Found::Symlink(target) => Ok(WireEntry::Symlink { path, target: target.clone() }),
                    Found::Dir | Found::Absent => Err(path),
                };
                bar.inc(1);
                Ok(entry)
            },
        )
        .collect::<Result<_, PushError>>()?;
    let (mut upsert, mut remove) = (Vec::new(), Vec::new());
    for h in hashed {
        match h {
            Ok(e) => upsert.push(e),
            Err(p) => remove.push(p),
        }
    }
    Ok((root, upsert, remove))
}

fn source(dir: &Path) -> serde_json::Value {
    serde_json::json!({ "tree": dir.file_name().map(|n| n.to_string_lossy().into_owned()) })
}

fn hash_tree(dir: &Path, bar: &indicatif::ProgressBar) -> Result<(TreeRoot, BTreeMap<String, WireEntry>), PushError> {
    let scanned = scan_tree(dir)?;
    hash_scanned(dir, &scanned, bar)
}

/// Hashes what `scan_tree(dir)` found, reading files only through the returned `TreeRoot`
/// (never through a symlink, see `publish::tree`), which uploads then use too. Separate
/// from the scan so that a test can change the tree in between.
pub fn hash_scanned(
    dir: &Path,
    scanned: &[ScannedEntry],
    bar: &indicatif::ProgressBar,
) -> Result<(TreeRoot, BTreeMap<String, WireEntry>), PushError> {
    let root = TreeRoot::open(dir)?;
    bar.set_length(scanned.len() as u64);
    bar.set_message(format!("hashing {} files", scanned.len()));
    let entries: Vec<WireEntry> = scanned
        .par_iter()
        .map_init(
            || root.cursor(),
            |cursor, e| match &e.kind {
                ScannedKind::Symlink { target } => {
                    root.check_symlink(&e.path, target)?;
                    Ok(WireEntry::Symlink { path: e.path.to_string(), target: target.clone() })
                }
                ScannedKind::File => {
                    let (file, _) = cursor.open_file(&e.path)?;
                    let (digest, size) =
                        hash_file(&file).map_err(|source| PushError::Read { path: e.path.to_string(), source })?;
                    bar.inc(1);
                    Ok(WireEntry::File { path: e.path.to_string(), size, sha256: digest.hex() })
                }
            },
        )
        .collect::<Result<_, PushError>>()?;
    Ok((root, entries.into_iter().map(|e| (e.path().to_string(), e)).collect()))
}

async fn latest(client: &Client) -> Result<Option<SnapshotId>, PushError> {
    let resp = client
        .req(reqwest::Method::GET, &client.archive_url("latest"))
        .send()
        .await
        .map_err(|e| transport("reading the latest snapshot", e))?;
    match resp.status() {
        StatusCode::NOT_FOUND => Ok(None),
        s if s.is_success() => {
            let snap: SnapshotJson = resp.json().await.map_err(|e| transport("reading the latest snapshot", e))?;
            Ok(Some(snap.id))
        }
        _ => Err(error_of("reading the latest snapshot", resp).await),
    }
}

async fn remote_manifest(client: &Client, id: SnapshotId) -> Result<BTreeMap<String, WireEntry>, PushError> {
    let what = format!("reading the manifest of {id}");
    let resp = client
        .req(reqwest::Method::GET, &client.archive_url(&format!("snapshots/{id}/manifest")))
        .send()
        .await
        .map_err(|e| transport(&what, e))?;
    if !resp.status().is_success() {
        return Err(error_of(&what, resp).await);
    }
    let body = resp.bytes().await.map_err(|e| transport(&what, e))?;
    let mut out = BTreeMap::new();
    for line in body.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let e: WireEntry = serde_json::from_slice(line)
            .map_err(|err| PushError::Transport { what: what.clone(), reason: format!("bad manifest line: {err}") })?;
        out.insert(e.path().to_string(), e);
    }
    Ok(out)
}

async fn upload(
    client: &Client,
    root: &Arc<TreeRoot>,
    path: &str,
    digest: &str,
    size: u64,
    retries: u32,
) -> Result<(), PushError> {
    let what = format!("uploading {path}");
    let mut last = String::new();
    for attempt in 0..=retries {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(250 << attempt.min(6))).await;
        }
        let f = open_in_tree(root, path).await?;
        let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(f));
        let result = client
            .req(reqwest::Method::PUT, &client.url(&format!("blobs/{digest}")))
            .header(reqwest::header::CONTENT_LENGTH, size)
            .body(body)
            .send()
            .await;
        match result {
            Ok(r) if r.status().is_success() => return Ok(()),
            // The server hashed something else than we did: the file changed under us.
            Ok(r) if r.status() == StatusCode::BAD_REQUEST => {
                let err = error_of(&what, r).await;
                tracing::warn!("{err}");
                return Err(PushError::Unstable(path.to_string()));
            }
            Ok(r) if r.status().is_server_error() || r.status() == StatusCode::TOO_MANY_REQUESTS => {
                last = format!("HTTP {}", r.status());
            }
            Ok(r) => return Err(error_of(&what, r).await),
            Err(e) => last = transport(&what, e).to_string(),
        }
    }
    Err(PushError::Transport { what, reason: format!("gave up after {} attempts: {last}", retries + 1) })
}

/// Opens a file of the pushed tree on the blocking pool, as hashing did (no symlinks).
async fn open_in_tree(root: &Arc<TreeRoot>, path: &str) -> Result<tokio::fs::File, PushError> {
    let rel = RelPath::new(path)
        .map_err(|e| PushError::Read { path: path.into(), source: std::io::Error::other(e.to_string()) })?;
    let root = root.clone();
    let (file, _) = tokio::task::spawn_blocking(move || root.open_file(&rel))
        .await
        .map_err(|e| PushError::Read { path: path.into(), source: std::io::Error::other(e) })??;
    Ok(tokio::fs::File::from_std(file))
}
