//! Checks upstream Release signatures with `gpgv`, the verifier apt itself uses, so that
//! asof accepts exactly what apt would. Armored keyrings are dearmored first (gpgv reads
//! only binary ones). The Release text used afterwards is what gpgv says was signed.
//! Verification blocks (a child process, temp files): async callers run it on the blocking
//! pool, and gpgv is killed if it runs past its timeout.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;

#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    #[error("keyring {path}: {reason}")]
    Keyring { path: String, reason: String },
    #[error("no valid signature by a key in the keyring: {0}")]
    Invalid(String),
    #[error("running gpgv (install the 'gpgv' package): {0}")]
    Gpgv(std::io::Error),
    #[error("gpgv did not finish within {}; it was killed", humantime::format_duration(*.0))]
    Timeout(Duration),
}

/// Which gpgv to run and for how long at most.
#[derive(Debug, Clone)]
pub struct Gpgv {
    pub program: PathBuf,
    pub timeout: Duration,
}

impl Default for Gpgv {
    /// `gpgv` from `PATH`, or the program named by `ASOF_GPGV` (for packagers who ship it
    /// elsewhere, and for tests), with a one-minute limit: a verification takes
    /// milliseconds, so a minute means it hangs.
    fn default() -> Self {
        let program = std::env::var_os("ASOF_GPGV").filter(|p| !p.is_empty()).unwrap_or_else(|| "gpgv".into());
        Self { program: program.into(), timeout: Duration::from_secs(60) }
    }
}

/// A successful verification.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The signed bytes (for InRelease: the clearsigned text without armor).
    pub signed: Vec<u8>,
    /// Fingerprints of the keys that made valid signatures.
    pub fingerprints: Vec<String>,
}

/// A keyring ready for gpgv: a binary keyring file in a temp dir.
pub struct Keyring {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    gpgv: Gpgv,
}

impl Keyring {
    pub fn load(path: &Path, gpgv: Gpgv) -> Result<Self, SignatureError> {
        let err = |reason: String| SignatureError::Keyring { path: path.display().to_string(), reason };
        let bytes = std::fs::read(path).map_err(|e| err(e.to_string()))?;
        let binary = if bytes.starts_with(b"-----BEGIN PGP") { dearmor(&bytes).map_err(err)? } else { bytes };
        if binary.is_empty() {
            return Err(err("the keyring is empty".into()));
        }
        let dir = tempfile::tempdir().map_err(|e| err(e.to_string()))?;
        let kpath = dir.path().join("keyring.gpg");
        std::fs::write(&kpath, binary).map_err(|e| err(e.to_string()))?;
        Ok(Self { _dir: dir, path: kpath, gpgv })
    }

    /// Verifies a clearsigned InRelease and returns its signed text.
    pub fn verify_inline(&self, inrelease: &[u8]) -> Result<Verified, SignatureError> {
        let dir = tempfile::tempdir().map_err(SignatureError::Gpgv)?;
        let input = dir.path().join("InRelease");
        let output = dir.path().join("Release");
        std::fs::write(&input, inrelease).map_err(SignatureError::Gpgv)?;
        let fingerprints = self.run(dir.path(), &["--output".as_ref(), output.as_os_str(), input.as_os_str()])?;
        let signed = std::fs::read(&output).map_err(SignatureError::Gpgv)?;
        Ok(Verified { signed, fingerprints })
    }

    /// Verifies `Release` against a detached `Release.gpg`.
    pub fn verify_detached(&self, release: &[u8], signature: &[u8]) -> Result<Verified, SignatureError> {
        let dir = tempfile::tempdir().map_err(SignatureError::Gpgv)?;
        let data = dir.path().join("Release");
        let sig = dir.path().join("Release.gpg");
        std::fs::write(&data, release).map_err(SignatureError::Gpgv)?;
        std::fs::write(&sig, signature).map_err(SignatureError::Gpgv)?;
        let fingerprints = self.run(dir.path(), &[sig.as_os_str(), data.as_os_str()])?;
        Ok(Verified { signed: release.to_vec(), fingerprints })
    }

    /// Runs gpgv with its output in files of `dir` rather than pipes: nothing to drain while
    /// waiting, and no reader left hanging by a killed gpgv's children.
    fn run(&self, dir: &Path, args: &[&std::ffi::OsStr]) -> Result<Vec<String>, SignatureError> {
        let (stdout_path, stderr_path) = (dir.join("gpgv.status"), dir.join("gpgv.stderr"));
        let file = |p: &Path| std::fs::File::create(p).map_err(SignatureError::Gpgv);
        let mut child = Command::new(&self.gpgv.program)
            .arg("--status-fd")
            .arg("1")
            .arg("--keyring")
            .arg(&self.path)
            .args(args)
            .stdin(Stdio::null())
            .stdout(file(&stdout_path)?)
            .stderr(file(&stderr_path)?)
            .spawn()
            .map_err(SignatureError::Gpgv)?;
        let exit = wait_at_most(&mut child, self.gpgv.timeout)?;
        let stdout = std::fs::read(&stdout_path).map_err(SignatureError::Gpgv)?;
        let stderr = std::fs::read(&stderr_path).map_err(SignatureError::Gpgv)?;
        let status = String::from_utf8_lossy(&stdout);
        // VALIDSIG is printed only for a good signature by a usable (not expired, not
        // revoked) key; the primary key fingerprint is its last field.
        let fingerprints: Vec<String> = status
            .lines()
            .filter_map(|l| l.strip_prefix("[GNUPG:] VALIDSIG "))
            .filter_map(|rest| rest.split_whitespace().last().map(String::from))
            .collect();
        if !exit.success() || fingerprints.is_empty() {
            let reason = String::from_utf8_lossy(&stderr)
                .lines()
                .map(|l| l.trim_start_matches("gpgv: ").trim().to_string())
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join("; ");
            return Err(SignatureError::Invalid(if reason.is_empty() { "gpgv rejected it".into() } else { reason }));
        }
        Ok(fingerprints)
    }
}

