//! `asof channel create|show|list|rollout|pause|resume|abort|advance|history`: rollout
//! channels on the local data directory, through the same service as the HTTP API.

use std::time::Duration;

use anyhow::{Context, bail};
use clap::Subcommand;

use crate::domain::{ChannelName, SnapshotId};
use crate::rollout::service::Channels;
use crate::rollout::spec::{Advance, Gate, RingJson, SpecJson};
use crate::rollout::view::channel_json;
use crate::rollout::{ChannelRecord, now_ms, rfc3339};
use crate::store::Store;

#[derive(Subcommand, Debug)]
pub enum ChannelCommand {
    /// Create a channel, or change an existing one (rings cannot change mid-rollout).
    Create {
        channel: String,
        /// The archive whose snapshots the channel rolls out.
        #[arg(long)]
        archive: String,
        /// A ring as NAME:PERCENT[:SOAK], cumulative, in order, the last at 100
        /// (e.g. --ring canary:1:30m --ring early:10:2h --ring broad:100). Repeatable.
        #[arg(long = "ring", required = true)]
        rings: Vec<String>,
        /// Pause when a ring's failed share of reporting nodes exceeds this (0 to 1).
        #[arg(long, default_value_t = Gate::default().max_failure_rate)]
        max_failure_rate: f64,
        /// Fewer reporting nodes than this in a ring never trip the gate.
        #[arg(long, default_value_t = Gate::default().min_reports)]
        min_reports: u32,
        /// Rings start only on `asof channel advance`, not after their soak.
        #[arg(long)]
        manual: bool,
        /// Suite and components of the nodes' sources.list line, e.g. "bookworm main".
        #[arg(long)]
        sources: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// A channel and its rollout: rings, their IDs, time to the next ring, failures.
    Show {
        channel: String,
        #[arg(long)]
        json: bool,
    },
    /// Every channel.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Roll SNAPSHOT out (an ID; non-exact IDs resolve to the snapshot at or before it).
    Rollout {
        channel: String,
        snapshot: String,
        #[arg(long)]
        json: bool,
    },
    /// Stop widening the current rollout.
    Pause {
        channel: String,
        #[arg(long)]
        json: bool,
    },
    /// Continue a paused rollout (the gate counts only reports from now on).
    Resume {
        channel: String,
        #[arg(long)]
        json: bool,
    },
    /// Return every ring to what it served before the current rollout.
    Abort {
        channel: String,
        #[arg(long)]
        json: bool,
    },
    /// Start the next ring now.
    Advance {
        channel: String,
        #[arg(long)]
        json: bool,
    },
    /// Who changed what, when.
    History {
        channel: String,
        #[arg(long)]
        json: bool,
    },
}

/// Who a local command acts as, in the audit history.
/// Who the audit history names for a change made from the command line.
pub(super) fn actor() -> String {
    std::env::var("USER").map_or_else(|_| "cli".to_string(), |u| format!("cli:{u}"))
}

fn channel(s: &str) -> anyhow::Result<ChannelName> {
    Ok(s.parse()?)
}

/// `NAME:PERCENT[:SOAK]`.
fn ring(s: &str) -> anyhow::Result<RingJson> {
    let mut parts = s.splitn(3, ':');
    let (Some(name), Some(percent)) = (parts.next(), parts.next()) else {
        bail!("ring '{s}': expected NAME:PERCENT[:SOAK], e.g. canary:1:30m");
    };
    let percent: f64 = percent.parse().with_context(|| format!("ring '{s}': percent '{percent}' is not a number"))?;
    let soak = match parts.next() {
        Some(t) => humantime::parse_duration(t).with_context(|| format!("ring '{s}': soak '{t}'"))?,
        None => Duration::ZERO,
    };
    Ok(RingJson { name: name.to_string(), percent, soak_secs: soak.as_secs() })
}

pub fn run(store: &Store, cmd: ChannelCommand) -> anyhow::Result<()> {
    let ch = Channels::of(store);
    let now = now_ms();
    let (rec, json) = match cmd {
        ChannelCommand::Create { channel: c, archive, rings, max_failure_rate, min_reports, manual, sources, json } => {
            let name = channel(&c)?;
            let spec = SpecJson {
                archive,
                rings: rings.iter().map(|r| ring(r)).collect::<anyhow::Result<_>>()?,
                gate: Gate { max_failure_rate, min_reports },
                advance: if manual { Advance::Manual } else { Advance::Auto },
                sources,
            }
            .validate()?;
            if store.catalog.archive(&spec.archive)?.is_none() {
                bail!("no archive named '{}'", spec.archive);
            }
            let created = ch.put(&name, &spec, &actor(), now)?;
            eprintln!("channel {name} {}", if created { "created" } else { "updated" });
            (ch.view(&name, now)?, json)
        }
        ChannelCommand::Show { channel: c, json } => (ch.view(&channel(&c)?, now)?, json),
        ChannelCommand::List { json } => return list(&ch, now, json),
        ChannelCommand::Rollout { channel: c, snapshot, json } => {
            let id: SnapshotId = snapshot.parse()?;
            (ch.start(&channel(&c)?, id, &actor(), now)?, json)
        }
        ChannelCommand::Pause { channel: c, json } => (ch.pause(&channel(&c)?, &actor(), now)?, json),
        ChannelCommand::Resume { channel: c, json } => (ch.resume(&channel(&c)?, &actor(), now)?, json),
        ChannelCommand::Abort { channel: c, json } => (ch.abort(&channel(&c)?, &actor(), now)?, json),
        ChannelCommand::Advance { channel: c, json } => (ch.advance(&channel(&c)?, &actor(), now)?, json),
        ChannelCommand::History { channel: c, json } => return history(&ch, &channel(&c)?, now, json),
    };
    let health = ch.health(&rec)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&channel_json(&rec, &health))?);
    } else {
        print!("{}", show_text(&rec, &health, now));
    }
    Ok(())
}

