//! Downloads from an upstream archive: retries transient failures (timeouts, resets, 5xx,
//! 429) with exponential backoff, resumes partial downloads with `Range`, and stores a file
//! only once its size and SHA-256 match what the signed Release (or an index) promised.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use reqwest::StatusCode;
use tokio::io::AsyncWriteExt;

use crate::blob::PutError;
use crate::domain::Digest;
use crate::store::Store;

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{url}: {reason}")]
    Failed { url: String, reason: String },
    #[error("{url}: gave up after {attempts} attempts: {last}")]
    Exhausted { url: String, attempts: u32, last: String },
    #[error("{url}: is {actual} bytes, the signed index says {expected}")]
    Size { url: String, expected: u64, actual: u64 },
    #[error("{url}: SHA-256 is {actual}, the signed index says {expected}")]
    Checksum { url: String, expected: Digest, actual: Digest },
}

#[derive(Debug, Default)]
pub struct FetchStats {
    pub requests: AtomicU64,
    pub downloaded_bytes: AtomicU64,
    pub retries: AtomicU64,
}

#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    partial_dir: PathBuf,
    pub retries: u32,
    pub backoff: Duration,
    pub stats: Arc<FetchStats>,
}

/// What one attempt left us with.
enum Attempt<T> {
    Done(T),
    Retry(String),
}

pub enum Fetched {
    /// Stored now: `bytes` downloaded (less than the size when resumed).
    Downloaded { bytes: u64 },
    /// Already in the blob store: nothing downloaded.
    Reused,
}

