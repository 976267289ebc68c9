//! `ServeEpoch` on the embedded SQLite catalog (schema/0015_serve_epoch.sql).

use std::path::PathBuf;
use std::time::Duration;

use rusqlite::{ErrorCode, TransactionBehavior};

use super::change_watch::ChangeWatch;
use super::{CatalogError, ChangeSignal, Result, ServeEpoch, SqliteCatalog};

impl ServeEpoch for SqliteCatalog {
    fn settled_epoch(&self) -> Result<Option<u64>> {
        let mut conn = self.conn()?;
        // Taking the write lock, without waiting, proves that no commit is half done: a
        // writer holds it from its first WAL frame until its commit is visible. A reader
        // that merely read `n` could miss a commit whose frames it had already been told
        // about (see `change_watch`).
        conn.busy_timeout(Duration::ZERO)?;
        let settled = (|| match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
            Ok(tx) => {
                let n: i64 =
                    tx.prepare_cached("SELECT n FROM serve_epoch WHERE id = 1")?.query_row([], |r| r.get(0))?;
                tx.rollback()?;
                Ok(Some(n as u64))
            }
            Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == ErrorCode::DatabaseBusy => Ok(None),
            Err(e) => Err(CatalogError::from(e)),
        })();
        // Restored whatever happened: the connection goes back to the pool for writers.
        conn.busy_timeout(Duration::from_secs(30))?;
        settled
    }

    fn watch(&self) -> std::io::Result<Option<Box<dyn ChangeSignal>>> {
        let conn = self.conn().map_err(std::io::Error::other)?;
        // An in-memory or temporary database has no file another process could write.
        let Some(path) = conn.path().filter(|p| !p.is_empty()).map(PathBuf::from) else { return Ok(None) };
        Ok(Some(Box::new(ChangeWatch::new(&path)?)))
    }
}
