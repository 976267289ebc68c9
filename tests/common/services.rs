//! A PostgreSQL database and an S3 bucket prefix of their own for one test, on the services
//! `scripts/services.sh start postgres s3` runs.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

use super::{Server, bin};

/// The values of `names`, or `None` (after a loud message) outside CI when `service` was
/// not started. In CI a missing service fails the test: these tests must not pass unrun.
fn exported(service: &str, names: &[&str]) -> Option<Vec<String>> {
    let values: Vec<String> = names.iter().filter_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty())).collect();
    if values.len() == names.len() {
        return Some(values);
    }
    if std::env::var_os("CI").is_some() {
        panic!("{names:?} must be set: scripts/test.sh starts {service} with scripts/services.sh");
    }
    eprintln!("SKIPPED: {names:?} are not all set (run `scripts/services.sh start {service}` first)");
    None
}

/// The admin URL of the test PostgreSQL.
pub fn postgres_admin() -> Option<String> {
    exported("postgres", &["ASOF_TEST_POSTGRES"]).map(|mut v| v.remove(0))
}

/// A fresh database, dropped at the end.
pub struct Database {
    admin: String,
    pub name: String,
    pub url: String,
}

impl Database {
    pub fn create(admin: &str) -> Self {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("asof_e2e_{}_{n}_{}", std::process::id(), chrono::Utc::now().timestamp_micros());
        let mut client = postgres::Client::connect(admin, postgres::NoTls).unwrap();
        client.batch_execute(&format!("CREATE DATABASE {name} TEMPLATE template0")).unwrap();
        let url = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);
        Self { admin: admin.to_owned(), name, url }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Ok(mut client) = postgres::Client::connect(&self.admin, postgres::NoTls) {
            let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
        }
    }
}

/// A fresh database and bucket prefix, dropped and emptied at the end.
pub struct Deployment {
    database: Database,
    pub catalog: String,
    pub blobs: String,
    pub env: Vec<(String, String)>,
}

impl Deployment {
    pub fn create() -> Option<Self> {
        let names = [
            "ASOF_TEST_POSTGRES",
            "ASOF_TEST_S3_ENDPOINT",
            "ASOF_TEST_S3_ACCESS_KEY_ID",
            "ASOF_TEST_S3_SECRET_ACCESS_KEY",
        ];
        let values = exported("postgres s3", &names)?;
        // The standard variables every S3 client reads: nothing asof-specific.
        let env = [
            ("AWS_ENDPOINT", values[1].clone()),
            ("AWS_ACCESS_KEY_ID", values[2].clone()),
            ("AWS_SECRET_ACCESS_KEY", values[3].clone()),
            ("AWS_REGION", "us-east-1".to_string()),
            ("AWS_ALLOW_HTTP", "true".to_string()),
        ];
        let database = Database::create(&values[0]);
        let (catalog, blobs) = (database.url.clone(), format!("s3://asof-test/{}", database.name));
        Some(Self { database, catalog, blobs, env: env.into_iter().map(|(k, v)| (k.to_string(), v)).collect() })
    }

    /// Flags that put a command on the shared catalog and bucket.
    pub fn flags(&self) -> [&str; 4] {
        ["--catalog", &self.catalog, "--blobs", &self.blobs]
    }

    pub fn command(&self, data: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.arg("--data").arg(data).args(self.flags()).args(args).envs(self.env.iter().map(|(k, v)| (k, v)));
        c
    }

    /// A command with the services' credentials but without the shared catalog and bucket.
    pub fn command_without_flags(&self, data: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.arg("--data").arg(data).args(args).envs(self.env.iter().map(|(k, v)| (k, v)));
        c
    }

    pub fn run(&self, data: &Path, args: &[&str]) -> Output {
        self.command(data, args).output().unwrap()
    }

    pub fn publish(&self, data: &Path, tree: &Path) -> String {
        let out = self.run(data, &["publish", "debian/test", tree.to_str().unwrap()]);
        assert!(out.status.success(), "publish failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    pub fn frontend(&self, data: &Path) -> Server {
        Server::start_with_env(data, &self.flags(), &self.env)
    }
}

impl Drop for Deployment {
    /// The database goes with its field.
    fn drop(&mut self) {
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
        let prefix = object_store::path::Path::from(self.database.name.as_str());
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
