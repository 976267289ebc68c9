//! The optional TOML config file (`--config`). Unknown keys are rejected so that a typo
//! never silently falls back to a default. Command-line flags override it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Data directory of the embedded default (SQLite database and blob store).
    pub data: Option<PathBuf>,
    /// Where the metadata lives instead of `asof.db` in the data directory: a PostgreSQL
    /// URL (`postgres://user@host/db`). Scratch space and `label.key` stay in the data
    /// directory.
    pub catalog: Option<String>,
    /// Where the blobs live instead of `blobs/` in the data directory: `s3://BUCKET/PREFIX`
    /// or `azure://CONTAINER/PREFIX`, credentials from the standard environment variables.
    pub blobs: Option<String>,
    /// Settings of `asof serve`.
    #[serde(default)]
    pub server: ServerConfig,
    /// Upstream archives to mirror: `asof serve` runs them on schedule, `asof mirror`
    /// (without an archive argument) runs each once.
    #[serde(default)]
    pub mirror: Vec<MirrorConfig>,
    /// Garbage collection of unreferenced blobs (`asof gc`, scheduled by `asof serve`).
    #[serde(default)]
    pub gc: GcConfig,
    /// Scrubbing: re-hashing a rotating share of the blobs (scheduled by `asof serve`).
    #[serde(default)]
    pub scrub: crate::scrub::config::ScrubConfig,
    /// Retention: the schedule of `asof serve`, and policies declared per archive.
    #[serde(default)]
    pub retention: RetentionConfig,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// How often `asof serve` applies every archive's policy, e.g. "1h" (default); "off"
    /// disables it.
    pub interval: Option<String>,
    /// `[retention.archives.NAME]`: a policy per archive, written to the catalog when
    /// `asof serve` or `asof retention` starts (it replaces one set by `asof archive retention`).
    #[serde(default)]
    pub archives: std::collections::BTreeMap<String, PolicyConfig>,
}

/// One archive's policy in the config file; the keys of `asof archive retention`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    pub keep_last: Option<u32>,
    pub daily: Option<u32>,
    pub weekly: Option<u32>,
    #[serde(default)]
    pub monthly: bool,
    /// e.g. "36h".
    pub keep_within: Option<String>,
}

impl RetentionConfig {
    /// `None` when scheduled retention is off.
    pub fn interval(&self) -> anyhow::Result<Option<std::time::Duration>> {
        schedule_interval(self.interval.as_deref(), "retention", 3600)
    }

    /// The declared policies, checked.
    pub fn policies(&self) -> anyhow::Result<Vec<(crate::domain::ArchiveName, crate::retention::Policy)>> {
        self.archives
            .iter()
            .map(|(name, p)| {
                let archive = name.parse().with_context(|| format!("[retention.archives.{name}]"))?;
                let keep_within_secs = p
                    .keep_within
                    .as_deref()
                    .map(|t| {
                        humantime::parse_duration(t)
                            .with_context(|| format!("[retention.archives.{name}] keep_within {t:?}"))
                    })
                    .transpose()?
                    .map(|d| d.as_secs());
                let policy = crate::retention::Policy {
                    keep_last: p.keep_last,
                    daily: p.daily,
                    weekly: p.weekly,
                    monthly: p.monthly,
                    keep_within_secs,
                };
                if [p.keep_last, p.daily, p.weekly].contains(&Some(0)) {
                    anyhow::bail!("[retention.archives.{name}] keep_last, daily and weekly must be at least 1");
                }
                if policy.is_off() {
                    anyhow::bail!("[retention.archives.{name}] has no rule; remove the section to keep every snapshot");
                }
                Ok((archive, policy))
            })
            .collect()
    }
}

