//! Scheduled mirroring inside `asof serve`: each configured archive runs on its own
//! interval (with jitter), never twice at once; a failed or panicking run is logged, counted
//! and retried at the next interval, and never takes the server or the schedule down.
//! Metrics name a private archive only by a hash (`metrics::archive_label`).

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::{MirrorOptions, MirrorSpec, mirror};
use crate::domain::ArchiveName;
use crate::metrics::{Metrics, archive_label};
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
            let spec = Arc::new(m.spec);
            let run = {
                let (store, data, metrics, spec) = (store.clone(), data.clone(), metrics.clone(), spec.clone());
                move || {
                    let (store, data, metrics, spec) = (store.clone(), data.clone(), metrics.clone(), spec.clone());
                    async move {
                        run_once(&store, &data, &spec, &metrics).await;
                    }
                }
            };
            run_on_schedule(store, spec.archive.clone(), m.interval, metrics, run).await;
        });
    }
}

/// Calls `run` now and then every `interval` (plus jitter) until the runtime stops. Each
/// run is a task of its own, so that a panic in it ends that run only: it is logged with
/// the archive, counted as `result="panic"`, and the next run comes on time.
pub async fn run_on_schedule<F, Fut>(
    store: Store,
    archive: ArchiveName,
    interval: Duration,
    metrics: Arc<Metrics>,
    mut run: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    loop {
        match tokio::spawn(run()).await {
            Ok(()) => {}
            Err(e) if e.is_panic() => {
                let label = label_for(&store, &archive, &metrics).await;
                metrics.mirror_runs.with_label_values(&[&label, "panic"]).inc();
                metrics.mirror_last_failure.with_label_values(&[&label]).set(now());
                let payload = e.into_panic();
                let reason = payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "(no message)".into());
                tracing::error!(%archive, panic = reason, "mirror run panicked; retrying at the next interval");
            }
            // Cancelled: the runtime is shutting down.
            Err(_) => return,
        }
        tokio::time::sleep(interval + jitter(interval / 10)).await;
    }
}

pub async fn run_once(store: &Store, data: &std::path::Path, spec: &MirrorSpec, metrics: &Metrics) -> bool {
    let archive = spec.archive.to_string();
    let label = label_for(store, &spec.archive, metrics).await;
    let opts = MirrorOptions::for_data_dir(data);
    let started = std::time::Instant::now();
    match mirror(store, spec, &opts).await {
        Ok(report) => {
            metrics.mirror_runs.with_label_values(&[&label, "success"]).inc();
            metrics.mirror_last_success.with_label_values(&[&label]).set(now());
            metrics.mirror_downloaded_bytes.with_label_values(&[&label]).inc_by(report.downloaded_bytes);
            if !report.unchanged {
                metrics.publish_seconds.observe(started.elapsed().as_secs_f64());
            }
            for w in &report.warnings {
                tracing::warn!(archive, "{w}");
            }
            if !report.missing.is_empty() {
                let missing: Vec<&str> = report.missing.iter().map(|p| p.as_str()).collect();
                tracing::warn!(archive, ?missing, "snapshot recorded without files missing upstream (allow_missing)");
            }
            tracing::info!(archive, snapshot = %report.snapshot, unchanged = report.unchanged,
                downloaded_bytes = report.downloaded_bytes, files = report.files, "mirror run finished");
            true
        }
        Err(e) => {
            metrics.mirror_runs.with_label_values(&[&label, "failure"]).inc();
            metrics.mirror_last_failure.with_label_values(&[&label]).set(now());
            tracing::error!(archive, error = %e, "mirror run failed; retrying at the next interval");
            false
        }
    }
}

/// The metrics label of `archive` as of now. Privacy is looked up at every run, so that an
/// archive made private later gets a hashed label from then on, and the series recorded
/// under its name while it was public are dropped. When the lookup fails the archive is
/// taken as private: a hashed label loses nothing but readability.
async fn label_for(store: &Store, archive: &ArchiveName, metrics: &Metrics) -> String {
    let (auth, name) = (store.auth.clone(), archive.clone());
    let looked_up = tokio::task::spawn_blocking(move || auth.is_private(&name).map_err(|e| e.to_string()))
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
    let private = looked_up.unwrap_or_else(|error| {
        tracing::warn!(%archive, error, "could not tell whether the archive is private; hashing its metrics label");
        true
    });
    if private {
        let name = archive.as_str();
        for result in ["success", "failure", "panic"] {
            let _ = metrics.mirror_runs.remove_label_values(&[name, result]);
        }
        let _ = metrics.mirror_last_success.remove_label_values(&[name]);
        let _ = metrics.mirror_last_failure.remove_label_values(&[name]);
        let _ = metrics.mirror_downloaded_bytes.remove_label_values(&[name]);
    }
    archive_label(archive, private, &store.label_key)
}

fn now() -> f64 {
    chrono::Utc::now().timestamp() as f64
}

/// A pseudo-random duration in [0, max): enough to spread runs, no RNG dependency needed.
fn jitter(max: Duration) -> Duration {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().subsec_nanos();
    let max_ms = max.as_millis().max(1) as u64;
    Duration::from_millis(u64::from(nanos) % max_ms)
}
