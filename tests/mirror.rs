//! Mirroring a signed upstream served on 127.0.0.1 by the test itself: real apt installs
//! from the snapshots, only changed files are downloaded, every kind of bad upstream is
//! refused with nothing recorded, and dropped transfers are resumed.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::apt::apt_download;
use common::tree::{copy_tree, walk};
use common::upstream::{Fault, Upstream};
use common::*;

const HELLO_V1: &str = "pool/main/h/hello-asof/hello-asof_1.0-1_all.deb";
const HELLO_V2: &str = "pool/main/h/hello-asof/hello-asof_1.1-1_all.deb";
const TZ: &str = "pool/main/a/asof-tzdata/asof-tzdata_2025b-0+deb12u1_all.deb";

fn keyring() -> PathBuf {
    fixtures().join("keys/test-signing.gpg")
}

fn mirror_with(data: &Path, upstream: &str, keyring: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["--retries", "2", "--retry-backoff", "20ms"];
    args.extend_from_slice(extra);
    common::upstream::mirror_stable(data, upstream, keyring, &args)
}

fn mirror_ok(data: &Path, upstream: &str, extra: &[&str]) -> serde_json::Value {
    let out = mirror_with(data, upstream, &keyring(), extra);
    assert!(out.status.success(), "mirror failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn mirror_err(data: &Path, upstream: &str, key: &Path) -> String {
    let out = mirror_with(data, upstream, key, &[]);
    assert_eq!(out.status.code(), Some(1), "mirror should fail: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn snapshot_count(data: &Path) -> usize {
    let out = asof(data, &["snapshots", "debian", "--json"]);
    if !out.status.success() {
        // The archive only exists once a mirror run committed.
        assert_eq!(
            (out.status.code(), String::from_utf8_lossy(&out.stderr).as_ref()),
            (Some(2), "error: no archive named 'debian'\n")
        );
        return 0;
    }
    serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap().as_array().unwrap().len()
}

/// Rewrites `dists/stable/Release` for the index files present and signs it with the
/// fixture key, as a (possibly malicious) upstream holding the real key would.
fn resign(tree: &Path) {
    let dist = tree.join("dists/stable");
    let old = std::fs::read_to_string(dist.join("Release")).unwrap();
    let header: String = old.lines().take_while(|l| !l.starts_with("MD5Sum:")).map(|l| format!("{l}\n")).collect();
    let mut sums = String::from("SHA256:\n");
    let mut files: Vec<PathBuf> = walk(&dist.join("main"));
    files.sort();
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        let rel = f.strip_prefix(&dist).unwrap().to_str().unwrap().to_string();
        sums.push_str(&format!(" {} {} {rel}\n", sha256_hex(&bytes), bytes.len()));
    }
    std::fs::write(dist.join("Release"), format!("{header}{sums}")).unwrap();
    let home = tempfile::tempdir().unwrap();
    let gpg = |args: &[&str]| {
        let out = Command::new("gpg")
            .arg("--batch")
            .arg("--yes")
            .arg("--homedir")
            .arg(home.path())
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "gpg {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    gpg(&["--import", fixtures().join("keys/test-signing.sec.asc").to_str().unwrap()]);
    let (release, inrelease, detached) = (dist.join("Release"), dist.join("InRelease"), dist.join("Release.gpg"));
    gpg(&["--digest-algo", "SHA512", "--clearsign", "-o", inrelease.to_str().unwrap(), release.to_str().unwrap()]);
    gpg(&[
        "--digest-algo",
        "SHA512",
        "--armor",
        "--detach-sign",
        "-o",
        detached.to_str().unwrap(),
        release.to_str().unwrap(),
    ]);
}

#[test]
fn mirrored_snapshots_install_with_apt_and_only_changes_are_downloaded() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let v1 = fixtures().join("apt/v1");
    let v2 = fixtures().join("apt/v2");
    let upstream = Upstream::start(v1.clone());

    let first = mirror_ok(&data, &upstream.url, &[]);
    assert_eq!(first["files"], 8);
    assert!(first["signature"].as_str().unwrap().starts_with("verified (D35193C26D156CC17F75638D588654D34D56B23D"));
    let id1 = first["snapshot"].as_str().unwrap().to_string();

    // Unchanged upstream: no new snapshot, and no index or pool file is fetched.
    upstream.reset_counts();
    let again = mirror_ok(&data, &upstream.url, &[]);
    assert_eq!(again["unchanged"], true);
    assert_eq!(again["snapshot"], id1.as_str());
    assert_eq!(upstream.requested(TZ) + upstream.requested("dists/stable/main/binary-amd64/Packages.xz"), 0);
    assert_eq!(snapshot_count(&data), 1);

    // One package upgraded, one added: only what changed crosses the wire.
    upstream.set_root(v2.clone());
    upstream.reset_counts();
    wait_until_past(&id1);
    let second = mirror_ok(&data, &upstream.url, &[]);
    let id2 = second["snapshot"].as_str().unwrap().to_string();
    assert!(id2 > id1);
    assert_eq!(upstream.requested(TZ), 0, "unchanged pool file downloaded again");
    let changed: u64 = walk(&v2).iter().filter(|p| !p.ends_with(TZ)).map(|p| std::fs::metadata(p).unwrap().len()).sum();
    assert_eq!(upstream.total_bytes(), changed, "bytes sent by the upstream");
    assert_eq!(second["downloaded_files"], 2);
    assert_eq!(second["reused_files"], 1);
    assert_eq!(second["reused_bytes"], std::fs::metadata(v2.join(TZ)).unwrap().len());

    let forced = mirror_ok(&data, &upstream.url, &["--always"]);
    assert_eq!(forced["unchanged"], false);
    assert_eq!(snapshot_count(&data), 3);

    // Mirrored snapshots are indexed like published ones, at commit.
    let db = rusqlite::Connection::open(data.join("asof.db")).unwrap();
    let indexed: i64 = db.query_row("SELECT indexed_seq FROM package_index_state", [], |r| r.get(0)).unwrap();
    assert_eq!(indexed, 3);
    let out = asof(&data, &["diff", "debian", &id1, &id2, "--json"]);
    let diff: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let changes: Vec<(&str, &str)> = diff["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["change"].as_str().unwrap()))
        .collect();
    assert_eq!(changes, [("asof-extra", "added"), ("hello-asof", "upgraded")]);

    // Each snapshot serves its own state, to the real apt with the upstream's key.
    let server = Server::start(&data);
    assert_eq!(server.get(&format!("/debian/{id1}/{HELLO_V1}")).body, std::fs::read(v1.join(HELLO_V1)).unwrap());
    server
        .get(&format!("/debian/{id2}/{HELLO_V1}"))
        .assert_error(404, &format!("{HELLO_V1} does not exist in debian/{id2} (snapshot {id2})"));
    for (i, (id, hello_path)) in [(&id1, HELLO_V1), (&id2, HELLO_V2)].into_iter().enumerate() {
        let line = format!("deb [signed-by={}] http://{}/debian/{id}/ stable main", keyring().display(), server.addr);
        let got = apt_download(&tmp.path().join(format!("apt{i}")), &line, &["hello-asof"]);
        let upstream_tree = if i == 0 { &v1 } else { &v2 };
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, Path::new(hello_path).file_name().unwrap().to_str().unwrap());
        assert!(got[0].1 == std::fs::read(upstream_tree.join(hello_path)).unwrap(), "hello-asof differs at {id}");
    }
    // The upstream bytes are kept unchanged: the served InRelease is the upstream's.
    let served = server.get(&format!("/debian/{id2}/dists/stable/InRelease"));
    assert_eq!(served.body, std::fs::read(v2.join("dists/stable/InRelease")).unwrap());
}

#[test]
fn bad_upstreams_are_refused_and_record_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let v1 = fixtures().join("apt/v1");
    let upstream = Upstream::start(v1.clone());
    let bad = |name: &str, change: &dyn Fn(&Path)| {
        let tree = tmp.path().join(name);
        copy_tree(&v1, &tree);
        change(&tree);
        tree
    };

    // A signed text changed after signing, and a detached signature of other bytes: no
    // form of the Release verifies (one that does is enough, see below).
    let tree = bad("badsig", &|t| {
        let p = t.join("dists/stable/InRelease");
        let text = std::fs::read_to_string(&p).unwrap().replace("Suite: stable", "Suite: stablx");
        std::fs::write(p, text).unwrap();
        std::fs::copy(fixtures().join("apt/v2/dists/stable/Release.gpg"), t.join("dists/stable/Release.gpg")).unwrap();
    });
    upstream.set_root(tree);
    let signed =
        "Signature made Mon Jan  1 00:00:00 2024 UTC; using EDDSA key D35193C26D156CC17F75638D588654D34D56B23D";
    let err = mirror_err(&data, &upstream.url, &keyring());
    assert_eq!(
        err,
        format!(
            "error: mirroring debian: suite stable: InRelease refused: no valid signature by a key in the keyring: {signed}; BAD signature from \"asof test archive <test@asof.invalid>\"\n"
        )
    );

    // A good signature by a key that is not in the keyring.
    upstream.set_root(v1.clone());
    let err = mirror_err(&data, &upstream.url, Path::new("/usr/share/keyrings/debian-archive-keyring.gpg"));
    assert_eq!(
        err,
        format!(
            "error: mirroring debian: suite stable: InRelease refused: no valid signature by a key in the keyring: {signed}; Can't check signature: No public key\n"
        )
    );

    // An index whose bytes do not match the signed Release.
    let tree = bad("tampered-index", &|t| {
        let p = t.join("dists/stable/main/binary-amd64/Packages");
        let text = std::fs::read_to_string(&p).unwrap().replace("hello-asof", "hello-evil");
        std::fs::write(p, text).unwrap();
    });
    upstream.set_root(tree);
    let err = mirror_err(&data, &upstream.url, &keyring());
    let index = "dists/stable/main/binary-amd64/Packages";
    assert_eq!(
        err,
        format!(
            "error: mirroring debian: {}{index}: SHA-256 is {}, the signed index says {}\n",
            upstream.url,
            sha256_hex(&std::fs::read(tmp.path().join("tampered-index").join(index)).unwrap()),
            sha256_hex(&std::fs::read(v1.join(index)).unwrap())
        )
    );

    // A pool file whose bytes do not match its index.
    let tree = bad("tampered-pool", &|t| {
        let p = t.join(HELLO_V1);
        let mut bytes = std::fs::read(&p).unwrap();
        bytes[10] ^= 0xff;
        std::fs::write(p, bytes).unwrap();
    });
    upstream.set_root(tree);
    let err = mirror_err(&data, &upstream.url, &keyring());
    assert_eq!(
        err,
        format!(
            "error: mirroring debian: {}{HELLO_V1}: SHA-256 is {}, the signed index says {}\n",
            upstream.url,
            sha256_hex(&std::fs::read(tmp.path().join("tampered-pool").join(HELLO_V1)).unwrap()),
            sha256_hex(&std::fs::read(v1.join(HELLO_V1)).unwrap())
        )
    );

    // A transfer that always breaks off.
    upstream.set_root(v1.clone());
    upstream.add_faults(HELLO_V1, &[Fault::DropAfter(200); 3]);
    let err = mirror_err(&data, &upstream.url, &keyring());
    // Three attempts of 200 bytes each; what follows is the HTTP client's own wording.
    let gave_up = format!(
        "error: mirroring debian: {}{HELLO_V1}: gave up after 3 attempts: transfer interrupted after 600 bytes: ",
        upstream.url
    );
    assert!(err.starts_with(&gave_up) && err.lines().count() == 1, "{err}");

    // A correctly signed index that points outside the archive.
    let tree = bad("malicious", &|t| {
        let dir = t.join("dists/stable/main/binary-amd64");
        let text = std::fs::read_to_string(dir.join("Packages")).unwrap();
        let evil = text.replacen(&format!("Filename: {HELLO_V1}"), "Filename: ../../../../etc/passwd", 1);
        assert_ne!(evil, text);
        std::fs::write(dir.join("Packages"), evil).unwrap();
        std::fs::remove_file(dir.join("Packages.gz")).unwrap();
        std::fs::remove_file(dir.join("Packages.xz")).unwrap();
        resign(t);
    });
    upstream.set_root(tree);
    let err = mirror_err(&data, &upstream.url, &keyring());
    assert_eq!(
        err,
        "error: mirroring debian: dists/stable/main/binary-amd64/Packages: package \"hello-asof\": Filename \"../../../../etc/passwd\" is not a safe path inside the archive: path '../../../../etc/passwd' has a '.' or '..' segment\n"
    );

    assert_eq!(snapshot_count(&data), 0, "no failed run may record a snapshot");

    // The next good run succeeds, reusing what the failed runs had verified and stored.
    upstream.set_root(v1.clone());
    upstream.reset_counts();
    let ok = mirror_ok(&data, &upstream.url, &[]);
    assert_eq!(ok["files"], 8);
    assert_eq!(upstream.requested(TZ), 0, "asof-tzdata was verified and stored by an earlier run");
    assert_eq!(snapshot_count(&data), 1);
    let verify = asof(&data, &["verify"]);
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stdout));
}

