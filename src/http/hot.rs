//! The serving fast path's memory. Thousands of nodes ask for the same InRelease and
//! Packages at once; a final answer (which file an exact or sealed ID and a path name, after
//! privacy, takedowns and re-signing) and the bytes of small files are kept here, so that a
//! repeated request costs no catalog read and no hop to the blocking pool.
//!
//! Final answers change only by the rare changes that move the catalog's serve epoch
//! (`catalog::ServeEpoch`: takedowns, retention, privacy, quarantine, signing). Every request
//! first looks, without blocking, whether the catalog was written since the last check (a
//! change watch); if it was, the epoch is read again, and when it moved, everything cached
//! is dropped. Entries carry the generation they were derived under, so an answer derived
//! from data read before a change can never be served after it.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use quick_cache::Weighter;
use quick_cache::sync::Cache;

use super::AppState;
use super::error::ApiError;
use crate::catalog::ChangeSignal;
use crate::domain::Digest;

/// Memory for answers (a key and an answer are a few hundred bytes: about 40,000 of them).
const ANSWER_BYTES: u64 = 16 << 20;

pub struct HotCache {
    /// Bumped to drop everything: entries derived under an older value are ignored.
    generation: AtomicU64,
    /// `None`: the catalog gives no change signal, and nothing is cached.
    watch: Option<Watch>,
    answers: Cache<String, Arc<Answer>, AnswerSize>,
    bytes: Cache<Digest, Tagged, ByLength>,
    /// Files up to this size are read whole and kept.
    pub max_file: u64,
}

struct Watch {
    changes: Box<dyn ChangeSignal>,
    /// The change count that the last settled epoch read covers.
    checked: AtomicU64,
    /// The catalog's epoch as last read.
    known: Mutex<Option<u64>>,
}

/// A final answer: the file to serve, its headers made.
pub struct Answer {
    pub generation: u64,
    pub file: super::files::FileAnswer,
}

#[derive(Clone)]
struct Tagged {
    generation: u64,
    bytes: Bytes,
}

#[derive(Clone)]
struct AnswerSize;
impl Weighter<String, Arc<Answer>> for AnswerSize {
    fn weight(&self, key: &String, _: &Arc<Answer>) -> u64 {
        // The answer's struct, its header values and the cache's own bookkeeping.
        key.len() as u64 + 400
    }
}

#[derive(Clone)]
struct ByLength;
impl Weighter<Digest, Tagged> for ByLength {
    fn weight(&self, _: &Digest, v: &Tagged) -> u64 {
        v.bytes.len() as u64 + 64
    }
}

/// What a request may do with the cache.
#[derive(Debug, Clone, Copy)]
pub struct Ticket {
    /// The generation to tag what this request derives.
    pub generation: u64,
    /// Whether cached entries may answer it: false while a catalog write is in flight.
    pub may_read: bool,
}

impl HotCache {
    /// `bytes_budget`: memory for file contents; 0 turns the whole cache off.
    pub fn new(store: &crate::store::Store, bytes_budget: u64) -> Self {
        let watch = if bytes_budget == 0 {
            None
        } else {
            match store.epoch.watch() {
                Ok(w) => w,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot watch the catalog for changes; serving without the memory cache");
                    None
                }
            }
        };
        let watch = watch.map(|changes| Watch { changes, checked: AtomicU64::new(0), known: Mutex::new(None) });
        Self {
            generation: AtomicU64::new(0),
            watch,
            answers: Cache::with_weighter(4096, ANSWER_BYTES, AnswerSize),
            bytes: Cache::with_weighter(1024, bytes_budget.max(1), ByLength),
            max_file: (bytes_budget / 16).clamp(1, 4 << 20),
        }
    }

    /// Makes sure nothing cached predates a change the catalog has committed, and says what
    /// this request may do. `None`: caching is off.
    pub async fn ticket(&self, st: &AppState) -> Result<Option<Ticket>, ApiError> {
        let Some(w) = &self.watch else { return Ok(None) };
        let changes = w.changes.writes();
        if changes <= w.checked.load(Ordering::SeqCst) {
            return Ok(Some(Ticket { generation: self.generation.load(Ordering::SeqCst), may_read: true }));
        }
        let settled = st.blocking(|s| Ok(s.epoch.settled_epoch()?)).await?;
        let Some(epoch) = settled else {
            // A write is in flight: its outcome is unknown, so answer from the catalog.
            // `checked` stays behind, so the next request looks again.
            return Ok(Some(Ticket { generation: self.generation.load(Ordering::SeqCst), may_read: false }));
        };
        {
            let mut known = w.known.lock().unwrap_or_else(|p| p.into_inner());
            // The first read drops what was cached before anything was known, too.
            if known.is_none_or(|k| epoch > k) {
                self.drop_all();
                *known = Some(epoch);
            }
        }
        w.checked.fetch_max(changes, Ordering::SeqCst);
        Ok(Some(Ticket { generation: self.generation.load(Ordering::SeqCst), may_read: true }))
    }

    fn drop_all(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.answers.clear();
        self.bytes.clear();
    }

    fn current(&self, generation: u64) -> bool {
        generation == self.generation.load(Ordering::SeqCst)
    }

    pub fn answer(&self, ticket: Ticket, key: &str) -> Option<Arc<Answer>> {
        if !ticket.may_read {
            return None;
        }
        self.answers.get(key).filter(|a| self.current(a.generation))
    }

    pub fn remember(&self, key: String, answer: Answer) {
        if self.current(answer.generation) {
            self.answers.insert(key, Arc::new(answer));
        }
    }

    pub fn file(&self, ticket: Ticket, digest: &Digest) -> Option<Bytes> {
        if !ticket.may_read {
            return None;
        }
        self.bytes.get(digest).filter(|t| self.current(t.generation)).map(|t| t.bytes)
    }

    pub fn remember_file(&self, generation: u64, digest: Digest, bytes: Bytes) {
        if self.current(generation) && bytes.len() as u64 <= self.max_file {
            self.bytes.insert(digest, Tagged { generation, bytes });
        }
    }
}
