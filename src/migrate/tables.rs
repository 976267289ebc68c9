//! The embedded catalog's tables copied into PostgreSQL in one transaction: both schemas
//! have the same tables and columns (`schema/` and `schema/postgres/`), so each table is
//! read from SQLite and sent with `COPY`, parents before children, identity sequences moved
//! past the copied ids. Either the whole catalog arrives or nothing does.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use rusqlite::types::ValueRef;

/// Tables each schema keeps for itself (the embedded store keeps the installation's label
/// key in `label.key`, which `migrate` carries over on its own).
const OWN_TABLES: [&str; 2] = ["schema_migrations", "installation"];

/// Tables whose one row the schema itself inserts.
const SEEDED: [&str; 2] = ["seal", "serve_epoch"];

/// Rows per table of a catalog, for the copy's report and its check.
pub type RowCounts = BTreeMap<String, i64>;

pub enum Copied {
    /// The destination was empty and now holds these rows.
    Now(RowCounts),
    /// An earlier run copied the same catalog already (a resumed migration).
    Already(RowCounts),
}

struct Column {
    name: String,
    data_type: String,
    identity: bool,
}

pub fn copy(sqlite: &Path, pg: &mut postgres::Client) -> anyhow::Result<Copied> {
    let src = rusqlite::Connection::open_with_flags(sqlite, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("opening {}", sqlite.display()))?;
    let order = tables_in_dependency_order(pg)?;
    check_same_tables(&src, &order)?;
    let source_counts = counts_sqlite(&src, &order)?;
    let dest_counts = counts_pg(pg, &order)?;
    let holding: Vec<&String> =
        dest_counts.iter().filter(|(t, n)| **n > 0 && !SEEDED.contains(&t.as_str())).map(|(t, _)| t).collect();
    if !holding.is_empty() {
        if dest_counts == source_counts && same_snapshots(&src, pg)? {
            return Ok(Copied::Already(dest_counts));
        }
        bail!(
            "the destination catalog is not empty (rows in {}) and is not a copy of this one; migrate only into an empty catalog",
            holding.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", ")
        );
    }
    let mut tx = pg.transaction()?;
    for table in order.iter().rev() {
        tx.batch_execute(&format!("DELETE FROM {table}"))?;
    }
    for table in &order {
        copy_table(&src, &mut tx, table).with_context(|| format!("copying table {table}"))?;
    }
    // Frontends already running on this catalog drop whatever they cached.
    tx.batch_execute("UPDATE serve_epoch SET n = n + 1 WHERE id = 1; NOTIFY asof_serve_epoch;")?;
    let copied = counts_pg_tx(&mut tx, &order)?;
    if copied != source_counts {
        bail!("row counts differ after the copy (nothing was committed): source {source_counts:?}, copied {copied:?}");
    }
    tx.commit()?;
    Ok(Copied::Now(copied))
}

/// Every table, each after the tables its foreign keys point to.
fn tables_in_dependency_order(pg: &mut postgres::Client) -> anyhow::Result<Vec<String>> {
    let tables: BTreeSet<String> = pg
        .query(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
            &[],
        )?
        .iter()
        .map(|r| r.get::<_, String>(0))
        .filter(|t| !OWN_TABLES.contains(&t.as_str()))
        .collect();
    let edges: Vec<(String, String)> = pg
        .query(
            "SELECT conrelid::regclass::text, confrelid::regclass::text FROM pg_constraint \
             WHERE contype = 'f' AND connamespace = 'public'::regnamespace",
            &[],
        )?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let mut order = Vec::new();
    let mut placed = BTreeSet::new();
    while placed.len() < tables.len() {
        let ready: Vec<&String> = tables
            .iter()
            .filter(|t| !placed.contains(*t))
            .filter(|t| edges.iter().all(|(child, parent)| child != *t || parent == *t || placed.contains(parent)))
            .collect();
        if ready.is_empty() {
            bail!("the PostgreSQL schema's foreign keys form a cycle");
        }
        for t in ready {
            placed.insert(t.clone());
            order.push(t.clone());
        }
    }
    Ok(order)
}

fn check_same_tables(src: &rusqlite::Connection, pg_tables: &[String]) -> anyhow::Result<()> {
    let mut stmt = src.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")?;
    let lite: BTreeSet<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<BTreeSet<String>, _>>()?
        .into_iter()
        .filter(|t| !OWN_TABLES.contains(&t.as_str()))
        .collect();
    let pg: BTreeSet<String> = pg_tables.iter().cloned().collect();
    if lite != pg {
        let only_lite: Vec<_> = lite.difference(&pg).collect();
        let only_pg: Vec<_> = pg.difference(&lite).collect();
        bail!(
            "the two catalogs' schemas differ (is one of them from another asof version?): only in SQLite {only_lite:?}, only in PostgreSQL {only_pg:?}"
        );
    }
    Ok(())
}

