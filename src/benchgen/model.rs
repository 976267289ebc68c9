//! The simulated archive: source packages with their binary packages, realistic-looking
//! names, versions, sections, maintainers, dependencies and sizes, and how they evolve.

use std::collections::HashSet;

use super::rng::{Rng, derive};

pub const COMPONENTS: [&str; 2] = ["main", "contrib"];
pub const ARCHES: [&str; 2] = ["amd64", "all"];

const SYLLABLES: &[&str] = &[
    "ba", "be", "bi", "bo", "bu", "ca", "ce", "co", "cu", "da", "de", "di", "do", "fa", "fe", "fi", "fo", "ga", "ge",
    "gi", "go", "ka", "ke", "ki", "ko", "la", "le", "li", "lo", "lu", "ma", "me", "mi", "mo", "mu", "na", "ne", "ni",
    "no", "pa", "pe", "pi", "po", "ra", "re", "ri", "ro", "ru", "sa", "se", "si", "so", "ta", "te", "ti", "to", "tu",
    "va", "ve", "vi", "vo", "xa", "xe", "za", "ze", "zo", "x", "z", "k", "n", "r", "s", "t", "m", "gl", "st", "tr",
];

const WORDS: &[&str] = &[
    "library",
    "tool",
    "utility",
    "daemon",
    "server",
    "client",
    "module",
    "plugin",
    "extension",
    "bindings",
    "framework",
    "interface",
    "parser",
    "compiler",
    "runtime",
    "toolkit",
    "engine",
    "driver",
    "backend",
    "frontend",
    "protocol",
    "format",
    "network",
    "graphics",
    "audio",
    "video",
    "image",
    "font",
    "document",
    "archive",
    "database",
    "cache",
    "queue",
    "stream",
    "filesystem",
    "kernel",
    "terminal",
    "editor",
    "viewer",
    "manager",
    "scheduler",
    "monitor",
    "logger",
    "tracer",
    "profiler",
    "debugger",
    "test",
    "suite",
    "shared",
    "static",
    "fast",
    "simple",
    "portable",
    "lightweight",
    "modular",
    "extensible",
    "secure",
    "robust",
    "cross-platform",
    "command-line",
    "graphical",
    "interactive",
    "distributed",
    "embedded",
    "generic",
    "high-level",
    "low-level",
    "Python",
    "Perl",
    "Ruby",
    "Go",
    "Rust",
    "Java",
    "JavaScript",
    "C++",
    "OCaml",
    "Haskell",
    "TeX",
    "GNOME",
    "KDE",
    "X11",
    "Wayland",
    "GTK",
    "Qt",
    "XML",
    "JSON",
    "YAML",
    "HTTP",
    "TLS",
    "SQL",
    "Unicode",
    "Debian",
    "POSIX",
    "support",
    "files",
    "data",
    "headers",
    "documentation",
    "examples",
    "translations",
    "development",
    "common",
    "utilities",
];

const SECTIONS: &[(&str, u32)] = &[
    ("libs", 14),
    ("devel", 8),
    ("utils", 7),
    ("python", 7),
    ("doc", 5),
    ("libdevel", 8),
    ("net", 4),
    ("misc", 3),
    ("admin", 3),
    ("text", 2),
    ("x11", 2),
    ("web", 2),
    ("science", 2),
    ("games", 2),
    ("sound", 1),
    ("graphics", 2),
    ("perl", 4),
    ("golang", 4),
    ("javascript", 3),
    ("ruby", 2),
    ("java", 3),
    ("fonts", 1),
    ("kernel", 1),
    ("editors", 1),
    ("mail", 1),
    ("database", 1),
    ("math", 1),
    ("interpreters", 1),
    ("gnome", 1),
    ("kde", 2),
    ("haskell", 2),
    ("ocaml", 1),
    ("rust", 3),
    ("php", 1),
    ("video", 1),
    ("tex", 1),
];

