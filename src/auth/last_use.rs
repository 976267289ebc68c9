//! Last-use times of tokens, recorded off the request path. Authenticating a read must
//! never wait for the database write lock or need free disk, so uses are noted in memory
//! (bounded: past `MAX_PENDING` tokens new ones are dropped) and written in batches by a
//! background task; a failed write is logged and forgotten.

use std::collections::HashMap;
use std::sync::Mutex;

use super::AuthStore;

/// Most distinct tokens remembered between two flushes.
const MAX_PENDING: usize = 10_000;

#[derive(Default)]
pub struct LastUse {
    pending: Mutex<HashMap<i64, i64>>,
}

impl LastUse {
    /// Notes that `token_id` was used at `now` (unix seconds). Never blocks on I/O.
    pub fn note(&self, token_id: i64, now: i64) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if pending.len() >= MAX_PENDING && !pending.contains_key(&token_id) {
            return;
        }
        let at = pending.entry(token_id).or_insert(now);
        *at = (*at).max(now);
    }

    /// Takes what was noted since the last call.
    pub fn drain(&self) -> Vec<(i64, i64)> {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::take(&mut *pending).into_iter().collect()
    }

    /// Blocking: writes what was noted. On failure (write lock held for long, disk full)
    /// the batch is dropped: last-use times are advisory.
    pub fn flush(&self, store: &dyn AuthStore) {
        let batch = self.drain();
        if batch.is_empty() {
            return;
        }
        if let Err(e) = store.touch_tokens(&batch) {
            tracing::warn!(error = %e, tokens = batch.len(), "could not record token last-use times; dropped");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_latest_use_and_is_bounded() {
        let l = LastUse::default();
        l.note(1, 10);
        l.note(1, 5);
        l.note(2, 7);
        let mut d = l.drain();
        d.sort();
        assert_eq!(d, vec![(1, 10), (2, 7)]);
        assert!(l.drain().is_empty());
        for id in 0..(MAX_PENDING as i64 + 5) {
            l.note(id, 1);
        }
        assert_eq!(l.drain().len(), MAX_PENDING);
    }
}
