//! Remembers the digest of each file a publish hashed, keyed by (device, inode) with its
//! size and mtime, so the next publish of a mostly unchanged tree reads only what changed.
//! (ctime cannot be part of the key: making a hard link, as archive tools and the
//! benchmark generator do between publish trees, changes it.) An entry is trusted only if
//! the file's mtime is older than the cache itself by a margin, as git does against
//! "racy" writes; a file rewritten in place with the same size and a restored mtime would
//! fool it, which is what `asof publish --rehash` is for.
//!
//! A publish writes the cache as it goes (`CacheWriter`) and a load keeps the records in one
//! sorted vector (72 bytes of payload per file, no hash table), so that a tree of a million
//! files costs tens of megabytes, not hundreds.

use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::domain::Digest;

const MAGIC: &[u8; 16] = b"asof-statcache01";
const RECORD: usize = 8 + 8 + 8 + 16 + 32;
/// Files modified this close to the cache's writing are hashed again.
const RACY_NS: i128 = 2_000_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
}

impl Stat {
    pub fn size(&self) -> u64 {
        self.size
    }

    /// From an `lstat` taken without following symlinks (see `publish::tree`).
    pub fn of_raw(st: &rustix::fs::Stat) -> Self {
        Self {
            dev: st.st_dev,
            ino: st.st_ino,
            size: st.st_size as u64,
            mtime_ns: st.st_mtime as i128 * 1_000_000_000 + st.st_mtime_nsec as i128,
        }
    }

    pub fn of(m: &std::fs::Metadata) -> Self {
        Self {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime_ns: m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128,
        }
    }
}

#[derive(Default)]
pub struct StatCache {
    written_ns: i128,
    /// Sorted by (dev, ino).
    entries: Vec<(Stat, Digest)>,
}

impl StatCache {
    /// Loads a cache; anything unreadable is an empty cache (it is only an optimisation).
    pub fn load(path: &Path) -> Self {
        Self::read(path).unwrap_or_default()
    }

    fn read(path: &Path) -> Option<Self> {
        let f = std::fs::File::open(path).ok()?;
        let records = (f.metadata().ok()?.len().checked_sub(32)? / RECORD as u64) as usize;
        let mut r = BufReader::with_capacity(1 << 16, f);
        let mut header = [0u8; 32];
        r.read_exact(&mut header).ok()?;
        if &header[..16] != MAGIC {
            return None;
        }
        let written_ns = i128::from_le_bytes(header[16..32].try_into().expect("16 bytes"));
        let mut entries = Vec::with_capacity(records);
        let mut rec = [0u8; RECORD];
        for _ in 0..records {
            r.read_exact(&mut rec).ok()?;
            let u = |i: usize| u64::from_le_bytes(rec[i..i + 8].try_into().expect("8 bytes"));
            let mtime_ns = i128::from_le_bytes(rec[24..40].try_into().expect("16 bytes"));
            let digest = Digest::from_slice(&rec[40..72]).expect("32 bytes");
            entries.push((Stat { dev: u(0), ino: u(8), size: u(16), mtime_ns }, digest));
        }
        entries.sort_unstable_by_key(|(s, _)| (s.dev, s.ino));
        Some(Self { written_ns, entries })
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The digest recorded for this exact file state, if it can be trusted.
    pub fn lookup(&self, s: &Stat) -> Option<Digest> {
        let i = self.entries.binary_search_by_key(&(s.dev, s.ino), |(e, _)| (e.dev, e.ino)).ok()?;
        let (e, digest) = &self.entries[i];
        (e.size == s.size && e.mtime_ns == s.mtime_ns && s.mtime_ns < self.written_ns - RACY_NS).then_some(*digest)
    }

    /// Writes the cache for the files of one publish (temp file, then rename).
    pub fn save(path: &Path, files: &[(Stat, Digest)]) -> std::io::Result<()> {
        let mut w = CacheWriter::create(path)?;
        files.iter().try_for_each(|(s, d)| w.push(s, d))?;
        w.finish()
    }
}

/// A cache written record by record as a publish goes; it replaces the old one only at
/// `finish` (a publish that fails keeps the old cache).
pub struct CacheWriter {
    out: BufWriter<tempfile::NamedTempFile>,
    path: PathBuf,
}

impl CacheWriter {
    pub fn create(path: &Path) -> std::io::Result<Self> {
        let dir = path.parent().expect("cache files live in a directory");
        std::fs::create_dir_all(dir)?;
        let mut out = BufWriter::with_capacity(1 << 16, tempfile::NamedTempFile::new_in(dir)?);
        out.write_all(MAGIC)?;
        // The time is written by `finish`: the cache dates from when it is complete.
        out.write_all(&[0; 16])?;
        Ok(Self { out, path: path.to_path_buf() })
    }

