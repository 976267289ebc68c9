//! The PostgreSQL catalog, for several frontends and publishers on different hosts sharing
//! one metadata store: the same model and rules as the SQLite catalog (`catalog::rules`,
//! the conformance suite), with row locks where SQLite has its single writer.
//!
//! Concurrency: a commit locks its archive's row (`FOR UPDATE`), so commits to one archive
//! are serialized and the base check and the ID stamp cannot race; it reads the seal
//! `FOR SHARE` just before stamping, so `seal`'s `UPDATE` waits for the commits already
//! stamping, and a commit that reads the seal after it sees the new value. Reads that must
//! agree run in one `REPEATABLE READ` transaction.

mod apply;
mod auth;
mod catalog;
mod channels;
mod epoch;
mod gc;
mod jobs;
mod packages;
mod retention;
mod rows;
mod scrub;
mod signing;
mod space;
mod takedowns;

use std::time::Duration;

use postgres::NoTls;
use postgres::error::SqlState;
use r2d2_postgres::PostgresConnectionManager;

use super::{CatalogError, Result};

pub struct PgCatalog {
    pool: OffAsyncDrop<r2d2::Pool<PostgresConnectionManager<NoTls>>>,
    /// For connections of its own (the change listener).
    config: postgres::Config,
}

/// Dropped on a thread of its own when the drop would happen on an async thread (the last
/// `Store` of a server may go with its runtime's tasks): closing a blocking client's
/// connection runs a runtime, which a thread driving async tasks may not.
struct OffAsyncDrop<T: Send + 'static>(Option<T>);

impl<T: Send + 'static> Drop for OffAsyncDrop<T> {
    fn drop(&mut self) {
        if let Some(inner) = self.0.take() {
            if tokio::runtime::Handle::try_current().is_ok() {
                std::thread::spawn(move || drop(inner));
            } else {
                drop(inner);
            }
        }
    }
}

type Conn = r2d2::PooledConnection<PostgresConnectionManager<NoTls>>;

/// Migrations, compiled in; applied in order, each once, recorded by name.
const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_core.sql", include_str!("../../../schema/postgres/0001_core.sql")),
    ("0002_auth.sql", include_str!("../../../schema/postgres/0002_auth.sql")),
    ("0003_signing_space_gc.sql", include_str!("../../../schema/postgres/0003_signing_space_gc.sql")),
    ("0004_takedowns.sql", include_str!("../../../schema/postgres/0004_takedowns.sql")),
    ("0005_scrub.sql", include_str!("../../../schema/postgres/0005_scrub.sql")),
    ("0006_packages.sql", include_str!("../../../schema/postgres/0006_packages.sql")),
    ("0007_channels.sql", include_str!("../../../schema/postgres/0007_channels.sql")),
    ("0008_retention.sql", include_str!("../../../schema/postgres/0008_retention.sql")),
    ("0009_installation.sql", include_str!("../../../schema/postgres/0009_installation.sql")),
];

/// The advisory lock that serializes schema migrations of processes starting together.
const MIGRATION_LOCK: i64 = 0x6173_6f66_6d69_6772; // "asofmigr"

impl PgCatalog {
    /// Connects to `url` (`postgres://user@host:port/db`), creating or upgrading the schema.
    pub fn open(url: &str) -> Result<Self> {
        let config: postgres::Config =
            url.parse().map_err(|e| CatalogError::Backend(format!("catalog URL {}: {e}", redact(url))))?;
        // One connection first: a wrong address or password is reported at once, with its
        // cause, rather than as the pool's timeout 30 s later.
        let mut first = config
            .connect(NoTls)
            .map_err(|e| CatalogError::Backend(format!("connecting to {}: {}", redact(url), describe(&e))))?;
        migrate(&mut first)?;
        drop(first);
        let manager = PostgresConnectionManager::new(config.clone(), NoTls);
        let pool = r2d2::Pool::builder()
            .max_size(16)
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(30))
            .build(manager)?;
        Ok(Self { pool: OffAsyncDrop(Some(pool)), config })
    }

    fn conn(&self) -> Result<Conn> {
        Ok(self.pool.0.as_ref().expect("present until dropped").get()?)
    }

    /// The installation's label key (see `store::Store::label_key`): `candidate` when no
    /// process stored one yet, else the one stored first.
    pub fn label_key(&self, candidate: [u8; 32]) -> Result<[u8; 32]> {
        let mut conn = self.conn()?;
        conn.execute(
            "INSERT INTO installation (id, label_key) VALUES (1, $1) ON CONFLICT (id) DO NOTHING",
            &[&candidate.as_slice()],
        )?;
        let key: Vec<u8> = conn.query_one("SELECT label_key FROM installation WHERE id = 1", &[])?.get(0);
        key.try_into().map_err(|_| CatalogError::Backend("installation.label_key is not 32 bytes".into()))
    }
}