const FIRST: &[&str] = &[
    "Anna", "Bernd", "Carlos", "Dana", "Emil", "Fatima", "Gustavo", "Hanna", "Ines", "Jonas", "Kei", "Lena", "Marco",
    "Nadia", "Olaf", "Paula", "Quentin", "Rosa", "Sven", "Tomoko", "Ulrich", "Vera", "Wei", "Xavier", "Yusuf", "Zoe",
];
const LAST: &[&str] = &[
    "Andersen",
    "Becker",
    "Costa",
    "Dubois",
    "Eriksen",
    "Fischer",
    "Garcia",
    "Hoffmann",
    "Ivanov",
    "Jansen",
    "Kowalski",
    "Lefebvre",
    "Moreau",
    "Nakamura",
    "Olsen",
    "Petrov",
    "Rossi",
    "Schmidt",
    "Tanaka",
    "Urban",
    "Vogel",
    "Wagner",
    "Yamada",
    "Zimmermann",
];
const TEAMS: &[&str] = &[
    "Debian Python Team <team+python@tracker.debian.org>",
    "Debian Go Packaging Team <team+pkg-go@tracker.debian.org>",
    "Debian Javascript Maintainers <pkg-javascript-devel@lists.alioth.debian.org>",
    "Debian Perl Group <pkg-perl-maintainers@lists.alioth.debian.org>",
    "Debian Rust Maintainers <pkg-rust-maintainers@alioth-lists.debian.net>",
    "Debian Ruby Team <pkg-ruby-extras-maintainers@lists.alioth.debian.org>",
    "Debian R Packages Maintainers <r-pkg-team@alioth-lists.debian.net>",
    "Debian Java Maintainers <pkg-java-maintainers@lists.alioth.debian.org>",
    "Debian Haskell Group <pkg-haskell-maintainers@lists.alioth.debian.org>",
    "Debian Science Maintainers <debian-science-maintainers@lists.alioth.debian.org>",
];

/// The flavour of a source package decides its name and the binaries it builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavour {
    Plain,
    Lib,
    Python,
    Golang,
    Node,
    Perl,
    RCran,
    Rust,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    epoch: u32,
    major: u32,
    minor: u32,
    patch: Option<u32>,
    dfsg: bool,
    revision: u32,
    stable_update: u32,
}

impl Version {
    fn random(rng: &mut Rng) -> Self {
        Self {
            epoch: if rng.chance(0.08) { rng.range(1, 3) as u32 } else { 0 },
            major: rng.log_normal(2.0, 1.0).min(120.0) as u32,
            minor: rng.below(30) as u32,
            patch: rng.chance(0.6).then(|| rng.below(20) as u32),
            dfsg: rng.chance(0.12),
            revision: rng.range(1, 6) as u32,
            stable_update: 0,
        }
    }

    /// The next version, as an upload to a stable or rolling archive would make it.
    fn bump(&mut self, rng: &mut Rng) {
        let r = rng.unit();
        if r < 0.5 {
            self.revision += 1;
            self.stable_update = 0;
        } else if r < 0.8 {
            match &mut self.patch {
                Some(p) => *p += 1,
                None => self.minor += 1,
            }
            self.revision = 1;
            self.stable_update = 0;
        } else {
            self.stable_update += 1;
        }
    }

    /// As written in control files (with the epoch).
    pub fn full(&self) -> String {
        let epoch = if self.epoch > 0 { format!("{}:", self.epoch) } else { String::new() };
        format!("{epoch}{}", self.no_epoch())
    }

    /// As written in pool file names (no epoch).
    pub fn no_epoch(&self) -> String {
        let mut s = format!("{}.{}", self.major, self.minor);
        if let Some(p) = self.patch {
            s.push_str(&format!(".{p}"));
        }
        if self.dfsg {
            s.push_str("+dfsg");
        }
        s.push_str(&format!("-{}", self.revision));
        if self.stable_update > 0 {
            s.push_str(&format!("+deb12u{}", self.stable_update));
        }
        s
    }
}

/// Size, SHA-256 and MD5 of a written pool file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileInfo {
    pub size: u64,
    pub sha256: [u8; 32],
    pub md5: [u8; 16],
}

#[derive(Debug, Clone)]
pub struct Binary {
    pub name: String,
    pub arch: &'static str,
    /// Bytes of the payload file inside the .deb.
    pub payload: u64,
    pub depends: String,
    pub section: String,
    pub priority: &'static str,
    /// Seeds the description, stable across versions.
    pub desc_seed: u64,
    /// Set once the pool file of the current version is written.
    pub file: Option<FileInfo>,
}

#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub component: &'static str,
    pub version: Version,
    pub maintainer: String,
    pub binaries: Vec<Binary>,
}

impl Source {
    /// `pool/<component>/<prefix>/<source>`: the prefix is the first letter, or `libx` for
    /// `lib*` sources, as in Debian.
    pub fn pool_dir(&self) -> String {
        let prefix =
            if self.name.starts_with("lib") && self.name.len() > 3 { &self.name[..4] } else { &self.name[..1] };
        format!("pool/{}/{prefix}/{}", self.component, self.name)
    }

