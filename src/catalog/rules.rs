//! The catalog's rules that do not depend on a backend, so every backend stamps and floors
//! exactly alike (SQLite today, PostgreSQL next).

use crate::domain::SnapshotId;

/// The ID a commit stamps, in unix seconds: the commit time, but above the archive's
/// previous snapshot (IDs strictly increase per archive) and above the seal (no answer
/// already served as final may change; schema/0003_seal.sql). `None` when that is past the
/// last representable ID.
pub fn stamp(now_unix: i64, previous: Option<SnapshotId>, sealed_until: i64) -> Option<SnapshotId> {
    let after_previous = previous.map_or(i64::MIN, |p| p.unix() + 1);
    SnapshotId::from_unix(now_unix.max(after_previous).max(sealed_until.saturating_add(1))).ok()
}

/// The key of a directory in `entries_by_parent` (schema/0001_init.sql): the first 8 bytes of
/// SHA-256 of its path (`""` for the root) as a signed integer. Readers compare the real
/// parent, so a collision costs a row read, never a wrong answer.
pub fn parent_hash(dir: &str) -> i64 {
    let d = crate::domain::Digest::of(dir.as_bytes());
    i64::from_le_bytes(d.as_bytes()[..8].try_into().expect("8 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn id(unix: i64) -> SnapshotId {
        SnapshotId::from_unix(unix).unwrap()
    }

    #[test]
    fn the_commit_time_when_nothing_is_in_the_way() {
        assert_eq!(stamp(1_700_000_000, Some(id(1_600_000_000)), 1_650_000_000), Some(id(1_700_000_000)));
        assert_eq!(stamp(1_700_000_000, None, 0), Some(id(1_700_000_000)));
    }

    #[test]
    fn one_second_after_a_previous_snapshot_in_the_same_second_or_later() {
        assert_eq!(stamp(1_700_000_000, Some(id(1_700_000_000)), 0), Some(id(1_700_000_001)));
        // A clock that went backwards still gives a later ID.
        assert_eq!(stamp(1_700_000_000, Some(id(1_700_000_500)), 0), Some(id(1_700_000_501)));
    }

    #[test]
    fn one_second_after_the_seal() {
        assert_eq!(stamp(1_700_000_000, Some(id(1_600_000_000)), 1_700_000_000), Some(id(1_700_000_001)));
    }

    #[test]
    fn nothing_past_the_last_representable_id() {
        assert_eq!(stamp(0, Some(SnapshotId::from_unix(SnapshotId::MAX_UNIX).unwrap()), 0), None);
    }

    proptest! {
        #[test]
        fn above_the_previous_and_the_seal_and_never_before_now(
            now in 0i64..4_000_000_000,
            previous in proptest::option::of(0i64..4_000_000_000),
            sealed in 0i64..4_000_000_000,
        ) {
            let got = stamp(now, previous.map(id), sealed).unwrap().unix();
            prop_assert!(got >= now);
            prop_assert!(got > sealed);
            if let Some(p) = previous { prop_assert!(got > p); }
            // And the least such second: one of the three bounds.
            prop_assert!(got == now || Some(got - 1) == previous || got - 1 == sealed);
        }
    }
}
