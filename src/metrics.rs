//! Prometheus metrics of asof: requests by status, bytes served, lookup and publish
//! durations, mirror runs, throttled requests.

use crate::domain::{ArchiveName, Digest};
use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub bytes_served: IntCounter,
    /// Downloads redirected to a presigned URL of the blob store.
    pub redirects: IntCounter,
    pub lookup_seconds: Histogram,
    /// Final answers served from memory (`http::hot`).
    pub memory_answer_hits: IntCounter,
    /// File contents served from memory (`http::hot`).
    pub memory_file_hits: IntCounter,
    pub publish_seconds: Histogram,
    pub publishes: IntCounterVec,
    pub mirror_runs: IntCounterVec,
    pub auth_failures: IntCounterVec,
    pub mirror_last_success: GaugeVec,
    pub mirror_last_failure: GaugeVec,
    pub mirror_downloaded_bytes: IntCounterVec,
    pub throttled: IntCounterVec,
    /// Per rollout channel and ring: the snapshot served (as its Unix time), and the
    /// distinct nodes that asked in the last hour (from `channel_nodes_seen`).
    pub channel_snapshot: GaugeVec,
    pub channel_nodes: IntGaugeVec,
    pub channel_nodes_seen: crate::rollout::seen::SeenNodes,
    /// Scrub (`scrub`): blobs and bytes re-hashed, problems found by kind, quarantine
    /// lifts, blobs quarantined now, and when the last run ended.
    pub scrub_verified_blobs: IntCounter,
    pub scrub_verified_bytes: IntCounter,
    pub scrub_problems: IntCounterVec,
    pub scrub_restored: IntCounter,
    pub scrub_quarantined: IntGauge,
    pub scrub_last_run: Gauge,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new_custom(Some("asof".into()), None).expect("valid prefix");
        let requests =
            IntCounterVec::new(Opts::new("http_requests_total", "HTTP requests answered, by status code"), &["status"])
                .expect("valid metric");
        let bytes_served =
            IntCounter::new("http_response_body_bytes_total", "File bytes sent to clients").expect("valid metric");
        let redirects = IntCounter::new(
            "http_presigned_redirects_total",
            "Downloads answered with a redirect to a presigned URL of the blob store",
        )
        .expect("valid metric");
        let lookup_seconds = Histogram::with_opts(
            HistogramOpts::new("lookup_duration_seconds", "Time to resolve (archive, ID, path) to content")
                .buckets(vec![0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1.0]),
        )
        .expect("valid metric");
        let memory_hits = IntCounterVec::new(
            Opts::new("memory_cache_hits_total", "Final answers and file contents served from memory, by kind"),
            &["kind"],
        )
        .expect("valid metric");
        let publish_seconds = Histogram::with_opts(
            HistogramOpts::new("publish_duration_seconds", "Time to record a publish, scan to commit")
                .buckets(vec![0.01, 0.05, 0.25, 1.0, 5.0, 30.0, 120.0, 600.0, 3600.0]),
        )
        .expect("valid metric");
        let publishes = IntCounterVec::new(
            Opts::new("publishes_total", "Publishes recorded by this process, by result"),
            &["result"],
        )
        .expect("valid metric");
        let mirror_runs = IntCounterVec::new(
            Opts::new("mirror_runs_total", "Scheduled mirror runs, by archive and result"),
            &["archive", "result"],
        )
        .expect("valid metric");
        let mirror_last_success = GaugeVec::new(
            Opts::new("mirror_last_success_timestamp_seconds", "Unix time of the last successful mirror run"),
            &["archive"],
        )
        .expect("valid metric");
        let mirror_last_failure = GaugeVec::new(
            Opts::new("mirror_last_failure_timestamp_seconds", "Unix time of the last failed mirror run"),
            &["archive"],
        )
        .expect("valid metric");
        let mirror_downloaded_bytes = IntCounterVec::new(
            Opts::new("mirror_downloaded_bytes_total", "Bytes downloaded from upstreams by scheduled mirror runs"),
            &["archive"],
        )
        .expect("valid metric");
        let auth_failures = IntCounterVec::new(
            Opts::new("auth_failures_total", "Requests refused for a missing, invalid or insufficient token"),
            &["reason"],
        )
        .expect("valid metric");
        let throttled = IntCounterVec::new(
            Opts::new("throttled_requests_total", "Requests refused with 429 by the rate limits, by route class"),
            &["class"],
        )
        .expect("valid metric");
        let channel_snapshot = GaugeVec::new(
            Opts::new(
                "channel_ring_snapshot_timestamp_seconds",
                "The snapshot a rollout channel's ring serves, as the Unix time its ID names",
            ),
            &["channel", "ring"],
        )
        .expect("valid metric");
        let channel_nodes = IntGaugeVec::new(
            Opts::new("channel_ring_nodes_last_hour", "Distinct nodes of a channel's ring that asked in the last hour"),
            &["channel", "ring"],
        )
        .expect("valid metric");
        let scrub = ScrubMetrics::new();
        for m in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(scrub.verified_blobs.clone()),
            Box::new(scrub.verified_bytes.clone()),
            Box::new(scrub.problems.clone()),
            Box::new(scrub.restored.clone()),
            Box::new(scrub.quarantined.clone()),
            Box::new(scrub.last_run.clone()),
            Box::new(channel_snapshot.clone()),
            Box::new(channel_nodes.clone()),
            Box::new(bytes_served.clone()),
            Box::new(redirects.clone()),
            Box::new(lookup_seconds.clone()),
            Box::new(memory_hits.clone()),
            Box::new(publish_seconds.clone()),
            Box::new(publishes.clone()),
            Box::new(mirror_runs.clone()),
            Box::new(auth_failures.clone()),
            Box::new(mirror_last_success.clone()),
            Box::new(mirror_last_failure.clone()),
            Box::new(mirror_downloaded_bytes.clone()),
            Box::new(throttled.clone()),
        ] {
            registry.register(m).expect("metric registered once");
        }
        Self {
            registry,
            requests,
            bytes_served,
            redirects,
            lookup_seconds,
            memory_answer_hits: memory_hits.with_label_values(&["answer"]),
            memory_file_hits: memory_hits.with_label_values(&["file"]),
            publish_seconds,
            publishes,
            mirror_runs,
            auth_failures,
            mirror_last_success,
            mirror_last_failure,
            mirror_downloaded_bytes,
            throttled,
            channel_snapshot,
            channel_nodes,
            channel_nodes_seen: Default::default(),
            scrub_verified_blobs: scrub.verified_blobs,
            scrub_verified_bytes: scrub.verified_bytes,
            scrub_problems: scrub.problems,
            scrub_restored: scrub.restored,
            scrub_quarantined: scrub.quarantined,
            scrub_last_run: scrub.last_run,
        }
    }

    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut out).expect("text encoding cannot fail");
        String::from_utf8(out).expect("prometheus text is UTF-8")
    }
}