    pub fn pool_path(&self, b: &Binary) -> String {
        format!("{}/{}_{}_{}.deb", self.pool_dir(), b.name, self.version.no_epoch(), b.arch)
    }
}

/// Parameters of the simulated file sizes.
#[derive(Debug, Clone, Copy)]
pub struct SizeModel {
    /// Median payload in bytes before scaling (≈ 100 KB in a Debian suite).
    pub median: f64,
    /// Shape of the log-normal: 2.0 gives a mean near 0.7 MB and a long tail.
    pub sigma: f64,
    /// Largest payload before scaling.
    pub cap: f64,
    pub scale: f64,
}

impl SizeModel {
    pub fn sample(&self, rng: &mut Rng) -> u64 {
        let raw = rng.log_normal(self.median, self.sigma).min(self.cap);
        ((raw * self.scale).round() as u64).max(1)
    }
}

/// Generates sources with unique names.
pub struct Factory {
    used_sources: HashSet<String>,
    used_binaries: HashSet<String>,
    maintainers: Vec<String>,
    pub sizes: SizeModel,
    contrib_fraction: f64,
}

impl Factory {
    pub fn new(seed: u64, expected_packages: usize, sizes: SizeModel) -> Self {
        let mut rng = Rng::new(derive(seed, "maintainers"));
        let people = (expected_packages / 25).clamp(8, 4000);
        let mut maintainers: Vec<String> = TEAMS.iter().map(|t| t.to_string()).collect();
        for _ in 0..people {
            let (f, l) = (rng.pick(FIRST), rng.pick(LAST));
            let user = format!("{}{}", f.to_lowercase(), &l.to_lowercase()[..1]);
            let mail = if rng.chance(0.6) { format!("{user}@debian.org") } else { format!("{user}@example.org") };
            maintainers.push(format!("{f} {l} <{mail}>"));
        }
        Self { used_sources: HashSet::new(), used_binaries: HashSet::new(), maintainers, sizes, contrib_fraction: 0.05 }
    }

    fn word(rng: &mut Rng) -> String {
        let n = rng.range(2, 4);
        let mut s = String::new();
        for _ in 0..n {
            s.push_str(rng.pick::<&str>(SYLLABLES));
        }
        if rng.chance(0.15) {
            s.push_str(&rng.range(2, 9).to_string());
        }
        s
    }

    fn unique_binary(&mut self, wanted: String) -> String {
        let mut name = wanted.clone();
        let mut i = 2;
        while !self.used_binaries.insert(name.clone()) {
            name = format!("{wanted}{i}");
            i += 1;
        }
        name
    }

