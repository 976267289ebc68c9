//! A throwaway Debian trixie system per test, to run apt >= 2.7 for real: an overlay over the
//! cached chroot of scripts/trixie-chroot.sh, mounted for one command at a time inside a private
//! mount namespace, so that no mount outlives its command (nothing to unmount, even when a test
//! panics) and tests never write into the shared tree. The network namespace is the host's:
//! `http://127.0.0.1:PORT/` of a test server works from inside.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::apt::AptRun;

/// Exit status of scripts/trixie-chroot.sh when Debian's mirror cannot be reached.
const UNREACHABLE: i32 = 75;

/// The apt the tests were written against: trixie's 3.0 (snapshot mode exists since 2.7).
pub const APT_SERIES: &str = "apt 3.0.";

pub struct Trixie {
    lower: PathBuf,
    dir: tempfile::TempDir,
}

impl Trixie {
    /// A fresh system over the cached chroot (built on first use). `None`, after a loud message
    /// on stderr, only when the chroot cannot be built because Debian's mirror is unreachable.
    pub fn new() -> Option<Self> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/trixie-chroot.sh");
        let out = Command::new(&script)
            .stderr(Stdio::inherit())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        if out.status.code() == Some(UNREACHABLE) {
            eprintln!(
                "\n\
                 ********************************************************************\n\
                 SKIPPED: no Debian trixie chroot: debootstrap cannot reach Debian's\n\
                 mirror (see above). apt >= 2.7 snapshot mode is NOT tested here.\n\
                 ********************************************************************\n"
            );
            return None;
        }
        assert!(out.status.success(), "{} failed: {}", script.display(), out.status);
        let lower = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
        let dir = tempfile::tempdir().unwrap();
        for d in ["upper", "work", "root"] {
            std::fs::create_dir(dir.path().join(d)).unwrap();
        }
        let system = Self { lower, dir };
        let version = system.run(&["apt", "--version"]);
        assert!(version.text.starts_with(APT_SERIES), "the chroot's apt is not {APT_SERIES}x: {}", version.text);
        Some(system)
    }

    /// Writes a file of the chroot (an absolute path inside it), creating its directories.
    pub fn write(&self, path: &str, contents: impl AsRef<[u8]>) {
        // The overlay is not mounted between commands, so its upper layer may be written directly.
        let file = self.dir.path().join("upper").join(path.trim_start_matches('/'));
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, contents).unwrap();
    }

    /// Runs a command in the chroot as root with a clean environment; stdout then stderr.
    pub fn run(&self, args: &[&str]) -> AptRun {
        // $0 is the temp dir, $1 the lower layer; the command follows.
        let script = r#"set -e
d=$0; lower=$1; shift
mount -t overlay overlay -o "lowerdir=$lower,upperdir=$d/upper,workdir=$d/work" "$d/root"
mount --bind /proc "$d/root/proc"
mount --rbind /dev "$d/root/dev" # with /dev/pts: dpkg logs through a pseudo-terminal
exec chroot "$d/root" "$@""#;
        let out = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", script])
            .arg(self.dir.path())
            .arg(&self.lower)
            .args(["env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LC_ALL=C.UTF-8"])
            .arg("DEBIAN_FRONTEND=noninteractive")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("unshare (util-linux) must be installed");
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        AptRun { args: args.iter().map(|a| a.to_string()).collect(), code: out.status.code(), text }
    }
}
