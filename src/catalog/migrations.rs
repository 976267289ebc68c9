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
    ("0015_serve_epoch.sql", include_str!("../../schema/0015_serve_epoch.sql")),
];

/// The migrations released while they were counted by position (`user_version`), in order.
const POSITIONAL_RELEASES: usize = 9;

/// Applies, in list order, every migration whose name is not recorded in
/// `schema_migrations`. Names, not positions: migrations written on branches that merge in
/// another order still each run exactly once. A database from before names were recorded
/// counted positions in `user_version`; its first `user_version` names are recorded as
/// applied. An up-to-date database is only read (opening a store never needs the write lock).
pub fn apply(conn: &mut Connection) -> Result<()> {
    if pending(conn)?.is_empty() {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)",
    )?;
    let recorded: i64 = tx.query_row("SELECT COUNT(*) FROM schema_migrations", [], |r| r.get(0))?;
    let positional: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if recorded == 0 && positional > 0 {
        for (name, _) in MIGRATIONS.iter().take(positional as usize) {
            tx.execute("INSERT INTO schema_migrations (name, applied_at) VALUES (?1, 0)", [name])?;
        }
    }
    tx.commit()?;
    for (name, sql) in pending(conn)? {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive)?;
        // Re-check inside the lock: another process may have migrated meanwhile.
        let done: bool =
            tx.query_row("SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE name = ?1)", [name], |r| r.get(0))?;
        if done {
            continue;
        }
        tx.execute_batch(sql).map_err(|e| CatalogError::Migration(format!("{name}: {e}")))?;
        tx.execute(
            "INSERT INTO schema_migrations (name, applied_at) VALUES (?1, ?2)",
            rusqlite::params![name, chrono::Utc::now().timestamp()],
        )?;
        let applied: i64 = tx.query_row("SELECT COUNT(*) FROM schema_migrations", [], |r| r.get(0))?;
        tx.pragma_update(None, "user_version", applied)?;
        tx.commit()?;
        tracing::info!(migration = name, "applied schema migration");
    }
    Ok(())
}

/// The migrations not applied yet, in list order; an error if the database has applied
/// one this asof does not know (it is newer).
fn pending(conn: &Connection) -> Result<Vec<(&'static str, &'static str)>> {
    let has_table: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations')",
        [],
        |r| r.get(0),
    )?;
    let applied: Vec<String> = if has_table {
        let mut stmt = conn.prepare("SELECT name FROM schema_migrations")?;
        stmt.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?
    } else {
        let positional: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if positional as usize > MIGRATIONS.len() {
            return Err(newer(format!("schema version {positional}")));
        }
        // Every release counted positions only up to here; past it, development builds
        // ordered later migrations differently, so a position says nothing certain.
        if positional as usize > POSITIONAL_RELEASES {
            return Err(CatalogError::Migration(format!(
                "the database has schema version {positional} from a development build of asof, whose \
                 migrations were counted by position; recreate it with this asof"
            )));
        }
        MIGRATIONS.iter().take(positional as usize).map(|(n, _)| n.to_string()).collect()
    };
    if let Some(unknown) = applied.iter().find(|a| !MIGRATIONS.iter().any(|(n, _)| n == a)) {
        return Err(newer(format!("migration {unknown}")));
    }
    Ok(MIGRATIONS.iter().filter(|(n, _)| !applied.iter().any(|a| a == n)).copied().collect())
}

fn newer(what: String) -> CatalogError {
    CatalogError::Migration(format!("the database has {what}, newer than this asof; upgrade asof"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(conn: &Connection) -> Vec<String> {
        let mut stmt = conn.prepare("SELECT name FROM schema_migrations ORDER BY name").unwrap();
        stmt.query_map([], |r| r.get(0)).unwrap().collect::<rusqlite::Result<_>>().unwrap()
    }

    #[test]
    fn every_migration_runs_once_by_name_and_positional_databases_are_adopted() {
        let all: Vec<String> = MIGRATIONS.iter().map(|(n, _)| n.to_string()).collect();
        let mut fresh = Connection::open_in_memory().unwrap();
        apply(&mut fresh).unwrap();
        assert_eq!(names(&fresh), all);
        apply(&mut fresh).unwrap();
        assert_eq!(names(&fresh), all, "a second open applies nothing");

        // A database migrated positionally up to 0009, before names were recorded.
        let mut old = Connection::open_in_memory().unwrap();
        for (_, sql) in &MIGRATIONS[..9] {
            old.execute_batch(sql).unwrap();
        }
        old.pragma_update(None, "user_version", 9).unwrap();
        apply(&mut old).unwrap();
        assert_eq!(names(&old), all);
        let version: i64 = old.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);

        // Past the released positions, a position is not trusted.
        let mut dev = Connection::open_in_memory().unwrap();
        for (_, sql) in &MIGRATIONS[..9] {
            dev.execute_batch(sql).unwrap();
        }
        dev.pragma_update(None, "user_version", 11).unwrap();
        assert_eq!(
            apply(&mut dev).unwrap_err().to_string(),
            "migrating metadata schema: the database has schema version 11 from a development build of asof, \
             whose migrations were counted by position; recreate it with this asof"
        );

        // One this asof does not know: refused, nothing changed.
        fresh.execute("INSERT INTO schema_migrations (name, applied_at) VALUES ('9999_future.sql', 0)", []).unwrap();
        assert_eq!(
            apply(&mut fresh).unwrap_err().to_string(),
            "migrating metadata schema: the database has migration 9999_future.sql, newer than this asof; upgrade asof"
        );
    }
}
