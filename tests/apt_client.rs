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

/// A Release listing SHA512: apt asks for `by-hash/SHA512/<hex>` and gets it at once, with
/// no `Ign:` and no fallback to the plain index name.
#[test]
fn apt_gets_by_hash_sha512_without_a_fallback() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let tree = fixtures().join("apt/sha512");
    let id = publish(&data, "debian", &tree);
    let server = Server::start(&data);
    let keyring = fixtures().join("keys/test-signing.gpg");
    let line = format!("deb [signed-by={}] http://{}/debian/{id}/ stable main", keyring.display(), server.addr);
    let apt = Apt::new(&tmp.path().join("apt"), &line, None);
    let update = apt.run(&["update", "-o", "Debug::Acquire::http=true"], tmp.path());
    update.assert_clean();
    let release = std::fs::read_to_string(tree.join("dists/stable/Release")).unwrap();
    let sha512 = release
        .split_once("\nSHA512:\n")
        .unwrap()
        .1
        .lines()
        .find_map(|l| l.strip_suffix(" main/binary-amd64/Packages.xz"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap();
    let base = format!("/debian/{id}/dists/stable");
    let requests: Vec<&str> = update.text.lines().filter(|l| l.starts_with("GET ")).collect();
    assert_eq!(
        requests,
        [
            format!("GET {base}/InRelease HTTP/1.1"),
            format!("GET {base}/main/binary-amd64/by-hash/SHA512/{sha512} HTTP/1.1"),
        ],
        "{}",
        update.text
    );
    // Each answer's status line follows its "Answer for:" line.
    let lines: Vec<&str> = update.text.lines().collect();
    let statuses: Vec<&str> = lines.windows(2).filter(|w| w[0].starts_with("Answer for: ")).map(|w| w[1]).collect();
    assert_eq!(statuses, ["HTTP/1.1 200 OK", "HTTP/1.1 200 OK"], "{}", update.text);
    let progress: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with("Get:") || l.starts_with("Ign:") || l.starts_with("Hit:"))
        .collect();
    let host = format!("http://{}/debian/{id}", server.addr);
    assert_eq!(
        progress,
        [format!("Get:1 {host} stable InRelease [1792 B]"), format!("Get:2 {host} stable/main amd64 Packages [628 B]")],
        "{}",
        update.text
    );
    apt.download(&["hello-asof"]).assert_clean();
    let hello = std::fs::read(tree.join("pool/main/h/hello-asof/hello-asof_1.0-1_all.deb")).unwrap();
    assert!(apt.downloaded() == [("hello-asof_1.0-1_all.deb".to_string(), hello)]);
}

/// A Release whose Valid-Until has passed: apt 2.6 refuses it with its own message, and
/// accepts it when told not to check (the option or the sources option).
#[test]
fn apt_refuses_an_expired_release_unless_told_not_to_check() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let tree = fixtures().join("apt/expired");
    let id = publish(&data, "security", &tree);
    let server = Server::start(&data);
    let keyring = fixtures().join("keys/test-signing.gpg");
    let line = format!("deb [signed-by={}] http://{}/security/{id}/ stable main", keyring.display(), server.addr);
    let valid_until = chrono::DateTime::parse_from_rfc3339("2024-01-08T00:00:00Z").unwrap().timestamp();
    let apt = Apt::new(&tmp.path().join("refused"), &line, None);
    let before = chrono::Utc::now().timestamp() - valid_until;
    let update = apt.update();
    let after = chrono::Utc::now().timestamp() - valid_until;
    // apt says how long ago it expired, in its own units (e.g. "1051d 1h 11min 31s").
    let since = update
        .problems()
        .first()
        .and_then(|p| p.split_once("(invalid since ")?.1.split_once(')'))
        .map(|(since, _)| since.to_string())
        .unwrap_or_else(|| panic!("no expiry message:\n{}", update.text));
    let secs: i64 = since
        .split(' ')
        .map(|part| {
            let unit = part.trim_start_matches(|c: char| c.is_ascii_digit());
            let n: i64 = part[..part.len() - unit.len()].parse().unwrap();
            n * match unit {
                "d" => 86_400,
                "h" => 3_600,
                "min" => 60,
                "s" => 1,
                other => panic!("unit {other} in {since}"),
            }
        })
        .sum();
    assert!(before <= secs && secs <= after, "{before} <= {secs} <= {after}");
    update.assert_failed_with(&[&format!(
        "E: Release file for http://{}/security/{id}/dists/stable/InRelease is expired (invalid since {since}). \
         Updates for this repository will not be applied.",
        server.addr
    )]);

    // Told not to check, globally or for this source only, apt takes it.
    let hello = std::fs::read(tree.join("pool/main/h/hello-asof/hello-asof_1.0-1_all.deb")).unwrap();
    let apt = Apt::new(&tmp.path().join("option"), &line, None);
    apt.run(&["update", "-o", "Acquire::Check-Valid-Until=false"], tmp.path()).assert_clean();
    apt.download(&["hello-asof"]).assert_clean();
    assert!(apt.downloaded() == [("hello-asof_1.0-1_all.deb".to_string(), hello.clone())]);
    let unchecked = line.replace("[signed-by=", "[check-valid-until=no signed-by=");
    let apt = Apt::new(&tmp.path().join("source-option"), &unchecked, None);
    apt.update().assert_clean();
    apt.download(&["hello-asof"]).assert_clean();
    assert!(apt.downloaded() == [("hello-asof_1.0-1_all.deb".to_string(), hello)]);
}
