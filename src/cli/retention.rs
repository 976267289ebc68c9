//! `asof archive retention`, `asof pin` and `asof retention plan`: an archive's retention
//! policy and pins, and which snapshots the policy keeps.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, bail};

use super::channels::actor;
use crate::catalog::SnapshotQuery;
use crate::domain::{ArchiveName, SnapshotId};
use crate::retention::{Keep, Policy};
use crate::store::Store;

/// The rules of `asof archive retention`; none given shows the current policy.
#[derive(clap::Args, Debug)]
pub struct PolicyArgs {
    /// Keep the N latest snapshots.
    #[arg(long, value_name = "N")]
    pub keep_last: Option<u32>,
    /// Keep the latest snapshot of each of the last D days (UTC).
    #[arg(long, value_name = "D")]
    pub daily: Option<u32>,
    /// Keep the latest snapshot of each of the last W ISO weeks.
    #[arg(long, value_name = "W")]
    pub weekly: Option<u32>,
    /// Keep the latest snapshot of every month, forever.
    #[arg(long)]
    pub monthly: bool,
    /// Keep every snapshot younger than this, e.g. 36h.
    #[arg(long, value_name = "T", value_parser = humantime::parse_duration)]
    pub keep_within: Option<Duration>,
    /// Remove the policy: keep every snapshot.
    #[arg(long, conflicts_with_all = ["keep_last", "daily", "weekly", "monthly", "keep_within"])]
    pub off: bool,
}

impl PolicyArgs {
    fn policy(&self) -> Policy {
        Policy {
            keep_last: self.keep_last,
            daily: self.daily,
            weekly: self.weekly,
            monthly: self.monthly,
            keep_within_secs: self.keep_within.map(|d| d.as_secs()),
        }
    }
}

fn describe(p: &Policy) -> String {
    let mut parts = Vec::new();
    if let Some(n) = p.keep_last {
        parts.push(format!("last {n}"));
    }
    if let Some(d) = p.daily {
        parts.push(format!("daily for {d} days"));
    }
    if let Some(w) = p.weekly {
        parts.push(format!("weekly for {w} weeks"));
    }
    if p.monthly {
        parts.push("monthly forever".to_string());
    }
    if let Some(s) = p.keep_within_secs {
        parts.push(format!("younger than {}", humantime::format_duration(Duration::from_secs(s))));
    }
    if parts.is_empty() { "off (every snapshot is kept)".to_string() } else { format!("keep {}", parts.join(", ")) }
}

pub fn policy(store: &Store, archive: &ArchiveName, args: &PolicyArgs) -> anyhow::Result<()> {
    let wanted = args.policy();
    if !args.off && wanted.is_off() {
        let current = store.retention.policy(archive)?;
        if store.catalog.archive(archive)?.is_none() {
            bail!("no archive named '{archive}'");
        }
        println!("{}", describe(&current.unwrap_or_default()));
        return Ok(());
    }
    if wanted.keep_last == Some(0) || wanted.daily == Some(0) || wanted.weekly == Some(0) {
        bail!("--keep-last, --daily and --weekly must be at least 1");
    }
    let set = (!args.off).then_some(&wanted);
    if !store.retention.set_policy(archive, set, &actor(), chrono::Utc::now().timestamp())? {
        bail!("no archive named '{archive}'");
    }
    eprintln!("retention of {archive}: {}", describe(&wanted));
    Ok(())
}

/// The snapshot an ID names, by floor, as every reader resolves it.
fn resolve(store: &Store, archive: &ArchiveName, id: &str) -> anyhow::Result<SnapshotId> {
    let at: SnapshotId = id.parse().with_context(|| format!("snapshot ID {id:?}"))?;
    if store.catalog.archive(archive)?.is_none() {
        bail!("no archive named '{archive}'");
    }
    match store.catalog.resolve(archive, at)? {
        Some(s) => Ok(s.id),
        None => bail!("archive '{archive}' has no snapshot at or before {at}"),
    }
}

pub fn pin(store: &Store, archive: &ArchiveName, id: &str, reason: Option<&str>) -> anyhow::Result<()> {
    let snapshot = resolve(store, archive, id)?;
    match reason {
        Some(r) if r.trim().is_empty() => bail!("--reason must say why"),
        Some(r) => {
            store.retention.pin(archive, snapshot, r, &actor(), chrono::Utc::now().timestamp())?;
            eprintln!("pinned {archive}/{snapshot}: {r}");
        }
        None => {
            if !store.retention.unpin(archive, snapshot)? {
                bail!("{archive}/{snapshot} is not pinned");
            }
            eprintln!("unpinned {archive}/{snapshot}");
        }
    }
    Ok(())
}

#[derive(serde::Serialize)]
struct PlanLine {
    id: SnapshotId,
    keep: Option<Keep>,
}

pub fn plan(store: &Store, archive: &ArchiveName, at: Option<&str>, json: bool) -> anyhow::Result<()> {
    if store.catalog.archive(archive)?.is_none() {
        bail!("no archive named '{archive}'");
    }
    let now = match at {
        Some(a) => a.parse::<SnapshotId>().with_context(|| format!("--at {a:?}"))?.unix(),
        None => chrono::Utc::now().timestamp(),
    };
    let policy = store.retention.policy(archive)?.unwrap_or_default();
    let mut pins: HashMap<i64, String> = HashMap::new();
    for p in store.retention.pins(archive)? {
        pins.entry(p.id.unix()).and_modify(|r| *r = format!("{r}; {}", p.reason)).or_insert(p.reason);
    }
    let snapshots = store.catalog.snapshots(archive, &SnapshotQuery::default())?;
    let ids: Vec<i64> = snapshots.iter().map(|s| s.id.unix()).collect();
    let verdicts = crate::retention::evaluate(&ids, &policy, &pins, now);
    let lines: Vec<PlanLine> = snapshots.iter().zip(verdicts).map(|(s, keep)| PlanLine { id: s.id, keep }).collect();
    let deleted = lines.iter().filter(|l| l.keep.is_none()).count();
    if json {
        let out = serde_json::json!({
            "archive": archive.as_str(), "policy": policy, "snapshots": lines,
            "kept": lines.len() - deleted, "deleted": deleted,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        for l in &lines {
            match &l.keep {
                None => println!("{} delete", l.id),
                Some(k) => println!("{} keep ({})", l.id, keep_text(k)),
            }
        }
        eprintln!(
            "{archive}: {}; keeps {} of {} snapshot(s), deletes {deleted}",
            describe(&policy),
            lines.len() - deleted,
            lines.len()
        );
    }
    Ok(())
}

fn keep_text(k: &Keep) -> String {
    match k {
        Keep::Off => "no policy".into(),
        Keep::First => "first".into(),
        Keep::Latest => "latest".into(),
        Keep::Pinned(r) => r.clone(),
        Keep::Within => "young".into(),
        Keep::Last => "last".into(),
        Keep::Daily => "daily".into(),
        Keep::Weekly => "weekly".into(),
        Keep::Monthly => "monthly".into(),
    }
}
