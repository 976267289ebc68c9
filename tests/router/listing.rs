//! Listings: archives at `/`, snapshots at `/<archive>/`, directories inside a snapshot;
//! HTML by default, JSON for `Accept: application/json`.

use super::*;

const HTML: &str = "text/html; charset=utf-8";
const JSON: &str = "application/json";

#[track_caller]
fn assert_listing(r: &Resp, content_type: &str, cache: &str, vary: &str, snapshot: Option<SnapshotId>) {
    let len = r.body.len().to_string();
    let snap = snapshot.map(|s| s.to_string());
    let mut h =
        vec![("content-type", content_type), ("cache-control", cache), ("vary", vary), ("content-length", &len)];
    if let Some(s) = &snap {
        h.push(("x-asof-snapshot", s));
    }
    r.assert(200, &h);
}

#[tokio::test]
async fn the_archive_list_in_html_and_json() {
    let app = App::start();
    let r = app.get("/").await;
    assert_listing(&r, HTML, SHORT, "accept, authorization", None);
    let style = "body{font-family:system-ui,sans-serif;margin:2em;}table{border-collapse:collapse}\
                 td,th{padding:2px 12px;text-align:left}tr:nth-child(even){background:#f4f4f4}code{font-size:90%}\
                 form{margin:0.5em 0}nav a{margin-right:1em}.error{color:#a00}\
                 tr.added td{background:#dafbe1}tr.removed td{background:#ffebe9}tr.upgraded td{background:#ddf4ff}\
                 tr.downgraded td{background:#fff8c5}tr.rebuilt td{background:#eeeeee}";
    assert_eq!(
        r.text(),
        format!(
            "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>asof: archives</title><style>{style}</style></head>\
             <body><h1><a href=\"/\">asof</a></h1><table><tr><th>archive</th><th>snapshots</th><th>latest</th></tr>\
             <tr><td><a href=\"/debian/\">debian</a></td><td>2</td><td>{}</td></tr></table></body></html>",
            app.id2
        )
    );
    let want = json!({"archives": [{"name": "debian", "snapshots": 2, "first": app.id1.to_string(), "latest": app.id2.to_string()}]});
    for accept in [JSON, "text/html;q=0.5, application/json"] {
        let r = app.get_with("/", &[("accept", accept)]).await;
        assert_listing(&r, JSON, SHORT, "accept, authorization", None);
        assert_eq!(r.json(), want, "{accept}");
    }
}

#[tokio::test]
async fn the_snapshot_list_of_an_archive() {
    let app = App::start();
    let (s1, s2) = (app.snapshot(app.id1), app.snapshot(app.id2));
    // The change counts link to the package diff against the previous snapshot, if any.
    let row = |s: &Snapshot, prev: Option<SnapshotId>| {
        let counts = format!("+{} ~{} -{}", s.added, s.changed, s.removed);
        let counts = match prev {
            Some(p) => format!("<a href=\"/debian/-/diff?from={p}&amp;to={}\">{counts}</a>", s.id),
            None => counts,
        };
        format!(
            "<tr><td><a href=\"/debian/{id}/\">{id}</a></td><td>{}</td><td>{}</td><td>{counts}</td><td><code>{}</code></td></tr>",
            s.files,
            s.bytes,
            &s.digest.hex()[..16],
            id = s.id
        )
    };
    let (row1, row2) = (row(&s1, None), row(&s2, Some(s1.id)));
    for uri in ["/debian/", "/debian"] {
        let r = app.get(uri).await;
        assert_listing(&r, HTML, SHORT, "accept, authorization", None);
        let html = r.text();
        let (p2, p1) = (html.find(&row2).unwrap(), html.find(&row1).unwrap());
        assert!(p2 < p1, "newest first: {html}");
        for s in [&s1, &s2] {
            assert!(
                html.contains(&format!("<h2>{}</h2>", s.id.datetime().format("%Y-%m"))),
                "grouped by month: {html}"
            );
        }
        assert!(html.contains("<title>asof: debian</title>"), "{html}");
        assert!(!html.contains("older snapshots"), "{html}");
        let forms = format!(
            "<form class=\"search\" action=\"/debian/-/packages\" method=\"get\"><input type=\"search\" name=\"q\" value=\"\" placeholder=\"package name\"> <button type=\"submit\">search packages</button></form>\
             <form class=\"compare\" action=\"/debian/-/diff\" method=\"get\">compare <input type=\"text\" name=\"from\" value=\"{}\" placeholder=\"from ID\" size=\"18\"> \
             with <input type=\"text\" name=\"to\" value=\"{}\" placeholder=\"to ID\" size=\"18\"> <button type=\"submit\">compare</button></form>",
            s1.id, s2.id
        );
        assert!(html.contains(&forms), "{forms} in {html}");
    }
    // Paging back in time.
    let html = app.get(&format!("/debian/?before={}", app.id2)).await.text();
    assert!(html.contains(&row1) && !html.contains(&row2), "{html}");
    app.get("/debian/?before=yesterday")
        .await
        .assert_error(400, &format!("parameter 'before': 'yesterday' is not a snapshot ID: {FORMAT_HELP}"));

    let r = app.get_with("/debian/", &[("accept", JSON)]).await;
    assert_listing(&r, JSON, SHORT, "accept, authorization", None);
    assert_eq!(
        r.json(),
        json!({
            "archive": "debian",
            "snapshots": [snapshot_json(&s2, None, None), snapshot_json(&s1, None, None)],
            "next_cursor": null,
        })
    );
}

