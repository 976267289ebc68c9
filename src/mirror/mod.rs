//! Mirroring an upstream apt archive: every run fetches the signed Release files, the
//! chosen indices and the pool files they reference (only those not stored yet), checks
//! every byte against the signed checksums, and commits one snapshot, or nothing at all.

pub mod deb822;
pub mod fetch;
pub mod index;
mod plan;
pub mod release;
pub mod schedule;
pub mod scope;
pub mod signature;
mod suite;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use futures::StreamExt;
use serde::Serialize;

use fetch::Fetched;
pub use fetch::{FetchError, Fetcher};
use index::{IndexError, IndexKind, PoolFile, collect_pool_files, decode_rank, decoder};
pub use plan::{DryRun, PlannedFile, dry_run};
use release::{ReleaseError, index_base};
pub use scope::{Languages, MirrorScope};
use signature::{Gpgv, Keyring, SignatureError};
use suite::{SuiteState, fetch_suite, scope_json};

use crate::domain::{ArchiveName, Digest, RelPath, SnapshotId};
use crate::manifest::{Content, ManifestEntry};
use crate::publish::{NoProgress, PublishError, PublishOptions, commit_manifest};
use crate::store::Store;

/// What to mirror: one upstream archive, some suites, components and architectures.
#[derive(Debug, Clone)]
pub struct MirrorSpec {
    pub archive: ArchiveName,
    /// Base URL of the upstream archive (the directory holding `dists/` and `pool/`).
    pub upstream: String,
    pub suites: Vec<String>,
    /// Empty: every component the Release file lists.
    pub components: Vec<String>,
    /// Empty: every architecture the Release file lists.
    pub architectures: Vec<String>,
    /// Which kinds of Release entries to keep besides the binary package indices.
    pub scope: MirrorScope,
    pub keyring: Option<PathBuf>,
    pub insecure_skip_signature: bool,
    /// Record a snapshot without the files the Release lists but upstream does not have
    /// (404), instead of failing the run so that the next one retries them.
    pub allow_missing: bool,
}

pub struct MirrorOptions {
    /// Make a snapshot even when the upstream Release files have not changed.
    pub always: bool,
    /// Downloads in flight at once.
    pub jobs: usize,
    /// A progress bar (hidden when not on a terminal).
    pub progress: indicatif::ProgressBar,
    /// Where partial downloads wait to be resumed.
    pub partial_dir: PathBuf,
    pub retries: u32,
    pub backoff: std::time::Duration,
    /// The signature verifier (`ASOF_GPGV` or `gpgv`, one-minute limit).
    pub gpgv: Gpgv,
}

impl MirrorOptions {
    pub fn for_data_dir(data: &Path) -> Self {
        Self {
            always: false,
            jobs: 8,
            progress: indicatif::ProgressBar::hidden(),
            partial_dir: data.join("partial"),
            retries: 5,
            backoff: std::time::Duration::from_millis(500),
            gpgv: Gpgv::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct MirrorReport {
    pub archive: ArchiveName,
    pub snapshot: SnapshotId,
    /// True when upstream had not changed and no snapshot was made.
    pub unchanged: bool,
    pub files: u64,
    pub bytes: u64,
    pub downloaded_files: u64,
    pub downloaded_bytes: u64,
    pub reused_files: u64,
    pub reused_bytes: u64,
    pub requests: u64,
    pub retries: u64,
    pub signature: String,
    /// Files the Release lists that upstream did not have (only with `allow_missing`).
    pub missing: Vec<RelPath>,
    /// Release files left out because their signature did not verify.
    pub warnings: Vec<String>,
    pub duration_ms: u128,
}

#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    #[error("{0}")]
    Config(String),
    #[error("another mirror run of '{0}' is in progress")]
    Locked(ArchiveName),
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("suite {suite}: neither InRelease nor Release exists at {url}")]
    NoRelease { suite: String, url: String },
    #[error("suite {suite}: {file} refused: {source}")]
    Signature { suite: String, file: &'static str, source: SignatureError },
    #[error("suite {suite}: Release file: {source}")]
    Release { suite: String, source: ReleaseError },
    #[error("suite {suite}: {reason}")]
    Selection { suite: String, reason: String },
    #[error("{index}: {source}")]
    Index { index: String, source: IndexError },
    #[error("{}", missing_message(.0))]
    Missing(Vec<RelPath>),
    #[error("{path} would hold two different files (an index and a pool file collide)")]
    Collision { path: RelPath },
    #[error("storing: {0}")]
    Store(String),
    #[error(transparent)]
    Publish(#[from] PublishError),
}

fn missing_message(files: &[RelPath]) -> String {
    let count = if files.len() == 1 { "1 file".to_string() } else { format!("{} files", files.len()) };
    let list: String = files.iter().map(|f| format!("\n  {f}")).collect();
    format!(
        "{count} listed upstream could not be found there (404); no snapshot was made, so the next run retries them (--allow-missing records a snapshot without them):{list}"
    )
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, MirrorError> + Send + 'static,
) -> Result<T, MirrorError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| MirrorError::Store(e.to_string()))?
}

/// Drops what it holds on the blocking pool (deleting a keyring's temp directory is file
/// system work).
struct DropOffThread<T: Send + 'static>(Option<T>);

impl<T: Send + 'static> Drop for DropOffThread<T> {
    fn drop(&mut self) {
        if let (Some(value), Ok(rt)) = (self.0.take(), tokio::runtime::Handle::try_current()) {
            rt.spawn_blocking(move || drop(value));
        }
    }
}

