//! What a path means inside one snapshot: direct entries, symlinks (also as intermediate
//! directories, as in `dists/stable -> bookworm`), and `<dir>/by-hash/SHA256/<hex>`.

use crate::catalog::{Catalog, CatalogError, Entry, SnapshotKey};
use crate::domain::{Digest, LinkTarget, RelPath};
use crate::manifest::Content;

/// Symlink hops allowed before a path counts as a loop (as the kernel's MAXSYMLINKS).
const MAX_HOPS: u32 = 40;

#[derive(Debug)]
pub enum Resolved {
    /// A file; `entry.path` is where it really lives.
    File(Entry),
    /// A directory; `None` is the root.
    Dir(Option<RelPath>),
}

pub fn resolve_path(catalog: &dyn Catalog, at: SnapshotKey, path: &RelPath) -> Result<Option<Resolved>, CatalogError> {
    resolve(catalog, at, path.clone(), 0)
}

fn resolve(catalog: &dyn Catalog, at: SnapshotKey, path: RelPath, hops: u32) -> Result<Option<Resolved>, CatalogError> {
    if hops > MAX_HOPS {
        return Ok(None);
    }
    if let Some(entry) = catalog.entry(at, &path)? {
        return match &entry.content {
            Content::File { .. } => Ok(Some(Resolved::File(entry))),
            Content::Dir => Ok(Some(Resolved::Dir(Some(path)))),
            Content::Symlink { target } => match path.resolve_link(target) {
                Some(LinkTarget::Path(next)) => resolve(catalog, at, next, hops + 1),
                Some(LinkTarget::Root) => Ok(Some(Resolved::Dir(None))),
                None => Ok(None),
            },
        };
    }
    if let Some(found) = by_hash(catalog, at, &path, hops)? {
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
                return resolve(catalog, at, rewritten, hops + 1);
            }
            _ => return Ok(None),
        }
    }
    Ok(None)
}

/// apt asks for `<dir>/by-hash/SHA256/<hex>` when the Release says `Acquire-By-Hash: yes`;
/// it is served from whichever file of `<dir>` has that digest in the snapshot.
fn by_hash(
    catalog: &dyn Catalog,
    at: SnapshotKey,
    path: &RelPath,
    hops: u32,
) -> Result<Option<Resolved>, CatalogError> {
    let s = path.as_str();
    let Some((prefix, hex)) =
        s.rsplit_once("/by-hash/SHA256/").or_else(|| s.strip_prefix("by-hash/SHA256/").map(|hex| ("", hex)))
    else {
        return Ok(None);
    };
    let Ok(digest) = hex.parse::<Digest>() else {
        return Ok(None);
    };
    let dir = if prefix.is_empty() {
        None
    } else {
        match resolve(catalog, at, RelPath::new(prefix).expect("prefix of a valid path"), hops + 1)? {
            Some(Resolved::Dir(d)) => d,
            _ => return Ok(None),
        }
    };
    let dir_str = dir.as_ref().map_or("", RelPath::as_str);
    Ok(catalog.child_by_digest(at, dir_str, &digest)?.map(Resolved::File))
}
