//! `GET /api/v1/takedowns`: every takedown with its audit log (who, when), for admins.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use super::AppState;
use super::access::{self, credentials};
use super::error::ApiError;

pub fn routes() -> Router<AppState> {
    Router::new().route("/takedowns", get(list))
}

async fn list(State(st): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let creds = credentials(&headers);
    let metrics = st.metrics.clone();
    let all = st
        .blocking(move |s| {
            access::require_admin(s, &metrics, creds.as_deref())?;
            Ok(s.takedowns.list()?)
        })
        .await?;
    let mut resp = Json(serde_json::json!({ "takedowns": all })).into_response();
    // Admin-only and changing: never kept by a cache.
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}
