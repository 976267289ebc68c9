//! `SpaceCatalog`: what an archive references, and what only it references.

use super::Fixture;
use super::snapshots::{commit_gapped, file, name, upsert};
use crate::domain::Digest;
use crate::signing::store::Recorded;
use crate::space::{ArchiveBlobs, BlobSpace};

pub(crate) fn an_archive_counts_what_it_references_and_what_only_it_references(f: &Fixture) {
    let (one, two) = (name("one"), name("two"));
    assert_eq!(f.space.archive_blobs(&one).unwrap(), None, "no such archive");
    // file(b) is b + 1 bytes: x = file(1) of 2 bytes shared, y = file(2) of 3 bytes only in one,
    // z = file(3) of 4 bytes, once in one's first snapshot and replaced by y in its second.
    commit_gapped(&*f.catalog, &one, vec![upsert("x", file(1)), upsert("z", file(3))]);
    let latest = commit_gapped(&*f.catalog, &one, vec![upsert("z", file(2))]);
    commit_gapped(&*f.catalog, &two, vec![upsert("x", file(1))]);
    let counts = |blobs, bytes, ublobs, ubytes| ArchiveBlobs {
        referenced: BlobSpace { blobs, bytes },
        unique: BlobSpace { blobs: ublobs, bytes: ubytes },
    };
    assert_eq!(f.space.archive_blobs(&one).unwrap(), Some(counts(3, 9, 2, 7)), "x, y, z; only y and z");
    assert_eq!(f.space.archive_blobs(&two).unwrap(), Some(counts(1, 2, 0, 0)));
    // A re-signed file naming z keeps it: no longer one's alone.
    let z = Recorded { sha256: Digest::of(&[3]), size: 4, made_at: 1 };
    f.signing.record_resigned(latest.key, &super::snapshots::path("dists/InRelease"), "http://a/", z).unwrap();
    assert_eq!(f.space.archive_blobs(&one).unwrap(), Some(counts(3, 9, 1, 3)));
}
