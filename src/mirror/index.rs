//! Reads Packages and Sources indices (plain, .gz or .xz) into the list of pool files they
//! reference, refusing any path that would leave the archive.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};

use super::deb822::{Deb822Error, Paragraph, for_each_paragraph};
use crate::domain::{Digest, RelPath};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolFile {
    pub size: u64,
    pub sha256: Digest,
}

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error(transparent)]
    Syntax(#[from] Deb822Error),
    #[error("package {package:?}: {field} {value:?} is not a safe path inside the archive: {reason}")]
    UnsafePath { package: String, field: &'static str, value: String, reason: String },
    #[error("package {package:?}: missing or invalid {field}")]
    MissingField { package: String, field: &'static str },
    #[error("{path} is listed twice with different contents")]
    Conflict { path: RelPath },
    #[error("cannot decompress {0}: asof reads plain, .gz and .xz indices")]
    Unsupported(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexKind {
    Packages,
    Sources,
}

impl IndexKind {
    /// `main/binary-amd64/Packages.xz` → Packages; `main/source/Sources` → Sources.
    pub fn of(path: &str) -> Option<Self> {
        let name = super::release::index_base(path).rsplit('/').next()?;
        match name {
            "Packages" => Some(Self::Packages),
            "Sources" => Some(Self::Sources),
            _ => None,
        }
    }
}

/// Whether asof can read this variant, and how cheaply (lower is better).
pub fn decode_rank(path: &str) -> Option<u8> {
    if path.ends_with(".xz") {
        Some(1)
    } else if path.ends_with(".gz") {
        Some(2)
    } else if super::release::index_base(path) == path {
        Some(0)
    } else {
        None
    }
}

pub fn decoder<'a>(path: &str, raw: impl Read + 'a) -> Result<Box<dyn BufRead + 'a>, IndexError> {
    Ok(if path.ends_with(".xz") {
        Box::new(BufReader::new(liblzma::read::XzDecoder::new(raw)))
    } else if path.ends_with(".gz") {
        Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(raw)))
    } else if decode_rank(path) == Some(0) {
        Box::new(BufReader::new(raw))
    } else {
        return Err(IndexError::Unsupported(path.to_string()));
    })
}

fn safe_path(package: &str, field: &'static str, value: &str) -> Result<RelPath, IndexError> {
    RelPath::new(value).map_err(|e| IndexError::UnsafePath {
        package: package.to_string(),
        field,
        value: value.chars().take(200).collect(),
        reason: e.to_string(),
    })
}

/// Adds the pool files an index references to `out`; the same path with other content is
/// an error (it would make the snapshot ambiguous).
pub fn collect_pool_files(
    kind: IndexKind,
    reader: impl BufRead,
    out: &mut BTreeMap<RelPath, PoolFile>,
) -> Result<(), IndexError> {
    let mut add = |path: RelPath, file: PoolFile| match out.get(&path) {
        Some(existing) if *existing != file => Err(IndexError::Conflict { path }),
        _ => {
            out.insert(path, file);
            Ok(())
        }
    };
    for_each_paragraph(reader, |p: Paragraph| {
        let package = p.get("Package").unwrap_or("?").to_string();
        let missing = |field| IndexError::MissingField { package: package.clone(), field };
        match kind {
            IndexKind::Packages => {
                let filename = p.get("Filename").ok_or_else(|| missing("Filename"))?;
                let path = safe_path(&package, "Filename", filename)?;
                let size = p.get("Size").and_then(|s| s.parse().ok()).ok_or_else(|| missing("Size"))?;
                let sha256 = p.get("SHA256").and_then(|s| s.parse().ok()).ok_or_else(|| missing("SHA256"))?;
                add(path, PoolFile { size, sha256 })
            }
            IndexKind::Sources => {
                let dir = p.get("Directory").ok_or_else(|| missing("Directory"))?;
                safe_path(&package, "Directory", dir)?;
                let sums = p.get("Checksums-Sha256").ok_or_else(|| missing("Checksums-Sha256"))?;
                for line in sums.lines().map(str::trim).filter(|l| !l.is_empty()) {
                    let mut it = line.split_whitespace();
                    let (Some(hash), Some(size), Some(name)) = (it.next(), it.next(), it.next()) else {
                        return Err(missing("Checksums-Sha256"));
                    };
                    if name.contains('/') {
                        return Err(IndexError::UnsafePath {
                            package: package.clone(),
                            field: "Checksums-Sha256",
                            value: name.chars().take(200).collect(),
                            reason: "a source file name must not contain '/'".into(),
                        });
                    }
                    let path = safe_path(&package, "Directory", &format!("{dir}/{name}"))?;
                    let sha256 = hash.parse().map_err(|_| missing("Checksums-Sha256"))?;
                    let size = size.parse().map_err(|_| missing("Checksums-Sha256"))?;
                    add(path, PoolFile { size, sha256 })?;
                }
                Ok(())
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(filename: &str) -> String {
        format!("Package: p\nFilename: {filename}\nSize: 3\nSHA256: {}\n", "ab".repeat(32))
    }

    #[test]
    fn reads_packages_and_sources() {
        let mut out = BTreeMap::new();
        collect_pool_files(IndexKind::Packages, pkg("pool/main/p/p_1_all.deb").as_bytes(), &mut out).unwrap();
        let src = format!(
            "Package: p\nDirectory: pool/main/p\nChecksums-Sha256:\n {h} 10 p_1.dsc\n {h} 20 p_1.tar.xz\n",
            h = "cd".repeat(32)
        );
        collect_pool_files(IndexKind::Sources, src.as_bytes(), &mut out).unwrap();
        let paths: Vec<_> = out.keys().map(|p| p.as_str()).collect();
        assert_eq!(paths, ["pool/main/p/p_1.dsc", "pool/main/p/p_1.tar.xz", "pool/main/p/p_1_all.deb"]);
    }

    #[test]
    fn refuses_malicious_filenames() {
        for bad in ["../../etc/passwd", "/etc/passwd", "pool/../../x", "pool/a\u{1}b"] {
            let err = collect_pool_files(IndexKind::Packages, pkg(bad).as_bytes(), &mut BTreeMap::new()).unwrap_err();
            assert!(matches!(err, IndexError::UnsafePath { .. }), "{bad}: {err}");
        }
    }

    #[test]
    fn refuses_one_path_with_two_contents() {
        let mut out = BTreeMap::new();
        collect_pool_files(IndexKind::Packages, pkg("pool/x.deb").as_bytes(), &mut out).unwrap();
        let other = format!("Package: q\nFilename: pool/x.deb\nSize: 4\nSHA256: {}\n", "ab".repeat(32));
        assert!(matches!(
            collect_pool_files(IndexKind::Packages, other.as_bytes(), &mut out),
            Err(IndexError::Conflict { .. })
        ));
    }
}
