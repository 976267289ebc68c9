//! The HTTP frontend: a thin axum layer over `resolve`, `catalog` and `blob`.

mod access;
mod api;
mod body;
mod channel_files;
mod channels;
mod error;
mod files;
mod hot;
mod listing;
mod packages;
mod pages;
mod rate_limit;
mod request_path;
mod server;
mod signing;
mod stream;
mod takedowns;
mod write;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

pub use crate::metrics::Metrics;
pub use api::{ResolveJson, SnapshotJson, SnapshotListJson};
pub use error::ApiError;
pub use rate_limit::{Class as RateClass, Rate, RateLimitOptions};
pub use server::{raise_nofile_limit, serve};

use crate::store::Store;

/// Settings of the read path.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// How far behind the clock the seal trails: an ID later than an archive's latest
    /// snapshot is served as immutable about this long after it has passed (see
    /// `resolve::time`). Correctness does not depend on it; it keeps stamped IDs close to
    /// real time when publishes and the seal meet.
    pub settle_margin: Duration,
    /// `max-age` for answers that can still change (recent IDs, listings, `latest`).
    pub short_max_age: Duration,
    /// `max-age` for the live path (`/<archive>/<path>`, the latest snapshot).
    pub live_max_age: Duration,
    /// Largest blob accepted by `PUT /api/v1/blobs/<sha256>` (413 above).
    pub max_blob_bytes: u64,
    /// Largest JSON body (manifests, digest lists) accepted (413 above).
    pub max_manifest_bytes: usize,
    /// An upload or other request body that sends no byte for this long is abandoned.
    pub body_timeout: Duration,
    /// A connection must deliver a complete request header within this long of being
    /// accepted, or of the first byte after an idle spell.
    pub header_read_timeout: Duration,
    /// A kept-alive connection with no request for this long is closed.
    pub idle_timeout: Duration,
    /// Most connections served at once; more wait in the listen backlog. `None`: derived
    /// from the open-files limit.
    pub max_connections: Option<usize>,
    /// On SIGTERM, how long in-flight requests may take to finish before the server exits.
    pub drain_timeout: Duration,
    /// Threads that accept and serve connections, each with its own event loop (`server`).
    /// `None`: one per core.
    pub event_threads: Option<usize>,
    /// Per-client token buckets by route class.
    pub rate_limits: RateLimitOptions,
    /// The service's URL as clients reach it (`server.public_url`), for the `Snapshots:`
    /// field of re-signed Release files; `None`: `http://` and the request's Host.
    pub public_url: Option<String>,
    /// Memory for the contents of hot small files (`hot`); 0 turns the memory cache off.
    pub memory_cache_bytes: u64,
    /// Whole-file downloads of at least this many bytes redirect to a presigned URL of the
    /// blob store, when it can sign one (`files`); `None`: never.
    pub redirect_downloads_over: Option<u64>,
    /// How long a presigned URL is valid.
    pub redirect_ttl: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            settle_margin: Duration::from_secs(60),
            short_max_age: Duration::from_secs(10),
            live_max_age: Duration::from_secs(60),
            max_blob_bytes: 16 << 30,
            max_manifest_bytes: 1 << 30,
            body_timeout: Duration::from_secs(60),
            header_read_timeout: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(60),
            max_connections: None,
            drain_timeout: Duration::from_secs(30),
            event_threads: None,
            rate_limits: RateLimitOptions::default(),
            public_url: None,
            memory_cache_bytes: 16 << 20,
            redirect_downloads_over: None,
            redirect_ttl: Duration::from_secs(300),
        }
    }
}

/// What every request handler reads, shared: cloning it (axum does, once per extractor and
/// middleware of every request) is one reference count, not a copy of the options.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub options: ServeOptions,
    /// Parsed Release files (by-hash for every hash, Valid-Until), bounded.
    pub releases: Arc<crate::resolve::release::ReleaseCache>,
    /// Final answers and small files in memory (`hot`).
    hot: hot::HotCache,
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    pub fn new(store: Store, options: ServeOptions) -> Self {
        Self::with_metrics(store, options, Arc::new(Metrics::new()))
    }

    pub fn with_metrics(store: Store, options: ServeOptions, metrics: Arc<Metrics>) -> Self {
        let hot = hot::HotCache::new(&store, options.memory_cache_bytes);
        Self(Arc::new(Shared { store, metrics, options, releases: Default::default(), hot }))
    }

    /// Runs catalog and blob work on the blocking pool so async workers never wait on I/O.
    pub async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let st = self.clone();
        tokio::task::spawn_blocking(move || f(&st.store)).await.map_err(ApiError::internal)?
    }

    fn short_cache(&self) -> HeaderValue {
        HeaderValue::from_str(&format!("public, max-age={}", self.options.short_max_age.as_secs()))
            .expect("ascii header")
    }

    fn live_cache(&self) -> HeaderValue {
        HeaderValue::from_str(&format!("public, max-age={}", self.options.live_max_age.as_secs()))
            .expect("ascii header")
    }
}

