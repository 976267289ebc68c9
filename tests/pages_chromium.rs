//! Issue 9, item 4: the HTML pages as a browser sees them. The real server, three published
//! snapshots (a library upgraded twice, one package removed, one added), and headless
//! Chromium's `--dump-dom` of the archive page, search results, a package page, a diff page,
//! a snapshot page and an error page; plus a screenshot of the diff page.
//! Chromium is a test dependency (scripts/install-test-deps.sh): without it this fails.

mod common;

use std::path::Path;
use std::process::Command;

use common::{Server, publish};

fn packages_file(pkgs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (name, version) in pkgs {
        let file = format!("pool/main/{}/{name}_{version}_amd64.deb", &name[..1]);
        let bytes = format!("{name} {version}");
        out.push_str(&format!(
            "Package: {name}\nVersion: {version}\nArchitecture: amd64\nFilename: {file}\nSize: {}\nSHA256: {}\n\n",
            bytes.len(),
            common::sha256_hex(bytes.as_bytes())
        ));
    }
    out
}

fn write_tree(dir: &Path, pkgs: &[(&str, &str)]) {
    let files = [
        ("dists/stable/main/binary-amd64/Packages", packages_file(pkgs)),
        ("dists/stable/Release", "Suite: stable\n".to_string()),
    ];
    for (path, text) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}

