//! The real apt-get, isolated from the host's configuration (APT_CONFIG plus -o Dir::...).
//! A missing apt-get fails the test: every run is checked to have started.

use std::path::{Path, PathBuf};
use std::process::Command;

/// One isolated apt root with one sources line.
pub struct Apt {
    root: PathBuf,
}

/// What one apt-get command did.
#[derive(Debug)]
pub struct AptRun {
    pub args: Vec<String>,
    pub code: Option<i32>,
    /// stdout then stderr.
    pub text: String,
}

impl AptRun {
    /// apt's `E:` and `W:` lines (`Error:`, `Warning:` and `Notice:` from apt 3's `apt`), in
    /// order: the reasons apt gives for failing or warning.
    pub fn problems(&self) -> Vec<&str> {
        const MARKS: [&str; 5] = ["E:", "W:", "Error:", "Warning:", "Notice:"];
        self.text.lines().filter(|l| MARKS.iter().any(|m| l.starts_with(m))).collect()
    }

    /// Asserts that the command succeeded without any warning or error.
    #[track_caller]
    pub fn assert_clean(&self) {
        assert_eq!(self.code, Some(0), "apt-get {:?} failed:\n{}", self.args, self.text);
        // apt exits 0 on some failures it only warns about (e.g. a bad signature on
        // update of an already-known repo): any W:/E: line fails the test.
        assert!(self.problems().is_empty(), "apt-get {:?} warned:\n{}", self.args, self.text);
    }

    /// Asserts that the command failed with apt's error exit code (100) giving exactly
    /// these `E:`/`W:` lines.
    #[track_caller]
    pub fn assert_failed_with(&self, problems: &[&str]) {
        assert_eq!(self.code, Some(100), "apt-get {:?} should fail:\n{}", self.args, self.text);
        assert_eq!(self.problems(), problems, "apt-get {:?} said:\n{}", self.args, self.text);
    }
}

impl Apt {
    /// A fresh apt root under `root` reading only `source_line`, with `auth` as the content
    /// of its auth.conf (netrc format).
    pub fn new(root: &Path, source_line: &str, auth: Option<&str>) -> Self {
        for d in ["empty", "state/lists/partial", "cache/archives/partial", "dl"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::write(root.join("status"), "").unwrap();
        std::fs::write(root.join("auth.conf"), auth.unwrap_or("")).unwrap();
        std::fs::write(root.join("sources.list"), format!("{source_line}\n")).unwrap();
        // Dir::Etc::Parts must come from APT_CONFIG: apt reads apt.conf.d before parsing -o.
        std::fs::write(
            root.join("apt.conf"),
            format!("Dir::Etc::Main \"/dev/null\";\nDir::Etc::Parts \"{}/empty\";\n", root.display()),
        )
        .unwrap();
        Self { root: root.to_path_buf() }
    }

    /// Runs apt-get with `args` in `cwd`. Panics (failing the test) if apt-get cannot be run.
    pub fn run(&self, args: &[&str], cwd: &Path) -> AptRun {
        let root = self.root.display();
        let out = Command::new("apt-get")
            .current_dir(cwd)
            .env("APT_CONFIG", self.root.join("apt.conf"))
            .env("LC_ALL", "C")
            .arg("-o")
            .arg(format!("Dir::Etc::SourceList={root}/sources.list"))
            .arg("-o")
            .arg(format!("Dir::Etc::SourceParts={root}/empty"))
            .arg("-o")
            .arg(format!("Dir::State={root}/state"))
            .arg("-o")
            .arg(format!("Dir::State::status={root}/status"))
            .arg("-o")
            .arg(format!("Dir::Cache={root}/cache"))
            .arg("-o")
            .arg(format!("Dir::Etc::netrc={root}/auth.conf"))
            .arg("-o")
            .arg(format!("Dir::Etc::netrcparts={root}/empty"))
            .args(["-o", "APT::Architecture=amd64", "-o", "APT::Sandbox::User=root"])
            .args(args)
            .output()
            .expect("apt-get must be installed (Debian: it always is)");
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        AptRun { args: args.iter().map(|a| a.to_string()).collect(), code: out.status.code(), text }
    }

    pub fn update(&self) -> AptRun {
        self.run(&["update"], &self.root)
    }

    /// `apt-get download PACKAGES` into this root's `dl` directory.
    pub fn download(&self, packages: &[&str]) -> AptRun {
        let mut args = vec!["download"];
        args.extend_from_slice(packages);
        self.run(&args, &self.root.join("dl"))
    }

    /// The files `download` fetched, by name, sorted.
    pub fn downloaded(&self) -> Vec<(String, Vec<u8>)> {
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(self.root.join("dl"))
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap())
            })
            .collect();
        files.sort();
        files
    }
}

/// Runs apt-get update and download against one sources line in a fresh, isolated apt
/// root; both must succeed cleanly. Returns the bytes of the downloaded files by name.
pub fn apt_download(root: &Path, source_line: &str, packages: &[&str]) -> Vec<(String, Vec<u8>)> {
    apt_download_with_auth(root, source_line, packages, None)
}

/// As `apt_download`, with `auth` as the content of apt's auth.conf (netrc format).
pub fn apt_download_with_auth(
    root: &Path,
    source_line: &str,
    packages: &[&str],
    auth: Option<&str>,
) -> Vec<(String, Vec<u8>)> {
    let apt = Apt::new(root, source_line, auth);
    apt.update().assert_clean();
    apt.download(packages).assert_clean();
    apt.downloaded()
}
