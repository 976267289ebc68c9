//! `asof-bench`: tools for benchmarking asof. `gen` writes a deterministic, realistic apt
//! archive history (see `asof::benchgen`); the other commands prepare inputs for
//! benches/run.sh.

use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

use asof::benchgen::{self, GenOptions, Rng, derive};
use asof::domain::SnapshotId;
use asof::wire::SnapshotJson;

#[derive(Parser)]
#[command(name = "asof-bench", about = "Benchmark helpers for asof")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Generate a history of publish trees OUT/0000, OUT/0001, … (plus OUT/summary.json,
    /// OUT/changes/NNNN.tsv for aptly and OUT/NNNN.changes for `asof publish --changes`).
    Gen {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Binary packages in the first publish (≈ 60,000 for a full Debian suite).
        #[arg(long, default_value_t = 60_000)]
        packages: usize,
        #[arg(long, default_value_t = 21)]
        publishes: usize,
        /// Fraction of packages touched between publishes.
        #[arg(long, default_value_t = 0.01)]
        churn: f64,
        /// Multiplies every package size (median .deb ≈ 100 KB at 1.0).
        #[arg(long, default_value_t = 1.0)]
        size_scale: f64,
        /// xz preset for Packages.xz (Debian uses 6, ~15x slower to generate than 1).
        #[arg(long, default_value_t = 1)]
        xz_preset: u32,
        #[arg(long, default_value = "stable")]
        suite: String,
        #[arg(long, default_value = "bookworm")]
        codename: String,
    },
    /// Write COUNT files of SIZE random bytes under OUT (hashing and large-file benchmarks).
    Files {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long)]
        count: usize,
        /// Bytes per file; K, M and G suffixes (powers of 1024) are accepted.
        #[arg(long, value_parser = parse_size)]
        size: u64,
    },
    /// Build the request lists of the apt-like mix: random pool paths over many snapshot IDs,
    /// exact and non-exact, for asof, and the same relative paths for a plain web server
    /// whose root is the last tree.
    Requests {
        /// The generator's output directory.
        #[arg(long)]
        r#gen: PathBuf,
        /// Output of `asof snapshots ARCHIVE --json` for the archive the trees were published to.
        #[arg(long)]
        snapshots: PathBuf,
        #[arg(long)]
        archive: String,
        #[arg(long, default_value_t = 20_000)]
        count: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long)]
        asof_out: PathBuf,
        #[arg(long)]
        plain_out: PathBuf,
    },
    /// Print a TCP port on 127.0.0.1 that is free right now.
    FreePort,
}

fn parse_size(s: &str) -> Result<u64, String> {
    let (num, mult) = match s.chars().last() {
        Some('K' | 'k') => (&s[..s.len() - 1], 1u64 << 10),
        Some('M' | 'm') => (&s[..s.len() - 1], 1 << 20),
        Some('G' | 'g') => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>().map(|n| n * mult).map_err(|e| format!("bad size '{s}': {e}"))
}

fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("asof-bench: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Cmd::Gen { out, seed, packages, publishes, churn, size_scale, xz_preset, suite, codename } => {
            let mut opts = GenOptions::new(out, seed, packages, publishes, churn);
            opts.size_scale = size_scale;
            opts.xz_preset = xz_preset;
            opts.suite = suite;
            opts.codename = codename;
            let started = Instant::now();
            let mut last = Instant::now();
            let summary = benchgen::generate_with_progress(&opts, &mut |p| {
                eprintln!(
                    "{}: {} packages, {} files, {:.1} MB; +{} ~{} -{} ({} packages touched), {:.1} MB new, {:.1}s",
                    p.tree,
                    p.packages,
                    p.files,
                    p.bytes as f64 / 1e6,
                    p.added,
                    p.changed,
                    p.removed,
                    p.touched_packages,
                    p.new_pool_bytes as f64 / 1e6,
                    last.elapsed().as_secs_f64()
                );
                last = Instant::now();
            })?;
            let written: u64 = summary.publishes.iter().map(|p| p.new_pool_bytes).sum();
            eprintln!(
                "generated {} publishes in {:.1}s ({:.1} MB of pool files written)",
                summary.publishes.len(),
                started.elapsed().as_secs_f64(),
                written as f64 / 1e6
            );
            Ok(())
        }
        Cmd::Files { out, seed, count, size } => {
            for p in benchgen::write_random_files(&out, seed, count, size)? {
                println!("{}", p.display());
            }
            Ok(())
        }
        Cmd::Requests { r#gen, snapshots, archive, count, seed, asof_out, plain_out } => {
            requests(&r#gen, &snapshots, &archive, count, seed, &asof_out, &plain_out)
        }
        Cmd::FreePort => {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            println!("{}", l.local_addr()?.port());
            Ok(())
        }
    }
}

