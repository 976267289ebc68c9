//! Remembers the digest of each file a publish hashed, keyed by (device, inode) with its
//! size and mtime, so the next publish of a mostly unchanged tree reads only what changed.
//! (ctime cannot be part of the key: making a hard link, as archive tools and the
//! benchmark generator do between publish trees, changes it.) An entry is trusted only if
//! the file's mtime is older than the cache itself by a margin, as git does against
//! "racy" writes; a file rewritten in place with the same size and a restored mtime would
//! fool it, which is what `asof publish --rehash` is for.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

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
    entries: HashMap<(u64, u64), (u64, i128, Digest)>,
}

impl StatCache {
    /// Loads a cache; anything unreadable is an empty cache (it is only an optimisation).
    pub fn load(path: &Path) -> Self {
        let Ok(mut f) = std::fs::File::open(path) else { return Self::default() };
        let mut bytes = Vec::new();
        if f.read_to_end(&mut bytes).is_err() || bytes.len() < 32 || &bytes[..16] != MAGIC {
            return Self::default();
        }
        let written_ns = i128::from_le_bytes(bytes[16..32].try_into().expect("16 bytes"));
        let mut entries = HashMap::new();
        for r in bytes[32..].chunks_exact(RECORD) {
            let u = |i: usize| u64::from_le_bytes(r[i..i + 8].try_into().expect("8 bytes"));
            let mtime = i128::from_le_bytes(r[24..40].try_into().expect("16 bytes"));
            let digest = Digest::from_slice(&r[40..72]).expect("32 bytes");
            entries.insert((u(0), u(8)), (u(16), mtime, digest));
        }
        Self { written_ns, entries }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The digest recorded for this exact file state, if it can be trusted.
    pub fn lookup(&self, s: &Stat) -> Option<Digest> {
        let (size, mtime_ns, digest) = self.entries.get(&(s.dev, s.ino))?;
        (*size == s.size && *mtime_ns == s.mtime_ns && s.mtime_ns < self.written_ns - RACY_NS).then_some(*digest)
    }

    /// Writes the cache for the files of one publish (temp file, then rename).
    pub fn save(path: &Path, files: &[(Stat, Digest)]) -> std::io::Result<()> {
        let dir = path.parent().expect("cache files live in a directory");
        std::fs::create_dir_all(dir)?;
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos() as i128;
        let mut out = Vec::with_capacity(32 + files.len() * RECORD);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&now.to_le_bytes());
        for (s, d) in files {
            out.extend_from_slice(&s.dev.to_le_bytes());
            out.extend_from_slice(&s.ino.to_le_bytes());
            out.extend_from_slice(&s.size.to_le_bytes());
            out.extend_from_slice(&s.mtime_ns.to_le_bytes());
            out.extend_from_slice(d.as_bytes());
        }
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        tmp.write_all(&out)?;
        tmp.persist(path).map_err(|e| e.error)?;
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

        // Garbage is an empty cache.
        std::fs::write(&cache_path, "garbage").unwrap();
        assert_eq!(StatCache::load(&cache_path).lookup(&stat), None);
    }
}