fn migrate(client: &mut postgres::Client) -> Result<()> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)",
    )?;
    for (name, sql) in MIGRATIONS {
        let done: bool =
            tx.query_one("SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE name = $1)", &[name])?.get(0);
        if done {
            continue;
        }
        tx.batch_execute(sql).map_err(|e| CatalogError::Migration(format!("{name}: {}", describe(&e))))?;
        tx.execute(
            "INSERT INTO schema_migrations (name, applied_at) VALUES ($1, $2)",
            &[name, &chrono::Utc::now().timestamp()],
        )?;
    }
    tx.commit()?;
    Ok(())
}

impl From<postgres::Error> for CatalogError {
    fn from(e: postgres::Error) -> Self {
        if e.code() == Some(&SqlState::DISK_FULL) {
            CatalogError::DiskFull(describe(&e))
        } else {
            CatalogError::Backend(describe(&e))
        }
    }
}

/// The server's message when there is one: `postgres::Error`'s own text is only its kind.
fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {} ({})", db.severity(), db.message(), db.code().code()),
        None => match std::error::Error::source(e) {
            Some(source) => format!("{e}: {source}"),
            None => e.to_string(),
        },
    }
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
pub(crate) mod testdb;

#[cfg(test)]
mod tests {
    #[test]
    fn the_first_label_key_stored_is_everyones() {
        let Some(admin) = super::testdb::admin_url() else { return };
        let db = super::testdb::TestDatabase::create(&admin);
        let (a, b) = (super::PgCatalog::open(&db.url).unwrap(), super::PgCatalog::open(&db.url).unwrap());
        assert_eq!(a.label_key([1; 32]).unwrap(), [1; 32]);
        assert_eq!(b.label_key([2; 32]).unwrap(), [1; 32]);
    }

    #[test]
    fn job_locks_are_held_by_one_connection_at_a_time() {
        let Some(admin) = super::testdb::admin_url() else { return };
        let db = super::testdb::TestDatabase::create(&admin);
        let (a, b) = (super::PgCatalog::open(&db.url).unwrap(), super::PgCatalog::open(&db.url).unwrap());
        crate::catalog::jobs::conformance::one_holder_at_a_time(&a, &b);
    }

    use super::*;

    #[test]
    fn passwords_are_not_repeated_in_messages() {
        assert_eq!(redact("postgres://asof:s3cret@db:5432/asof"), "postgres://asof:***@db:5432/asof");
        assert_eq!(redact("postgres://asof@db/asof"), "postgres://asof@db/asof");
        assert_eq!(redact("host=db user=asof"), "host=db user=asof");
    }

    #[test]
    fn a_bad_url_is_a_clear_error() {
        let err = PgCatalog::open("postgres://asof:pw@db:notaport/x").err().unwrap().to_string();
        assert_eq!(
            err,
            "metadata database error: catalog URL postgres://asof:***@db:notaport/x: invalid connection string"
        );
    }

    #[test]
    fn an_unreachable_server_is_reported_at_once_with_its_cause() {
        // Port 1 on loopback: nothing listens there.
        let err = PgCatalog::open("postgres://asof:pw@127.0.0.1:1/x").err().unwrap().to_string();
        assert_eq!(
            err,
            "metadata database error: connecting to postgres://asof:***@127.0.0.1:1/x: \
             error connecting to server: Connection refused (os error 111)"
        );
    }

    mod conformance {
        use crate::catalog::conformance::catalog_conformance;
        catalog_conformance!(super::super::testdb::fresh_catalog());
    }
}
