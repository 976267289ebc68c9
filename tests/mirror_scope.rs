//! Mirror scope on an Ubuntu-shaped archive (fixtures/ubuntu, three suites, made by
//! fixtures/make-ubuntu-repo.sh): what the scope options keep, several suites in one
//! snapshot that apt 2.6 installs from, `--dry-run`, and files missing upstream.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use asof::manifest::Content;
use common::apt::Apt;
use common::tree::{copy_tree, walk};
use common::upstream::Upstream;
use common::*;

fn keyring() -> PathBuf {
    fixtures().join("keys/test-signing.gpg")
}

fn ubuntu() -> PathBuf {
    fixtures().join("ubuntu")
}

const THREE_SUITES: [&str; 6] = ["--suite", "jammy", "--suite", "jammy-updates", "--suite", "jammy-security"];

/// main and universe, amd64, no Contents, English translations only.
const SCOPE: [&str; 9] =
    ["--component", "main", "--component", "universe", "--arch", "amd64", "--no-contents", "--i18n", "en"];

/// What the three suites with `SCOPE` hold: every Release file byte for byte, the amd64
/// indices the Release lists and upstream has (not the uncompressed Packages it lists but
/// does not serve), English translations, and the pool files those indices reference.
const SCOPED: [&str; 38] = [
    "dists/jammy-security/InRelease",
    "dists/jammy-security/Release",
    "dists/jammy-security/Release.gpg",
    "dists/jammy-security/main/binary-amd64/Packages.gz",
    "dists/jammy-security/main/binary-amd64/Packages.xz",
    "dists/jammy-security/main/binary-amd64/Release",
    "dists/jammy-security/main/i18n/Translation-en.xz",
    "dists/jammy-security/universe/binary-amd64/Packages.gz",
    "dists/jammy-security/universe/binary-amd64/Packages.xz",
    "dists/jammy-security/universe/binary-amd64/Release",
    "dists/jammy-security/universe/i18n/Translation-en.xz",
    "dists/jammy-updates/InRelease",
    "dists/jammy-updates/Release",
    "dists/jammy-updates/Release.gpg",
    "dists/jammy-updates/main/binary-amd64/Packages.gz",
    "dists/jammy-updates/main/binary-amd64/Packages.xz",
    "dists/jammy-updates/main/binary-amd64/Release",
    "dists/jammy-updates/main/i18n/Translation-en.xz",
    "dists/jammy-updates/universe/binary-amd64/Packages.gz",
    "dists/jammy-updates/universe/binary-amd64/Packages.xz",
    "dists/jammy-updates/universe/binary-amd64/Release",
    "dists/jammy-updates/universe/i18n/Translation-en.xz",
    "dists/jammy/InRelease",
    "dists/jammy/Release",
    "dists/jammy/Release.gpg",
    "dists/jammy/main/binary-amd64/Packages.gz",
    "dists/jammy/main/binary-amd64/Packages.xz",
    "dists/jammy/main/binary-amd64/Release",
    "dists/jammy/main/i18n/Translation-en.xz",
    "dists/jammy/universe/binary-amd64/Packages.gz",
    "dists/jammy/universe/binary-amd64/Packages.xz",
    "dists/jammy/universe/binary-amd64/Release",
    "dists/jammy/universe/i18n/Translation-en.xz",
    "pool/main/a/asof-arch/asof-arch_1.0-1_amd64.deb",
    "pool/main/h/hello-asof/hello-asof_1.0-1_all.deb",
    "pool/main/h/hello-asof/hello-asof_1.0-1ubuntu0.1_all.deb",
    "pool/main/h/hello-asof/hello-asof_1.1-1_all.deb",
    "pool/universe/a/asof-universe/asof-universe_1.0-1_all.deb",
];

fn mirror(data: &Path, upstream: &str, extra: &[&str]) -> Output {
    let key = keyring();
    let mut args = vec![
        "mirror",
        "ubuntu",
        "--upstream",
        upstream,
        "--keyring",
        key.to_str().unwrap(),
        "--retries",
        "1",
        "--retry-backoff",
        "10ms",
    ];
    args.extend_from_slice(extra);
    asof(data, &args)
}

