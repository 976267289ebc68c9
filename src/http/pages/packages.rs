//! Package pages: search results in a snapshot (`-/packages?q=`), and every version a
//! package or source package ever had (`-/packages/<name>`, `-/sources/<name>`).

use axum::http::Uri;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{crumbs, package_href, page, respond, search_form, snapshot_href, url_path};
use crate::domain::{ArchiveName, SnapshotId};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::packages::{Found, History, cached, id_param, latest_snapshot, package_history, params, search_names};
use crate::packages::parse::Kind;
use crate::packages::query::VersionRecord;

/// Names shown per results page.
const RESULTS: u32 = 100;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchParams {
    #[serde(default)]
    q: String,
    /// Defaults to the latest snapshot.
    at: Option<String>,
    cursor: Option<String>,
}

pub async fn search(st: &AppState, archive: &ArchiveName, uri: &Uri) -> Result<Response, ApiError> {
    let p: SearchParams = params(uri)?;
    let at = match p.at.as_deref().filter(|a| !a.is_empty()) {
        Some(a) => id_param("at", a)?,
        None => latest_snapshot(st, archive).await?.id,
    };
    let found = search_names(st, archive, at, &p.q, false, RESULTS, p.cursor).await?;
    let immutable = p.at.is_some() && found.at.is_final;
    Ok(cached(st, respond(results(archive, &p.q, &found)), immutable))
}

fn results(archive: &ArchiveName, q: &str, found: &Found) -> Markup {
    let at = found.at.requested;
    let next = found.more.then(|| found.names.last()).flatten();
    let body = html! {
        (search_form(archive, Some(at), q))
        p { "Packages whose name contains “" (q) "” in snapshot " a href=(snapshot_href(archive, at)) { (at) } ":" }
        @if found.names.is_empty() { p.empty { "No package matches." } }
        ul.results {
            @for name in &found.names { li { a href=(package_href(archive, name)) { (name) } } }
        }
        @if let Some(last) = next {
            p { a.more href={ "/" (archive.as_str()) "/-/packages?q=" (query_value(q)) "&at=" (at) "&cursor=" (query_value(last)) } { "more packages" } }
        }
    };
    page(&format!("asof: {archive}: packages matching {q}"), title_crumbs(archive, "packages"), body)
}

pub async fn package(st: &AppState, archive: &ArchiveName, name: &str, kind: Kind) -> Result<Response, ApiError> {
    let history = package_history(st, archive, name, kind).await?;
    // `last seen` of current versions fills in later: never immutable.
    Ok(cached(st, respond(package_page(archive, name, kind, &history)), false))
}

fn package_page(archive: &ArchiveName, name: &str, kind: Kind, history: &History) -> Markup {
    let what = if kind == Kind::Source { "source package" } else { "package" };
    let body = html! {
        (search_form(archive, None, ""))
        h2 { (what) " " (name) }
        (versions_table("versions", archive, &history.versions))
        @if let Some(binaries) = &history.binaries {
            h2 { "binaries built from " (name) }
            (versions_table("binaries", archive, binaries))
        }
    };
    page(&format!("asof: {archive}: {what} {name}"), title_crumbs(archive, name), body)
}

fn versions_table(id: &str, archive: &ArchiveName, versions: &[VersionRecord]) -> Markup {
    html! {
        table id=(id) {
            tr {
                th { "package" } th { "version" } th { "suite" } th { "component" } th { "architecture" }
                th { "source" } th { "first seen" } th { "last seen" } th { "file" }
            }
            @for v in versions {
                tr {
                    td { a href=(package_href(archive, &v.name)) { (v.name) } }
                    td.version { (v.version) }
                    td { (v.suite) } td { (v.component) } td { (v.architecture) }
                    td { a href={ "/" (archive.as_str()) "/-/sources/" (url_path(&v.source)) } { (v.source) } " " (v.source_version) }
                    td.first { a href=(snapshot_href(archive, v.first_seen)) { (v.first_seen) } }
                    td.last {
                        @match v.last_seen {
                            Some(l) => a href=(snapshot_href(archive, l)) { (l) },
                            None => "current",
                        }
                    }
                    td.file { a href=(file_href(archive, v.first_seen, &v.filename)) { (v.filename) } }
                }
            }
        }
    }
}

/// The package's file in the first snapshot that listed it.
fn file_href(archive: &ArchiveName, at: SnapshotId, filename: &str) -> String {
    format!("{}{}", snapshot_href(archive, at), url_path(filename.trim_start_matches('/')))
}

/// `asof / <archive> / <what>`.
pub fn title_crumbs(archive: &ArchiveName, what: &str) -> Markup {
    html! { (crumbs(Some(archive), None, None)) " / " (what) }
}

/// Percent-encodes a value for a query string.
fn query_value(v: &str) -> String {
    percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC).to_string()
}
