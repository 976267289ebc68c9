//! `asof mirror --dry-run`: what a run would download, with sizes from the signed Release
//! and from the Packages and Sources indices, without storing anything or making a
//! snapshot. The Release files and the indices that list pool files are read into memory;
//! the other index variants are only asked for with HEAD.

use std::collections::BTreeMap;

use futures::StreamExt;
use serde::Serialize;

use super::index::{IndexKind, PoolFile, collect_pool_files, decoder};
use super::release::index_base;
use super::{MirrorError, MirrorOptions, MirrorSpec, Prepared, best_variant, blocking, prepare};
use crate::domain::{ArchiveName, Digest, RelPath};
use crate::store::Store;

#[derive(Debug, Clone, Serialize)]
pub struct PlannedFile {
    pub path: RelPath,
    pub size: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct DryRun {
    pub archive: ArchiveName,
    pub signature: String,
    pub warnings: Vec<String>,
    /// The Release files a run keeps (fetched by the dry run too, to read them).
    pub release_files: Vec<PlannedFile>,
    /// Index files upstream has that are not stored yet.
    pub index_files: Vec<PlannedFile>,
    pub index_files_stored: Vec<PlannedFile>,
    /// Pool files not stored yet (one path per distinct content).
    pub pool_files: Vec<PlannedFile>,
    pub pool_files_stored: Vec<PlannedFile>,
    /// Indices the Release lists of which upstream has no variant.
    pub missing: Vec<RelPath>,
    pub download_files: u64,
    pub download_bytes: u64,
}

/// One index variant: whether it is stored, and whether upstream has it.
struct Variant {
    path: RelPath,
    size: u64,
    sha256: Digest,
    stored: bool,
    upstream: bool,
    /// Where upstream has it (by-hash or the plain name), when it does.
    url: String,
}

fn total(files: &[PlannedFile]) -> u64 {
    files.iter().map(|f| f.size).sum()
}

/// Plans a mirror run of `spec` and changes nothing (no lock, no blob, no snapshot).
pub async fn dry_run(store: &Store, spec: &MirrorSpec, opts: &MirrorOptions) -> Result<DryRun, MirrorError> {
    let Prepared { upstream, fetcher, suites, signature, warnings } = prepare(spec, opts).await?;
    let release_files: Vec<PlannedFile> = suites
        .iter()
        .flat_map(|s| s.release_files.iter().map(|(p, b)| PlannedFile { path: p.clone(), size: b.len() as u64 }))
        .collect();
    let jobs: Vec<(RelPath, Option<String>, u64, Digest)> = suites
        .iter()
        .flat_map(|s| s.indices.iter().map(move |idx| (s.index_path(idx), s.by_hash_path(idx), idx.size, idx.sha256)))
        .collect();
    let variants: Vec<Result<Variant, MirrorError>> =
        futures::stream::iter(jobs.into_iter().map(|(path, by_hash, size, sha256)| {
            let (fetcher, store, upstream) = (fetcher.clone(), store.clone(), upstream.clone());
            async move {
                let stored = contains(&store, sha256).await?;
                // As a run does: the by-hash name first when the Release offers it, then the plain one.
                let mut url = None;
                for candidate in by_hash.iter().chain(std::iter::once(&path.as_str().to_string())) {
                    let candidate = format!("{upstream}{candidate}");
                    if stored || fetcher.exists(&candidate).await? {
                        url = Some(candidate);
                        break;
                    }
                }
                Ok(Variant { path, size, sha256, stored, upstream: url.is_some(), url: url.unwrap_or_default() })
            }
        }))
        .buffer_unordered(opts.jobs.max(1))
        .collect()
        .await;
    let mut by_base: BTreeMap<String, Vec<Variant>> = BTreeMap::new();
    for v in variants {
        let v = v?;
        by_base.entry(index_base(v.path.as_str()).to_string()).or_default().push(v);
    }
    let (mut index_files, mut index_files_stored, mut missing) = (Vec::new(), Vec::new(), Vec::new());
    let mut pool = BTreeMap::new();
    for (base, vs) in &by_base {
        if !vs.iter().any(|v| v.upstream) {
            missing.extend(vs.iter().map(|v| v.path.clone()));
            continue;
        }
        for v in vs.iter().filter(|v| v.upstream) {
            let planned = PlannedFile { path: v.path.clone(), size: v.size };
            if v.stored { index_files_stored.push(planned) } else { index_files.push(planned) }
        }
        if let Some(kind) = IndexKind::of(base) {
            let best = best_variant(base, vs.iter().filter(|v| v.upstream).map(|v| &v.path))?;
            let v = vs.iter().find(|v| v.path == best).expect("the best variant is one of them");
            let bytes = index_bytes(store, &fetcher, &v.url, v).await?;
            pool = read_index(kind, v.path.clone(), bytes, pool).await?;
        }
    }
    let (pool_files, pool_files_stored) = split_pool(store, &pool).await?;
    missing.sort();
    index_files.sort_by(|a, b| a.path.cmp(&b.path));
    index_files_stored.sort_by(|a, b| a.path.cmp(&b.path));
    let download_files = (release_files.len() + index_files.len() + pool_files.len()) as u64;
    let download_bytes = total(&release_files) + total(&index_files) + total(&pool_files);
    Ok(DryRun {
        archive: spec.archive.clone(),
        signature,
        warnings,
        release_files,
        index_files,
        index_files_stored,
        pool_files,
        pool_files_stored,
        missing,
        download_files,
        download_bytes,
    })
}

async fn contains(store: &Store, sha256: Digest) -> Result<bool, MirrorError> {
    let blobs = store.blobs.clone();
    // A dry run references nothing: look, do not claim (a claim postpones garbage collection).
    blocking(move || blobs.blocking().size(&sha256).map(|s| s.is_some()).map_err(|e| MirrorError::Store(e.to_string())))
        .await
}

/// An index's bytes, from the store or from upstream into memory, checked against the
/// signed Release.
async fn index_bytes(store: &Store, fetcher: &super::Fetcher, url: &str, v: &Variant) -> Result<Vec<u8>, MirrorError> {
    if v.stored {
        let (store, sha) = (store.clone(), v.sha256);
        return blocking(move || {
            let mut blob = store
                .blobs
                .blocking()
                .open(&sha)
                .map_err(|e| MirrorError::Store(e.to_string()))?
                .ok_or_else(|| MirrorError::Store(format!("blob {sha} vanished from the blob store")))?;
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut blob.reader, &mut bytes).map_err(|e| MirrorError::Store(e.to_string()))?;
            Ok(bytes)
        })
        .await;
    }
    let bytes = fetcher.get_small(url, v.size).await?.ok_or_else(|| MirrorError::Missing(vec![v.path.clone()]))?;
    if bytes.len() as u64 != v.size {
        return Err(super::FetchError::Size { url: url.into(), expected: v.size, actual: bytes.len() as u64 }.into());
    }
    let actual = Digest::of(&bytes);
    if actual != v.sha256 {
        return Err(super::FetchError::Checksum { url: url.into(), expected: v.sha256, actual }.into());
    }
    Ok(bytes)
}