fn mirror_json(data: &Path, upstream: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = extra.to_vec();
    args.push("--json");
    let out = mirror(data, upstream, &args);
    assert_eq!(out.status.code(), Some(0), "mirror failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn scoped_three_suites<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    THREE_SUITES.iter().chain(SCOPE.iter()).chain(extra).copied().collect()
}

/// The files (not directories) of a snapshot, sorted.
fn snapshot_files(data: &Path, archive: &str, id: &str) -> Vec<String> {
    let store = asof::store::Store::open_local(data).unwrap();
    let snap = store.catalog.resolve(&archive.parse().unwrap(), id.parse().unwrap()).unwrap().unwrap();
    let mut files = Vec::new();
    store
        .catalog
        .for_each_entry(snap.key, &mut |e| {
            if let Content::File { .. } = e.content {
                files.push(e.path.to_string());
            }
            Ok(())
        })
        .unwrap();
    files.sort();
    files
}

fn size(path: &str) -> u64 {
    std::fs::metadata(ubuntu().join(path)).unwrap().len()
}

#[test]
fn three_suites_with_a_scope_make_one_snapshot_that_apt_installs_from() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let upstream = Upstream::start(ubuntu());
    let report = mirror_json(&data, &upstream.url, &scoped_three_suites(&[]));
    assert_eq!(report["files"], 38);
    assert_eq!(report["warnings"], serde_json::json!([]));
    assert_eq!(report["missing"], serde_json::json!([]));
    let id = report["snapshot"].as_str().unwrap().to_string();
    assert_eq!(snapshot_files(&data, "ubuntu", &id), SCOPED);
    // What is left out is never even requested.
    for skipped in [
        "dists/jammy/Contents-amd64.gz",
        "dists/jammy/main/i18n/Translation-de.xz",
        "dists/jammy/main/binary-i386/Packages.xz",
        "dists/jammy/main/dep11/Components-amd64.yml.gz",
        "dists/jammy/main/cnf/Commands-amd64.xz",
        "dists/jammy/main/debian-installer/binary-amd64/Packages.xz",
        "dists/jammy/main/source/Sources.xz",
        "pool/main/a/asof-arch/asof-arch_1.0-1_i386.deb",
    ] {
        assert_eq!(upstream.requested(skipped), 0, "{skipped}");
    }

    let server = Server::start(&data);
    for suite in ["jammy", "jammy-updates", "jammy-security"] {
        for f in ["InRelease", "Release", "Release.gpg"] {
            let path = format!("dists/{suite}/{f}");
            assert_eq!(server.get(&format!("/ubuntu/{id}/{path}")).body, std::fs::read(ubuntu().join(&path)).unwrap());
        }
    }
    // apt 2.6 with the three suites, as on an Ubuntu machine, wanting English
    // translations: everything it asks for is there (no 404, no by-hash fallback).
    let base = format!("deb [signed-by={}] http://{}/ubuntu/{id}/", keyring().display(), server.addr);
    let sources: Vec<String> =
        ["jammy", "jammy-updates", "jammy-security"].iter().map(|s| format!("{base} {s} main universe")).collect();
    let root = tmp.path().join("apt");
    let apt = Apt::new(&root, &sources.join("\n"), None);
    let update = apt.run(&["-o", "Acquire::Languages::=en", "update"], &root);
    update.assert_clean();
    assert!(!update.text.contains("Ign:"), "{}", update.text);
    assert_eq!(update.text.lines().filter(|l| l.contains(" Translation-en [")).count(), 6, "{}", update.text);
    apt.download(&["hello-asof", "asof-universe", "asof-arch", "hello-asof=1.0-1ubuntu0.1"]).assert_clean();
    let got: Vec<(String, bool)> = apt
        .downloaded()
        .into_iter()
        .map(|(name, bytes)| {
            let pool = walk(&ubuntu().join("pool")).into_iter().find(|p| p.ends_with(&name)).unwrap();
            (name, bytes == std::fs::read(pool).unwrap())
        })
        .collect();
    assert_eq!(
        got,
        [
            ("asof-arch_1.0-1_amd64.deb".to_string(), true),
            ("asof-universe_1.0-1_all.deb".to_string(), true),
            // jammy-security's version, asked for by version.
            ("hello-asof_1.0-1ubuntu0.1_all.deb".to_string(), true),
            // The candidate: jammy-updates' version.
            ("hello-asof_1.1-1_all.deb".to_string(), true),
        ]
    );
    // An apt that wants what the scope left out (German translations) fails, as it would
    // against an upstream without them: scope and client configuration go together.
    let root = tmp.path().join("apt-de");
    let apt = Apt::new(&root, &sources.join("\n"), None);
    let url = format!("http://{}/ubuntu/{id}/dists", server.addr);
    let port = server.port();
    let failed: Vec<String> = ["jammy", "jammy-updates", "jammy-security"]
        .iter()
        .map(|s| {
            format!("E: Failed to fetch {url}/{s}/main/i18n/Translation-de  404  Not Found [IP: 127.0.0.1 {port}]")
        })
        .chain(["E: Some index files failed to download. They have been ignored, or old ones used instead.".into()])
        .collect();
    let failed: Vec<&str> = failed.iter().map(String::as_str).collect();
    apt.run(&["-o", "Acquire::Languages::=de", "update"], &root).assert_failed_with(&failed);
}

