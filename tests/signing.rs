//! The signing mode, black-box: `asof archive signing` on the real binary, the served
//! re-signed files checked by the real gpgv, and apt 2.6 updating and downloading from a
//! re-signed archive with `Signed-By` the key asof serves.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::apt::Apt;
use common::*;

/// A throw-away GNUPGHOME (never ~/.gnupg) in `dir`, for gpg and gpgv.
struct Gpg {
    home: PathBuf,
}

impl Gpg {
    fn new(dir: &Path) -> Self {
        let home = dir.join("gnupg");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        Self { home }
    }

    fn run(&self, program: &str, args: &[&str]) -> std::process::Output {
        Command::new(program)
            .env("GNUPGHOME", &self.home)
            .env("LC_ALL", "C")
            .args(if program == "gpg" { &["--batch", "--no-tty"][..] } else { &[] })
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{program} must be installed: {e}"))
    }

    /// Generates a key of `algo` (gpg's names: `ed25519`, `rsa2048`) for signing only,
    /// protected by `passphrase` when given, and returns it armored with its fingerprint.
    fn generate(&self, uid: &str, algo: &str, passphrase: Option<&str>) -> (String, String) {
        let pass = passphrase.unwrap_or("");
        let gen_out = self.run(
            "gpg",
            &["--pinentry-mode", "loopback", "--passphrase", pass, "--quick-gen-key", uid, algo, "sign", "never"],
        );
        assert!(gen_out.status.success(), "gpg --quick-gen-key: {}", String::from_utf8_lossy(&gen_out.stderr));
        let list = self.run("gpg", &["--with-colons", "--list-secret-keys", uid]);
        let list = String::from_utf8(list.stdout).unwrap();
        let fpr = list.lines().find_map(|l| l.strip_prefix("fpr:")).unwrap().trim_matches(':').to_string();
        let export = self.run(
            "gpg",
            &["--pinentry-mode", "loopback", "--passphrase", pass, "--armor", "--export-secret-keys", &fpr],
        );
        assert!(export.status.success(), "{}", String::from_utf8_lossy(&export.stderr));
        (String::from_utf8(export.stdout).unwrap(), fpr)
    }

