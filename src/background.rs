//! Periodic background jobs of `asof serve` (token last-use flushes, the package index
//! backfill, garbage collection): each run on the blocking pool, one at a time, a failed
//! run logged and retried at the next tick.

use std::sync::Arc;
use std::time::Duration;

use crate::store::Store;

/// Runs `job` every `period` (the first time at once) until the runtime stops.
pub fn every(what: &'static str, period: Duration, store: Store, job: impl Fn(&Store) + Send + Sync + 'static) {
    every_after(what, Duration::ZERO, period, store, job)
}

/// As `every`, the first run `first` after the call.
pub fn every_after(
    what: &'static str,
    first: Duration,
    period: Duration,
    store: Store,
    job: impl Fn(&Store) + Send + Sync + 'static,
) {
    let job = Arc::new(job);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + first, period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let (s, job) = (store.clone(), job.clone());
            if let Err(e) = tokio::task::spawn_blocking(move || job(&s)).await {
                tracing::warn!(job = what, error = %e, "background job failed; retrying at the next tick");
            }
        }
    });
}
