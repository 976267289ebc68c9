//! Scheduled mirroring inside `asof serve`: each configured archive runs on its own
//! interval (with jitter), never twice at once; a failed run is logged, counted and retried
//! at the next interval, and never takes the server down.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::{MirrorOptions, MirrorSpec, mirror};
use crate::metrics::Metrics;
use crate::store::Store;

#[derive(Debug, Clone)]
pub struct ScheduledMirror {
    pub spec: MirrorSpec,
    pub interval: Duration,
}

/// Spawns one task per mirror; they stop with the runtime.
pub fn spawn_all(store: Store, data: PathBuf, mirrors: Vec<ScheduledMirror>, metrics: Arc<Metrics>) {
    for m in mirrors {
        let (store, data, metrics) = (store.clone(), data.clone(), metrics.clone());
        tokio::spawn(async move {
            // Spread the first runs so that a restart does not hit every upstream at once.
            tokio::time::sleep(jitter((m.interval / 10).min(Duration::from_secs(5)))).await;
            loop {
                run_once(&store, &data, &m.spec, &metrics).await;
                tokio::time::sleep(m.interval + jitter(m.interval / 10)).await;
            }
        });
    }
}

pub async fn run_once(store: &Store, data: &std::path::Path, spec: &MirrorSpec, metrics: &Metrics) -> bool {
    let archive = spec.archive.to_string();
    let opts = MirrorOptions::for_data_dir(data);
    let started = std::time::Instant::now();
    let now = || chrono::Utc::now().timestamp() as f64;
    match mirror(store, spec, &opts).await {
        Ok(report) => {
            metrics.mirror_runs.with_label_values(&[&archive, "success"]).inc();
            metrics.mirror_last_success.with_label_values(&[&archive]).set(now());
            metrics.mirror_downloaded_bytes.with_label_values(&[&archive]).inc_by(report.downloaded_bytes);
            if !report.unchanged {
                metrics.publish_seconds.observe(started.elapsed().as_secs_f64());
            }
            tracing::info!(archive, snapshot = %report.snapshot, unchanged = report.unchanged,
                downloaded_bytes = report.downloaded_bytes, files = report.files, "mirror run finished");
            true
        }
        Err(e) => {
            metrics.mirror_runs.with_label_values(&[&archive, "failure"]).inc();
            metrics.mirror_last_failure.with_label_values(&[&archive]).set(now());
            tracing::error!(archive, error = %e, "mirror run failed; retrying at the next interval");
            false
        }
    }
}

/// A pseudo-random duration in [0, max): enough to spread runs, no RNG dependency needed.
fn jitter(max: Duration) -> Duration {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().subsec_nanos();
    let max_ms = max.as_millis().max(1) as u64;
    Duration::from_millis(u64::from(nanos) % max_ms)
}
