//! Which files of a snapshot are package indices, and what a Packages or Sources index
//! lists (the fields the package API shows).

use std::io::Read;

use crate::domain::Digest;
use crate::mirror::deb822::{Deb822Error, for_each_paragraph};
use crate::mirror::index::{decode_rank, decoder};
use crate::mirror::release::index_base;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Binary,
    Source,
}

impl Kind {
    pub fn code(self) -> i64 {
        match self {
            Kind::Binary => 0,
            Kind::Source => 1,
        }
    }

    pub fn from_code(c: i64) -> Self {
        if c == 1 { Kind::Source } else { Kind::Binary }
    }
}

/// One index of an apt archive: `dists/<suite>/<component>/binary-<arch>/Packages` or
/// `dists/<suite>/<component>/source/Sources` (any compression variant).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IndexId {
    pub suite: String,
    pub component: String,
    /// `amd64`, `all`... for binaries; `source` for sources.
    pub architecture: String,
    pub kind: Kind,
}

impl IndexId {
    /// The index a path is a variant of, if it is one. The suite may contain `/`
    /// (`bookworm-security/updates`); the component is the segment before `binary-*`.
    pub fn of_path(path: &str) -> Option<(IndexId, u8)> {
        let rank = decode_rank(path)?;
        let base = index_base(path);
        let rest = base.strip_prefix("dists/")?;
        let (dir, file) = rest.rsplit_once('/')?;
        let (above, leaf) = dir.rsplit_once('/')?;
        let (suite, component) = above.rsplit_once('/')?;
        let (kind, architecture) = match (file, leaf) {
            ("Packages", leaf) => (Kind::Binary, leaf.strip_prefix("binary-")?),
            ("Sources", "source") => (Kind::Source, "source"),
            _ => return None,
        };
        if suite.is_empty() || component.is_empty() || architecture.is_empty() {
            return None;
        }
        let id = IndexId {
            suite: suite.to_string(),
            component: component.to_string(),
            architecture: architecture.to_string(),
            kind,
        };
        Some((id, rank))
    }
}

/// A package as one index lists it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Listed {
    pub name: String,
    pub version: String,
    pub source: String,
    pub source_version: String,
    pub filename: String,
    pub size: u64,
    pub sha256: Option<Digest>,
}

