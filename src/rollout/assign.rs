//! Which ring a node is in: a stable function of (channel, node name). SHA-256 rather than a
//! std hasher, whose output may change between Rust versions and differ between frontends.

use sha2::{Digest as _, Sha256};

use super::spec::{Ring, WHOLE};
use crate::domain::{ChannelName, NodeName};

/// The node's place in the fleet, in basis points: uniform in `0..10_000`.
pub fn position(channel: &ChannelName, node: &NodeName) -> u32 {
    let mut h = Sha256::new();
    // Length-prefixed, so that ("ab", "c") and ("a", "bc") are different inputs.
    h.update((channel.as_str().len() as u64).to_be_bytes());
    h.update(channel.as_str().as_bytes());
    h.update(node.as_str().as_bytes());
    let digest = h.finalize();
    let top = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
    // Scaling (not `%`) keeps every bucket the same size.
    ((u128::from(top) * u128::from(WHOLE)) >> 64) as u32
}

/// The first ring whose cumulative share covers the node's position. Rings are validated
/// to end at 100%, so there always is one.
pub fn ring_of(channel: &ChannelName, node: &NodeName, rings: &[Ring]) -> usize {
    let pos = position(channel, node);
    rings.iter().position(|r| pos < r.basis_points).unwrap_or(rings.len().saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(name: &str, bp: u32) -> Ring {
        Ring { name: name.into(), basis_points: bp, soak_secs: 0 }
    }

    #[test]
    fn one_percent_of_100k_names_is_within_a_fifth_of_a_percent() {
        let channel: ChannelName = "prod".parse().unwrap();
        let rings = [ring("canary", 100), ring("early", 1000), ring("broad", WHOLE)];
        let mut counts = [0u32; 3];
        for i in 0..100_000 {
            let node: NodeName = format!("node-{i:05}.example.com").parse().unwrap();
            counts[ring_of(&channel, &node, &rings)] += 1;
        }
        assert!((800..=1200).contains(&counts[0]), "canary got {} of 100000", counts[0]);
        // early covers 10% cumulatively: 9% beyond the canary.
        assert!((8_800..=9_200).contains(&counts[1]), "early got {}", counts[1]);
        assert_eq!(counts.iter().sum::<u32>(), 100_000);
    }

    #[test]
    fn is_a_fixed_function_of_channel_and_node() {
        // Pinned values: a change here would move nodes between rings on upgrade.
        let c = |s: &str| s.parse::<ChannelName>().unwrap();
        let n = |s: &str| s.parse::<NodeName>().unwrap();
        assert_eq!(position(&c("prod"), &n("web-1")), position(&c("prod"), &n("web-1")));
        assert_ne!(position(&c("prod"), &n("web-1")), position(&c("staging"), &n("web-1")));
        let pinned: Vec<u32> = ["web-1", "web-2", "db-1"].iter().map(|x| position(&c("prod"), &n(x))).collect();
        assert_eq!(pinned, PINNED);
    }

    const PINNED: [u32; 3] = [2233, 502, 7633];
}