/// Waits for `child`, killing it after `timeout`. Polls rather than waiting on SIGCHLD: a
/// process-wide signal handler would compete with tokio's own for its child processes.
fn wait_at_most(child: &mut Child, timeout: Duration) -> Result<ExitStatus, SignatureError> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().map_err(SignatureError::Gpgv)? {
            return Ok(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(SignatureError::Timeout(timeout));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn dearmor(text: &[u8]) -> Result<Vec<u8>, String> {
    let text = std::str::from_utf8(text).map_err(|_| "armored keyring is not text".to_string())?;
    let mut out = Vec::new();
    let mut lines = text.lines().map(str::trim_end);
    while let Some(line) = lines.next() {
        if !line.starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----") {
            continue;
        }
        // Armor headers end at the first blank line.
        for header in lines.by_ref() {
            if header.trim().is_empty() {
                break;
            }
        }
        let mut b64 = String::new();
        for body in lines.by_ref() {
            if body.starts_with("-----END") {
                break;
            }
            if body.starts_with('=') {
                continue; // CRC-24 checksum line
            }
            b64.push_str(body.trim());
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64.as_bytes())
            .map_err(|e| format!("bad base64 in armored keyring: {e}"))?;
        out.extend(bytes);
    }
    if out.is_empty() {
        return Err("no PGP PUBLIC KEY BLOCK found".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(p: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(p)
    }

    #[test]
    fn verifies_fixture_with_binary_and_armored_keyrings() {
        let inrelease = std::fs::read(fixture("apt/v1/dists/stable/InRelease")).unwrap();
        for key in ["keys/test-signing.gpg", "keys/test-signing.pub.asc"] {
            let v = Keyring::load(&fixture(key), Gpgv::default()).unwrap().verify_inline(&inrelease).unwrap();
            assert_eq!(v.fingerprints, ["D35193C26D156CC17F75638D588654D34D56B23D"]);
            assert_eq!(v.signed, std::fs::read(fixture("apt/v1/dists/stable/Release")).unwrap());
        }
        let release = std::fs::read(fixture("apt/v1/dists/stable/Release")).unwrap();
        let sig = std::fs::read(fixture("apt/v1/dists/stable/Release.gpg")).unwrap();
        let k = Keyring::load(&fixture("keys/test-signing.gpg"), Gpgv::default()).unwrap();
        assert!(k.verify_detached(&release, &sig).is_ok());
        let mut tampered = release.clone();
        tampered[0] ^= 1;
        assert!(matches!(k.verify_detached(&tampered, &sig), Err(SignatureError::Invalid(_))));
    }

    #[test]
    fn a_hanging_gpgv_is_killed_at_its_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("hanging-gpgv");
        std::fs::write(&script, "#!/bin/sh\nexec sleep 30\n").unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let gpgv = Gpgv { program: script, timeout: Duration::from_millis(300) };
        let k = Keyring::load(&fixture("keys/test-signing.gpg"), gpgv).unwrap();
        let started = Instant::now();
        let err = k.verify_inline(&std::fs::read(fixture("apt/v1/dists/stable/InRelease")).unwrap()).unwrap_err();
        assert_eq!(err.to_string(), "gpgv did not finish within 300ms; it was killed");
        assert!(started.elapsed() < Duration::from_secs(10), "waited {:?}", started.elapsed());
    }

    #[test]
    fn verifies_a_real_debian_inrelease_with_the_debian_keyring() {
        let inrelease = std::fs::read(fixture("debian/bookworm-security_InRelease")).unwrap();
        let debian = Path::new("/usr/share/keyrings/debian-archive-keyring.gpg");
        let v = Keyring::load(debian, Gpgv::default()).unwrap().verify_inline(&inrelease).unwrap();
        assert!(!v.fingerprints.is_empty());
        assert!(String::from_utf8_lossy(&v.signed).contains("Codename: bookworm-security"));
        // The fixture key did not sign it.
        let wrong = Keyring::load(&fixture("keys/test-signing.gpg"), Gpgv::default()).unwrap();
        assert!(matches!(wrong.verify_inline(&inrelease), Err(SignatureError::Invalid(_))));
        // One changed byte in the signed text breaks it.
        let text = String::from_utf8(inrelease).unwrap().replacen(
            "Codename: bookworm-security",
            "Codename: bookworm-securitx",
            1,
        );
        let err = Keyring::load(debian, Gpgv::default()).unwrap().verify_inline(text.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("BAD signature"), "{err}");
    }
}