    fn section(rng: &mut Rng) -> &'static str {
        let total: u32 = SECTIONS.iter().map(|s| s.1).sum();
        let mut x = rng.below(u64::from(total)) as u32;
        for (name, w) in SECTIONS {
            if x < *w {
                return name;
            }
            x -= w;
        }
        "misc"
    }

    /// A new source package; `existing` names packages new ones may depend on.
    pub fn source(&mut self, rng: &mut Rng, existing: &[String]) -> Source {
        let flavour = match rng.below(100) {
            0..=39 => Flavour::Plain,
            40..=59 => Flavour::Lib,
            60..=71 => Flavour::Python,
            72..=79 => Flavour::Golang,
            80..=85 => Flavour::Node,
            86..=90 => Flavour::Perl,
            91..=94 => Flavour::RCran,
            _ => Flavour::Rust,
        };
        let name = loop {
            let w = Self::word(rng);
            let candidate = match flavour {
                Flavour::Plain => w,
                Flavour::Lib => format!("lib{w}"),
                Flavour::Python => format!("python-{w}"),
                Flavour::Golang => format!("golang-github-{}-{w}", Self::word(rng)),
                Flavour::Node => format!("node-{w}"),
                Flavour::Perl => format!("lib{w}-perl"),
                Flavour::RCran => format!("r-cran-{w}"),
                Flavour::Rust => format!("rust-{w}"),
            };
            if candidate.len() <= 48 && self.used_sources.insert(candidate.clone()) {
                break candidate;
            }
        };
        let base = name.clone();
        let stem = base.strip_prefix("python-").unwrap_or(&base).to_string();
        // (name, arch, section override) of each binary.
        let mut bins: Vec<(String, &'static str, Option<&'static str>)> = match flavour {
            Flavour::Plain => {
                let mut v = vec![(base.clone(), "amd64", None)];
                if rng.chance(0.35) {
                    v.push((format!("{base}-common"), "all", None));
                }
                if rng.chance(0.2) {
                    v.push((format!("{base}-data"), "all", None));
                }
                if rng.chance(0.2) {
                    v.push((format!("{base}-doc"), "all", Some("doc")));
                }
                if rng.chance(0.1) {
                    for p in 0..rng.range(1, 6) {
                        v.push((
                            format!(
                                "{base}-plugin-{}",
                                Self::word(rng).chars().take(6 + p as usize).collect::<String>()
                            ),
                            "amd64",
                            None,
                        ));
                    }
                }
                v
            }
            Flavour::Lib => {
                let so = rng.range(0, 12);
                let mut v = vec![
                    (format!("{base}{so}"), "amd64", Some("libs")),
                    (format!("{base}-dev"), "amd64", Some("libdevel")),
                ];
                if rng.chance(0.3) {
                    v.push((format!("{base}-doc"), "all", Some("doc")));
                }
                if rng.chance(0.2) {
                    v.push((format!("{base}-bin"), "amd64", Some("utils")));
                }
                v
            }
            Flavour::Python => {
                let arch = if rng.chance(0.7) { "all" } else { "amd64" };
                let mut v = vec![(format!("python3-{stem}"), arch, Some("python"))];
                if rng.chance(0.25) {
                    v.push((format!("python-{stem}-doc"), "all", Some("doc")));
                }
                v
            }
            Flavour::Golang => vec![(format!("{base}-dev"), "all", Some("golang"))],
            Flavour::Node => vec![(base.clone(), "all", Some("javascript"))],
            Flavour::Perl => vec![(base.clone(), if rng.chance(0.8) { "all" } else { "amd64" }, Some("perl"))],
            Flavour::RCran => vec![(base.clone(), "amd64", Some("gnu-r"))],
            Flavour::Rust => vec![(format!("librust-{}-dev", &base[5..]), "amd64", Some("rust"))],
        };
        bins.dedup_by(|a, b| a.0 == b.0);
        let component = if rng.chance(self.contrib_fraction) { "contrib" } else { "main" };
        let default_section = Self::section(rng);
        let maintainer = rng.pick(&self.maintainers).clone();
        let version = Version::random(rng);
        let mut binaries = Vec::with_capacity(bins.len());
        for (bname, arch, section) in bins {
            let bname = self.unique_binary(bname);
            let section = section.unwrap_or(default_section);
            let section = if component == "main" { section.to_string() } else { format!("{component}/{section}") };
            let priority = match rng.below(100) {
                0 => "required",
                1 => "important",
                2..=3 => "standard",
                _ => "optional",
            };
            let mut deps = Vec::new();
            if arch == "amd64" {
                deps.push(format!("libc6 (>= 2.{})", rng.range(14, 36)));
            }
            if !existing.is_empty() {
                for _ in 0..rng.below(6) {
                    let d = rng.pick(existing);
                    if rng.chance(0.4) {
                        deps.push(format!("{d} (>= {}.{})", rng.below(10), rng.below(20)));
                    } else {
                        deps.push(d.clone());
                    }
                }
            }
            deps.dedup();
            binaries.push(Binary {
                name: bname,
                arch,
                payload: self.sizes.sample(rng),
                depends: deps.join(", "),
                section,
                priority,
                desc_seed: rng.next_u64(),
                file: None,
            });
        }
        Source { name, component, version, maintainer, binaries }
    }

    /// A new upload of `src`: a new version and slightly different sizes.
    pub fn upgrade(&self, rng: &mut Rng, src: &mut Source) {
        src.version.bump(rng);
        for b in &mut src.binaries {
            let factor = rng.log_normal(1.0, 0.08);
            b.payload = ((b.payload as f64 * factor).round() as u64).max(1);
            b.file = None;
        }
    }
}

/// Short and long description of a binary package, stable across versions.
pub fn description(name: &str, desc_seed: u64) -> (String, Vec<String>) {
    let mut rng = Rng::new(desc_seed);
    let mut short = String::new();
    for i in 0..rng.range(3, 7) {
        if i > 0 {
            short.push(' ');
        }
        short.push_str(rng.pick::<&str>(WORDS));
    }
    let short = format!("{short} ({name})");
    let mut long = Vec::new();
    for _ in 0..rng.range(1, 3) {
        let mut line = String::new();
        while line.len() < 60 {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(rng.pick::<&str>(WORDS));
        }
        line.push('.');
        long.push(line);
    }
    (short, long)
}
