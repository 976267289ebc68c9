//! Deterministic generator of realistic apt archive histories, for benchmarks and tests.
//!
//! [`generate`] writes publish trees `OUT/0000`, `OUT/0001`, … each shaped like a Debian
//! suite (`dists/<codename>/{Release,InRelease}`, `Packages{,.gz,.xz}` per component and
//! architecture, `pool/<component>/<prefix>/<source>/<name>_<version>_<arch>.deb`). The
//! .deb files are real packages (`dpkg-deb --info` and aptly accept them) whose payload is
//! random bytes, sized like a real suite (log-normal, median ≈ 100 KB × `size_scale`).
//! Between publishes a fraction `churn` of the packages is touched (source uploads with
//! new versions, new sources, removed sources), the indices and Release are regenerated
//! with a new Date, and every unchanged pool file is a hard link to the previous tree.
//!
//! Besides the trees, `OUT/summary.json` holds the [`GenSummary`], `OUT/changes/NNNN.tsv`
//! lists, per publish, the pool files added (`add\tPATH`) and removed
//! (`remove\tPACKAGE\tVERSION\tARCH\tPATH`), which is what a repository tool like aptly
//! needs to replay the history, and `OUT/NNNN.changes` lists every path (file or symlink,
//! relative to the tree, one per line, sorted) added, changed or removed since tree
//! NNNN-1: what `asof publish --changes` takes.

mod deb;
mod index;
mod model;
mod rng;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub use deb::write_deb;
pub use model::FileInfo;
pub use rng::{RandomReader, Rng, derive};

use model::{ARCHES, COMPONENTS, Factory, SizeModel, Source};

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenOptions {
    pub out: PathBuf,
    pub seed: u64,
    /// Binary packages in the first publish (≈ 60,000 for a full Debian suite).
    pub packages: usize,
    /// Number of publish trees.
    pub publishes: usize,
    /// Fraction of the packages touched between two publishes (e.g. 0.01).
    pub churn: f64,
    /// Multiplies every payload size (1.0: a real suite's sizes).
    pub size_scale: f64,
    pub suite: String,
    pub codename: String,
    /// xz preset for Packages.xz. Debian uses 6, which takes ~30 s per publish for a full
    /// suite; 1 (the default) takes ~2 s and makes the file ~30% larger.
    pub xz_preset: u32,
}

impl GenOptions {
    pub fn new(out: impl Into<PathBuf>, seed: u64, packages: usize, publishes: usize, churn: f64) -> Self {
        Self {
            out: out.into(),
            seed,
            packages,
            publishes,
            churn,
            size_scale: 1.0,
            suite: "stable".into(),
            codename: "bookworm".into(),
            xz_preset: 1,
        }
    }
}

/// What one publish tree holds and how it differs from the previous one, counted the way
/// `asof publish` counts (files and symlinks, not directories).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishSummary {
    pub index: usize,
    /// Directory name under OUT, e.g. `0003`.
    pub tree: String,
    /// The Release Date.
    pub date: String,
    pub sources: u64,
    pub packages: u64,
    /// Files and symlinks in the tree.
    pub files: u64,
    pub bytes: u64,
    pub pool_files: u64,
    pub pool_bytes: u64,
    /// Paths new in this tree (pool files of new versions and packages; everything at first).
    pub added: u64,
    /// Paths whose content changed (indices, Release, InRelease).
    pub changed: u64,
    /// Paths gone since the previous tree (pool files of old versions and removed packages).
    pub removed: u64,
    /// Bytes of pool files written for this tree (the rest are hard links).
    pub new_pool_bytes: u64,
    pub upgraded_sources: u64,
    pub new_sources: u64,
    pub removed_sources: u64,
    /// Binary packages upgraded, added or removed since the previous tree.
    pub touched_packages: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenSummary {
    pub seed: u64,
    pub churn: f64,
    pub size_scale: f64,
    pub suite: String,
    pub codename: String,
    pub publishes: Vec<PublishSummary>,
}

/// Who a pool file belongs to, for the change lists.
#[derive(Debug, Clone)]
struct PoolRef {
    package: String,
    version: String,
    arch: &'static str,
    info: FileInfo,
}

/// Generates the whole history described by `opts` under `opts.out`.
pub fn generate(opts: &GenOptions) -> anyhow::Result<GenSummary> {
    generate_with_progress(opts, &mut |_| {})
}