#[test]
fn dropped_transfers_are_retried_and_resumed() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let v1 = fixtures().join("apt/v1");
    let upstream = Upstream::start(v1.clone());
    upstream.add_faults(HELLO_V1, &[Fault::DropAfter(300)]);
    upstream.add_faults(TZ, &[Fault::Unavailable]);
    let report = mirror_ok(&data, &upstream.url, &[]);
    assert_eq!(report["files"], 8);
    let hello: Vec<Option<String>> =
        upstream.requests().into_iter().filter(|(p, _)| p == HELLO_V1).map(|(_, range)| range).collect();
    assert_eq!(hello, [None, Some("bytes=300-".to_string())], "the second request resumes where the first broke off");
    assert_eq!(upstream.requested(TZ), 2, "503 is retried");
    let server = Server::start(&data);
    let id = report["snapshot"].as_str().unwrap();
    assert_eq!(server.get(&format!("/debian/{id}/{HELLO_V1}")).body, std::fs::read(v1.join(HELLO_V1)).unwrap());
}

#[test]
fn release_and_detached_signature_without_inrelease() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let tree = tmp.path().join("no-inrelease");
    copy_tree(&fixtures().join("apt/v1"), &tree);
    std::fs::remove_file(tree.join("dists/stable/InRelease")).unwrap();
    let upstream = Upstream::start(tree.clone());
    let report = mirror_ok(&data, &upstream.url, &[]);
    assert_eq!(report["files"], 7);
    assert_eq!(upstream.requested("dists/stable/InRelease"), 1, "InRelease first, then the fallback");
    let server = Server::start(&data);
    let id = report["snapshot"].as_str().unwrap();
    server
        .get(&format!("/debian/{id}/dists/stable/InRelease"))
        .assert_error(404, &format!("dists/stable/InRelease does not exist in debian/{id} (snapshot {id})"));
    let gpg = server.get(&format!("/debian/{id}/dists/stable/Release.gpg"));
    assert_eq!((gpg.status, gpg.body), (200, std::fs::read(tree.join("dists/stable/Release.gpg")).unwrap()));
}