#[test]
fn configured_mirrors_take_the_same_scope_options() {
    let tmp = tempfile::tempdir().unwrap();
    let upstream = Upstream::start(ubuntu());
    let config = tmp.path().join("asof.toml");
    let write = |scope: &str| {
        std::fs::write(
            &config,
            format!(
                "[[mirror]]\narchive = \"ubuntu\"\nupstream = \"{}\"\nsuites = [\"jammy\"]\ncomponents = [\"main\"]\n\
                 architectures = [\"amd64\"]\nkeyring = \"{}\"\n{scope}",
                upstream.url,
                keyring().display()
            ),
        )
        .unwrap()
    };
    write("contents = false\nudebs = true\nsources = true\ni18n = \"de\"\ndep11 = true\ncnf = true\n");
    let data = tmp.path().join("data");
    let out = asof(&data, &["--config", config.to_str().unwrap(), "mirror"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let id = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(
        snapshot_files(&data, "ubuntu", &id),
        [
            "dists/jammy/InRelease",
            "dists/jammy/Release",
            "dists/jammy/Release.gpg",
            "dists/jammy/main/binary-amd64/Packages.gz",
            "dists/jammy/main/binary-amd64/Packages.xz",
            "dists/jammy/main/binary-amd64/Release",
            "dists/jammy/main/cnf/Commands-amd64.xz",
            "dists/jammy/main/debian-installer/binary-amd64/Packages.gz",
            "dists/jammy/main/debian-installer/binary-amd64/Packages.xz",
            "dists/jammy/main/dep11/Components-amd64.yml.gz",
            "dists/jammy/main/dep11/icons-48x48.tar.gz",
            "dists/jammy/main/i18n/Translation-de.xz",
            "dists/jammy/main/source/Sources.gz",
            "dists/jammy/main/source/Sources.xz",
            "pool/main/a/asof-arch/asof-arch_1.0-1_amd64.deb",
            "pool/main/h/hello-asof/hello-asof-udeb_1.0-1_amd64.udeb",
            "pool/main/h/hello-asof/hello-asof_1.0-1.dsc",
            "pool/main/h/hello-asof/hello-asof_1.0-1.tar.xz",
            "pool/main/h/hello-asof/hello-asof_1.0-1_all.deb",
        ]
    );
    let list: serde_json::Value =
        serde_json::from_slice(&asof(&data, &["snapshots", "ubuntu", "--json"]).stdout).unwrap();
    assert_eq!(
        list[0]["source"]["scope"],
        serde_json::json!({"sources": true, "contents": false, "udebs": true, "i18n": "de", "dep11": true, "cnf": true})
    );

    // Another scope is another selection: not "unchanged", a new snapshot.
    wait_until_past(&id);
    write("i18n = \"none\"\n");
    let out = asof(&data, &["--config", config.to_str().unwrap(), "mirror"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let id2 = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_ne!(id2, id);
    assert_eq!(
        snapshot_files(&data, "ubuntu", &id2),
        [
            "dists/jammy/Contents-amd64.gz",
            "dists/jammy/InRelease",
            "dists/jammy/Release",
            "dists/jammy/Release.gpg",
            "dists/jammy/main/binary-amd64/Packages.gz",
            "dists/jammy/main/binary-amd64/Packages.xz",
            "dists/jammy/main/binary-amd64/Release",
            "pool/main/a/asof-arch/asof-arch_1.0-1_amd64.deb",
            "pool/main/h/hello-asof/hello-asof_1.0-1_all.deb",
        ]
    );

    // A bad language list is refused when the config is read.
    write("i18n = \"en,,de\"\n");
    let out = asof(&data, &["--config", config.to_str().unwrap(), "mirror"]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "error: invalid config {}: TOML parse error at line 8, column 8\n  |\n8 | i18n = \"en,,de\"\n  |        ^^^^^^^^\ni18n language \"\" is not valid: give 'all', 'none' or language codes separated by commas (en,de,pt_BR)\n\n",
            config.display()
        )
    );
    // On the command line too.
    let out = mirror(&data, &upstream.url, &["--suite", "jammy", "--i18n", "en,,de"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).lines().next(),
        Some(
            "error: invalid value 'en,,de' for '--i18n <LANGS>': i18n language \"\" is not valid: give 'all', 'none' or language codes separated by commas (en,de,pt_BR)"
        )
    );
}

/// `SIZE PATH` lines as the dry run prints them: Release files per suite, then indices,
/// then pool files, each sorted.
fn plan_lines(paths: &[&str]) -> String {
    let is_release = |p: &&str| p.ends_with("/InRelease") || p.ends_with("/Release") && p.matches('/').count() == 2;
    let is_release = |p: &&str| is_release(p) || p.ends_with("/Release.gpg");
    let mut release = Vec::new();
    for suite in ["jammy", "jammy-updates", "jammy-security"] {
        for f in ["InRelease", "Release", "Release.gpg"] {
            let p = format!("dists/{suite}/{f}");
            if paths.contains(&p.as_str()) {
                release.push(p);
            }
        }
    }
    let dists = paths.iter().filter(|p| p.starts_with("dists/") && !is_release(p)).map(|p| p.to_string());
    let pool = paths.iter().filter(|p| p.starts_with("pool/")).map(|p| p.to_string());
    release.into_iter().chain(dists).chain(pool).map(|p| format!("{} {p}\n", size(&p))).collect()
}

fn total(paths: &[&str]) -> u64 {
    paths.iter().map(|p| size(p)).sum()
}

#[test]
fn dry_run_prints_what_would_be_fetched_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let upstream = Upstream::start(ubuntu());
    let out = mirror(&data, &upstream.url, &scoped_three_suites(&["--dry-run"]));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), plan_lines(&SCOPED));
    let release: Vec<&str> = SCOPED.iter().copied().filter(|p| p.matches('/').count() == 2).collect();
    let index: Vec<&str> = SCOPED.iter().copied().filter(|p| p.starts_with("dists/") && !release.contains(p)).collect();
    let pool: Vec<&str> = SCOPED.iter().copied().filter(|p| p.starts_with("pool/")).collect();
    assert_eq!((release.len(), index.len(), pool.len()), (9, 24, 5));
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        format!(
            "ubuntu: dry run; nothing was stored and no snapshot was made\n  Release files: 9 ({} bytes)\n  index files to download: 24 ({} bytes)\n  index files already stored: 0 (0 bytes)\n  pool files to download: 5 ({} bytes)\n  pool files already stored: 0 (0 bytes)\n  total to download: 38 files ({} bytes)\n  signature verified (D35193C26D156CC17F75638D588654D34D56B23D)\n",
            total(&release),
            total(&index),
            total(&pool),
            total(&SCOPED)
        )
    );
    // Only HEAD requests for the indices not read, and no pool file asked for at all.
    assert_eq!(upstream.requested("pool/main/h/hello-asof/hello-asof_1.1-1_all.deb"), 0);
    let out = asof(&data, &["snapshots", "ubuntu"]);
    assert_eq!(
        (out.status.code(), String::from_utf8_lossy(&out.stderr).as_ref()),
        (Some(2), "error: no archive named 'ubuntu'\n")
    );
    let blobs = data.join("blobs");
    assert!(!blobs.exists() || walk(&blobs).is_empty(), "the dry run stored {:?}", walk(&blobs));

    // After a mirror of jammy alone, what it stored is counted apart.
    let jammy: Vec<&str> = SCOPE.iter().copied().chain(["--suite", "jammy"]).collect();
    mirror_json(&data, &upstream.url, &jammy);
    let out = mirror(&data, &upstream.url, &scoped_three_suites(&["--dry-run", "--json"]));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let paths = |key: &str| -> Vec<String> {
        plan[key].as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(
        paths("pool_files"),
        ["pool/main/h/hello-asof/hello-asof_1.0-1ubuntu0.1_all.deb", "pool/main/h/hello-asof/hello-asof_1.1-1_all.deb"]
    );
    assert_eq!(
        paths("pool_files_stored"),
        [
            "pool/main/a/asof-arch/asof-arch_1.0-1_amd64.deb",
            "pool/main/h/hello-asof/hello-asof_1.0-1_all.deb",
            "pool/universe/a/asof-universe/asof-universe_1.0-1_all.deb",
        ]
    );
    let stored: Vec<String> = index.iter().filter(|p| p.starts_with("dists/jammy/")).map(|p| p.to_string()).collect();
    assert_eq!(paths("index_files_stored"), stored);
    assert_eq!(paths("index_files").len(), 16);
    let new_pool = size("pool/main/h/hello-asof/hello-asof_1.0-1ubuntu0.1_all.deb")
        + size("pool/main/h/hello-asof/hello-asof_1.1-1_all.deb");
    let new_index: u64 = index.iter().filter(|p| !p.starts_with("dists/jammy/")).map(|p| size(p)).sum();
    assert_eq!(plan["download_files"], 9 + 16 + 2);
    assert_eq!(plan["download_bytes"], total(&release) + new_index + new_pool);
    assert_eq!(snapshot_count(&data), 1);
}

