//! `asof verify`: everything (`verify`), or a scrub of a share of the blobs
//! (`--sample`, `--since`) that quarantines what it finds bad.

use std::process::ExitCode;

use crate::scrub::{ScrubError, ScrubOptions, ScrubReport, Share};
use crate::store::Store;
use crate::verify::Problem;

/// The flags of `asof verify` that choose a scrub instead of a full verification.
#[derive(clap::Args, Debug)]
pub struct ScrubArgs {
    /// Re-hash only this share of the referenced blobs, e.g. 5% or 5: the next slice of
    /// the rotation that `serve` scrubs with ([scrub]), so that 100/P runs cover all.
    #[arg(long, value_name = "P", value_parser = |s: &str| s.parse::<Share>())]
    pub sample: Option<Share>,
    /// Skip blobs verified since WHEN: a duration ago (7d, 12h), an RFC 3339 time
    /// (2026-11-01T00:00:00Z) or a snapshot ID (20261101T000000Z). Without --sample:
    /// every referenced blob not verified since then.
    #[arg(long, value_name = "WHEN", value_parser = |s: &str| crate::scrub::parse_since(s, chrono::Utc::now()))]
    pub since: Option<i64>,
    /// Hash at most this many bytes per second (with --sample or --since).
    #[arg(long, value_name = "BYTES")]
    pub max_bytes_per_sec: Option<u64>,
}

impl ScrubArgs {
    pub fn is_scrub(&self) -> bool {
        self.sample.is_some() || self.since.is_some()
    }
}

/// Runs the scrub the flags ask for: exit 1 while any blob is quarantined, 75 when
/// another scrub is running.
pub fn scrub(store: Store, args: &ScrubArgs, json: bool) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.max_bytes_per_sec != Some(0), "--max-bytes-per-sec must be at least 1");
    let opts = ScrubOptions { share: args.sample, not_since: args.since, max_bytes_per_sec: args.max_bytes_per_sec };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let report = match rt.block_on(crate::scrub::run(store, opts, None)) {
        Err(e @ ScrubError::Busy(_)) => {
            eprintln!("asof verify: {e}");
            return Ok(ExitCode::from(75));
        }
        r => r?,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(if report.quarantined.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn print_report(report: &ScrubReport) {
    for q in &report.quarantined {
        let q = q.clone();
        let p = Problem::Quarantined {
            digest: q.sha256,
            kind: q.kind,
            found_at: q.found_at,
            detail: q.detail,
            refetch: q.refetch,
        };
        println!("{p}");
    }
    for r in &report.restored {
        eprintln!("restored blob {} from {}", r.sha256, r.from);
    }
    let share = report.share_percent.map_or("all blobs".to_string(), |p| format!("{p}% of the blobs"));
    eprintln!(
        "scrubbed {share}: verified {} blobs ({} bytes); {} found bad, {} restored, {} quarantined",
        report.blobs_verified,
        report.bytes_verified,
        report.found.len(),
        report.restored.len(),
        report.quarantined.len()
    );
}
