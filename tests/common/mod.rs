//! Shared helpers for black-box tests: run the real `asof` binary with a temp data dir,
//! start one server per test on 127.0.0.1:0, and speak raw HTTP/1.1 to it (so that paths
//! like `..` and `%2f` reach the server exactly as written).
#![allow(dead_code)]

pub mod apt;
pub mod chroot;
pub mod inproc;
pub mod services;
pub mod small_disk;
pub mod tree;
pub mod upstream;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_asof")
}

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// Runs `asof --data DATA ARGS...` and returns its output.
pub fn asof(data: &Path, args: &[&str]) -> Output {
    Command::new(bin()).arg("--data").arg(data).args(args).output().expect("run asof")
}

/// Publishes `dir` and returns the printed snapshot ID.
pub fn publish(data: &Path, archive: &str, dir: &Path) -> String {
    let out = asof(data, &["publish", archive, dir.to_str().unwrap()]);
    assert!(out.status.success(), "publish failed: {}", String::from_utf8_lossy(&out.stderr));
    let id = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(id.len(), 16, "unexpected publish output {id:?}");
    id
}

pub fn id_plus(id: &str, secs: i64) -> String {
    let t = chrono::NaiveDateTime::parse_from_str(id, "%Y%m%dT%H%M%SZ").unwrap().and_utc();
    (t + chrono::Duration::seconds(secs)).format("%Y%m%dT%H%M%SZ").to_string()
}

/// The HTTP date of the second named by `id` (a file's Last-Modified is when it appeared).
pub fn http_date(id: &str) -> String {
    let t = chrono::NaiveDateTime::parse_from_str(id, "%Y%m%dT%H%M%SZ").unwrap().and_utc();
    httpdate::fmt_http_date(t.into())
}

/// Sleeps until the wall clock is past the second named by `id`.
pub fn wait_until_past(id: &str) {
    let t = chrono::NaiveDateTime::parse_from_str(id, "%Y%m%dT%H%M%SZ").unwrap().and_utc();
    while chrono::Utc::now() < t + chrono::Duration::seconds(1) {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Where a test server's log goes: the file named by ASOF_TEST_SERVER_LOG (appended), for
/// debugging a failing test, or nowhere.
fn server_log() -> Stdio {
    match std::env::var_os("ASOF_TEST_SERVER_LOG") {
        Some(path) => {
            std::fs::OpenOptions::new().create(true).append(true).open(path).map_or(Stdio::null(), Stdio::from)
        }
        None => Stdio::null(),
    }
}

pub struct Server {
    child: Child,
    pub addr: String,
    pub data: PathBuf,
}

impl Server {
    pub fn start(data: &Path) -> Self {
        Self::start_with(data, &[])
    }

    pub fn start_with(data: &Path, extra: &[&str]) -> Self {
        Self::start_with_env(data, extra, &[])
    }

    /// `start_with`, the server's environment extended by `env` (credentials, endpoints).
    pub fn start_with_env(data: &Path, extra: &[&str], env: &[(String, String)]) -> Self {
        let mut child = Command::new(bin())
            .arg("--data")
            .arg(data)
            .args(extra)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(server_log())
            .spawn()
            .expect("start asof serve");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let addr = loop {
            let line = lines.next().expect("server exited before listening").unwrap();
            if let Some(rest) = line.strip_prefix("asof listening on http://") {
                break rest.trim().to_string();
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Self { child, addr, data: data.to_path_buf() }
    }

    /// Stops the server as an init system would (SIGTERM) and answers how it exited.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let sent = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(sent.success());
        self.child.wait().unwrap()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Peak resident memory of the server so far (VmHWM), in bytes.
    pub fn peak_rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM in /proc/<pid>/status");
        line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
    }

    /// The port it listens on, as apt prints it (`[IP: 127.0.0.1 <port>]`).
    pub fn port(&self) -> &str {
        self.addr.rsplit_once(':').expect("host:port").1
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path, &[])
    }

    /// Sends one request with `Connection: close` and reads the whole response.
    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
        self.request_body(method, path, headers, None)
    }

    /// Like `request`, with a body sent as is (give Content-Length yourself).
    pub fn request_body(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Response {
        self.send(method, path, headers, body, false)
    }

    /// Sends a body shorter than its Content-Length and closes its sending half, as a
    /// client that dies mid-upload; the answer is still read. `status` is 0 for no answer.
    pub fn request_broken_off(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
        self.send(method, path, headers, Some(body), true)
    }

    fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&[u8]>, hang_up: bool) -> Response {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n", self.addr);
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).unwrap();
        if let Some(body) = body {
            s.write_all(body).unwrap();
        }
        if hang_up {
            s.shutdown(std::net::Shutdown::Write).unwrap();
        }
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw);
        if raw.is_empty() && hang_up {
            return Response { status: 0, headers: HashMap::new(), body: Vec::new() };
        }
        Response::parse(&raw, method == "HEAD")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Response {
    fn parse(raw: &[u8], head: bool) -> Self {
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("complete header block");
        let head_text = std::str::from_utf8(&raw[..split]).unwrap();
        let mut lines = head_text.split("\r\n");
        let status: u16 = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
        let headers: HashMap<String, String> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let mut body = raw[split + 4..].to_vec();
        if headers.get("transfer-encoding").is_some_and(|t| t == "chunked") && !head {
            body = dechunk(&body);
        }
        Self { status, headers, body }
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// Asserts an error answer: exactly this status and the body `{"error": message, "status": status}`.
    #[track_caller]
    pub fn assert_error(&self, status: u16, message: &str) {
        assert_eq!(self.status, status, "{}", self.text());
        assert_eq!(self.header("content-type"), "application/json");
        assert_eq!(self.json(), serde_json::json!({"error": message, "status": status}));
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(std::str::from_utf8(&b[..eol]).unwrap().trim(), 16).unwrap();
        b = &b[eol + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}

pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

/// `asof verify` on a data directory finds nothing wrong.
pub fn verify_clean(data: &Path) {
    let out = asof(data, &["verify"]);
    assert!(
        out.status.success(),
        "verify found problems:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
