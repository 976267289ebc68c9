//! What a path means inside one snapshot: direct entries, symlinks (also as intermediate
//! directories, as in `dists/stable -> bookworm`), and `<dir>/by-hash/<hash>/<hex>`.

use super::release::{HashAlgo, ReleaseCache};
use crate::blob::BlobStore;
use crate::catalog::{Catalog, CatalogError, Entry, SnapshotKey};
use crate::domain::{Digest, LinkTarget, RelPath};
use crate::manifest::Content;

#[derive(Debug, thiserror::Error)]
pub enum PathError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// Reading a Release file for a by-hash request failed.
    #[error("reading a Release file: {0}")]
    Release(#[from] std::io::Error),
}

/// What path resolution reads besides the catalog: Release files, for by-hash requests
/// naming a hash other than SHA-256.
#[derive(Clone, Copy)]
pub struct Releases<'a> {
    pub blobs: &'a dyn BlobStore,
    pub cache: &'a ReleaseCache,
}

/// Everything one resolution reads.
#[derive(Clone, Copy)]
struct Ctx<'a> {
    catalog: &'a dyn Catalog,
    releases: Releases<'a>,
    at: SnapshotKey,
}

/// Symlink hops allowed before a path counts as a loop (as the kernel's MAXSYMLINKS).
const MAX_HOPS: u32 = 40;

#[derive(Debug)]
pub enum Resolved {
    /// A file; `entry.path` is where it really lives.
    File(Entry),
    /// A directory; `None` is the root.
    Dir(Option<RelPath>),
}

pub fn resolve_path(
    catalog: &dyn Catalog,
    releases: Releases<'_>,
    at: SnapshotKey,
    path: &RelPath,
) -> Result<Option<Resolved>, PathError> {
    resolve(Ctx { catalog, releases, at }, path.clone(), 0)
}

fn resolve(cx: Ctx<'_>, path: RelPath, hops: u32) -> Result<Option<Resolved>, PathError> {
    let (catalog, at) = (cx.catalog, cx.at);
    if hops > MAX_HOPS {
        return Ok(None);
    }
    if let Some(entry) = catalog.entry(at, &path)? {
        return match &entry.content {
            Content::File { .. } => Ok(Some(Resolved::File(entry))),
            Content::Dir => Ok(Some(Resolved::Dir(Some(path)))),
            Content::Symlink { target } => match path.resolve_link(target) {
                Some(LinkTarget::Path(next)) => resolve(cx, next, hops + 1),
                Some(LinkTarget::Root) => Ok(Some(Resolved::Dir(None))),
                None => Ok(None),
            },
        };
    }
    if let Some(found) = by_hash(cx, &path, hops)? {
        return Ok(Some(found));
    }
    // Not stored under this name: maybe an ancestor is a symlink to a directory.
    let ancestors: Vec<&str> = path.ancestors().collect();
    for dir in ancestors {
        let dir_path = RelPath::new(dir).expect("ancestors of valid paths are valid");
        match catalog.entry(at, &dir_path)?.map(|e| e.content) {
            Some(Content::Dir) => continue,
            Some(Content::Symlink { target }) => {
                let rest = &path.as_str()[dir.len() + 1..];
                // The rewritten path can be invalid (e.g. too long): then it names nothing.
                let Some(rewritten) = dir_path.resolve_link(&target).and_then(|t| t.join(rest)) else {
                    return Ok(None);
                };
                return resolve(cx, rewritten, hops + 1);
            }
            _ => return Ok(None),
        }
    }
    Ok(None)
}

/// apt asks for `<dir>/by-hash/<hash>/<hex>` when the Release says `Acquire-By-Hash: yes`,
/// naming the strongest hash the Release lists. SHA-256 is served from whichever file of
/// `<dir>` has that digest in the snapshot; the others through the suite's Release.
fn by_hash(cx: Ctx<'_>, path: &RelPath, hops: u32) -> Result<Option<Resolved>, PathError> {
    let s = path.as_str();
    let Some((prefix, rest)) = s.rsplit_once("/by-hash/").or_else(|| s.strip_prefix("by-hash/").map(|r| ("", r)))
    else {
        return Ok(None);
    };
    let Some((algo, hex)) = rest.split_once('/').and_then(|(a, h)| Some((HashAlgo::from_name(a)?, h))) else {
        return Ok(None);
    };
    let dir = if prefix.is_empty() {
        None
    } else {
        match resolve(cx, RelPath::new(prefix).expect("prefix of a valid path"), hops + 1)? {
            Some(Resolved::Dir(d)) => d,
            _ => return Ok(None),
        }
    };
    let dir_str = dir.as_ref().map_or("", RelPath::as_str);
    if algo != HashAlgo::Sha256 {
        return listed_in_release(cx, dir.as_ref(), algo, hex);
    }
    let Ok(digest) = hex.parse::<Digest>() else {
        return Ok(None);
    };
    Ok(cx.catalog.child_by_digest(cx.at, dir_str, &digest)?.map(Resolved::File))
}

/// The file of `dir` that the suite's Release lists with this hash. The suite is the
/// nearest directory at or above `dir` whose InRelease (or else Release) lists it:
/// component directories have Release files of their own, without hash lists. Where the
/// Release also gives the file's SHA-256, the bytes served are the ones with that digest.
fn listed_in_release(
    cx: Ctx<'_>,
    dir: Option<&RelPath>,
    algo: HashAlgo,
    hex: &str,
) -> Result<Option<Resolved>, PathError> {
    let dir_str = dir.map_or("", RelPath::as_str);
    let mut suite = Some(dir_str);
    while let Some(at_dir) = suite {
        if let Some((listed, sha256)) = release_lookup(cx, at_dir, algo, hex)? {
            let Some(full) = join(at_dir, listed.as_str()).filter(|f| f.parent() == dir_str) else {
                return Ok(None);
            };
            return match sha256 {
                Some(d) => Ok(cx.catalog.child_by_digest(cx.at, dir_str, &d)?.map(Resolved::File)),
                None => Ok(cx
                    .catalog
                    .entry(cx.at, &full)?
                    .filter(|e| matches!(e.content, Content::File { .. }))
                    .map(Resolved::File)),
            };
        }
        suite = (!at_dir.is_empty()).then(|| at_dir.rsplit_once('/').map_or("", |(p, _)| p));
    }
    Ok(None)
}

/// What the Release file directly in `dir` lists under (algo, hex), if it has one.
fn release_lookup(
    cx: Ctx<'_>,
    dir: &str,
    algo: HashAlgo,
    hex: &str,
) -> Result<Option<(RelPath, Option<Digest>)>, PathError> {
    for name in ["InRelease", "Release"] {
        let Some(path) = join(dir, name) else { return Ok(None) };
        let Some(Entry { content: Content::File { size, sha256 }, .. }) = cx.catalog.entry(cx.at, &path)? else {
            continue;
        };
        let Some(info) = cx.releases.cache.get(cx.releases.blobs, &sha256, size)? else {
            return Ok(None);
        };
        return Ok(info.lookup(algo, hex).map(|(p, d)| (p.clone(), d)));
    }
    Ok(None)
}

/// `rest` inside `dir` (`""` is the root); `None` if that is no valid path (too long).
fn join(dir: &str, rest: &str) -> Option<RelPath> {
    if dir.is_empty() { RelPath::new(rest).ok() } else { RelPath::new(&format!("{dir}/{rest}")).ok() }
}
