//! `verify`: re-hash every blob, check every manifest entry has its blob, and recompute
//! every snapshot's content digest. Reports each problem precisely.

use std::collections::HashMap;
use std::io::Read;

use serde::Serialize;

use crate::catalog::{CatalogError, SnapshotQuery};
use crate::domain::Digest;
use crate::domain::digest::Hasher;
use crate::manifest::content_digest;
use crate::scrub::Quarantined;
use crate::store::Store;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum Problem {
    /// A stored blob whose bytes no longer hash to its name.
    CorruptBlob { digest: Digest, actual: Digest, location: String },
    /// A blob that could not be read at all.
    UnreadableBlob { digest: Digest, error: String, location: String },
    /// A manifest entry whose blob is not in the store.
    MissingBlob { digest: Digest, size: u64, used_by: String },
    /// A manifest entry whose blob is not in the store but set aside by a garbage
    /// collection (running, or killed before it put it back).
    SetAsideBlob { digest: Digest, size: u64, used_by: String, location: String },
    /// A blob whose size differs from what manifests record.
    SizeMismatch { digest: Digest, expected: u64, actual: u64 },
    /// A snapshot whose manifest no longer hashes to its recorded digest.
    SnapshotDigest { archive: String, snapshot: String, expected: Digest, actual: Digest },
    /// A blob a scrub found corrupt or missing and quarantined (`scrub`), still without
    /// good bytes.
    Quarantined {
        digest: Digest,
        kind: crate::scrub::ProblemKind,
        found_at: i64,
        detail: String,
        refetch: Option<String>,
    },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::CorruptBlob { digest, actual, location } => {
                write!(f, "corrupt blob {digest}: content hashes to {actual} ({location})")
            }
            Problem::UnreadableBlob { digest, error, location } => {
                write!(f, "unreadable blob {digest}: {error} ({location})")
            }
            Problem::MissingBlob { digest, size, used_by } => {
                write!(f, "missing blob {digest} ({size} bytes), used by {used_by}")
            }
            Problem::SetAsideBlob { digest, size, used_by, location } => write!(
                f,
                "missing blob {digest} ({size} bytes), used by {used_by}: only in {location}, set aside by a garbage collection that is running or was killed (the next `asof gc` puts it back)"
            ),
            Problem::SizeMismatch { digest, expected, actual } => {
                write!(f, "blob {digest} is {actual} bytes, manifests say {expected}")
            }
            Problem::SnapshotDigest { archive, snapshot, expected, actual } => {
                write!(f, "snapshot {archive}/{snapshot}: manifest hashes to {actual}, recorded digest is {expected}")
            }
            Problem::Quarantined { digest, kind, found_at, detail, refetch } => {
                let when = chrono::DateTime::from_timestamp(*found_at, 0).unwrap_or_default();
                write!(f, "quarantined blob {digest}: {} since {when}: {detail}", kind.as_str())?;
                match refetch {
                    Some(r) => write!(f, "; upstream: {r}"),
                    None => Ok(()),
                }
            }
        }
    }
}

/// A blob manifests reference that a takedown purged on purpose: reported, not a problem.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TakenDownBlob {
    pub digest: Digest,
    pub size: u64,
    pub takedown: i64,
}

impl std::fmt::Display for TakenDownBlob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "taken down: blob {} ({} bytes) purged by takedown {}", self.digest, self.size, self.takedown)
    }
}

#[derive(Debug, Default, Serialize)]
pub struct VerifyReport {
    pub blobs_checked: u64,
    pub bytes_hashed: u64,
    pub snapshots_checked: u64,
    pub entries_checked: u64,
    pub problems: Vec<Problem>,
    /// Referenced blobs whose bytes a takedown purged (`asof takedown --purge`).
    pub taken_down: Vec<TakenDownBlob>,
}

