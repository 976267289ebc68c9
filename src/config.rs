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
    /// Settings of `asof serve`.
    #[serde(default)]
    pub server: ServerConfig,
    /// Upstream archives to mirror: `asof serve` runs them on schedule, `asof mirror`
    /// (without an archive argument) runs each once.
    #[serde(default)]
    pub mirror: Vec<MirrorConfig>,
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
    /// OpenPGP keyring (binary or armored) that must have signed the Release files.
    pub keyring: Option<PathBuf>,
    /// Record snapshots without checking signatures. Loud, and recorded in each snapshot.
    #[serde(default)]
    pub insecure_skip_signature: bool,
    /// How often `asof serve` runs it, e.g. "6h", "30m" (default "6h").
    pub interval: Option<String>,
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
                sources: self.sources,
                keyring: self.keyring.clone(),
                insecure_skip_signature: self.insecure_skip_signature,
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
    /// Largest blob an upload may send, in bytes (413 above; default 16 GiB).
    pub max_blob_bytes: Option<u64>,
    /// Largest JSON request body (manifests), in bytes (413 above; default 1 GiB).
    pub max_manifest_bytes: Option<usize>,
    /// Seconds a request body (an upload) may go without sending a byte before the
    /// request is abandoned (default 60).
    pub body_timeout_secs: Option<u64>,
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
}
