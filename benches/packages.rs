//! Cost of the package index (issue 9): what indexing adds to each publish of a generated
//! Debian-shaped history (time, and database bytes per changed package), the time of a
//! package diff 20 publishes apart and of `first_satisfying`, the p50/p99 of the work behind
//! `GET .../first?version=` on 1,000 snapshots, and the backfill rate. `cargo bench --bench
//! packages` runs the full size (60,000 packages × 21 publishes at 1% churn); under
//! `cargo test` it runs on ~2,000 packages × 5 publishes, as a smoke test.
//!
//! How indexing is separated from the rest of a publish: every tree is published with the
//! library exactly as `asof publish` does (indexing included, in line), timing each publish.
//! Then the package rows and the index state are deleted and `index_archive` indexes the
//! same snapshots again, in the same order, each in its own transaction: the time between
//! its progress callbacks is the in-line indexing cost of that publish (the same code on
//! the same rows and blobs), and the whole run is the backfill rate.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use asof::benchgen::{GenOptions, generate, tree_name};
use asof::domain::{ArchiveName, RelPath};
use asof::manifest::{Content, ManifestEntry};
use asof::packages::index::index_archive;
use asof::packages::query::{self, DiffFilter, SeqIds};
use asof::packages::version::Constraint;
use asof::publish::{NoProgress, PublishOptions, commit_manifest, publish_dir_cached};
use asof::store::{Store, db_path};
use criterion::{Criterion, criterion_group};
use rusqlite::Connection;

fn full() -> bool {
    std::env::args().any(|a| a == "--bench")
}

struct Shape {
    packages: usize,
    publishes: usize,
    /// The synthetic history for the `first?version=` latency.
    snapshots: usize,
    synthetic_packages: usize,
    upgrades_per_snapshot: usize,
    queries: usize,
}

fn shape() -> Shape {
    if full() {
        Shape {
            packages: 60_000,
            publishes: 21,
            snapshots: 1_000,
            synthetic_packages: 2_000,
            upgrades_per_snapshot: 10,
            queries: 10_000,
        }
    } else {
        Shape {
            packages: 2_000,
            publishes: 5,
            snapshots: 50,
            synthetic_packages: 200,
            upgrades_per_snapshot: 5,
            queries: 1_000,
        }
    }
}

/// The package index's share of the database: pages of the `packages` table and its
/// indexes (dbstat counts allocated pages, so growth is page-granular per publish).
fn package_bytes(conn: &Connection) -> u64 {
    conn.query_row(
        "SELECT COALESCE(SUM(pgsize), 0) FROM dbstat WHERE name = 'packages' OR name LIKE 'packages\\_%' ESCAPE '\\'",
        [],
        |r| r.get::<_, i64>(0),
    )
    .unwrap() as u64
}

fn package_rows(conn: &Connection) -> u64 {
    conn.query_row("SELECT COUNT(*) FROM packages", [], |r| r.get::<_, i64>(0)).unwrap() as u64
}

fn archive_id(store: &Store, archive: &ArchiveName) -> i64 {
    store.packages.index_progress(archive).unwrap().expect("archive exists").archive_id
}

/// One publish of the generated history, as measured.
struct Publish {
    seq: u64,
    wall: Duration,
    changed_paths: u64,
    changed_packages: u64,
    rows: u64,
    bytes: u64,
}

/// Publishes every generated tree, recording time and package-index growth per publish.
fn publish_history(store: &Store, archive: &ArchiveName, gen_dir: &Path, data: &Path, s: &Shape) -> Vec<Publish> {
    let conn = Connection::open(db_path(data)).unwrap();
    let opts = PublishOptions { progress: &NoProgress, source: serde_json::json!({"method": "bench"}), always: false };
    let cache = data.join("stat-cache");
    let mut out: Vec<Publish> = Vec::new();
    for k in 0..s.publishes {
        let tree = gen_dir.join(tree_name(k));
        let started = Instant::now();
        let report = publish_dir_cached(store, archive, &tree, &opts, Some(&cache)).unwrap();
        let wall = started.elapsed();
        let seq = k as u64 + 1;
        let id = archive_id(store, archive);
        let changed_packages = if seq == 1 {
            0
        } else {
            query::diff(store, id, seq - 1, seq, &DiffFilter::default()).unwrap().len() as u64
        };
        out.push(Publish {
            seq,
            wall,
            changed_paths: report.added + report.changed + report.removed,
            changed_packages,
            rows: package_rows(&conn),
            bytes: package_bytes(&conn),
        });
    }
    out
}