fn requests(
    r#gen: &std::path::Path,
    snapshots: &std::path::Path,
    archive: &str,
    count: usize,
    seed: u64,
    asof_out: &std::path::Path,
    plain_out: &std::path::Path,
) -> anyhow::Result<()> {
    let snaps: Vec<SnapshotJson> =
        serde_json::from_slice(&std::fs::read(snapshots).with_context(|| format!("reading {}", snapshots.display()))?)?;
    // The tree each snapshot was published from (`asof publish` records its directory name).
    let mut published: Vec<(SnapshotId, PathBuf)> = Vec::new();
    for s in &snaps {
        let tree = s.source.get("tree").and_then(|t| t.as_str()).context("snapshot without a tree name")?;
        published.push((s.id, r#gen.join(tree)));
    }
    if published.is_empty() {
        bail!("no snapshots in {}", snapshots.display());
    }
    published.sort_by_key(|p| p.0);
    let last_tree = benchgen::pool_files(&published.last().expect("non-empty").1)?;
    let last_set: HashSet<&str> = benchgen::path_set(&last_tree);
    // Per snapshot: its pool paths that the last tree also has (so that both servers
    // answer 200 with the same bytes).
    let mut candidates = Vec::new();
    for (_, tree) in &published {
        let files = benchgen::pool_files(tree)?;
        candidates.push(files.into_iter().filter(|p| last_set.contains(p.as_str())).collect::<Vec<_>>());
    }
    let now = SnapshotId::now().unix();
    let mut rng = Rng::new(derive(seed, "requests"));
    let (mut exact, mut between, mut after) = (0u64, 0u64, 0u64);
    let mut a = std::io::BufWriter::new(std::fs::File::create(asof_out)?);
    let mut p = std::io::BufWriter::new(std::fs::File::create(plain_out)?);
    for _ in 0..count {
        let i = rng.index(published.len());
        if candidates[i].is_empty() {
            continue;
        }
        let path = rng.pick(&candidates[i]);
        let id = published[i].0.unix();
        let next = published.get(i + 1).map(|n| n.0.unix());
        let t = match next {
            // Strictly between this publish and the next one: resolves to this one.
            Some(n) if n - id > 1 && rng.chance(0.5) => {
                between += 1;
                id + rng.range(1, (n - id - 1) as u64) as i64
            }
            // A few seconds after the latest: resolves to it (short cache lifetime).
            None if rng.chance(0.5) && id + 5 < now => {
                after += 1;
                id + rng.range(1, 5) as i64
            }
            _ => {
                exact += 1;
                id
            }
        };
        let t = SnapshotId::from_unix(t)?;
        writeln!(a, "/{archive}/{t}/{path}")?;
        writeln!(p, "/{path}")?;
    }
    a.flush()?;
    p.flush()?;
    println!(
        "{}",
        serde_json::json!({
            "snapshots": published.len(),
            "requests": exact + between + after,
            "exact_ids": exact,
            "ids_between_publishes": between,
            "ids_after_latest": after,
        })
    );
    Ok(())
}
