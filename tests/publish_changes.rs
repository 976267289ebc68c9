//! `publish --changes` and `push --changes`: a change list applied to the latest snapshot
//! makes exactly the snapshot a full publish of the same tree makes (entries, digest and
//! counts), and a list that is wrong is refused with a message naming the problem.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use asof::catalog::Snapshot;
use asof::domain::ArchiveName;
use asof::manifest::Content;
use asof::publish::changes::{parse_list, publish_changes};
use asof::publish::{NoProgress, PublishOptions, PublishReport, publish_dir};
use asof::store::Store;
use common::*;
use rand::{Rng, SeedableRng};

fn opts() -> PublishOptions<'static> {
    PublishOptions { progress: &NoProgress, source: serde_json::json!({"method": "publish"}), always: true }
}

fn archive() -> ArchiveName {
    "debian".parse().unwrap()
}

fn write(root: &Path, rel: &str, data: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, data).unwrap();
}

fn link(root: &Path, rel: &str, target: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    let _ = std::fs::remove_file(&p);
    symlink(target, p).unwrap();
}

/// What a tree holds, by path: file bytes, or a symlink's target (`-> target`).
fn contents(root: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_str().unwrap().to_string();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            if meta.file_type().is_symlink() {
                out.insert(rel, format!("-> {}", std::fs::read_link(&p).unwrap().display()));
            } else if meta.is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(rel, std::fs::read_to_string(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// The paths whose content differs between two states of a tree: the change list a
/// publisher would give.
fn diff(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> String {
    let mut list = String::from("# changes\n\n");
    for path in before.keys().chain(after.keys()).collect::<std::collections::BTreeSet<_>>() {
        if before.get(path) != after.get(path) {
            list.push_str(path);
            list.push('\n');
        }
    }
    list
}

/// Every entry of a snapshot (directories included), as (path, kind and content).
fn entries(store: &Store, snap: &Snapshot) -> Vec<(String, Content)> {
    let mut out = Vec::new();
    store
        .catalog
        .for_each_entry(snap.key, &mut |e| {
            out.push((e.path.to_string(), e.content));
            Ok(())
        })
        .unwrap();
    out
}

/// Two data dirs that hold the same first snapshot: one for full publishes, one for
/// change lists.
struct Pair {
    _tmp: tempfile::TempDir,
    tree: PathBuf,
    full: Store,
    changes: Store,
}

impl Pair {
    fn new(build: impl FnOnce(&Path)) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let tree = tmp.path().join("tree");
        std::fs::create_dir(&tree).unwrap();
        build(&tree);
        let full = Store::open_local(&tmp.path().join("full")).unwrap();
        let changes = Store::open_local(&tmp.path().join("changes")).unwrap();
        publish_dir(&full, &archive(), &tree, &opts()).unwrap();
        publish_dir(&changes, &archive(), &tree, &opts()).unwrap();
        Pair { _tmp: tmp, tree, full, changes }
    }

    /// Applies `edit` to the tree, publishes it both ways and checks the two snapshots are
    /// the same; returns the report of the publish by change list.
    fn publish_both(&self, edit: impl FnOnce(&Path)) -> PublishReport {
        let before = contents(&self.tree);
        edit(&self.tree);
        let list = diff(&before, &contents(&self.tree));
        self.publish_both_with(&list)
    }

    fn publish_both_with(&self, list: &str) -> PublishReport {
        let full = publish_dir(&self.full, &archive(), &self.tree, &opts()).unwrap();
        let listed = parse_list(list.as_bytes()).unwrap();
        let by_list = publish_changes(&self.changes, &archive(), &self.tree, &listed, &opts()).unwrap();
        assert_eq!(
            (by_list.digest, by_list.files, by_list.bytes, by_list.added, by_list.changed, by_list.removed),
            (full.digest, full.files, full.bytes, full.added, full.changed, full.removed),
            "list:\n{list}"
        );
        let a = self.full.catalog.latest(&archive()).unwrap().unwrap();
        let b = self.changes.catalog.latest(&archive()).unwrap().unwrap();
        assert_eq!(entries(&self.full, &a), entries(&self.changes, &b), "list:\n{list}");
        by_list
    }
}

fn base_tree(t: &Path) {
    write(t, "dists/bookworm/Release", "release 1");
    write(t, "dists/bookworm/InRelease", "inrelease 1");
    write(t, "dists/bookworm/main/binary-amd64/Packages", "packages 1");
    link(t, "dists/stable", "bookworm");
    write(t, "pool/main/a/aa/aa_1.deb", "aa 1");
    write(t, "pool/main/b/bb/bb_1.deb", "bb 1");
    write(t, "pool/main/b/bc/bc_1.deb", "bc 1");
    write(t, "pool/main/c/cc/cc_1.deb", "cc 1");
    write(t, "pool/main/c/cc/cc_1.dsc", "cc dsc");
    write(t, "pool/contrib/x/xx/xx_1.deb", "xx 1");
    write(t, "doc/readme", "readme");
    write(t, "top", "top file");
}

#[test]
fn a_change_list_makes_the_snapshot_a_full_publish_makes() {
    let pair = Pair::new(base_tree);
    // Added (in new directories), changed, removed (emptying directories up to pool/contrib),
    // a symlink retargeted, a file turned into a symlink.
    let report = pair.publish_both(|t| {
        write(t, "dists/bookworm/Release", "release 2");
        write(t, "dists/bookworm/InRelease", "inrelease 2");
        write(t, "pool/main/d/dd/dd_1.deb", "dd 1");
        write(t, "pool/main/b/bb/bb_2.deb", "bb 2");
        std::fs::remove_file(t.join("pool/main/b/bb/bb_1.deb")).unwrap();
        std::fs::remove_dir_all(t.join("pool/contrib")).unwrap();
        link(t, "dists/stable", "bookworm/.");
        std::fs::remove_file(t.join("top")).unwrap();
        link(t, "top", "doc/readme");
    });
    assert_eq!((report.added, report.changed, report.removed), (2, 4, 2));
    assert_eq!(report.files, 12);
}

#[test]
fn directories_replaced_by_files_and_files_by_directories() {
    let pair = Pair::new(base_tree);
    // doc/ becomes a file (its subtree goes), top becomes a directory.
    let list = "doc\ntop\ntop/inner\n";
    std::fs::remove_dir_all(pair.tree.join("doc")).unwrap();
    write(&pair.tree, "doc", "now a file");
    std::fs::remove_file(pair.tree.join("top")).unwrap();
    write(&pair.tree, "top/inner", "inner");
    let r = pair.publish_both_with(list);
    assert_eq!((r.added, r.changed, r.removed), (2, 0, 2));
    // A removed directory may be listed as itself: its whole subtree goes.
    std::fs::remove_dir_all(pair.tree.join("pool/main/c")).unwrap();
    let r = pair.publish_both_with("pool/main/c\n");
    assert_eq!((r.added, r.changed, r.removed), (0, 0, 2));
    // Listed but unchanged, listed twice, with ./ and comments: nothing changes.
    let r = pair.publish_both_with("./top/inner\n  # a comment\n\ntop/inner\r\n");
    assert_eq!((r.added, r.changed, r.removed, r.files), (0, 0, 0, 10));
}

/// Random edits, many rounds: the two data dirs never differ.
#[test]
fn random_edits_publish_the_same_both_ways() {
    let pair = Pair::new(base_tree);
    let mut rng = rand::rngs::StdRng::seed_from_u64(13);
    let dirs = ["dists/bookworm", "pool/main/a/aa", "pool/main/e/ee", "pool/new/z", "pool/main/b/bb", "x"];
    for round in 0..12 {
        pair.publish_both(|t| {
            for _ in 0..rng.gen_range(1..8) {
                let dir = dirs[rng.gen_range(0..dirs.len())];
                let name = format!("{dir}/f{}", rng.gen_range(0..4));
                match rng.gen_range(0..5) {
                    0 | 1 => write(t, &name, &format!("round {round} {}", rng.r#gen::<u32>())),
                    2 => {
                        let _ = std::fs::remove_file(t.join(&name));
                    }
                    3 => {
                        if !t.join(&name).is_dir() {
                            link(t, &name, "../f0");
                        }
                    }
                    _ => {
                        let _ = std::fs::remove_dir_all(t.join(dir));
                    }
                }
            }
            // A snapshot needs at least one file, and release files always exist in apt trees.
            write(t, "dists/bookworm/Release", &format!("release {round}"));
        });
    }
}

fn list_file(dir: &Path, list: impl AsRef<[u8]>) -> PathBuf {
    let p = dir.join("changes.list");
    std::fs::write(&p, list).unwrap();
    p
}

/// Runs `asof publish debian TREE --changes LIST` and returns (exit code, stderr).
fn publish_with_list(data: &Path, tree: &Path, list: &Path) -> (i32, String) {
    let out = asof(data, &["publish", "debian", tree.to_str().unwrap(), "--changes", list.to_str().unwrap()]);
    (out.status.code().unwrap(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn refused(data: &Path, tree: &Path, list: &str, message: &str) {
    let list = list_file(data.parent().unwrap(), list);
    let (code, stderr) = publish_with_list(data, tree, &list);
    let prefix = format!("error: publishing {} as debian: ", tree.display());
    assert_eq!((code, stderr.trim_end()), (2, format!("{prefix}{message}").as_str()));
}

#[test]
fn wrong_lists_are_refused_with_the_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, t) = (tmp.path().join("data"), tmp.path().join("tree"));
    base_tree(&t);
    refused(&data, &t, "top\n", "--changes needs a previous snapshot; publish the whole tree first");
    let first = publish(&data, "debian", &t);
    let bad_list = |list: &[u8], message: &str| {
        let file = list_file(tmp.path(), list);
        let (code, stderr) = publish_with_list(&data, &t, &file);
        let expected = format!("error: reading the change list {}: {message}", file.display());
        assert_eq!((code, stderr.trim_end()), (2, expected.as_str()));
    };
    bad_list(
        b"top\n\n../etc/passwd\n",
        "line 3: invalid path \"../etc/passwd\": path '../etc/passwd' has a '.' or '..' segment",
    );
    bad_list(b"/etc/passwd\n", "line 1: invalid path \"/etc/passwd\": path is absolute: '/etc/passwd'");
    bad_list(b"top\n\xff\n", "line 2: not valid UTF-8");
    refused(
        &data,
        &t,
        "# nothing\ntop\nghost/file\n",
        "line 3: ghost/file is neither in the tree nor in the latest snapshot",
    );
    refused(&data, &t, "pool/main\n", "line 1: pool/main is a directory in the tree; list the files below it instead");
    // Nothing is read through a symlink: below dists/stable (-> bookworm) there is nothing.
    refused(
        &data,
        &t,
        "dists/stable/Release\n",
        "line 1: dists/stable/Release is neither in the tree nor in the latest snapshot",
    );
    link(&t, "escape", "../../etc/passwd");
    refused(
        &data,
        &t,
        "escape\n",
        "escape: symlink to \"../../etc/passwd\" points outside the tree (absolute or above its root)",
    );
    std::fs::remove_file(t.join("escape")).unwrap();
    std::fs::remove_file(t.join("top")).unwrap();
    write(&t, "top/below", "x");
    refused(
        &data,
        &t,
        "top/below\n",
        "top/below is below top, which is a file or symlink in the latest snapshot and is not listed; list it too, or publish the whole tree",
    );
    std::fs::remove_dir_all(t.join("top")).unwrap();
    write(&t, "top", "top file");
    // The Release files are always checked: one changed but not listed is caught.
    write(&t, "dists/bookworm/InRelease", "inrelease 22");
    refused(
        &data,
        &t,
        "doc/readme\n",
        "dists/bookworm/InRelease is not listed as changed but is 12 bytes in the tree, 11 in the latest snapshot; \
         the change list is incomplete: publish the whole tree (without --changes)",
    );
    write(&t, "dists/bookworm/InRelease", "inrelease 1");
    std::fs::remove_file(t.join("dists/bookworm/Release")).unwrap();
    refused(
        &data,
        &t,
        "doc/readme\n",
        "dists/bookworm/Release is not listed as changed but is missing from the tree; \
         the change list is incomplete: publish the whole tree (without --changes)",
    );
    // Nothing was recorded by any refusal.
    let out = asof(&data, &["snapshots", "debian", "--json"]);
    let snaps: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = snaps.as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [first.as_str()]);
}

#[test]
fn a_sampled_unlisted_file_that_changed_size_is_caught() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, t) = (tmp.path().join("data"), tmp.path().join("tree"));
    // Fewer files than the sample: every unlisted file is checked.
    base_tree(&t);
    publish(&data, "debian", &t);
    write(&t, "pool/main/a/aa/aa_1.deb", "aa 1 rebuilt");
    refused(
        &data,
        &t,
        "doc/readme\n",
        "pool/main/a/aa/aa_1.deb is not listed as changed but is 12 bytes in the tree, 4 in the latest snapshot; \
         the change list is incomplete: publish the whole tree (without --changes)",
    );
}

#[test]
fn the_list_can_come_from_stdin() {
    use std::io::Write;
    let tmp = tempfile::tempdir().unwrap();
    let (data, t) = (tmp.path().join("data"), tmp.path().join("tree"));
    base_tree(&t);
    publish(&data, "debian", &t);
    write(&t, "pool/main/a/aa/aa_2.deb", "aa 2");
    let mut child = std::process::Command::new(bin())
        .args(["--data", data.to_str().unwrap(), "publish", "debian", t.to_str().unwrap(), "--changes", "-", "--json"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"pool/main/a/aa/aa_2.deb\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((r["added"].as_u64(), r["changed"].as_u64(), r["removed"].as_u64()), (Some(1), Some(0), Some(0)));
    assert_eq!((r["files"].as_u64(), r["new_blobs"].as_u64()), (Some(13), Some(1)));
    verify_clean(&data);
}

fn token(data: &Path) -> String {
    let out = asof(data, &["token", "create", "--name", "ci", "--scope", "publish:debian"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Runs `asof push` (with `--changes LIST` when given): the JSON report, or stderr.
fn push(server: &Server, dir: &Path, token: &str, list: Option<&Path>) -> Result<serde_json::Value, String> {
    let mut cmd = std::process::Command::new(bin());
    cmd.args(["push", &server.url(""), "debian", dir.to_str().unwrap(), "--json", "--retries", "1"]);
    if let Some(list) = list {
        cmd.args(["--changes", list.to_str().unwrap()]);
    }
    let out = cmd.env("ASOF_TOKEN", token).output().unwrap();
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim_end().to_string())
    }
}

#[test]
fn push_with_a_change_list_uploads_only_the_listed_files() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, t) = (tmp.path().join("data"), tmp.path().join("tree"));
    base_tree(&t);
    let tok = token(&data);
    let server = Server::start(&data);
    let list = list_file(tmp.path(), "top\n");
    assert_eq!(
        push(&server, &t, &tok, Some(&list)).unwrap_err(),
        "error: --changes needs a previous snapshot; publish the whole tree first"
    );
    push(&server, &t, &tok, None).unwrap();

    let before = contents(&t);
    write(&t, "dists/bookworm/Release", "release 2");
    write(&t, "pool/main/d/dd/dd_1.deb", "dd 1");
    write(&t, "pool/main/d/dd/dd_1.dsc", "aa 1"); // same bytes as a stored blob: not uploaded
    std::fs::remove_file(t.join("pool/main/b/bb/bb_1.deb")).unwrap();
    link(&t, "dists/stable", "bookworm/.");
    let list = list_file(tmp.path(), diff(&before, &contents(&t)));
    let r = push(&server, &t, &tok, Some(&list)).unwrap();
    assert_eq!((r["uploaded_files"].as_u64(), r["uploaded_bytes"].as_u64()), (Some(2), Some(13)));
    assert_eq!((r["files"].as_u64(), r["bytes"].as_u64()), (Some(13), Some(tree_file_bytes(&t))));

    // The same tree published whole, locally, has the same content digest.
    let local = tmp.path().join("local");
    let report = asof(&local, &["publish", "debian", t.to_str().unwrap(), "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    let latest = server.get("/api/v1/archives/debian/-/latest");
    assert_eq!(latest.status, 200, "{}", latest.text());
    assert_eq!(latest.json()["digest"].as_str().unwrap(), format!("sha256:{}", report["digest"].as_str().unwrap()));
    assert_eq!(latest.json()["id"].as_str(), r["snapshot"].as_str());

    // A listed path the server does not have is refused by the server, precisely.
    let list = list_file(tmp.path(), "ghost\n");
    let err = push(&server, &t, &tok, Some(&list)).unwrap_err();
    let base = r["snapshot"].as_str().unwrap();
    assert_eq!(err, format!("error: committing: 400 Bad Request: cannot remove ghost: it is not in {base}"));
    drop(server);
    verify_clean(&data);
}

fn tree_file_bytes(root: &Path) -> u64 {
    contents(root).values().filter(|v| !v.starts_with("-> ")).map(|v| v.len() as u64).sum()
}
