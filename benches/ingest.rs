//! Ingest costs: SHA-256 throughput, blob writes (temp file, fsync, rename), and the CPU
//! work of a publish on a 60,000-package suite (content digest, change planning).

use std::time::Duration;

use asof::blob::{BlobStore, LocalBlobStore};
use asof::catalog::ChangeSource;
use asof::domain::digest::Hasher;
use asof::domain::{Digest, RelPath};
use asof::manifest::{Content, ManifestEntry, content_digest};
use asof::publish::plan::MemoryStaged;
use asof::publish::{Mode, PlannedChanges, summarize};
use criterion::{Criterion, Throughput, criterion_group};

fn full() -> bool {
    std::env::args().any(|a| a == "--bench")
}

fn manifest(n: usize, salt: u8) -> Vec<ManifestEntry> {
    (0..n)
        .map(|i| ManifestEntry {
            path: RelPath::new(&format!(
                "pool/main/{}/src{}/pkg{i}_1.0-1_amd64.deb",
                (b'a' + (i % 26) as u8) as char,
                i / 3
            ))
            .unwrap(),
            content: Content::File {
                size: 100_000,
                sha256: Digest::of(&[(i % 251) as u8, (i / 251 % 251) as u8, salt]),
            },
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mb = if full() { 64 } else { 1 };
    let data: Vec<u8> = (0..mb * 1024 * 1024).map(|i| ((i * 2_654_435_761usize) >> 13) as u8).collect();

    let mut g = c.benchmark_group("sha256");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function(format!("{mb}MiB"), |b| {
        b.iter(|| {
            let mut h = Hasher::new();
            for chunk in data.chunks(256 * 1024) {
                h.update(chunk);
            }
            h.finish()
        })
    });
    g.finish();

    let dir = tempfile::tempdir().unwrap();
    let store = LocalBlobStore::open(dir.path()).unwrap();
    let blob = vec![7u8; 100 * 1024];
    let mut g = c.benchmark_group("blob_put");
    g.throughput(Throughput::Bytes(blob.len() as u64));
    let mut n = 0u64;
    g.bench_function("100KiB_new", |b| {
        b.iter(|| {
            // A distinct blob each time: the full temp-file, fsync, rename path.
            n += 1;
            let mut data = blob.clone();
            data[..8].copy_from_slice(&n.to_le_bytes());
            store.blocking().put(&mut data.as_slice(), None, None).unwrap()
        })
    });
    g.bench_function("100KiB_existing", |b| {
        b.iter(|| store.blocking().put(&mut blob.as_slice(), Some(&Digest::of(&blob)), None).unwrap())
    });
    g.finish();

    let n = if full() { 60_000 } else { 600 };
    let before = manifest(n, 0);
    let mut after = before.clone();
    for e in after.iter_mut().step_by(100) {
        e.content = Content::File { size: 100_001, sha256: Digest::of(e.path.as_str().as_bytes()) };
    }
    let mut g = c.benchmark_group("publish_cpu");
    g.sample_size(20);
    g.bench_function(format!("content_digest_{n}"), |b| b.iter(|| content_digest(&after)));
    // Both walks of a plan (summary, then the change stream) against a catalog whose
    // latest snapshot is `before`.
    let tmp = tempfile::tempdir().unwrap();
    let store = asof::store::Store::open_local(tmp.path()).unwrap();
    let archive: asof::domain::ArchiveName = "bench".parse().unwrap();
    let opts = asof::publish::PublishOptions {
        progress: &asof::publish::NoProgress,
        source: serde_json::Value::Null,
        always: true,
    };
    asof::publish::commit_manifest(&store, &archive, before.clone(), &opts).unwrap();
    let latest = store.catalog.latest(&archive).unwrap();
    let staged = MemoryStaged::full(after.clone());
    g.bench_function(format!("plan_1pct_of_{n}"), |b| {
        b.iter(|| {
            let summary = summarize(
                store.catalog.as_ref(),
                &archive,
                latest.as_ref(),
                &staged,
                Mode::Full,
                serde_json::Value::Null,
            )
            .unwrap();
            let changes = PlannedChanges {
                catalog: store.catalog.as_ref(),
                archive: &archive,
                staged: &staged,
                mode: Mode::Full,
                summary: &summary,
            };
            let mut n = 0;
            changes
                .for_each(&mut |_| {
                    n += 1;
                    Ok(())
                })
                .unwrap();
            n
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(5));
    targets = bench
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