#[test]
fn insecure_mode_is_loud_and_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let upstream = Upstream::start(fixtures().join("apt/v1"));
    let out = asof(
        &data,
        &["mirror", "debian", "--upstream", &upstream.url, "--suite", "stable", "--insecure-skip-signature", "--json"],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The warning comes first, the summary (which says it again) last; a log line between.
    assert_eq!(
        stderr.lines().next().unwrap(),
        "WARNING: debian: upstream signatures are NOT checked (--insecure-skip-signature); the snapshot records this"
    );
    assert!(
        stderr.lines().last().unwrap().ends_with("; signature NOT VERIFIED (--insecure-skip-signature)"),
        "{stderr}"
    );
    let list: serde_json::Value =
        serde_json::from_slice(&asof(&data, &["snapshots", "debian", "--json"]).stdout).unwrap();
    assert_eq!(list[0]["source"]["insecure_skip_signature"], true);
    assert_eq!(list[0]["source"]["signature"], "NOT VERIFIED (--insecure-skip-signature)");
    // Without a keyring and without the flag, nothing happens.
    let out = asof(&data, &["mirror", "other", "--upstream", &upstream.url, "--suite", "stable"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: mirroring other: a keyring is required to verify upstream signatures (or --insecure-skip-signature)\n"
    );
}

#[test]
fn configured_mirrors_run_once_from_the_cli_and_on_schedule_in_serve() {
    let tmp = tempfile::tempdir().unwrap();
    let upstream = Upstream::start(fixtures().join("apt/v1"));
    let config = tmp.path().join("asof.toml");
    std::fs::write(
        &config,
        format!(
            "[[mirror]]\narchive = \"test/stable\"\nupstream = \"{}\"\nsuites = [\"stable\"]\ncomponents = [\"main\"]\n\
             architectures = [\"amd64\"]\nkeyring = \"{}\"\ninterval = \"1m\"\n",
            upstream.url,
            keyring().display()
        ),
    )
    .unwrap();
    let cli_data = tmp.path().join("cli");
    let out = asof(&cli_data, &["--config", config.to_str().unwrap(), "mirror"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim().len(), 16);

    let serve_data = tmp.path().join("serve");
    let server = Server::start_with(&serve_data, &["--config", config.to_str().unwrap()]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let metrics = server.get("/metrics").text();
        if metrics.contains("asof_mirror_last_success_timestamp_seconds{archive=\"test/stable\"}") {
            assert!(
                metrics.lines().any(|l| l == "asof_mirror_runs_total{archive=\"test/stable\",result=\"success\"} 1"),
                "{metrics}"
            );
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the scheduled mirror did not run: {metrics}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let j = server.request("GET", "/api/v1/archives/test/stable/-/latest", &[]).json();
    assert_eq!(j["files"], 8);
}

/// deb.debian.org once served bookworm-updates with a BAD Release.gpg beside a good
/// InRelease. apt reads InRelease first, so one verifying form is enough: the other is left
/// out of the snapshot with a warning, and apt 2.6 installs from what is kept.
#[test]
fn one_verifying_release_form_is_enough_and_the_other_is_left_out_with_a_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let v1 = fixtures().join("apt/v1");
    let upstream = Upstream::start(v1.clone());
    let broken = |name: &str, bad_inrelease: bool, bad_detached: bool| {
        let tree = tmp.path().join(name);
        copy_tree(&v1, &tree);
        if bad_inrelease {
            let p = tree.join("dists/stable/InRelease");
            let text = std::fs::read_to_string(&p).unwrap().replace("Suite: stable", "Suite: stablx");
            std::fs::write(p, text).unwrap();
        }
        if bad_detached {
            // A good signature, by the right key, of the next Release: BAD for this one.
            std::fs::copy(fixtures().join("apt/v2/dists/stable/Release.gpg"), tree.join("dists/stable/Release.gpg"))
                .unwrap();
        }
        upstream.set_root(tree.clone());
        tree
    };
    let bad = |date: &str| {
        format!(
            "no valid signature by a key in the keyring: Signature made {date} UTC; using EDDSA key D35193C26D156CC17F75638D588654D34D56B23D; BAD signature from \"asof test archive <test@asof.invalid>\""
        )
    };
    let kept = |data: &Path, id: &str| -> Vec<(String, u16)> {
        let server = Server::start(data);
        ["InRelease", "Release", "Release.gpg"]
            .iter()
            .map(|f| (f.to_string(), server.get(&format!("/debian/{id}/dists/stable/{f}")).status))
            .collect()
    };

    // Release.gpg BAD, InRelease good: Release and Release.gpg are left out.
    let tree = broken("bad-detached", false, true);
    let data = tmp.path().join("data-a");
    let out = mirror_with(&data, &upstream.url, &keyring(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let warning = format!(
        "warning: debian: suite stable: Release and Release.gpg left out of the snapshot (InRelease verified, and apt reads it first): Release.gpg refused: {}",
        bad("Fri Mar  1 00:00:00 2024")
    );
    assert_eq!(String::from_utf8_lossy(&out.stderr).lines().next(), Some(warning.as_str()));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["files"], 6);
    assert_eq!(report["warnings"], serde_json::json!([warning.trim_start_matches("warning: debian: ")]));
    let id = report["snapshot"].as_str().unwrap();
    assert_eq!(kept(&data, id), [("InRelease".into(), 200), ("Release".into(), 404), ("Release.gpg".into(), 404)]);
    let server = Server::start(&data);
    let served = server.get(&format!("/debian/{id}/dists/stable/InRelease")).body;
    assert_eq!(served, std::fs::read(tree.join("dists/stable/InRelease")).unwrap());
    let line = format!("deb [signed-by={}] http://{}/debian/{id}/ stable main", keyring().display(), server.addr);
    let got = apt_download(&tmp.path().join("apt-a"), &line, &["hello-asof"]);
    assert_eq!(got, [("hello-asof_1.0-1_all.deb".to_string(), std::fs::read(v1.join(HELLO_V1)).unwrap())]);
    drop(server);

    // InRelease BAD, Release + Release.gpg good: InRelease is left out, apt falls back.
    let tree = broken("bad-inline", true, false);
    let data = tmp.path().join("data-b");
    let out = mirror_with(&data, &upstream.url, &keyring(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let warning = format!(
        "warning: debian: suite stable: InRelease left out of the snapshot (Release and Release.gpg verified): InRelease refused: {}",
        bad("Mon Jan  1 00:00:00 2024")
    );
    assert_eq!(String::from_utf8_lossy(&out.stderr).lines().next(), Some(warning.as_str()));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["files"], 7);
    let id = report["snapshot"].as_str().unwrap();
    assert_eq!(kept(&data, id), [("InRelease".into(), 404), ("Release".into(), 200), ("Release.gpg".into(), 200)]);
    let server = Server::start(&data);
    for f in ["Release", "Release.gpg"] {
        let served = server.get(&format!("/debian/{id}/dists/stable/{f}")).body;
        assert_eq!(served, std::fs::read(tree.join("dists/stable").join(f)).unwrap(), "{f}");
    }
    let line = format!("deb [signed-by={}] http://{}/debian/{id}/ stable main", keyring().display(), server.addr);
    let got = apt_download(&tmp.path().join("apt-b"), &line, &["hello-asof"]);
    assert_eq!(got, [("hello-asof_1.0-1_all.deb".to_string(), std::fs::read(v1.join(HELLO_V1)).unwrap())]);

    // A Release without any Release.gpg beside a good InRelease: unverifiable, left out.
    let tree = tmp.path().join("no-detached");
    copy_tree(&v1, &tree);
    std::fs::remove_file(tree.join("dists/stable/Release.gpg")).unwrap();
    upstream.set_root(tree);
    let data = tmp.path().join("data-d");
    let out = mirror_with(&data, &upstream.url, &keyring(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).lines().next(),
        Some(
            "warning: debian: suite stable: Release and Release.gpg left out of the snapshot (InRelease verified, and apt reads it first): upstream has no Release.gpg"
        )
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = report["snapshot"].as_str().unwrap();
    assert_eq!(kept(&data, id), [("InRelease".into(), 200), ("Release".into(), 404), ("Release.gpg".into(), 404)]);

    // Neither verifies: the run fails as before, with InRelease's reason, recording nothing.
    broken("bad-both", true, true);
    let data = tmp.path().join("data-c");
    let err = mirror_err(&data, &upstream.url, &keyring());
    assert_eq!(
        err,
        format!("error: mirroring debian: suite stable: InRelease refused: {}\n", bad("Mon Jan  1 00:00:00 2024"))
    );
    assert_eq!(snapshot_count(&data), 0);
}

/// A mirror caught mid-sync serves a new InRelease beside indices still old under their plain
/// names; their by-hash names never change. With `Acquire-By-Hash: yes` asof asks for the
/// by-hash name first, as apt does, and the plain name only when that is missing (404).
#[test]
fn indices_are_fetched_by_hash_when_the_release_offers_it() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let v1 = fixtures().join("apt/v1");
    let tree = tmp.path().join("mid-sync");
    copy_tree(&v1, &tree);
    let dir = "dists/stable/main/binary-amd64";
    let mut by_hash = Vec::new();
    for name in ["Packages", "Packages.gz", "Packages.xz"] {
        let plain = tree.join(dir).join(name);
        let bytes = std::fs::read(&plain).unwrap();
        let hashed = format!("{dir}/by-hash/SHA256/{}", asof::domain::Digest::of(&bytes).hex());
        std::fs::create_dir_all(tree.join(hashed.rsplit_once('/').unwrap().0)).unwrap();
        std::fs::write(tree.join(&hashed), &bytes).unwrap();
        std::fs::write(&plain, b"an index of the previous sync\n").unwrap();
        by_hash.push((format!("{dir}/{name}"), hashed, bytes));
    }
    let upstream = Upstream::start(tree);
    // A dry run reads the indices where a run would: by hash, not the stale plain names.
    let plan = mirror_ok(&tmp.path().join("dry"), &upstream.url, &["--dry-run"]);
    let pool: Vec<&str> = plan["pool_files"].as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap()).collect();
    assert_eq!(
        pool,
        [
            "pool/main/a/asof-tzdata/asof-tzdata_2025b-0+deb12u1_all.deb",
            "pool/main/h/hello-asof/hello-asof_1.0-1_all.deb"
        ]
    );
    for (plain, hashed, _) in &by_hash {
        assert_eq!(upstream.requested(plain), 0, "{plain}");
        assert!(upstream.requested(hashed) >= 1, "{hashed}");
    }
    upstream.reset_counts();
    let report = mirror_ok(&data, &upstream.url, &[]);
    assert_eq!(report["files"], 8);
    let server = Server::start(&data);
    let id = report["snapshot"].as_str().unwrap();
    for (plain, hashed, bytes) in &by_hash {
        assert_eq!((upstream.requested(plain), upstream.requested(hashed)), (0, 1), "{plain}");
        assert_eq!(&server.get(&format!("/debian/{id}/{plain}")).body, bytes, "{plain} is stored under its plain name");
    }

    // An upstream without by-hash files (the fixture itself) is asked for the plain names.
    let plain_upstream = Upstream::start(v1.clone());
    let report = mirror_ok(&tmp.path().join("data2"), &plain_upstream.url, &[]);
    assert_eq!(report["files"], 8);
    for (plain, hashed, _) in &by_hash {
        assert_eq!((plain_upstream.requested(hashed), plain_upstream.requested(plain)), (1, 1), "{plain}");
    }
}
