//! `GET /<archive>/@<channel>/<node>/<path>`: the snapshot a rollout channel assigns to that
//! node now, for nodes with a static sources.list line.
//!
//! A node whose ring moves while it runs `apt update` must not mix two snapshots. apt reads
//! InRelease first and then, as the archives asof serves say `Acquire-By-Hash: yes`, asks
//! for every index by its hash (`.../by-hash/SHA256/<hex>`). A by-hash path is answered from
//! the node's current ID or, failing that, from the other ID its ring is moving between, so
//! every index apt asks for is exactly the one its InRelease named, whichever ID that
//! InRelease came from. Pool files fall back the same way (a package the old index lists may
//! be gone from the new snapshot). Everything else under `dists/` comes from the current ID
//! only. Date validators are dropped: after an abort the older InRelease is the right answer
//! although it is older than what the node holds; ETags (content digests) still apply.

use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::Response;

use super::AppState;
use super::access::{self, credentials};
use super::error::ApiError;
use super::files::{At, in_snapshot};
use crate::domain::{ArchiveName, ChannelName, NodeName, RelPath};
use crate::rollout::service::{Channels, NodeAnswer, ServiceError, node_answer};
use crate::rollout::{ChannelRecord, now_ms};

/// A node URL: `/<archive>/@<channel>/<node>/[<path>]`.
pub struct NodeUrl {
    pub archive: ArchiveName,
    pub channel: ChannelName,
    pub node: NodeName,
    pub path: Option<RelPath>,
}

pub async fn serve(
    st: &AppState,
    method: &Method,
    headers: &HeaderMap,
    url: NodeUrl,
    query: Option<&str>,
) -> Result<Response, ApiError> {
    let NodeUrl { archive, channel, node, path } = url;
    let (answer, rec) = assigned(st, headers, &archive, &channel, &node).await?;
    super::channels::note_node(st, &rec, answer.ring, &node);
    let Some(id) = answer.snapshot else {
        return Err(ApiError::NotFound(format!(
            "channel '{channel}' has not rolled out to node '{node}' yet: its ring has no snapshot"
        )));
    };
    let text = path.as_ref().map(RelPath::to_string).unwrap_or_default();
    let by_hash = text.contains("/by-hash/") || text.starts_with("by-hash/");
    let may_fall_back = by_hash || !text.starts_with("dists/");
    let req = without_date_validators(headers);
    let first = in_snapshot(st, method, &req, query, archive.clone(), At::Id(id), path.clone()).await;
    let mut resp = match (first, answer.other) {
        (Err(ApiError::NotFound(_)), Some(other)) if may_fall_back && path.is_some() => {
            in_snapshot(st, method, &req, query, archive, At::Id(other), path).await?
        }
        (r, _) => r?,
    };
    let h = resp.headers_mut();
    h.remove(header::LAST_MODIFIED);
    if !by_hash {
        // The same URL answers another ID once the ring moves: always revalidate.
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }
    Ok(resp)
}

/// Blocking lookups: read access to the archive first (a private archive looks missing),
/// then the channel, which must be one of this archive.
async fn assigned(
    st: &AppState,
    headers: &HeaderMap,
    archive: &ArchiveName,
    channel: &ChannelName,
    node: &NodeName,
) -> Result<(NodeAnswer, ChannelRecord), ApiError> {
    let creds = credentials(headers);
    let metrics = st.metrics.clone();
    let (archive, channel, node) = (archive.clone(), channel.clone(), node.clone());
    st.blocking(move |s| {
        access::check_read(s, &metrics, &archive, creds.as_deref())?;
        let ch = Channels::of(s);
        let missing = || ApiError::NotFound(format!("archive '{archive}' has no channel '{channel}'"));
        let rec = match ch.view(&channel, now_ms()) {
            Err(ServiceError::NoChannel(_)) => return Err(missing()),
            other => other?,
        };
        if rec.spec.archive != archive {
            return Err(missing());
        }
        Ok((node_answer(&channel, &rec, &node), rec))
    })
    .await
}

fn without_date_validators(headers: &HeaderMap) -> HeaderMap {
    let mut h = headers.clone();
    h.remove(header::IF_MODIFIED_SINCE);
    h.remove(header::IF_UNMODIFIED_SINCE);
    h.remove(header::IF_RANGE);
    h
}
