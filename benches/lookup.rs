//! Lookups on a large history: resolving (ID, path) on 1,000 snapshots over 1,000,000 paths,
//! and directory listings of large directories. `cargo bench --bench lookup` builds the
//! catalog once (cached under target/bench-data/) and reports criterion timings plus the
//! p50/p99 of 100,000 random resolves. Under `cargo test` it runs on a tiny catalog.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use asof::blob::LocalBlobStore;
use asof::catalog::{Catalog, Change, CommitPlan, Reads, SnapshotKey, SqliteCatalog};
use asof::domain::{ArchiveName, Digest, RelPath, SnapshotId};
use asof::manifest::{Content, ManifestEntry, implied_dirs};
use asof::resolve::release::ReleaseCache;
use asof::resolve::{Releases, resolve_id, resolve_in_view, resolve_path};
use criterion::{Criterion, criterion_group};

struct Shape {
    paths: usize,
    snapshots: usize,
    churn: usize,
    big_dir: usize,
}

fn shape() -> Shape {
    if std::env::args().any(|a| a == "--bench") {
        Shape { paths: 1_000_000, snapshots: 1_000, churn: 1_000, big_dir: 10_000 }
    } else {
        Shape { paths: 2_000, snapshots: 10, churn: 20, big_dir: 100 }
    }
}

/// A tiny deterministic PRNG (xorshift64*), so the history is the same on every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn digest(rng: &mut Rng) -> Digest {
    let mut b = [0u8; 32];
    for chunk in b.chunks_mut(8) {
        chunk.copy_from_slice(&rng.next().to_le_bytes());
    }
    Digest::from_bytes(b)
}

/// Paths shaped like a Debian pool: 20 files per source directory, plus one huge directory.
fn paths(s: &Shape) -> Vec<RelPath> {
    let mut out = Vec::with_capacity(s.paths);
    for i in 0..s.paths - s.big_dir {
        let src = i / 20;
        let letter = (b'a' + (src % 26) as u8) as char;
        out.push(RelPath::new(&format!("pool/main/{letter}/src{src}/pkg{i}_1.{}-1_amd64.deb", i % 7)).unwrap());
    }
    for i in 0..s.big_dir {
        out.push(RelPath::new(&format!("dists/big/by-name/file{i:06}")).unwrap());
    }
    out
}

fn build(db: &Path, s: &Shape) -> anyhow::Result<()> {
    let catalog = SqliteCatalog::open(db, Reads::Mapped)?;
    let archive: ArchiveName = "bench".parse()?;
    let mut rng = Rng(0x5eed);
    let paths = paths(s);
    let mut current: Vec<Content> =
        paths.iter().map(|_| Content::File { size: 100_000, sha256: digest(&mut rng) }).collect();
    let mut upserts: Vec<ManifestEntry> =
        paths.iter().zip(&current).map(|(p, c)| ManifestEntry { path: p.clone(), content: c.clone() }).collect();
    upserts.extend(
        implied_dirs(&paths)
            .into_iter()
            .map(|d| ManifestEntry { path: RelPath::new(&d).unwrap(), content: Content::Dir }),
    );
    let plan = |base_seq, changed| CommitPlan {
        base_seq,
        digest: Digest::of(b"bench"),
        files: s.paths as u64,
        bytes: 100_000 * s.paths as u64,
        added: 0,
        changed,
        removed: 0,
        source: serde_json::json!({"method": "bench"}),
    };
    let started = Instant::now();
    let upserts: Vec<Change> = upserts.into_iter().map(Change::Upsert).collect();
    catalog.commit(&archive, &plan(0, 0), &upserts)?;
    eprintln!("built snapshot 1 ({} paths) in {:.1?}", s.paths, started.elapsed());
    for seq in 1..s.snapshots as u64 {
        let mut ups = Vec::with_capacity(s.churn);
        let mut seen = std::collections::HashSet::new();
        while ups.len() < s.churn {
            let i = rng.below(paths.len());
            if seen.insert(i) {
                current[i] = Content::File { size: 100_000, sha256: digest(&mut rng) };
                ups.push(Change::Upsert(ManifestEntry { path: paths[i].clone(), content: current[i].clone() }));
            }
        }
        catalog.commit(&archive, &plan(seq, s.churn as u64), &ups)?;
    }
    eprintln!("built {} snapshots in {:.1?}", s.snapshots, started.elapsed());
    Ok(())
}

/// How the bench reads the catalog: `ASOF_LOOKUP_READS=buffered` measures what commands
/// use (`Reads::Buffered`); the default is the server's memory map.
fn reads() -> Reads {
    match std::env::var("ASOF_LOOKUP_READS").as_deref() {
        Ok("buffered") => Reads::Buffered,
        _ => Reads::Mapped,
    }
}

