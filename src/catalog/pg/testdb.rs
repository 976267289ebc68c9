//! Test databases on the PostgreSQL that `scripts/services.sh start postgres` runs (its URL in
//! `ASOF_TEST_POSTGRES`): one fresh database per test, dropped afterwards.

use std::sync::Arc;

use crate::catalog::conformance::Fixture;

use super::PgCatalog;

/// The admin URL, or `None` (after a loud message) outside CI when no server was started.
/// In CI (`CI` set) a missing server fails the test: these tests must not pass unrun.
pub(crate) fn admin_url() -> Option<String> {
    match std::env::var("ASOF_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!("ASOF_TEST_POSTGRES is not set: scripts/test.sh starts PostgreSQL with scripts/services.sh")
        }
        _ => {
            eprintln!("SKIPPED: ASOF_TEST_POSTGRES is not set (run `scripts/services.sh start postgres` first)");
            None
        }
    }
}

/// A database that exists until this is dropped.
pub(crate) struct TestDatabase {
    admin: String,
    name: String,
    pub url: String,
}

impl TestDatabase {
    pub(crate) fn create(admin: &str) -> Self {
        let name = format!("asof_test_{:016x}", rand_u64());
        let mut client = postgres::Client::connect(admin, postgres::NoTls).expect("connecting to the test PostgreSQL");
        client.batch_execute(&format!("CREATE DATABASE {name} TEMPLATE template0")).unwrap();
        let url = match admin.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{name}"),
            None => panic!("ASOF_TEST_POSTGRES must end in /DATABASE: {admin}"),
        };
        Self { admin: admin.to_owned(), name, url }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Ok(mut client) = postgres::Client::connect(&self.admin, postgres::NoTls) {
            let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
        }
    }
}

fn rand_u64() -> u64 {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).expect("randomness");
    u64::from_le_bytes(b)
}

/// A fresh, empty PostgreSQL catalog for the conformance suite.
pub(crate) fn fresh_catalog() -> Option<Fixture> {
    let db = TestDatabase::create(&admin_url()?);
    let catalog = PgCatalog::open(&db.url).unwrap();
    Some(Fixture::of(Arc::new(catalog), db))
}
