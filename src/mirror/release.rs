//! The parts of a suite's Release file a mirror needs: components, architectures and the
//! SHA256 list of index files, each path checked to stay inside `dists/<suite>/`.

use super::deb822::{Deb822Error, single_paragraph};
use super::scope::MirrorScope;
use crate::domain::{Digest, RelPath};

#[derive(Debug, Clone)]
pub struct ReleaseFile {
    pub components: Vec<String>,
    pub architectures: Vec<String>,
    /// Index files relative to `dists/<suite>/`, with their size and SHA-256.
    pub files: Vec<IndexRef>,
    /// `Acquire-By-Hash: yes`: each index is also at `<dir>/by-hash/SHA256/<hex>`.
    pub by_hash: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexRef {
    pub path: RelPath,
    pub size: u64,
    pub sha256: Digest,
}

#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error(transparent)]
    Syntax(#[from] Deb822Error),
    #[error("it has no SHA256 field; asof only mirrors archives with SHA-256 checksums")]
    NoSha256,
    #[error("SHA256 line {0:?} is not '<sha256> <size> <path>'")]
    BadLine(String),
    #[error("SHA256 entry {path:?} is not a safe relative path: {reason}")]
    UnsafePath { path: String, reason: String },
}

pub fn parse_release(text: &str) -> Result<ReleaseFile, ReleaseError> {
    let p = single_paragraph(text)?;
    let words = |f: &str| p.get(f).map(|v| v.split_whitespace().map(String::from).collect()).unwrap_or_default();
    let sums = p.get("SHA256").ok_or(ReleaseError::NoSha256)?;
    let mut files = Vec::new();
    for line in sums.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let mut it = line.split_whitespace();
        let (Some(hash), Some(size), Some(path), None) = (it.next(), it.next(), it.next(), it.next()) else {
            return Err(ReleaseError::BadLine(line.chars().take(200).collect()));
        };
        let sha256 = hash.parse().map_err(|_| ReleaseError::BadLine(line.chars().take(200).collect()))?;
        let size = size.parse().map_err(|_| ReleaseError::BadLine(line.chars().take(200).collect()))?;
        let path = RelPath::new(path)
            .map_err(|e| ReleaseError::UnsafePath { path: path.chars().take(200).collect(), reason: e.to_string() })?;
        files.push(IndexRef { path, size, sha256 });
    }
    let by_hash = p.get("Acquire-By-Hash").is_some_and(|v| v.trim().eq_ignore_ascii_case("yes"));
    Ok(ReleaseFile { components: words("Components"), architectures: words("Architectures"), files, by_hash })
}

/// Which indices of the Release file a mirror with these settings keeps.
#[derive(Debug, Clone)]
pub struct IndexSelection {
    pub components: Vec<String>,
    pub architectures: Vec<String>,
    pub scope: MirrorScope,
}

/// `Contents-amd64.gz` → `amd64`; `Translation-pt_BR.xz` → `pt_BR`: the name part after
/// `prefix`, without compression suffixes.
fn target_of<'a>(name: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = name.strip_prefix(prefix)?;
    Some(rest.split('.').next().unwrap_or(rest))
}

impl IndexSelection {
    fn arch_ok(&self, arch: &str) -> bool {
        arch == "all" || self.architectures.iter().any(|x| x == arch)
    }

    fn contents_ok(&self, name: &str) -> bool {
        let Some(target) = target_of(name, "Contents-") else { return false };
        if !self.scope.contents {
            return false;
        }
        if let Some(arch) = target.strip_prefix("udeb-") {
            return self.scope.udebs && self.arch_ok(arch);
        }
        self.arch_ok(target) || (self.scope.sources && target == "source")
    }

    fn packages_ok(&self, dir: &str, file: &str) -> bool {
        dir.strip_prefix("binary-").is_some_and(|a| self.arch_ok(a))
            && (file.starts_with("Packages") || file == "Release")
    }