fn snapshot_count(data: &Path) -> usize {
    let out = asof(data, &["snapshots", "ubuntu", "--json"]);
    if out.status.code() == Some(2) {
        return 0;
    }
    serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap().as_array().unwrap().len()
}

#[test]
fn files_missing_upstream_fail_the_run_unless_allowed_and_are_retried() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let tree = tmp.path().join("upstream");
    copy_tree(&ubuntu(), &tree);
    const GONE_POOL: &str = "pool/main/h/hello-asof/hello-asof_1.1-1_all.deb";
    const GONE_INDEX: &str = "dists/jammy-updates/main/i18n/Translation-en.xz";
    // The Release lists it uncompressed too (upstream never has that one): with no variant
    // left, each listed name is reported.
    const GONE_PLAIN: &str = "dists/jammy-updates/main/i18n/Translation-en";
    std::fs::remove_file(tree.join(GONE_POOL)).unwrap();
    std::fs::remove_file(tree.join(GONE_INDEX)).unwrap();
    let upstream = Upstream::start(tree);

    let out = mirror(&data, &upstream.url, &scoped_three_suites(&[]));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "error: mirroring ubuntu: 3 files listed upstream could not be found there (404); no snapshot was made, so the next run retries them (--allow-missing records a snapshot without them):\n  {GONE_PLAIN}\n  {GONE_INDEX}\n  {GONE_POOL}\n"
        )
    );
    assert_eq!(snapshot_count(&data), 0);

    // A dry run names the missing index (pool files are not asked for).
    let out = mirror(&data, &upstream.url, &scoped_three_suites(&["--dry-run"]));
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8(out.stderr).unwrap();
    let listed = format!("\n  listed upstream but not found there (404): 2\n    {GONE_PLAIN}\n    {GONE_INDEX}\n");
    assert!(stderr.contains(&listed), "{stderr}");

    // Accepted as absent: the snapshot is recorded without them, and says so.
    let out = mirror(&data, &upstream.url, &scoped_three_suites(&["--allow-missing", "--json"]));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = report["snapshot"].as_str().unwrap().to_string();
    assert_eq!(report["missing"], serde_json::json!([GONE_PLAIN, GONE_INDEX, GONE_POOL]));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        stderr.lines().take(4).collect::<Vec<_>>(),
        [
            format!(
                "warning: ubuntu: snapshot {id} recorded without 3 files listed upstream but not found there (404; --allow-missing):"
            ),
            format!("  {GONE_PLAIN}"),
            format!("  {GONE_INDEX}"),
            format!("  {GONE_POOL}"),
        ]
    );
    let expected: Vec<&str> = SCOPED.iter().copied().filter(|p| *p != GONE_INDEX && *p != GONE_POOL).collect();
    assert_eq!(snapshot_files(&data, "ubuntu", &id), expected);
    let list: serde_json::Value =
        serde_json::from_slice(&asof(&data, &["snapshots", "ubuntu", "--json"]).stdout).unwrap();
    assert_eq!(list[0]["source"]["missing"], serde_json::json!([GONE_PLAIN, GONE_INDEX, GONE_POOL]));

    // Still missing on the next run: retried, but the same tree makes no second snapshot.
    wait_until_past(&id);
    let again = mirror(&data, &upstream.url, &scoped_three_suites(&["--allow-missing", "--json"]));
    assert_eq!(again.status.code(), Some(0), "{}", String::from_utf8_lossy(&again.stderr));
    let again: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!((again["unchanged"].as_bool(), again["snapshot"].as_str()), (Some(true), Some(id.as_str())));
    assert_eq!(snapshot_count(&data), 1);

    // Upstream has them again: the same Release is not "unchanged", the files are fetched.
    wait_until_past(&id);
    upstream.set_root(ubuntu());
    upstream.reset_counts();
    let report = mirror_json(&data, &upstream.url, &scoped_three_suites(&[]));
    assert_eq!(report["unchanged"], false);
    assert_eq!(report["downloaded_files"], 1);
    assert_eq!(upstream.requested(GONE_POOL), 1);
    assert_eq!(snapshot_files(&data, "ubuntu", report["snapshot"].as_str().unwrap()), SCOPED);
    // And once complete, the next run finds nothing new.
    let again = mirror_json(&data, &upstream.url, &scoped_three_suites(&[]));
    assert_eq!((again["unchanged"].as_bool(), again["snapshot"].as_str()), (Some(true), report["snapshot"].as_str()));
}
