//! Mirroring an upstream apt archive: every run fetches the signed Release files, the
//! chosen indices and the pool files they reference (only those not stored yet), checks
//! every byte against the signed checksums, and commits one snapshot, or nothing at all.

pub mod deb822;
mod fetch;
pub mod index;
pub mod release;
pub mod schedule;
pub mod signature;

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
use release::{IndexSelection, ReleaseError, index_base, parse_release};
use signature::{Gpgv, Keyring, SignatureError};

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
    pub sources: bool,
    pub keyring: Option<PathBuf>,
    pub insecure_skip_signature: bool,
}

pub struct MirrorOptions {
    /// Make a snapshot even when the upstream Release files have not changed.
    pub always: bool,
    /// Downloads in flight at once.
    pub jobs: usize,
    /// A progress bar (hidden when not on a terminal).
    pub progress: indicatif::ProgressBar,
    /// Where per-archive lock files live, so two runs of one archive never overlap.
    pub lock_dir: PathBuf,
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
            lock_dir: data.join("locks"),
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
    #[error("{index}: no variant could be fetched (the Release lists {variants})")]
    MissingIndex { index: String, variants: String },
    #[error("{index}: {source}")]
    Index { index: String, source: IndexError },
    #[error("{path}: listed in the indices but missing upstream ({url} answered 404)")]
    MissingPoolFile { path: RelPath, url: String },
    #[error("{path} would hold two different files (an index and a pool file collide)")]
    Collision { path: RelPath },
    #[error("storing: {0}")]
    Store(String),
    #[error(transparent)]
    Publish(#[from] PublishError),
}

/// Blocking (file creation, `flock`): call it on the blocking pool.
fn lock_archive(dir: &Path, archive: &ArchiveName) -> Result<std::fs::File, MirrorError> {
    let store_err = |e: std::io::Error| MirrorError::Store(format!("lock file in {}: {e}", dir.display()));
    std::fs::create_dir_all(dir).map_err(store_err)?;
    // '~' cannot occur in archive names, so the mapping is one to one.
    let file =
        std::fs::File::create(dir.join(format!("{}.lock", archive.as_str().replace('/', "~")))).map_err(store_err)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(MirrorError::Locked(archive.clone())),
        Err(std::fs::TryLockError::Error(e)) => Err(store_err(e)),
    }
}

/// The body of a clearsigned message, for `--insecure-skip-signature` only.
fn clearsigned_body(text: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(text);
    let mut out = String::new();
    let mut lines = text.lines().skip_while(|l| !l.starts_with("-----BEGIN PGP SIGNED MESSAGE")).skip(1);
    for l in lines.by_ref() {
        if l.trim().is_empty() {
            break;
        }
    }
    for l in lines {
        if l.starts_with("-----BEGIN PGP SIGNATURE") {
            break;
        }
        out.push_str(l.strip_prefix("- ").unwrap_or(l));
        out.push('\n');
    }
    out.into_bytes()
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

/// Runs a gpgv verification on the blocking pool: it waits on a child process and on files.
async fn verify_off_thread(
    f: impl FnOnce() -> Result<signature::Verified, SignatureError> + Send + 'static,
) -> Result<signature::Verified, SignatureError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| SignatureError::Gpgv(std::io::Error::other(e)))?
}

async fn store_bytes(store: &Store, bytes: Vec<u8>) -> Result<Digest, MirrorError> {
    let store = store.clone();
    blocking(move || {
        store
            .blobs
            .put(&mut bytes.as_slice(), None, None)
            .map(|o| o.digest)
            .map_err(|e| MirrorError::Store(e.to_string()))
    })
    .await
}

/// One index variant and what fetching it gave (`None`: 404 upstream).
type IndexFetch = (RelPath, u64, Digest, Result<Option<Fetched>, FetchError>);

struct SuiteState {
    /// Upstream files of `dists/<suite>/` with their content.
    files: BTreeMap<RelPath, (u64, Digest)>,
    /// The file whose bytes identify the upstream state (InRelease, else Release).
    identity: RelPath,
    indices: Vec<release::IndexRef>,
}

