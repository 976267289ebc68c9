//! The two values that choose what a scrub verifies: a share of the blobs (`5%`) and a
//! time since which verified blobs are skipped (`7d`, an RFC 3339 time, a snapshot ID).

use std::str::FromStr;

use crate::domain::SnapshotId;

/// A share of the blobs, in percent: above 0, at most 100.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Share(f64);

/// The size of the space of digest prefixes (first 8 bytes) that the rotation walks.
const SPACE: u128 = 1 << 64;

impl Share {
    pub fn percent(self) -> f64 {
        self.0
    }

    /// The slice after `cursor` that a run covers, as prefix ranges (`to` none: to the end
    /// of the space; two ranges when it wraps), and where the next run starts.
    pub fn slice(self, cursor: u64) -> (Vec<(u64, Option<u64>)>, u64) {
        // Rounded up, so that 100/P runs never fall short of the whole space.
        let width = ((self.0 / 100.0) * SPACE as f64).ceil() as u128;
        let width = width.clamp(1, SPACE);
        let end = cursor as u128 + width;
        if width == SPACE {
            let mut ranges = vec![(cursor, None)];
            if cursor > 0 {
                ranges.push((0, Some(cursor)));
            }
            return (ranges, cursor);
        }
        if end < SPACE {
            return (vec![(cursor, Some(end as u64))], end as u64);
        }
        let wrapped = (end - SPACE) as u64;
        let mut ranges = vec![(cursor, None)];
        if wrapped > 0 {
            ranges.push((0, Some(wrapped)));
        }
        (ranges, wrapped)
    }
}

impl FromStr for Share {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("a share must be a percentage above 0 and at most 100, such as 5% or 5; got {s:?}");
        let number = s.trim().strip_suffix('%').unwrap_or(s.trim());
        match number.parse::<f64>() {
            Ok(p) if p.is_finite() && p > 0.0 && p <= 100.0 => Ok(Share(p)),
            _ => Err(bad()),
        }
    }
}

/// `--since`: a duration before `now` (`7d`, `12h`), an RFC 3339 time, or a snapshot ID
/// (its time), as Unix seconds. Refused: anything else, and times after `now`.
pub fn parse_since(s: &str, now: chrono::DateTime<chrono::Utc>) -> Result<i64, String> {
    let at = if let Ok(d) = humantime::parse_duration(s) {
        let d = chrono::Duration::from_std(d).map_err(|_| format!("{s:?} is too long ago"))?;
        now.checked_sub_signed(d).ok_or_else(|| format!("{s:?} is too long ago"))?.timestamp()
    } else if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        t.timestamp()
    } else if let Ok(id) = s.parse::<SnapshotId>() {
        id.unix()
    } else {
        return Err(format!(
            "expected a duration such as 7d, an RFC 3339 time such as 2026-11-01T00:00:00Z, or a snapshot ID such as 20261101T000000Z; got {s:?}"
        ));
    };
    if at > now.timestamp() {
        return Err(format!("{s:?} is in the future: every blob would count as not verified since then"));
    }
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_parse_with_or_without_a_percent_sign_and_bad_ones_are_refused() {
        assert_eq!("5%".parse::<Share>().unwrap().percent(), 5.0);
        assert_eq!("12.5".parse::<Share>().unwrap().percent(), 12.5);
        assert_eq!("100%".parse::<Share>().unwrap().percent(), 100.0);
        for bad in ["0", "0%", "-5%", "101", "150%", "five", "", "NaN", "inf"] {
            assert_eq!(
                bad.parse::<Share>().unwrap_err(),
                format!("a share must be a percentage above 0 and at most 100, such as 5% or 5; got {bad:?}")
            );
        }
    }

    #[test]
    fn slices_tile_the_space_and_wrap() {
        let quarter = "25%".parse::<Share>().unwrap();
        let mut cursor = 0;
        let mut seen = Vec::new();
        for _ in 0..4 {
            let (ranges, next) = quarter.slice(cursor);
            seen.extend(ranges);
            cursor = next;
        }
        assert_eq!(seen, [(0, Some(1 << 62)), (1 << 62, Some(1 << 63)), (1 << 63, Some(3 << 62)), (3 << 62, None)]);
        assert_eq!(cursor, 0, "four quarters end where they began");
        // A slice that passes the end continues at the start.
        let (ranges, next) = quarter.slice(14 << 60);
        assert_eq!((ranges, next), (vec![(14 << 60, None), (0, Some(2 << 60))], 2 << 60));
        let all = "100".parse::<Share>().unwrap();
        assert_eq!(all.slice(5), (vec![(5, None), (0, Some(5))], 5));
        assert_eq!(all.slice(0), (vec![(0, None)], 0));
    }

    #[test]
    fn since_takes_durations_times_and_snapshot_ids() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-24T12:00:00Z").unwrap().to_utc();
        assert_eq!(parse_since("7d", now).unwrap(), now.timestamp() - 7 * 86400);
        assert_eq!(parse_since("2026-11-01T00:00:00Z", now).unwrap(), 1_793_491_200);
        assert_eq!(parse_since("20261101T000000Z", now).unwrap(), 1_793_491_200);
        assert_eq!(
            parse_since("last week", now).unwrap_err(),
            "expected a duration such as 7d, an RFC 3339 time such as 2026-11-01T00:00:00Z, or a snapshot ID such as 20261101T000000Z; got \"last week\""
        );
        assert_eq!(
            parse_since("2027-01-01T00:00:00Z", now).unwrap_err(),
            "\"2027-01-01T00:00:00Z\" is in the future: every blob would count as not verified since then"
        );
    }
}
