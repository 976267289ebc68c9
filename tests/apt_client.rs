//! Black-box: the real `apt-get` (isolated from the host's configuration) updates from and
//! downloads packages out of snapshots served by the real `asof` binary.

mod common;

use std::path::Path;

use common::apt::{Apt, apt_download};
use common::*;

#[test]
fn apt_installs_exactly_what_existed_at_each_moment() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let v1 = fixtures().join("apt/v1");
    let v2 = fixtures().join("apt/v2");
    let id1 = publish(&data, "debian/test", &v1);
    // Leave a gap so that an ID strictly between the two snapshots exists.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let id2 = publish(&data, "debian/test", &v2);
    let between = id_plus(&id1, 1);
    assert!(id1 < between && between < id2, "{id1} < {between} < {id2}");

    let server = Server::start(&data);
    let keyring = fixtures().join("keys/test-signing.gpg");
    let hello_v1 = std::fs::read(v1.join("pool/main/h/hello-asof/hello-asof_1.0-1_all.deb")).unwrap();
    let hello_v2 = std::fs::read(v2.join("pool/main/h/hello-asof/hello-asof_1.1-1_all.deb")).unwrap();
    let tz = std::fs::read(v1.join("pool/main/a/asof-tzdata/asof-tzdata_2025b-0+deb12u1_all.deb")).unwrap();

    for (i, (id, hello_name, hello)) in [
        (&id1, "hello-asof_1.0-1_all.deb", &hello_v1),
        (&between, "hello-asof_1.0-1_all.deb", &hello_v1),
        (&id2, "hello-asof_1.1-1_all.deb", &hello_v2),
    ]
    .into_iter()
    .enumerate()
    {
        let line =
            format!("deb [signed-by={}] http://{}/debian/test/{id}/ stable main", keyring.display(), server.addr);
        let got = apt_download(&tmp.path().join(format!("apt{i}")), &line, &["hello-asof", "asof-tzdata"]);
        let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["asof-tzdata_2025b-0+deb12u1_all.deb", hello_name], "at {id}");
        assert!(got[0].1 == tz, "asof-tzdata differs at {id}");
        assert!(got[1].1 == *hello, "hello-asof differs at {id}");
    }

    // asof-extra only exists from the second snapshot on.
    let line = format!("deb [signed-by={}] http://{}/debian/test/{id1}/ stable main", keyring.display(), server.addr);
    let apt = Apt::new(&tmp.path().join("apt-missing"), &line, None);
    apt.update().assert_clean();
    apt.download(&["asof-extra"]).assert_failed_with(&["E: Unable to locate package asof-extra"]);
    assert!(apt.downloaded().is_empty());
}

#[test]
fn apt_refuses_a_snapshot_signed_by_another_key() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let id = publish(&data, "debian", &fixtures().join("apt/v1"));
    let server = Server::start(&data);
    // The Debian archive keyring is a real keyring that did not sign the fixtures.
    let wrong = Path::new("/usr/share/keyrings/debian-archive-keyring.gpg");
    if !wrong.exists() {
        panic!("debian-archive-keyring is part of every Debian 12 install; install it with apt-get");
    }
    let line = format!("deb [signed-by={}] http://{}/debian/{id}/ stable main", wrong.display(), server.addr);
    let apt = Apt::new(&tmp.path().join("apt"), &line, None);
    let url = format!("http://{}/debian/{id}", server.addr);
    apt.update().assert_failed_with(&[
        &format!("W: GPG error: {url} stable InRelease: The following signatures couldn't be verified because the public key is not available: NO_PUBKEY 588654D34D56B23D"),
        &format!("E: The repository '{url} stable InRelease' is not signed."),
    ]);
    // Nothing from the unverified repository is usable.
    apt.download(&["hello-asof"]).assert_failed_with(&["E: Unable to locate package hello-asof"]);
    assert!(apt.downloaded().is_empty());
}

/// The live path (no ID in the sources line) is a normal apt source: it serves the latest
/// snapshot, and after a publish the next `apt-get update` sees the new one.
#[test]
fn apt_follows_the_live_path_of_an_archive() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let v1 = fixtures().join("apt/v1");
    let v2 = fixtures().join("apt/v2");
    publish(&data, "debian/test", &v1);
    let server = Server::start(&data);
    let keyring = fixtures().join("keys/test-signing.gpg");
    let line = format!("deb [signed-by={}] http://{}/debian/test/ stable main", keyring.display(), server.addr);
    let apt = Apt::new(&tmp.path().join("apt"), &line, None);
    apt.update().assert_clean();
    apt.download(&["hello-asof"]).assert_clean();
    let hello_v1 = std::fs::read(v1.join("pool/main/h/hello-asof/hello-asof_1.0-1_all.deb")).unwrap();
    assert!(apt.downloaded() == [("hello-asof_1.0-1_all.deb".to_string(), hello_v1)]);

    publish(&data, "debian/test", &v2);
    apt.update().assert_clean();
    apt.download(&["hello-asof"]).assert_clean();
    let hello_v2 = std::fs::read(v2.join("pool/main/h/hello-asof/hello-asof_1.1-1_all.deb")).unwrap();
    let names: Vec<String> = apt.downloaded().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["hello-asof_1.0-1_all.deb", "hello-asof_1.1-1_all.deb"]);
    assert!(apt.downloaded()[1].1 == hello_v2, "hello-asof 1.1 differs from the fixture");
}
