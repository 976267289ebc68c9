//! Commits a manifest sent over the network: validates every entry, applies a change set
//! to its base, checks that every blob is stored with the announced size, and commits with
//! the same rules as a local publish.

use std::collections::{BTreeMap, BTreeSet};

use super::{PublishError, PublishOptions, commit_manifest, plan_commit};
use crate::catalog::{CatalogError, Snapshot};
use crate::domain::{ArchiveName, Digest, RelPath};
use crate::manifest::{Content, ManifestEntry};
use crate::store::Store;
use crate::wire::{CommitRequest, WireEntry};

#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("{0}")]
    Invalid(String),
    #[error("the manifest references {} blob(s) the server does not have; upload them first", .0.len())]
    MissingBlobs(Vec<Digest>),
    #[error(
        "base {base} is not the latest snapshot of '{archive}' ({latest}); fetch the latest and recompute the changes"
    )]
    StaleBase { archive: ArchiveName, base: String, latest: String },
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error("blob store: {0}")]
    Store(#[from] std::io::Error),
}

fn invalid(msg: impl Into<String>) -> RemoteError {
    RemoteError::Invalid(msg.into())
}

/// Turns a wire entry into a manifest entry, or says precisely what is wrong with it.
pub fn parse_entry(e: &WireEntry) -> Result<ManifestEntry, RemoteError> {
    let shown: String = e.path().chars().take(120).collect();
    let path = RelPath::new(e.path()).map_err(|err| invalid(format!("path {shown:?}: {err}")))?;
    let content = match e {
        WireEntry::File { size, sha256, .. } => Content::File {
            size: *size,
            sha256: sha256.parse().map_err(|err| invalid(format!("path {shown:?}: {err}")))?,
        },
        WireEntry::Symlink { target, .. } => {
            if target.is_empty() || target.contains('\0') || path.resolve_link(target).is_none() {
                return Err(invalid(format!("path {shown:?}: symlink target {target:?} points outside the tree")));
            }
            Content::Symlink { target: target.clone() }
        }
    };
    Ok(ManifestEntry { path, content })
}

/// A tree is well-formed when no path is listed twice and none is below a file or symlink.
fn check_shape(entries: &BTreeMap<RelPath, Content>) -> Result<(), RemoteError> {
    if entries.is_empty() {
        return Err(invalid("a snapshot needs at least one file"));
    }
    for path in entries.keys() {
        if let Some(a) = path.ancestors().find(|a| entries.contains_key(&RelPath::new(a).expect("valid ancestor"))) {
            return Err(invalid(format!("{path} is below {a}, which is a file or symlink")));
        }
    }
    Ok(())
}

/// Whether the caller may reference a blob (see `auth::blob_access`); blocking.
pub type MayUse<'a> = &'a dyn Fn(&Digest) -> Result<bool, CatalogError>;

/// Every blob must be stored with the announced size and usable by the caller. A blob the
/// caller may not use is reported missing, exactly like one the server lacks, and its size
/// is not compared: the answer must not tell whether it is stored.
fn check_blobs<'e>(
    store: &Store,
    entries: impl IntoIterator<Item = &'e Content>,
    may_use: MayUse,
) -> Result<(), RemoteError> {
    let mut wanted: BTreeMap<Digest, u64> = BTreeMap::new();
    for c in entries {
        if let Content::File { size, sha256 } = c
            && let Some(other) = wanted.insert(*sha256, *size)
            && other != *size
        {
            return Err(invalid(format!("blob {sha256} is given two sizes, {other} and {size}")));
        }
    }
    let mut missing = Vec::new();
    for (digest, size) in wanted {
        if !may_use(&digest)? {
            missing.push(digest);
            continue;
        }
        match store.blobs.size(&digest)? {
            None => missing.push(digest),
            Some(stored) if stored != size => {
                return Err(invalid(format!("blob {digest} is {stored} bytes, the manifest says {size}")));
            }
            Some(_) => {}
        }
    }
    if missing.is_empty() { Ok(()) } else { Err(RemoteError::MissingBlobs(missing)) }
}

