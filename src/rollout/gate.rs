//! The health gate: per ring, the share of reporting nodes whose latest report since the
//! rollout started (or was resumed) is a failure; above the channel's threshold, with at
//! least its minimum of reporting nodes, the rollout pauses itself and says why.

use serde::Serialize;

use super::assign::ring_of;
use super::spec::ChannelSpec;
use super::store::RingCount;
use crate::domain::{ChannelName, NodeName};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RingHealth {
    /// Nodes that reported.
    pub reports: u32,
    /// Of those, nodes whose latest report is a failure.
    pub failures: u32,
}

impl RingHealth {
    /// Counts a node's new report into its ring's counters: `previous` is its earlier report
    /// (failed, when), if any. A node already counted since `since` changes only the
    /// failure count; otherwise it is one more report.
    pub fn count_report(&mut self, previous: Option<(bool, super::Millis)>, failed: bool, since: super::Millis) {
        match previous {
            Some((was_failed, when)) if when >= since => {
                self.failures = (self.failures + u32::from(failed)).saturating_sub(u32::from(was_failed));
            }
            _ => {
                self.reports += 1;
                self.failures += u32::from(failed);
            }
        }
    }
}

/// Reports counted per ring; `latest` holds each node's latest outcome (true: failed).
pub fn health(channel: &ChannelName, spec: &ChannelSpec, latest: &[(NodeName, bool)]) -> Vec<RingHealth> {
    let ring_of = |node: &NodeName| ring_of(channel, node, &spec.rings);
    RingCount { rollout_id: 0, since: 0, rings: spec.rings.len(), ring_of: &ring_of }.count(latest)
}

/// Why the gate trips, if it does: the first ring over the threshold.
pub fn tripped(spec: &ChannelSpec, health: &[RingHealth]) -> Option<String> {
    let g = spec.gate;
    spec.rings.iter().zip(health).find_map(|(ring, h)| {
        let rate = f64::from(h.failures) / f64::from(h.reports.max(1));
        (h.reports >= g.min_reports && rate > g.max_failure_rate).then(|| {
            format!(
                "health gate: {} of {} reporting nodes of ring '{}' failed ({:.1}%), over the channel's {:.1}%",
                h.failures,
                h.reports,
                ring.name,
                rate * 100.0,
                g.max_failure_rate * 100.0
            )
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::spec::{Advance, Gate, Ring};

    fn spec(max_failure_rate: f64, min_reports: u32) -> ChannelSpec {
        ChannelSpec {
            archive: "debian".parse().unwrap(),
            rings: vec![
                Ring { name: "canary".into(), basis_points: 5000, soak_secs: 0 },
                Ring { name: "broad".into(), basis_points: 10_000, soak_secs: 0 },
            ],
            gate: Gate { max_failure_rate, min_reports },
            advance: Advance::Auto,
            sources: None,
        }
    }

    #[test]
    fn trips_above_the_threshold_with_enough_reports() {
        let s = spec(0.25, 4);
        let h = [RingHealth { reports: 4, failures: 1 }, RingHealth::default()];
        assert_eq!(tripped(&s, &h), None, "25% is not above 25%");
        let h = [RingHealth { reports: 4, failures: 2 }, RingHealth::default()];
        assert_eq!(
            tripped(&s, &h).unwrap(),
            "health gate: 2 of 4 reporting nodes of ring 'canary' failed (50.0%), over the channel's 25.0%"
        );
        let h = [RingHealth { reports: 3, failures: 3 }, RingHealth::default()];
        assert_eq!(tripped(&s, &h), None, "fewer than min_reports");
    }

    #[test]
    fn counts_each_node_in_its_ring() {
        let s = spec(0.1, 1);
        let c: ChannelName = "prod".parse().unwrap();
        let latest: Vec<(NodeName, bool)> = (0..200).map(|i| (format!("n{i}").parse().unwrap(), i % 2 == 0)).collect();
        let h = health(&c, &s, &latest);
        assert_eq!(h.iter().map(|x| x.reports).sum::<u32>(), 200);
        assert_eq!(h.iter().map(|x| x.failures).sum::<u32>(), 100);
        for (node, _) in &latest {
            assert!(ring_of(&c, node, &s.rings) < 2);
        }
    }
}