fn columns(tx: &mut postgres::Transaction<'_>, table: &str) -> anyhow::Result<Vec<Column>> {
    let rows = tx.query(
        "SELECT column_name::text, data_type::text, is_identity::text FROM information_schema.columns \
         WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position",
        &[&table],
    )?;
    Ok(rows
        .iter()
        .map(|r| Column { name: r.get(0), data_type: r.get(1), identity: r.get::<_, String>(2) == "YES" })
        .collect())
}

fn copy_table(src: &rusqlite::Connection, tx: &mut postgres::Transaction<'_>, table: &str) -> anyhow::Result<()> {
    let cols = columns(tx, table)?;
    let names: Vec<&str> = cols.iter().map(|c| c.name.as_str()).collect();
    let list = names.join(", ");
    let mut stmt = src.prepare(&format!("SELECT {list} FROM {table}"))?;
    let mut rows = stmt.query([])?;
    let mut sink = tx.copy_in(&format!("COPY {table} ({list}) FROM STDIN"))?;
    let mut line = String::new();
    while let Some(row) = rows.next()? {
        line.clear();
        for (i, col) in cols.iter().enumerate() {
            if i > 0 {
                line.push('\t');
            }
            copy_text(&mut line, row.get_ref(i)?, &col.data_type)
                .with_context(|| format!("column {} ({})", col.name, col.data_type))?;
        }
        line.push('\n');
        sink.write_all(line.as_bytes())?;
    }
    sink.finish()?;
    for c in cols.iter().filter(|c| c.identity) {
        tx.execute(
            &format!(
                "SELECT setval(pg_get_serial_sequence('{table}', '{0}'), COALESCE(max({0}), 0) + 1, false) FROM {table}",
                c.name
            ),
            &[],
        )?;
    }
    Ok(())
}

/// One value in `COPY`'s text format, as the destination column's type expects it.
fn copy_text(out: &mut String, value: ValueRef<'_>, data_type: &str) -> anyhow::Result<()> {
    match (value, data_type) {
        (ValueRef::Null, _) => out.push_str("\\N"),
        (ValueRef::Integer(n), "boolean") => out.push(if n != 0 { 't' } else { 'f' }),
        (ValueRef::Integer(n), "bigint" | "integer" | "smallint") => out.push_str(&n.to_string()),
        (ValueRef::Real(x), "double precision" | "real") => out.push_str(&x.to_string()),
        (ValueRef::Text(t), "text") => escape(out, std::str::from_utf8(t)?),
        (ValueRef::Blob(b) | ValueRef::Text(b), "bytea") => {
            // `\x` plus hex, its backslash escaped for COPY.
            out.push_str("\\\\x");
            out.push_str(&hex::encode(b));
        }
        (ValueRef::Integer(n), "text") => out.push_str(&n.to_string()),
        (v, t) => bail!("a {:?} value cannot go into a {t} column", v.data_type()),
    }
    Ok(())
}

fn escape(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

fn counts_sqlite(src: &rusqlite::Connection, tables: &[String]) -> anyhow::Result<RowCounts> {
    tables
        .iter()
        .map(|t| Ok((t.clone(), src.query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get(0))?)))
        .collect()
}

fn counts_pg(pg: &mut postgres::Client, tables: &[String]) -> anyhow::Result<RowCounts> {
    let mut tx = pg.transaction()?;
    counts_pg_tx(&mut tx, tables)
}

fn counts_pg_tx(tx: &mut postgres::Transaction<'_>, tables: &[String]) -> anyhow::Result<RowCounts> {
    tables.iter().map(|t| Ok((t.clone(), tx.query_one(&format!("SELECT count(*) FROM {t}"), &[])?.get(0)))).collect()
}

/// Whether both catalogs hold the same snapshots (archive, ID, digest): what tells a
/// finished copy of this catalog from another one of the same size.
fn same_snapshots(src: &rusqlite::Connection, pg: &mut postgres::Client) -> anyhow::Result<bool> {
    const Q: &str =
        "SELECT a.name, s.id, s.digest FROM snapshots s JOIN archives a ON a.id = s.archive_id ORDER BY a.name, s.id";
    let mut stmt = src.prepare(Q)?;
    let lite: Vec<(String, i64, Vec<u8>)> =
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<Result<_, _>>()?;
    let pg: Vec<(String, i64, Vec<u8>)> = pg.query(Q, &[])?.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect();
    Ok(lite == pg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_text_escapes_and_types() {
        let mut out = String::new();
        copy_text(&mut out, ValueRef::Text(b"a\tb\\c\nd"), "text").unwrap();
        out.push('|');
        copy_text(&mut out, ValueRef::Blob(&[0xab, 0x01]), "bytea").unwrap();
        out.push('|');
        copy_text(&mut out, ValueRef::Integer(1), "boolean").unwrap();
        out.push('|');
        copy_text(&mut out, ValueRef::Null, "bigint").unwrap();
        assert_eq!(out, "a\\tb\\\\c\\nd|\\\\xab01|t|\\N");
        let e = copy_text(&mut String::new(), ValueRef::Real(1.5), "bytea").unwrap_err();
        assert_eq!(e.to_string(), "a Real value cannot go into a bytea column");
    }
}
