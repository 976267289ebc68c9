//! Which snapshots a retention policy keeps: a pure function of the snapshot IDs, the
//! policy, the pins and the time, so that a dry run and an apply agree.
//!
//! Periods are UTC calendar periods counted back from `now`: "one per day for D days" keeps
//! the latest snapshot of each of the D days ending today, weeks are ISO weeks (Monday to
//! Sunday), months calendar months. The first and the latest snapshot are always kept.

use std::collections::{BTreeMap, HashMap};

use chrono::{Datelike, TimeZone, Utc};
use serde::{Deserialize, Serialize};

/// A retention policy; every rule keeps, none deletes on its own. The empty policy keeps
/// everything (no rule at all means retention is off).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Keep the N latest snapshots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_last: Option<u32>,
    /// Keep the latest snapshot of each of the last D days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily: Option<u32>,
    /// Keep the latest snapshot of each of the last W ISO weeks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weekly: Option<u32>,
    /// Keep the latest snapshot of every calendar month, forever.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub monthly: bool,
    /// Keep every snapshot younger than this many seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_within_secs: Option<u64>,
}

impl Policy {
    /// A policy without any rule keeps everything: retention is off.
    pub fn is_off(&self) -> bool {
        *self == Policy::default()
    }
}

/// Why a snapshot is kept (the first reason that applies, in this order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "rule", content = "detail")]
pub enum Keep {
    /// The archive has no policy: retention is off.
    Off,
    First,
    Latest,
    Pinned(String),
    Within,
    Last,
    Daily,
    Weekly,
    Monthly,
}

/// For each ID of `ids` (ascending, unix seconds), why it is kept, or `None` if the policy
/// lets it go. `pins` maps IDs to the reason they are pinned. A policy that is off keeps
/// everything (as `Off`).
pub fn evaluate(ids: &[i64], policy: &Policy, pins: &HashMap<i64, String>, now: i64) -> Vec<Option<Keep>> {
    let n = ids.len();
    let day = |t: i64| t.div_euclid(86_400);
    // 1970-01-01 was a Thursday: +3 makes weeks start on Monday.
    let week = |t: i64| (day(t) + 3).div_euclid(7);
    let month = |t: i64| {
        let d = Utc.timestamp_opt(t, 0).single().expect("snapshot IDs are valid times");
        i64::from(d.year()) * 12 + i64::from(d.month0())
    };
    let daily = latest_per_period(ids, policy.daily, day, day(now));
    let weekly = latest_per_period(ids, policy.weekly, week, week(now));
    let monthly = latest_per_period(ids, policy.monthly.then_some(u32::MAX), month, month(now));
    ids.iter()
        .enumerate()
        .map(|(i, &id)| {
            if i == 0 {
                Some(Keep::First)
            } else if i + 1 == n {
                Some(Keep::Latest)
            } else if let Some(reason) = pins.get(&id) {
                Some(Keep::Pinned(reason.clone()))
            } else if policy.is_off() {
                Some(Keep::Off)
            } else if policy.keep_within_secs.is_some_and(|s| id > now - s as i64) {
                Some(Keep::Within)
            } else if policy.keep_last.is_some_and(|k| n - i <= k as usize) {
                Some(Keep::Last)
            } else if daily.binary_search(&id).is_ok() {
                Some(Keep::Daily)
            } else if weekly.binary_search(&id).is_ok() {
                Some(Keep::Weekly)
            } else if monthly.binary_search(&id).is_ok() {
                Some(Keep::Monthly)
            } else {
                None
            }
        })
        .collect()
}

/// The latest ID of each period among the `count` periods ending with `current`, ascending.
fn latest_per_period(ids: &[i64], count: Option<u32>, period: impl Fn(i64) -> i64, current: i64) -> Vec<i64> {
    let Some(count) = count else { return Vec::new() };
    let oldest = current.saturating_sub(i64::from(count)).saturating_add(1);
    let mut latest = BTreeMap::new();
    for &id in ids {
        let p = period(id);
        if p >= oldest && p <= current {
            latest.insert(p, id);
        }
    }
    let mut out: Vec<i64> = latest.into_values().collect();
    out.sort_unstable();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp()
    }

    /// 200 snapshots, one every 6 hours from Thursday 2026-01-01 00:00 to Thursday
    /// 2026-02-19 18:00, evaluated on Friday 2026-02-20 12:00 (ISO week 8).
    fn history() -> Vec<i64> {
        (0..200).map(|k| at("2026-01-01T00:00:00Z") + k * 6 * 3600).collect()
    }

    fn kept(policy: &Policy, pins: &HashMap<i64, String>) -> Vec<(String, Keep)> {
        let ids = history();
        let verdicts = evaluate(&ids, policy, pins, at("2026-02-20T12:00:00Z"));
        assert_eq!(verdicts.len(), 200);
        ids.iter()
            .zip(verdicts)
            .filter_map(|(id, k)| k.map(|k| (Utc.timestamp_opt(*id, 0).unwrap().format("%m-%d %H").to_string(), k)))
            .collect()
    }

    fn s(v: &[(&str, Keep)]) -> Vec<(String, Keep)> {
        v.iter().map(|(a, k)| (a.to_string(), k.clone())).collect()
    }

    #[test]
    fn two_hundred_snapshots_under_a_daily_and_weekly_policy() {
        let policy = Policy { daily: Some(7), weekly: Some(4), ..Default::default() };
        // Days Feb 14..20 (the 20th has none); weeks 8 (Feb 16-22), 7 (Feb 9-15, whose
        // latest, Sunday 15th, is also a daily), 6 (Feb 2-8) and 5 (Jan 26-Feb 1).
        assert_eq!(
            kept(&policy, &HashMap::new()),
            s(&[
                ("01-01 00", Keep::First),
                ("02-01 18", Keep::Weekly),
                ("02-08 18", Keep::Weekly),
                ("02-14 18", Keep::Daily),
                ("02-15 18", Keep::Daily),
                ("02-16 18", Keep::Daily),
                ("02-17 18", Keep::Daily),
                ("02-18 18", Keep::Daily),
                ("02-19 18", Keep::Latest),
            ])
        );
    }

    #[test]
    fn last_n_within_monthly_and_pins() {
        let policy =
            Policy { keep_last: Some(3), monthly: true, keep_within_secs: Some(30 * 3600), ..Default::default() };
        let pins = HashMap::from([(at("2026-01-10T06:00:00Z"), "audit 42".to_string())]);
        // Younger than 30 h on Feb 20 12:00: Feb 19 12:00 (Feb 19 06:00 is exactly 30 h old).
        // January's latest is the 31st 18:00; February's is the latest snapshot.
        assert_eq!(
            kept(&policy, &pins),
            s(&[
                ("01-01 00", Keep::First),
                ("01-10 06", Keep::Pinned("audit 42".into())),
                ("01-31 18", Keep::Monthly),
                ("02-19 06", Keep::Last),
                ("02-19 12", Keep::Within),
                ("02-19 18", Keep::Latest),
            ])
        );
    }

    #[test]
    fn no_rule_keeps_everything_and_one_snapshot_is_first_and_latest() {
        assert!(evaluate(&history(), &Policy::default(), &HashMap::new(), 0).iter().all(Option::is_some));
        assert_eq!(
            evaluate(&[5], &Policy { keep_last: Some(1), ..Default::default() }, &HashMap::new(), 9),
            vec![Some(Keep::First)]
        );
        assert_eq!(evaluate(&[], &Policy::default(), &HashMap::new(), 9), vec![]);
    }
}
