//! Splits a request path `/<archive>/<ID>/<path>` into validated parts. The first segment
//! shaped like a snapshot ID ends the archive name, so archive names may contain `/`.
//! A rollout channel's node URL is `/<archive>/@<channel>/<node>/<path>`: a segment that
//! starts with `@` (never an archive segment), before any ID-shaped or `-` segment, ends the
//! archive name; the segment after it is the node.

use percent_encoding::percent_decode_str;

use super::error::ApiError;
use crate::domain::{ArchiveName, ChannelName, NodeName, RelPath, SnapshotId};

#[derive(Debug, PartialEq, Eq)]
pub enum Target {
    /// `/`: the list of archives.
    Root,
    /// No ID-shaped segment: an archive's snapshot list, or a path in its latest snapshot
    /// (the live path); only the catalog can tell which. Segments are decoded.
    NoId(Vec<String>),
    /// `/<archive>/-/<page...>`: an HTML page about an archive (`-` is never an archive
    /// segment, and comes before any ID). Segments are decoded.
    Page { archive: Vec<String>, page: Vec<String> },
    /// `/<archive>/<ID>/` or `/<archive>/<ID>/<path>`.
    InSnapshot { archive: ArchiveName, id: SnapshotId, path: Option<RelPath>, trailing_slash: bool },
    /// `/<archive>/@<channel>/<node>/` or `.../<path>`: what that node of a rollout channel
    /// is served now.
    Channel { archive: ArchiveName, channel: ChannelName, node: NodeName, path: Option<RelPath> },
}

/// Parses the raw (still percent-encoded) path of a request.
pub fn parse(raw: &str) -> Result<Target, ApiError> {
    let trailing_slash = raw.ends_with('/');
    let mut segs = Vec::new();
    for raw_seg in raw.split('/').filter(|s| !s.is_empty()) {
        let seg = percent_decode_str(raw_seg)
            .decode_utf8()
            .map_err(|_| ApiError::BadRequest("request path is not valid UTF-8 once percent-decoded".into()))?;
        if seg.contains('/') || seg.contains('\\') {
            return Err(ApiError::BadRequest("slashes inside a segment (encoded '/', or '\\') are not allowed".into()));
        }
        if seg == "." || seg == ".." {
            return Err(ApiError::BadRequest("'.' and '..' segments are not allowed in request paths".into()));
        }
        if seg.chars().any(char::is_control) {
            return Err(ApiError::BadRequest("control characters are not allowed in request paths".into()));
        }
        segs.push(seg.into_owned());
    }
    if segs.is_empty() {
        return Ok(Target::Root);
    }
    let id_at = segs.iter().position(|s| SnapshotId::looks_like_id(s));
    if let Some(at) = segs.iter().position(|s| s.starts_with('@'))
        && id_at.is_none_or(|i| at < i)
        && segs.iter().position(|s| s == "-").is_none_or(|d| at < d)
    {
        return channel_target(segs, at);
    }
    if let Some(dash) = segs.iter().position(|s| s == "-")
        && id_at.is_none_or(|i| dash < i)
    {
        let page = segs.split_off(dash + 1);
        segs.pop();
        return Ok(Target::Page { archive: segs, page });
    }
    let Some(i) = id_at else {
        return Ok(Target::NoId(segs));
    };
    let archive: ArchiveName =
        segs[..i].join("/").parse().map_err(|e| ApiError::NotFound(format!("no such archive: {e}")))?;
    let id: SnapshotId = segs[i].parse().map_err(|e| ApiError::NotFound(format!("{e}")))?;
    let rest = &segs[i + 1..];
    let path = if rest.is_empty() {
        None
    } else {
        // Past the checks above, a path that is not a valid RelPath (too long) names nothing.
        Some(RelPath::from_segments(rest.iter().map(String::as_str)).map_err(|e| ApiError::NotFound(e.to_string()))?)
    };
    Ok(Target::InSnapshot { archive, id, path, trailing_slash })
}

