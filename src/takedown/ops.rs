//! Taking down, purging and undoing, with the checks that keep them safe: a takedown must
//! name a file some snapshot holds, and a purge of a path may not delete bytes that are
//! still served elsewhere.

use std::collections::HashMap;

use super::{Added, Status, Takedown, Target, Undone};
use crate::catalog::CatalogError;
use crate::domain::Digest;
use crate::store::Store;

#[derive(Debug, thiserror::Error)]
pub enum TakedownError {
    #[error("no archive named '{0}'")]
    NoArchive(String),
    #[error("no snapshot of {archive} has a file at {path}")]
    NoSuchFile { archive: String, path: String },
    #[error("no snapshot of any archive has a file with sha256 {0}")]
    NoSuchContent(Digest),
    #[error("{target} is already taken down (takedown {id}); undo it first to change it")]
    Exists { target: String, id: i64 },
    #[error(
        "refusing to purge: the bytes {digest} of {target} are still served at {} (take those down too, or take the content down with --sha256)",
        paths.join(", ")
    )]
    StillServed { target: String, digest: Digest, paths: Vec<String> },
    #[error("no takedown {0}")]
    NoSuch(i64),
    #[error("takedown {0} is already undone")]
    AlreadyUndone(i64),
    #[error("takedown {0} cannot be undone: its bytes were purged and are gone from the store")]
    Purged(i64),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("deleting purged bytes: {0}")]
    Io(#[from] std::io::Error),
}

#[derive(Debug, Clone)]
pub struct TakedownRequest {
    pub target: Target,
    pub status: Status,
    pub reason: String,
    /// Also delete the bytes from the blob store (irreversible).
    pub purge: bool,
}

/// Records a takedown (and with `purge`, deletes its bytes). Purged digests are recorded
/// in the same transaction as the takedown and deleted after it: a crash in between
/// leaves bytes that are no longer served, never a served file without bytes.
pub fn take_down(store: &Store, req: &TakedownRequest, actor: &str, now: i64) -> Result<Takedown, TakedownError> {
    let digests = target_contents(store, &req.target)?;
    let purge = if req.purge { digests } else { Vec::new() };
    let added = store.takedowns.add(&req.target, req.status, &req.reason, &purge, actor, now)?;
    let takedown = match added {
        Added::Added(t) => t,
        Added::NoArchive => return Err(no_archive(&req.target)),
        Added::Exists(id) => return Err(TakedownError::Exists { target: req.target.to_string(), id }),
        Added::StillServed { digest, paths } => {
            return Err(TakedownError::StillServed { target: req.target.to_string(), digest, paths });
        }
    };
    for digest in &purge {
        store.blobs.blocking().remove(digest)?;
    }
    Ok(takedown)
}

/// Serves the file again; refused once its bytes are purged.
pub fn undo(store: &Store, id: i64, actor: &str, now: i64) -> Result<Takedown, TakedownError> {
    match store.takedowns.undo(id, actor, now)? {
        Undone::Undone(t) => Ok(t),
        Undone::NoSuch => Err(TakedownError::NoSuch(id)),
        Undone::AlreadyUndone => Err(TakedownError::AlreadyUndone(id)),
        Undone::Purged => Err(TakedownError::Purged(id)),
    }
}

/// The digests purges deleted, and by which takedown (for `verify`).
pub fn purged_digests(store: &Store) -> Result<HashMap<Digest, i64>, CatalogError> {
    Ok(store.takedowns.purged()?.into_iter().collect())
}

/// The contents a target hides; an error if it hides nothing at all (a typo, most likely).
fn target_contents(store: &Store, target: &Target) -> Result<Vec<Digest>, TakedownError> {
    match target {
        Target::Path { archive, path } => match store.takedowns.contents(archive, path)? {
            None => Err(no_archive(target)),
            Some(d) if d.is_empty() => {
                Err(TakedownError::NoSuchFile { archive: archive.to_string(), path: path.to_string() })
            }
            Some(d) => Ok(d),
        },
        Target::Sha256(digest) => {
            if store.catalog.blob_holders(digest)?.is_empty() {
                return Err(TakedownError::NoSuchContent(*digest));
            }
            Ok(vec![*digest])
        }
    }
}

fn no_archive(target: &Target) -> TakedownError {
    match target {
        Target::Path { archive, .. } => TakedownError::NoArchive(archive.to_string()),
        Target::Sha256(d) => TakedownError::NoSuchContent(*d),
    }
}