/// An `interval` key of a scheduled job: a duration, or "off"; absent means the default.
fn schedule_interval(
    value: Option<&str>,
    section: &str,
    default_secs: u64,
) -> anyhow::Result<Option<std::time::Duration>> {
    match value {
        Some("off") => Ok(None),
        None => Ok(Some(std::time::Duration::from_secs(default_secs))),
        Some(i) => match humantime::parse_duration(i).with_context(|| format!("[{section}] interval {i:?}"))? {
            d if d.is_zero() => anyhow::bail!("[{section}] interval must be positive, or \"off\""),
            d => Ok(Some(d)),
        },
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GcConfig {
    /// How long a blob stays unreferenced before it may be deleted, e.g. "24h" (default).
    pub grace: Option<String>,
    /// How often `asof serve` collects, e.g. "1h" (default); "off" disables it.
    pub interval: Option<String>,
}

impl GcConfig {
    pub fn grace(&self) -> anyhow::Result<std::time::Duration> {
        match &self.grace {
            None => Ok(crate::gc::DEFAULT_GRACE),
            Some(g) => humantime::parse_duration(g).with_context(|| format!("[gc] grace {g:?}")),
        }
    }

    /// `None` when scheduled collection is off.
    pub fn interval(&self) -> anyhow::Result<Option<std::time::Duration>> {
        schedule_interval(self.interval.as_deref(), "gc", 3600)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MirrorConfig {
    /// Archive name the snapshots are recorded under, e.g. "debian".
    pub archive: String,
    /// Base URL of the upstream archive (holds `dists/` and `pool/`).
    pub upstream: String,
    /// Suites to mirror, e.g. ["bookworm", "bookworm-updates"].
    pub suites: Vec<String>,
    /// Components; empty or absent means all the Release file lists.
    #[serde(default)]
    pub components: Vec<String>,
    /// Architectures; empty or absent means all the Release file lists.
    #[serde(default)]
    pub architectures: Vec<String>,
    /// Also mirror source packages.
    #[serde(default)]
    pub sources: bool,
    /// Keep the Contents-* files (default true).
    #[serde(default = "yes")]
    pub contents: bool,
    /// Mirror debian-installer indices and their .udeb files.
    #[serde(default)]
    pub udebs: bool,
    /// Translations: "all" (default), "none", or languages such as "en,de".
    #[serde(default)]
    pub i18n: crate::mirror::Languages,
    /// Mirror DEP-11 (AppStream) metadata.
    #[serde(default)]
    pub dep11: bool,
    /// Mirror command-not-found metadata (Ubuntu).
    #[serde(default)]
    pub cnf: bool,
    /// Record snapshots without files the Release lists but upstream lacks (404).
    #[serde(default)]
    pub allow_missing: bool,
    /// OpenPGP keyring (binary or armored) that must have signed the Release files.
    pub keyring: Option<PathBuf>,
    /// Record snapshots without checking signatures. Loud, and recorded in each snapshot.
    #[serde(default)]
    pub insecure_skip_signature: bool,
    /// How often `asof serve` runs it, e.g. "6h", "30m" (default "6h").
    pub interval: Option<String>,
}

fn yes() -> bool {
    true
}

impl MirrorConfig {
    pub fn to_scheduled(&self) -> anyhow::Result<crate::mirror::schedule::ScheduledMirror> {
        let archive = self.archive.parse().with_context(|| format!("mirror archive name {:?}", self.archive))?;
        let interval = humantime::parse_duration(self.interval.as_deref().unwrap_or("6h"))
            .with_context(|| format!("mirror {}: interval {:?}", self.archive, self.interval))?;
        if interval < std::time::Duration::from_secs(60) {
            anyhow::bail!("mirror {}: interval must be at least a minute", self.archive);
        }
        Ok(crate::mirror::schedule::ScheduledMirror {
            spec: crate::mirror::MirrorSpec {
                archive,
                upstream: self.upstream.clone(),
                suites: self.suites.clone(),
                components: self.components.clone(),
                architectures: self.architectures.clone(),
                scope: crate::mirror::MirrorScope {
                    sources: self.sources,
                    contents: self.contents,
                    udebs: self.udebs,
                    i18n: self.i18n.clone(),
                    dep11: self.dep11,
                    cnf: self.cnf,
                },
                keyring: self.keyring.clone(),
                insecure_skip_signature: self.insecure_skip_signature,
                allow_missing: self.allow_missing,
            },
            interval,
        })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on, e.g. "127.0.0.1:8080" or "[::]:80".
    pub listen: Option<SocketAddr>,
    /// Seconds after which an ID later than the latest snapshot counts as settled and is
    /// served as immutable. Must exceed the longest clock skew between publishers.
    pub settle_margin_secs: Option<u64>,
    /// `max-age` in seconds for answers that can still change.
    pub short_max_age_secs: Option<u64>,
    /// `max-age` in seconds for the live path, `/<archive>/<path>` (default 60).
    pub live_max_age_secs: Option<u64>,
    /// Largest blob an upload may send, in bytes (413 above; default 16 GiB).
    pub max_blob_bytes: Option<u64>,
    /// Largest JSON request body (manifests), in bytes (413 above; default 1 GiB).
    pub max_manifest_bytes: Option<usize>,
    /// Seconds a request body (an upload) may go without sending a byte before the
    /// request is abandoned (default 60).
    pub body_timeout_secs: Option<u64>,
    /// Seconds a connection has to send a complete request header, counted from accept or
    /// from the first byte after an idle spell (default 15). Closed without an answer after.
    pub header_read_timeout_secs: Option<u64>,
    /// Seconds a kept-alive connection may wait for its next request, and a response may
    /// wait for the client to take a byte (default 60).
    pub idle_timeout_secs: Option<u64>,
    /// Most connections served at once; further ones wait in the listen backlog (default:
    /// half of the open-files limit less 64, as each may hold a socket and a blob file).
    pub max_connections: Option<usize>,
    /// Threads that accept and serve connections, each with its own event loop; catalog and
    /// file reads run on a separate blocking pool (default: one per core).
    pub threads: Option<usize>,
    /// On SIGTERM, seconds in-flight requests may take to finish before `serve` exits
    /// anyway (default 30).
    pub drain_timeout_secs: Option<u64>,
    /// The URL clients reach this service at, e.g. "https://asof.example" (no trailing
    /// path needed): the base of the `Snapshots:` field of re-signed Release files. Unset:
    /// `http://` and the Host header of each request.
    pub public_url: Option<String>,
    /// MiB of memory for the contents of hot small files (InRelease, Packages...) served
    /// without touching the disk; 0 turns the memory cache of final answers off (default 16).
    pub memory_cache_mb: Option<u64>,
    /// With blobs in object storage: whole-file downloads of at least this many bytes are
    /// answered with a redirect to a presigned URL of the bucket, so their bytes never pass
    /// through the frontend. Off unless set.
    pub redirect_downloads_over_bytes: Option<u64>,
    /// How long such a presigned URL stays valid (default 300). Redirects are cacheable for
    /// half of it at most.
    pub redirect_ttl_secs: Option<u64>,
    /// Per-client rate limits (`[server.rate_limits]`).
    #[serde(default)]
    pub rate_limits: RateLimitsConfig,
}

/// `[server.rate_limits]`: token buckets per client address and per presented token, one
/// set per route class. Loopback clients are exempt unless `exempt_loopback = false`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitsConfig {
    /// `false` turns every limit off (default true).
    pub enabled: Option<bool>,
    /// Leave clients on 127.0.0.0/8 and ::1 unlimited (default true).
    pub exempt_loopback: Option<bool>,
    /// Files of IDs older than the settle margin (default 1000/s, burst 5000).
    pub files_immutable: Option<RateConfig>,
    /// Files of recent IDs (default 200/s, burst 1000).
    pub files: Option<RateConfig>,
    /// Archive and snapshot lists, directory pages (default 20/s, burst 200).
    pub listings: Option<RateConfig>,
    /// `/api/v1` other than uploads, `/healthz`, `/metrics` (default 100/s, burst 1000).
    pub api: Option<RateConfig>,
    /// `PUT`/`POST` under `/api/v1/blobs` (default 500/s, burst 5000).
    pub uploads: Option<RateConfig>,
}

/// One token bucket: refills at `per_second` (may be fractional), holds at most `burst`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateConfig {
    pub per_second: f64,
    pub burst: u32,
}

impl RateLimitsConfig {
    /// Overrides the given settings with the ones present here.
    pub fn apply(&self, opts: &mut crate::http::RateLimitOptions) -> anyhow::Result<()> {
        opts.enabled = self.enabled.unwrap_or(opts.enabled);
        opts.exempt_loopback = self.exempt_loopback.unwrap_or(opts.exempt_loopback);
        let classes = [
            (&self.files_immutable, &mut opts.files_immutable, "files_immutable"),
            (&self.files, &mut opts.files, "files"),
            (&self.listings, &mut opts.listings, "listings"),
            (&self.api, &mut opts.api, "api"),
            (&self.uploads, &mut opts.uploads, "uploads"),
        ];
        for (given, rate, name) in classes {
            if let Some(r) = given {
                *rate = crate::http::Rate::new(r.per_second, r.burst)
                    .with_context(|| format!("[server.rate_limits] {name}"))?;
            }
        }
        Ok(())
    }
}

impl Config {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading config {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("invalid config {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_unknown_keys() {
        let err = toml::from_str::<Config>("[server]\nlisten = \"127.0.0.1:1\"\nlisen = 1\n").unwrap_err();
        assert!(err.to_string().contains("lisen"), "{err}");
        let ok: Config = toml::from_str("data = \"/srv/asof\"\n[server]\nlisten = \"127.0.0.1:9\"\n").unwrap();
        assert_eq!(ok.server.listen.unwrap().port(), 9);
    }

    #[test]
    fn rate_limits_override_defaults_and_are_validated() {
        let text = "[server.rate_limits]\nexempt_loopback = false\nlistings = { per_second = 0.5, burst = 3 }\n";
        let c: Config = toml::from_str(text).unwrap();
        let mut opts = crate::http::RateLimitOptions::default();
        c.server.rate_limits.apply(&mut opts).unwrap();
        assert!(!opts.exempt_loopback && opts.enabled);
        assert_eq!(opts.listings, crate::http::Rate::new(0.5, 3).unwrap());
        assert_eq!(opts.files, crate::http::RateLimitOptions::default().files);

        let bad: Config = toml::from_str("[server.rate_limits]\nfiles = { per_second = 10, burst = 0 }\n").unwrap();
        let err = bad.server.rate_limits.apply(&mut opts).unwrap_err();
        assert_eq!(format!("{err:#}"), "[server.rate_limits] files: burst must be at least 1");
        let typo = toml::from_str::<Config>("[server.rate_limits]\nfiles = { per_sec = 10, burst = 1 }\n").unwrap_err();
        assert!(typo.to_string().contains("per_sec"), "{typo}");
    }
}