pub fn router(state: AppState) -> Router {
    let limiter = Arc::new(rate_limit::RateLimiter::new(
        state.options.rate_limits.clone(),
        state.options.settle_margin,
        state.metrics.clone(),
    ));
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
        // API answers (JSON, manifests) may be gzipped; archive files never are.
        .nest("/api/v1", api::routes().layer(tower_http::compression::CompressionLayer::new()))
        .fallback(tree)
        .layer(CatchPanicLayer::new())
        .layer(middleware::from_fn(private_when_authorized))
        .layer(middleware::from_fn_with_state(limiter, rate_limit::limit))
        .layer(middleware::from_fn_with_state(state.clone(), count_requests))
        .layer(TraceLayer::new_for_http())
        .with_state(state);
    // Outside the app, so that it sees the Allow header axum adds to its own 405s.
    // Outermost: browsers get every error, 405s included, as a page.
    Router::new()
        .fallback_service(app)
        .layer(middleware::from_fn(error::json_405))
        .layer(middleware::from_fn(error::html_errors))
}

async fn healthz(State(st): State<AppState>) -> Result<Response, ApiError> {
    st.blocking(|s| Ok(s.catalog.ping()?)).await?;
    Ok((StatusCode::OK, [(header::CACHE_CONTROL, "no-cache")], "ok\n").into_response())
}

async fn metrics_text(State(st): State<AppState>) -> Response {
    if let Err(e) = channels::refresh_metrics(&st).await {
        tracing::warn!(error = %e, "could not read rollout channels for the metrics");
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4"), (header::CACHE_CONTROL, "no-cache")], st.metrics.render())
        .into_response()
}

async fn count_requests(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    st.metrics.requests.with_label_values(&[resp.status().as_str()]).inc();
    resp
}

/// An answer to a request that carried credentials may hold what only those credentials
/// may see (a private archive's files, lists that include private archives): a shared
/// cache must not keep it for others, and "public" would let it (RFC 9111 §3.5). Such
/// answers are `private` (the client's own cache still keeps them, immutable ones too).
async fn private_when_authorized(req: Request, next: Next) -> Response {
    let authorized = req.headers().contains_key(header::AUTHORIZATION);
    let mut resp = next.run(req).await;
    if !authorized {
        return resp;
    }
    let cache = resp.headers().get(header::CACHE_CONTROL).and_then(|v| v.to_str().ok());
    if let Some(rest) = cache.and_then(|c| c.strip_prefix("public"))
        && let Ok(v) = HeaderValue::from_str(&format!("private{rest}"))
    {
        resp.headers_mut().insert(header::CACHE_CONTROL, v);
    }
    resp
}

/// Everything outside `/api` and the probes: archive list, snapshot lists, snapshot trees.
async fn tree(State(st): State<AppState>, method: Method, headers: HeaderMap, uri: axum::http::Uri) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return ApiError::MethodNotAllowed { allow: error::GET_HEAD }.into_response();
    }
    let result = match request_path::parse(uri.path()) {
        Err(e) => Err(e),
        Ok(request_path::Target::Root) => listing::archives(&st, &headers).await,
        Ok(request_path::Target::NoId(segs)) => {
            listing::archive_or_live(&st, &method, &headers, segs, uri.query()).await
        }
        Ok(request_path::Target::Page { archive, page }) => {
            pages::archive_page(&st, &headers, archive, page, &uri).await
        }
        Ok(request_path::Target::InSnapshot { archive, id, path, .. }) => {
            files::in_snapshot(&st, &method, &headers, uri.query(), archive, files::At::Id(id), path).await
        }
        Ok(request_path::Target::Channel { archive, channel, node, path }) => {
            let url = channel_files::NodeUrl { archive, channel, node, path };
            channel_files::serve(&st, &method, &headers, url, uri.query()).await
        }
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

/// Whether the client asked for JSON rather than a page.
fn wants_json(headers: &HeaderMap) -> bool {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("application/json"))
}

/// Whether the client (a browser) prefers a page to JSON: it names `text/html` and not JSON.
fn prefers_html(headers: &HeaderMap) -> bool {
    !wants_json(headers)
        && headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"))
}

/// Advances the seal every second to now minus the settle margin, so that IDs between an
/// archive's latest snapshot and the past become final. Errors are logged and retried.
pub fn spawn_sealer(store: Store, margin: Duration) {
    let margin = margin.min(Duration::from_secs(86_400)).as_secs() as i64;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let store = store.clone();
            let until = chrono::Utc::now().timestamp() - margin;
            match tokio::task::spawn_blocking(move || store.catalog.seal(until)).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "could not advance the seal"),
                Err(e) => tracing::warn!(error = %e, "seal task failed"),
            }
        }
    });
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is called, not
/// when the future is first polled: call it before announcing that the server is ready,
/// or an early SIGTERM kills the process instead of stopping it.
pub fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        tracing::info!("shutting down: finishing in-flight requests");
    })
}
