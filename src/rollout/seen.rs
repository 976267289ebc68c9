//! Which nodes asked for their channel's answer in the last hour, per channel and ring, in
//! memory (each frontend counts what it served), for the metrics. A node is counted once.

use std::collections::HashMap;
use std::sync::Mutex;

use super::Millis;

/// How far back a node counts.
pub const WINDOW_MS: Millis = 3_600_000;
/// Node names kept per (channel, ring): anyone who may read can make names up, so the
/// count saturates here rather than memory growing without bound.
pub const MAX_NODES: usize = 200_000;

type Key = (String, String);

#[derive(Default)]
pub struct SeenNodes {
    inner: Mutex<HashMap<Key, HashMap<String, Millis>>>,
}

impl SeenNodes {
    pub fn note(&self, channel: &str, ring: &str, node: &str, now: Millis) {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let nodes = map.entry((channel.to_string(), ring.to_string())).or_default();
        if let Some(t) = nodes.get_mut(node) {
            *t = now;
        } else if nodes.len() < MAX_NODES {
            nodes.insert(node.to_string(), now);
        }
    }

    /// Distinct nodes per (channel, ring) seen within the window before `now`; forgets older.
    pub fn counts(&self, now: Millis) -> Vec<(Key, usize)> {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, nodes| {
            nodes.retain(|_, t| *t > now - WINDOW_MS);
            !nodes.is_empty()
        });
        let mut out: Vec<(Key, usize)> = map.iter().map(|(k, v)| (k.clone(), v.len())).collect();
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_each_node_once_within_the_hour() {
        let seen = SeenNodes::default();
        seen.note("prod", "canary", "a", 0);
        seen.note("prod", "canary", "a", 10);
        seen.note("prod", "canary", "b", 20);
        seen.note("prod", "broad", "c", 30);
        let key = |r: &str| ("prod".to_string(), r.to_string());
        assert_eq!(seen.counts(100), [(key("broad"), 1), (key("canary"), 2)]);
        // An hour after a's last request only b is left in the canary.
        assert_eq!(seen.counts(WINDOW_MS + 15), [(key("broad"), 1), (key("canary"), 1)]);
        assert_eq!(seen.counts(WINDOW_MS + 30), []);
    }
}
