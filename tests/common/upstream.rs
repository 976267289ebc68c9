//! A test upstream archive on 127.0.0.1: serves a directory (switchable between trees),
//! honours `Range: bytes=N-`, counts requests and bytes per path, and injects faults.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::Response;

#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// Send this many bytes of the body, then drop the connection.
    DropAfter(usize),
    /// Answer 503.
    Unavailable,
}

#[derive(Default)]
struct State {
    root: PathBuf,
    /// (path, Range header) of every request, in order.
    requests: Vec<(String, Option<String>)>,
    bytes: HashMap<String, u64>,
    /// Faults for a path, consumed one per request.
    faults: HashMap<String, Vec<Fault>>,
}

#[derive(Clone)]
pub struct Upstream {
    state: Arc<Mutex<State>>,
    pub url: String,
}

impl Upstream {
    pub fn start(root: PathBuf) -> Self {
        let state = Arc::new(Mutex::new(State { root, ..Default::default() }));
        let (tx, rx) = std::sync::mpsc::channel();
        let st = state.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                let app =
                    axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap| serve(st.clone(), uri, headers));
                axum::serve(listener, app).await.unwrap();
            });
        });
        let addr = rx.recv().unwrap();
        Self { state, url: format!("http://{addr}/") }
    }

    pub fn set_root(&self, root: PathBuf) {
        self.state.lock().unwrap().root = root;
    }

    pub fn add_faults(&self, path: &str, faults: &[Fault]) {
        self.state.lock().unwrap().faults.entry(path.to_string()).or_default().extend_from_slice(faults);
    }

    pub fn requests(&self) -> Vec<(String, Option<String>)> {
        self.state.lock().unwrap().requests.clone()
    }

    pub fn reset_counts(&self) {
        let mut s = self.state.lock().unwrap();
        s.requests.clear();
        s.bytes.clear();
    }

    pub fn total_bytes(&self) -> u64 {
        self.state.lock().unwrap().bytes.values().sum()
    }

    pub fn requested(&self, path: &str) -> usize {
        self.state.lock().unwrap().requests.iter().filter(|(p, _)| p == path).count()
    }
}

async fn serve(state: Arc<Mutex<State>>, uri: Uri, headers: HeaderMap) -> Response {
    let path =
        percent_encoding::percent_decode_str(uri.path().trim_start_matches('/')).decode_utf8_lossy().into_owned();
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok()).map(String::from);
    let (file, fault) = {
        let mut s = state.lock().unwrap();
        s.requests.push((path.clone(), range.clone()));
        let fault = s.faults.get_mut(&path).and_then(|f| if f.is_empty() { None } else { Some(f.remove(0)) });
        (s.root.join(&path), fault)
    };
    let Ok(data) = std::fs::read(&file) else {
        return Response::builder().status(StatusCode::NOT_FOUND).body(Body::from("not found")).unwrap();
    };
    if let Some(Fault::Unavailable) = fault {
        return Response::builder().status(StatusCode::SERVICE_UNAVAILABLE).body(Body::empty()).unwrap();
    }
    let start = range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|n| *n < data.len());
    let (status, body) = match start {
        Some(n) => (StatusCode::PARTIAL_CONTENT, data[n..].to_vec()),
        None => (StatusCode::OK, data.clone()),
    };
    let mut builder = Response::builder().status(status).header(header::CONTENT_LENGTH, body.len());
    if let Some(n) = start {
        builder = builder.header(header::CONTENT_RANGE, format!("bytes {n}-{}/{}", data.len() - 1, data.len()));
    }
    let sent = match fault {
        Some(Fault::DropAfter(k)) => k.min(body.len()),
        _ => body.len(),
    };
    *state.lock().unwrap().bytes.entry(path).or_default() += sent as u64;
    if let Some(Fault::DropAfter(k)) = fault {
        let head = bytes::Bytes::from(body[..k.min(body.len())].to_vec());
        use futures::StreamExt;
        // Pause before failing so the first bytes are flushed to the client, as on a real
        // connection that dies part way.
        let stream = futures::stream::iter(vec![Ok(head)]).chain(futures::stream::once(async {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "injected drop"))
        }));
        return builder.body(Body::from_stream(stream)).unwrap();
    }
    builder.body(Body::from(body)).unwrap()
}

/// `asof mirror debian --json` of the fixture shape (suite stable, component main, amd64)
/// from `upstream`, checked with `keyring`, with `extra` arguments appended.
pub fn mirror_stable(
    data: &std::path::Path,
    upstream: &str,
    keyring: &std::path::Path,
    extra: &[&str],
) -> std::process::Output {
    let mut args = vec![
        "mirror",
        "debian",
        "--upstream",
        upstream,
        "--suite",
        "stable",
        "--component",
        "main",
        "--arch",
        "amd64",
        "--keyring",
        keyring.to_str().unwrap(),
        "--json",
    ];
    args.extend_from_slice(extra);
    super::asof(data, &args)
}
