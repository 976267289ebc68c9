//! `asof diff` and `asof packages`: the package API on the local data directory.

use anyhow::{Context, bail};

use crate::domain::{ArchiveName, SnapshotId};
use crate::packages::parse::Kind;
use crate::packages::query::{self, DiffFilter, PackageChange};
use crate::resolve::resolve_id;
use crate::store::Store;

/// Brings the archive's package index up to date (a local command does its own backfill)
/// and returns the archive's id.
fn indexed(store: &Store, archive: &ArchiveName) -> anyhow::Result<i64> {
    crate::packages::index::index_archive(store, archive, &mut |_, _| {})?;
    let p = store.packages.index_progress(archive)?.with_context(|| format!("no archive named '{archive}'"))?;
    Ok(p.archive_id)
}

fn resolve(store: &Store, archive: &ArchiveName, id: &str) -> anyhow::Result<crate::catalog::Snapshot> {
    let id: SnapshotId = id.parse().with_context(|| format!("invalid snapshot ID '{id}'"))?;
    Ok(resolve_id(store.catalog.as_ref(), archive, id, SnapshotId::now())?.snapshot)
}

pub fn diff(
    store: &Store,
    archive: &ArchiveName,
    from: &str,
    to: &str,
    filter: DiffFilter,
    json: bool,
) -> anyhow::Result<()> {
    let archive_id = indexed(store, archive)?;
    let (a, b) = (resolve(store, archive, from)?, resolve(store, archive, to)?);
    let changes = query::diff(store, archive_id, a.key.seq, b.key.seq, &filter)?;
    if json {
        let body = serde_json::json!({ "archive": archive, "from": a.id, "to": b.id, "changes": changes });
        println!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(());
    }
    eprintln!("{archive}: {} -> {}: {} change(s)", a.id, b.id, changes.len());
    for c in &changes {
        println!("{}", change_line(c));
    }
    Ok(())
}

fn change_line(c: &PackageChange) -> String {
    let v = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    format!(
        "{:<10} {} {} -> {}  [{}/{} {}]",
        serde_json::to_value(c.change).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default(),
        c.name,
        v(&c.old_version),
        v(&c.new_version),
        c.suite,
        c.component,
        c.architecture
    )
}

pub fn packages(store: &Store, archive: &ArchiveName, name: &str, json: bool) -> anyhow::Result<()> {
    let archive_id = indexed(store, archive)?;
    let rows = store.packages.package_rows(archive_id, name, Kind::Binary)?;
    let versions = query::history(store, archive_id, rows)?;
    if versions.is_empty() {
        bail!("package '{name}' was never in archive '{archive}'");
    }
    if json {
        let body = serde_json::json!({ "archive": archive, "name": name, "versions": versions });
        println!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(());
    }
    for v in &versions {
        let last = v.last_seen.map_or_else(|| "(current)".to_string(), |l| l.to_string());
        println!("{:<24} {}/{} {:<8} {} .. {}", v.version, v.suite, v.component, v.architecture, v.first_seen, last);
    }
    Ok(())
}
