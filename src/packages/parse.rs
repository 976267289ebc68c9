//! Which files of a snapshot are package indices, and what a Packages or Sources index
//! lists (the fields the package API shows).

use std::io::{BufRead as _, Read};

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

/// A stable digest of one paragraph of an index (the first 8 bytes of its SHA-256), kept
/// with the package row it produced, so that indexing the next snapshot parses only the
/// paragraphs whose digest is not among the live rows.
pub type ParagraphHash = i64;

pub fn paragraph_hash(bytes: &[u8]) -> ParagraphHash {
    use sha2::Digest as _;
    let d = sha2::Sha256::digest(bytes);
    i64::from_be_bytes(d[..8].try_into().expect("a SHA-256 has 32 bytes"))
}

/// Reads an index variant (compressed or not) paragraph by paragraph. A paragraph for which
/// `known(hash)` answers true is already recorded and is skipped unparsed; each other one is
/// parsed and handed to `found` with its digest, as it is read (nothing is gathered).
pub fn for_each_new_paragraph(
    path: &str,
    kind: Kind,
    raw: impl Read,
    mut known: impl FnMut(ParagraphHash) -> bool,
    mut found: impl FnMut(ParagraphHash, Listed),
) -> Result<(), ParseError> {
    for_each_raw_paragraph(path, raw, |n, first_line, bytes| {
        let hash = paragraph_hash(bytes);
        if !known(hash)
            && let Some(listed) = parse_paragraph(kind, n, first_line, bytes)?
        {
            found(hash, listed);
        }
        Ok(())
    })
}

/// Calls `f(paragraph number, its first line number, its bytes)` for every paragraph, the
/// blank lines between paragraphs left out.
fn for_each_raw_paragraph(
    path: &str,
    raw: impl Read,
    mut f: impl FnMut(usize, usize, &[u8]) -> Result<(), ParseError>,
) -> Result<(), ParseError> {
    let mut reader = decoder(path, raw).map_err(|e| ParseError::Decode(e.to_string()))?;
    let (mut para, mut line) = (Vec::with_capacity(4096), Vec::with_capacity(256));
    let (mut n, mut line_no, mut first_line) = (0, 0, 0);
    loop {
        line.clear();
        let read = reader.read_until(b'\n', &mut line).map_err(|e| ParseError::Syntax(e.into()))?;
        line_no += 1;
        if read == 0 || line.iter().all(u8::is_ascii_whitespace) {
            if !para.is_empty() {
                n += 1;
                f(n, first_line, &para)?;
                para.clear();
            }
            if read == 0 {
                return Ok(());
            }
            continue;
        }
        if para.is_empty() {
            first_line = line_no;
        }
        para.extend_from_slice(&line);
    }
}

/// The package one paragraph lists (`None` for a paragraph of comments only); syntax
/// errors carry line numbers of the whole index.
fn parse_paragraph(kind: Kind, n: usize, first_line: usize, bytes: &[u8]) -> Result<Option<Listed>, ParseError> {
    let mut found = None;
    for_each_paragraph::<Deb822Error>(bytes, |p| {
        found = Some(p);
        Ok(())
    })
    .map_err(|e| match e {
        Deb822Error::Syntax { line, reason } => Deb822Error::Syntax { line: line + first_line - 1, reason },
        other => other,
    })?;
    let Some(p) = found else { return Ok(None) };
    let field = |name: &str| p.get(name).map(str::trim).filter(|v| !v.is_empty());
    let missing = |f: &str| ParseError::Field { paragraph: n, problem: format!("no {f} field") };
    let name = field("Package").ok_or_else(|| missing("Package"))?.to_string();
    let version = field("Version").ok_or_else(|| missing("Version"))?.to_string();
    Ok(Some(match kind {
        Kind::Binary => binary(&p, name, version, n)?,
        Kind::Source => source(&p, name, version, n)?,
    }))
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

    /// `for_each_new_paragraph`, gathered.
    fn read_new_paragraphs(
        path: &str,
        kind: Kind,
        raw: impl Read,
        known: impl FnMut(ParagraphHash) -> bool,
    ) -> Result<Vec<(ParagraphHash, Listed)>, ParseError> {
        let mut out = Vec::new();
        for_each_new_paragraph(path, kind, raw, known, |hash, listed| out.push((hash, listed)))?;
        Ok(out)
    }

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
        let all = |path, kind, bytes: &[u8]| {
            read_new_paragraphs(path, kind, bytes, |_| false).map(|v| v.into_iter().map(|(_, l)| l).collect::<Vec<_>>())
        };
        let got = all("Packages", Kind::Binary, &packages[..]).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].source.as_str(), got[0].source_version.as_str()), ("foo", "1.2-3"));
        assert_eq!((got[1].source.as_str(), got[1].source_version.as_str(), got[1].size), ("bar", "2.0", 10));
        let sources = b"Package: foo\nVersion: 1.2-3\nDirectory: pool/main/f/foo\nChecksums-Sha256:\n 8638158b266d33d5354ca514680c03f8aeb0ddc00e6508976ce67e471bb0fb51 900 foo_1.2-3.dsc\n 8638158b266d33d5354ca514680c03f8aeb0ddc00e6508976ce67e471bb0fb52 12345 foo_1.2.orig.tar.gz\n";
        let got = all("Sources", Kind::Source, &sources[..]).unwrap();
        assert_eq!((got[0].filename.as_str(), got[0].size), ("pool/main/f/foo/foo_1.2-3.dsc", 900));
        let bad = all("Packages", Kind::Binary, &b"Package: x\nSize: 1\n"[..]).unwrap_err();
        assert_eq!(bad.to_string(), "paragraph 1: no Version field");
    }

    #[test]
    fn parses_only_paragraphs_not_known_and_reports_whole_file_lines() {
        let text = b"Package: a\nVersion: 1\n\n\nPackage: b\nVersion: 2\n# a comment\n\n# only comments\n";
        let mut asked = Vec::new();
        let a = paragraph_hash(b"Package: a\nVersion: 1\n");
        let got = read_new_paragraphs("Packages", Kind::Binary, &text[..], |h| {
            asked.push(h);
            h == a
        })
        .unwrap();
        assert_eq!(asked.len(), 3, "every paragraph is asked about, comments-only ones too");
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].0, got[0].1.name.as_str()), (paragraph_hash(b"Package: b\nVersion: 2\n# a comment\n"), "b"));
        let bad = b"Package: a\nVersion: 1\n\nPackage: b\n oops\nno colon\n";
        let err = read_new_paragraphs("Packages", Kind::Binary, &bad[..], |_| false).unwrap_err();
        assert_eq!(err.to_string(), "line 6: line is neither 'Field: value' nor a continuation");
        // A broken paragraph that is already recorded is not parsed again.
        assert!(read_new_paragraphs("Packages", Kind::Binary, &bad[..], |_| true).unwrap().is_empty());
    }
}