struct ScrubMetrics {
    verified_blobs: IntCounter,
    verified_bytes: IntCounter,
    problems: IntCounterVec,
    restored: IntCounter,
    quarantined: IntGauge,
    last_run: Gauge,
}

impl ScrubMetrics {
    fn new() -> Self {
        let problems = IntCounterVec::new(
            Opts::new("scrub_problems_total", "Blobs a scrub found bad and quarantined, by kind (corrupt, missing)"),
            &["kind"],
        )
        .expect("valid metric");
        // Both kinds exist from the start, so that an alert on them sees a zero first.
        for kind in ["corrupt", "missing"] {
            problems.with_label_values(&[kind]);
        }
        Self {
            verified_blobs: IntCounter::new("scrub_verified_blobs_total", "Blobs re-hashed by scrub runs")
                .expect("valid metric"),
            verified_bytes: IntCounter::new("scrub_verified_bytes_total", "Bytes re-hashed by scrub runs")
                .expect("valid metric"),
            problems,
            restored: IntCounter::new(
                "scrub_restored_blobs_total",
                "Quarantined blobs whose good bytes came back (from upstream, or put back)",
            )
            .expect("valid metric"),
            quarantined: IntGauge::new("scrub_quarantined_blobs", "Blobs quarantined after the last scrub run")
                .expect("valid metric"),
            last_run: Gauge::new("scrub_last_run_timestamp_seconds", "Unix time the last scrub run ended")
                .expect("valid metric"),
        }
    }
}

/// The `archive` label of a metric: the name of a public archive; for a private one
/// `private-` and the first 12 hex digits of the SHA-256 of `key` (the installation's
/// `label.key`) followed by its name, so that `/metrics` (often readable more widely than
/// the archives) does not reveal which private archives exist, while each keeps a stable
/// series of its own. Without the key, a guessed name could be hashed and looked for.
pub fn archive_label(name: &ArchiveName, private: bool, key: &[u8; 32]) -> String {
    if !private {
        return name.to_string();
    }
    let mut keyed = key.to_vec();
    keyed.extend_from_slice(name.as_str().as_bytes());
    format!("private-{}", &Digest::of(&keyed).hex()[..12])
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_archive_labels_hide_the_name() {
        let name: ArchiveName = "team/secret".parse().unwrap();
        let key = [7u8; 32];
        assert_eq!(archive_label(&name, false, &key), "team/secret");
        // { printf '\x07%.0s' $(seq 32); printf team/secret; } | sha256sum
        assert_eq!(archive_label(&name, true, &key), "private-37aedfd08db0");
        // Not the bare hash of the name, which anyone could compute from a guess.
        assert_ne!(archive_label(&name, true, &key), "private-7de22364a1cd");
        assert_ne!(archive_label(&name, true, &key), archive_label(&name, true, &[8u8; 32]));
    }
}
