//! What the read side takes from a suite's `Release` or `InRelease`: the files listed under
//! each hash (apt asks for `by-hash/<strongest listed>/<hex>`) and `Valid-Until`. Parsed
//! files are cached by their SHA-256, so the cache is sound however snapshots share them.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::blob::BlobStore;
use crate::domain::{Digest, RelPath};
use crate::mirror::deb822::{clearsigned_text, single_paragraph};

/// Release files larger than this are not read (real ones are well under 1 MiB).
pub(crate) const MAX_RELEASE_BYTES: u64 = 16 << 20;
/// Memory the cache of parsed Release files may hold, roughly.
const CACHE_BYTES: u64 = 64 << 20;

/// A hash list of a Release file, by the name apt uses in by-hash URLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlgo {
    Md5,
    Sha1,
    Sha256,
    Sha512,
}

impl HashAlgo {
    pub const ALL: [HashAlgo; 4] = [HashAlgo::Md5, HashAlgo::Sha1, HashAlgo::Sha256, HashAlgo::Sha512];

    /// The Release field, which is also the directory name under `by-hash/`.
    pub fn name(self) -> &'static str {
        match self {
            HashAlgo::Md5 => "MD5Sum",
            HashAlgo::Sha1 => "SHA1",
            HashAlgo::Sha256 => "SHA256",
            HashAlgo::Sha512 => "SHA512",
        }
    }

    /// `by-hash/<name>/`: apt writes the names exactly so.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    fn hex_len(self) -> usize {
        match self {
            HashAlgo::Md5 => 32,
            HashAlgo::Sha1 => 40,
            HashAlgo::Sha256 => 64,
            HashAlgo::Sha512 => 128,
        }
    }
}

/// The parts of one Release file the read side uses.
#[derive(Debug, Default)]
pub struct ReleaseInfo {
    /// Listed files, relative to the suite directory.
    paths: Vec<RelPath>,
    /// (algorithm, lowercase hex) → index into `paths`.
    by_hash: HashMap<(HashAlgo, Box<str>), usize>,
    /// The SHA-256 the Release gives for a path (index into `paths`), if it lists SHA256.
    sha256: HashMap<usize, Digest>,
    /// `Valid-Until`, when present and readable.
    pub valid_until: Option<DateTime<Utc>>,
    /// Rough bytes held, for the cache's bound.
    weight: u64,
}

impl ReleaseInfo {
    /// Parses a Release or InRelease (clearsigned) text; `None` if it is not deb822. Lines
    /// of a hash list that are not `<hex> <size> <path>` with a safe path are skipped.
    pub fn parse(text: &str) -> Option<Self> {
        let body = clearsigned_text(text);
        let para = single_paragraph(body.as_deref().unwrap_or(text)).ok()?;
        let mut info = ReleaseInfo {
            valid_until: para.get("Valid-Until").and_then(parse_date),
            weight: text.len() as u64 * 2,
            ..Default::default()
        };
        let mut index_of: HashMap<RelPath, usize> = HashMap::new();
        for algo in HashAlgo::ALL {
            let Some(list) = para.get(algo.name()) else { continue };
            for line in list.lines() {
                let mut it = line.split_whitespace();
                let (Some(hex), Some(_size), Some(path), None) = (it.next(), it.next(), it.next(), it.next()) else {
                    continue;
                };
                let Ok(path) = RelPath::new(path) else { continue };
                if hex.len() != algo.hex_len() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    continue;
                }
                let next = info.paths.len();
                let i = *index_of.entry(path.clone()).or_insert(next);
                if i == next {
                    info.paths.push(path);
                }
                if algo == HashAlgo::Sha256
                    && let Ok(d) = hex.to_ascii_lowercase().parse::<Digest>()
                {
                    info.sha256.insert(i, d);
                }
                info.by_hash.insert((algo, hex.to_ascii_lowercase().into()), i);
            }
        }
        Some(info)
    }

    /// The file listed with this hash: its path relative to the suite, and the SHA-256
    /// the Release gives for that path, if any.
    pub fn lookup(&self, algo: HashAlgo, hex: &str) -> Option<(&RelPath, Option<Digest>)> {
        let i = *self.by_hash.get(&(algo, hex.to_ascii_lowercase().into_boxed_str()))?;
        Some((&self.paths[i], self.sha256.get(&i).copied()))
    }
}

