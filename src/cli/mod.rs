//! The `asof` command line: one binary for publishing, serving and checking.

mod channels;
mod mirror_report;
mod packages;
mod progress;
mod retention;
mod scrub;
mod signing;
mod space;
mod takedown;

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

use crate::catalog::SnapshotQuery;
use crate::config::Config;
use crate::domain::ArchiveName;
use crate::http::{AppState, ServeOptions, SnapshotJson};
use crate::publish::{NoProgress, Progress, PublishOptions};
use crate::store::Store;

#[derive(Parser, Debug)]
#[command(name = "asof", version, about = "Point-in-time snapshots of package archives")]
pub struct Cli {
    /// Data directory of the embedded default (SQLite + blobs) [default: ./asof-data]
    #[arg(long, env = "ASOF_DATA", global = true)]
    pub data: Option<PathBuf>,
    /// Keep the metadata in PostgreSQL (`postgres://user@host/db`) instead of `asof.db` in
    /// the data directory.
    #[arg(long, env = "ASOF_CATALOG", global = true)]
    pub catalog: Option<String>,
    /// Keep the blobs in object storage (`s3://BUCKET/PREFIX` with the `AWS_*` variables,
    /// `azure://CONTAINER/PREFIX` with the `AZURE_*` ones) instead of `blobs/` in the data
    /// directory.
    #[arg(long, env = "ASOF_BLOBS", global = true)]
    pub blobs: Option<String>,
    /// TOML config file; unknown keys are rejected.
    #[arg(long, env = "ASOF_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value = "text", global = true)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Record the tree under DIR as a new snapshot of ARCHIVE and print its ID.
    Publish {
        /// Archive name, e.g. `debian` or `ubuntu/22.04/prod`.
        archive: String,
        /// Root of the tree to record (as it would be served: `dists/`, `pool/`, ...).
        dir: PathBuf,
        /// Make no snapshot if the tree equals the latest one (print that one's ID).
        #[arg(long)]
        if_changed: bool,
        /// Print the report as JSON on stdout instead of the ID.
        #[arg(long)]
        json: bool,
        /// Hash every file, ignoring what the last publish remembered (size, mtime, inode).
        #[arg(long)]
        rehash: bool,
        /// Publish only the paths listed in FILE (`-`: stdin), one per line, relative to DIR:
        /// those added, changed or removed since the latest snapshot. Everything else is
        /// carried over from it (docs/operations.md, "Publishing only what changed").
        #[arg(long, value_name = "FILE")]
        changes: Option<PathBuf>,
    },
    /// Serve every archive over HTTP.
    Serve {
        /// Address to listen on [default: 127.0.0.1:8080].
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// On first start, record a small demo apt archive (two snapshots) and print how
        /// to point apt at it.
        #[arg(long)]
        demo: bool,
    },
    /// List the snapshots of an archive, oldest first.
    Snapshots {
        archive: String,
        #[arg(long)]
        json: bool,
    },
    /// Record the current state of an upstream apt archive as a new snapshot (or, without
    /// ARCHIVE, run every mirror of the config file once).
    Mirror(MirrorArgs),
    /// Publish a local tree to a remote asof over HTTP, uploading only missing blobs.
    Push {
        /// Base URL of the asof server, e.g. https://asof.example
        url: String,
        archive: String,
        dir: PathBuf,
        /// Token with publish scope on the archive.
        #[arg(long, env = "ASOF_TOKEN", hide_env_values = true)]
        token: String,
        /// Uploads in flight at once.
        #[arg(long, default_value_t = 8)]
        jobs: usize,
        /// Retries of a failed upload before giving up.
        #[arg(long, default_value_t = 5)]
        retries: u32,
        #[arg(long)]
        json: bool,
        /// Push only the paths listed in FILE (`-`: stdin), as for `publish --changes`.
        #[arg(long, value_name = "FILE")]
        changes: Option<PathBuf>,
    },
    /// Manage API tokens (stored as hashes in the data directory).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Archive settings.
    #[command(subcommand)]
    Archive(ArchiveCommand),
    /// Keep snapshot ID of ARCHIVE (the one it names, by floor) whatever its retention
    /// policy says; `--remove` to unpin.
    Pin {
        archive: String,
        id: String,
        /// Why it is pinned (shown by `asof retention plan`).
        #[arg(long, required_unless_present = "remove", conflicts_with = "remove")]
        reason: Option<String>,
        #[arg(long)]
        remove: bool,
    },
    /// Snapshot retention.
    #[command(subcommand)]
    Retention(RetentionCommand),
    /// Rollout channels: a pointer into an archive's history that a fleet follows ring by ring.
    #[command(subcommand)]
    Channel(channels::ChannelCommand),
    /// What changed in the packages of ARCHIVE between two snapshots (IDs resolve by floor).
    Diff {
        archive: String,
        from: String,
        to: String,
        /// Only this suite.
        #[arg(long)]
        suite: Option<String>,
        /// Only this architecture (`source` for source packages).
        #[arg(long = "arch")]
        architecture: Option<String>,
        /// Only this package.
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Every version a binary package ever had in ARCHIVE, with first and last seen.
    Packages {
        archive: String,
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Copy the embedded store of DATA_DIR (asof.db and blobs/) into a PostgreSQL catalog
    /// and a blob store; --data names the new data directory (scratch space, label.key).
    /// Stop publishers first. Run again after an interruption: blobs already copied are
    /// skipped, and the catalog is copied in one transaction or found copied.
    Migrate {
        /// The data directory to copy from.
        #[arg(long, value_name = "DATA_DIR")]
        from: PathBuf,
        /// The PostgreSQL catalog to copy into (postgres://user@host/db); it must be empty.
        #[arg(long, value_name = "URL")]
        to_catalog: String,
        /// Where the blobs go: s3://BUCKET/PREFIX or azure://CONTAINER/PREFIX [default:
        /// blobs/ of --data].
        #[arg(long, value_name = "LOCATION")]
        to_blobs: Option<String>,
    },
    /// Delete blobs no snapshot references once they have been unreferenced for the grace
    /// period; prints what it freed. Exit 75 if another collection is running.
    Gc {
        /// Report what would be freed, deleting nothing.
        #[arg(long)]
        dry_run: bool,
        /// How long a blob must have been unreferenced (and unused) [default: [gc] grace, or 24h].
        #[arg(long, value_parser = humantime::parse_duration)]
        grace: Option<Duration>,
        /// First walk every stored blob to find unreferenced ones nobody recorded (left by
        /// a publish killed before its commit). Reads the whole blob directory.
        #[arg(long)]
        rescan: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Hide a file from every snapshot that holds it (410 or 451 with a reason): ARCHIVE
    /// PATH, or --sha256 DIGEST in every archive; --undo ID, --list.
    Takedown(takedown::TakedownArgs),
    /// Re-hash every blob and check every snapshot; exit 1 if anything is wrong or a blob
    /// is quarantined. With --sample or --since: scrub a share of the blobs instead.
    Verify {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        scrub: scrub::ScrubArgs,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create a token and print it (it is shown only this once).
    Create {
        /// admin, publish:<archive|prefix/*|*>, read:<archive|prefix/*|*>,
        /// rollout:<channel|*> or report:<channel|*> (repeatable).
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// Lifetime, e.g. 90d, 12h; default: no expiry.
        #[arg(long, value_parser = humantime::parse_duration)]
        expires: Option<std::time::Duration>,
        /// A name to recognise it by (shown in lists and recorded in snapshots it makes).
        #[arg(long, default_value = "token")]
        name: String,
    },
    /// List tokens (never their secrets).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by id; it stops working at once.
    Revoke { id: i64 },
}

#[derive(Subcommand, Debug)]
pub enum ArchiveCommand {
    /// Make an archive private (created empty if it does not exist yet): every read needs
    /// a read token, as Bearer or as the HTTP Basic password.
    Private { archive: String },
    /// Make an archive public again.
    Public { archive: String },
    /// Serve the archive's dists/<suite>/{InRelease,Release,Release.gpg} re-signed by an
    /// asof-held key, with a `Snapshots:` field so that `apt update -S ID` works without
    /// configuration. Without an option: print the key's fingerprint, or `off`.
    Signing {
        archive: String,
        /// An armored OpenPGP secret key without passphrase (v4, allowed to sign); it is
        /// stored in the catalog. Replaces any previous key.
        #[arg(long, value_name = "FILE", conflicts_with = "off")]
        key: Option<PathBuf>,
        /// Stop re-signing (re-signed files already served for final IDs stay as served).
        #[arg(long)]
        off: bool,
    },
    /// Set the archive's retention policy (rules add up: a snapshot any rule keeps is
    /// kept; never the first or the latest). Without options: print it.
    Retention {
        archive: String,
        #[command(flatten)]
        rules: retention::PolicyArgs,
    },
    /// Blobs and bytes each snapshot-referenced archive keeps stored, and those only it
    /// references (what deleting it would free). Without ARCHIVE: every archive.
    Space {
        archive: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum RetentionCommand {
    /// List every snapshot of ARCHIVE with whether its policy keeps it and why (pins,
    /// channels' current and previous rollouts included). Deletes nothing.
    Plan {
        archive: String,
        /// Evaluate as of this time (a snapshot ID) instead of now.
        #[arg(long, value_name = "ID")]
        at: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Delete the snapshots ARCHIVE's policy lets go (every archive with a policy if none
    /// is named): their manifests and metadata; blobs nothing references any more are
    /// left to gc. Never the first or the latest snapshot, nor a pinned one.
    Apply {
        archive: Option<String>,
        /// Print what would be deleted and freed; delete nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args, Debug)]
pub struct MirrorArgs {
    /// Archive name to record snapshots under; omit to run all mirrors of --config.
    pub archive: Option<String>,
    /// Base URL of the upstream archive (the directory holding dists/ and pool/).
    #[arg(long, requires = "archive")]
    pub upstream: Option<String>,
    /// Suite to mirror (repeatable).
    #[arg(long = "suite")]
    pub suites: Vec<String>,
    /// Component (repeatable); default: all in the Release file.
    #[arg(long = "component")]
    pub components: Vec<String>,
    /// Architecture (repeatable); default: all in the Release file.
    #[arg(long = "arch")]
    pub architectures: Vec<String>,
    /// Mirror source packages too (Sources indices, the files they list, Contents-source).
    #[arg(long, requires = "archive")]
    pub sources: bool,
    /// Keep the Contents-* files (the default).
    #[arg(long, overrides_with = "no_contents", requires = "archive")]
    pub contents: bool,
    /// Leave the Contents-* files out.
    #[arg(long, overrides_with = "contents", requires = "archive")]
    pub no_contents: bool,
    /// Mirror debian-installer indices and the .udeb files they list.
    #[arg(long, requires = "archive")]
    pub udebs: bool,
    /// Translations to keep: 'all' (the default), 'none', or languages such as en,de.
    #[arg(long, value_name = "LANGS", requires = "archive")]
    pub i18n: Option<crate::mirror::Languages>,
    /// Mirror DEP-11 (AppStream) metadata.
    #[arg(long, requires = "archive")]
    pub dep11: bool,
    /// Mirror command-not-found metadata (cnf/Commands-*, Ubuntu).
    #[arg(long, requires = "archive")]
    pub cnf: bool,
    /// Record the snapshot even if files the Release lists are missing upstream (404);
    /// without it the run fails and the next one retries them.
    #[arg(long)]
    pub allow_missing: bool,
    /// Print what would be downloaded and its size; store nothing, make no snapshot.
    #[arg(long)]
    pub dry_run: bool,
    /// OpenPGP keyring (binary or armored) that must have signed the Release files.
    #[arg(long)]
    pub keyring: Option<PathBuf>,
    /// Do not check signatures (recorded in the snapshot).
    #[arg(long)]
    pub insecure_skip_signature: bool,
    /// Make a snapshot even if upstream has not changed.
    #[arg(long)]
    pub always: bool,
    /// Downloads in flight at once.
    #[arg(long, default_value_t = 8)]
    pub jobs: usize,
    /// Retries of a failed download (timeouts, resets, 5xx, 429) before giving up.
    #[arg(long, default_value_t = 5)]
    pub retries: u32,
    /// First wait before a retry; doubles each time (e.g. 500ms, 2s).
    #[arg(long, default_value = "500ms", value_parser = humantime::parse_duration)]
    pub retry_backoff: std::time::Duration,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging(&cli);
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

fn init_logging(cli: &Cli) {
    use tracing_subscriber::EnvFilter;
    let default = match cli.command {
        Command::Serve { .. } => "info",
        _ => "warn",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Reads the list of `--changes` from a file, or from stdin for `-`.
fn read_change_list(list: &std::path::Path) -> anyhow::Result<Vec<crate::publish::changes::Listed>> {
    let context = || format!("reading the change list {}", list.display());
    let parsed = if list == std::path::Path::new("-") {
        crate::publish::changes::parse_list(std::io::stdin().lock())
    } else {
        let file = std::fs::File::open(list).with_context(context)?;
        crate::publish::changes::parse_list(std::io::BufReader::new(file))
    };
    parsed.with_context(context)
}

fn migrate(from: &Path, data: &Path, to_catalog: String, to_blobs: Option<&str>) -> anyhow::Result<ExitCode> {
    let blobs = crate::blob::BlobLocation::from_option(to_blobs)?;
    let to = crate::store::Location { data: data.to_path_buf(), catalog: Some(to_catalog), blobs: blobs.clone() };
    let bar =
        if std::io::stderr().is_terminal() { progress::count_bar("blobs") } else { indicatif::ProgressBar::hidden() };
    let r = crate::migrate::migrate(from, &to, &bar)?;
    let catalog = if r.catalog_was_there { "already there" } else { "copied" };
    println!(
        "migrated {}: {} blobs ({}) copied, {} already in {blobs}; catalog {catalog} ({} rows in {} tables); {} referenced blobs found in place",
        from.display(),
        r.blobs_copied,
        indicatif::HumanBytes(r.bytes_copied),
        r.blobs_present,
        r.rows.values().sum::<i64>(),
        r.rows.len(),
        r.references_checked
    );
    Ok(ExitCode::SUCCESS)
}

fn parse_archive(s: &str) -> anyhow::Result<ArchiveName> {
    s.parse().with_context(|| format!("invalid archive name '{s}'"))
}

fn run(cli: Cli) -> anyhow::Result<std::process::ExitCode> {
    let config = match &cli.config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    let data = cli.data.clone().or(config.data.clone()).unwrap_or_else(|| PathBuf::from("asof-data"));
    let blobs = crate::blob::BlobLocation::from_option(cli.blobs.as_deref().or(config.blobs.as_deref()))?;
    let at =
        crate::store::Location { data: data.clone(), catalog: cli.catalog.clone().or(config.catalog.clone()), blobs };
    let open = || Store::open(&at, crate::catalog::Reads::Buffered);
    match cli.command {
        Command::Publish { archive, dir, if_changed, json, rehash, changes } => {
            let archive = parse_archive(&archive)?;
            let store = open()?;
            let bar = progress::TerminalProgress::new(std::io::stderr().is_terminal());
            // The API shows `source` to readers: name the tree, not the server's file system.
            let tree =
                std::fs::canonicalize(&dir).ok().and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
            let source = serde_json::json!({ "method": "publish", "tree": tree });
            let opts = PublishOptions {
                progress: bar.as_ref().map_or(&NoProgress as &dyn Progress, |b| b as &dyn Progress),
                source,
                always: !if_changed,
            };
            // One cache per archive: it only holds the files of that archive's last publish.
            let cache = data.join("cache").join(format!("publish-{}.bin", archive.as_str().replace('/', "~")));
            if rehash {
                let _ = std::fs::remove_file(&cache);
            }
            let report = match changes {
                Some(list) => {
                    let listed = read_change_list(&list)?;
                    crate::publish::changes::publish_changes(&store, &archive, &dir, &listed, &opts)
                }
                None => crate::publish::publish_dir_cached(&store, &archive, &dir, &opts, Some(&cache)),
            }
            .with_context(|| format!("publishing {} as {archive}", dir.display()))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!("{}", report.snapshot);
            }
            if report.unchanged {
                eprintln!("{archive}: tree unchanged since snapshot {}; no new snapshot", report.snapshot);
            } else {
                eprintln!(
                    "{archive}: snapshot {} — {} files ({} bytes), {} added, {} changed, {} removed; \
                     {} new blobs ({} bytes) in {:.2}s",
                    report.snapshot,
                    report.files,
                    report.bytes,
                    report.added,
                    report.changed,
                    report.removed,
                    report.new_blobs,
                    report.new_bytes,
                    report.duration_ms as f64 / 1000.0
                );
            }
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Channel(cmd) => {
            channels::run(&open()?, cmd)?;
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Snapshots { archive, json } => {
            let archive = parse_archive(&archive)?;
            let store = open()?;
            if store.catalog.archive(&archive)?.is_none() {
                bail!("no archive named '{archive}'");
            }
            let mut all = Vec::new();
            let mut after = None;
            loop {
                let page =
                    store.catalog.snapshots(&archive, &SnapshotQuery { after, limit: 1000, ..Default::default() })?;
                let Some(last) = page.last() else { break };
                after = Some(last.id);
                all.extend(page.iter().map(SnapshotJson::from));
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else {
                for s in &all {
                    println!(
                        "{}  {:>8} files  {:>14} bytes  +{} ~{} -{}  sha256:{}",
                        s.id, s.files, s.bytes, s.added, s.changed, s.removed, s.digest
                    );
                }
            }
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Mirror(args) => {
            let store = open()?;
            let specs: Vec<crate::mirror::MirrorSpec> = match &args.archive {
                Some(archive) => vec![crate::mirror::MirrorSpec {
                    archive: parse_archive(archive)?,
                    upstream: args.upstream.clone().context("--upstream URL is required with an archive")?,
                    suites: args.suites.clone(),
                    components: args.components.clone(),
                    architectures: args.architectures.clone(),
                    scope: crate::mirror::MirrorScope {
                        sources: args.sources,
                        contents: !args.no_contents,
                        udebs: args.udebs,
                        i18n: args.i18n.clone().unwrap_or_default(),
                        dep11: args.dep11,
                        cnf: args.cnf,
                    },
                    keyring: args.keyring.clone(),
                    insecure_skip_signature: args.insecure_skip_signature,
                    allow_missing: args.allow_missing,
                }],
                None => {
                    if config.mirror.is_empty() {
                        bail!("give an ARCHIVE with --upstream, or a --config file with [[mirror]] entries");
                    }
                    let mut specs: Vec<crate::mirror::MirrorSpec> = config
                        .mirror
                        .iter()
                        .map(|m| m.to_scheduled().map(|s| s.spec))
                        .collect::<anyhow::Result<_>>()?;
                    for spec in &mut specs {
                        spec.allow_missing |= args.allow_missing;
                    }
                    specs
                }
            };
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            let mut failed = 0;
            for spec in &specs {
                if spec.insecure_skip_signature {
                    eprintln!(
                        "WARNING: {}: upstream signatures are NOT checked (--insecure-skip-signature); the snapshot records this",
                        spec.archive
                    );
                }
                let mut opts = crate::mirror::MirrorOptions::for_data_dir(&data);
                opts.always = args.always;
                opts.jobs = args.jobs;
                opts.retries = args.retries;
                opts.backoff = args.retry_backoff;
                if std::io::stderr().is_terminal() {
                    opts.progress = progress::download_bar();
                }
                if args.dry_run {
                    match rt.block_on(crate::mirror::dry_run(&store, spec, &opts)) {
                        Ok(plan) => mirror_report::print_dry_run(&plan, args.json)?,
                        Err(e) => {
                            failed += 1;
                            eprintln!("error: mirroring {}: {e}", spec.archive);
                        }
                    }
                    continue;
                }
                match rt.block_on(crate::mirror::mirror(&store, spec, &opts)) {
                    Ok(r) => {
                        mirror_report::print_warnings(&r);
                        if args.json {
                            println!("{}", serde_json::to_string_pretty(&r)?);
                        } else {
                            println!("{}", r.snapshot);
                        }
                        if r.unchanged {
                            eprintln!(
                                "{}: upstream unchanged since snapshot {}; no new snapshot (--always makes one)",
                                r.archive, r.snapshot
                            );
                        } else {
                            eprintln!(
                                "{}: snapshot {} — {} files ({} bytes); downloaded {} files ({} bytes), reused {} files ({} bytes) in {:.1}s; signature {}",
                                r.archive,
                                r.snapshot,
                                r.files,
                                r.bytes,
                                r.downloaded_files,
                                r.downloaded_bytes,
                                r.reused_files,
                                r.reused_bytes,
                                r.duration_ms as f64 / 1000.0,
                                r.signature
                            );
                        }
                    }
                    Err(e) => {
                        failed += 1;
                        eprintln!("error: mirroring {}: {e}", spec.archive);
                    }
                }
            }
            Ok(if failed == 0 { std::process::ExitCode::SUCCESS } else { std::process::ExitCode::from(1) })
        }
        Command::Push { url, archive, dir, token, jobs, retries, json, changes } => {
            let archive = parse_archive(&archive)?;
            let changes = changes.map(|list| read_change_list(&list)).transpose()?;
            let progress = if std::io::stderr().is_terminal() {
                progress::download_bar()
            } else {
                indicatif::ProgressBar::hidden()
            };
            let opts = crate::push::PushOptions { server: url, archive, dir, token, jobs, retries, progress, changes };
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            let r = rt.block_on(crate::push::push(opts))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                println!("{}", r.snapshot);
            }
            eprintln!(
                "{}: snapshot {} — {} files ({} bytes); uploaded {} blobs ({} bytes), reused {} bytes; {:.1}s",
                r.archive,
                r.snapshot,
                r.files,
                r.bytes,
                r.uploaded_files,
                r.uploaded_bytes,
                r.reused_bytes,
                r.duration_ms as f64 / 1000.0
            );
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Token(cmd) => {
            let store = open()?;
            match cmd {
                TokenCommand::Create { scopes, expires, name } => {
                    let scopes =
                        scopes.iter().map(|s| s.parse::<crate::auth::Scope>()).collect::<Result<Vec<_>, _>>()?;
                    let expires_at = expires.map(|d| chrono::Utc::now().timestamp() + d.as_secs() as i64);
                    let (id, token) = crate::auth::create_token(store.auth.as_ref(), &name, &scopes, expires_at)?;
                    println!("{token}");
                    eprintln!("token {id} ({name}) created; it is shown only now: keep it in a secret store");
                }
                TokenCommand::List { json } => {
                    let tokens = store.auth.tokens()?;
                    if json {
                        println!("{}", serde_json::to_string_pretty(&tokens)?);
                    } else {
                        let when = |t: Option<i64>| {
                            t.and_then(|t| chrono::DateTime::from_timestamp(t, 0))
                                .map_or_else(|| "-".to_string(), |d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
                        };
                        for t in tokens {
                            let scopes: Vec<String> = t.scopes.iter().map(ToString::to_string).collect();
                            println!(
                                "{:>4}  {:<16} {:<40} expires {}  revoked {}  last used {}",
                                t.id,
                                t.name,
                                scopes.join(","),
                                when(t.expires_at),
                                when(t.revoked_at),
                                when(t.last_used_at)
                            );
                        }
                    }
                }
                TokenCommand::Revoke { id } => {
                    if !store.auth.revoke_token(id, chrono::Utc::now().timestamp())? {
                        bail!("no token with id {id}");
                    }
                    eprintln!("token {id} revoked");
                }
            }
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Archive(cmd) => {
            let store = open()?;
            let (name, private) = match cmd {
                ArchiveCommand::Private { archive } => (archive, true),
                ArchiveCommand::Public { archive } => (archive, false),
                ArchiveCommand::Signing { archive, key, off } => {
                    let archive = parse_archive(&archive)?;
                    match (key, off) {
                        (Some(file), _) => signing::set(&store, &archive, &file)?,
                        (None, true) => signing::off(&store, &archive)?,
                        (None, false) => signing::show(&store, &archive)?,
                    }
                    return Ok(std::process::ExitCode::SUCCESS);
                }
                ArchiveCommand::Retention { archive, rules } => {
                    retention::policy(&store, &parse_archive(&archive)?, &rules)?;
                    return Ok(std::process::ExitCode::SUCCESS);
                }
                ArchiveCommand::Space { archive, json } => {
                    space::show(&store, archive.map(|a| parse_archive(&a)).transpose()?.as_ref(), json)?;
                    return Ok(std::process::ExitCode::SUCCESS);
                }
            };
            let archive = parse_archive(&name)?;
            store.auth.set_private(&archive, private, chrono::Utc::now().timestamp())?;
            eprintln!("archive {archive} is now {}", if private { "private" } else { "public" });
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Diff { archive, from, to, suite, architecture, name, json } => {
            let archive = parse_archive(&archive)?;
            let store = open()?;
            let filter = crate::packages::query::DiffFilter { suite, architecture, name };
            packages::diff(&store, &archive, &from, &to, filter, json)?;
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Packages { archive, name, json } => {
            let archive = parse_archive(&archive)?;
            let store = open()?;
            packages::packages(&store, &archive, &name, json)?;
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Pin { archive, id, reason, remove: _ } => {
            let archive = parse_archive(&archive)?;
            let store = open()?;
            retention::pin(&store, &archive, &id, reason.as_deref())?;
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Retention(RetentionCommand::Plan { archive, at, json }) => {
            let archive = parse_archive(&archive)?;
            let store = open()?;
            retention::declare(&store, &config.retention)?;
            retention::plan(&store, &archive, at.as_deref(), json)?;
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Retention(RetentionCommand::Apply { archive, dry_run, json }) => {
            let archive = archive.as_deref().map(parse_archive).transpose()?;
            let store = open()?;
            retention::declare(&store, &config.retention)?;
            retention::apply(&store, archive.as_ref(), dry_run, json)?;
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Gc { dry_run, grace, rescan, json } => {
            let grace = crate::gc::checked_grace(grace.map_or_else(|| config.gc.grace(), Ok)?)?;
            let store = open()?;
            gc_command(&store, crate::gc::GcOptions { grace, dry_run, rescan }, json)
        }
        Command::Takedown(args) => takedown::run(&open()?, args).map(|()| std::process::ExitCode::SUCCESS),
        Command::Verify { json, scrub } => {
            let store = open()?;
            if scrub.is_scrub() {
                return scrub::scrub(store, &scrub, json);
            }
            let report = crate::verify::verify(&store)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                for p in &report.problems {
                    println!("{p}");
                }
                for t in &report.taken_down {
                    println!("{t}");
                }
                eprintln!(
                    "verified {} blobs ({} bytes), {} snapshots, {} entries: {} problem(s), {} blob(s) taken down",
                    report.blobs_checked,
                    report.bytes_hashed,
                    report.snapshots_checked,
                    report.entries_checked,
                    report.problems.len(),
                    report.taken_down.len()
                );
            }
            Ok(if report.problems.is_empty() {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::from(1)
            })
        }
        Command::Migrate { from, to_catalog, to_blobs } => migrate(&from, &data, to_catalog, to_blobs.as_deref()),
        Command::Serve { listen, demo } => {
            let listen = listen.or(config.server.listen).unwrap_or_else(|| "127.0.0.1:8080".parse().expect("valid"));
            let mut options = ServeOptions::default();
            if let Some(s) = config.server.settle_margin_secs {
                options.settle_margin = Duration::from_secs(s);
            }
            if let Some(s) = config.server.short_max_age_secs {
                options.short_max_age = Duration::from_secs(s);
            }
            if let Some(s) = config.server.live_max_age_secs {
                options.live_max_age = Duration::from_secs(s);
            }
            if let Some(b) = config.server.max_blob_bytes {
                options.max_blob_bytes = b;
            }
            if let Some(b) = config.server.max_manifest_bytes {
                options.max_manifest_bytes = b;
            }
            if let Some(s) = config.server.body_timeout_secs {
                options.body_timeout = Duration::from_secs(s);
            }
            if let Some(mb) = config.server.memory_cache_mb {
                options.memory_cache_bytes = mb.saturating_mul(1 << 20);
            }
            options.redirect_downloads_over = config.server.redirect_downloads_over_bytes;
            if let Some(s) = config.server.redirect_ttl_secs {
                options.redirect_ttl = Duration::from_secs(s.max(2));
            }
            apply_connection_limits(&config.server, &mut options)?;
            options.public_url = config.server.public_url.as_deref().map(public_url).transpose()?;
            let mirrors = config.mirror.iter().map(|m| m.to_scheduled()).collect::<anyhow::Result<Vec<_>>>()?;
            let jobs = ScheduledJobs {
                mirrors,
                gc: (crate::gc::checked_grace(config.gc.grace()?)?, config.gc.interval()?),
                retention: config.retention.interval()?,
                scrub: config.scrub.schedule()?,
            };
            crate::http::raise_nofile_limit();
            let store = Store::open(&at, crate::catalog::Reads::Mapped)?;
            retention::declare(&store, &config.retention)?;
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            rt.block_on(serve(store, data, listen, demo, options, jobs))?;
            // A blocking read stuck on a dead disk must not hold the exit past the drain.
            rt.shutdown_timeout(Duration::from_secs(5));
            Ok(std::process::ExitCode::SUCCESS)
        }
    }
}

fn gc_command(store: &Store, opts: crate::gc::GcOptions, json: bool) -> anyhow::Result<std::process::ExitCode> {
    let report = match crate::gc::run(store, opts) {
        Err(e @ crate::gc::GcError::Busy(_)) => {
            eprintln!("asof gc: {e}");
            return Ok(std::process::ExitCode::from(75));
        }
        r => r?,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let verb = if report.dry_run { "would free" } else { "freed" };
        println!(
            "{verb} {} blob(s), {} bytes; examined {} candidate(s): {} referenced again, {} used within the grace period{}{}",
            report.freed_blobs,
            report.freed_bytes,
            report.examined,
            report.referenced,
            report.recently_used,
            if opts.rescan { format!("; rescan found {} new", report.enqueued) } else { String::new() },
            if report.restored > 0 {
                format!("; put back {} blob(s) a killed run had set aside", report.restored)
            } else {
                String::new()
            }
        );
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// `[server] public_url`: an absolute http(s) URL; a trailing `/` is dropped.
fn public_url(url: &str) -> anyhow::Result<String> {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    let host = rest.map(|r| r.split('/').next().unwrap_or(""));
    if host.is_none_or(str::is_empty) || url.contains(['?', '#', ' ']) {
        bail!("[server] public_url must be an http:// or https:// URL without query or fragment, got {url:?}");
    }
    Ok(url.trim_end_matches('/').to_owned())
}

/// `[server]` timeouts, connection cap and rate limits.
fn apply_connection_limits(server: &crate::config::ServerConfig, options: &mut ServeOptions) -> anyhow::Result<()> {
    let secs = |v: Option<u64>, default: Duration, name: &str| -> anyhow::Result<Duration> {
        match v {
            Some(0) => anyhow::bail!("[server] {name} must be at least 1"),
            Some(s) => Ok(Duration::from_secs(s)),
            None => Ok(default),
        }
    };
    options.header_read_timeout =
        secs(server.header_read_timeout_secs, options.header_read_timeout, "header_read_timeout_secs")?;
    options.idle_timeout = secs(server.idle_timeout_secs, options.idle_timeout, "idle_timeout_secs")?;
    options.drain_timeout = secs(server.drain_timeout_secs, options.drain_timeout, "drain_timeout_secs")?;
    if server.max_connections == Some(0) {
        anyhow::bail!("[server] max_connections must be at least 1");
    }
    options.max_connections = server.max_connections.or(options.max_connections);
    if server.threads == Some(0) {
        anyhow::bail!("[server] threads must be at least 1");
    }
    options.event_threads = server.threads.or(options.event_threads);
    server.rate_limits.apply(&mut options.rate_limits)
}

/// The jobs `asof serve` runs on a schedule, from the config file.
struct ScheduledJobs {
    mirrors: Vec<crate::mirror::schedule::ScheduledMirror>,
    /// Grace and interval (`None`: off) of garbage collection.
    gc: (Duration, Option<Duration>),
    /// Interval of retention (`None`: off).
    retention: Option<Duration>,
    /// What each scrub verifies and how often (`None`: off).
    scrub: Option<(crate::scrub::ScrubOptions, Duration)>,
}

async fn serve(
    store: Store,
    data: PathBuf,
    listen: SocketAddr,
    demo: bool,
    options: ServeOptions,
    jobs: ScheduledJobs,
) -> anyhow::Result<()> {
    let ScheduledJobs { mirrors, gc: (gc_grace, gc_interval), retention: retention_interval, scrub } = jobs;
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("listening on {listen}"))?;
    let shutdown = crate::http::shutdown_signal().context("installing signal handlers")?;
    let addr = listener.local_addr()?;
    if demo {
        let (store2, data2) = (store.clone(), data.clone());
        let d = tokio::task::spawn_blocking(move || crate::demo::prepare(&store2, &data2)).await??;
        println!(
            "demo archive '{}' has snapshots {}",
            d.archive,
            d.snapshots.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", ")
        );
        println!("try it with apt (one line in a sources.list; Debian 12's apt 2.6 works):");
        for id in &d.snapshots {
            println!(
                "  deb [signed-by={}] http://{addr}/{}/{id}/ {} main",
                d.keyring.display(),
                d.archive,
                crate::demo::SUITE
            );
        }
        println!("hello-asof is 1.0-1 in the first snapshot and 1.1-1 in the second (`apt-get download hello-asof`)");
        println!(
            "the live path (always the latest snapshot): deb [signed-by={}] http://{addr}/{}/ {} main",
            d.keyring.display(),
            d.archive,
            crate::demo::SUITE
        );
        println!("or browse http://{addr}/{}/", d.archive);
    }
    println!("asof listening on http://{addr}");
    use std::io::Write;
    std::io::stdout().flush()?;
    tracing::info!(%addr, data = %data.display(), "serving");
    let metrics = std::sync::Arc::new(crate::metrics::Metrics::new());
    crate::background::every("token last-use flush", Duration::from_secs(5), store.clone(), |s| {
        s.last_use.flush(s.auth.as_ref())
    });
    crate::background::every("package index backfill", Duration::from_secs(30), store.clone(), |s| {
        crate::packages::index::backfill_all(s)
    });
    crate::background::every(
        "rollout ring advance",
        Duration::from_secs(1),
        store.clone(),
        crate::rollout::service::persist_all,
    );
    if let Some(interval) = gc_interval {
        crate::gc::schedule(store.clone(), gc_grace, interval);
    }
    if let Some(interval) = retention_interval {
        crate::background::every("retention", interval, store.clone(), crate::retention::apply::apply_all);
    }
    if let Some((opts, interval)) = scrub {
        crate::scrub::schedule(store.clone(), opts, interval, metrics.clone());
    }
    if !mirrors.is_empty() {
        tracing::info!(count = mirrors.len(), "scheduling mirrors");
        crate::mirror::schedule::spawn_all(store.clone(), data.clone(), mirrors, metrics.clone());
    }
    crate::http::serve(AppState::with_metrics(store, options, metrics), listener, shutdown).await
}
