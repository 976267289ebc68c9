//! `asof takedown`: hide a file from every snapshot (by path or by content), purge its
//! bytes, undo, and list the audit log.

use anyhow::{Context, bail};

use super::channels::actor;
use crate::domain::{Digest, RelPath};
use crate::store::Store;
use crate::takedown::{State, Status, Takedown, TakedownRequest, Target};

/// `asof takedown ARCHIVE PATH --reason TEXT` (PATH in every snapshot of ARCHIVE),
/// `asof takedown --sha256 DIGEST --reason TEXT` (those bytes in every archive),
/// `asof takedown --undo ID`, `asof takedown --list`.
#[derive(clap::Args, Debug)]
pub struct TakedownArgs {
    /// Archive of a path takedown.
    #[arg(conflicts_with = "sha256")]
    pub archive: Option<String>,
    /// The path to hide in every snapshot of ARCHIVE (e.g. pool/main/h/hello/hello_1.0_all.deb).
    #[arg(requires = "archive")]
    pub path: Option<String>,
    /// Hide every file with these bytes, in every snapshot of every archive.
    #[arg(long, value_name = "DIGEST")]
    pub sha256: Option<String>,
    /// Why: shown to every client that asks for the file, and kept in the audit log.
    #[arg(long, required_unless_present_any = ["undo", "list"])]
    pub reason: Option<String>,
    /// 410 Gone, or 451 Unavailable For Legal Reasons.
    #[arg(long, default_value = "410", value_parser = ["410", "451"])]
    pub status: String,
    /// Also delete the bytes from the blob store: irreversible. A path takedown refuses
    /// to purge bytes that another path not taken down still serves.
    #[arg(long)]
    pub purge: bool,
    /// Serve the file again (the takedown with this number); refused once purged.
    #[arg(long, value_name = "ID", conflicts_with_all = ["archive", "sha256", "reason", "purge", "list"])]
    pub undo: Option<i64>,
    /// List every takedown with its audit log.
    #[arg(long, conflicts_with_all = ["archive", "sha256", "reason", "purge"])]
    pub list: bool,
    /// Print the takedown (or with --list, all of them) as JSON, as GET /api/v1/takedowns does.
    #[arg(long)]
    pub json: bool,
}

pub fn run(store: &Store, args: TakedownArgs) -> anyhow::Result<()> {
    let now = chrono::Utc::now().timestamp();
    if args.list {
        return list(store, args.json);
    }
    if let Some(id) = args.undo {
        let t = crate::takedown::undo(store, id, &actor(), now)?;
        return show(&t, args.json, "undone: served again");
    }
    let req = TakedownRequest {
        target: target(&args)?,
        status: Status::from_code(args.status.parse()?).context("--status must be 410 or 451")?,
        reason: args.reason.clone().context("--reason is required")?,
        purge: args.purge,
    };
    if req.reason.trim().is_empty() {
        bail!("--reason must say why");
    }
    let t = crate::takedown::take_down(store, &req, &actor(), now)?;
    let what = if t.state == State::Purged { "taken down, bytes purged" } else { "taken down" };
    show(&t, args.json, what)
}

fn target(args: &TakedownArgs) -> anyhow::Result<Target> {
    match (&args.archive, &args.path, &args.sha256) {
        (Some(a), Some(p), None) => Ok(Target::Path {
            archive: super::parse_archive(a)?,
            path: RelPath::new(p.trim_start_matches('/')).with_context(|| format!("invalid path '{p}'"))?,
        }),
        (None, None, Some(d)) => {
            let hex = d.strip_prefix("sha256:").unwrap_or(d);
            Ok(Target::Sha256(hex.parse::<Digest>().with_context(|| format!("invalid --sha256 '{d}'"))?))
        }
        _ => bail!("name the file to take down: ARCHIVE PATH, or --sha256 DIGEST for its bytes in every archive"),
    }
}

fn show(t: &Takedown, json: bool, what: &str) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(t)?);
    } else {
        println!("takedown {}: {} {what} ({} {})", t.id, target_text(t), t.status.code(), t.reason);
    }
    Ok(())
}

fn list(store: &Store, json: bool) -> anyhow::Result<()> {
    let all = store.takedowns.list()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(());
    }
    if all.is_empty() {
        eprintln!("no takedowns");
    }
    for t in &all {
        let state = match t.state {
            State::Active => "active",
            State::Purged => "purged",
            State::Undone => "undone",
        };
        println!("{:>4}  {state:<6}  {}  {}  reason: {}", t.id, t.status.code(), target_text(t), t.reason);
        for e in &t.log {
            println!(
                "      {} {} by {}",
                e.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                e.action.as_str(),
                e.actor
            );
        }
    }
    Ok(())
}

fn target_text(t: &Takedown) -> String {
    match (&t.archive, &t.path, &t.sha256) {
        (Some(a), Some(p), _) => format!("{a}/{p}"),
        (_, _, Some(d)) => format!("sha256:{d} (every archive)"),
        _ => "(no target)".to_string(),
    }
}