/// A Release date as apt reads it: RFC 1123 with `UTC`, `GMT`, `UT` or a numeric zone.
pub fn parse_date(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    let numeric = ["UTC", "GMT", "UT", "Z"]
        .iter()
        .find_map(|z| s.strip_suffix(z).filter(|r| r.ends_with(' ')).map(|r| format!("{r}+0000")));
    let s = numeric.as_deref().unwrap_or(s);
    DateTime::parse_from_rfc2822(s).ok().map(|d| d.with_timezone(&Utc))
}

#[derive(Clone)]
struct ByWeight;

impl quick_cache::Weighter<Digest, Option<Arc<ReleaseInfo>>> for ByWeight {
    fn weight(&self, _: &Digest, val: &Option<Arc<ReleaseInfo>>) -> u64 {
        val.as_ref().map_or(1, |v| v.weight.max(1))
    }
}

/// Parsed Release files by the SHA-256 of their bytes, bounded in memory. Shared by all
/// requests of a server.
pub struct ReleaseCache {
    /// `None` remembers bytes that are not a Release (a file named like one that is not),
    /// so that they are not read again on every request.
    cache: quick_cache::sync::Cache<Digest, Option<Arc<ReleaseInfo>>, ByWeight>,
}

impl Default for ReleaseCache {
    fn default() -> Self {
        Self { cache: quick_cache::sync::Cache::with_weighter(256, CACHE_BYTES, ByWeight) }
    }
}

impl ReleaseCache {
    /// The parsed Release file with these bytes; `None` if it is too large or not a
    /// Release. Blocking (reads the blob on a miss).
    pub fn get(&self, blobs: &dyn BlobStore, sha256: &Digest, size: u64) -> std::io::Result<Option<Arc<ReleaseInfo>>> {
        if size > MAX_RELEASE_BYTES {
            return Ok(None);
        }
        if let Some(found) = self.cache.get(sha256) {
            return Ok(found);
        }
        let Some(blob) = blobs.blocking().open(sha256)? else {
            return Err(std::io::Error::other(format!("blob {sha256} is missing from the store")));
        };
        let mut text = String::new();
        let info = match blob.reader.take(MAX_RELEASE_BYTES).read_to_string(&mut text) {
            Ok(_) => ReleaseInfo::parse(&text).map(Arc::new),
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => None,
            Err(e) => return Err(e),
        };
        self.cache.insert(*sha256, info.clone());
        Ok(info)
    }
}

/// Suites looked at per snapshot, at most (real archives have a few dozen at most).
const MAX_SUITES: usize = 200;

/// One suite's Release file in a snapshot.
#[derive(Debug, Clone)]
pub struct SuiteRelease {
    /// Where it is: `dists/<suite>/InRelease`, or `Release` where there is no InRelease.
    pub path: RelPath,
    pub valid_until: Option<DateTime<Utc>>,
}

