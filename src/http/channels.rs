//! The rollout channel API under `/api/v1/channels`: `PUT`/`GET <channel>`, `POST
//! <channel>/rollouts`, `POST <channel>/{pause,resume,abort,advance,reports}`,
//! `GET <channel>/nodes/<node>` and `GET <channel>/history`. Changes need an admin token or
//! scope `rollout:<channel>` (reports also take `report:<channel>`); reads need read access to the channel's archive (a channel
//! of an archive the caller may not read answers as a missing one).

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::access::{self, credentials};
use super::error::ApiError;
use crate::domain::{ChannelName, NodeName, SnapshotId};
use crate::rollout::service::{Channels, ServiceError, node_answer};
use crate::rollout::spec::SpecJson;
use crate::rollout::view::{channel_json, time};
use crate::rollout::{ChannelRecord, now_ms, rfc3339};
use crate::store::Store;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/channels", get(list))
        .route("/channels/{channel}", get(show).put(put))
        .route("/channels/{channel}/rollouts", post(start))
        .route("/channels/{channel}/reports", post(report))
        .route("/channels/{channel}/history", get(history))
        .route("/channels/{channel}/nodes/{node}", get(node))
        .route("/channels/{channel}/{action}", post(action))
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::NoChannel(_) => ApiError::NotFound(e.to_string()),
            ServiceError::Spec(_) | ServiceError::NoSnapshot { .. } => ApiError::BadRequest(e.to_string()),
            ServiceError::Rollout(_) | ServiceError::Conflict(_) => {
                ApiError::Conflict { message: e.to_string(), missing: Vec::new() }
            }
            ServiceError::Catalog(c) => c.into(),
        }
    }
}

fn parse_channel(raw: &str) -> Result<ChannelName, ApiError> {
    raw.parse().map_err(|e| ApiError::BadRequest(format!("{e}")))
}

/// Blocking. The caller's name for the audit history, if it may change `channel`.
fn require_rollout(s: &Store, st: &AppState, channel: &ChannelName, creds: Option<&str>) -> Result<String, ApiError> {
    match access::principal(s, &st.metrics, creds)? {
        None => Err(ApiError::Unauthorized(format!("an admin token or one with scope rollout:{channel} is required"))),
        Some(p) if p.can_roll_out(channel) => Ok(p.name),
        Some(_) => {
            st.metrics.auth_failures.with_label_values(&["scope"]).inc();
            Err(ApiError::Forbidden(format!("this token may not change channel '{channel}'")))
        }
    }
}

/// Blocking. As `require_rollout`, for reports, which `report:<channel>` tokens may send too.
fn require_report(s: &Store, st: &AppState, channel: &ChannelName, creds: Option<&str>) -> Result<(), ApiError> {
    match access::principal(s, &st.metrics, creds)? {
        None => Err(ApiError::Unauthorized(format!(
            "a token with scope report:{channel} or rollout:{channel} (or admin) is required"
        ))),
        Some(p) if p.can_report(channel) => Ok(()),
        Some(_) => {
            st.metrics.auth_failures.with_label_values(&["scope"]).inc();
            Err(ApiError::Forbidden(format!("this token may not report to channel '{channel}'")))
        }
    }
}

/// Blocking. The channel as it is now, if this caller may read it: a channel whose archive
/// the caller may not read looks missing, unless the caller may change the channel.
fn readable_view(s: &Store, st: &AppState, name: &ChannelName, creds: Option<&str>) -> Result<ChannelRecord, ApiError> {
    let rec = Channels::of(s).view(name, now_ms())?;
    if access::readable(s, &st.metrics, &rec.spec.archive, creds)? {
        return Ok(rec);
    }
    let may_change = matches!(access::principal(s, &st.metrics, creds), Ok(Some(p)) if p.can_roll_out(name));
    if may_change { Ok(rec) } else { Err(ServiceError::NoChannel(name.clone()).into()) }
}

/// Blocking. `channel_json` with the current rollout's reports counted.
fn answer(s: &Store, rec: &ChannelRecord) -> Result<Value, ApiError> {
    let health = Channels::of(s).health(rec)?;
    Ok(channel_json(rec, &health))
}

fn no_store(v: Value, status: StatusCode) -> Response {
    // A channel moves with time: never cached.
    (status, [(header::CACHE_CONTROL, "no-store")], Json(v)).into_response()
}

