//! Refusals on the archive tree: 400 for traversal forms, 404 for names that do not exist
//! or are not IDs, 405 for methods other than GET and HEAD.

use super::*;

#[tokio::test]
async fn traversal_forms_are_400_before_any_lookup() {
    let app = App::start();
    let id1 = app.id1;
    let dots = "'.' and '..' segments are not allowed in request paths";
    let slashes = "slashes inside a segment (encoded '/', or '\\') are not allowed";
    let control = "control characters are not allowed in request paths";
    for (path, message) in [
        (format!("/debian/{id1}/../../../etc/passwd"), dots),
        (format!("/debian/{id1}/dists/%2e%2e/%2e%2e/etc/passwd"), dots),
        (format!("/debian/{id1}/./dists/stable/Release"), dots),
        (format!("/debian/{id1}/dists%2fstable%2fRelease"), slashes),
        (format!("/debian/{id1}/..%2f..%2fetc%2fpasswd"), slashes),
        (format!("/debian/{id1}/..%5c..%5cetc%5cpasswd"), slashes),
        (format!("/debian/{id1}/dists/stable/Release%00"), control),
        (format!("/debian/{id1}/dists/%0a/Release"), control),
        (format!("/debian/{id1}/%ff"), "request path is not valid UTF-8 once percent-decoded"),
        // Also where no ID follows, and in front of the archive.
        ("/../debian/".to_string(), dots),
        ("/debian%2f..%2f/".to_string(), slashes),
    ] {
        let r = app.get(&path).await;
        r.assert_error(400, message);
    }
}

#[tokio::test]
async fn names_that_are_not_archives_or_ids_are_404_with_the_reason() {
    let app = App::start();
    let id1 = app.id1;
    for (path, message) in [
        ("/ubuntu/".to_string(), "no archive named 'ubuntu'".to_string()),
        ("/debian/stable/Release".to_string(), format!("'stable' after archive 'debian' is not a snapshot ID: {FORMAT_HELP}")),
        (
            "/debian/2024-01-01/dists/stable/Release".to_string(),
            format!("'2024-01-01' after archive 'debian' is not a snapshot ID: {FORMAT_HELP}"),
        ),
        (
            "/debian/20241301T000000Z/dists/stable/Release".to_string(),
            format!("'20241301T000000Z' is not a valid date and time: {FORMAT_HELP}"),
        ),
        // A leap second is not an ID.
        (
            "/debian/20261123T004260Z/dists/stable/Release".to_string(),
            format!("'20261123T004260Z' is not a valid date and time: {FORMAT_HELP}"),
        ),
        (format!("/ubuntu/{id1}/dists/stable/Release"), "no archive named 'ubuntu'".to_string()),
        (
            format!("/Debian/{id1}/dists/stable/Release"),
            "no such archive: archive name segment 'Debian' is invalid: each segment must match [a-z0-9][a-z0-9._-]* and segments are joined by '/'".to_string(),
        ),
    ] {
        app.get(&path).await.assert_error(404, &message);
    }
    // A very long path without an ID is answered at once.
    let long = format!("/{}", "a/".repeat(20_000));
    let r = app.get(&long).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let msg = r.json()["error"].as_str().unwrap().to_string();
    assert_eq!(msg, format!("no archive named '{}'", "a/".repeat(100)));
}

#[tokio::test]
async fn only_get_and_head_are_served_on_the_tree() {
    let app = App::start();
    let id1 = app.id1;
    for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
        for path in ["/".to_string(), "/debian/".to_string(), format!("/debian/{id1}/dists/stable/Release")] {
            let r = app.call(method, &path, &[("content-length", "0")], Body::empty()).await;
            r.assert_error(405, "method not allowed: only GET and HEAD are served here");
        }
    }
}

/// A browser (Accept names text/html, not JSON) gets errors of the tree and the pages as an
/// HTML page with the same status and headers; every other client keeps the JSON body, and
/// the API stays JSON for browsers too.
#[tokio::test]
async fn browsers_get_error_pages() {
    let app = App::start();
    let browser = [("accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")];
    let message = "no archive named 'nosuch'";
    let page = |title: &str, message: &str| {
        format!(
            "<body><h1><a href=\"/\">asof</a></h1><h2>{title}</h2><p class=\"error\">{message}</p>\
             <p><a href=\"/\">all archives</a></p></body></html>"
        )
    };
    let r = app.get_with("/nosuch/", &browser).await;
    let len = r.body.len().to_string();
    r.assert(
        404,
        &[
            ("content-type", "text/html; charset=utf-8"),
            ("cache-control", "no-cache"),
            ("content-length", &len),
            ("vary", "accept"),
        ],
    );
    let html = r.text();
    assert!(html.starts_with("<!DOCTYPE html>") && html.ends_with(&page("404 Not Found", message)), "{html}");
    assert!(html.contains("<title>asof: 404 Not Found</title>"), "{html}");

    // Escaped by the template, and the Allow header of a 405 is kept.
    let r = app.get_with("/debian/-/packages/%3Cscript%3E", &browser).await;
    assert!(
        r.text().contains("<p class=\"error\">package '&lt;script&gt;' was never in archive 'debian'</p>"),
        "{}",
        r.text()
    );
    let r = app.call("DELETE", "/debian/", &browser, "").await;
    assert_eq!((r.status.as_u16(), r.headers["allow"].to_str().unwrap()), (405, "GET, HEAD"));
    assert!(
        r.text().ends_with(&page("405 Method Not Allowed", "method not allowed: only GET and HEAD are served here"))
    );

    for headers in [&[][..], &[("accept", "*/*")], &[("accept", "text/html, application/json")]] {
        app.get_with("/nosuch/", headers).await.assert_error(404, message);
    }
    app.get_with("/api/v1/archives/nosuch", &browser).await.assert_api_error(404, message);
}
