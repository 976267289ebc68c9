//! `SnapshotId`: a UTC second written `YYYYMMDDTHHMMSSZ`, the name of a moment in an archive's history.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveDateTime, Timelike, Utc};

/// The textual form every snapshot service agrees on (Debian, Ubuntu, Pulp).
pub const FORMAT_HELP: &str = "snapshot IDs are UTC times written YYYYMMDDTHHMMSSZ, e.g. 20240301T030400Z";

/// A moment in UTC with one-second resolution; ordered like time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SnapshotId(i64);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SnapshotIdError {
    #[error("'{0}' is not a snapshot ID: {FORMAT_HELP}")]
    Malformed(String),
    #[error("'{0}' is not a valid date and time: {FORMAT_HELP}")]
    InvalidTime(String),
    #[error("snapshot time {0} is outside the supported range (years 1970 to 9999)")]
    OutOfRange(i64),
}

impl SnapshotId {
    pub const MAX_UNIX: i64 = 253_402_300_799; // 9999-12-31T23:59:59Z

    pub fn from_unix(secs: i64) -> Result<Self, SnapshotIdError> {
        if (0..=Self::MAX_UNIX).contains(&secs) { Ok(Self(secs)) } else { Err(SnapshotIdError::OutOfRange(secs)) }
    }

    /// The current second; the clock is trusted to be after 1970.
    pub fn now() -> Self {
        Self(Utc::now().timestamp().clamp(0, Self::MAX_UNIX))
    }

    pub fn unix(self) -> i64 {
        self.0
    }

    pub fn datetime(self) -> DateTime<Utc> {
        DateTime::from_timestamp(self.0, 0).expect("range checked at construction")
    }

    pub fn next(self) -> Self {
        Self((self.0 + 1).min(Self::MAX_UNIX))
    }

    /// Whether a string has the shape of an ID (digits and letters in place), valid or not.
    /// Used to split `/<archive>/<ID>/<path>` URLs, where the first ID-shaped segment ends
    /// the archive name.
    pub fn looks_like_id(s: &str) -> bool {
        let b = s.as_bytes();
        b.len() == 16
            && b[..8].iter().all(u8::is_ascii_digit)
            && b[8] == b'T'
            && b[9..15].iter().all(u8::is_ascii_digit)
            && b[15] == b'Z'
    }
}

impl FromStr for SnapshotId {
    type Err = SnapshotIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if !Self::looks_like_id(s) {
            return Err(SnapshotIdError::Malformed(s.chars().take(64).collect()));
        }
        let naive = NaiveDateTime::parse_from_str(&s[..15], "%Y%m%dT%H%M%S")
            .map_err(|_| SnapshotIdError::InvalidTime(s.to_string()))?;
        let id = Self::from_unix(naive.and_utc().timestamp())?;
        // chrono reads a leap second `60` as `59`: only an ID that prints back the same is one.
        if id.to_string() != s {
            return Err(SnapshotIdError::InvalidTime(s.to_string()));
        }
        Ok(id)
    }
}

impl fmt::Display for SnapshotId {
    /// By hand rather than with chrono's `format`: IDs are formatted on every request (the
    /// memory cache's key, `X-Asof-Snapshot`), and parsing a format string each time showed
    /// in the serving profile.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.datetime();
        let (y, mo, d) = (t.year(), t.month(), t.day());
        let (h, mi, s) = (t.hour(), t.minute(), t.second());
        write!(f, "{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z")
    }
}

impl serde::Serialize for SnapshotId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for SnapshotId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_prints() {
        let id: SnapshotId = "20240301T030400Z".parse().unwrap();
        assert_eq!(id.to_string(), "20240301T030400Z");
        assert_eq!(id.unix(), 1_709_262_240);
    }

    #[test]
    fn rejects_bad_shapes_and_times() {
        for bad in ["2024-03-01", "20240301T0304Z", "20240301t030400z", "", "20240301T030400ZZ"] {
            assert!(matches!(bad.parse::<SnapshotId>(), Err(SnapshotIdError::Malformed(_))), "{bad}");
        }
        for bad in ["20241301T000000Z", "20240230T000000Z", "20240101T250000Z", "20261123T004260Z", "20240101T006000Z"]
        {
            assert!(matches!(bad.parse::<SnapshotId>(), Err(SnapshotIdError::InvalidTime(_))), "{bad}");
        }
        assert!(matches!("19691231T235959Z".parse::<SnapshotId>(), Err(SnapshotIdError::OutOfRange(_))));
    }

    proptest! {
        #[test]
        fn display_roundtrips_and_orders_like_text(a in 0i64..SnapshotId::MAX_UNIX, b in 0i64..SnapshotId::MAX_UNIX) {
            let (x, y) = (SnapshotId::from_unix(a).unwrap(), SnapshotId::from_unix(b).unwrap());
            prop_assert_eq!(x.to_string().parse::<SnapshotId>().unwrap(), x);
            prop_assert_eq!(x.cmp(&y), x.to_string().cmp(&y.to_string()));
        }
    }
}