    /// gpgv with `keyring` (armored keys are dearmored first, as apt does) over `files`;
    /// returns the status-fd lines that say who signed and when.
    fn verify(&self, keyring: &Path, files: &[&Path]) -> Vec<String> {
        let mut args = vec!["--status-fd", "1", "--keyring", keyring.to_str().unwrap()];
        args.extend(files.iter().map(|f| f.to_str().unwrap()));
        let out = self.run("gpgv", &args);
        let status = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "gpgv failed:\n{status}\n{}", String::from_utf8_lossy(&out.stderr));
        status
            .lines()
            .filter(|l| l.starts_with("[GNUPG:] GOODSIG") || l.starts_with("[GNUPG:] VALIDSIG"))
            .map(str::to_string)
            .collect()
    }

    fn dearmor(&self, armored: &Path, out: &Path) {
        let o = self.run("gpg", &["--yes", "--output", out.to_str().unwrap(), "--dearmor", armored.to_str().unwrap()]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
}

impl Drop for Gpg {
    /// gpg starts an agent for the home; it must not outlive the test.
    fn drop(&mut self) {
        let _ = Command::new("gpgconf").env("GNUPGHOME", &self.home).args(["--kill", "all"]).output();
    }
}

fn ok(out: &std::process::Output) -> String {
    assert!(out.status.success(), "asof failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// Signs archive `debian` of `data` with a new key of `algo`, starts a server on it, and
/// saves the public key the server hands out: (server, that key's file).
fn signed_server(dir: &Path, data: &Path, uid: &str, algo: &str) -> (Server, PathBuf) {
    let (secret, _) = Gpg::new(dir).generate(uid, algo, None);
    let key_file = dir.join("key.asc");
    std::fs::write(&key_file, secret).unwrap();
    ok(&asof(data, &["archive", "signing", "debian", "--key", key_file.to_str().unwrap()]));
    let server = Server::start(data);
    let served = dir.join("asof-debian.asc");
    std::fs::write(&served, server.get("/api/v1/archives/debian/-/signing-key").body).unwrap();
    (server, served)
}

/// The commit time of a snapshot, in unix seconds, from the API.
fn committed_at(server: &Server, id: &str) -> i64 {
    let j = server.get(&format!("/api/v1/archives/debian/-/snapshots/{id}")).json();
    chrono::DateTime::parse_from_rfc3339(j["committed_at"].as_str().unwrap()).unwrap().timestamp()
}

/// Both key kinds: the served InRelease and Release + Release.gpg verify with the real
/// gpgv against the served public key, signed by that key at the snapshot's commit time.
#[test]
fn gpgv_verifies_what_is_served_for_ed25519_and_rsa_keys() {
    for algo in ["ed25519", "rsa2048"] {
        let tmp = tempfile::tempdir().unwrap();
        let gpg = Gpg::new(tmp.path());
        let (secret, fpr) = gpg.generate("asof signing test <t@asof.invalid>", algo, None);
        let key_file = tmp.path().join("key.asc");
        std::fs::write(&key_file, &secret).unwrap();
        let data = tmp.path().join("data");
        let id = publish(&data, "debian", &fixtures().join("apt/v1"));
        assert_eq!(ok(&asof(&data, &["archive", "signing", "debian"])), "off\n");
        assert_eq!(
            ok(&asof(&data, &["archive", "signing", "debian", "--key", key_file.to_str().unwrap()])),
            format!("{fpr}\n")
        );
        assert_eq!(ok(&asof(&data, &["archive", "signing", "debian"])), format!("{fpr}\n"));

        let server = Server::start(&data);
        let key = server.get("/api/v1/archives/debian/-/signing-key");
        assert_eq!(key.status, 200, "{}", key.text());
        assert_eq!(key.header("content-type"), "application/pgp-keys");
        let pubkey = tmp.path().join("served.asc");
        std::fs::write(&pubkey, &key.body).unwrap();
        let keyring = tmp.path().join("served.gpg");
        gpg.dearmor(&pubkey, &keyring);

        let dir = tmp.path().join("got");
        std::fs::create_dir_all(&dir).unwrap();
        for name in ["InRelease", "Release", "Release.gpg"] {
            let r = server.get(&format!("/debian/{id}/dists/stable/{name}"));
            assert_eq!(r.status, 200, "{name}: {}", r.text());
            std::fs::write(dir.join(name), &r.body).unwrap();
        }
        let release = std::fs::read_to_string(dir.join("Release")).unwrap();
        let want = String::from_utf8(std::fs::read(fixtures().join("apt/v1/dists/stable/Release")).unwrap())
            .unwrap()
            .replace("MD5Sum:\n", &format!("Snapshots: http://{}/debian/@SNAPSHOTID@/\nMD5Sum:\n", server.addr));
        assert_eq!(release, want, "{algo}");

        let at = committed_at(&server, &id);
        for files in [vec![dir.join("InRelease")], vec![dir.join("Release.gpg"), dir.join("Release")]] {
            let refs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
            let lines = gpg.verify(&keyring, &refs);
            assert_eq!(lines.len(), 2, "{algo} {files:?}: {lines:?}");
            assert!(lines[0].starts_with(&format!("[GNUPG:] GOODSIG {} asof signing test", &fpr[24..])), "{lines:?}");
            // VALIDSIG <fpr> <date> <sig timestamp> ...
            let fields: Vec<&str> = lines[1].split(' ').collect();
            assert_eq!((fields[2], fields[4]), (fpr.as_str(), at.to_string().as_str()), "{algo}: {lines:?}");
        }
    }
}

/// A passphrase-protected key is refused with the reason, and nothing is stored.
#[test]
fn a_protected_key_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let gpg = Gpg::new(tmp.path());
    let (secret, _) = gpg.generate("protected <p@asof.invalid>", "ed25519", Some("secret words"));
    let key_file = tmp.path().join("key.asc");
    std::fs::write(&key_file, secret).unwrap();
    let data = tmp.path().join("data");
    publish(&data, "debian", &fixtures().join("apt/v1"));
    let out = asof(&data, &["archive", "signing", "debian", "--key", key_file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "error: {} cannot sign: the secret key is protected by a passphrase; asof signs unattended \
             and keeps the key in its catalog, so give it a key without one (e.g. a dedicated key made with \
             `gpg --batch --passphrase '' --quick-gen-key`)\n",
            key_file.display()
        )
    );
    assert_eq!(ok(&asof(&data, &["archive", "signing", "debian"])), "off\n");
    let keys = fixtures().join("keys");
    let refused = |file: &Path| {
        let out = asof(&data, &["archive", "signing", "debian", "--key", file.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2));
        String::from_utf8(out.stderr).unwrap()
    };
    let public = keys.join("test-signing.pub.asc");
    assert_eq!(
        refused(&public),
        format!(
            "error: {} cannot sign: not an armored OpenPGP secret key (unexpected block type: PGP PUBLIC KEY BLOCK); \
             export one with `gpg --armor --export-secret-keys KEYID`\n",
            public.display()
        )
    );
    let binary = keys.join("test-signing.gpg");
    assert_eq!(
        refused(&binary),
        format!(
            "error: {} is not an armored key (binary?); export it with `gpg --armor --export-secret-keys KEYID`\n",
            binary.display()
        )
    );
    assert_eq!(ok(&asof(&data, &["archive", "signing", "debian"])), "off\n");
    let out = asof(&data, &["archive", "signing", "nosuch", "--off"]);
    assert_eq!(String::from_utf8_lossy(&out.stderr), "error: no archive named 'nosuch'\n");
}

/// apt 2.6 on the host, `Signed-By` the key downloaded from asof: update and download from
/// the re-signed pinned snapshot, with no W:/E: line.
#[test]
fn apt_uses_a_re_signed_archive_with_the_served_key() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let id = publish(&data, "debian", &fixtures().join("apt/v1"));
    let (server, served) = signed_server(tmp.path(), &data, "asof apt test <a@asof.invalid>", "ed25519");

    let root = tmp.path().join("apt");
    let line = format!("deb [signed-by={}] {} stable main", served.display(), server.url(&format!("/debian/{id}/")));
    let apt = Apt::new(&root, &line, None);
    apt.update().assert_clean();
    apt.download(&["hello-asof", "asof-tzdata"]).assert_clean();
    let got = apt.downloaded();
    let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["asof-tzdata_2025b-0+deb12u1_all.deb", "hello-asof_1.0-1_all.deb"]);
    assert_eq!(
        got[1].1,
        std::fs::read(fixtures().join("apt/v1/pool/main/h/hello-asof/hello-asof_1.0-1_all.deb")).unwrap()
    );
    // What apt stored is the re-signed InRelease: it names asof's snapshot server.
    let lists = std::fs::read_dir(root.join("state/lists")).unwrap();
    let inrelease = lists.map(|e| e.unwrap().path()).find(|p| p.to_string_lossy().ends_with("_InRelease")).unwrap();
    let text = std::fs::read_to_string(inrelease).unwrap();
    assert!(text.contains(&format!("\nSnapshots: http://{}/debian/@SNAPSHOTID@/\n", server.addr)), "{text}");
}

