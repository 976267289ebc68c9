//! Getting good bytes back for a quarantined blob: from the blob store itself (a mirror
//! run or an upload put them back), else from the upstream of a mirrored archive that
//! has it, by path or by hash, checked against its SHA-256 and size before it is stored.

use super::{Quarantined, Restored, ScrubError, blocking};
use crate::domain::Digest;
use crate::mirror::fetch::{FetchError, Fetcher};
use crate::store::Store;

/// The `from` of a quarantine lifted because no snapshot needs the blob any more.
pub const NO_LONGER_REFERENCED: &str = "no snapshot references it any more";

/// Lifts the quarantine when good bytes are back or could be fetched; else records why
/// not (for a mirrored blob) and leaves it quarantined.
pub(super) async fn recover(store: &Store, q: &Quarantined) -> Result<Option<Restored>, ScrubError> {
    let digest = q.sha256;
    let s = store.clone();
    if !blocking(move || Ok(s.scrub.scrub_is_referenced(&digest)?)).await? {
        // Its snapshots are gone (retention): nothing is damaged any more. The bad bytes
        // stay in the quarantine area all the same.
        return lift(store, digest, NO_LONGER_REFERENCED.into()).await.map(Some);
    }
    let s = store.clone();
    let purged = blocking(move || Ok(crate::takedown::purged_digests(&s)?.get(&digest).copied())).await?;
    if let Some(takedown) = purged {
        // Deleted on purpose since it was quarantined: never fetched back.
        return lift(store, digest, format!("purged by takedown {takedown}")).await.map(Some);
    }
    let s = store.clone();
    if blocking(move || stored_intact(&s, &digest)).await? {
        return lift(store, digest, "the blob store".into()).await.map(Some);
    }
    let s = store.clone();
    let urls = blocking(move || Ok(upstream_urls(&s, &digest)?)).await?;
    if urls.is_empty() {
        return Ok(None);
    }
    let partial = store.scratch.join("scrub-partial");
    let fetcher = fetcher(partial.clone())?;
    let mut notes = Vec::new();
    let mut unsure = false;
    for url in urls {
        // The fetcher resumes a partial download of the digest: never from another URL's
        // bytes. Runs hold the scrub lock, so the directory is this run's alone.
        match tokio::fs::remove_dir_all(&partial).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
        match fetcher.fetch_blob(store, &url, q.size, digest).await {
            Ok(Some(_)) => return lift(store, digest, url).await.map(Some),
            Ok(None) => notes.push(format!("{url}: not found")),
            Err(FetchError::Checksum { actual, .. }) => {
                notes.push(format!("{url}: different bytes (SHA-256 {actual})"))
            }
            Err(FetchError::Size { actual, .. }) => notes.push(format!("{url}: different bytes ({actual} bytes)")),
            Err(e) => {
                unsure = true;
                notes.push(e.to_string());
            }
        }
    }
    let note = match unsure {
        false => format!("upstream no longer has it: {}", notes.join("; ")),
        true => format!("could not be fetched again from upstream: {}", notes.join("; ")),
    };
    tracing::warn!(sha256 = %digest, %note, "quarantined blob stays quarantined");
    let s = store.clone();
    blocking(move || Ok(s.scrub.scrub_note_refetch(&digest, &note)?)).await?;
    Ok(None)
}

/// Whether the store holds bytes for `digest` again and they hash to it. Blocking.
fn stored_intact(store: &Store, digest: &Digest) -> Result<bool, ScrubError> {
    let Some(mut blob) = store.blobs.blocking().open(digest)? else { return Ok(false) };
    let mut buf = vec![0u8; 256 * 1024];
    Ok(crate::verify::hash_reader(&mut blob.reader, &mut buf, &mut |_| {}).is_ok_and(|d| d == *digest))
}

async fn lift(store: &Store, digest: Digest, from: String) -> Result<Restored, ScrubError> {
    let s = store.clone();
    blocking(move || {
        s.scrub.scrub_mark_verified(&[digest], chrono::Utc::now().timestamp())?;
        Ok(s.scrub.scrub_lift(&digest)?)
    })
    .await?;
    tracing::info!(sha256 = %digest, %from, "quarantine lifted: good bytes are back");
    Ok(Restored { sha256: digest, from })
}

/// Where mirrored archives' upstreams had the blob: the path in each snapshot that
/// first had it there, and for an index under `dists/` its by-hash name beside it.
fn upstream_urls(store: &Store, digest: &Digest) -> Result<Vec<String>, crate::catalog::CatalogError> {
    let mut urls: Vec<String> = Vec::new();
    for src in store.scrub.scrub_sources(digest)? {
        if src.source.get("method").and_then(|m| m.as_str()) != Some("mirror") {
            continue;
        }
        let Some(upstream) = src.source.get("upstream").and_then(|u| u.as_str()) else { continue };
        let mut candidates = vec![format!("{upstream}{}", src.path)];
        if let Some((dir, _)) = src.path.rsplit_once('/')
            && src.path.starts_with("dists/")
        {
            candidates.push(format!("{upstream}{dir}/by-hash/SHA256/{}", digest.hex()));
        }
        for url in candidates {
            if !urls.contains(&url) {
                urls.push(url);
            }
        }
    }
    Ok(urls)
}

fn fetcher(partial: std::path::PathBuf) -> Result<Fetcher, ScrubError> {
    let mut f = Fetcher::new(partial).map_err(|e| ScrubError::Blob(std::io::Error::other(e)))?;
    // A scrub waits for no flaky upstream: the next run asks again.
    f.retries = 2;
    f.backoff = std::time::Duration::from_millis(200);
    Ok(f)
}