async fn store_bytes(store: &Store, bytes: Vec<u8>) -> Result<Digest, MirrorError> {
    let store = store.clone();
    blocking(move || {
        store
            .blobs
            .blocking()
            .put(&mut bytes.as_slice(), None, None)
            .map(|o| o.digest)
            .map_err(|e| MirrorError::Store(e.to_string()))
    })
    .await
}

/// One index variant and what fetching it gave (`None`: 404 upstream).
type IndexFetch = (RelPath, u64, Digest, Result<Option<Fetched>, FetchError>);

/// The part of a run before anything is stored: Release files fetched and verified.
struct Prepared {
    upstream: String,
    fetcher: Fetcher,
    suites: Vec<SuiteState>,
    signature: String,
    warnings: Vec<String>,
}

async fn load_keyring(spec: &MirrorSpec, gpgv: &Gpgv) -> Result<Option<Arc<Keyring>>, MirrorError> {
    match (&spec.keyring, spec.insecure_skip_signature) {
        (_, true) => {
            tracing::warn!(archive = %spec.archive, "SIGNATURE CHECK DISABLED (--insecure-skip-signature): the snapshot records it");
            Ok(None)
        }
        (Some(path), false) => {
            let (path, gpgv) = (path.clone(), gpgv.clone());
            let keyring = blocking(move || {
                Keyring::load(&path, gpgv).map_err(|source| MirrorError::Signature {
                    suite: "-".into(),
                    file: "keyring",
                    source,
                })
            })
            .await?;
            Ok(Some(Arc::new(keyring)))
        }
        (None, false) => Err(MirrorError::Config(
            "a keyring is required to verify upstream signatures (or --insecure-skip-signature)".into(),
        )),
    }
}

async fn prepare(spec: &MirrorSpec, opts: &MirrorOptions) -> Result<Prepared, MirrorError> {
    let upstream = normalize_upstream(&spec.upstream)?;
    if spec.suites.is_empty() {
        return Err(MirrorError::Config("at least one suite is needed".into()));
    }
    // Dropping the keyring deletes its temp directory.
    let keyring = DropOffThread(load_keyring(spec, &opts.gpgv).await?);
    // Building the HTTP client may read the system's CA certificates.
    let partial_dir = opts.partial_dir.clone();
    let mut fetcher = blocking(move || Ok(Fetcher::new(partial_dir)?)).await?;
    fetcher.retries = opts.retries;
    fetcher.backoff = opts.backoff;
    opts.progress.set_message("fetching Release files");
    let mut suites = Vec::new();
    let (mut fingerprints, mut warnings) = (Vec::new(), Vec::new());
    for suite in &spec.suites {
        let state = fetch_suite(&fetcher, &upstream, suite, spec, keyring.0.as_ref()).await?;
        fingerprints.extend(state.fingerprints.iter().cloned());
        warnings.extend(state.warnings.iter().cloned());
        suites.push(state);
    }
    fingerprints.sort();
    fingerprints.dedup();
    let signature = if keyring.0.is_some() {
        format!("verified ({})", fingerprints.join(", "))
    } else {
        "NOT VERIFIED (--insecure-skip-signature)".into()
    };
    Ok(Prepared { upstream, fetcher, suites, signature, warnings })
}