/// Runs one mirror pass. Returns the new snapshot, or the latest one when upstream is
/// unchanged (and `always` is off).
pub async fn mirror(store: &Store, spec: &MirrorSpec, opts: &MirrorOptions) -> Result<MirrorReport, MirrorError> {
    let started = Instant::now();
    let upstream = normalize_upstream(&spec.upstream)?;
    if spec.suites.is_empty() {
        return Err(MirrorError::Config("at least one suite is needed".into()));
    }
    let (lock_dir, archive) = (opts.lock_dir.clone(), spec.archive.clone());
    // Dropped (closed, which releases the lock) here when the run ends, not later on the
    // blocking pool, so that a run started right after finds the archive free; close(2)
    // does not wait on the disk.
    let _lock = blocking(move || lock_archive(&lock_dir, &archive)).await?;
    let keyring = match (&spec.keyring, spec.insecure_skip_signature) {
        (_, true) => {
            tracing::warn!(archive = %spec.archive, "SIGNATURE CHECK DISABLED (--insecure-skip-signature): the snapshot records it");
            None
        }
        (Some(path), false) => {
            let (path, gpgv) = (path.clone(), opts.gpgv.clone());
            Some(Arc::new(
                blocking(move || {
                    Keyring::load(&path, gpgv).map_err(|source| MirrorError::Signature {
                        suite: "-".into(),
                        file: "keyring",
                        source,
                    })
                })
                .await?,
            ))
        }
        (None, false) => {
            return Err(MirrorError::Config(
                "a keyring is required to verify upstream signatures (or --insecure-skip-signature)".into(),
            ));
        }
    };
    // Dropping the keyring deletes its temp directory.
    let keyring = DropOffThread(keyring);
    // Building the HTTP client may read the system's CA certificates.
    let partial_dir = opts.partial_dir.clone();
    let mut fetcher = blocking(move || Ok(Fetcher::new(partial_dir)?)).await?;
    fetcher.retries = opts.retries;
    fetcher.backoff = opts.backoff;
    opts.progress.set_message("fetching Release files");

    let mut suites = Vec::new();
    let mut fingerprints = Vec::new();
    for suite in &spec.suites {
        let (state, fps) = fetch_suite(store, &fetcher, &upstream, suite, spec, keyring.0.as_ref()).await?;
        suites.push((suite.clone(), state));
        fingerprints.extend(fps);
    }
    fingerprints.sort();
    fingerprints.dedup();
    let signature = if keyring.0.is_some() {
        format!("verified ({})", fingerprints.join(", "))
    } else {
        "NOT VERIFIED (--insecure-skip-signature)".into()
    };

    // Unchanged upstream: the same signed Release bytes for every suite.
    if !opts.always {
        let (store2, archive) = (store.clone(), spec.archive.clone());
        let identities: Vec<(RelPath, Digest)> =
            suites.iter().map(|(_, s)| (s.identity.clone(), s.files[&s.identity].1)).collect();
        let unchanged = blocking(move || {
            let Some(latest) = store2.catalog.latest(&archive).map_err(|e| MirrorError::Store(e.to_string()))? else {
                return Ok(None);
            };
            for (path, digest) in &identities {
                let entry = store2.catalog.entry(latest.key, path).map_err(|e| MirrorError::Store(e.to_string()))?;
                if entry.as_ref().and_then(|e| e.content.digest()) != Some(digest) {
                    return Ok(None);
                }
            }
            Ok(Some(latest))
        })
        .await?;
        if let Some(latest) = unchanged {
            return Ok(MirrorReport {
                archive: spec.archive.clone(),
                snapshot: latest.id,
                unchanged: true,
                files: latest.files,
                bytes: latest.bytes,
                downloaded_files: 0,
                downloaded_bytes: fetcher.stats.downloaded_bytes.load(Ordering::Relaxed),
                reused_files: 0,
                reused_bytes: 0,
                requests: fetcher.stats.requests.load(Ordering::Relaxed),
                retries: fetcher.stats.retries.load(Ordering::Relaxed),
                signature,
                duration_ms: started.elapsed().as_millis(),
            });
        }
    }

    // Indices: every variant the Release lists; a 404 is fine while one variant exists.
    let mut files: BTreeMap<RelPath, (u64, Digest)> = BTreeMap::new();
    let mut index_jobs = Vec::new();
    for (suite, state) in &suites {
        files.extend(state.files.clone());
        for idx in &state.indices {
            let path = RelPath::new(&format!("dists/{suite}/{}", idx.path)).expect("suite and index paths are valid");
            index_jobs.push((path, idx.size, idx.sha256));
        }
    }
    opts.progress.set_message(format!("fetching {} index files", index_jobs.len()));
    let results: Vec<IndexFetch> = futures::stream::iter(index_jobs.into_iter().map(|(path, size, sha)| {
        let (fetcher, store, url) = (fetcher.clone(), store.clone(), format!("{upstream}{path}"));
        async move {
            let r = fetcher.fetch_blob(&store, &url, size, sha).await;
            (path, size, sha, r)
        }
    }))
    .buffer_unordered(opts.jobs.max(1))
    .collect()
    .await;
    let mut variants: BTreeMap<String, Vec<(RelPath, bool)>> = BTreeMap::new();
    for (path, size, sha, r) in results {
        let present = r?.is_some();
        if present {
            files.insert(path.clone(), (size, sha));
        }
        variants.entry(index_base(path.as_str()).to_string()).or_default().push((path, present));
    }
    let mut to_parse = Vec::new();
    for (base, vs) in &variants {
        if !vs.iter().any(|(_, present)| *present) {
            let names = vs.iter().map(|(p, _)| p.file_name().to_string()).collect::<Vec<_>>().join(", ");
            return Err(MirrorError::MissingIndex { index: base.clone(), variants: names });
        }
        if let Some(kind) = IndexKind::of(base) {
            let best = vs
                .iter()
                .filter(|(_, present)| *present)
                .filter_map(|(p, _)| decode_rank(p.as_str()).map(|r| (r, p)))
                .min_by_key(|(r, _)| *r)
                .map(|(_, p)| p.clone())
                .ok_or_else(|| MirrorError::Index {
                    index: base.clone(),
                    source: IndexError::Unsupported(base.clone()),
                })?;
            to_parse.push((kind, best.clone(), files[&best].1));
        }
    }

    // Pool files referenced by the indices.
    opts.progress.set_message(format!("reading {} indices", to_parse.len()));
    let store2 = store.clone();
    let pool: BTreeMap<RelPath, PoolFile> = blocking(move || {
        let mut pool = BTreeMap::new();
        for (kind, path, digest) in to_parse {
            let blob = store2
                .blobs
                .open(&digest)
                .map_err(|e| MirrorError::Store(e.to_string()))?
                .ok_or_else(|| MirrorError::Store(format!("{path} vanished from the blob store")))?;
            let index_err = |source| MirrorError::Index { index: path.to_string(), source };
            let reader = decoder(path.as_str(), blob.reader).map_err(index_err)?;
            collect_pool_files(kind, reader, &mut pool).map_err(index_err)?;
        }
        Ok(pool)
    })
    .await?;
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

    // Download each missing digest once, however many paths share it.
    let mut by_digest: HashMap<Digest, (RelPath, u64)> = HashMap::new();
    for (path, f) in &pool {
        by_digest.entry(f.sha256).or_insert((path.clone(), f.size));
    }
    let total: u64 = by_digest.values().map(|(_, s)| s).sum();
    opts.progress.set_length(total);
    opts.progress.set_position(0);
    opts.progress.set_message(format!("{} pool files", by_digest.len()));
    let outcomes: Vec<Result<(u64, bool), MirrorError>> =
        futures::stream::iter(by_digest.into_iter().map(|(sha, (path, size))| {
            let (fetcher, store, url, bar) =
                (fetcher.clone(), store.clone(), format!("{upstream}{path}"), opts.progress.clone());
            async move {
                let r = match fetcher.fetch_blob(&store, &url, size, sha).await? {
                    None => Err(MirrorError::MissingPoolFile { path, url }),
                    Some(Fetched::Reused) => Ok((size, false)),
                    Some(Fetched::Downloaded { .. }) => Ok((size, true)),
                };
                bar.inc(size);
                r
            }
        }))
        .buffer_unordered(opts.jobs.max(1))
        .collect()
        .await;
    let (mut downloaded_files, mut reused_files, mut reused_bytes) = (0, 0, 0);
    for o in outcomes {
        let (size, downloaded) = o?;
        if downloaded {
            downloaded_files += 1;
        } else {
            reused_files += 1;
            reused_bytes += size;
        }
    }
    opts.progress.finish_and_clear();

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
        "sources": spec.sources,
        "signature": signature,
        "insecure_skip_signature": spec.insecure_skip_signature,
    });
    let (store2, archive) = (store.clone(), spec.archive.clone());
    let snapshot = blocking(move || {
        let opts = PublishOptions { progress: &NoProgress, source, always: true };
        Ok(commit_manifest(&store2, &archive, manifest, &opts)?.0)
    })
    .await?;
    Ok(MirrorReport {
        archive: spec.archive.clone(),
        snapshot: snapshot.id,
        unchanged: false,
        files: snapshot.files,
        bytes: snapshot.bytes,
        downloaded_files,
        downloaded_bytes: fetcher.stats.downloaded_bytes.load(Ordering::Relaxed),
        reused_files,
        reused_bytes,
        requests: fetcher.stats.requests.load(Ordering::Relaxed),
        retries: fetcher.stats.retries.load(Ordering::Relaxed),
        signature,
        duration_ms: started.elapsed().as_millis(),
    })
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