/// The Release file of every suite of a snapshot: each directory under `dists/` (not the
/// symlinks to them, such as `stable -> bookworm`), and the root for a flat repository.
/// Blocking.
pub fn suite_releases(
    catalog: &dyn crate::catalog::Catalog,
    blobs: &dyn BlobStore,
    cache: &ReleaseCache,
    at: crate::catalog::SnapshotKey,
) -> Result<Vec<SuiteRelease>, super::PathError> {
    use crate::manifest::Content;
    let mut dirs = vec![String::new()];
    let suites = catalog.children(at, "dists")?;
    dirs.extend(suites.into_iter().filter(|e| e.content == Content::Dir).map(|e| e.path.to_string()));
    let mut out = Vec::new();
    for dir in dirs.into_iter().take(MAX_SUITES + 1) {
        for name in ["InRelease", "Release"] {
            let Ok(path) = RelPath::new(&if dir.is_empty() { name.to_string() } else { format!("{dir}/{name}") })
            else {
                continue;
            };
            let Some(entry) = catalog.entry(at, &path)? else { continue };
            let Content::File { size, sha256 } = entry.content else { continue };
            let valid_until = cache.get(blobs, &sha256, size)?.and_then(|info| info.valid_until);
            out.push(SuiteRelease { path, valid_until });
            break;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(rel: &str) -> String {
        std::fs::read_to_string(format!("{}/fixtures/{rel}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    #[test]
    fn release_and_inrelease_list_the_same_files_under_every_hash() {
        let plain = ReleaseInfo::parse(&fixture("apt/sha512/dists/stable/Release")).unwrap();
        let signed = ReleaseInfo::parse(&fixture("apt/sha512/dists/stable/InRelease")).unwrap();
        let md5 = "6eeac783db7856d39496a07035f52ecb";
        let sha1 = "9134424fcbda45130ca2efbc872ca11135b2c9a1";
        let sha512 = "18c9754abaa51c2c1ba9f06ad66e02153fac3e16492297ff2373606f9a66e2362874e6526a7ca445c0390488d62af48e105b6138264b3ac26e4721604255199a";
        let sha256: Digest = "e6d6aaec38cb3891d294062203983fa1a31353bc47ca31fd077daa102f47d17f".parse().unwrap();
        for info in [&plain, &signed] {
            for (algo, hex) in [(HashAlgo::Md5, md5), (HashAlgo::Sha1, sha1), (HashAlgo::Sha512, sha512)] {
                let (path, sha) = info.lookup(algo, &hex.to_uppercase()).unwrap();
                assert_eq!((path.as_str(), sha), ("main/binary-amd64/Packages.xz", Some(sha256)), "{algo:?}");
            }
            assert!(info.lookup(HashAlgo::Sha512, &"0".repeat(128)).is_none());
            assert!(info.lookup(HashAlgo::Sha1, md5).is_none(), "a hash is only found under its own list");
            assert_eq!(info.valid_until, None);
        }
    }

    #[test]
    fn bytes_that_are_not_a_release_are_remembered_and_not_read_again() {
        let tmp = tempfile::tempdir().unwrap();
        let blobs = crate::blob::local::LocalBlobStore::open(tmp.path()).unwrap();
        let bytes = b"not a Release file, only named like one\n";
        let digest = Digest::of(bytes);
        blobs.blocking().put(&mut &bytes[..], Some(&digest), None).unwrap();
        let cache = ReleaseCache::default();
        assert!(cache.get(&blobs, &digest, bytes.len() as u64).unwrap().is_none());
        // Gone from the store: a second look would fail if it read the blob again.
        blobs.blocking().remove(&digest).unwrap();
        assert!(cache.get(&blobs, &digest, bytes.len() as u64).unwrap().is_none());
        let other = Digest::of(b"never stored");
        assert_eq!(
            cache.get(&blobs, &other, 5).unwrap_err().to_string(),
            format!("blob {other} is missing from the store")
        );
    }

    #[test]
    fn valid_until_is_read_as_apt_reads_it() {
        let expired = ReleaseInfo::parse(&fixture("apt/expired/dists/stable/InRelease")).unwrap();
        assert_eq!(expired.valid_until, Some("2024-01-08T00:00:00Z".parse().unwrap()));
        let security = ReleaseInfo::parse(&fixture("debian/bookworm-security_InRelease")).unwrap();
        assert!(security.valid_until.is_some());
        for (s, want) in [
            ("Sat, 08 Mar 2025 18:53:33 UTC", Some("2025-03-08T18:53:33Z")),
            ("Sat, 08 Mar 2025 18:53:33 GMT", Some("2025-03-08T18:53:33Z")),
            ("Sat, 08 Mar 2025 18:53:33 +0100", Some("2025-03-08T17:53:33Z")),
            ("tomorrow", None),
        ] {
            assert_eq!(parse_date(s), want.map(|w| w.parse().unwrap()), "{s}");
        }
    }

    #[test]
    fn text_that_is_not_deb822_is_no_release() {
        assert!(ReleaseInfo::parse(" leading continuation\n").is_none());
        let odd = ReleaseInfo::parse("SHA512:\n short 1 a\n").unwrap();
        assert!(odd.paths.is_empty());
    }
}