/// Like [`generate`], calling `progress` after each publish tree is complete.
pub fn generate_with_progress(
    opts: &GenOptions,
    progress: &mut dyn FnMut(&PublishSummary),
) -> anyhow::Result<GenSummary> {
    if opts.packages == 0 || opts.publishes == 0 {
        bail!("need at least one package and one publish");
    }
    if !(0.0..=1.0).contains(&opts.churn) {
        bail!("churn must be a fraction between 0 and 1");
    }
    if opts.size_scale <= 0.0 || !opts.size_scale.is_finite() {
        bail!("size scale must be positive");
    }
    let first = opts.out.join(tree_name(0));
    if first.exists() {
        bail!("{} already exists: generate into an empty directory", first.display());
    }
    fs::create_dir_all(opts.out.join("changes")).with_context(|| format!("creating {}", opts.out.display()))?;

    let sizes = SizeModel { median: 100_000.0, sigma: 2.0, cap: 400e6, scale: opts.size_scale };
    let mut factory = Factory::new(opts.seed, opts.packages, sizes);
    let mut rng = Rng::new(derive(opts.seed, "history"));
    let mut sources: Vec<Source> = Vec::new();
    let mut binary_names: Vec<String> = Vec::new();
    let mut total = 0;
    while total < opts.packages {
        let s = factory.source(&mut rng, &binary_names);
        binary_names.extend(s.binaries.iter().map(|b| b.name.clone()));
        total += s.binaries.len();
        sources.push(s);
    }

    let base_date = chrono::DateTime::parse_from_rfc3339("2025-06-01T00:00:00Z").expect("valid").to_utc();
    let mut summaries = Vec::with_capacity(opts.publishes);
    let mut prev_pool: BTreeMap<String, PoolRef> = BTreeMap::new();
    let mut prev_meta: BTreeMap<String, FileInfo> = BTreeMap::new();
    for k in 0..opts.publishes {
        let (mut upgraded, mut new_sources, mut removed_sources, mut touched) = (0, 0, 0, 0);
        if k > 0 {
            let target =
                ((opts.churn * total_binaries(&sources) as f64).round() as u64).max(u64::from(opts.churn > 0.0));
            let mut touched_src = vec![false; sources.len()];
            let mut attempts = 0;
            while touched < target && attempts < 100 * target + 100 {
                attempts += 1;
                let r = rng.unit();
                if r < 0.70 {
                    let i = rng.index(touched_src.len());
                    if touched_src[i] {
                        continue;
                    }
                    touched_src[i] = true;
                    factory.upgrade(&mut rng, &mut sources[i]);
                    touched += sources[i].binaries.len() as u64;
                    upgraded += 1;
                } else if r < 0.85 {
                    let s = factory.source(&mut rng, &binary_names);
                    binary_names.extend(s.binaries.iter().map(|b| b.name.clone()));
                    touched += s.binaries.len() as u64;
                    sources.push(s);
                    touched_src.push(true);
                    new_sources += 1;
                } else {
                    let i = rng.index(touched_src.len());
                    if touched_src[i] || sources.len() - removed_sources < 2 {
                        continue;
                    }
                    touched_src[i] = true;
                    touched += sources[i].binaries.len() as u64;
                    sources[i].binaries.clear(); // marks it for removal below
                    removed_sources += 1;
                }
            }
            sources.retain(|s| !s.binaries.is_empty());
        }

        let date = base_date + chrono::Duration::hours(6 * k as i64);
        let mtime = date.timestamp() as u64;
        let tree = opts.out.join(tree_name(k));
        let prev_tree = (k > 0).then(|| opts.out.join(tree_name(k - 1)));

        // Pool: link what the previous tree has, write the rest in parallel.
        let mut to_write = Vec::new();
        let mut pool: BTreeMap<String, PoolRef> = BTreeMap::new();
        let mut dirs = BTreeSet::new();
        for (si, s) in sources.iter().enumerate() {
            dirs.insert(s.pool_dir());
            for (bi, b) in s.binaries.iter().enumerate() {
                let path = s.pool_path(b);
                match prev_pool.get(&path) {
                    Some(r) if b.file.is_some() => {
                        pool.insert(path, r.clone());
                    }
                    _ => to_write.push((si, bi, path)),
                }
            }
        }
        for d in &dirs {
            fs::create_dir_all(tree.join(d)).with_context(|| format!("creating {}", tree.join(d).display()))?;
        }
        if let Some(prev) = &prev_tree {
            for path in pool.keys() {
                fs::hard_link(prev.join(path), tree.join(path))
                    .with_context(|| format!("linking {path} into {}", tree.display()))?;
            }
        }
        let written: Vec<(usize, usize, String, FileInfo)> = to_write
            .into_par_iter()
            .map(|(si, bi, path)| {
                let s = &sources[si];
                let b = &s.binaries[bi];
                let control = index::control_file(s, b);
                let seed = derive(opts.seed, &format!("{}_{}_{}", b.name, s.version.full(), b.arch));
                let info = write_deb(&tree.join(&path), &b.name, &control, b.payload, seed, mtime)
                    .with_context(|| format!("writing {path}"))?;
                Ok((si, bi, path, info))
            })
            .collect::<anyhow::Result<_>>()?;
        let mut new_pool_bytes = 0;
        for (si, bi, path, info) in written {
            new_pool_bytes += info.size;
            let s = &mut sources[si];
            s.binaries[bi].file = Some(info);
            let b = &s.binaries[bi];
            pool.insert(path, PoolRef { package: b.name.clone(), version: s.version.full(), arch: b.arch, info });
        }

        // Indices, Release, InRelease.
        let meta = write_indices(opts, &tree, &sources, date, k)?;

        // What changed, as asof will see it.
        let mut summary = PublishSummary {
            index: k,
            tree: tree_name(k),
            date: date.to_rfc3339(),
            sources: sources.len() as u64,
            packages: total_binaries(&sources),
            files: (pool.len() + meta.len()) as u64,
            bytes: pool.values().map(|r| r.info.size).sum::<u64>() + meta.values().map(|i| i.size).sum::<u64>(),
            pool_files: pool.len() as u64,
            pool_bytes: pool.values().map(|r| r.info.size).sum(),
            added: 0,
            changed: 0,
            removed: 0,
            new_pool_bytes,
            upgraded_sources: upgraded,
            new_sources,
            removed_sources: removed_sources as u64,
            touched_packages: touched,
        };
        let mut changes = String::new();
        let mut changed_paths = BTreeSet::new();
        for (path, r) in &pool {
            match prev_pool.get(path) {
                None => {
                    summary.added += 1;
                    changes.push_str(&format!("add\t{path}\n"));
                    changed_paths.insert(path.as_str());
                }
                Some(old) if old.info != r.info => {
                    summary.changed += 1;
                    changed_paths.insert(path.as_str());
                }
                Some(_) => {}
            }
        }
        for (path, r) in &prev_pool {
            if !pool.contains_key(path) {
                summary.removed += 1;
                changes.push_str(&format!("remove\t{}\t{}\t{}\t{path}\n", r.package, r.version, r.arch));
                changed_paths.insert(path.as_str());
            }
        }
        for (path, info) in &meta {
            match prev_meta.get(path) {
                None => summary.added += 1,
                Some(old) if old != info => summary.changed += 1,
                Some(_) => continue,
            }
            changed_paths.insert(path.as_str());
        }
        for path in prev_meta.keys().filter(|p| !meta.contains_key(*p)) {
            summary.removed += 1;
            changed_paths.insert(path.as_str());
        }
        fs::write(opts.out.join("changes").join(format!("{}.tsv", tree_name(k))), changes)?;
        write_change_list(&opts.out.join(format!("{}.changes", tree_name(k))), &changed_paths)?;
        progress(&summary);
        summaries.push(summary);
        prev_pool = pool;
        prev_meta = meta;
    }

    let summary = GenSummary {
        seed: opts.seed,
        churn: opts.churn,
        size_scale: opts.size_scale,
        suite: opts.suite.clone(),
        codename: opts.codename.clone(),
        publishes: summaries,
    };
    fs::write(opts.out.join("summary.json"), serde_json::to_vec_pretty(&summary)?)?;
    Ok(summary)
}