/// Runs headless Chromium on `url` with `args`; its stdout.
fn chromium(profile: &Path, args: &[&str], url: &str) -> String {
    let out = Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .output()
        .expect("headless chromium is a test dependency: run scripts/install-test-deps.sh");
    assert!(out.status.success(), "chromium {args:?} {url}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[track_caller]
fn assert_has(dom: &str, fragments: &[String]) {
    for f in fragments {
        assert!(dom.contains(f.as_str()), "missing {f}\nin {dom}");
    }
}

#[test]
fn the_pages_in_a_browser() {
    let data = tempfile::tempdir().unwrap();
    let mut ids = Vec::new();
    for pkgs in [
        [("hello", "2.10-1"), ("libfoo1", "1.0-1"), ("oldpkg", "1.0")],
        [("hello", "2.10-1"), ("libfoo1", "1.1-1"), ("newpkg", "0.1")],
        [("hello", "2.10-1"), ("libfoo1", "1.2-1"), ("newpkg", "0.1")],
    ] {
        let tree = tempfile::tempdir().unwrap();
        write_tree(tree.path(), &pkgs);
        ids.push(publish(data.path(), "deb", tree.path()));
    }
    let (id1, id2, id3) = (&ids[0], &ids[1], &ids[2]);
    let server = Server::start(data.path());
    let profile = tempfile::tempdir().unwrap();
    let dom = |path: &str| chromium(profile.path(), &["--dump-dom"], &server.url(path));

    // The archive page: search box, compare form, change counts linked to diffs.
    let archive = dom("/deb/");
    assert_has(
        &archive,
        &[
            "<form class=\"search\" action=\"/deb/-/packages\" method=\"get\"><input type=\"search\" name=\"q\" value=\"\" placeholder=\"package name\"> <button type=\"submit\">search packages</button></form>".into(),
            format!("<form class=\"compare\" action=\"/deb/-/diff\" method=\"get\">compare <input type=\"text\" name=\"from\" value=\"{id2}\""),
            format!("<input type=\"text\" name=\"to\" value=\"{id3}\""),
            // File counts (only the Packages index changed), linked to the package diff.
            format!("<td><a href=\"/deb/-/diff?from={id2}&amp;to={id3}\">+0 ~1 -0</a></td>"),
            format!("<td><a href=\"/deb/-/diff?from={id1}&amp;to={id2}\">+0 ~1 -0</a></td>"),
            // The first snapshot has nothing to diff against.
            "<td>+2 ~0 -0</td>".into(),
        ],
    );

    // Search results link package pages.
    let results = dom("/deb/-/packages?q=lib");
    assert_has(
        &results,
        &[
            "<ul class=\"results\"><li><a href=\"/deb/-/packages/libfoo1\">libfoo1</a></li></ul>".into(),
            format!("<input type=\"hidden\" name=\"at\" value=\"{id3}\">"),
        ],
    );
    let results = dom(&format!("/deb/-/packages?q=pkg&at={id1}"));
    assert_has(&results, &["<ul class=\"results\"><li><a href=\"/deb/-/packages/oldpkg\">oldpkg</a></li></ul>".into()]);

    // The package page: every version, first and last seen linked to those snapshots.
    let package = dom("/deb/-/packages/libfoo1");
    let row = |version: &str, first: &str, last: &str| {
        format!(
            "<td class=\"version\">{version}</td><td>stable</td><td>main</td><td>amd64</td>\
             <td><a href=\"/deb/-/sources/libfoo1\">libfoo1</a> {version}</td>\
             <td class=\"first\"><a href=\"/deb/{first}/\">{first}</a></td><td class=\"last\">{last}</td>\
             <td class=\"file\"><a href=\"/deb/{first}/pool/main/l/libfoo1_{version}_amd64.deb\">pool/main/l/libfoo1_{version}_amd64.deb</a></td>"
        )
    };
    let link = |id: &str| format!("<a href=\"/deb/{id}/\">{id}</a>");
    assert_has(&package, &[row("1.0-1", id1, &link(id1)), row("1.1-1", id2, &link(id2)), row("1.2-1", id3, "current")]);
    assert_eq!(package.matches("<td class=\"version\">").count(), 3, "{package}");

    // The diff page: one row per change, colored by kind, and the counts.
    let diff_path = format!("/deb/-/diff?from={id1}&to={id3}");
    let diff = dom(&diff_path);
    let change = |class: &str, name: &str, old: &str, new: &str| {
        format!(
            "<tr class=\"{class}\"><td><a href=\"/deb/-/packages/{name}\">{name}</a></td><td>stable</td><td>main</td><td>amd64</td>\
             <td class=\"old\">{old}</td><td class=\"new\">{new}</td><td class=\"change\">{class}</td></tr>"
        )
    };
    assert_has(
        &diff,
        &[
            change("upgraded", "libfoo1", "1.0-1", "1.2-1"),
            change("added", "newpkg", "", "0.1"),
            change("removed", "oldpkg", "1.0", ""),
            "<p id=\"counts\">3 changes, <span class=\"added\">1 added</span>, <span class=\"removed\">1 removed</span>, \
             <span class=\"upgraded\">1 upgraded</span>, <span class=\"downgraded\">0 downgraded</span>, <span class=\"rebuilt\">0 rebuilt</span></p>"
                .into(),
        ],
    );
    assert_eq!(diff.matches("<tr class=").count(), 3, "{diff}");

    // Snapshot pages link their neighbours.
    let middle = dom(&format!("/deb/{id2}/"));
    assert_has(
        &middle,
        &[
            format!("<a rel=\"prev\" href=\"/deb/{id1}/\">← previous snapshot {id1}</a>"),
            format!("<a class=\"changes\" href=\"/deb/-/diff?from={id1}&amp;to={id2}\">changes since {id1}</a>"),
            format!("<a rel=\"next\" href=\"/deb/{id3}/\">next snapshot {id3} →</a>"),
        ],
    );
    let first = dom(&format!("/deb/{id1}/"));
    assert!(
        !first.contains("rel=\"prev\"") && first.contains(&format!("href=\"/deb/{id2}/\">next snapshot")),
        "{first}"
    );

    // Errors: a page for the browser, the same JSON as ever for other clients.
    let error = dom("/deb/-/packages/nosuch");
    assert_has(
        &error,
        &[
            "<title>asof: 404 Not Found</title>".into(),
            "<h2>404 Not Found</h2><p class=\"error\">package 'nosuch' was never in archive 'deb'</p>".into(),
        ],
    );
    let r = server.request("GET", "/deb/-/packages/nosuch", &[("accept", "text/html,application/xhtml+xml")]);
    assert_eq!((r.status, r.header("content-type")), (404, "text/html; charset=utf-8"));
    let r = server.get("/deb/-/packages/nosuch");
    assert_eq!((r.status, r.header("content-type")), (404, "application/json"));
    assert_eq!(r.text(), "{\"error\":\"package 'nosuch' was never in archive 'deb'\",\"status\":404}");

    // A screenshot of the diff page: a real PNG of some size.
    let shot = profile.path().join("diff.png");
    let arg = format!("--screenshot={}", shot.display());
    chromium(profile.path(), &[&arg, "--window-size=1200,900", "--hide-scrollbars"], &server.url(&diff_path));
    let png = std::fs::read(&shot).expect("chromium wrote the screenshot");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert!(png.len() > 10_000, "a {} byte screenshot is too small to show the page", png.len());
    if let Ok(keep) = std::env::var("ASOF_KEEP_SCREENSHOT") {
        std::fs::copy(&shot, keep).unwrap();
    }
}
