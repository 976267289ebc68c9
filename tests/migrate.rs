//! `asof migrate`: an embedded data directory copied into PostgreSQL and an S3 bucket serves
//! the same answers there; a run that stops halfway is resumed by running it again; a
//! catalog that is not empty is refused. Needs `scripts/services.sh start postgres s3`.

mod common;

use std::path::Path;

use common::services::Deployment;
use common::{Server, asof, fixtures, publish};

fn migrate(d: &Deployment, from: &Path, to: &Path) -> std::process::Output {
    let from = from.to_str().unwrap();
    d.command_without_flags(to, &["migrate", "--from", from, "--to-catalog", &d.catalog, "--to-blobs", &d.blobs])
        .output()
        .unwrap()
}

fn blob_count(data: &Path) -> usize {
    walkdir::WalkDir::new(data.join("blobs/sha256"))
        .into_iter()
        .filter(|e| e.as_ref().unwrap().file_type().is_file())
        .count()
}

#[test]
fn an_embedded_store_moves_to_postgres_and_s3_and_serves_the_same() {
    let Some(d) = Deployment::create() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (old, new) = (tmp.path().join("old"), tmp.path().join("new"));
    let id1 = publish(&old, "debian/test", &fixtures().join("apt/v1"));
    common::wait_until_past(&id1);
    let id2 = publish(&old, "debian/test", &fixtures().join("apt/v2"));
    let out = asof(&old, &["token", "create", "--name", "ci", "--scope", "publish:debian/test"]);
    assert!(out.status.success());
    let blobs = blob_count(&old);

    // A catalog that is not empty is refused, after the blobs went over.
    let out = d.run(&new, &["token", "create", "--name", "stray", "--scope", "read:x"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = migrate(&d, &old, &new);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "error: the destination catalog is not empty (rows in tokens) and is not a copy of this one; migrate only into an empty catalog"
    );
    let mut pg = postgres::Client::connect(&d.catalog, postgres::NoTls).unwrap();
    pg.batch_execute("DELETE FROM tokens").unwrap();

    // Run again: the blobs are there already, the catalog goes over.
    let out = migrate(&d, &old, &new);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8(out.stdout).unwrap();
    let expected_start =
        format!("migrated {}: 0 blobs (0 B) copied, {blobs} already in {}; catalog copied (", old.display(), d.blobs);
    assert!(said.starts_with(&expected_start), "{said}");
    assert!(said.trim_end().ends_with(&format!("; {blobs} referenced blobs found in place")), "{said}");

    // The metrics labels of private archives stay the same: the key came along.
    let key: Vec<u8> = pg.query_one("SELECT label_key FROM installation", &[]).unwrap().get(0);
    assert_eq!(key, std::fs::read(old.join("label.key")).unwrap());

    // And once more: nothing to do.
    let out = migrate(&d, &old, &new);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let again = String::from_utf8(out.stdout).unwrap();
    assert!(
        again.contains(&format!("0 blobs (0 B) copied, {blobs} already in"))
            && again.contains("catalog already there ("),
        "{again}"
    );

    // Both set-ups answer alike: the listing, and every file of both snapshots.
    let (before, after) = (Server::start(&old), d.frontend(&new));
    let listing = "/api/v1/archives/debian/test/-/snapshots";
    assert_eq!(before.get(listing).json(), after.get(listing).json());
    for (id, tree) in [(&id1, "apt/v1"), (&id2, "apt/v2")] {
        for entry in walkdir::WalkDir::new(fixtures().join(tree)) {
            let entry = entry.unwrap();
            if !entry.file_type().is_file() {
                continue;
            }
            let rel = entry.path().strip_prefix(fixtures().join(tree)).unwrap().to_str().unwrap().to_owned();
            let (a, b) =
                (before.get(&format!("/debian/test/{id}/{rel}")), after.get(&format!("/debian/test/{id}/{rel}")));
            assert_eq!((a.status, b.status), (200, 200), "{id}/{rel}");
            assert!(a.body == b.body, "{id}/{rel} differs after the migration");
        }
    }
    // The token came along and still authenticates (its hash was copied, not re-made).
    let tokens = d.run(&new, &["token", "list"]);
    assert!(String::from_utf8_lossy(&tokens.stdout).contains("ci"), "{}", String::from_utf8_lossy(&tokens.stdout));
    // The verifier reads every blob back from the bucket and re-hashes it.
    let out = d.run(&new, &["verify"]);
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_directory_without_a_store_is_refused() {
    let Some(d) = Deployment::create() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let out = migrate(&d, &tmp.path().join("nothing"), &tmp.path().join("new"));
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        format!(
            "error: {} holds no embedded catalog ({} is missing)",
            tmp.path().join("nothing").display(),
            tmp.path().join("nothing/asof.db").display()
        )
    );
}