#[tokio::test]
async fn the_fixture_snapshots_are_what_the_trees_hold() {
    let app = App::start();
    let (s1, s2) = (app.snapshot(app.id1), app.snapshot(app.id2));
    let size = |v: &str| tree_files(v).iter().map(|(_, b)| b.len() as u64).sum::<u64>();
    assert_eq!((s1.files, s1.bytes, s1.added, s1.changed, s1.removed), (8, size("v1"), 8, 0, 0));
    // v2 adds asof-extra and hello 1.1, drops hello 1.0 and changes every index.
    assert_eq!((s2.files, s2.bytes, s2.added, s2.changed, s2.removed), (9, size("v2"), 2, 6, 1));
}

#[tokio::test]
async fn directory_listings_in_html_and_json() {
    let app = App::start();
    let (id1, id2) = (app.id1, app.id2);
    let dir = "dists/stable";
    let file = |name: &str, version: &str, since: SnapshotId| {
        let b = bytes(version, &format!("{dir}/{name}"));
        json!({"name": name, "path": format!("{dir}/{name}"), "kind": "file", "size": b.len(), "sha256": sha256_hex(&b), "since": since.to_string()})
    };
    let want = json!({
        "archive": "debian",
        "requested": id2.to_string(),
        "snapshot": id2.to_string(),
        "path": dir,
        "entries": [
            file("InRelease", "v2", id2),
            file("Release", "v2", id2),
            file("Release.gpg", "v2", id2),
            {"name": "main", "path": "dists/stable/main", "kind": "dir", "since": id1.to_string()},
        ],
    });
    for uri in [format!("/debian/{id2}/{dir}/"), format!("/debian/{id2}/{dir}")] {
        let r = app.get_with(&uri, &[("accept", JSON)]).await;
        assert_listing(&r, JSON, IMMUTABLE, "accept", Some(id2));
        assert_eq!(r.json(), want, "{uri}");

        // The page of the latest snapshot will link the next one: not immutable yet.
        let r = app.get(&uri).await;
        assert_listing(&r, HTML, SHORT, "accept", Some(id2));
        let html = r.text();
        let release = bytes("v2", "dists/stable/Release");
        for fragment in [
            format!(
                "<tr><td><a href=\"/debian/{id2}/dists/stable/Release\">Release</a></td><td>{}</td><td>{id2}</td><td><code>{}</code></td></tr>",
                release.len(),
                sha256_hex(&release)
            ),
            format!(
                "<tr><td><a href=\"/debian/{id2}/dists/stable/main/\">main/</a></td><td></td><td>{id1}</td><td></td></tr>"
            ),
            format!("<title>asof: debian/{id2}/dists/stable</title>"),
            format!(
                "<nav><a rel=\"prev\" href=\"/debian/{id1}/\">← previous snapshot {id1}</a>\
                 <a class=\"changes\" href=\"/debian/-/diff?from={id1}&amp;to={id2}\">changes since {id1}</a></nav>"
            ),
        ] {
            assert!(html.contains(&fragment), "{fragment} in {html}");
        }
    }

    let r = app.get_with(&format!("/debian/{id1}/"), &[("accept", JSON)]).await;
    assert_listing(&r, JSON, IMMUTABLE, "accept", Some(id1));
    let entries = r.json()["entries"].clone();
    assert_eq!(
        entries,
        json!([
            {"name": "dists", "path": "dists", "kind": "dir", "since": id1.to_string()},
            {"name": "pool", "path": "pool", "kind": "dir", "since": id1.to_string()},
        ])
    );

    // An ID between snapshots lists the earlier one, says so, and links with the asked ID.
    let between = app.between();
    let r = app.get(&format!("/debian/{between}/")).await;
    assert_listing(&r, HTML, IMMUTABLE, "accept", Some(id1));
    let html = r.text();
    let note = format!("<p>{between} resolves to snapshot <a href=\"/debian/{id1}/\">{id1}</a>.</p>");
    assert!(html.contains(&note), "{html}");
    let nav = format!("<nav><a rel=\"next\" href=\"/debian/{id2}/\">next snapshot {id2} →</a></nav>");
    assert!(html.contains(&nav), "{nav} in {html}");
    assert!(html.contains(&format!("<a href=\"/debian/{between}/dists/\">dists/</a>")), "{html}");
    let r = app.get_with(&format!("/debian/{between}/"), &[("accept", JSON)]).await;
    assert_eq!(
        (r.json()["requested"].clone(), r.json()["snapshot"].clone()),
        (json!(between.to_string()), json!(id1.to_string()))
    );
}