fn channel_target(segs: Vec<String>, at: usize) -> Result<Target, ApiError> {
    let archive: ArchiveName =
        segs[..at].join("/").parse().map_err(|e| ApiError::NotFound(format!("no such archive: {e}")))?;
    let channel: ChannelName = segs[at][1..].parse().map_err(|e| ApiError::NotFound(format!("{e}")))?;
    let Some(node) = segs.get(at + 1) else {
        return Err(ApiError::NotFound(format!("a channel URL names the node: /{archive}/@{channel}/<node>/<path>")));
    };
    let node: NodeName = node.parse().map_err(|e| ApiError::NotFound(format!("{e}")))?;
    let rest = &segs[at + 2..];
    let path = if rest.is_empty() {
        None
    } else {
        Some(RelPath::from_segments(rest.iter().map(String::as_str)).map_err(|e| ApiError::NotFound(e.to_string()))?)
    };
    Ok(Target::Channel { archive, channel, node, path })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn in_snapshot(raw: &str) -> (String, String, Option<String>) {
        match parse(raw).unwrap() {
            Target::InSnapshot { archive, id, path, .. } => {
                (archive.to_string(), id.to_string(), path.map(|p| p.to_string()))
            }
            other => panic!("{raw}: {other:?}"),
        }
    }

    #[test]
    fn splits_nested_archives_at_the_first_id() {
        assert_eq!(
            in_snapshot("/repos/prod/ubuntu/22.04/20240101T000000Z/dists/jammy/InRelease"),
            ("repos/prod/ubuntu/22.04".into(), "20240101T000000Z".into(), Some("dists/jammy/InRelease".into()))
        );
        assert_eq!(in_snapshot("/debian/20240101T000000Z/"), ("debian".into(), "20240101T000000Z".into(), None));
    }

    #[test]
    fn decodes_percent_escapes() {
        let (_, _, p) = in_snapshot("/debian/20240101T000000Z/pool/tzdata_2025b-0%2bdeb12u1_all.deb");
        assert_eq!(p.unwrap(), "pool/tzdata_2025b-0+deb12u1_all.deb");
    }

    #[test]
    fn rejects_escapes() {
        for raw in [
            "/debian/20240101T000000Z/../../etc/passwd",
            "/debian/20240101T000000Z/%2e%2e/x",
            "/debian/20240101T000000Z/a%2fb",
            "/debian/20240101T000000Z/a%5cb",
            "/debian/20240101T000000Z/a%00b",
            "/debian/20240101T000000Z/%ff",
        ] {
            assert!(matches!(parse(raw), Err(ApiError::BadRequest(_))), "{raw}");
        }
    }

    #[test]
    fn a_dash_before_any_id_names_a_page() {
        let page = |raw: &str| match parse(raw).unwrap() {
            Target::Page { archive, page } => (archive.join("/"), page.join("/")),
            other => panic!("{raw}: {other:?}"),
        };
        assert_eq!(page("/repos/deb/-/packages/libssl3"), ("repos/deb".into(), "packages/libssl3".into()));
        assert_eq!(page("/deb/-/diff"), ("deb".into(), "diff".into()));
        assert_eq!(page("/-/diff"), ("".into(), "diff".into()));
        // After an ID, `-` is a path inside the snapshot.
        assert_eq!(
            in_snapshot("/deb/20240101T000000Z/-/x"),
            ("deb".into(), "20240101T000000Z".into(), Some("-/x".into()))
        );
    }

    #[test]
    fn an_at_segment_before_any_id_names_a_channel_node() {
        let ch = |raw: &str| match parse(raw).unwrap() {
            Target::Channel { archive, channel, node, path } => {
                (archive.to_string(), channel.to_string(), node.to_string(), path.map(|p| p.to_string()))
            }
            other => panic!("{raw}: {other:?}"),
        };
        assert_eq!(
            ch("/repos/deb/@prod/web-1/dists/stable/InRelease"),
            ("repos/deb".into(), "prod".into(), "web-1".into(), Some("dists/stable/InRelease".into()))
        );
        assert_eq!(ch("/deb/@prod/web-1/"), ("deb".into(), "prod".into(), "web-1".into(), None));
        // The node may look like an ID; a path after it may hold `@` and `-`.
        assert_eq!(ch("/deb/@prod/20240101T000000Z/a/@b/-").2, "20240101T000000Z");
        // After an ID, `@x` is a path inside the snapshot.
        assert_eq!(
            in_snapshot("/deb/20240101T000000Z/@x/y"),
            ("deb".into(), "20240101T000000Z".into(), Some("@x/y".into()))
        );
        let not_found = |raw: &str| match parse(raw) {
            Err(ApiError::NotFound(m)) => m,
            other => panic!("{raw}: {other:?}"),
        };
        assert_eq!(not_found("/deb/@prod"), "a channel URL names the node: /deb/@prod/<node>/<path>");
        assert_eq!(
            not_found("/deb/@Prod/x/"),
            "channel name 'Prod' is invalid: it must match [a-z0-9][a-z0-9._-]* (one segment, no '/')"
        );
        assert_eq!(
            not_found("/deb/@prod/-x/"),
            "node name '-x' is invalid: it must match [A-Za-z0-9][A-Za-z0-9._-]* (a host name)"
        );
    }

    #[test]
    fn malformed_ids_say_the_format() {
        match parse("/debian/20241301T000000Z/x") {
            Err(ApiError::NotFound(m)) => assert!(m.contains("YYYYMMDDTHHMMSSZ"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            parse("/debian/2024-01-01/x").unwrap(),
            Target::NoId(vec!["debian".into(), "2024-01-01".into(), "x".into()])
        );
    }
}