/// Writes the paths of `changed` one per line (the format of `asof publish --changes`).
fn write_change_list(path: &Path, changed: &BTreeSet<&str>) -> anyhow::Result<()> {
    let mut text = String::with_capacity(changed.iter().map(|p| p.len() + 1).sum());
    for p in changed {
        text.push_str(p);
        text.push('\n');
    }
    fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// The directory name of publish `k` under OUT.
pub fn tree_name(k: usize) -> String {
    format!("{k:04}")
}

fn total_binaries(sources: &[Source]) -> u64 {
    sources.iter().map(|s| s.binaries.len() as u64).sum()
}

/// Writes everything under `dists/`; returns each file's path (relative to the tree) and
/// info. A symlink (`dists/<suite>` → `<codename>`) counts with a zero-size info.
fn write_indices(
    opts: &GenOptions,
    tree: &Path,
    sources: &[Source],
    date: chrono::DateTime<chrono::Utc>,
    k: usize,
) -> anyhow::Result<BTreeMap<String, FileInfo>> {
    let dists = format!("dists/{}", opts.codename);
    let mut groups = Vec::new();
    for component in COMPONENTS {
        for arch in ARCHES {
            groups.push((component, arch));
        }
    }
    // Render and compress each (component, architecture) in parallel.
    let rendered: Vec<Vec<(String, Vec<u8>)>> = groups
        .par_iter()
        .map(|&(component, arch)| {
            let mut members: Vec<(&Source, &model::Binary)> = sources
                .iter()
                .filter(|s| s.component == component)
                .flat_map(|s| s.binaries.iter().map(move |b| (s, b)))
                .filter(|(_, b)| b.arch == arch || (arch != "all" && b.arch == "all"))
                .collect();
            members.sort_by(|a, b| a.1.name.cmp(&b.1.name));
            let mut text = String::with_capacity(members.len() * 700);
            for (s, b) in members {
                index::packages_paragraph(&mut text, s, b, b.file.as_ref().expect("pool file written"));
            }
            let text = text.into_bytes();
            let (gz, xz) = rayon::join(|| gzip(&text), || xz(&text, opts.xz_preset));
            let dir = format!("{component}/binary-{arch}");
            Ok(vec![
                (format!("{dir}/Packages"), text),
                (format!("{dir}/Packages.gz"), gz?),
                (format!("{dir}/Packages.xz"), xz?),
                (format!("{dir}/Release"), index::binary_release(&opts.suite, component, arch).into_bytes()),
            ])
        })
        .collect::<anyhow::Result<_>>()?;

    let mut meta = BTreeMap::new();
    let mut listed = Vec::new();
    for (rel, bytes) in rendered.into_iter().flatten() {
        let path = tree.join(&dists).join(&rel);
        fs::create_dir_all(path.parent().expect("has a parent"))?;
        fs::write(&path, &bytes).with_context(|| format!("writing {}", path.display()))?;
        let info = deb::info_of(&bytes);
        meta.insert(format!("{dists}/{rel}"), info);
        listed.push((rel, info));
    }
    listed.sort_by(|a, b| a.0.cmp(&b.0));
    let fields = index::ReleaseFields {
        suite: &opts.suite,
        codename: &opts.codename,
        date,
        components: &COMPONENTS,
        architectures: &ARCHES,
    };
    let release = index::release(&fields, &listed);
    let mut sig_rng = Rng::new(derive(opts.seed, &format!("signature-{k}")));
    let in_release = index::in_release(&release, &mut sig_rng);
    for (name, text) in [("Release", &release), ("InRelease", &in_release)] {
        let path = tree.join(&dists).join(name);
        fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        meta.insert(format!("{dists}/{name}"), deb::info_of(text.as_bytes()));
    }
    if opts.suite != opts.codename {
        let link = tree.join("dists").join(&opts.suite);
        std::os::unix::fs::symlink(&opts.codename, &link).with_context(|| format!("linking {}", link.display()))?;
        meta.insert(format!("dists/{}", opts.suite), FileInfo { size: 0, sha256: [0; 32], md5: [0; 16] });
    }
    Ok(meta)
}

fn gzip(data: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(Vec::with_capacity(data.len() / 4), flate2::Compression::best());
    enc.write_all(data)?;
    Ok(enc.finish()?)
}

fn xz(data: &[u8], preset: u32) -> anyhow::Result<Vec<u8>> {
    let mut enc = liblzma::write::XzEncoder::new(Vec::with_capacity(data.len() / 6), preset);
    enc.write_all(data)?;
    Ok(enc.finish()?)
}

/// Writes `count` files of `size` random bytes (`blob-000.bin`, …) under `dir`: the data of
/// the hashing and large-file benchmarks.
pub fn write_random_files(dir: &Path, seed: u64, count: usize, size: u64) -> anyhow::Result<Vec<PathBuf>> {
    fs::create_dir_all(dir)?;
    (0..count)
        .into_par_iter()
        .map(|i| {
            let path = dir.join(format!("blob-{i:03}.bin"));
            let mut f = std::io::BufWriter::with_capacity(1 << 20, fs::File::create(&path)?);
            std::io::copy(&mut RandomReader::new(derive(seed, &format!("blob-{i}")), size), &mut f)?;
            f.flush()?;
            Ok(path)
        })
        .collect()
}

/// Pool files (relative paths) of a generated tree, sorted.
pub fn pool_files(tree: &Path) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(tree.join("pool")).sort_by_file_name() {
        let e = e?;
        if e.file_type().is_file() {
            let rel = e.path().strip_prefix(tree)?.to_str().context("non-UTF-8 path")?.to_string();
            out.push(rel);
        }
    }
    Ok(out)
}

/// A set of relative paths, for intersections.
pub fn path_set(paths: &[String]) -> HashSet<&str> {
    paths.iter().map(String::as_str).collect()
}

#[cfg(test)]
mod tests;