/// The latest snapshot when it already holds exactly these Release files and was made with
/// this selection and without missing files (those are retried).
async fn unchanged_snapshot(
    store: &Store,
    spec: &MirrorSpec,
    suites: &[SuiteState],
) -> Result<Option<crate::catalog::Snapshot>, MirrorError> {
    let (store, archive) = (store.clone(), spec.archive.clone());
    let identities: Vec<(RelPath, Digest)> =
        suites.iter().flat_map(|s| s.release_files.iter().map(|(p, b)| (p.clone(), Digest::of(b)))).collect();
    let selection = [
        ("components", serde_json::json!(spec.components)),
        ("architectures", serde_json::json!(spec.architectures)),
        ("scope", scope_json(&spec.scope)),
    ];
    blocking(move || {
        let store_err = |e: crate::catalog::CatalogError| MirrorError::Store(e.to_string());
        let Some(latest) = store.catalog.latest(&archive).map_err(store_err)? else {
            return Ok(None);
        };
        let missed = latest.source.get("missing").and_then(|m| m.as_array()).is_some_and(|m| !m.is_empty());
        // Snapshots from before scopes were recorded count as made with the default one.
        let reselected = selection.iter().any(|(key, value)| latest.source.get(*key).is_some_and(|v| v != value));
        if missed || reselected {
            return Ok(None);
        }
        for (path, digest) in &identities {
            let entry = store.catalog.entry(latest.key, path).map_err(store_err)?;
            if entry.as_ref().and_then(|e| e.content.digest()) != Some(digest) {
                return Ok(None);
            }
        }
        Ok(Some(latest))
    })
    .await
}

/// Runs one mirror pass. Returns the new snapshot, or the latest one when upstream is
/// unchanged (and `always` is off).
pub async fn mirror(store: &Store, spec: &MirrorSpec, opts: &MirrorOptions) -> Result<MirrorReport, MirrorError> {
    let started = Instant::now();
    // Checked before the lock too, so that a bad URL fails at once rather than after a
    // running mirror of the archive.
    normalize_upstream(&spec.upstream)?;
    let (jobs, name) = (store.jobs.clone(), format!("mirror/{}", spec.archive));
    let Some(lock) = blocking(move || jobs.try_lock_job(&name).map_err(|e| MirrorError::Store(e.to_string()))).await?
    else {
        return Err(MirrorError::Locked(spec.archive.clone()));
    };
    let result = mirror_locked(store, spec, opts, started).await;
    // Released before the answer, so that a run started right after finds the archive
    // free; on the blocking pool, since releasing may be a round trip to the catalog.
    blocking(move || {
        drop(lock);
        Ok(())
    })
    .await?;
    result
}

