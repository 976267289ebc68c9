//! `AuthStore`: tokens, revocation, privacy, upload grants, last use.

use crate::auth::Scope;
use crate::domain::{ArchiveName, Digest};

fn scopes(list: &[&str]) -> Vec<Scope> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}

pub(crate) fn tokens_are_kept_with_their_hash_scopes_and_times(fixture: &super::Fixture) {
    let a = &*fixture.auth;
    assert!(a.tokens().unwrap().is_empty());
    assert!(a.token(1).unwrap().is_none());
    let first = a.insert_token("ci", &Digest::of(b"s1"), &scopes(&["publish:deb", "read:*"]), 100, None).unwrap();
    let second = a.insert_token("admin", &Digest::of(b"s2"), &scopes(&["admin"]), 200, Some(300)).unwrap();
    assert!(second > first, "ids increase");
    let (record, hash) = a.token(first).unwrap().unwrap();
    assert_eq!(hash, Digest::of(b"s1"));
    assert_eq!((record.id, record.name.as_str(), record.created_at, record.expires_at), (first, "ci", 100, None));
    let names: Vec<String> = record.scopes.iter().map(ToString::to_string).collect();
    assert_eq!(names, ["publish:deb", "read:*"]);
    assert_eq!((record.revoked_at, record.last_used_at), (None, None));
    let all = a.tokens().unwrap();
    assert_eq!(
        all.iter().map(|t| (t.id, t.name.as_str(), t.expires_at)).collect::<Vec<_>>(),
        [(first, "ci", None), (second, "admin", Some(300))]
    );
}

pub(crate) fn a_revocation_keeps_its_first_time(fixture: &super::Fixture) {
    let a = &*fixture.auth;
    let id = a.insert_token("ci", &Digest::of(b"s"), &scopes(&["admin"]), 100, None).unwrap();
    assert!(a.revoke_token(id, 150).unwrap());
    assert!(a.revoke_token(id, 170).unwrap(), "revoking again is not an error");
    assert_eq!(a.token(id).unwrap().unwrap().0.revoked_at, Some(150));
    assert!(!a.revoke_token(id + 100, 150).unwrap(), "no such token");
}

pub(crate) fn privacy_creates_the_archive_and_is_read_back(fixture: &super::Fixture) {
    let a = &*fixture.auth;
    let deb: ArchiveName = "deb".parse().unwrap();
    assert_eq!(a.visibility(&deb).unwrap(), None);
    assert!(!a.is_private(&deb).unwrap());
    a.set_private(&deb, true, 100).unwrap();
    assert_eq!(a.visibility(&deb).unwrap(), Some(true));
    assert!(a.is_private(&deb).unwrap());
    a.set_private(&deb, false, 200).unwrap();
    assert_eq!(a.visibility(&deb).unwrap(), Some(false));
    assert_eq!(a.visibility(&"other".parse().unwrap()).unwrap(), None);
}

pub(crate) fn upload_grants_count_from_their_latest_time(fixture: &super::Fixture) {
    let a = &*fixture.auth;
    let blob = Digest::of(b"bytes");
    assert!(!a.upload_granted(1, &blob, 0).unwrap());
    a.grant_upload(1, &blob, 100).unwrap();
    assert!(a.upload_granted(1, &blob, 100).unwrap());
    assert!(!a.upload_granted(1, &blob, 101).unwrap(), "granted before `since`");
    assert!(!a.upload_granted(2, &blob, 0).unwrap(), "another token's grant");
    a.grant_upload(1, &blob, 50).unwrap();
    assert!(a.upload_granted(1, &blob, 100).unwrap(), "an older upload does not move it back");
    a.grant_upload(1, &blob, 500).unwrap();
    assert!(a.upload_granted(1, &blob, 500).unwrap());
}

pub(crate) fn last_use_only_moves_forward(fixture: &super::Fixture) {
    let a = &*fixture.auth;
    let one = a.insert_token("one", &Digest::of(b"1"), &scopes(&["admin"]), 100, None).unwrap();
    let two = a.insert_token("two", &Digest::of(b"2"), &scopes(&["admin"]), 100, None).unwrap();
    a.touch_tokens(&[(one, 300), (two, 200)]).unwrap();
    a.touch_tokens(&[(one, 250), (one + two + 100, 400)]).unwrap();
    let used: Vec<Option<i64>> = a.tokens().unwrap().iter().map(|t| t.last_used_at).collect();
    assert_eq!(used, [Some(300), Some(200)]);
}
