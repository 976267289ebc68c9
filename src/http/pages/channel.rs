//! The channel page (`/<archive>/-/channels/<channel>`): the rings of the current rollout as
//! a timeline, which ID each ring is on since when, its reports, and the package changes
//! from its previous ID, linked to the diff page.

use axum::http::HeaderValue;
use axum::response::Response;
use maud::{Markup, html};

use super::layout::{diff_href, page, respond, snapshot_href};
use super::packages::title_crumbs;
use crate::domain::{ArchiveName, ChannelName, SnapshotId};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::packages::diff_between;
use crate::packages::query::DiffFilter;
use crate::rollout::gate::RingHealth;
use crate::rollout::service::{Channels, ServiceError};
use crate::rollout::{ChannelRecord, Status, now_ms, rfc3339};

pub async fn channel(st: &AppState, archive: &ArchiveName, name: &str) -> Result<Response, ApiError> {
    let missing = || ApiError::NotFound(format!("archive '{archive}' has no channel '{name}'"));
    let channel: ChannelName = name.parse().map_err(|_| missing())?;
    let found = st
        .blocking(move |s| {
            let ch = Channels::of(s);
            match ch.view(&channel, now_ms()) {
                Err(ServiceError::NoChannel(_)) => Ok(None),
                Err(e) => Err(e.into()),
                Ok(rec) => Ok(Some((ch.health(&rec)?, rec))),
            }
        })
        .await?;
    let Some((health, rec)) = found.filter(|(_, r)| r.spec.archive == *archive) else { return Err(missing()) };
    let mut changes = Vec::new();
    if let Some(r) = &rec.rollout {
        // Rings mostly share their `from`: one diff per distinct one.
        let mut by_from: std::collections::HashMap<SnapshotId, Option<usize>> = std::collections::HashMap::new();
        for ring in &r.rings {
            changes.push(match ring.from {
                Some(from) if from != r.target => match by_from.get(&from) {
                    Some(n) => *n,
                    None => *by_from.entry(from).or_insert(package_changes(st, archive, from, r.target).await),
                },
                _ => None,
            });
        }
    }
    let mut resp = respond(channel_page(archive, &rec, &health, &changes));
    // The timeline moves with the clock.
    resp.headers_mut().insert(axum::http::header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// How many package changes lie between two IDs, when the package index can say (it may be
/// still building, or the archive may hold no apt indices).
async fn package_changes(st: &AppState, archive: &ArchiveName, from: SnapshotId, to: SnapshotId) -> Option<usize> {
    diff_between(st, archive, from, to, DiffFilter::default()).await.ok().map(|d| d.changes.len())
}

fn channel_page(
    archive: &ArchiveName,
    rec: &ChannelRecord,
    health: &[RingHealth],
    changes: &[Option<usize>],
) -> Markup {
    let spec = rec.spec.to_json();
    let body = html! {
        @match &rec.rollout {
            None => p #rollout { "No rollout yet." },
            Some(r) => {
                p #rollout {
                    "Rollout #" (r.id) " of " a href=(snapshot_href(archive, r.target)) { (r.target) }
                    " (asked " (r.requested) "), " strong { (r.status.name()) }
                    ", started " (rfc3339(r.started_at))
                    @if let Status::Paused { reason } = &r.status { ": " span.error { (reason) } }
                    @if let Some((next, at)) = r.next_ring_at(&rec.spec) {
                        "; next ring " (rec.spec.rings[next].name) " at " (rfc3339(at))
                    }
                }
                table #rings {
                    tr { th { "ring" } th { "share" } th { "soak" } th { "snapshot" } th { "since" }
                         th { "from" } th { "package changes" } th { "failed / reported" } }
                    @for (i, ring) in spec.rings.iter().enumerate() {
                        tr {
                            td { (ring.name) }
                            td { (ring.percent) "%" }
                            td { (ring.soak_secs) " s" }
                            td { (id_link(archive, r.serves(i))) }
                            td { (r.serving_since(i).map(rfc3339).unwrap_or_default()) }
                            td { (id_link(archive, r.rings[i].from)) }
                            td { (diff_cell(archive, r.rings[i].from, r.target, changes.get(i).copied().flatten())) }
                            td { (health[i].failures) " / " (health[i].reports) }
                        }
                    }
                }
            }
        }
    };
    let title = format!("asof: {archive}: channel {}", rec.name);
    page(&title, title_crumbs(archive, &format!("channel {}", rec.name)), body)
}

fn id_link(archive: &ArchiveName, id: Option<SnapshotId>) -> Markup {
    html! { @if let Some(id) = id { a href=(snapshot_href(archive, id)) { (id) } } @else { "–" } }
}

fn diff_cell(archive: &ArchiveName, from: Option<SnapshotId>, to: SnapshotId, count: Option<usize>) -> Markup {
    html! {
        @if let Some(from) = from.filter(|f| *f != to) {
            a href=(diff_href(archive, from, to)) {
                @if let Some(n) = count { (n) " changes" } @else { "diff" }
            }
        }
    }
}