async fn mirror_locked(
    store: &Store,
    spec: &MirrorSpec,
    opts: &MirrorOptions,
    started: Instant,
) -> Result<MirrorReport, MirrorError> {
    let Prepared { upstream, fetcher, suites, signature, warnings } = prepare(spec, opts).await?;
    let report = |snapshot: &crate::catalog::Snapshot, unchanged: bool| MirrorReport {
        archive: spec.archive.clone(),
        snapshot: snapshot.id,
        unchanged,
        files: snapshot.files,
        bytes: snapshot.bytes,
        downloaded_files: 0,
        downloaded_bytes: fetcher.stats.downloaded_bytes.load(Ordering::Relaxed),
        reused_files: 0,
        reused_bytes: 0,
        requests: fetcher.stats.requests.load(Ordering::Relaxed),
        retries: fetcher.stats.retries.load(Ordering::Relaxed),
        signature: signature.clone(),
        missing: Vec::new(),
        warnings: warnings.clone(),
        duration_ms: started.elapsed().as_millis(),
    };
    if !opts.always
        && let Some(latest) = unchanged_snapshot(store, spec, &suites).await?
    {
        return Ok(report(&latest, true));
    }

    let mut files: BTreeMap<RelPath, (u64, Digest)> = BTreeMap::new();
    for state in &suites {
        for (path, bytes) in &state.release_files {
            let size = bytes.len() as u64;
            files.insert(path.clone(), (size, store_bytes(store, bytes.clone()).await?));
        }
    }
    let mut missing = Vec::new();
    let to_parse = fetch_indices(store, &fetcher, &upstream, &suites, opts, &mut files, &mut missing).await?;
    let pool = read_pool(store, to_parse, opts).await?;
    for (path, f) in &pool {
        match files.get(path) {
            Some(existing) if *existing != (f.size, f.sha256) => {
                return Err(MirrorError::Collision { path: path.clone() });
            }
            _ => {
                files.insert(path.clone(), (f.size, f.sha256));
            }
        }
    }
    let fetched = fetch_pool(store, &fetcher, &upstream, &pool, opts).await?;
    for path in fetched.missing {
        files.remove(&path);
        missing.push(path);
    }
    missing.sort();
    if !missing.is_empty() && !spec.allow_missing {
        return Err(MirrorError::Missing(missing));
    }

    let manifest: Vec<ManifestEntry> = files
        .into_iter()
        .map(|(path, (size, sha256))| ManifestEntry { path, content: Content::File { size, sha256 } })
        .collect();
    let source = serde_json::json!({
        "method": "mirror",
        "upstream": upstream,
        "suites": spec.suites,
        "components": spec.components,
        "architectures": spec.architectures,
        "sources": spec.scope.sources,
        "scope": scope_json(&spec.scope),
        "signature": signature,
        "warnings": warnings,
        "missing": missing,
        "insecure_skip_signature": spec.insecure_skip_signature,
    });
    let (store2, archive) = (store.clone(), spec.archive.clone());
    // Not `always`: a run whose upstream still lacks the same files finds the same tree and
    // must not add an identical snapshot every time (unless asked to with --always).
    let always = opts.always;
    let (snapshot, unchanged) = blocking(move || {
        let opts = PublishOptions { progress: &NoProgress, source, always };
        Ok(commit_manifest(&store2, &archive, manifest, &opts)?)
    })
    .await?;
    Ok(MirrorReport {
        downloaded_files: fetched.downloaded_files,
        reused_files: fetched.reused_files,
        reused_bytes: fetched.reused_bytes,
        missing,
        ..report(&snapshot, unchanged)
    })
}

/// Fetches every variant of every chosen index (a 404 is fine while one variant exists;
/// an index with none is missing) into `files`, and returns the Packages and Sources
/// indices to read, each in the variant cheapest to decode.
async fn fetch_indices(
    store: &Store,
    fetcher: &Fetcher,
    upstream: &str,
    suites: &[SuiteState],
    opts: &MirrorOptions,
    files: &mut BTreeMap<RelPath, (u64, Digest)>,
    missing: &mut Vec<RelPath>,
) -> Result<Vec<(IndexKind, RelPath, Digest)>, MirrorError> {
    // Paths with the same content (the empty Packages of several suites, say) share one
    // partial download file: fetch them one after the other, never at once.
    let mut jobs: BTreeMap<Digest, Vec<(RelPath, Option<String>, u64)>> = BTreeMap::new();
    for s in suites {
        for idx in &s.indices {
            jobs.entry(idx.sha256).or_default().push((s.index_path(idx), s.by_hash_path(idx), idx.size));
        }
    }
    opts.progress.set_message(format!("fetching {} index files", jobs.values().map(Vec::len).sum::<usize>()));
    let results: Vec<Vec<IndexFetch>> = futures::stream::iter(jobs.into_iter().map(|(sha, paths)| {
        let (fetcher, store) = (fetcher.clone(), store.clone());
        async move {
            let mut out = Vec::new();
            for (path, by_hash, size) in paths {
                let first = match &by_hash {
                    Some(h) => fetcher.fetch_blob(&store, &format!("{upstream}{h}"), size, sha).await,
                    None => Ok(None),
                };
                // An upstream that says by-hash but lacks the file (404) still has the plain name.
                let r = match first {
                    Ok(None) => fetcher.fetch_blob(&store, &format!("{upstream}{path}"), size, sha).await,
                    other => other,
                };
                out.push((path, size, sha, r));
            }
            out
        }
    }))
    .buffer_unordered(opts.jobs.max(1))
    .collect()
    .await;
    let mut variants: BTreeMap<String, Vec<(RelPath, bool)>> = BTreeMap::new();
    for (path, size, sha, r) in results.into_iter().flatten() {
        let present = r?.is_some();
        if present {
            files.insert(path.clone(), (size, sha));
        }
        variants.entry(index_base(path.as_str()).to_string()).or_default().push((path, present));
    }
    let mut to_parse = Vec::new();
    for (base, vs) in &variants {
        if !vs.iter().any(|(_, present)| *present) {
            missing.extend(vs.iter().map(|(p, _)| p.clone()));
            continue;
        }
        if let Some(kind) = IndexKind::of(base) {
            let best = best_variant(base, vs.iter().filter(|(_, present)| *present).map(|(p, _)| p))?;
            to_parse.push((kind, best.clone(), files[&best].1));
        }
    }
    Ok(to_parse)
}