/// Lines and paragraphs of the uncompressed Packages files of tree `k` that differ from
/// tree `k - 1`: what indexing snapshot `k + 1` reads.
fn index_lines_read(gen_dir: &Path, k: usize) -> (u64, u64) {
    let mut lines = 0;
    let mut paragraphs = 0;
    let dists = gen_dir.join(tree_name(k)).join("dists");
    for e in walkdir::WalkDir::new(&dists).into_iter().map(Result::unwrap) {
        if e.file_name() != "Packages" {
            continue;
        }
        let text = std::fs::read(e.path()).unwrap();
        let rel = e.path().strip_prefix(gen_dir.join(tree_name(k))).unwrap();
        if k > 0 && std::fs::read(gen_dir.join(tree_name(k - 1)).join(rel)).is_ok_and(|prev| prev == text) {
            continue;
        }
        lines += text.iter().filter(|&&b| b == b'\n').count() as u64;
        paragraphs += text.windows(9).filter(|w| *w == b"Package: ").count() as u64;
    }
    (lines, paragraphs)
}

/// Deletes the package index and indexes every snapshot again; the duration of each.
fn reindex(store: &Store, archive: &ArchiveName, data: &Path) -> (Vec<Duration>, u64) {
    let conn = Connection::open(db_path(data)).unwrap();
    conn.execute_batch("DELETE FROM packages; DELETE FROM package_index_state; DELETE FROM package_index_problems;")
        .unwrap();
    let mut times = Vec::new();
    let started = Instant::now();
    let mut last = started;
    let report = index_archive(store, archive, &mut |_, _| {
        let now = Instant::now();
        times.push(now - last);
        last = now;
    })
    .unwrap();
    assert_eq!(report.problems, 0, "every generated index is readable");
    (times, report.inserted)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Item 1 and 4: publish cost of the index and the backfill rate.
fn publish_costs(store: &Store, archive: &ArchiveName, gen_dir: &Path, data: &Path, s: &Shape) -> Vec<Publish> {
    let pubs = publish_history(store, archive, gen_dir, data, s);
    let rows_before = pubs.last().unwrap().rows;
    let (index_times, inserted) = reindex(store, archive, data);
    assert_eq!(index_times.len(), s.publishes);
    let conn = Connection::open(db_path(data)).unwrap();
    assert_eq!(package_rows(&conn), rows_before, "indexing again gives the same rows");
    assert_eq!(inserted, rows_before);

    eprintln!(
        "publish  wall_ms  index_ms  index/rest  changed_paths  changed_pkgs  new_rows  index_bytes  B/changed_pkg"
    );
    let (mut ratios, mut per_pkg) = (Vec::new(), Vec::new());
    let (mut grown, mut changed) = (0, 0);
    for (i, p) in pubs.iter().enumerate() {
        let idx = index_times[i];
        let ratio = ms(idx) / (ms(p.wall) - ms(idx));
        let (d_rows, d_bytes) = match i {
            0 => (p.rows, p.bytes),
            _ => (p.rows - pubs[i - 1].rows, p.bytes - pubs[i - 1].bytes),
        };
        let b_per = if p.changed_packages > 0 { d_bytes as f64 / p.changed_packages as f64 } else { f64::NAN };
        eprintln!(
            "{:>7}  {:>7.0}  {:>8.1}  {:>9.1}%  {:>13}  {:>12}  {:>8}  {:>11}  {:>13.0}",
            p.seq,
            ms(p.wall),
            ms(idx),
            ratio * 100.0,
            p.changed_paths,
            p.changed_packages,
            d_rows,
            p.bytes,
            b_per
        );
        if i > 0 {
            ratios.push(ratio * 100.0);
            per_pkg.push(b_per);
            grown += d_bytes;
            changed += p.changed_packages;
        }
    }
    eprintln!(
        "after churn (publishes 2..{}): indexing adds median {:.1}% (max {:.1}%) to the rest of a publish; \
         package index grows {:.0} B per changed package overall (per publish: median {:.0} B, max {:.0} B)",
        s.publishes,
        median(ratios.clone()),
        ratios.iter().cloned().fold(f64::MIN, f64::max),
        grown as f64 / changed as f64,
        median(per_pkg.clone()),
        per_pkg.iter().cloned().fold(f64::MIN, f64::max),
    );

    let total: Duration = index_times.iter().sum();
    let (mut lines, mut paragraphs) = (0, 0);
    for k in 0..s.publishes {
        let (l, p) = index_lines_read(gen_dir, k);
        lines += l;
        paragraphs += p;
    }
    let (first_lines, first_pars) = index_lines_read(gen_dir, 0);
    eprintln!(
        "backfill of snapshot 1: {} rows in {:.2?}: {:.0} packages/s, {:.0} index lines/s ({} paragraphs, {} lines)",
        pubs[0].rows,
        index_times[0],
        pubs[0].rows as f64 / index_times[0].as_secs_f64(),
        first_lines as f64 / index_times[0].as_secs_f64(),
        first_pars,
        first_lines
    );
    eprintln!(
        "backfill of all {} snapshots: {} rows in {:.2?}: {:.0} rows inserted/s, {:.0} packages read/s, {:.0} index lines read/s",
        s.publishes,
        inserted,
        total,
        inserted as f64 / total.as_secs_f64(),
        paragraphs as f64 / total.as_secs_f64(),
        lines as f64 / total.as_secs_f64(),
    );
    pubs
}

/// A history of `s.snapshots` small commits: four Packages indices over
/// `s.synthetic_packages` packages, `s.upgrades_per_snapshot` random upgrades per commit.
fn synthetic_history(store: &Store, archive: &ArchiveName, s: &Shape) -> Vec<u32> {
    let mut rng = asof::benchgen::Rng::new(7);
    let mut versions = vec![0u32; s.synthetic_packages];
    let opts = PublishOptions { progress: &NoProgress, source: serde_json::json!({"method": "bench"}), always: false };
    let components = 4;
    for seq in 0..s.snapshots {
        if seq > 0 {
            for _ in 0..s.upgrades_per_snapshot {
                versions[rng.below(s.synthetic_packages as u64) as usize] += 1;
            }
        }
        let mut manifest = Vec::new();
        for c in 0..components {
            let mut text = String::new();
            for (i, v) in versions.iter().enumerate().filter(|(i, _)| i % components == c) {
                text.push_str(&format!(
                    "Package: pkg{i:05}\nVersion: 1.{v}-1\nArchitecture: amd64\n\
                     Filename: pool/c{c}/p/pkg{i:05}/pkg{i:05}_1.{v}-1_amd64.deb\nSize: {}\n\n",
                    1000 + i
                ));
            }
            let put = store.blobs.blocking().put(&mut text.as_bytes(), None, None).unwrap();
            manifest.push(ManifestEntry {
                path: RelPath::new(&format!("dists/stable/c{c}/binary-amd64/Packages")).unwrap(),
                content: Content::File { size: put.size, sha256: put.digest },
            });
        }
        commit_manifest(store, archive, manifest, &opts).unwrap();
    }
    versions
}

/// Item 3: the blocking work behind `GET /<archive>/packages/<name>/first?version=`.
fn first_latency(s: &Shape) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let store = Store::open_local(dir.path()).unwrap();
    let archive: ArchiveName = "synthetic".parse().unwrap();
    let started = Instant::now();
    let versions = synthetic_history(&store, &archive, s);
    eprintln!(
        "built {} snapshots of {} packages ({} upgrades each) in {:.1?}",
        s.snapshots,
        s.synthetic_packages,
        s.upgrades_per_snapshot,
        started.elapsed()
    );
    let mut rng = asof::benchgen::Rng::new(11);
    let mut lat = Vec::with_capacity(s.queries);
    let mut found = 0;
    for _ in 0..s.queries {
        let i = rng.below(s.synthetic_packages as u64) as usize;
        let v = rng.below(versions[i] as u64 + 1);
        let (name, constraint): (String, Constraint) = (format!("pkg{i:05}"), format!(">=1.{v}-1").parse().unwrap());
        let t = Instant::now();
        let latest = store.catalog.latest(&archive).unwrap().unwrap();
        let p = store.packages.index_progress(&archive).unwrap().unwrap();
        assert_eq!(p.indexed_seq, latest.key.seq);
        let hit = query::first_satisfying(&store, p.archive_id, &name, &constraint, &DiffFilter::default()).unwrap();
        if let Some((seq, _)) = hit {
            std::hint::black_box(
                SeqIds::new(&store, p.archive_id).id(seq, asof::packages::store::Toward::Later).unwrap(),
            );
            found += 1;
        }
        lat.push(t.elapsed());
    }
    assert_eq!(found, s.queries, "every asked version exists");
    lat.sort();
    let n = lat.len();
    eprintln!(
        "first?version= on {} snapshots, {} random queries: p50 {:?}, p99 {:?}, max {:?}",
        s.snapshots,
        n,
        lat[n / 2],
        lat[n * 99 / 100],
        lat[n - 1]
    );
}

