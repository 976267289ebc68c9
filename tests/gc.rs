//! Garbage collection: exact reports, the grace period, re-referenced blobs kept, one run
//! at a time, and collections SIGKILLed at random points beside publishes and pushes never
//! lose a referenced blob (`asof verify` clean after every trial).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use asof::blob::{BlobStore, LocalBlobStore};
use asof::domain::Digest;
use common::*;
use rand::{Rng, SeedableRng};

/// Stores `bytes` as a blob nobody references (what a publish killed before its commit
/// leaves), last used `age` ago.
fn orphan(data: &Path, bytes: &[u8], age: Duration) -> (Digest, PathBuf) {
    orphan_in(&LocalBlobStore::open(data.join("blobs")).unwrap(), bytes, age)
}

fn orphan_in(blobs: &LocalBlobStore, bytes: &[u8], age: Duration) -> (Digest, PathBuf) {
    let out = blobs.blocking().put(&mut &bytes[..], None, None).unwrap();
    let path = blobs.path_of(&out.digest);
    filetime::set_file_mtime(&path, filetime::FileTime::from_system_time(SystemTime::now() - age)).unwrap();
    (out.digest, path)
}

/// Moves every candidate's "unreferenced since" back by `secs`, as if that time had passed.
fn age_candidates(data: &Path, secs: i64) {
    let db = rusqlite::Connection::open(data.join("asof.db")).unwrap();
    db.execute("UPDATE gc_candidates SET since = since - ?1", [secs]).unwrap();
}

fn candidates(data: &Path) -> i64 {
    let db = rusqlite::Connection::open(data.join("asof.db")).unwrap();
    db.query_row("SELECT COUNT(*) FROM gc_candidates", [], |r| r.get(0)).unwrap()
}

fn gc_json(data: &Path, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["gc", "--json"];
    all.extend_from_slice(args);
    let out = asof(data, &all);
    assert!(out.status.success(), "gc failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn report(
    dry_run: bool,
    grace: u64,
    enqueued: u64,
    examined: u64,
    freed: (u64, u64),
    referenced: u64,
    recent: u64,
) -> serde_json::Value {
    serde_json::json!({
        "dry_run": dry_run, "grace_secs": grace, "restored": 0, "enqueued": enqueued, "examined": examined,
        "freed_blobs": freed.0, "freed_bytes": freed.1, "referenced": referenced, "recently_used": recent,
    })
}

const HOUR: Duration = Duration::from_secs(3600);

#[test]
fn gc_frees_exactly_what_is_unreferenced_past_the_grace_period() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let tree = tmp.path().join("tree");
    std::fs::create_dir_all(tree.join("pool")).unwrap();
    std::fs::write(tree.join("pool/a.deb"), b"referenced a").unwrap();
    publish(&data, "deb", &tree);
    let (_, old) = orphan(&data, &[7u8; 100], 2 * HOUR);
    let (_, young) = orphan(&data, &[8u8; 250], Duration::ZERO);

    // A zero grace would not honour a publish's claim: refused before anything is done.
    let zero = asof(&data, &["gc", "--grace", "0s"]);
    assert_eq!(zero.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&zero.stderr),
        "error: the gc grace period must be above zero: a zero grace would collect blobs that publishes in flight have just claimed\n"
    );
    assert!(old.exists() && young.exists());

    // Found by the rescan, unreferenced since now: nothing is due yet.
    assert_eq!(gc_json(&data, &["--rescan", "--grace", "1h"]), report(false, 3600, 2, 0, (0, 0), 0, 0));
    assert_eq!(gc_json(&data, &["--rescan", "--grace", "1h"]), report(false, 3600, 0, 0, (0, 0), 0, 0));
    age_candidates(&data, 2 * 3600);

    // Due by the catalog; the young one was stored within the grace period.
    assert_eq!(gc_json(&data, &["--dry-run", "--grace", "1h"]), report(true, 3600, 0, 2, (1, 100), 0, 1));
    assert!(old.exists() && young.exists());
    assert_eq!(gc_json(&data, &["--grace", "1h"]), report(false, 3600, 0, 2, (1, 100), 0, 1));
    assert!(!old.exists(), "the old orphan was not deleted");
    assert!(young.exists(), "a blob used within the grace period was deleted");
    assert_eq!(candidates(&data), 1);

    // Referenced again by a publish: dropped from the candidates, bytes kept.
    std::fs::write(tree.join("pool/young.deb"), [8u8; 250]).unwrap();
    publish(&data, "deb", &tree);
    filetime::set_file_mtime(&young, filetime::FileTime::from_system_time(SystemTime::now() - 2 * HOUR)).unwrap();
    assert_eq!(gc_json(&data, &["--grace", "1h"]), report(false, 3600, 0, 1, (0, 0), 1, 0));
    assert!(young.exists());
    assert_eq!(candidates(&data), 0);
    assert_eq!(gc_json(&data, &["--grace", "1h"]), report(false, 3600, 0, 0, (0, 0), 0, 0));
    verify_clean(&data);

    let text = asof(&data, &["gc"]);
    assert_eq!(
        String::from_utf8_lossy(&text.stdout),
        "freed 0 blob(s), 0 bytes; examined 0 candidate(s): 0 referenced again, 0 used within the grace period\n"
    );
}