/// The variant of an index asof decodes most cheaply.
fn best_variant<'a>(base: &str, present: impl Iterator<Item = &'a RelPath>) -> Result<RelPath, MirrorError> {
    present
        .filter_map(|p| decode_rank(p.as_str()).map(|r| (r, p)))
        .min_by_key(|(r, _)| *r)
        .map(|(_, p)| p.clone())
        .ok_or_else(|| MirrorError::Index {
            index: base.to_string(),
            source: IndexError::Unsupported(base.to_string()),
        })
}

/// The pool files the stored indices reference.
async fn read_pool(
    store: &Store,
    to_parse: Vec<(IndexKind, RelPath, Digest)>,
    opts: &MirrorOptions,
) -> Result<BTreeMap<RelPath, PoolFile>, MirrorError> {
    opts.progress.set_message(format!("reading {} indices", to_parse.len()));
    let store = store.clone();
    blocking(move || {
        let mut pool = BTreeMap::new();
        for (kind, path, digest) in to_parse {
            let blob = store
                .blobs
                .blocking()
                .open(&digest)
                .map_err(|e| MirrorError::Store(e.to_string()))?
                .ok_or_else(|| MirrorError::Store(format!("{path} vanished from the blob store")))?;
            let index_err = |source| MirrorError::Index { index: path.to_string(), source };
            let reader = decoder(path.as_str(), blob.reader).map_err(index_err)?;
            collect_pool_files(kind, reader, &mut pool).map_err(index_err)?;
        }
        Ok(pool)
    })
    .await
}

#[derive(Default)]
struct PoolOutcome {
    downloaded_files: u64,
    reused_files: u64,
    reused_bytes: u64,
    /// Paths upstream answered 404 for (every path sharing a missing digest).
    missing: Vec<RelPath>,
}

/// Downloads each missing digest once, however many paths share it.
async fn fetch_pool(
    store: &Store,
    fetcher: &Fetcher,
    upstream: &str,
    pool: &BTreeMap<RelPath, PoolFile>,
    opts: &MirrorOptions,
) -> Result<PoolOutcome, MirrorError> {
    let mut by_digest: HashMap<Digest, (RelPath, u64)> = HashMap::new();
    for (path, f) in pool {
        by_digest.entry(f.sha256).or_insert((path.clone(), f.size));
    }
    let total: u64 = by_digest.values().map(|(_, s)| s).sum();
    opts.progress.set_length(total);
    opts.progress.set_position(0);
    opts.progress.set_message(format!("{} pool files", by_digest.len()));
    let outcomes: Vec<(Digest, u64, Result<Option<Fetched>, FetchError>)> =
        futures::stream::iter(by_digest.into_iter().map(|(sha, (path, size))| {
            let (fetcher, store, url, bar) =
                (fetcher.clone(), store.clone(), format!("{upstream}{path}"), opts.progress.clone());
            async move {
                let r = fetcher.fetch_blob(&store, &url, size, sha).await;
                bar.inc(size);
                (sha, size, r)
            }
        }))
        .buffer_unordered(opts.jobs.max(1))
        .collect()
        .await;
    let mut out = PoolOutcome::default();
    let mut gone = std::collections::HashSet::new();
    for (sha, size, r) in outcomes {
        match r? {
            None => {
                gone.insert(sha);
            }
            Some(Fetched::Reused) => {
                out.reused_files += 1;
                out.reused_bytes += size;
            }
            Some(Fetched::Downloaded { .. }) => out.downloaded_files += 1,
        }
    }
    out.missing = pool.iter().filter(|(_, f)| gone.contains(&f.sha256)).map(|(p, _)| p.clone()).collect();
    opts.progress.finish_and_clear();
    Ok(out)
}

fn normalize_upstream(url: &str) -> Result<String, MirrorError> {
    let parsed = reqwest::Url::parse(url).map_err(|e| MirrorError::Config(format!("upstream URL {url:?}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(MirrorError::Config(format!("upstream URL {url:?} must be http:// or https://")));
    }
    let mut s = parsed.to_string();
    if !s.ends_with('/') {
        s.push('/');
    }
    Ok(s)
}
