//! The diff page (`-/diff?from=&to=`): every package change between two snapshots, colored
//! by kind, with counts and a form to compare others. O(changes), like the JSON diff.

use axum::http::Uri;
use axum::response::Response;
use maud::{Markup, html};

use super::layout::{compare_form, page, respond, snapshot_href, url_path};
use super::packages::title_crumbs;
use crate::domain::ArchiveName;
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::packages::{DiffAnswer, DiffParams, cached, diff_between, id_param, params};
use crate::packages::parse::Kind;
use crate::packages::query::{ChangeKind, DiffFilter, PackageChange};
use crate::resolve::Resolution;

pub async fn diff(st: &AppState, archive: &ArchiveName, uri: &Uri) -> Result<Response, ApiError> {
    let p: DiffParams = params(uri)?;
    let (from, to) = (id_param("from", p.from.trim())?, id_param("to", p.to.trim())?);
    let nonempty = |v: Option<String>| v.filter(|s| !s.is_empty());
    let filter =
        DiffFilter { suite: nonempty(p.suite), architecture: nonempty(p.architecture), name: nonempty(p.name) };
    let answer = diff_between(st, archive, from, to, filter).await?;
    let immutable = answer.from.is_final && answer.to.is_final;
    Ok(cached(st, respond(diff_page(archive, &answer)), immutable))
}

const KINDS: [ChangeKind; 5] =
    [ChangeKind::Added, ChangeKind::Removed, ChangeKind::Upgraded, ChangeKind::Downgraded, ChangeKind::Rebuilt];

fn kind_name(k: ChangeKind) -> &'static str {
    match k {
        ChangeKind::Added => "added",
        ChangeKind::Removed => "removed",
        ChangeKind::Upgraded => "upgraded",
        ChangeKind::Downgraded => "downgraded",
        ChangeKind::Rebuilt => "rebuilt",
    }
}

fn diff_page(archive: &ArchiveName, d: &DiffAnswer) -> Markup {
    let count = |k: ChangeKind| d.changes.iter().filter(|c| c.change == k).count();
    let body = html! {
        (compare_form(archive, Some(d.from.requested), Some(d.to.requested)))
        p.between { "From " (snapshot_link(archive, &d.from)) " to " (snapshot_link(archive, &d.to)) ":" }
        p #counts {
            (d.changes.len()) " changes"
            @for k in KINDS { ", " span class=(kind_name(k)) { (count(k)) " " (kind_name(k)) } }
        }
        table #changes {
            tr {
                th { "package" } th { "suite" } th { "component" } th { "architecture" }
                th { "old version" } th { "new version" } th { "change" }
            }
            @for c in &d.changes { (change_row(archive, c)) }
        }
    };
    let title = format!("asof: {archive}: changes from {} to {}", d.from.requested, d.to.requested);
    page(&title, title_crumbs(archive, "diff"), body)
}

fn snapshot_link(archive: &ArchiveName, r: &Resolution) -> Markup {
    html! {
        a href=(snapshot_href(archive, r.requested)) { (r.requested) }
        @if r.requested != r.snapshot.id { " (snapshot " (r.snapshot.id) ")" }
    }
}

fn change_row(archive: &ArchiveName, c: &PackageChange) -> Markup {
    let (family, shown) = match c.kind {
        Kind::Binary => ("packages", c.name.clone()),
        Kind::Source => ("sources", format!("{} (source)", c.name)),
    };
    html! {
        tr class=(kind_name(c.change)) {
            td { a href={ "/" (archive.as_str()) "/-/" (family) "/" (url_path(&c.name)) } { (shown) } }
            td { (c.suite) } td { (c.component) } td { (c.architecture) }
            td.old { @if let Some(v) = &c.old_version { (v) } }
            td.new { @if let Some(v) = &c.new_version { (v) } }
            td.change { (kind_name(c.change)) }
        }
    }
}