    pub fn wants(&self, path: &RelPath) -> bool {
        let p = path.as_str();
        if !p.contains('/') {
            return self.contents_ok(p);
        }
        let scope = &self.scope;
        // Debian's security archive lists `updates/main` but keeps its indices under `main/`,
        // as apt expects: match the last segment too.
        let dirs = self.components.iter().flat_map(|c| [c.as_str(), c.rsplit('/').next().unwrap_or(c)]);
        for comp in dirs {
            let Some(rest) = p.strip_prefix(comp).and_then(|r| r.strip_prefix('/')) else { continue };
            let segs: Vec<&str> = rest.split('/').collect();
            return match segs.as_slice() {
                [dir, file] if dir.starts_with("binary-") => self.packages_ok(dir, file),
                ["debian-installer", dir, file] => scope.udebs && self.packages_ok(dir, file),
                ["source", file] => scope.sources && (file.starts_with("Sources") || *file == "Release"),
                ["i18n", file] => target_of(file, "Translation-").is_some_and(|l| scope.i18n.wants(l)),
                ["dep11", file] => scope.dep11 && target_of(file, "Components-").is_none_or(|a| self.arch_ok(a)),
                ["cnf", file] => scope.cnf && target_of(file, "Commands-").is_some_and(|a| self.arch_ok(a)),
                [file] => self.contents_ok(file),
                _ => false,
            };
        }
        false
    }
}

