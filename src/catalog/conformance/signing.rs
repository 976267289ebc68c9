//! `SigningStore`: archive keys, and re-signed files whose first record stays in force.

use super::Fixture;
use super::snapshots::{commit_gapped, file, name, path, upsert};
use crate::domain::Digest;
use crate::signing::store::{Recorded, StoredKey};

fn key(fingerprint: &str, set_at: i64) -> StoredKey {
    StoredKey {
        fingerprint: fingerprint.into(),
        secret_key: format!("secret of {fingerprint}"),
        public_key: format!("public of {fingerprint}"),
        set_at,
    }
}

pub(crate) fn a_key_is_set_replaced_and_removed(f: &Fixture) {
    let s = &*f.signing;
    let deb = name("deb");
    assert_eq!(s.signing_key(&deb).unwrap(), None);
    assert!(!s.set_signing_key(&name("ghost"), None, 100).unwrap(), "removing from no archive");
    assert!(f.catalog.archive(&name("ghost")).unwrap().is_none(), "and it is not created");
    assert!(!s.set_signing_key(&deb, Some(&key("AAAA", 100)), 100).unwrap(), "no key before");
    assert!(f.catalog.archive(&deb).unwrap().is_some(), "setting a key creates the archive");
    assert_eq!(s.signing_key(&deb).unwrap(), Some(key("AAAA", 100)));
    assert!(s.set_signing_key(&deb, Some(&key("BBBB", 200)), 200).unwrap(), "replaced");
    assert_eq!(s.signing_key(&deb).unwrap(), Some(key("BBBB", 200)));
    assert!(s.set_signing_key(&deb, None, 300).unwrap(), "removed");
    assert_eq!(s.signing_key(&deb).unwrap(), None);
    assert!(!s.set_signing_key(&deb, None, 400).unwrap(), "nothing left to remove");
}

pub(crate) fn the_first_recorded_resigned_file_is_the_one_in_force(f: &Fixture) {
    let s = &*f.signing;
    let snap = commit_gapped(&*f.catalog, &name("deb"), vec![upsert("dists/x/Release", file(1))]);
    let release = path("dists/x/InRelease");
    let first = Recorded { sha256: Digest::of(b"first"), size: 10, made_at: 1000 };
    let second = Recorded { sha256: Digest::of(b"second"), size: 20, made_at: 2000 };
    assert_eq!(s.resigned(snap.key, &release, "http://a/").unwrap(), None);
    assert_eq!(s.resigned_bases(snap.key, &release).unwrap(), 0);
    assert_eq!(s.record_resigned(snap.key, &release, "http://a/", first).unwrap(), first);
    assert_eq!(s.record_resigned(snap.key, &release, "http://a/", second).unwrap(), first, "the first writer wins");
    assert_eq!(s.resigned(snap.key, &release, "http://a/").unwrap(), Some(first));
    assert_eq!(s.record_resigned(snap.key, &release, "http://b/", second).unwrap(), second, "another base");
    assert_eq!(s.resigned_bases(snap.key, &release).unwrap(), 2);
    assert_eq!(s.resigned_bases(snap.key, &path("dists/x/Release.gpg")).unwrap(), 0);
}
