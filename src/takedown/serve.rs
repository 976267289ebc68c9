//! What the read path asks: is the file a request resolved to taken down (`screen`), and
//! which entries of a listing are (`marks`). Both read the takedowns table on every call,
//! so a takedown made by another process applies to the very next request.

use super::{Hit, TakedownStore};
use crate::catalog::{CatalogError, Entry, SnapshotKey};
use crate::domain::RelPath;
use crate::manifest::Content;
use crate::resolve::Resolved;

/// `found` unless it is a file a takedown in force hides: by the path asked for (which may
/// be a symlink or a by-hash name), by the path the file really lives at, or by its bytes.
pub fn screen(
    store: &dyn TakedownStore,
    at: SnapshotKey,
    requested: &RelPath,
    found: Resolved,
) -> Result<Result<Resolved, Hit>, CatalogError> {
    let Resolved::File(entry) = &found else {
        return Ok(Ok(found));
    };
    let Content::File { sha256, .. } = &entry.content else {
        return Ok(Ok(found));
    };
    let paths: &[&str] =
        if *requested == entry.path { &[requested.as_str()] } else { &[requested.as_str(), entry.path.as_str()] };
    Ok(match store.hit(at.archive_id, paths, sha256)? {
        Some(hit) => Err(hit),
        None => Ok(found),
    })
}

/// For each of a directory's `children`, the takedown hiding it (files only).
pub fn marks(store: &dyn TakedownStore, at: SnapshotKey, children: &[Entry]) -> Result<Vec<Option<Hit>>, CatalogError> {
    if !store.any_active()? {
        return Ok(vec![None; children.len()]);
    }
    children
        .iter()
        .map(|e| match &e.content {
            Content::File { sha256, .. } => store.hit(at.archive_id, &[e.path.as_str()], sha256),
            _ => Ok(None),
        })
        .collect()
}