const RELEASE_LIMIT: u64 = 64 * 1024 * 1024;

async fn fetch_suite(
    store: &Store,
    fetcher: &Fetcher,
    upstream: &str,
    suite: &str,
    spec: &MirrorSpec,
    keyring: Option<&Arc<Keyring>>,
) -> Result<(SuiteState, Vec<String>), MirrorError> {
    let suite_path =
        RelPath::new(suite).map_err(|e| MirrorError::Config(format!("suite {suite:?} is not a valid path: {e}")))?;
    let dir = format!("{upstream}dists/{suite_path}/");
    let inrelease = fetcher.get_small(&format!("{dir}InRelease"), RELEASE_LIMIT).await?;
    let release = fetcher.get_small(&format!("{dir}Release"), RELEASE_LIMIT).await?;
    let release_gpg = match &release {
        Some(_) => fetcher.get_small(&format!("{dir}Release.gpg"), RELEASE_LIMIT).await?,
        None => None,
    };
    let sig_err = |file, source| MirrorError::Signature { suite: suite.to_string(), file, source };
    let mut fingerprints = Vec::new();
    let signed_text = match (&inrelease, &release, keyring) {
        (Some(inr), _, Some(k)) => {
            let (k, inr) = (k.clone(), inr.clone());
            let v = verify_off_thread(move || k.verify_inline(&inr)).await.map_err(|e| sig_err("InRelease", e))?;
            fingerprints.extend(v.fingerprints);
            v.signed
        }
        (Some(inr), _, None) => clearsigned_body(inr),
        (None, Some(rel), Some(k)) => {
            let sig = release_gpg.as_ref().ok_or_else(|| {
                sig_err("Release", SignatureError::Invalid("upstream has no InRelease and no Release.gpg".into()))
            })?;
            let (k, rel, sig) = (k.clone(), rel.clone(), sig.clone());
            let v = verify_off_thread(move || k.verify_detached(&rel, &sig))
                .await
                .map_err(|e| sig_err("Release.gpg", e))?;
            fingerprints.extend(v.fingerprints);
            v.signed
        }
        (None, Some(rel), None) => rel.clone(),
        (None, None, _) => return Err(MirrorError::NoRelease { suite: suite.into(), url: dir }),
    };
    // A Release kept beside an InRelease must be signed too: clients that fall back to it
    // would otherwise get an unverifiable file from us.
    if let (Some(_), Some(rel), Some(sig), Some(k)) = (&inrelease, &release, &release_gpg, keyring) {
        let (k, rel, sig) = (k.clone(), rel.clone(), sig.clone());
        verify_off_thread(move || k.verify_detached(&rel, &sig)).await.map_err(|e| sig_err("Release.gpg", e))?;
    }
    let text = String::from_utf8(signed_text)
        .map_err(|_| MirrorError::Release { suite: suite.into(), source: ReleaseError::BadLine("not UTF-8".into()) })?;
    let parsed = parse_release(&text).map_err(|source| MirrorError::Release { suite: suite.into(), source })?;
    let pick = |wanted: &Vec<String>, available: &Vec<String>, what: &str| -> Result<Vec<String>, MirrorError> {
        if wanted.is_empty() {
            return Ok(available.clone());
        }
        for w in wanted {
            let listed = available.iter().any(|a| a == w || a.rsplit('/').next() == Some(w.as_str()));
            if w != "all" && !listed {
                return Err(MirrorError::Selection {
                    suite: suite.into(),
                    reason: format!("{what} {w:?} is not in its Release file (it has: {})", available.join(" ")),
                });
            }
        }
        Ok(wanted.clone())
    };
    let selection = IndexSelection {
        components: pick(&spec.components, &parsed.components, "component")?,
        architectures: pick(&spec.architectures, &parsed.architectures, "architecture")?,
        sources: spec.sources,
    };
    let indices: Vec<release::IndexRef> = parsed.files.into_iter().filter(|f| selection.wants(&f.path)).collect();
    if indices.is_empty() {
        return Err(MirrorError::Selection {
            suite: suite.into(),
            reason: "no index file matches the chosen components and architectures".into(),
        });
    }
    let mut files = BTreeMap::new();
    let mut identity = None;
    for (name, bytes) in [("InRelease", inrelease), ("Release", release), ("Release.gpg", release_gpg)] {
        if let Some(bytes) = bytes {
            let path = RelPath::new(&format!("dists/{suite_path}/{name}")).expect("valid");
            let size = bytes.len() as u64;
            let digest = store_bytes(store, bytes).await?;
            identity.get_or_insert(path.clone());
            files.insert(path, (size, digest));
        }
    }
    let identity = identity.expect("InRelease or Release exists here");
    Ok((SuiteState { files, identity, indices }, fingerprints))
}
