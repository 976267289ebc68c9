//! The listing pages: archives at `/`, an archive's snapshots at `/<archive>/`, and a
//! directory inside a snapshot.

use maud::{Markup, html};

use super::layout::{archive_href, compare_form, crumbs, diff_href, page, search_form, snapshot_href, url_path};
use crate::catalog::ArchiveSummary;
use crate::catalog::Entry;
use crate::domain::{ArchiveName, RelPath, SnapshotId};
use crate::manifest::Content;
use crate::resolve::Resolution;
use crate::takedown::Hit;
use crate::wire::{ReleaseJson, SnapshotJson};

pub fn archives(list: &[ArchiveSummary]) -> Markup {
    let body = html! {
        table {
            tr { th { "archive" } th { "snapshots" } th { "latest" } }
            @for a in list {
                tr {
                    td { a href=(archive_href(&a.name)) { (a.name.as_str()) } }
                    td { (a.snapshots) }
                    td { @match a.latest { Some(l) => (l), None => "-" } }
                }
            }
        }
    };
    page("asof: archives", crumbs(None, None, None), body)
}

/// One page of an archive's snapshots, newest first and grouped by month. `before_page` is
/// the snapshot just older than the page (the previous of its last row), `older` where the
/// next page starts.
pub fn snapshot_list(
    archive: &ArchiveName,
    snapshots: &[SnapshotJson],
    before_page: Option<SnapshotId>,
    older: Option<SnapshotId>,
) -> Markup {
    let previous = |i: usize| snapshots.get(i + 1).map(|s| s.id).or(before_page);
    let mut months: Vec<(String, Vec<usize>)> = Vec::new();
    for (i, s) in snapshots.iter().enumerate() {
        let m = s.id.datetime().format("%Y-%m").to_string();
        match months.last_mut() {
            Some((month, rows)) if *month == m => rows.push(i),
            _ => months.push((m, vec![i])),
        }
    }
    let damaged = snapshots.iter().filter(|s| !s.damaged.is_empty()).count();
    let body = html! {
        @if damaged > 0 {
            p.error.damaged { strong { "Damaged snapshots: " } (damaged) " snapshot(s) on this page have files whose stored bytes failed verification and are quarantined (marked below)." }
        }
        (search_form(archive, None, ""))
        (compare_form(archive, snapshots.get(1).map(|s| s.id), snapshots.first().map(|s| s.id)))
        @for (month, rows) in &months {
            h2 { (month) }
            table {
                tr { th { "snapshot" } th { "files" } th { "bytes" } th { "changes" } th { "digest" } }
                @for &i in rows {
                    @let s = &snapshots[i];
                    tr {
                        td { a href=(snapshot_href(archive, s.id)) { (s.id) } (crate::scrub::web::mark(s)) }
                        td { (s.files) }
                        td { (s.bytes) }
                        td {
                            @let counts = format!("+{} ~{} -{}", s.added, s.changed, s.removed);
                            @match previous(i) {
                                Some(p) => a href=(diff_href(archive, p, s.id)) { (counts) },
                                None => (counts),
                            }
                        }
                        td { code { (&s.digest.hex()[..16]) } }
                    }
                }
            }
        }
        @if let Some(last) = older {
            p { a href={ (archive_href(archive)) "?before=" (last) } { "older snapshots" } }
        }
    };
    page(&format!("asof: {archive}"), crumbs(Some(archive), None, None), body)
}

/// A directory of a snapshot, with links to the snapshots before and after it.
pub fn snapshot_dir(
    res: &Resolution,
    dir: Option<&RelPath>,
    children: &[Entry],
    marks: &[Option<Hit>],
    neighbours: (Option<SnapshotId>, Option<SnapshotId>),
    releases: &[ReleaseJson],
    warning: Markup,
) -> Markup {
    let archive = &res.snapshot.archive;
    // The live listing links the live path, so that following it stays on the latest.
    let base = if res.live { archive_href(archive) } else { snapshot_href(archive, res.requested) };
    let (prev, next) = neighbours;
    let body = html! {
        nav {
            @if let Some(p) = prev {
                a rel="prev" href=(snapshot_href(archive, p)) { "← previous snapshot " (p) }
                a.changes href=(diff_href(archive, p, res.snapshot.id)) { "changes since " (p) }
            }
            @if let Some(n) = next { a rel="next" href=(snapshot_href(archive, n)) { "next snapshot " (n) " →" } }
        }
        (warning)
        @if dir.is_none() { (search_form(archive, Some(res.requested), "")) }
        @if res.live {
            p { "The latest snapshot of " (archive.as_str()) ": " a href=(snapshot_href(archive, res.snapshot.id)) { (res.snapshot.id) } "." }
        } @else if res.requested != res.snapshot.id {
            p { (res.requested) " resolves to snapshot " a href=(snapshot_href(archive, res.snapshot.id)) { (res.snapshot.id) } "." }
        }
        table {
            tr { th { "name" } th { "size" } th { "since" } th { "sha256" } }
            @for (e, mark) in children.iter().zip(marks) {
                @let name = e.path.file_name();
                @let is_dir = e.content == Content::Dir;
                tr {
                    @if let Some(hit) = mark {
                        // Listed, so that the history stays legible, but the bytes are not linked.
                        td { (name) " " span.takedown { "taken down (" (hit.status.code()) "): " (hit.reason) } }
                    } @else {
                        td { a href={ (base) (url_path(e.path.as_str())) @if is_dir { "/" } } { (name) @if is_dir { "/" } } }
                    }
                    td { @if let Content::File { size, .. } = &e.content { (size) } }
                    td { (e.since) }
                    td {
                        @match &e.content {
                            Content::File { sha256, .. } => code { (sha256) },
                            Content::Symlink { target } => { "→ " (target) },
                            Content::Dir => {},
                        }
                    }
                }
            }
        }
        @if !releases.is_empty() { (release_table(&base, releases)) }
    };
    let dir_str = dir.map_or(String::new(), |d| d.to_string());
    let title = format!("asof: {}/{}/{}", archive, res.requested, dir_str);
    page(&title, crumbs(Some(archive), Some(res.requested), dir), body)
}

/// The suites' Release files of a snapshot, and whether apt still accepts them.
fn release_table(base: &str, releases: &[ReleaseJson]) -> Markup {
    html! {
        h2 { "Release files" }
        table.releases {
            tr { th { "file" } th { "Valid-Until" } th { "expired" } }
            @for r in releases {
                tr {
                    td { a href={ (base) (url_path(&r.path)) } { (r.path) } }
                    td { @match r.valid_until { Some(v) => (v.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)), None => "none" } }
                    td { @if r.expired { "yes: apt refuses it unless told not to check (Acquire::Check-Valid-Until=false)" } @else { "no" } }
                }
            }
        }
    }
}