    pub fn push(&mut self, s: &Stat, d: &Digest) -> std::io::Result<()> {
        let mut rec = [0u8; RECORD];
        rec[0..8].copy_from_slice(&s.dev.to_le_bytes());
        rec[8..16].copy_from_slice(&s.ino.to_le_bytes());
        rec[16..24].copy_from_slice(&s.size.to_le_bytes());
        rec[24..40].copy_from_slice(&s.mtime_ns.to_le_bytes());
        rec[40..72].copy_from_slice(d.as_bytes());
        self.out.write_all(&rec)
    }

    pub fn finish(self) -> std::io::Result<()> {
        let mut tmp = self.out.into_inner().map_err(|e| e.into_error())?;
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos() as i128;
        tmp.seek(SeekFrom::Start(16))?;
        tmp.write_all(&now.to_le_bytes())?;
        tmp.persist(&self.path).map_err(|e| e.error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusts_only_unchanged_files_older_than_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "one").unwrap();
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
        std::fs::File::options().write(true).open(&file).unwrap().set_modified(old).unwrap();
        let stat = Stat::of(&std::fs::metadata(&file).unwrap());
        let cache_path = dir.path().join("cache/c.bin");
        StatCache::save(&cache_path, &[(stat, Digest::of(b"one"))]).unwrap();
        let cache = StatCache::load(&cache_path);
        assert_eq!(cache.lookup(&stat), Some(Digest::of(b"one")));

        // Rewritten: new mtime (and possibly size) -> no hit.
        std::fs::write(&file, "two").unwrap();
        assert_eq!(cache.lookup(&Stat::of(&std::fs::metadata(&file).unwrap())), None);

        // A file modified just before the cache was written is racy: not trusted.
        let fresh = dir.path().join("g");
        std::fs::write(&fresh, "x").unwrap();
        let s = Stat::of(&std::fs::metadata(&fresh).unwrap());
        StatCache::save(&cache_path, &[(s, Digest::of(b"x"))]).unwrap();
        assert_eq!(StatCache::load(&cache_path).lookup(&s), None);

        // Written record by record: many files, found by (device, inode) whatever the order.
        let stats: Vec<Stat> = (0..1000u64)
            .rev()
            .map(|i| Stat { dev: i % 3, ino: i * 7919 % 1009, size: i, mtime_ns: stat.mtime_ns })
            .collect();
        let mut w = CacheWriter::create(&cache_path).unwrap();
        for s in &stats {
            w.push(s, &Digest::of(&s.size.to_le_bytes())).unwrap();
        }
        w.finish().unwrap();
        let cache = StatCache::load(&cache_path);
        for s in &stats {
            assert_eq!(cache.lookup(s), Some(Digest::of(&s.size.to_le_bytes())));
        }
        assert_eq!(cache.lookup(&Stat { ino: 1010, ..stats[0] }), None);
        // An unfinished writer leaves the old cache in place.
        let mut w = CacheWriter::create(&cache_path).unwrap();
        w.push(&stat, &Digest::of(b"one")).unwrap();
        drop(w);
        assert_eq!(StatCache::load(&cache_path).lookup(&stats[0]), Some(Digest::of(&stats[0].size.to_le_bytes())));

        // Garbage is an empty cache.
        std::fs::write(&cache_path, "garbage").unwrap();
        assert_eq!(StatCache::load(&cache_path).lookup(&stat), None);
    }
}
