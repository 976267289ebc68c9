//! What a channel is: its archive, its rings (cumulative percentages of the fleet, each
//! with a soak time), its health gate and whether rings advance by themselves.

use serde::{Deserialize, Serialize};

use crate::domain::ArchiveName;

/// Basis points (1/100 of a percent): the resolution of ring sizes.
pub const WHOLE: u32 = 10_000;
pub const MAX_RINGS: usize = 16;
/// Longest soak time accepted (30 days).
pub const MAX_SOAK_SECS: u64 = 30 * 86_400;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ring {
    pub name: String,
    /// Share of the fleet this ring and every earlier one cover, in basis points.
    pub basis_points: u32,
    /// How long this ring runs the new ID before the next ring may start.
    pub soak_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Advance {
    /// Each ring starts once the previous one has soaked.
    Auto,
    /// Rings start only on `advance`.
    Manual,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gate {
    /// A ring whose failed share of reporting nodes exceeds this (0 to 1) pauses the rollout.
    pub max_failure_rate: f64,
    /// Fewer reporting nodes than this in a ring never trip the gate.
    pub min_reports: u32,
}

impl Default for Gate {
    fn default() -> Self {
        Self { max_failure_rate: 0.05, min_reports: 5 }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChannelSpec {
    pub archive: ArchiveName,
    pub rings: Vec<Ring>,
    pub gate: Gate,
    pub advance: Advance,
    /// What follows the URL in a node's sources.list line (`bookworm main`), for the
    /// `sources_line` of node answers.
    pub sources: Option<String>,
}

/// A ring as written in JSON: `{"name": "canary", "percent": 1, "soak_secs": 3600}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RingJson {
    pub name: String,
    pub percent: f64,
    pub soak_secs: u64,
}

/// The body of `PUT /api/v1/channels/<channel>` and the stored form.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpecJson {
    pub archive: String,
    pub rings: Vec<RingJson>,
    #[serde(default)]
    pub gate: Gate,
    #[serde(default = "auto")]
    pub advance: Advance,
    #[serde(default)]
    pub sources: Option<String>,
}

fn auto() -> Advance {
    Advance::Auto
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SpecError {
    #[error("archive: {0}")]
    Archive(String),
    #[error("a channel needs 1 to {MAX_RINGS} rings")]
    RingCount,
    #[error("ring name '{0}' is invalid: it must match [a-z0-9][a-z0-9_-]*, at most 32 bytes")]
    RingName(String),
    #[error("ring name '{0}' appears twice")]
    DuplicateRing(String),
    #[error(
        "ring '{0}': percent must be above 0, at most 100, in steps of 0.01, and above the previous ring's (rings are cumulative)"
    )]
    Percent(String),
    #[error("the last ring must cover 100 percent of the fleet, so that a rollout reaches every node")]
    NotWhole,
    #[error("ring '{0}': soak_secs is above the maximum of {MAX_SOAK_SECS}")]
    Soak(String),
    #[error("gate: max_failure_rate must be between 0 and 1 and min_reports at least 1")]
    Gate,
    #[error("sources: expected the suite and components of a sources.list line, e.g. \"bookworm main\"")]
    Sources,
}

impl SpecJson {
    pub fn validate(&self) -> Result<ChannelSpec, SpecError> {
        let archive: ArchiveName = self.archive.parse().map_err(|e| SpecError::Archive(format!("{e}")))?;
        if self.rings.is_empty() || self.rings.len() > MAX_RINGS {
            return Err(SpecError::RingCount);
        }
        let mut rings: Vec<Ring> = Vec::with_capacity(self.rings.len());
        for r in &self.rings {
            if rings.iter().any(|earlier| earlier.name == r.name) {
                return Err(SpecError::DuplicateRing(r.name.clone()));
            }
            rings.push(validate_ring(r, rings.last())?);
        }
        if rings.last().map(|r| r.basis_points) != Some(WHOLE) {
            return Err(SpecError::NotWhole);
        }
        let g = self.gate;
        if !(0.0..=1.0).contains(&g.max_failure_rate) || g.min_reports == 0 {
            return Err(SpecError::Gate);
        }
        let sources = self.sources.as_deref().map(str::trim);
        if sources.is_some_and(|x| x.is_empty() || x.len() > 200 || x.chars().any(|c| c.is_control() || c == '#')) {
            return Err(SpecError::Sources);
        }
        Ok(ChannelSpec { archive, rings, gate: g, advance: self.advance, sources: sources.map(str::to_string) })
    }
}

fn validate_ring(r: &RingJson, previous: Option<&Ring>) -> Result<Ring, SpecError> {
    let mut bytes = r.name.bytes();
    let name_ok = r.name.len() <= 32
        && matches!(bytes.next(), Some(b'a'..=b'z' | b'0'..=b'9'))
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'));
    if !name_ok {
        return Err(SpecError::RingName(r.name.chars().take(64).collect()));
    }
    let bp = r.percent * 100.0;
    let whole_bp = bp.round();
    if !r.percent.is_finite() || (bp - whole_bp).abs() > 1e-6 || whole_bp < 1.0 || whole_bp > f64::from(WHOLE) {
        return Err(SpecError::Percent(r.name.clone()));
    }
    let basis_points = whole_bp as u32;
    if previous.is_some_and(|p| basis_points <= p.basis_points) {
        return Err(SpecError::Percent(r.name.clone()));
    }
    if r.soak_secs > MAX_SOAK_SECS {
        return Err(SpecError::Soak(r.name.clone()));
    }
    Ok(Ring { name: r.name.clone(), basis_points, soak_secs: r.soak_secs })
}

impl ChannelSpec {
    pub fn to_json(&self) -> SpecJson {
        SpecJson {
            archive: self.archive.to_string(),
            rings: self
                .rings
                .iter()
                .map(|r| RingJson {
                    name: r.name.clone(),
                    percent: f64::from(r.basis_points) / 100.0,
                    soak_secs: r.soak_secs,
                })
                .collect(),
            gate: self.gate,
            advance: self.advance,
            sources: self.sources.clone(),
        }
    }

    /// Whether two specs put every node in the same ring (what a running rollout relies on).
    pub fn same_rings(&self, other: &ChannelSpec) -> bool {
        self.rings.len() == other.rings.len()
            && self.rings.iter().zip(&other.rings).all(|(a, b)| a.name == b.name && a.basis_points == b.basis_points)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(rings: &[(&str, f64, u64)]) -> SpecJson {
        SpecJson {
            archive: "debian".into(),
            rings: rings.iter().map(|(n, p, s)| RingJson { name: n.to_string(), percent: *p, soak_secs: *s }).collect(),
            gate: Gate::default(),
            advance: Advance::Auto,
            sources: None,
        }
    }

    #[test]
    fn accepts_cumulative_rings_ending_at_100() {
        let s = spec(&[("canary", 1.0, 60), ("early", 10.5, 60), ("broad", 100.0, 0)]).validate().unwrap();
        assert_eq!(s.rings.iter().map(|r| r.basis_points).collect::<Vec<_>>(), [100, 1050, 10_000]);
        assert_eq!(s.to_json().rings[1].percent, 10.5);
    }

    #[test]
    fn rejects_bad_rings() {
        assert_eq!(spec(&[]).validate(), Err(SpecError::RingCount));
        assert_eq!(spec(&[("a", 50.0, 0)]).validate(), Err(SpecError::NotWhole));
        assert_eq!(spec(&[("a", 50.0, 0), ("b", 40.0, 0)]).validate(), Err(SpecError::Percent("b".into())));
        assert_eq!(spec(&[("a", 0.001, 0), ("b", 100.0, 0)]).validate(), Err(SpecError::Percent("a".into())));
        assert_eq!(spec(&[("a", 0.0, 0), ("b", 100.0, 0)]).validate(), Err(SpecError::Percent("a".into())));
        assert_eq!(spec(&[("a", 101.0, 0)]).validate(), Err(SpecError::Percent("a".into())));
        assert_eq!(spec(&[("a", 10.0, 0), ("a", 100.0, 0)]).validate(), Err(SpecError::DuplicateRing("a".into())));
        assert_eq!(
            spec(&[("a", 1.0, 0), ("b", 10.0, 0), ("a", 100.0, 0)]).validate(),
            Err(SpecError::DuplicateRing("a".into()))
        );
        assert_eq!(spec(&[("Canary", 100.0, 0)]).validate(), Err(SpecError::RingName("Canary".into())));
        assert_eq!(spec(&[("a", 100.0, MAX_SOAK_SECS + 1)]).validate(), Err(SpecError::Soak("a".into())));
        let mut bad_gate = spec(&[("a", 100.0, 0)]);
        bad_gate.gate.max_failure_rate = 1.5;
        assert_eq!(bad_gate.validate(), Err(SpecError::Gate));
    }
}
