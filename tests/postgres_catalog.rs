//! The metadata in PostgreSQL (`--catalog`), blobs in a shared data directory: what a
//! publisher commits is served by two frontends started before it, without restarts.
//! Needs the PostgreSQL of `scripts/services.sh start postgres` (`ASOF_TEST_POSTGRES`).

mod common;

use std::path::Path;
use std::process::Command;

use common::services::{Database, postgres_admin};
use common::{Server, bin};

fn publish(data: &Path, catalog: &str, tree: &Path) -> String {
    let out = Command::new(bin())
        .arg("--data")
        .arg(data)
        .args(["--catalog", catalog, "publish", "deb"])
        .arg(tree)
        .output()
        .unwrap();
    assert!(out.status.success(), "publish failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn write(tree: &Path, path: &str, bytes: &[u8]) {
    let file = tree.join(path);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(file, bytes).unwrap();
}

#[test]
fn two_frontends_serve_what_a_publisher_commits_to_the_postgres_catalog() {
    let Some(admin) = postgres_admin() else { return };
    let db = Database::create(&admin);
    let (data, tree) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write(tree.path(), "dists/stable/Release", b"Suite: stable\n");
    write(tree.path(), "pool/main/h/hello/hello_1.0_amd64.deb", b"hello 1.0");
    let first = publish(data.path(), &db.url, tree.path());

    let frontends = [
        Server::start_with(data.path(), &["--catalog", &db.url]),
        Server::start_with(data.path(), &["--catalog", &db.url]),
    ];
    assert!(!data.path().join("asof.db").exists(), "the metadata is in PostgreSQL, not in the data directory");
    for f in &frontends {
        let r = f.get(&format!("/deb/{first}/pool/main/h/hello/hello_1.0_amd64.deb"));
        assert_eq!((r.status, r.body.as_slice()), (200, &b"hello 1.0"[..]));
    }

    // A new snapshot, committed by another process: both frontends serve it, unrestarted.
    write(tree.path(), "dists/stable/Release", b"Suite: stable\nVersion: 2\n");
    common::wait_until_past(&first);
    let second = publish(data.path(), &db.url, tree.path());
    assert!(second > first, "{second} after {first}");
    for f in &frontends {
        let r = f.get(&format!("/deb/{second}/dists/stable/Release"));
        assert_eq!((r.status, r.body.as_slice()), (200, &b"Suite: stable\nVersion: 2\n"[..]));
        let r = f.get(&format!("/deb/{first}/dists/stable/Release"));
        assert_eq!((r.status, r.body.as_slice()), (200, &b"Suite: stable\n"[..]), "the first is as it was");
    }
}

#[test]
fn the_catalog_is_chosen_by_the_environment_or_the_config_file() {
    let Some(admin) = postgres_admin() else { return };
    let db = Database::create(&admin);
    let (data, tree) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write(tree.path(), "dists/stable/Release", b"Suite: stable\n");
    let out = Command::new(bin())
        .arg("--data")
        .arg(data.path())
        .env("ASOF_CATALOG", &db.url)
        .args(["publish", "deb"])
        .arg(tree.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let id = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(!data.path().join("asof.db").exists());
    let config = data.path().join("asof.toml");
    std::fs::write(&config, format!("catalog = \"{}\"\n", db.url)).unwrap();
    let out = Command::new(bin())
        .arg("--data")
        .arg(data.path())
        .arg("--config")
        .arg(&config)
        .args(["snapshots", "deb"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().lines().next().map(|l| l.split_whitespace().next()),
        Some(Some(id.as_str()))
    );
    // Without either, the embedded catalog of the data directory: empty.
    let out = Command::new(bin()).arg("--data").arg(data.path()).args(["snapshots", "deb"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stderr).trim(), "error: no archive named 'deb'");
    assert!(data.path().join("asof.db").exists());
}