fn catalog(s: &Shape) -> (SqliteCatalog, PathBuf) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("lookup-{}x{}", s.snapshots, s.paths));
    let db = dir.join("asof.db");
    let done = dir.join("complete");
    // A cache left by an older build whose schema this one cannot open is built again.
    if done.exists()
        && let Ok(catalog) = SqliteCatalog::open(&db, reads())
    {
        return (catalog, dir);
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    build(&db, s).unwrap();
    std::fs::write(&done, "").unwrap();
    (SqliteCatalog::open(&db, reads()).unwrap(), dir)
}

fn bench(c: &mut Criterion) {
    let s = shape();
    let (catalog, _dir) = catalog(&s);
    let archive: ArchiveName = "bench".parse().unwrap();
    let snaps = catalog.snapshots(&archive, &Default::default()).unwrap();
    assert_eq!(snaps.len(), s.snapshots);
    let ids: Vec<SnapshotId> = snaps.iter().map(|s| s.id).collect();
    let paths = paths(&s);
    let now = SnapshotId::from_unix(ids[ids.len() - 1].unix() + 10).unwrap();
    let mut rng = Rng(42);

    // Exact and non-exact IDs alike: all IDs between the first and the latest.
    let random_query = |rng: &mut Rng| {
        let span = (ids[ids.len() - 1].unix() - ids[0].unix()) as usize + 1;
        let id = SnapshotId::from_unix(ids[0].unix() + rng.below(span) as i64).unwrap();
        (id, paths[rng.below(paths.len())].clone())
    };
    // Plain paths never read a Release: an empty blob store will do.
    let blob_dir = tempfile::tempdir().unwrap();
    let (blobs, cache) = (LocalBlobStore::open(blob_dir.path().join("blobs")).unwrap(), ReleaseCache::default());
    let releases = Releases { blobs: &blobs, cache: &cache };
    let resolve_one = |id: SnapshotId, path: &RelPath| {
        let res = resolve_id(&catalog, &archive, id, now).unwrap();
        resolve_path(&catalog, releases, res.snapshot.key, path).unwrap().expect("every path exists in every snapshot")
    };

    // Latency distribution, as a server sees it (one request = one resolve): a first pass
    // on cold caches, then the steady state.
    let samples = if s.paths > 10_000 { 100_000 } else { 1_000 };
    for pass in ["cold", "warm"] {
        let lat: Vec<Duration> = (0..samples)
            .map(|_| {
                let (id, p) = random_query(&mut rng);
                let t = Instant::now();
                std::hint::black_box(resolve_one(id, &p));
                t.elapsed()
            })
            .collect();
        report(
            &format!(
                "resolve (ID, path) on {} snapshots x {} paths, {samples} random queries ({pass})",
                s.snapshots, s.paths
            ),
            lat,
        );
    }

    // A server's common case in one catalog read: `Catalog::read_file` reads the view and the
    // entry in one transaction on one pooled connection.
    let lat: Vec<Duration> = (0..samples)
        .map(|_| {
            let (id, p) = random_query(&mut rng);
            let t = Instant::now();
            let read = catalog.read_file(&archive, Some(id), &p).unwrap();
            let res = resolve_in_view(read.view, &archive, id, now).unwrap();
            assert!(
                read.entry.is_some_and(|e| matches!(e.content, Content::File { .. })),
                "{p} in {}",
                res.snapshot.id
            );
            t.elapsed()
        })
        .collect();
    report(&format!("read_file (ID, path), one transaction, {samples} random queries"), lat);

    c.bench_function("resolve_id_and_path", |b| {
        b.iter_batched(|| random_query(&mut rng), |(id, p)| resolve_one(id, &p), criterion::BatchSize::SmallInput)
    });
    let latest = snaps[snaps.len() - 1].key;
    let key_first = SnapshotKey { seq: 1, ..latest };
    c.bench_function("list_dir_20_entries", |b| b.iter(|| catalog.children(latest, "pool/main/a/src0").unwrap()));
    c.bench_function(&format!("list_dir_{}_entries_latest", s.big_dir), |b| {
        b.iter(|| catalog.children(latest, "dists/big/by-name").unwrap())
    });
    c.bench_function(&format!("list_dir_{}_entries_first", s.big_dir), |b| {
        b.iter(|| catalog.children(key_first, "dists/big/by-name").unwrap())
    });
}

/// Prints the median, 99th percentile and maximum of a latency sample.
fn report(label: &str, mut lat: Vec<Duration>) {
    lat.sort();
    let n = lat.len();
    eprintln!("{label}: p50 {:?}, p99 {:?}, max {:?}", lat[n / 2], lat[n * 99 / 100], lat[n - 1]);
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50).measurement_time(Duration::from_secs(5));
    targets = bench
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
