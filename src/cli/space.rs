//! `asof archive space [ARCHIVE] [--json]`: the blobs and bytes each archive references,
//! and those only it references (see `crate::space`).

use anyhow::bail;

use crate::domain::ArchiveName;
use crate::space::SpaceReport;
use crate::store::Store;

/// One archive, or every archive in name order when `archive` is `None`. JSON: the
/// report object for one archive, an array of them for all.
pub fn show(store: &Store, archive: Option<&ArchiveName>, json: bool) -> anyhow::Result<()> {
    let reports = match archive {
        Some(name) => match crate::space::report(store, name)? {
            Some(r) => vec![r],
            None => bail!("no archive named '{name}'"),
        },
        None => {
            let mut all = Vec::new();
            for a in store.catalog.archives()? {
                all.extend(crate::space::report(store, &a.name)?);
            }
            all
        }
    };
    if json {
        let text = match (archive, reports.as_slice()) {
            (Some(_), [one]) => serde_json::to_string_pretty(one)?,
            _ => serde_json::to_string_pretty(&reports)?,
        };
        println!("{text}");
    } else {
        reports.iter().for_each(|r| println!("{}", line(r)));
    }
    Ok(())
}

fn line(r: &SpaceReport) -> String {
    let retention = r.retention.map_or_else(String::new, |t| {
        format!(
            "; its retention policy would delete {} snapshot(s), freeing {} blob(s), {} bytes",
            t.snapshots, t.frees.blobs, t.frees.bytes
        )
    });
    format!(
        "{}: references {} blob(s), {} bytes; only it: {} blob(s), {} bytes{retention}",
        r.archive, r.referenced.blobs, r.referenced.bytes, r.unique.blobs, r.unique.bytes
    )
}
