//! `asof archive retention`, `asof pin`, `asof retention plan` and `asof retention apply`:
//! an archive's retention policy and pins, which snapshots the policy keeps, and applying it.

use std::time::Duration;

use anyhow::{Context, bail};

use super::channels::actor;
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

/// Writes the policies the config file declares (`[retention.archives.NAME]`) to the
/// catalog, so that every command and the schedule see the same ones.
pub fn declare(store: &Store, config: &crate::config::RetentionConfig) -> anyhow::Result<()> {
    for (archive, policy) in config.policies()? {
        if store.retention.policy(&archive)?.as_ref() == Some(&policy) {
            continue;
        }
        if !store.retention.set_policy(&archive, Some(&policy), "config", chrono::Utc::now().timestamp())? {
            tracing::warn!(%archive, "the config declares a retention policy for an archive that does not exist yet");
            continue;
        }
        tracing::info!(%archive, policy = %describe(&policy), "retention policy from the config file");
    }
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

pub fn plan(store: &Store, archive: &ArchiveName, at: Option<&str>, json: bool) -> anyhow::Result<()> {
    let now = match at {
        Some(a) => a.parse::<SnapshotId>().with_context(|| format!("--at {a:?}"))?.unix(),
        None => chrono::Utc::now().timestamp(),
    };
    let Some(plan) = crate::retention::plan(store, archive, now)? else { bail!("no archive named '{archive}'") };
    let deleted = plan.doomed().len();
    let kept = plan.snapshots.len() - deleted;
    if json {
        let out = serde_json::json!({
            "archive": archive.as_str(), "policy": plan.policy, "snapshots": plan.snapshots,
            "kept": kept, "deleted": deleted, "reclaim": plan.reclaim,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    for l in &plan.snapshots {
        match &l.keep {
            None => println!("{} delete", l.id),
            Some(k) => println!("{} keep ({})", l.id, keep_text(k)),
        }
    }
    eprintln!(
        "{archive}: {}; keeps {kept} of {} snapshot(s), deletes {deleted}{}",
        describe(&plan.policy),
        plan.snapshots.len(),
        reclaim_text(&plan.reclaim)
    );
    Ok(())
}

/// `asof retention apply`: one archive, or every archive that has a policy.
pub fn apply(store: &Store, archive: Option<&ArchiveName>, dry_run: bool, json: bool) -> anyhow::Result<()> {
    let archives = match archive {
        Some(a) if store.catalog.archive(a)?.is_none() => bail!("no archive named '{a}'"),
        Some(a) => vec![a.clone()],
        None => store.catalog.archives()?.into_iter().map(|a| a.name).collect(),
    };
    let now = chrono::Utc::now().timestamp();
    let mut reports = Vec::new();
    for a in &archives {
        let Some(policy) = store.retention.policy(a)?.filter(|p| !p.is_off()) else {
            if archive.is_some() {
                eprintln!("{a}: no retention policy; every snapshot is kept");
            }
            continue;
        };
        let report = if dry_run { dry_run_one(store, a, now, json)? } else { apply_one(store, a, now, json)? };
        if !json {
            eprintln!("{a}: {}", describe(&policy));
        }
        reports.push(report);
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    }
    Ok(())
}

fn dry_run_one(store: &Store, archive: &ArchiveName, now: i64, json: bool) -> anyhow::Result<serde_json::Value> {
    let plan = crate::retention::plan(store, archive, now)?.context("the archive vanished")?;
    let doomed = plan.doomed();
    if !json {
        for id in &doomed {
            println!("{archive} {id} would be deleted");
        }
        eprintln!("{archive}: would delete {} snapshot(s){}", doomed.len(), reclaim_text(&plan.reclaim));
    }
    Ok(serde_json::json!({ "archive": archive.as_str(), "dry_run": true, "deleted": doomed, "reclaim": plan.reclaim }))
}

fn apply_one(store: &Store, archive: &ArchiveName, now: i64, json: bool) -> anyhow::Result<serde_json::Value> {
    let applied = crate::retention::apply(store, archive, now, &actor())?.context("the archive vanished")?;
    if !json {
        for id in &applied.deleted {
            println!("{archive} {id} deleted");
        }
        for (id, why) in &applied.kept {
            eprintln!("{archive} {id} kept: {why}");
        }
        eprintln!("{archive}: deleted {} snapshot(s){}", applied.deleted.len(), reclaim_text(&applied.reclaim));
    }
    let kept: Vec<_> = applied.kept.iter().map(|(id, why)| serde_json::json!({ "id": id, "reason": why })).collect();
    Ok(serde_json::json!({
        "archive": archive.as_str(), "dry_run": false, "deleted": applied.deleted, "kept": kept, "reclaim": applied.reclaim,
    }))
}

fn reclaim_text(r: &crate::retention::Reclaim) -> String {
    if r.snapshots == 0 {
        return String::new();
    }
    format!(
        " ({} entry rows, {} package rows; {} blob(s), {} bytes no longer referenced, freed by gc after its grace)",
        r.entry_rows, r.package_rows, r.blobs, r.bytes
    )
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
