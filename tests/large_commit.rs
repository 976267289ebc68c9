//! Issue 8, item 4: a commit of a 1,000,000-entry manifest works with the server's peak
//! memory under 256 MB, and a body over the configured limit gets 413 before it is read.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;

const ENTRIES: usize = 1_000_000;
const RSS_LIMIT: u64 = 256 << 20;

fn token(data: &std::path::Path) -> String {
    let out = asof(data, &["token", "create", "--scope", "publish:*"]);
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Sends `body` as a POST and returns the raw response.
fn post(addr: &str, path: &str, token: &str, body: &[u8]) -> Response {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(600))).unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").expect("a response");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    Response { status, headers: Default::default(), body: body.as_bytes().to_vec() }
}

#[test]
fn a_million_entry_manifest_commits_in_bounded_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // One public blob that every entry names (what is measured is the manifest, not blobs).
    let tree = tmp.path().join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("f"), b"shared content\n").unwrap();
    publish(&data, "seed", &tree);
    let sha = sha256_hex(b"shared content\n");
    let token = token(&data);
    let server = Server::start(&data);
    let baseline = server.peak_rss();

    let mut body = Vec::with_capacity(ENTRIES * 140);
    body.extend_from_slice(b"{\"manifest\":[");
    for i in 0..ENTRIES {
        if i > 0 {
            body.push(b',');
        }
        write!(
            body,
            "{{\"kind\":\"file\",\"path\":\"pool/main/p{}/pkg{i}_1.0_amd64.deb\",\"size\":15,\"sha256\":\"{sha}\"}}",
            i % 1000
        )
        .unwrap();
    }
    body.extend_from_slice(b"]}");
    let r = post(&server.addr, "/api/v1/archives/big/-/snapshots", &token, &body);
    assert_eq!(r.status, 201, "{}", r.text());
    let snap = r.json();
    assert_eq!(snap["files"], ENTRIES);
    assert_eq!(snap["added"], ENTRIES);
    let id = snap["id"].as_str().unwrap().to_string();
    let peak = server.peak_rss();
    eprintln!("server peak RSS: {} MB (at start {} MB)", peak >> 20, baseline >> 20);
    assert!(peak < RSS_LIMIT, "peak RSS {} MB (at start {} MB)", peak >> 20, baseline >> 20);

    let f = server.get(&format!("/big/{id}/pool/main/p999/pkg999999_1.0_amd64.deb"));
    assert_eq!(f.status, 200);
    assert_eq!(f.body, b"shared content\n");
    assert!(std::fs::read_dir(data.join("tmp")).unwrap().next().is_none(), "spool and stage files are gone");
}

#[test]
fn a_body_over_the_limit_is_refused_before_it_is_read() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let token = token(&data);
    let config = tmp.path().join("asof.toml");
    std::fs::write(&config, "[server]\nmax_manifest_bytes = 1000\n").unwrap();
    let server = Server::start_with(&data, &["--config", config.to_str().unwrap()]);
    // Only the header is sent: the answer must come without the 1 GB the header announces.
    let mut s = TcpStream::connect(&server.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let head = format!(
        "POST /api/v1/archives/a/-/snapshots HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Length: 1000000000\r\nConnection: close\r\n\r\n"
    );
    s.write_all(head.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 413 Payload Too Large\r\n"), "{text}");
    assert!(text.ends_with("{\"error\":\"request body is over the 1000-byte limit\",\"status\":413}"), "{text}");
    // A chunked body with no length is cut off once it passes the limit.
    let mut s = TcpStream::connect(&server.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let head = format!(
        "POST /api/v1/archives/a/-/snapshots HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    s.write_all(head.as_bytes()).unwrap();
    let chunk = format!("{:x}\r\n{}\r\n", 600, "x".repeat(600));
    s.write_all(chunk.as_bytes()).unwrap();
    s.write_all(chunk.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 413 Payload Too Large\r\n"), "{text}");
}