fn list(ch: &Channels, now: i64, json: bool) -> anyhow::Result<()> {
    let all = ch.list(now)?;
    if json {
        let out = all.iter().map(|r| Ok(channel_json(r, &ch.health(r)?))).collect::<anyhow::Result<Vec<_>>>()?;
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "channels": out }))?);
        return Ok(());
    }
    for r in &all {
        let state =
            r.rollout.as_ref().map_or("no rollout".to_string(), |x| format!("{} {}", x.status.name(), x.target));
        println!("{}  {}  {}", r.name, r.spec.archive, state);
    }
    Ok(())
}

fn history(ch: &Channels, name: &ChannelName, now: i64, json: bool) -> anyhow::Result<()> {
    let events = ch.history(name, now)?;
    if json {
        let out: Vec<_> = events
            .iter()
            .map(|e| serde_json::json!({ "at": rfc3339(e.at), "actor": e.actor, "action": e.action, "detail": e.detail }))
            .collect();
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "channel": name, "events": out }))?);
        return Ok(());
    }
    for e in &events {
        println!("{}  {:<16} {:<20} {}", rfc3339(e.at), e.actor, e.action, e.detail);
    }
    Ok(())
}

/// The human view: one line for the channel and its rollout, then a table of rings.
pub fn show_text(rec: &ChannelRecord, health: &[crate::rollout::gate::RingHealth], now: i64) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let spec = rec.spec.to_json();
    let mode = if spec.advance == Advance::Auto { "auto" } else { "manual" };
    let _ = write!(out, "{}  archive {}  advance {mode}", rec.name, rec.spec.archive);
    let Some(r) = &rec.rollout else {
        out.push_str("  no rollout\n");
        return out;
    };
    let _ = writeln!(out, "  rollout #{} {} -> {} (asked {})", r.id, r.status.name(), r.target, r.requested);
    if let crate::rollout::Status::Paused { reason } = &r.status {
        let _ = writeln!(out, "  paused: {reason}");
    }
    let _ = writeln!(
        out,
        "  {:<12} {:>8} {:>10}  {:<16}  {:<24}  failures",
        "ring", "percent", "soak", "snapshot", "since"
    );
    for (i, ring) in spec.rings.iter().enumerate() {
        let h = health.get(i).copied().unwrap_or_default();
        let id = r.serves(i).map_or("-".to_string(), |x| x.to_string());
        let since = r.serving_since(i).map_or("-".to_string(), rfc3339);
        let soak = humantime::format_duration(Duration::from_secs(ring.soak_secs)).to_string();
        let _ = writeln!(
            out,
            "  {:<12} {:>7}% {:>10}  {:<16}  {:<24}  {}/{}",
            ring.name, ring.percent, soak, id, since, h.failures, h.reports
        );
    }
    if let Some((next, at)) = r.next_ring_at(&rec.spec) {
        let wait = Duration::from_secs(((at - now).max(0) / 1000) as u64);
        let _ = writeln!(out, "  next ring: {} in {}", rec.spec.rings[next].name, humantime::format_duration(wait));
    }
    out
}
