//! Which bytes a snapshot's `dists/<suite>/{InRelease,Release,Release.gpg}` answer when its
//! archive is (or was) re-signed, computed once and recorded so they never change.

use std::io::Read;

use super::key::ArchiveKey;
use super::release::with_snapshots_field;
use super::store::{Recorded, StoredKey};
use crate::catalog::Snapshot;
use crate::domain::{Digest, RelPath};
use crate::http::ApiError;
use crate::manifest::Content;
use crate::mirror::deb822::clearsigned_text;
use crate::store::Store;

/// The three files apt reads first, directly under `dists/<suite>/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseFile {
    InRelease,
    Release,
    ReleaseGpg,
}

impl ReleaseFile {
    /// Which of the three `path` is, if any. Only `dists/<suite>/<name>`: the `Release`
    /// files deeper down (`main/binary-amd64/Release`) are listed by hash and stay as they are.
    pub fn of(path: &RelPath) -> Option<Self> {
        let mut segs = path.as_str().split('/');
        let (Some("dists"), Some(_suite), Some(name), None) = (segs.next(), segs.next(), segs.next(), segs.next())
        else {
            return None;
        };
        match name {
            "InRelease" => Some(Self::InRelease),
            "Release" => Some(Self::Release),
            "Release.gpg" => Some(Self::ReleaseGpg),
            _ => None,
        }
    }
}

/// What to serve for one of the three files of `snap` at `path` (the resolved path, after
/// symlinks), with `Snapshots: <base>/<archive>/@SNAPSHOTID@/`: `None` for the original.
/// `key` is the archive's signing key as the caller read it (`None`: signing is off).
///
/// Served re-signed: a recorded variant when signing is on, or when the answer is final
/// (an immutable answer that was re-signed stays re-signed after signing is turned off);
/// otherwise, when signing is on, a new variant, recorded before it is served.
/// Re-signed variants kept per snapshot and file, one per base URL it was asked under.
pub const MAX_BASES: u64 = 4;

pub fn choose(
    store: &Store,
    snap: &Snapshot,
    is_final: bool,
    path: &RelPath,
    file: ReleaseFile,
    base: &str,
    key: Option<StoredKey>,
) -> Result<Option<Recorded>, ApiError> {
    let recorded = store.signing.resigned(snap.key, path, base)?;
    let Some(key) = key else {
        return Ok(recorded.filter(|_| is_final));
    };
    if recorded.is_some() {
        return Ok(recorded);
    }
    // Without `public_url` the base comes from the Host header: a client inventing hosts
    // must not make the server sign and keep a file each. Past a few bases, the published
    // file is served (set [server] public_url to have one base).
    if store.signing.resigned_bases(snap.key, path)? >= MAX_BASES {
        return Ok(None);
    }
    let key = ArchiveKey::from_armored(&key.secret_key).map_err(|e| {
        ApiError::internal(anyhow::anyhow!("the stored signing key of {} is unusable: {e}", snap.archive))
    })?;
    let url = format!("{}/{}/@SNAPSHOTID@/", base.trim_end_matches('/'), snap.archive);
    let Some(bytes) = resign(store, snap, path, file, &key, &url)? else {
        return Ok(None);
    };
    let put = store.blobs.blocking().put(&mut bytes.as_slice(), None, None).map_err(|e| match e {
        crate::blob::PutError::Io(io) => ApiError::from(io),
        other => ApiError::internal(other),
    })?;
    let file = Recorded { sha256: put.digest, size: put.size, made_at: chrono::Utc::now().timestamp() };
    Ok(Some(store.signing.record_resigned(snap.key, path, base, file)?))
}

/// The re-signed bytes, or `None` when the snapshot's Release text cannot be had (no
/// `Release` beside a `Release.gpg`, an InRelease that is not clearsigned, not UTF-8):
/// those are served as published.
fn resign(
    store: &Store,
    snap: &Snapshot,
    path: &RelPath,
    file: ReleaseFile,
    key: &ArchiveKey,
    url: &str,
) -> Result<Option<Vec<u8>>, ApiError> {
    let release_path = match file {
        ReleaseFile::InRelease => path.clone(),
        ReleaseFile::Release | ReleaseFile::ReleaseGpg => {
            let sibling = format!("{}/Release", path.parent());
            RelPath::from_segments(sibling.split('/')).map_err(ApiError::internal)?
        }
    };
    let Some(original) = file_text(store, snap, &release_path)? else { return Ok(None) };
    let text = match file {
        ReleaseFile::InRelease => match clearsigned_text(&original) {
            Some(t) => t,
            None => return Ok(None),
        },
        _ => original,
    };
    let release = with_snapshots_field(&text, url);
    // Signed when the snapshot was committed, so the bytes depend on nothing but the
    // snapshot, the base and the key.
    let at = snap.committed_at_ms.div_euclid(1000);
    let signed = match file {
        ReleaseFile::InRelease => key.clearsign(&release, at),
        ReleaseFile::Release => Ok(release.into_bytes()),
        ReleaseFile::ReleaseGpg => key.detached(release.as_bytes(), at),
    };
    signed.map(Some).map_err(ApiError::internal)
}

/// The text of a regular file of the snapshot (`None`: absent, not a file, not UTF-8).
fn file_text(store: &Store, snap: &Snapshot, path: &RelPath) -> Result<Option<String>, ApiError> {
    let Some(entry) = store.catalog.entry(snap.key, path)? else { return Ok(None) };
    let Content::File { sha256, size } = entry.content else { return Ok(None) };
    // Anything larger is no Release file apt would read either: served as published.
    if size > crate::resolve::release::MAX_RELEASE_BYTES {
        return Ok(None);
    }
    // Bytes the store lacks (quarantined, say) are answered by the ordinary file path,
    // with its status: not re-signed.
    let Some(bytes) = read_blob(store, &sha256)? else { return Ok(None) };
    Ok(String::from_utf8(bytes).ok())
}

fn read_blob(store: &Store, digest: &Digest) -> Result<Option<Vec<u8>>, ApiError> {
    let Some(mut blob) = store.blobs.blocking().open(digest)? else { return Ok(None) };
    let mut buf = Vec::with_capacity(blob.len as usize);
    blob.reader.read_to_end(&mut buf)?;
    Ok(Some(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(p: &str) -> Option<ReleaseFile> {
        ReleaseFile::of(&RelPath::from_segments(p.split('/')).unwrap())
    }

    #[test]
    fn only_the_suite_level_files_are_re_signed() {
        assert_eq!(of("dists/stable/InRelease"), Some(ReleaseFile::InRelease));
        assert_eq!(of("dists/stable/Release"), Some(ReleaseFile::Release));
        assert_eq!(of("dists/stable/Release.gpg"), Some(ReleaseFile::ReleaseGpg));
        assert_eq!(of("dists/stable/main/binary-amd64/Release"), None);
        assert_eq!(of("dists/InRelease"), None);
        assert_eq!(of("pool/stable/InRelease"), None);
        assert_eq!(of("dists/stable/Packages"), None);
    }
}