/// The SHA-256 of everything `r` gives, read through `buf`; `read` is told each chunk's
/// length (for byte counts and pacing).
pub fn hash_reader(r: &mut dyn Read, buf: &mut [u8], read: &mut dyn FnMut(usize)) -> std::io::Result<Digest> {
    let mut h = Hasher::new();
    loop {
        match r.read(buf) {
            Ok(0) => return Ok(h.finish()),
            Ok(n) => {
                h.update(&buf[..n]);
                read(n);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Blobs recorded as verified per catalog transaction.
const MARK_BATCH: usize = 1000;

pub fn verify(store: &Store) -> anyhow::Result<VerifyReport> {
    let mut report = VerifyReport::default();
    let mut stored: HashMap<Digest, u64> = HashMap::new();
    let mut buf = vec![0u8; 256 * 1024];
    // Good blobs are recorded as verified now (for `asof verify --since`), in batches.
    let (mut verified, now) = (Vec::new(), chrono::Utc::now().timestamp());
    store.blobs.blocking().for_each(&mut |digest| {
        report.blobs_checked += 1;
        let location = store.blobs.blocking().describe(&digest);
        let Some(mut blob) = store.blobs.blocking().open(&digest)? else {
            return Ok(());
        };
        let actual = match hash_reader(&mut blob.reader, &mut buf, &mut |n| report.bytes_hashed += n as u64) {
            Ok(actual) => actual,
            Err(e) => {
                report.problems.push(Problem::UnreadableBlob { digest, error: e.to_string(), location });
                // Present but unreadable: reported once, not also as missing.
                stored.insert(digest, blob.len);
                return Ok(());
            }
        };
        if actual != digest {
            report.problems.push(Problem::CorruptBlob { digest, actual, location });
        } else {
            verified.push(digest);
            if verified.len() >= MARK_BATCH {
                store.scrub.scrub_mark_verified(&std::mem::take(&mut verified), now).map_err(std::io::Error::other)?;
            }
        }
        stored.insert(digest, blob.len);
        Ok(())
    })?;

    store.scrub.scrub_mark_verified(&verified, now)?;

    // Which snapshot first uses each blob, to say where a missing blob hurts.
    let mut missing: HashMap<Digest, u64> = HashMap::new();
    store.catalog.referenced_blobs(&mut |digest, size| {
        match stored.get(&digest) {
            None => {
                missing.insert(digest, size);
            }
            Some(&actual) if actual != size => {
                report.problems.push(Problem::SizeMismatch { digest, expected: size, actual })
            }
            Some(_) => {}
        }
        Ok(())
    })?;

    let mut missing_users: HashMap<Digest, String> = HashMap::new();
    for archive in store.catalog.archives()? {
        let mut after = None;
        loop {
            let page =
                store.catalog.snapshots(&archive.name, &SnapshotQuery { after, limit: 500, ..Default::default() })?;
            let Some(last) = page.last() else { break };
            after = Some(last.id);
            for snap in &page {
                report.snapshots_checked += 1;
                let mut manifest = Vec::new();
                store.catalog.for_each_entry(snap.key, &mut |e| {
                    if let Some(d) = e.content.digest()
                        && missing.contains_key(d)
                    {
                        missing_users.entry(*d).or_insert_with(|| format!("{}/{}/{}", archive.name, snap.id, e.path));
                    }
                    manifest.push(e.to_manifest());
                    Ok::<_, CatalogError>(())
                })?;
                report.entries_checked += manifest.len() as u64;
                let actual = content_digest(&manifest);
                if actual != snap.digest {
                    report.problems.push(Problem::SnapshotDigest {
                        archive: archive.name.to_string(),
                        snapshot: snap.id.to_string(),
                        expected: snap.digest,
                        actual,
                    });
                }
            }
        }
    }
    // A quarantined blob is reported as such (what was found, where its bytes went),
    // not also as missing.
    for q in store.scrub.scrub_quarantined()? {
        missing.remove(&q.sha256);
        let Quarantined { sha256: digest, kind, found_at, detail, refetch, .. } = q;
        report.problems.push(Problem::Quarantined { digest, kind, found_at, detail, refetch });
    }
    let mut missing: Vec<_> = missing.into_iter().collect();
    missing.sort();
    let purged = crate::takedown::purged_digests(store)?;
    for (digest, size) in missing {
        if let Some(&takedown) = purged.get(&digest) {
            report.taken_down.push(TakenDownBlob { digest, size, takedown });
            continue;
        }
        let used_by = missing_users.remove(&digest).unwrap_or_else(|| "an unreachable entry".into());
        report.problems.push(match store.blobs.blocking().aside_location(&digest)? {
            Some(location) => Problem::SetAsideBlob { digest, size, used_by, location },
            None => Problem::MissingBlob { digest, size, used_by },
        });
    }
    Ok(report)
}
