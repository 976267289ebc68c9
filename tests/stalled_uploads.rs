//! Issue 8, item 2 (upload side): stalled uploads hold no blocking-pool thread and are
//! abandoned with 408 after the body timeout, while every other request keeps answering.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;

const STALLED: usize = 520;

#[test]
fn five_hundred_twenty_stalled_uploads_do_not_starve_the_server() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let id = publish(&data, "debian", &fixtures().join("apt/v1"));
    let out = asof(&data, &["token", "create", "--scope", "publish:*"]);
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let config = tmp.path().join("asof.toml");
    std::fs::write(&config, "[server]\nbody_timeout_secs = 3\n").unwrap();
    let server = Server::start_with(&data, &["--config", config.to_str().unwrap()]);

    // Each upload announces 1000 bytes, sends 10 and stalls.
    let digest = "0".repeat(64);
    let started = Instant::now();
    let mut stalled: Vec<TcpStream> = (0..STALLED)
        .map(|_| {
            let mut s = TcpStream::connect(&server.addr).unwrap();
            let head = format!(
                "PUT /api/v1/blobs/{digest} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
                 Content-Length: 1000\r\nConnection: close\r\n\r\n0123456789"
            );
            s.write_all(head.as_bytes()).unwrap();
            s
        })
        .collect();

    // Meanwhile a file still answers at once, with its bytes (before the timeout fires).
    let r = server.get(&format!("/debian/{id}/dists/stable/InRelease"));
    assert_eq!(r.status, 200);
    assert_eq!(r.body, std::fs::read(fixtures().join("apt/v1/dists/stable/InRelease")).unwrap());
    assert!(started.elapsed() < Duration::from_secs(3), "answered only after {:?}", started.elapsed());

    // Every stalled upload is abandoned with 408 and a JSON body.
    let expected =
        "{\"error\":\"the request body stalled: less than 4096 bytes arrived in 3 s; nothing stored\",\"status\":408}";
    for s in &mut stalled {
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let text = String::from_utf8_lossy(&raw);
        assert!(text.starts_with("HTTP/1.1 408 Request Timeout\r\n"), "{text}");
        assert!(text.ends_with(expected), "{text}");
    }
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(3) && waited < Duration::from_secs(15), "{waited:?}");
    let tmp_files = std::fs::read_dir(data.join("blobs/tmp")).unwrap().count();
    assert_eq!(tmp_files, 0, "abandoned uploads leave no temp file");
}