async fn list(State(st): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let creds = credentials(&headers);
    let st2 = st.clone();
    let body = st
        .blocking(move |s| {
            let who = access::principal(s, &st2.metrics, creds.as_deref()).ok().flatten();
            let mut out = Vec::new();
            for rec in Channels::of(s).list(now_ms())? {
                let visible = access::may_list(s, &rec.spec.archive, who.as_ref())?
                    || who.as_ref().is_some_and(|p| p.can_roll_out(&rec.name));
                if visible {
                    out.push(answer(s, &rec)?);
                }
            }
            Ok(json!({ "channels": out }))
        })
        .await?;
    Ok(no_store(body, StatusCode::OK))
}

async fn show(
    State(st): State<AppState>,
    Path(channel): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let name = parse_channel(&channel)?;
    let creds = credentials(&headers);
    let st2 = st.clone();
    let body = st.blocking(move |s| answer(s, &readable_view(s, &st2, &name, creds.as_deref())?)).await?;
    Ok(no_store(body, StatusCode::OK))
}

async fn put(
    State(st): State<AppState>,
    Path(channel): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let name = parse_channel(&channel)?;
    let creds = credentials(&headers);
    let (st2, n) = (st.clone(), name.clone());
    let actor = st.blocking(move |s| require_rollout(s, &st2, &n, creds.as_deref())).await?;
    let spec: SpecJson = super::body::read_json(&st, &headers, body).await?;
    let spec = spec.validate().map_err(ServiceError::from)?;
    let creds = credentials(&headers);
    let st2 = st.clone();
    let (created, body) = st
        .blocking(move |s| {
            // Naming an archive is reading it: one the caller may not read looks missing.
            let archive_ok = s.auth.visibility(&spec.archive)?.is_some()
                && (access::readable(s, &st2.metrics, &spec.archive, creds.as_deref())?
                    || access::principal(s, &st2.metrics, creds.as_deref())?.is_some_and(|p| p.is_admin()));
            if !archive_ok {
                return Err(ApiError::BadRequest(format!("archive: no archive named '{}'", spec.archive)));
            }
            let ch = Channels::of(s);
            let created = ch.put(&name, &spec, &actor, now_ms())?;
            Ok((created, answer(s, &ch.view(&name, now_ms())?)?))
        })
        .await?;
    Ok(no_store(body, if created { StatusCode::CREATED } else { StatusCode::OK }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartBody {
    snapshot: String,
}

async fn start(
    State(st): State<AppState>,
    Path(channel): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let name = parse_channel(&channel)?;
    let creds = credentials(&headers);
    let (st2, n) = (st.clone(), name.clone());
    let actor = st.blocking(move |s| require_rollout(s, &st2, &n, creds.as_deref())).await?;
    let b: StartBody = super::body::read_json(&st, &headers, body).await?;
    let id: SnapshotId = b.snapshot.parse().map_err(|e| ApiError::BadRequest(format!("snapshot: {e}")))?;
    let body = st.blocking(move |s| answer(s, &Channels::of(s).start(&name, id, &actor, now_ms())?)).await?;
    Ok(no_store(body, StatusCode::CREATED))
}

/// `pause`, `resume`, `abort`, `advance`: no body.
async fn action(
    State(st): State<AppState>,
    Path((channel, action)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if !matches!(action.as_str(), "pause" | "resume" | "abort" | "advance") {
        return Err(ApiError::NotFound(format!(
            "no channel action '{action}': expected rollouts, pause, resume, abort, advance or reports"
        )));
    }
    let name = parse_channel(&channel)?;
    let creds = credentials(&headers);
    let st2 = st.clone();
    let body = st
        .blocking(move |s| {
            let actor = require_rollout(s, &st2, &name, creds.as_deref())?;
            let ch = Channels::of(s);
            let now = now_ms();
            let rec = match action.as_str() {
                "pause" => ch.pause(&name, &actor, now),
                "resume" => ch.resume(&name, &actor, now),
                "abort" => ch.abort(&name, &actor, now),
                _ => ch.advance(&name, &actor, now),
            }?;
            answer(s, &rec)
        })
        .await?;
    Ok(no_store(body, StatusCode::OK))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportBody {
    node: String,
    outcome: Outcome,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum Outcome {
    Success,
    Failure,
}

async fn report(
    State(st): State<AppState>,
    Path(channel): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let name = parse_channel(&channel)?;
    let creds = credentials(&headers);
    let (st2, n) = (st.clone(), name.clone());
    st.blocking(move |s| require_report(s, &st2, &n, creds.as_deref())).await?;
    let b: ReportBody = super::body::read_json(&st, &headers, body).await?;
    let node: NodeName = b.node.parse().map_err(|e| ApiError::BadRequest(format!("node: {e}")))?;
    let failed = matches!(b.outcome, Outcome::Failure);
    let body = st
        .blocking(move |s| {
            let rec = Channels::of(s).report(&name, &node, failed, now_ms())?;
            let ring = &rec.spec.rings[node_answer(&name, &rec, &node).ring].name;
            let mut v = answer(s, &rec)?;
            v["report"] = json!({ "node": node, "ring": ring, "outcome": if failed { "failure" } else { "success" } });
            Ok(v)
        })
        .await?;
    Ok(no_store(body, StatusCode::OK))
}

/// The `deb` line a node with this answer should have, if the channel says its suites.
fn sources_line(headers: &HeaderMap, rec: &ChannelRecord, id: Option<SnapshotId>) -> Value {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let https = headers.get("x-forwarded-proto").is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
    match (host, id, &rec.spec.sources) {
        (Some(host), Some(id), Some(sources)) => {
            let scheme = if https { "https" } else { "http" };
            Value::String(format!("deb {scheme}://{host}/{}/{id}/ {sources}", rec.spec.archive))
        }
        _ => Value::Null,
    }
}

async fn node(
    State(st): State<AppState>,
    Path((channel, node)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let name = parse_channel(&channel)?;
    let node: NodeName = node.parse().map_err(|e| ApiError::BadRequest(format!("{e}")))?;
    let creds = credentials(&headers);
    let st2 = st.clone();
    let rec = st.blocking(move |s| readable_view(s, &st2, &name, creds.as_deref())).await?;
    let a = node_answer(&rec.name, &rec, &node);
    note_node(&st, &rec, a.ring, &node);
    let body = json!({
        "channel": rec.name,
        "node": node,
        "ring": rec.spec.rings[a.ring].name,
        "snapshot": a.snapshot,
        "since": time(a.since),
        "sources_line": sources_line(&headers, &rec, a.snapshot),
    });
    Ok(no_store(body, StatusCode::OK))
}

async fn history(
    State(st): State<AppState>,
    Path(channel): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let name = parse_channel(&channel)?;
    let creds = credentials(&headers);
    let st2 = st.clone();
    let body = st
        .blocking(move |s| {
            readable_view(s, &st2, &name, creds.as_deref())?;
            let events = Channels::of(s).history(&name, now_ms())?;
            let events: Vec<Value> = events
                .into_iter()
                .map(|e| json!({ "at": rfc3339(e.at), "actor": e.actor, "action": e.action, "detail": e.detail }))
                .collect();
            Ok(json!({ "channel": name, "events": events }))
        })
        .await?;
    Ok(no_store(body, StatusCode::OK))
}

/// Counts a node that asked for its answer (API or node URL), for the metrics.
pub fn note_node(st: &AppState, rec: &ChannelRecord, ring: usize, node: &NodeName) {
    let ring = &rec.spec.rings[ring].name;
    st.metrics.channel_nodes_seen.note(rec.name.as_str(), ring, node.as_str(), now_ms());
}

/// Sets the channel gauges of `/metrics` from the channels as they are now. A channel of a
/// private archive is labelled `private-<keyed hash>`, as private archives are.
pub async fn refresh_metrics(st: &AppState) -> Result<(), ApiError> {
    let st2 = st.clone();
    st.blocking(move |s| {
        let now = now_ms();
        let m = &st2.metrics;
        let mut labels = std::collections::HashMap::new();
        m.channel_snapshot.reset();
        for rec in Channels::of(s).list(now)? {
            let label = channel_label(s, &rec)?;
            if let Some(r) = &rec.rollout {
                for (i, ring) in rec.spec.rings.iter().enumerate() {
                    if let Some(id) = r.serves(i) {
                        m.channel_snapshot.with_label_values(&[label.as_str(), &ring.name]).set(id.unix() as f64);
                    }
                }
            }
            labels.insert(rec.name.to_string(), label);
        }
        m.channel_nodes.reset();
        for ((channel, ring), n) in m.channel_nodes_seen.counts(now) {
            let label = labels.get(&channel).cloned().unwrap_or(channel);
            m.channel_nodes.with_label_values(&[label.as_str(), &ring]).set(n as i64);
        }
        Ok(())
    })
    .await
}

fn channel_label(s: &Store, rec: &ChannelRecord) -> Result<String, ApiError> {
    if !s.auth.is_private(&rec.spec.archive)? {
        return Ok(rec.name.to_string());
    }
    let mut keyed = s.label_key.to_vec();
    keyed.extend_from_slice(b"channel:");
    keyed.extend_from_slice(rec.name.as_str().as_bytes());
    Ok(format!("private-{}", &crate::domain::Digest::of(&keyed).hex()[..12]))
}
