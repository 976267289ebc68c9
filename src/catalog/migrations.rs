//! Applies the SQL files under `schema/` in order, once each, recorded in `user_version`.

use rusqlite::Connection;

use super::{CatalogError, Result};

/// Migrations are compiled in so the binary needs no files at run time.
const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_init.sql", include_str!("../../schema/0001_init.sql")),
    ("0002_auth.sql", include_str!("../../schema/0002_auth.sql")),
    ("0003_seal.sql", include_str!("../../schema/0003_seal.sql")),
    ("0004_blob_access.sql", include_str!("../../schema/0004_blob_access.sql")),
    ("0005_packages.sql", include_str!("../../schema/0005_packages.sql")),
    ("0006_signing.sql", include_str!("../../schema/0006_signing.sql")),
    ("0007_package_paragraphs.sql", include_str!("../../schema/0007_package_paragraphs.sql")),
    ("0008_channels.sql", include_str!("../../schema/0008_channels.sql")),
    ("0009_lifecycle.sql", include_str!("../../schema/0009_lifecycle.sql")),
    ("0010_retention.sql", include_str!("../../schema/0010_retention.sql")),
    ("0011_takedowns.sql", include_str!("../../schema/0011_takedowns.sql")),
    ("0012_scrub.sql", include_str!("../../schema/0012_scrub.sql")),
    ("0013_space.sql", include_str!("../../schema/0013_space.sql")),
    ("0014_rollout_health.sql", include_str!("../../schema/0014_rollout_health.sql")),
];

pub fn apply(conn: &mut Connection) -> Result<()> {
    let current: usize = conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))? as usize;
    if current > MIGRATIONS.len() {
        return Err(CatalogError::Migration(format!(
            "database schema version {current} is newer than this asof ({}); upgrade asof",
            MIGRATIONS.len()
        )));
    }
    for (i, (name, sql)) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive)?;
        // Re-check inside the lock: another process may have migrated meanwhile.
        let now: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if now as usize > i {
            continue;
        }
        tx.execute_batch(sql).map_err(|e| CatalogError::Migration(format!("{name}: {e}")))?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
        tracing::info!(migration = name, "applied schema migration");
    }
    Ok(())
}
