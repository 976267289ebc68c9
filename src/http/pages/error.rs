//! The HTML error page, shown instead of the JSON error body when a browser asks.

use axum::http::StatusCode;
use maud::{Markup, html};

use super::layout::{crumbs, page};

pub fn error_page(status: StatusCode, message: &str) -> Markup {
    let title = format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or("error"));
    let body = html! {
        h2 { (title) }
        p.error { (message) }
        p { a href="/" { "all archives" } }
    };
    page(&format!("asof: {title}"), crumbs(None, None, None), body)
}
