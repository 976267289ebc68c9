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
}

impl Config {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("invalid config {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_unknown_keys() {
        let err = toml::from_str::<Config>("[server]\nlisten = \"127.0.0.1:1\"\nlisen = 1\n")
            .unwrap_err();
        assert!(err.to_string().contains("lisen"), "{err}");
        let ok: Config =
            toml::from_str("data = \"/srv/asof\"\n[server]\nlisten = \"127.0.0.1:9\"\n").unwrap();
        assert_eq!(ok.server.listen.unwrap().port(), 9);
    }
}
