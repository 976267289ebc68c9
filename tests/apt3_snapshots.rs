//! apt >= 2.7's own snapshot mode against asof, run by the real apt 3 of a Debian trixie chroot
//! (scripts/trixie-chroot.sh): `apt update -S ID` then `apt install -S ID` install what was
//! current at ID from archives mirrored with their upstream signature byte-identical, shaped
//! like Debian, Debian-Security and Ubuntu (apt picks their snapshot server by Origin and
//! Label). The client configuration is read from docs/mirroring.md: the doc shows what runs.

mod common;

use std::path::Path;
use std::process::Command;

use common::apt::AptRun;
use common::chroot::Trixie;
use common::*;

/// An upstream archive as apt tells it apart: by the Origin and Label of its Release.
struct Shape {
    archive: &'static str,
    origin: &'static str,
    label: &'static str,
    /// The first suite is the release; with more, it never changes (as Ubuntu's `noble`) and
    /// the others change between the two runs (`noble-updates`).
    suites: &'static [&'static str],
    /// Extra `asof mirror` options; `--no-contents` also gives the upstream Contents files.
    scope: &'static [&'static str],
}

const DEBIAN: Shape = Shape { archive: "debian", origin: "Debian", label: "Debian", suites: &["trixie"], scope: &[] };
const DEBIAN_SECURITY: Shape = Shape {
    archive: "debian-security",
    origin: "Debian",
    label: "Debian-Security",
    suites: &["trixie-security"],
    scope: &[],
};
const UBUNTU: Shape = Shape {
    archive: "ubuntu",
    origin: "Ubuntu",
    label: "Ubuntu",
    suites: &["noble", "noble-updates"],
    scope: &["--no-contents"],
};

/// Where a Contents file of the upstream is, that `--no-contents` leaves out.
const CONTENTS: &str = "main/Contents-amd64.gz";

/// The host name the documentation uses for an asof server.
const DOC_HOST: &str = "http://asof.example";
/// Where the chroot keeps the fixture key that signs the test upstreams.
const TEST_KEYRING: &str = "/etc/apt/keyrings/asof-test.gpg";

/// The fenced block of docs/mirroring.md whose first line is `# <file>`: what to write there.
fn doc_block(file: &str) -> String {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/mirroring.md")).unwrap();
    let first = format!("```\n# {file}\n");
    let start = doc.find(&first).unwrap_or_else(|| panic!("docs/mirroring.md has no block for {file}")) + 4;
    let len = doc[start..].find("```\n").unwrap();
    doc[start..start + len].to_string()
}

/// The doc's sources for `shape`, pointing at `server` and trusting the fixture key in
/// place of the upstream's keyring.
fn doc_sources(shape: &Shape, server: &Server) -> String {
    let text = doc_block(&format!("/etc/apt/sources.list.d/{}.sources", shape.archive));
    let lines: Vec<String> = text
        .lines()
        .map(|l| if l.starts_with("Signed-By:") { format!("Signed-By: {TEST_KEYRING}") } else { l.to_string() })
        .collect();
    format!("{}\n", lines.join("\n")).replace(DOC_HOST, &format!("http://{}", server.addr))
}