fn collect(
    entries: impl IntoIterator<Item = ManifestEntry>,
    out: &mut BTreeMap<RelPath, Content>,
) -> Result<(), RemoteError> {
    for e in entries {
        if out.insert(e.path.clone(), e.content).is_some() {
            return Err(invalid(format!("{} is listed twice", e.path)));
        }
    }
    Ok(())
}

pub fn commit_request(
    store: &Store,
    archive: &ArchiveName,
    req: &CommitRequest,
    source: serde_json::Value,
    may_use: MayUse,
) -> Result<Snapshot, RemoteError> {
    let opts = PublishOptions { progress: &super::NoProgress, source, always: true };
    match (&req.base, &req.manifest) {
        (None, Some(manifest)) => {
            if !req.upsert.is_empty() || !req.remove.is_empty() {
                return Err(invalid("give either a full 'manifest' or 'base' with 'upsert'/'remove', not both"));
            }
            let mut entries = BTreeMap::new();
            collect(manifest.iter().map(parse_entry).collect::<Result<Vec<_>, _>>()?, &mut entries)?;
            check_shape(&entries)?;
            check_blobs(store, entries.values(), may_use)?;
            let manifest = entries.into_iter().map(|(path, content)| ManifestEntry { path, content }).collect();
            Ok(commit_manifest(store, archive, manifest, &opts)?.0)
        }
        (Some(base), None) => {
            let upserts = req.upsert.iter().map(parse_entry).collect::<Result<Vec<_>, _>>()?;
            let removals = req
                .remove
                .iter()
                .map(|p| {
                    RelPath::new(p)
                        .map_err(|e| invalid(format!("remove {:?}: {e}", p.chars().take(120).collect::<String>())))
                })
                .collect::<Result<BTreeSet<_>, _>>()?;
            let (latest, live) = store.catalog.live_manifest(archive)?;
            let stale =
                |latest: String| RemoteError::StaleBase { archive: archive.clone(), base: base.to_string(), latest };
            let Some(latest) = latest else { return Err(stale("none: the archive has no snapshots".into())) };
            if latest.id != *base {
                return Err(stale(latest.id.to_string()));
            }
            let mut entries: BTreeMap<RelPath, Content> = live
                .iter()
                .filter(|e| e.content != Content::Dir)
                .map(|e| (e.path.clone(), e.content.clone()))
                .collect();
            for p in &removals {
                if entries.remove(p).is_none() {
                    return Err(invalid(format!("cannot remove {p}: it is not in {base}")));
                }
            }
            // Entries kept from the base were checked when they were committed to this
            // archive; only what the caller adds needs checking.
            check_blobs(store, upserts.iter().map(|e| &e.content), may_use)?;
            let mut seen = BTreeSet::new();
            for e in upserts {
                if !seen.insert(e.path.clone()) || removals.contains(&e.path) {
                    return Err(invalid(format!("{} is listed twice", e.path)));
                }
                entries.insert(e.path, e.content);
            }
            check_shape(&entries)?;
            let next: Vec<ManifestEntry> =
                entries.into_iter().map(|(path, content)| ManifestEntry { path, content }).collect();
            // Planned against exactly the base: if anyone commits first, that is a 409,
            // never a silent merge.
            let plan = plan_commit(Some(&latest), &live, &next, opts.source.clone());
            match store.catalog.commit(archive, &plan) {
                Ok(s) => Ok(s),
                Err(CatalogError::Conflict { .. }) => Err(stale("a newer one, committed meanwhile".into())),
                Err(e) => Err(e.into()),
            }
        }
        (Some(_), Some(_)) => Err(invalid("give either a full 'manifest' or 'base' with changes, not both")),
        (None, None) => Err(invalid("the request needs a 'manifest', or a 'base' with 'upsert'/'remove'")),
    }
}