fn bench(c: &mut Criterion) {
    let s = shape();
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let gen_dir: PathBuf = work.path().join("gen");
    let data = work.path().join("data");
    let mut gen_opts = GenOptions::new(&gen_dir, 1, s.packages, s.publishes, 0.01);
    gen_opts.size_scale = 0.01;
    let started = Instant::now();
    generate(&gen_opts).unwrap();
    eprintln!("generated {} × {} publishes in {:.1?}", s.packages, s.publishes, started.elapsed());
    let store = Store::open_local(&data).unwrap();
    let archive: ArchiveName = "bench".parse().unwrap();

    let pubs = publish_costs(&store, &archive, &gen_dir, &data, &s);
    let id = archive_id(&store, &archive);
    let last = pubs.last().unwrap().seq;

    // A package upgraded in the middle of the history, and its new version.
    let mid = last / 2 + 1;
    let upgraded = query::diff(&store, id, mid - 1, mid, &DiffFilter::default())
        .unwrap()
        .into_iter()
        .find(|ch| ch.change == query::ChangeKind::Upgraded)
        .expect("some package is upgraded in every publish");
    let constraint: Constraint = format!(">={}", upgraded.new_version.as_deref().unwrap()).parse().unwrap();
    let hit = query::first_satisfying(&store, id, &upgraded.name, &constraint, &DiffFilter::default()).unwrap();
    assert_eq!(hit.map(|(seq, _)| seq), Some(mid), "{} {constraint} first appears in #{mid}", upgraded.name);

    let changes = query::diff(&store, id, 1, last, &DiffFilter::default()).unwrap().len();
    eprintln!("diff #1..#{last}: {changes} package changes; first_satisfying asks for {} {constraint}", upgraded.name);
    cpu_and_wall(&format!("diff #1..#{last}"), || query::diff(&store, id, 1, last, &DiffFilter::default()).unwrap());
    c.bench_function(&format!("diff_1_to_{last}"), |b| {
        b.iter(|| query::diff(&store, id, 1, last, &DiffFilter::default()).unwrap())
    });
    c.bench_function("first_satisfying_mid_history_upgrade", |b| {
        b.iter(|| query::first_satisfying(&store, id, &upgraded.name, &constraint, &DiffFilter::default()).unwrap())
    });
    drop(store);
    drop(work);

    first_latency(&s);
}

/// Median wall and thread-CPU time of 20 calls: on a machine shared with other work the
/// CPU time is the steadier figure (wall time stretches with the load average).
fn cpu_and_wall<T>(what: &str, mut f: impl FnMut() -> T) {
    use rustix::time::{ClockId, clock_gettime};
    let cpu = || {
        let t = clock_gettime(ClockId::ThreadCPUTime);
        Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
    };
    let (mut walls, mut cpus) = (Vec::new(), Vec::new());
    for _ in 0..20 {
        let (w, c) = (Instant::now(), cpu());
        std::hint::black_box(f());
        walls.push(ms(w.elapsed()));
        cpus.push(ms(cpu() - c));
    }
    eprintln!("{what}: median wall {:.1} ms, median thread CPU {:.1} ms (20 calls)", median(walls), median(cpus));
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(3));
    targets = bench
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