/// `main/binary-amd64/Packages.xz` → `main/binary-amd64/Packages`: variants of one index.
pub fn index_base(path: &str) -> &str {
    for ext in [".xz", ".gz", ".bz2", ".lzma", ".zst", ".lz4"] {
        if let Some(base) = path.strip_suffix(ext) {
            return base;
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(sources: bool) -> IndexSelection {
        let scope = MirrorScope { sources, ..MirrorScope::default() };
        IndexSelection { components: vec!["main".into()], architectures: vec!["amd64".into()], scope }
    }

    #[test]
    fn selects_indices_of_chosen_components_and_architectures() {
        let s = sel(false);
        for yes in [
            "main/binary-amd64/Packages.xz",
            "main/binary-amd64/Release",
            "main/binary-all/Packages",
            "main/i18n/Translation-en.bz2",
            "main/Contents-amd64.gz",
            "Contents-amd64.gz",
        ] {
            assert!(s.wants(&RelPath::new(yes).unwrap()), "{yes}");
        }
        for no in [
            "main/binary-arm64/Packages.xz",
            "contrib/binary-amd64/Packages.xz",
            "main/source/Sources.xz",
            "main/debian-installer/binary-amd64/Packages.xz",
            "main/dep11/Components-amd64.yml.gz",
            "main/Contents-arm64.gz",
        ] {
            assert!(!s.wants(&RelPath::new(no).unwrap()), "{no}");
        }
        assert!(sel(true).wants(&RelPath::new("main/source/Sources.xz").unwrap()));
    }

    #[test]
    fn scope_options_choose_each_kind_of_file() {
        let listed = [
            "Contents-amd64.gz",
            "Contents-i386.gz",
            "Contents-udeb-amd64.gz",
            "Contents-source.gz",
            "main/Contents-amd64.gz",
            "main/binary-amd64/Packages.xz",
            "main/binary-i386/Packages.xz",
            "main/debian-installer/binary-amd64/Packages.xz",
            "main/debian-installer/binary-i386/Packages.xz",
            "main/source/Sources.xz",
            "main/i18n/Translation-en.xz",
            "main/i18n/Translation-de.xz",
            "main/i18n/Translation-pt_BR.xz",
            "main/i18n/Index",
            "main/dep11/Components-amd64.yml.gz",
            "main/dep11/Components-i386.yml.gz",
            "main/dep11/icons-48x48.tar.gz",
            "main/cnf/Commands-amd64.xz",
            "main/cnf/Commands-i386.xz",
            "main/installer-amd64/current/images/SHA256SUMS",
        ];
        let picked = |scope: MirrorScope| -> Vec<&str> {
            let s = IndexSelection { components: vec!["main".into()], architectures: vec!["amd64".into()], scope };
            listed.iter().copied().filter(|p| s.wants(&RelPath::new(p).unwrap())).collect()
        };
        assert_eq!(
            picked(MirrorScope::default()),
            [
                "Contents-amd64.gz",
                "main/Contents-amd64.gz",
                "main/binary-amd64/Packages.xz",
                "main/i18n/Translation-en.xz",
                "main/i18n/Translation-de.xz",
                "main/i18n/Translation-pt_BR.xz",
            ]
        );
        let everything = MirrorScope { sources: true, udebs: true, dep11: true, cnf: true, ..MirrorScope::default() };
        assert_eq!(
            picked(everything.clone()),
            [
                "Contents-amd64.gz",
                "Contents-udeb-amd64.gz",
                "Contents-source.gz",
                "main/Contents-amd64.gz",
                "main/binary-amd64/Packages.xz",
                "main/debian-installer/binary-amd64/Packages.xz",
                "main/source/Sources.xz",
                "main/i18n/Translation-en.xz",
                "main/i18n/Translation-de.xz",
                "main/i18n/Translation-pt_BR.xz",
                "main/dep11/Components-amd64.yml.gz",
                "main/dep11/icons-48x48.tar.gz",
                "main/cnf/Commands-amd64.xz",
            ]
        );
        let narrow = MirrorScope { contents: false, i18n: "en,pt_BR".parse().unwrap(), ..everything };
        assert_eq!(
            picked(narrow),
            [
                "main/binary-amd64/Packages.xz",
                "main/debian-installer/binary-amd64/Packages.xz",
                "main/source/Sources.xz",
                "main/i18n/Translation-en.xz",
                "main/i18n/Translation-pt_BR.xz",
                "main/dep11/Components-amd64.yml.gz",
                "main/dep11/icons-48x48.tar.gz",
                "main/cnf/Commands-amd64.xz",
            ]
        );
        let none = MirrorScope { i18n: "none".parse().unwrap(), ..MirrorScope::default() };
        assert!(!picked(none).iter().any(|p| p.contains("i18n")));
    }

    #[test]
    fn parses_the_real_debian_release() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/debian/bookworm-security_InRelease"
        ))
        .unwrap();
        // The clearsigned body parses as deb822 once the armor lines are gone.
        let body: String = text
            .lines()
            .skip_while(|l| !l.is_empty())
            .take_while(|l| !l.starts_with("-----BEGIN PGP SIGNATURE"))
            .map(|l| format!("{l}\n"))
            .collect();
        let r = parse_release(&body).unwrap();
        assert!(r.components.contains(&"updates/main".to_string()));
        let s = IndexSelection {
            components: r.components.clone(),
            architectures: vec!["amd64".into()],
            scope: sel(false).scope,
        };
        let picked: Vec<_> = r.files.iter().filter(|f| s.wants(&f.path)).map(|f| f.path.as_str()).collect();
        assert!(picked.contains(&"main/binary-amd64/Packages.xz"), "{picked:?}");
        assert!(r.architectures.contains(&"amd64".to_string()));
        assert!(r.files.iter().any(|f| f.path.as_str() == "main/binary-amd64/Packages.xz"));
    }

    #[test]
    fn rejects_escaping_paths() {
        let text = format!("SHA256:\n {} 10 ../../etc/passwd\n", "a".repeat(64));
        assert!(matches!(parse_release(&text), Err(ReleaseError::UnsafePath { .. })));
    }

    #[test]
    fn variants_share_a_base() {
        assert_eq!(index_base("main/binary-amd64/Packages.xz"), "main/binary-amd64/Packages");
        assert_eq!(index_base("main/binary-amd64/Packages"), "main/binary-amd64/Packages");
    }
}
