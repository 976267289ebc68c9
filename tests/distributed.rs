//! The distributed set-up on one machine: metadata in PostgreSQL, blobs in an S3 bucket,
//! two frontends and a publisher that share nothing else (each its own data directory, as
//! on separate hosts). Real apt installs from both frontends; a publisher or a frontend
//! killed with SIGKILL loses nothing. Needs `scripts/services.sh start postgres s3`.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::apt::apt_download;
use common::services::Deployment;
use common::{Server, fixtures};

fn snapshot_ids(server: &Server) -> Vec<String> {
    let r = server.get("/api/v1/archives/debian/test/-/snapshots");
    assert_eq!(r.status, 200, "{}", r.text());
    let json = r.json();
    json["snapshots"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap().to_owned()).collect()
}

/// Waits (at most `limit`) until `f` holds, and says how long that took.
fn within(limit: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "not within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    start.elapsed()
}

#[test]
fn two_frontends_and_a_publisher_on_postgres_and_s3_serve_apt_and_survive_sigkill() {
    let Some(d) = Deployment::create() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let [publisher, front_a, front_b] = ["publisher", "a", "b"].map(|n| tmp.path().join(n));
    let v1 = fixtures().join("apt/v1");
    let id1 = d.publish(&publisher, &v1);
    assert!(!publisher.join("asof.db").exists() && !publisher.join("blobs").exists(), "nothing kept locally");

    let frontends = [d.frontend(&front_a), d.frontend(&front_b)];
    for dir in [&publisher, &front_a, &front_b] {
        assert!(!dir.join("label.key").exists(), "the installation's label key is in the catalog, shared");
    }
    let keyring = fixtures().join("keys/test-signing.gpg");
    let hello_v1 = std::fs::read(v1.join("pool/main/h/hello-asof/hello-asof_1.0-1_all.deb")).unwrap();
    for (i, f) in frontends.iter().enumerate() {
        let line = format!("deb [signed-by={}] http://{}/debian/test/{id1}/ stable main", keyring.display(), f.addr);
        let got = apt_download(&tmp.path().join(format!("apt-v1-{i}")), &line, &["hello-asof"]);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, "hello-asof_1.0-1_all.deb");
        assert!(got[0].1 == hello_v1, "hello-asof from frontend {i} differs from the published file");
    }

    // A publisher killed halfway through a large publish commits nothing: both frontends
    // still list one snapshot, and the next publish goes through.
    // Each attempt has bytes of its own: what an attempt uploaded before it died would
    // otherwise make the next one quick.
    let big_tree = |seed: u8| {
        let tree = tmp.path().join(format!("big{seed}"));
        copy_tree(&fixtures().join("apt/v2"), &tree);
        let mut noise = vec![0u8; 96 << 20];
        noise
            .iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b = (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[2] ^ seed);
        std::fs::write(tree.join("pool/noise.bin"), &noise).unwrap();
        (tree, noise)
    };
    for (seed, after) in [(1, Duration::from_millis(250)), (2, Duration::from_millis(700))] {
        let (big, _) = big_tree(seed);
        let mut doomed = d
            .command(&publisher, &["publish", "debian/test", big.to_str().unwrap()])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(after);
        doomed.kill().unwrap();
        let status = doomed.wait().unwrap();
        let said = std::io::read_to_string(doomed.stderr.take().unwrap()).unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9),
            "killed before it finished: {status:?} {said}"
        );
        for f in &frontends {
            assert_eq!(
                snapshot_ids(f),
                std::slice::from_ref(&id1),
                "nothing committed by a publisher killed after {after:?}"
            );
        }
    }

    let (big, noise) = big_tree(3);
    common::wait_until_past(&id1);
    let started = Instant::now();
    let id2 = d.publish(&publisher, &big);
    eprintln!("the whole publish took {:?}", started.elapsed());
    // Committed by another process: both frontends serve it within a second, unrestarted.
    for f in &frontends {
        let took = within(Duration::from_secs(1), || snapshot_ids(f).len() == 2);
        eprintln!("frontend {} saw {id2} after {took:?}", f.addr);
        let r = f.get(&format!("/debian/test/{id2}/pool/noise.bin"));
        assert_eq!(r.status, 200);
        assert!(r.body == noise, "the large file, uploaded in parts, reads back whole");
    }

    // A frontend killed with SIGKILL and started again serves as before; the other never
    // noticed.
    let [a, b] = frontends;
    let a_port = a.addr.clone();
    drop(a);
    let a = d.frontend(&front_a);
    assert_ne!(a.addr, a_port);
    let hello_v2 = std::fs::read(big.join("pool/main/h/hello-asof/hello-asof_1.1-1_all.deb")).unwrap();
    for (i, f) in [&a, &b].into_iter().enumerate() {
        let line = format!("deb [signed-by={}] http://{}/debian/test/{id2}/ stable main", keyring.display(), f.addr);
        let got = apt_download(&tmp.path().join(format!("apt-v2-{i}")), &line, &["hello-asof"]);
        assert_eq!(got[0].0, "hello-asof_1.1-1_all.deb");
        assert!(got[0].1 == hello_v2, "hello-asof 1.1 from frontend {i}");
    }

    // A takedown made from another host reaches both frontends' caches within a second
    // (PostgreSQL NOTIFY), and so does its undo.
    let deb = format!("/debian/test/{id2}/pool/main/h/hello-asof/hello-asof_1.1-1_all.deb");
    for f in [&a, &b] {
        assert_eq!(f.get(&deb).status, 200, "served, and now in the memory cache");
    }
    let out = d.run(
        &publisher,
        &["takedown", "debian/test", "pool/main/h/hello-asof/hello-asof_1.1-1_all.deb", "--reason", "test"],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for f in [&a, &b] {
        let took = within(Duration::from_secs(1), || f.get(&deb).status == 410);
        eprintln!("frontend {} refused the file {took:?} after the takedown", f.addr);
    }
    let out = d.run(&publisher, &["takedown", "--undo", "1"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for f in [&a, &b] {
        within(Duration::from_secs(1), || f.get(&deb).status == 200);
    }

    // Optionally, downloads go straight to the bucket: a frontend redirecting every file
    // to a presigned URL still gives apt exactly the published bytes.
    let config = tmp.path().join("redirect.toml");
    std::fs::write(&config, "[server]\nredirect_downloads_over_bytes = 1\nredirect_ttl_secs = 120\n").unwrap();
    let mut flags = vec!["--config", config.to_str().unwrap()];
    flags.extend(d.flags());
    let redirecting = Server::start_with_env(&tmp.path().join("c"), &flags, &d.env);
    let r = redirecting.get(&format!("/debian/test/{id2}/pool/noise.bin"));
    assert_eq!((r.status, r.header("cache-control")), (302, "private, max-age=60"));
    let location = r.header("location").to_owned();
    assert!(location.starts_with(&format!("{}/asof-test/", d.env[0].1)), "{location}");
    let fetched = std::process::Command::new("curl").args(["-sf", &location]).output().unwrap();
    assert!(fetched.status.success() && fetched.stdout == noise, "the presigned URL serves the file");
    let line =
        format!("deb [signed-by={}] http://{}/debian/test/{id2}/ stable main", keyring.display(), redirecting.addr);
    let got = apt_download(&tmp.path().join("apt-redirected"), &line, &["hello-asof"]);
    assert!(got[0].1 == hello_v2, "hello-asof 1.1 through redirects");

    // Stopped with SIGTERM, a frontend on PostgreSQL exits cleanly (its last catalog handle
    // may be dropped on an async thread, where closing a blocking client once aborted).
    assert_eq!(redirecting.terminate().code(), Some(0));

    // Every blob every snapshot references is in the bucket and hashes to its name.
    let out = d.run(&publisher, &["verify"]);
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.unwrap();
        let dest = to.join(entry.path().strip_prefix(from).unwrap());
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
        } else {
            std::fs::copy(entry.path(), &dest).unwrap();
        }
    }
}