impl Fetcher {
    pub fn new(partial_dir: PathBuf) -> Result<Self, FetchError> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("asof/", env!("CARGO_PKG_VERSION"), " (+mirror)"))
            .connect_timeout(Duration::from_secs(15))
            .read_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| FetchError::Failed { url: String::new(), reason: format!("HTTP client: {e}") })?;
        Ok(Self { client, partial_dir, retries: 5, backoff: Duration::from_millis(500), stats: Default::default() })
    }

    async fn pause(&self, attempt: u32) {
        self.stats.retries.fetch_add(1, Ordering::Relaxed);
        let wait = self.backoff.saturating_mul(1 << attempt.min(6)).min(Duration::from_secs(30));
        tokio::time::sleep(wait).await;
    }

    /// A small file held in memory (Release files). `None` when upstream answers 404.
    pub async fn get_small(&self, url: &str, limit: u64) -> Result<Option<Vec<u8>>, FetchError> {
        let mut last = String::new();
        for attempt in 0..=self.retries {
            if attempt > 0 {
                self.pause(attempt - 1).await;
            }
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            let resp = match self.client.get(url).send().await {
                Ok(r) => r,
                Err(e) => {
                    last = describe(&e);
                    continue;
                }
            };
            match resp.status() {
                StatusCode::NOT_FOUND | StatusCode::GONE => return Ok(None),
                s if is_transient(s) => {
                    last = format!("HTTP {s}");
                    continue;
                }
                s if !s.is_success() => {
                    return Err(FetchError::Failed { url: url.into(), reason: format!("HTTP {s}") });
                }
                _ => {}
            }
            let mut body = Vec::new();
            let mut stream = resp.bytes_stream();
            let mut failed = None;
            while let Some(chunk) = stream.next().await {
                match chunk {
                    Ok(c) => {
                        body.extend_from_slice(&c);
                        if body.len() as u64 > limit {
                            return Err(FetchError::Failed {
                                url: url.into(),
                                reason: format!("larger than the {limit}-byte limit"),
                            });
                        }
                    }
                    Err(e) => {
                        failed = Some(describe(&e));
                        break;
                    }
                }
            }
            self.stats.downloaded_bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
            match failed {
                Some(e) => last = e,
                None => return Ok(Some(body)),
            }
        }
        Err(FetchError::Exhausted { url: url.into(), attempts: self.retries + 1, last })
    }

    /// Whether upstream has `url` (a HEAD request; for dry runs, which fetch nothing big).
    pub async fn exists(&self, url: &str) -> Result<bool, FetchError> {
        let mut last = String::new();
        for attempt in 0..=self.retries {
            if attempt > 0 {
                self.pause(attempt - 1).await;
            }
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            match self.client.head(url).send().await.map(|r| r.status()) {
                Ok(StatusCode::NOT_FOUND | StatusCode::GONE) => return Ok(false),
                Ok(s) if s.is_success() => return Ok(true),
                Ok(s) if is_transient(s) => last = format!("HTTP {s}"),
                Ok(s) => return Err(FetchError::Failed { url: url.into(), reason: format!("HTTP {s}") }),
                Err(e) => last = describe(&e),
            }
        }
        Err(FetchError::Exhausted { url: url.into(), attempts: self.retries + 1, last })
    }

    /// Makes the blob `sha256` present in the store, downloading `url` if needed.
    /// `None` when upstream answers 404 (the caller decides whether that is fatal).
    pub async fn fetch_blob(
        &self,
        store: &Store,
        url: &str,
        size: u64,
        sha256: Digest,
    ) -> Result<Option<Fetched>, FetchError> {
        let io_err = |e: std::io::Error| FetchError::Failed { url: url.into(), reason: format!("local I/O: {e}") };
        let s = store.clone();
        if tokio::task::spawn_blocking(move || crate::gc::rely_on(&s, &sha256))
            .await
            .map_err(|e| io_err(e.into()))?
            .map_err(io_err)?
        {
            return Ok(Some(Fetched::Reused));
        }
        tokio::fs::create_dir_all(&self.partial_dir).await.map_err(io_err)?;
        // Keyed by digest: a later run resumes what an interrupted one left.
        let part = self.partial_dir.join(format!("{}.part", sha256.hex()));
        let mut downloaded = 0u64;
        let mut last = String::new();
        let mut attempt = 0;
        loop {
            if attempt > self.retries {
                return Err(FetchError::Exhausted { url: url.into(), attempts: attempt, last });
            }
            if attempt > 0 {
                self.pause(attempt - 1).await;
            }
            attempt += 1;
            match self.try_download(url, &part, size, &mut downloaded).await? {
                Attempt::Retry(reason) => last = reason,
                Attempt::Done(false) => return Ok(None),
                Attempt::Done(true) => break,
            }
        }
        let blobs = store.blobs.clone();
        let part_path = part.clone();
        let put = tokio::task::spawn_blocking(move || {
            let mut f = std::fs::File::open(&part_path)?;
            blobs.blocking().put(&mut f, Some(&sha256), Some(size))
        })
        .await
        .map_err(|e| io_err(e.into()))?;
        // Whatever the outcome, the partial file has served its purpose (a mismatch means
        // its bytes are wrong and must not be resumed from).
        let _ = tokio::fs::remove_file(&part).await;
        match put {
            Ok(_) => Ok(Some(Fetched::Downloaded { bytes: downloaded })),
            Err(PutError::DigestMismatch { expected, actual }) => {
                Err(FetchError::Checksum { url: url.into(), expected, actual })
            }
            Err(PutError::LengthMismatch { expected, actual }) => {
                Err(FetchError::Size { url: url.into(), expected, actual })
            }
            Err(PutError::Io(e)) => Err(io_err(e)),
        }
    }

    /// One request, appending to `part`. `Done(false)` means 404; `Done(true)` complete.
    async fn try_download(
        &self,
        url: &str,
        part: &std::path::Path,
        size: u64,
        downloaded: &mut u64,
    ) -> Result<Attempt<bool>, FetchError> {
        let io_err = |e: std::io::Error| FetchError::Failed { url: url.into(), reason: format!("local I/O: {e}") };
        let have = match tokio::fs::metadata(part).await {
            Ok(m) if m.len() <= size => m.len(),
            Ok(_) => {
                tokio::fs::remove_file(part).await.map_err(io_err)?;
                0
            }
            Err(_) => 0,
        };
        // A complete partial file from an earlier attempt. An empty file (Release files list
        // empty Packages) is always asked for: its existence upstream is the answer.
        if have == size && size > 0 {
            return Ok(Attempt::Done(true));
        }
        let mut req = self.client.get(url);
        if have > 0 {
            req = req.header(reqwest::header::RANGE, format!("bytes={have}-"));
        }
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return Ok(Attempt::Retry(describe(&e))),
        };
        let append = match resp.status() {
            StatusCode::NOT_FOUND | StatusCode::GONE if have == 0 => return Ok(Attempt::Done(false)),
            StatusCode::PARTIAL_CONTENT if have > 0 => true,
            StatusCode::OK => false,
            StatusCode::RANGE_NOT_SATISFIABLE => {
                tokio::fs::remove_file(part).await.map_err(io_err)?;
                return Ok(Attempt::Retry("upstream refused to resume (416)".into()));
            }
            s if is_transient(s) => return Ok(Attempt::Retry(format!("HTTP {s}"))),
            s => return Err(FetchError::Failed { url: url.into(), reason: format!("HTTP {s}") }),
        };
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(part)
            .await
            .map_err(io_err)?;
        let mut len = if append { have } else { 0 };
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    file.flush().await.map_err(io_err)?;
                    return Ok(Attempt::Retry(format!("transfer interrupted after {len} bytes: {}", describe(&e))));
                }
            };
            len += chunk.len() as u64;
            if len > size {
                let _ = tokio::fs::remove_file(part).await;
                return Err(FetchError::Size { url: url.into(), expected: size, actual: len });
            }
            file.write_all(&chunk).await.map_err(io_err)?;
            *downloaded += chunk.len() as u64;
            self.stats.downloaded_bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
        file.flush().await.map_err(io_err)?;
        if len < size {
            return Ok(Attempt::Retry(format!("connection closed after {len} of {size} bytes")));
        }
        Ok(Attempt::Done(true))
    }
}

fn is_transient(s: StatusCode) -> bool {
    s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS || s == StatusCode::REQUEST_TIMEOUT
}

/// reqwest's Display hides the cause ("error sending request"); show the chain.
fn describe(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(cause) = src {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        src = cause.source();
    }
    s
}
