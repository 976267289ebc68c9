//! `[scrub]` of the config file: how often `asof serve` scrubs and how much each time.

use anyhow::Context;
use serde::Deserialize;

use super::{ScrubOptions, Share};

/// The share verified per run by default: with the daily default interval, every
/// referenced blob is re-hashed at least once in 20 days.
pub const DEFAULT_SHARE: &str = "5%";
pub const DEFAULT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrubConfig {
    /// How often `asof serve` scrubs, e.g. "24h" (default); "off" disables it.
    pub interval: Option<String>,
    /// The share of the blobs each run re-hashes, e.g. "5%" (default).
    pub share: Option<String>,
    /// Most bytes hashed per second by a run (default: no limit).
    pub max_bytes_per_sec: Option<u64>,
}

impl ScrubConfig {
    /// The schedule: `None` when scrubbing under `serve` is off.
    pub fn schedule(&self) -> anyhow::Result<Option<(ScrubOptions, std::time::Duration)>> {
        let interval = match self.interval.as_deref() {
            Some("off") => return Ok(None),
            None => DEFAULT_INTERVAL,
            Some(i) => humantime::parse_duration(i).with_context(|| format!("[scrub] interval {i:?}"))?,
        };
        anyhow::ensure!(!interval.is_zero(), "[scrub] interval must be positive, or \"off\"");
        let share = self.share.as_deref().unwrap_or(DEFAULT_SHARE);
        let share: Share = share.parse().map_err(|e: String| anyhow::anyhow!("[scrub] share: {e}"))?;
        anyhow::ensure!(self.max_bytes_per_sec != Some(0), "[scrub] max_bytes_per_sec must be at least 1");
        Ok(Some((
            ScrubOptions { share: Some(share), not_since: None, max_bytes_per_sec: self.max_bytes_per_sec },
            interval,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> anyhow::Result<Option<(ScrubOptions, std::time::Duration)>> {
        toml::from_str::<crate::config::Config>(text)?.scrub.schedule()
    }

    #[test]
    fn defaults_are_five_percent_daily_and_bad_values_are_refused() {
        let (opts, every) = parse("").unwrap().unwrap();
        assert_eq!((opts.share.unwrap().percent(), every, opts.max_bytes_per_sec), (5.0, DEFAULT_INTERVAL, None));
        let (opts, every) =
            parse("[scrub]\ninterval = \"2s\"\nshare = \"50\"\nmax_bytes_per_sec = 1000\n").unwrap().unwrap();
        assert_eq!((opts.share.unwrap().percent(), every.as_secs(), opts.max_bytes_per_sec), (50.0, 2, Some(1000)));
        assert!(parse("[scrub]\ninterval = \"off\"\n").unwrap().is_none());
        assert_eq!(
            format!("{:#}", parse("[scrub]\nshare = \"0%\"\n").unwrap_err()),
            "[scrub] share: a share must be a percentage above 0 and at most 100, such as 5% or 5; got \"0%\""
        );
        assert_eq!(
            format!("{:#}", parse("[scrub]\ninterval = \"0s\"\n").unwrap_err()),
            "[scrub] interval must be positive, or \"off\""
        );
        let typo = parse("[scrub]\nshares = \"5%\"\n").unwrap_err();
        assert!(typo.to_string().contains("unknown field `shares`"), "{typo}");
    }
}