/// Where Debian's pool layout puts this package's file: `pool/<component>/<prefix>/<source>/`
/// then `<name>_<version without epoch>_<architecture>.deb` (binaries) or
/// `<source>_<version without epoch>.dsc` (sources), the prefix being `libX` for `lib*`
/// sources and the first letter otherwise. The index stores a filename only when it
/// differs from this (most do not), which saves ~40 bytes per row.
pub fn pool_filename(index: &IndexId, name: &str, version: &str, source: &str) -> String {
    let version = version.split_once(':').map_or(version, |(_, v)| v);
    // Indices are publishers' input: slice on character boundaries only.
    let first = |n: usize| source.char_indices().nth(n).map_or(source, |(i, _)| &source[..i]);
    let prefix = if source.len() > 3 && source.starts_with("lib") { first(4) } else { first(1) };
    match index.kind {
        Kind::Binary => {
            format!("pool/{}/{prefix}/{source}/{name}_{version}_{}.deb", index.component, index.architecture)
        }
        Kind::Source => format!("pool/{}/{prefix}/{source}/{source}_{version}.dsc", index.component),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("{0}")]
    Syntax(#[from] Deb822Error),
    #[error("paragraph {paragraph}: {problem}")]
    Field { paragraph: usize, problem: String },
    #[error("cannot decode {0}")]
    Decode(String),
}

/// Reads every package of an index variant at `path` (compressed or not).
pub fn read_index(path: &str, kind: Kind, raw: impl Read) -> Result<Vec<Listed>, ParseError> {
    let reader = decoder(path, raw).map_err(|e| ParseError::Decode(e.to_string()))?;
    let mut out = Vec::new();
    let mut n = 0;
    for_each_paragraph(reader, |p| {
        n += 1;
        let field = |name: &str| p.get(name).map(str::trim).filter(|v| !v.is_empty());
        let missing = |f: &str| ParseError::Field { paragraph: n, problem: format!("no {f} field") };
        let name = field("Package").ok_or_else(|| missing("Package"))?.to_string();
        let version = field("Version").ok_or_else(|| missing("Version"))?.to_string();
        let listed = match kind {
            Kind::Binary => binary(&p, name, version, n)?,
            Kind::Source => source(&p, name, version, n)?,
        };
        out.push(listed);
        Ok::<(), ParseError>(())
    })?;
    Ok(out)
}

fn binary(p: &crate::mirror::deb822::Paragraph, name: String, version: String, n: usize) -> Result<Listed, ParseError> {
    // `Source: foo (1.2-3)` when the source version differs from the binary's.
    let (source, source_version) = match p.get("Source").map(str::trim) {
        None | Some("") => (name.clone(), version.clone()),
        Some(s) => match s.split_once('(') {
            Some((src, v)) => (src.trim().to_string(), v.trim_end_matches(')').trim().to_string()),
            None => (s.to_string(), version.clone()),
        },
    };
    let filename = p.get("Filename").map(str::trim).unwrap_or("").to_string();
    let size = match p.get("Size").map(str::trim) {
        None => 0,
        Some(s) => {
            s.parse().map_err(|_| ParseError::Field { paragraph: n, problem: format!("Size {s:?} is not a number") })?
        }
    };
    let sha256 = match p.get("SHA256").map(str::trim) {
        None => None,
        Some(h) => Some(h.parse().map_err(|e| ParseError::Field { paragraph: n, problem: format!("SHA256: {e}") })?),
    };
    Ok(Listed { name, version: version.clone(), source, source_version, filename, size, sha256 })
}

fn source(p: &crate::mirror::deb822::Paragraph, name: String, version: String, n: usize) -> Result<Listed, ParseError> {
    // The .dsc among the Checksums-Sha256 lines (" <sha256> <size> <file>").
    let dir = p.get("Directory").map(str::trim).unwrap_or("");
    let dsc = p.get("Checksums-Sha256").and_then(|lines| {
        lines.lines().map(str::split_whitespace).find_map(|mut w| {
            let (sha, size, file) = (w.next()?, w.next()?, w.next()?);
            file.ends_with(".dsc").then(|| (sha.to_string(), size.to_string(), file.to_string()))
        })
    });
    let (sha256, size, filename) = match dsc {
        Some((sha, size, file)) => (
            Some(
                sha.parse()
                    .map_err(|e| ParseError::Field { paragraph: n, problem: format!("Checksums-Sha256: {e}") })?,
            ),
            size.parse().unwrap_or(0),
            if dir.is_empty() { file } else { format!("{dir}/{file}") },
        ),
        None => (None, 0, String::new()),
    };
    Ok(Listed {
        name: name.clone(),
        version: version.clone(),
        source: name,
        source_version: version,
        filename,
        size,
        sha256,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_index_paths() {
        let (id, rank) = IndexId::of_path("dists/stable/main/binary-amd64/Packages.xz").unwrap();
        assert_eq!(
            (id.suite.as_str(), id.component.as_str(), id.architecture.as_str(), id.kind, rank),
            ("stable", "main", "amd64", Kind::Binary, 1)
        );
        let (id, _) = IndexId::of_path("dists/bookworm-security/updates/main/source/Sources.gz").unwrap();
        assert_eq!(
            (id.suite.as_str(), id.component.as_str(), id.kind),
            ("bookworm-security/updates", "main", Kind::Source)
        );
        for not in [
            "dists/stable/Release",
            "dists/stable/main/binary-amd64/Release",
            "pool/main/Packages",
            "dists/stable/main/i18n/Translation-en",
            "dists/stable/main/binary-amd64/Packages.bz2",
        ] {
            assert!(IndexId::of_path(not).is_none(), "{not}");
        }
    }

    #[test]
    fn debian_pool_filenames() {
        let bin = |arch: &str| IndexId {
            suite: "s".into(),
            component: "main".into(),
            architecture: arch.into(),
            kind: Kind::Binary,
        };
        assert_eq!(
            pool_filename(&bin("amd64"), "libssl3", "3.0.11-1~deb12u1", "openssl"),
            "pool/main/o/openssl/libssl3_3.0.11-1~deb12u1_amd64.deb"
        );
        assert_eq!(
            pool_filename(&bin("amd64"), "libc6", "2.36-9", "glibc"),
            "pool/main/g/glibc/libc6_2.36-9_amd64.deb"
        );
        assert_eq!(
            pool_filename(&bin("arm64"), "libfoo1", "1:2.0-1", "libfoo"),
            "pool/main/libf/libfoo/libfoo1_2.0-1_arm64.deb"
        );
        let src = IndexId {
            suite: "s".into(),
            component: "contrib".into(),
            architecture: "source".into(),
            kind: Kind::Source,
        };
        assert_eq!(pool_filename(&src, "lib", "1.0", "lib"), "pool/contrib/l/lib/lib_1.0.dsc");
        assert_eq!(pool_filename(&src, "x", "1", "lib€x"), "pool/contrib/lib€/lib€x/lib€x_1.dsc");
        assert_eq!(pool_filename(&src, "x", "1", "€"), "pool/contrib/€/€/€_1.dsc");
    }

    #[test]
    fn reads_binaries_and_sources() {
        let packages = b"Package: libfoo1\nSource: foo (1.2-3)\nVersion: 1.2-3+b1\nArchitecture: amd64\nFilename: pool/main/f/foo/libfoo1_1.2-3+b1_amd64.deb\nSize: 1234\nSHA256: 8638158b266d33d5354ca514680c03f8aeb0ddc00e6508976ce67e471bb0fb51\n\nPackage: bar\nVersion: 2.0\nFilename: pool/main/b/bar/bar_2.0_all.deb\nSize: 10\n";
        let got = read_index("Packages", Kind::Binary, &packages[..]).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].source.as_str(), got[0].source_version.as_str()), ("foo", "1.2-3"));
        assert_eq!((got[1].source.as_str(), got[1].source_version.as_str(), got[1].size), ("bar", "2.0", 10));
        let sources = b"Package: foo\nVersion: 1.2-3\nDirectory: pool/main/f/foo\nChecksums-Sha256:\n 8638158b266d33d5354ca514680c03f8aeb0ddc00e6508976ce67e471bb0fb51 900 foo_1.2-3.dsc\n 8638158b266d33d5354ca514680c03f8aeb0ddc00e6508976ce67e471bb0fb52 12345 foo_1.2.orig.tar.gz\n";
        let got = read_index("Sources", Kind::Source, &sources[..]).unwrap();
        assert_eq!((got[0].filename.as_str(), got[0].size), ("pool/main/f/foo/foo_1.2-3.dsc", 900));
        let bad = read_index("Packages", Kind::Binary, &b"Package: x\nSize: 1\n"[..]).unwrap_err();
        assert_eq!(bad.to_string(), "paragraph 1: no Version field");
    }
}
