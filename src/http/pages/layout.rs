//! The frame every HTML page shares (head, style, breadcrumbs) and small helpers for links.

use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::domain::{ArchiveName, RelPath, SnapshotId};

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;}table{border-collapse:collapse}\
td,th{padding:2px 12px;text-align:left}tr:nth-child(even){background:#f4f4f4}code{font-size:90%}\
form{margin:0.5em 0}nav a{margin-right:1em}.error{color:#a00}\
tr.added td{background:#dafbe1}tr.removed td{background:#ffebe9}tr.upgraded td{background:#ddf4ff}\
tr.downgraded td{background:#fff8c5}tr.rebuilt td{background:#eeeeee}";

/// A whole page: `title` in the head, `crumbs` as the heading, then `body`.
pub fn page(title: &str, crumbs: Markup, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html {
            head { meta charset="utf-8"; title { (title) } style { (PreEscaped(STYLE)) } }
            body { h1 { (crumbs) } (body) }
        }
    }
}

/// An HTML answer (200) with the page's text.
pub fn respond(markup: Markup) -> Response {
    Html(markup.into_string()).into_response()
}

/// `asof / <archive> / <ID> / <dir...>`, each part a link.
pub fn crumbs(archive: Option<&ArchiveName>, id: Option<SnapshotId>, dir: Option<&RelPath>) -> Markup {
    html! {
        a href="/" { "asof" }
        @if let Some(a) = archive {
            " / " a href=(archive_href(a)) { (a.as_str()) }
            @if let Some(id) = id {
                " / " a href=(snapshot_href(a, id)) { (id) }
                @if let Some(dir) = dir {
                    @for (seg, href) in dir_links(a, id, dir) { " / " a href=(href) { (seg) } }
                }
            }
        }
    }
}

fn dir_links<'a>(archive: &ArchiveName, id: SnapshotId, dir: &'a RelPath) -> Vec<(&'a str, String)> {
    let mut href = snapshot_href(archive, id);
    dir.as_str()
        .split('/')
        .map(|seg| {
            href.push_str(&url_path(seg));
            href.push('/');
            (seg, href.clone())
        })
        .collect()
}

pub fn archive_href(archive: &ArchiveName) -> String {
    format!("/{archive}/")
}

pub fn snapshot_href(archive: &ArchiveName, id: SnapshotId) -> String {
    format!("/{archive}/{id}/")
}

pub fn package_href(archive: &ArchiveName, name: &str) -> String {
    format!("/{archive}/-/packages/{}", url_path(name))
}

pub fn diff_href(archive: &ArchiveName, from: SnapshotId, to: SnapshotId) -> String {
    format!("/{archive}/-/diff?from={from}&to={to}")
}

/// Percent-encodes what would end or confuse a URL path inside a link.
pub fn url_path(p: &str) -> String {
    use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
    const SET: &AsciiSet = &CONTROLS.add(b' ').add(b'"').add(b'#').add(b'%').add(b'<').add(b'>').add(b'?').add(b'`');
    utf8_percent_encode(p, SET).to_string()
}

/// The package search form of an archive: at `at`, or at its latest snapshot.
pub fn search_form(archive: &ArchiveName, at: Option<SnapshotId>, q: &str) -> Markup {
    html! {
        form.search action={ "/" (archive.as_str()) "/-/packages" } method="get" {
            input type="search" name="q" value=(q) placeholder="package name";
            @if let Some(at) = at { input type="hidden" name="at" value=(at); }
            " " button type="submit" { "search packages" }
        }
    }
}

/// The form that compares two snapshots of an archive.
pub fn compare_form(archive: &ArchiveName, from: Option<SnapshotId>, to: Option<SnapshotId>) -> Markup {
    html! {
        form.compare action={ "/" (archive.as_str()) "/-/diff" } method="get" {
            "compare " input type="text" name="from" value=[from] placeholder="from ID" size="18";
            " with " input type="text" name="to" value=[to] placeholder="to ID" size="18";
            " " button type="submit" { "compare" }
        }
    }
}