/// What apt >= 2.7 does with `-S ID`, done by hand with apt 2.6: the live source's InRelease
/// names the snapshot server, and that URL with the ID substituted is a source that apt
/// verifies with the same key and that holds the packages of then.
#[test]
fn the_snapshots_field_of_the_live_source_leads_to_the_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let id1 = publish(&data, "debian", &fixtures().join("apt/v1"));
    publish(&data, "debian", &fixtures().join("apt/v2"));
    let (server, served) = signed_server(tmp.path(), &data, "asof live test <l@asof.invalid>", "rsa2048");
    let source = |url: &str| format!("deb [signed-by={}] {url} stable main", served.display());

    let live = Apt::new(&tmp.path().join("live"), &source(&server.url("/debian/")), None);
    live.update().assert_clean();
    live.download(&["hello-asof"]).assert_clean();
    assert_eq!(live.downloaded()[0].0, "hello-asof_1.1-1_all.deb");
    let lists = std::fs::read_dir(tmp.path().join("live/state/lists")).unwrap();
    let inrelease = lists.map(|e| e.unwrap().path()).find(|p| p.to_string_lossy().ends_with("_InRelease")).unwrap();
    let text = std::fs::read_to_string(inrelease).unwrap();
    let template = text.lines().find_map(|l| l.strip_prefix("Snapshots: ")).expect("a Snapshots: field");
    assert_eq!(template, format!("http://{}/debian/@SNAPSHOTID@/", server.addr));

    let pinned = Apt::new(&tmp.path().join("pinned"), &source(&template.replace("@SNAPSHOTID@", &id1)), None);
    pinned.update().assert_clean();
    pinned.download(&["hello-asof"]).assert_clean();
    assert_eq!(pinned.downloaded()[0].0, "hello-asof_1.0-1_all.deb");
}
