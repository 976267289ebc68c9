//! HTML pages for people, built with maud (escapes by default): the listings, and under
//! `/<archive>/-/` package search, package histories and snapshot diffs.

pub mod channel;
pub mod diff;
pub mod error;
pub mod layout;
pub mod listing;
pub mod packages;

use axum::http::{HeaderMap, HeaderValue, Uri, header};
use axum::response::Response;

use super::AppState;
use super::error::ApiError;
use crate::domain::ArchiveName;
use crate::packages::parse::Kind;
pub use layout::respond;

/// `/<archive>/-/<page...>`: a page about an archive the caller may read (a private one
/// looks missing, as everywhere else).
pub async fn archive_page(
    st: &AppState,
    headers: &HeaderMap,
    archive: Vec<String>,
    page: Vec<String>,
    uri: &Uri,
) -> Result<Response, ApiError> {
    let archive: ArchiveName =
        archive.join("/").parse().map_err(|e| ApiError::NotFound(format!("no such archive: {e}")))?;
    let creds = super::access::credentials(headers);
    let (metrics, name) = (st.metrics.clone(), archive.clone());
    st.blocking(move |s| super::access::check_read(s, &metrics, &name, creds.as_deref())).await?;
    let page: Vec<&str> = page.iter().map(String::as_str).collect();
    let mut resp = match page.as_slice() {
        ["packages"] => packages::search(st, &archive, uri).await?,
        ["packages", name] => packages::package(st, &archive, name, Kind::Binary).await?,
        ["sources", name] => packages::package(st, &archive, name, Kind::Source).await?,
        ["diff"] => diff::diff(st, &archive, uri).await?,
        ["channels", name] => channel::channel(st, &archive, name).await?,
        _ => {
            let shown: String = page.join("/").chars().take(200).collect();
            return Err(ApiError::NotFound(format!("archive '{archive}' has no page '-/{shown}'")));
        }
    };
    resp.headers_mut().insert(header::VARY, HeaderValue::from_static("authorization"));
    Ok(resp)
}