async fn read_index(
    kind: IndexKind,
    path: RelPath,
    bytes: Vec<u8>,
    mut pool: BTreeMap<RelPath, PoolFile>,
) -> Result<BTreeMap<RelPath, PoolFile>, MirrorError> {
    // Decompressing and parsing is CPU work.
    blocking(move || {
        let index_err = |source| MirrorError::Index { index: path.to_string(), source };
        let reader = decoder(path.as_str(), bytes.as_slice()).map_err(index_err)?;
        collect_pool_files(kind, reader, &mut pool).map_err(index_err)?;
        Ok(pool)
    })
    .await
}

/// Pool files not stored yet and those already stored, one path per distinct content.
async fn split_pool(
    store: &Store,
    pool: &BTreeMap<RelPath, PoolFile>,
) -> Result<(Vec<PlannedFile>, Vec<PlannedFile>), MirrorError> {
    let mut by_digest: BTreeMap<Digest, PlannedFile> = BTreeMap::new();
    for (path, f) in pool {
        by_digest.entry(f.sha256).or_insert(PlannedFile { path: path.clone(), size: f.size });
    }
    let store = store.clone();
    blocking(move || {
        let (mut new, mut stored) = (Vec::new(), Vec::new());
        for (sha, file) in by_digest {
            if store.blobs.blocking().size(&sha).map_err(|e| MirrorError::Store(e.to_string()))?.is_some() {
                stored.push(file);
            } else {
                new.push(file);
            }
        }
        new.sort_by(|a, b| a.path.cmp(&b.path));
        stored.sort_by(|a, b| a.path.cmp(&b.path));
        Ok((new, stored))
    })
    .await
}
