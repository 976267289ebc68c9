//! The distributed set-up on one machine: metadata in PostgreSQL, blobs in an S3 bucket,
//! two frontends and a publisher that share nothing else (each its own data directory, as
//! on separate hosts). Real apt installs from both frontends; a publisher or a frontend
//! killed with SIGKILL loses nothing. Needs `scripts/services.sh start postgres s3`.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::apt::apt_download;
use common::{Server, bin, fixtures};

/// What the services script exported, or `None` (after a loud message) outside CI.
fn services() -> Option<(String, Vec<(String, String)>)> {
    let names =
        ["ASOF_TEST_POSTGRES", "ASOF_TEST_S3_ENDPOINT", "ASOF_TEST_S3_ACCESS_KEY_ID", "ASOF_TEST_S3_SECRET_ACCESS_KEY"];
    let values: Vec<String> = names.iter().filter_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty())).collect();
    if values.len() < names.len() {
        if std::env::var_os("CI").is_some() {
            panic!("{names:?} must be set: scripts/test.sh starts PostgreSQL and S3 with scripts/services.sh");
        }
        eprintln!("SKIPPED: {names:?} are not all set (run `scripts/services.sh start postgres s3` first)");
        return None;
    }
    // The standard variables every S3 client reads: nothing asof-specific.
    let env = [
        ("AWS_ENDPOINT", values[1].clone()),
        ("AWS_ACCESS_KEY_ID", values[2].clone()),
        ("AWS_SECRET_ACCESS_KEY", values[3].clone()),
        ("AWS_REGION", "us-east-1".to_string()),
        ("AWS_ALLOW_HTTP", "true".to_string()),
    ];
    Some((values[0].clone(), env.into_iter().map(|(k, v)| (k.to_string(), v)).collect()))
}

/// A fresh database and bucket prefix, dropped and emptied at the end.
struct Deployment {
    admin: String,
    db: String,
    catalog: String,
    blobs: String,
    env: Vec<(String, String)>,
}

impl Deployment {
    fn create() -> Option<Self> {
        let (admin, env) = services()?;
        let name = format!("asof_dist_{}_{}", std::process::id(), chrono::Utc::now().timestamp_micros());
        let mut client = postgres::Client::connect(&admin, postgres::NoTls).unwrap();
        client.batch_execute(&format!("CREATE DATABASE {name} TEMPLATE template0")).unwrap();
        let catalog = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);
        let blobs = format!("s3://asof-test/{name}");
        Some(Self { admin, db: name, catalog, blobs, env })
    }

    /// Flags that put a command on the shared catalog and bucket.
    fn flags(&self) -> [&str; 4] {
        ["--catalog", &self.catalog, "--blobs", &self.blobs]
    }

    fn command(&self, data: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.arg("--data").arg(data).args(self.flags()).args(args).envs(self.env.iter().map(|(k, v)| (k, v)));
        c
    }

    fn run(&self, data: &Path, args: &[&str]) -> Output {
        self.command(data, args).output().unwrap()
    }

    fn publish(&self, data: &Path, tree: &Path) -> String {
        let out = self.run(data, &["publish", "debian/test", tree.to_str().unwrap()]);
        assert!(out.status.success(), "publish failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    fn frontend(&self, data: &Path) -> Server {
        Server::start_with_env(data, &self.flags(), &self.env)
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        if let Ok(mut client) = postgres::Client::connect(&self.admin, postgres::NoTls) {
            let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.db));
        }
        let _ = self.empty_bucket_prefix();
    }
}

impl Deployment {
    /// Deletes what the test stored under its prefix of the bucket.
    fn empty_bucket_prefix(&self) -> object_store::Result<()> {
        use futures::StreamExt;
        use object_store::{ObjectStore, ObjectStoreExt};
        let mut b = object_store::aws::AmazonS3Builder::new().with_bucket_name("asof-test");
        for (k, v) in &self.env {
            b = b.with_config(k.to_ascii_lowercase().parse()?, v);
        }
        let bucket = b.build()?;
        let prefix = object_store::path::Path::from(self.db.as_str());
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let keys: Vec<_> =
                bucket.list(Some(&prefix)).filter_map(|m| async { m.ok().map(|m| m.location) }).collect().await;
            for k in keys {
                bucket.delete(&k).await?;
            }
            Ok(())
        })
    }
}

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