/// Signs `dist/Release` with the fixture key into `InRelease` and `Release.gpg`, as the
/// upstream does.
fn sign(dist: &Path) {
    let home = tempfile::tempdir().unwrap();
    let gpg = |args: &[&str]| {
        let out =
            Command::new("gpg").args(["--batch", "--yes", "--homedir"]).arg(home.path()).args(args).output().unwrap();
        assert!(out.status.success(), "gpg {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    gpg(&["--import", fixtures().join("keys/test-signing.sec.asc").to_str().unwrap()]);
    let (release, inrelease, detached) = (dist.join("Release"), dist.join("InRelease"), dist.join("Release.gpg"));
    gpg(&["--digest-algo", "SHA512", "--clearsign", "-o", inrelease.to_str().unwrap(), release.to_str().unwrap()]);
    let detached = detached.to_str().unwrap();
    gpg(&["--digest-algo", "SHA512", "--armor", "--detach-sign", "-o", detached, release.to_str().unwrap()]);
    stop_agent(home.path());
}

/// Stops the gpg-agent that signing started for the throw-away GNUPGHOME `home`. Best effort:
/// an agent whose home is gone also ends by itself, only later.
fn stop_agent(home: &Path) {
    let _ = Command::new("gpgconf").arg("--homedir").arg(home).args(["--kill", "all"]).status();
}

/// Writes upstream `shape` under `root/<archive>` as it is at fixture `version` (fixtures/apt/v1
/// or v2): each suite a fixture tree with the suite renamed, Origin and Label set,
/// `valid_until` added, a Contents file when the shape leaves them out, re-signed.
fn upstream_tree(shape: &Shape, version: &str, valid_until: Option<&str>, root: &Path) {
    let to = root.join(shape.archive);
    std::fs::create_dir_all(to.join("dists")).unwrap();
    for (i, suite) in shape.suites.iter().enumerate() {
        let from = fixtures().join("apt").join(if i == 0 && shape.suites.len() > 1 { "v1" } else { version });
        let cp = |a: &Path, b: &Path| assert!(Command::new("cp").arg("-aT").arg(a).arg(b).status().unwrap().success());
        cp(&from.join("pool"), &to.join("pool"));
        let dist = to.join("dists").join(suite);
        cp(&from.join("dists/stable"), &dist);
        let mut release =
            shaped_release(&std::fs::read_to_string(dist.join("Release")).unwrap(), shape, suite, valid_until);
        if shape.scope.contains(&"--no-contents") {
            let contents = format!("Contents of {suite}\n").into_bytes();
            std::fs::write(dist.join(CONTENTS), &contents).unwrap();
            release.push_str(&format!(" {} {} {CONTENTS}\n", sha256_hex(&contents), contents.len()));
        }
        std::fs::write(dist.join("Release"), release).unwrap();
        sign(&dist);
    }
}

/// The fixture's Release text as `suite` of `shape` (its SHA256 section last, as in the fixture).
fn shaped_release(release: &str, shape: &Shape, suite: &str, valid_until: Option<&str>) -> String {
    let mut out = String::new();
    for line in release.lines() {
        let line = match line.split_once(": ").map(|(k, _)| k) {
            Some("Origin") => format!("Origin: {}", shape.origin),
            Some("Label") => format!("Label: {}", shape.label),
            Some(key @ ("Suite" | "Codename")) => format!("{key}: {suite}"),
            _ => line.to_string(),
        };
        out.push_str(&line);
        out.push('\n');
        if let (true, Some(until)) = (line.starts_with("Date: "), valid_until) {
            out.push_str(&format!("Valid-Until: {until}\n"));
        }
    }
    assert!(out.contains("\nSHA256:\n"), "{out}");
    out
}

/// `asof mirror` of `shape` from `upstream` (its base URL, ending in `/`); the new snapshot ID.
fn mirror(data: &Path, shape: &Shape, upstream: &str) -> String {
    let key = fixtures().join("keys/test-signing.gpg");
    let base = format!("{upstream}{}", shape.archive);
    let mut args = vec!["mirror", shape.archive, "--upstream", &base, "--keyring", key.to_str().unwrap()];
    for suite in shape.suites {
        args.extend(["--suite", suite]);
    }
    args.extend_from_slice(shape.scope);
    let out = asof(data, &args);
    assert!(out.status.success(), "mirror failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// An HTTP date `secs` from now, as Release files write them.
fn release_date(secs: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::seconds(secs)).format("%a, %d %b %Y %H:%M:%S UTC").to_string()
}

/// Mirrors `shape` twice (hello-asof 1.0-1, then 1.1-1) and starts a server. Returns the
/// server, the first snapshot's ID and an ID strictly between the two snapshots.
fn two_snapshots(tmp: &Path, shape: &Shape, valid_until: [Option<&str>; 2]) -> (Server, String, String) {
    let (v1, v2, data) = (tmp.join("up1"), tmp.join("up2"), tmp.join("data"));
    upstream_tree(shape, "v1", valid_until[0], &v1);
    upstream_tree(shape, "v2", valid_until[1], &v2);
    let upstream = common::upstream::Upstream::start(v1);
    let first = mirror(&data, shape, &upstream.url);
    let between = id_plus(&first, 1);
    wait_until_past(&between);
    upstream.set_root(v2);
    let second = mirror(&data, shape, &upstream.url);
    assert!(second > between, "{second} must come after {between}");
    (Server::start(&data), first, between)
}

/// A trixie system configured as docs/mirroring.md says for mirrored archives.
fn client(chroot: &Trixie, shape: &Shape, server: &Server) {
    chroot.write(TEST_KEYRING, std::fs::read(fixtures().join("keys/test-signing.gpg")).unwrap());
    let conf = doc_block("/etc/apt/apt.conf.d/50asof-snapshots");
    chroot.write("/etc/apt/apt.conf.d/50asof-snapshots", conf.replace(DOC_HOST, &format!("http://{}", server.addr)));
    chroot.write(&format!("/etc/apt/sources.list.d/{}.sources", shape.archive), doc_sources(shape, server));
}

fn installed(chroot: &Trixie, package: &str) -> String {
    let run = chroot.run(&["dpkg-query", "-W", package]);
    assert_eq!(run.code, Some(0), "{}", run.text);
    run.text
}

/// `apt` with `args` in the chroot; must succeed without a warning or error.
fn apt_clean(chroot: &Trixie, args: &[&str]) -> AptRun {
    let mut all = vec!["apt"];
    all.extend_from_slice(args);
    let run = chroot.run(&all);
    run.assert_clean();
    run
}

/// The whole user story on one mirrored archive: the live path is a normal source, `-S` an
/// ID between two snapshots installs the older version, without `-S` the newer one, and an ID
/// before the first snapshot fails with apt's own error.
fn snapshot_mode_installs_what_was_current(shape: &Shape) {
    let Some(chroot) = Trixie::new() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (server, first, between) = two_snapshots(tmp.path(), shape, [None, None]);
    client(&chroot, shape, &server);

    apt_clean(&chroot, &["update"]);
    apt_clean(&chroot, &["update", "-S", &between]);
    apt_clean(&chroot, &["install", "-y", "-S", &between, "hello-asof"]);
    assert_eq!(installed(&chroot, "hello-asof"), "hello-asof\t1.0-1\n");
    apt_clean(&chroot, &["install", "-y", "hello-asof"]);
    assert_eq!(installed(&chroot, "hello-asof"), "hello-asof\t1.1-1\n");

    let before = id_plus(&first, -86400);
    let run = chroot.run(&["apt", "update", "-S", &before]);
    let base = format!("http://{}/{}/{before}", server.addr, shape.archive);
    let errors: Vec<String> = shape
        .suites
        .iter()
        .map(|suite| format!("Error: The repository '{base} {suite} Release' does not have a Release file."))
        .collect();
    run.assert_failed_with(&errors.iter().map(String::as_str).collect::<Vec<_>>());

    // What was mirrored: the upstream's signed bytes, without what the scope left out.
    for suite in shape.suites {
        let upstream = tmp.path().join("up1").join(shape.archive).join("dists").join(suite);
        let upstream = std::fs::read(upstream.join("InRelease")).unwrap();
        let dist = format!("{}/{between}/dists/{suite}", shape.archive);
        assert_eq!(server.get(&format!("/{dist}/InRelease")).body, upstream);
        if shape.scope.contains(&"--no-contents") {
            let contents = server.get(&format!("/{dist}/{CONTENTS}"));
            assert_eq!(contents.status, 404, "{}", contents.text());
        }
    }
}

#[test]
fn debian_archive_snapshot_mode() {
    snapshot_mode_installs_what_was_current(&DEBIAN);
}

#[test]
fn ubuntu_archive_snapshot_mode() {
    snapshot_mode_installs_what_was_current(&UBUNTU);
}

/// Security archives sign a Release valid for a week: apt's snapshot mode keeps checking
/// Valid-Until, so an old snapshot needs `-o Acquire::Check-Valid-Until=false` on update,
/// while the live source keeps its protection against replayed (frozen) Release files.
#[test]
fn debian_security_archive_snapshot_mode_with_expired_release() {
    let Some(chroot) = Trixie::new() else { return };
    let shape = &DEBIAN_SECURITY;
    let tmp = tempfile::tempdir().unwrap();
    let expired = release_date(-3600);
    let valid = release_date(7 * 86400);
    let (server, _, between) = two_snapshots(tmp.path(), shape, [Some(&expired), Some(&valid)]);
    client(&chroot, shape, &server);

    apt_clean(&chroot, &["update"]);
    let run = chroot.run(&["apt", "update", "-S", &between]);
    let release = format!("http://{}/{}/{between}/dists/{}/InRelease", server.addr, shape.archive, shape.suites[0]);
    let problems = run.problems();
    let prefix = format!("Error: Release file for {release} is expired (invalid since ");
    let suffix = "). Updates for this repository will not be applied.";
    assert_eq!(run.code, Some(100), "{}", run.text);
    assert_eq!(problems.len(), 1, "{}", run.text);
    let since = problems[0].strip_prefix(&prefix).and_then(|r| r.strip_suffix(suffix));
    assert!(since.is_some_and(|s| s.ends_with('s') && s.starts_with("1h")), "{}", run.text);

    apt_clean(&chroot, &["update", "-S", &between, "-o", "Acquire::Check-Valid-Until=false"]);
    apt_clean(&chroot, &["install", "-y", "-S", &between, "hello-asof"]);
    assert_eq!(installed(&chroot, "hello-asof"), "hello-asof\t1.0-1\n");
}

/// What docs/mirroring.md advised before: `Acquire::Snapshots::URI::Host::<host>` lines. apt
/// only falls back to them when nothing else names a server, and its built-in
/// `Acquire::Snapshots::URI::Origin::Debian` (and `Origin::Ubuntu`, `Override::Label::
/// Debian-Security`) always does for Debian's Origin: apt silently asks snapshot.debian.org.
/// The `Override::` lines of the doc win over those built-in entries.
#[test]
fn host_lines_lose_to_apts_builtin_origin_entries_and_overrides_win() {
    let Some(chroot) = Trixie::new() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (server, _, between) = two_snapshots(tmp.path(), &DEBIAN, [None, None]);
    client(&chroot, &DEBIAN, &server);
    let old_advice =
        format!("Acquire::Snapshots::URI::Host::127.0.0.1 \"http://{}/@PATH@/@SNAPSHOTID@/\";\n", server.addr);
    chroot.write("/etc/apt/apt.conf.d/50asof-snapshots", old_advice);
    apt_clean(&chroot, &["update"]);
    // Where `apt update -S` would fetch the InRelease files from, without fetching them.
    let inrelease_uris = || {
        let run = chroot.run(&["apt-get", "update", "-S", &between, "--print-uris"]);
        assert_eq!(run.code, Some(0), "{}", run.text);
        let mut uris: Vec<String> = run.text.lines().filter(|l| l.contains("/InRelease' ")).map(String::from).collect();
        uris.sort();
        uris
    };
    let addr = &server.addr;
    let live = format!("'http://{addr}/debian/dists/trixie/InRelease' {addr}_debian_dists_trixie_InRelease 0 ");
    assert_eq!(
        inrelease_uris(),
        [
            live.clone(),
            format!(
                "'https://snapshot.debian.org/archive/debian/{between}/dists/trixie/InRelease' \
                 snapshot.debian.org_archive_debian_{between}_dists_trixie_InRelease 0 "
            ),
        ]
    );
    client(&chroot, &DEBIAN, &server);
    assert_eq!(
        inrelease_uris(),
        [
            format!(
                "'http://{addr}/debian/{between}/dists/trixie/InRelease' {addr}_debian_{between}_dists_trixie_InRelease 0 "
            ),
            live
        ]
    );
}

/// Before apt has a source's Release, it cannot know its Origin and Label; with no `Host::`
/// line either, `-S` is dropped for that source without a word (exit 0). The next
/// `install -S` knows the server but has no indices of that snapshot. Hence the doc's "run a
/// plain `apt update` first" (a second `update -S` works as well).
#[test]
fn snapshot_option_is_silently_ignored_before_the_first_plain_update() {
    let Some(chroot) = Trixie::new() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (server, _, between) = two_snapshots(tmp.path(), &DEBIAN, [None, None]);
    client(&chroot, &DEBIAN, &server);

    let update = apt_clean(&chroot, &["update", "-S", &between]);
    assert!(!update.text.contains(&between), "apt went to the snapshot after all:\n{}", update.text);
    let install = chroot.run(&["apt", "install", "-y", "-S", &between, "hello-asof"]);
    install.assert_failed_with(&["Error: Unable to locate package hello-asof"]);

    let update = apt_clean(&chroot, &["update", "-S", &between]);
    assert!(
        update.text.contains(&format!("http://{}/debian/{between} trixie InRelease", server.addr)),
        "{}",
        update.text
    );
    apt_clean(&chroot, &["install", "-y", "-S", &between, "hello-asof"]);
    assert_eq!(installed(&chroot, "hello-asof"), "hello-asof\t1.0-1\n");
}

/// Many suites with the same indices (as `jammy-security` and `jammy-updates` share empty
/// ones): the mirror downloads each content once, even when every suite asks at the same time
/// (they share one partial file, keyed by digest).
#[test]
fn identical_indices_in_many_suites_are_mirrored_in_one_run() {
    const SAME: Shape = Shape {
        archive: "ubuntu",
        origin: "Ubuntu",
        label: "Ubuntu",
        suites: &["s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8"],
        scope: &[],
    };
    let tmp = tempfile::tempdir().unwrap();
    upstream_tree(&SAME, "v1", None, &tmp.path().join("up"));
    let upstream = common::upstream::Upstream::start(tmp.path().join("up"));
    let id = mirror(&tmp.path().join("data"), &SAME, &upstream.url);
    let server = Server::start(&tmp.path().join("data"));
    let packages = std::fs::read(fixtures().join("apt/v1/dists/stable/main/binary-amd64/Packages.xz")).unwrap();
    for suite in SAME.suites {
        assert_eq!(server.get(&format!("/ubuntu/{id}/dists/{suite}/main/binary-amd64/Packages.xz")).body, packages);
    }
    for file in ["Packages", "Packages.gz", "Packages.xz"] {
        let asked: usize =
            SAME.suites.iter().map(|s| upstream.requested(&format!("ubuntu/dists/{s}/main/binary-amd64/{file}"))).sum();
        assert_eq!(asked, 1, "{file} downloaded {asked} times");
    }
}

fn sha512_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha512::digest(bytes))
}

/// Appends a `SHA512:` list of the index files (as aptly, reprepro and Pulp write) to the
/// Release in `dist`, and signs it again with the fixture key, as the publisher would.
fn with_sha512(dist: &Path) {
    let mut release = std::fs::read_to_string(dist.join("Release")).unwrap();
    release.push_str("SHA512:\n");
    for file in ["Packages", "Packages.gz", "Packages.xz"] {
        let bytes = std::fs::read(dist.join("main/binary-amd64").join(file)).unwrap();
        let hash = sha512_hex(&bytes);
        release.push_str(&format!(" {hash} {:>8} main/binary-amd64/{file}\n", bytes.len()));
    }
    std::fs::write(dist.join("Release"), release).unwrap();
    sign(dist);
}

/// A key for asof to re-sign with (not the publisher's): armored secret key, no passphrase.
fn new_signing_key(dir: &Path) -> std::path::PathBuf {
    let home = dir.join("gnupg");
    std::fs::create_dir_all(&home).unwrap();
    let gpg = |args: &[&str]| {
        let out = Command::new("gpg").args(["--batch", "--homedir"]).arg(&home).args(args).output().unwrap();
        assert!(out.status.success(), "gpg {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    };
    let uid = "acme archive <apt@acme.invalid>";
    gpg(&["--pinentry-mode", "loopback", "--passphrase", "", "--quick-gen-key", uid, "ed25519", "sign", "never"]);
    let key = dir.join("acme-archive.sec.asc");
    std::fs::write(&key, gpg(&["--armor", "--export-secret-keys", uid])).unwrap();
    stop_agent(&home);
    key
}

/// An archive published to asof. Unsigned by asof, its Release names no snapshot server, and
/// apt drops `-S` without a word: `install -S` installs the latest version. Re-signed by asof
/// (`asof archive signing`), its Release gains `Snapshots:`, so a client with nothing but a
/// sources entry (the live path, the key asof serves) gets `apt update -S ID` and
/// `apt install -S ID`; the snapshots' digests stay. Its Release lists SHA512, and apt 3
/// (which asks `by-hash/SHA512/…` then) never has to fall back (`Ign:`).
#[test]
fn published_archive_resigned_by_asof_needs_no_client_configuration() {
    let Some(plain) = Trixie::new() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut trees = Vec::new();
    for version in ["v1", "v2"] {
        let tree = tmp.path().join(version);
        assert!(
            Command::new("cp")
                .arg("-a")
                .arg(fixtures().join("apt").join(version))
                .arg(&tree)
                .status()
                .unwrap()
                .success()
        );
        with_sha512(&tree.join("dists/stable"));
        trees.push(tree);
    }
    let first = publish(&data, "acme/apt", &trees[0]);
    let between = id_plus(&first, 1);
    wait_until_past(&between);
    let second = publish(&data, "acme/apt", &trees[1]);
    assert!(second > between, "{second} must come after {between}");
    let server = Server::start(&data);
    let sources =
        doc_block("/etc/apt/sources.list.d/acme.sources").replace(DOC_HOST, &format!("http://{}", server.addr));

    // Not re-signed: the publisher's signature, and `-S` is ignored.
    plain.write("/etc/apt/keyrings/acme.asc", std::fs::read(fixtures().join("keys/test-signing.pub.asc")).unwrap());
    plain.write("/etc/apt/sources.list.d/acme.sources", &sources);
    apt_clean(&plain, &["update"]);
    let update = apt_clean(&plain, &["update", "-S", &between]);
    assert!(!update.text.contains(&between), "apt found a snapshot server:\n{}", update.text);
    apt_clean(&plain, &["install", "-y", "-S", &between, "hello-asof"]);
    assert_eq!(installed(&plain, "hello-asof"), "hello-asof\t1.1-1\n");

    let digests = || asof(&data, &["snapshots", "acme/apt", "--json"]).stdout;
    let before = digests();
    let key = new_signing_key(tmp.path());
    let out = asof(&data, &["archive", "signing", "acme/apt", "--key", key.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let Some(chroot) = Trixie::new() else { return };
    let public_key = server.get("/api/v1/archives/acme/apt/-/signing-key");
    assert_eq!(public_key.status, 200, "{}", public_key.text());
    chroot.write("/etc/apt/keyrings/acme.asc", &public_key.body);
    chroot.write("/etc/apt/sources.list.d/acme.sources", &sources);

    let no_fallback = |run: AptRun| assert!(!run.text.contains("Ign:"), "apt fell back:\n{}", run.text);
    let update = apt_clean(&chroot, &["update", "-o", "Debug::Acquire::http=true"]);
    let xz = std::fs::read(trees[1].join("dists/stable/main/binary-amd64/Packages.xz")).unwrap();
    let by_hash = format!("/acme/apt/dists/stable/main/binary-amd64/by-hash/SHA512/{}", sha512_hex(&xz));
    assert!(update.text.contains(&format!("GET {by_hash} HTTP/1.1")), "{}", update.text);
    no_fallback(update);
    no_fallback(apt_clean(&chroot, &["update", "-S", &between]));
    apt_clean(&chroot, &["install", "-y", "-S", &between, "hello-asof"]);
    assert_eq!(installed(&chroot, "hello-asof"), "hello-asof\t1.0-1\n");
    apt_clean(&chroot, &["install", "-y", "hello-asof"]);
    assert_eq!(installed(&chroot, "hello-asof"), "hello-asof\t1.1-1\n");

    // apt verified asof's signature over the Snapshots: field; the publisher's bytes remain.
    let inrelease = format!("/acme/apt/{between}/dists/stable/InRelease");
    let served = server.get(&inrelease).text();
    let field = format!("\nSnapshots: http://{}/acme/apt/@SNAPSHOTID@/\n", server.addr);
    assert!(served.contains(&field), "{served}");
    let original = std::fs::read(trees[0].join("dists/stable/InRelease")).unwrap();
    assert_eq!(server.get(&format!("{inrelease}?original")).body, original);
    let before = String::from_utf8(before).unwrap();
    assert_eq!(before.matches("\"digest\"").count(), 2, "{before}");
    assert_eq!(String::from_utf8(digests()).unwrap(), before);
}