#[test]
fn a_second_collection_finds_the_lock_held_and_does_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (_, path) = orphan(&data, b"orphan", 48 * HOUR);
    gc_json(&data, &["--rescan"]);
    age_candidates(&data, 48 * 3600);
    let lock_path = data.join("gc.lock");
    let held = std::fs::File::options().create(true).truncate(false).write(true).open(&lock_path).unwrap();
    held.try_lock().unwrap();
    let out = asof(&data, &["gc"]);
    assert_eq!(out.status.code(), Some(75));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "asof gc: another garbage collection is running (lock {} is held); nothing done\n",
            lock_path.display()
        )
    );
    assert!(path.exists());
    drop(held);
    assert_eq!(gc_json(&data, &[]), report(false, 86400, 0, 1, (1, 6), 0, 0));
    assert!(!path.exists());
}

/// The bytes of file `i` of trial `t`: every trial re-uses, in its tree, half of the
/// orphans made for it, so the publish claims blobs that gc is deleting at that moment.
fn content(t: usize, i: usize) -> Vec<u8> {
    let mut v = format!("trial {t} file {i}\n").into_bytes();
    v.resize(2000 + i * 37, b'x');
    v
}

#[test]
fn gc_killed_at_random_points_beside_publishes_and_pushes_never_loses_a_referenced_blob() {
    const TRIALS: usize = 50;
    const ORPHANS: usize = 100;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let out = asof(&data, &["token", "create", "--name", "pusher", "--scope", "publish:pushed"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let server = Server::start(&data);
    let mut rng = rand::rngs::StdRng::seed_from_u64(12);
    let mut killed = 0;
    let mut kept: Vec<PathBuf> = Vec::new();
    let mut unused: Vec<PathBuf> = Vec::new();
    for t in 0..TRIALS {
        // Orphans 0, 4, 8... go into a publish, 2, 6, 10... into a push, odd ones nowhere.
        let published = tmp.path().join(format!("published{t}"));
        let pushed = tmp.path().join(format!("pushed{t}"));
        for dir in [&published, &pushed] {
            std::fs::create_dir_all(dir.join("pool")).unwrap();
        }
        let blobs = LocalBlobStore::open(data.join("blobs")).unwrap();
        for i in 0..ORPHANS {
            let (_, p) = orphan_in(&blobs, &content(t, i), 2 * HOUR);
            match i % 4 {
                0 => std::fs::write(published.join(format!("pool/f{i}.deb")), content(t, i)).unwrap(),
                2 => std::fs::write(pushed.join(format!("pool/f{i}.deb")), content(t, i)).unwrap(),
                _ => {}
            }
            if i % 2 == 0 { kept.push(p) } else { unused.push(p) }
        }
        gc_json(&data, &["--rescan", "--grace", "1h"]);
        age_candidates(&data, 2 * 3600);
        let spawn = |args: &[&str]| {
            Command::new(bin())
                .arg("--data")
                .arg(&data)
                .args(args)
                .env("ASOF_TOKEN", &token)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let publisher = spawn(&["publish", "busy", published.to_str().unwrap()]);
        let pusher = spawn(&["push", &server.url(""), "pushed", pushed.to_str().unwrap(), "--retries", "1"]);
        let mut gcs = [spawn(&["gc", "--grace", "1h"]), spawn(&["gc", "--grace", "1h"])];
        std::thread::sleep(Duration::from_millis(rng.gen_range(0..60)));
        let _ = gcs[0].kill(); // SIGKILL, at a random point of its run (or after it).
        for g in &mut gcs {
            let status = g.wait().unwrap();
            if status.code().is_none() {
                killed += 1;
            } else {
                assert!(matches!(status.code(), Some(0 | 75)), "gc exited with {status}");
            }
        }
        let (publisher, pusher) = (publisher.wait_with_output().unwrap(), pusher.wait_with_output().unwrap());
        assert!(
            publisher.status.success(),
            "publish of trial {t} failed: {}",
            String::from_utf8_lossy(&publisher.stderr)
        );
        assert!(pusher.status.success(), "push of trial {t} failed: {}", String::from_utf8_lossy(&pusher.stderr));
        // A killed run may have left blobs set aside: the next run resolves them first.
        gc_json(&data, &["--grace", "1h"]);
        verify_clean(&data);
        assert_eq!(std::fs::read_dir(data.join("blobs/gc")).unwrap().count(), 0, "trial {t} left blobs aside");
    }
    eprintln!("killed {killed} of {TRIALS} collections");
    assert!(killed >= TRIALS / 3, "only {killed} of {TRIALS} collections were killed before finishing");
    // Finally, every orphan no tree took is gone, and nothing else: the bytes a run killed
    // after its commit left aside were discarded by the next run, no rescan needed.
    age_candidates(&data, 2 * 3600);
    gc_json(&data, &["--grace", "1h"]);
    verify_clean(&data);
    for p in &kept {
        assert!(p.exists(), "{} was referenced and is gone", p.display());
    }
    for p in &unused {
        assert!(!p.exists(), "{} was never referenced and is still there", p.display());
    }
}

fn age_uploads(data: &Path, secs: i64) {
    let db = rusqlite::Connection::open(data.join("asof.db")).unwrap();
    db.execute("UPDATE upload_grants SET granted_at = granted_at - ?1", [secs]).unwrap();
}

#[test]
fn an_upload_never_committed_is_collected_one_grace_period_later() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let out = asof(&data, &["token", "create", "--name", "t", "--scope", "publish:debian"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let body = b"uploaded, never committed";
    let digest = Digest::of(body);
    {
        let server = Server::start(&data);
        let bearer = format!("Bearer {token}");
        let len = body.len().to_string();
        let r = server.request_body(
            "PUT",
            &format!("/api/v1/blobs/{digest}"),
            &[("Authorization", bearer.as_str()), ("Content-Length", len.as_str())],
            Some(body),
        );
        assert_eq!(r.status, 201, "{}", r.text());
    }
    let path = LocalBlobStore::open(data.join("blobs")).unwrap().path_of(&digest);
    assert!(path.exists());
    assert_eq!(gc_json(&data, &["--grace", "1h"]), report(false, 3600, 0, 0, (0, 0), 0, 0));
    // Unreferenced for two hours, but its upload is younger than the grace period.
    age_candidates(&data, 2 * 3600);
    filetime::set_file_mtime(&path, filetime::FileTime::from_system_time(SystemTime::now() - 2 * HOUR)).unwrap();
    assert_eq!(gc_json(&data, &["--grace", "1h"]), report(false, 3600, 0, 1, (0, 0), 0, 1));
    assert!(path.exists());
    age_uploads(&data, 2 * 3600);
    assert_eq!(gc_json(&data, &["--grace", "1h"]), report(false, 3600, 0, 1, (1, body.len() as u64), 0, 0));
    assert!(!path.exists());
    verify_clean(&data);
}

#[test]
fn serve_collects_on_its_schedule() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (_, path) = orphan(&data, b"left by a killed publish", 2 * HOUR);
    assert_eq!(gc_json(&data, &["--rescan"]), report(false, 86400, 1, 0, (0, 0), 0, 0));
    let config = tmp.path().join("asof.toml");
    std::fs::write(&config, "[gc]\ngrace = \"1s\"\ninterval = \"1s\"\n").unwrap();
    let _server = Server::start_with(&data, &["--config", config.to_str().unwrap()]);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    // The bytes leave their path inside gc's write transaction, before the candidate row
    // goes with its commit: wait for both.
    while path.exists() || candidates(&data) != 0 {
        assert!(std::time::Instant::now() < deadline, "serve did not collect the orphan within 20 s");
        std::thread::sleep(Duration::from_millis(100));
    }

    std::fs::write(&config, "[gc]\ninterval = \"0s\"\n").unwrap();
    let out =
        Command::new(bin()).arg("--data").arg(&data).arg("--config").arg(&config).args(["serve"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).ends_with("[gc] interval must be positive, or \"off\"\n"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn mtime(path: &Path) -> SystemTime {
    std::fs::metadata(path).unwrap().modified().unwrap()
}

fn set_age(path: &Path, age: Duration) {
    filetime::set_file_mtime(path, filetime::FileTime::from_system_time(SystemTime::now() - age)).unwrap();
}

#[test]
fn a_publish_claims_only_the_blobs_nothing_references() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let tree = tmp.path().join("tree");
    std::fs::create_dir_all(tree.join("pool")).unwrap();
    std::fs::write(tree.join("pool/a.deb"), b"unchanged a").unwrap();
    std::fs::write(tree.join("pool/b.deb"), b"unchanged b").unwrap();
    publish(&data, "deb", &tree);
    let blobs = LocalBlobStore::open(data.join("blobs")).unwrap();
    let (a, b) = (blobs.path_of(&Digest::of(b"unchanged a")), blobs.path_of(&Digest::of(b"unchanged b")));
    // An orphan (a publish killed before its commit) that the next publish takes up.
    let (_, orphan) = orphan(&data, b"taken up again", 2 * HOUR);
    std::fs::write(tree.join("pool/c.deb"), b"taken up again").unwrap();
    set_age(&a, 2 * HOUR);
    set_age(&b, 2 * HOUR);
    let (a_before, b_before) = (mtime(&a), mtime(&b));

    // a and b are stat-cache hits, referenced by the latest snapshot: looked at, not
    // written. The orphan is referenced by nothing: claimed, so a gc honours it.
    publish(&data, "deb", &tree);
    assert_eq!(mtime(&a), a_before, "an unchanged, referenced blob was claimed");
    assert_eq!(mtime(&b), b_before, "an unchanged, referenced blob was claimed");
    let claimed = SystemTime::now().duration_since(mtime(&orphan)).unwrap();
    assert!(claimed < Duration::from_secs(60), "the unreferenced blob was not claimed ({claimed:?} old)");
    verify_clean(&data);
}

#[test]
fn a_blob_left_aside_is_reported_by_verify_and_resolved_only_by_gc() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let tree = tmp.path().join("tree");
    std::fs::create_dir_all(tree.join("pool")).unwrap();
    std::fs::write(tree.join("pool/a.deb"), b"referenced a").unwrap();
    let id = publish(&data, "deb", &tree);
    let referenced = Digest::of(b"referenced a");
    let (candidate, candidate_path) = orphan(&data, b"a candidate", 2 * HOUR);
    let (collected, collected_path) = orphan(&data, b"collected, not yet deleted", 2 * HOUR);
    gc_json(&data, &["--rescan"]);
    let db = rusqlite::Connection::open(data.join("asof.db")).unwrap();
    db.execute("DELETE FROM gc_candidates WHERE sha256 = ?1", [&collected.as_bytes()[..]]).unwrap();
    // What a collection killed with these three set aside leaves (the row of the third
    // deleted by its commit).
    let aside = data.join("blobs/gc");
    let blobs = LocalBlobStore::open(data.join("blobs")).unwrap();
    for (d, home) in [
        (referenced, blobs.path_of(&referenced)),
        (candidate, candidate_path.clone()),
        (collected, collected_path.clone()),
    ] {
        std::fs::rename(home, aside.join(d.hex())).unwrap();
    }

    // Opening the store (any command) leaves them alone; verify names the one that hurts.
    for _ in 0..2 {
        let out = asof(&data, &["verify"]);
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!(
                "missing blob {referenced} (12 bytes), used by deb/{id}/pool/a.deb: only in {}, set aside by a garbage collection that is running or was killed (the next `asof gc` puts it back)\n",
                aside.join(referenced.hex()).display()
            )
        );
    }
    assert_eq!(std::fs::read_dir(&aside).unwrap().count(), 3);

    // A dry run changes nothing; a run puts back the referenced blob and the candidate,
    // and deletes the one its killed predecessor had collected.
    let dry = gc_json(&data, &["--dry-run"]);
    assert_eq!(dry["restored"], 0);
    assert_eq!(std::fs::read_dir(&aside).unwrap().count(), 3);
    let mut expected = report(false, 86400, 0, 0, (1, 26), 0, 0);
    expected["restored"] = 2.into();
    assert_eq!(gc_json(&data, &[]), expected);
    assert_eq!(std::fs::read_dir(&aside).unwrap().count(), 0);
    assert!(candidate_path.exists() && !collected_path.exists());
    verify_clean(&data);
}
