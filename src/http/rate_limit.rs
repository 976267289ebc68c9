//! Per-client rate limits: token buckets per route class, keyed by client address and by
//! the credential a request presents. Over the limit a request gets 429 with Retry-After
//! and is counted in `asof_throttled_requests_total{class}`.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use sha2::Digest;

use super::error::ApiError;
use crate::domain::SnapshotId;
use crate::metrics::Metrics;

/// What a request costs the server, cheaply told from its method and path alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// A file of a snapshot whose ID is older than the settle margin: its answer never changes.
    FilesImmutable,
    /// A file of a recent (or future) ID.
    Files,
    /// Everything else outside `/api`: archive and snapshot lists, directory pages.
    Listings,
    /// `/api/v1/...` other than uploads, and the probes.
    Api,
    /// `PUT`/`POST` under `/api/v1/blobs`.
    Uploads,
}

impl Class {
    pub const ALL: [Class; 5] = [Class::FilesImmutable, Class::Files, Class::Listings, Class::Api, Class::Uploads];

    pub fn as_str(self) -> &'static str {
        match self {
            Class::FilesImmutable => "files_immutable",
            Class::Files => "files",
            Class::Listings => "listings",
            Class::Api => "api",
            Class::Uploads => "uploads",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Classifies a request. `now` and `settle_margin` decide whether an ID is old enough
/// that its files are immutable. Only the raw path is looked at: a path the tree handler
/// will reject still costs at most a lookup, and an encoded ID falls to the stricter
/// `listings` class.
pub fn classify(method: &Method, path: &str, now: i64, settle_margin: Duration) -> Class {
    if path == "/api/v1" || path.starts_with("/api/v1/") {
        let rest = &path["/api/v1".len()..];
        let blobs = rest == "/blobs" || rest.starts_with("/blobs/");
        return if blobs && (method == Method::PUT || method == Method::POST) { Class::Uploads } else { Class::Api };
    }
    if path == "/healthz" || path == "/metrics" {
        return Class::Api;
    }
    if path.ends_with('/') {
        return Class::Listings;
    }
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    // A rollout channel's node URL (`/<archive>/@<channel>/<node>/<path>`) names a file
    // that can change: the files class, not listings (a whole fleet fetches these).
    // Only before any ID-shaped segment, as request_path reads it.
    let id_at = segs.iter().position(|s| SnapshotId::looks_like_id(s));
    let channel_at = segs.iter().position(|s| s.starts_with('@'));
    if let Some(c) = channel_at.filter(|c| *c > 0 && id_at.is_none_or(|i| *c < i)) {
        return if c + 2 < segs.len() { Class::Files } else { Class::Listings };
    }
    let Some(i) = id_at else {
        // A live file (`/<archive>/<path>`, the latest snapshot) can change like a recent
        // ID's; `/a/b` may also be a nested archive's snapshot list, told apart only later.
        let live_file = segs.len() >= 2 && !segs.contains(&"-");
        return if live_file { Class::Files } else { Class::Listings };
    };
    if i == 0 || i + 1 == segs.len() {
        return Class::Listings;
    }
    match segs[i].parse::<SnapshotId>() {
        Ok(id) if id.unix() < now - settle_margin.as_secs() as i64 => Class::FilesImmutable,
        Ok(_) => Class::Files,
        Err(_) => Class::Listings,
    }
}

/// A sustained rate and a burst, validated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    per_second: f64,
    burst: u32,
}

impl Rate {
    pub fn new(per_second: f64, burst: u32) -> anyhow::Result<Self> {
        if !(1e-6..=1e9).contains(&per_second) {
            anyhow::bail!("per_second must be a number between 0.000001 and 1000000000, not {per_second}");
        }
        if burst == 0 {
            anyhow::bail!("burst must be at least 1");
        }
        Ok(Self { per_second, burst })
    }

    fn quota(self) -> Quota {
        let period = Duration::from_secs_f64(1.0 / self.per_second).max(Duration::from_nanos(1));
        Quota::with_period(period)
            .expect("non-zero period")
            .allow_burst(NonZeroU32::new(self.burst).expect("burst >= 1"))
    }
}

/// Settings of the rate limiter (`[server.rate_limits]`).
#[derive(Debug, Clone)]
pub struct RateLimitOptions {
    /// Off: no request is ever throttled.
    pub enabled: bool,
    /// Clients on 127.0.0.0/8 or ::1 are not limited (the default).
    pub exempt_loopback: bool,
    pub files_immutable: Rate,
    pub files: Rate,
    pub listings: Rate,
    pub api: Rate,
    pub uploads: Rate,
}

impl Default for RateLimitOptions {
    /// Generous: a fleet behind one NAT address fetches many immutable files at once.
    fn default() -> Self {
        Self {
            enabled: true,
            exempt_loopback: true,
            files_immutable: Rate { per_second: 1000.0, burst: 5000 },
            files: Rate { per_second: 200.0, burst: 1000 },
            listings: Rate { per_second: 20.0, burst: 200 },
            api: Rate { per_second: 100.0, burst: 1000 },
            uploads: Rate { per_second: 500.0, burst: 5000 },
        }
    }
}

impl RateLimitOptions {
    pub fn rate(&self, class: Class) -> Rate {
        match class {
            Class::FilesImmutable => self.files_immutable,
            Class::Files => self.files,
            Class::Listings => self.listings,
            Class::Api => self.api,
            Class::Uploads => self.uploads,
        }
    }
}

/// Whom a bucket belongs to. IPv6 clients are keyed by their /64: one host usually owns
/// a whole /64 and could otherwise take a fresh bucket per address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Addr(IpAddr),
    Token([u8; 32]),
}

fn addr_key(ip: IpAddr) -> Key {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            Key::Addr(IpAddr::V6(prefix.into()))
        }
        v4 => Key::Addr(v4),
    }
}

/// Seconds between sweeps of idle buckets (their memory is bounded by the clients of
/// the last sweep period).
const PRUNE_EVERY_SECS: i64 = 60;

pub struct RateLimiter {
    options: RateLimitOptions,
    settle_margin: Duration,
    limiters: Arc<Vec<DefaultKeyedRateLimiter<Key>>>,
    clock: DefaultClock,
    metrics: Arc<Metrics>,
    last_prune: AtomicI64,
}

impl RateLimiter {
    pub fn new(options: RateLimitOptions, settle_margin: Duration, metrics: Arc<Metrics>) -> Self {
        let limiters = Class::ALL.iter().map(|c| DefaultKeyedRateLimiter::dashmap(options.rate(*c).quota())).collect();
        Self {
            options,
            settle_margin,
            limiters: Arc::new(limiters),
            clock: DefaultClock::default(),
            metrics,
            last_prune: AtomicI64::new(chrono::Utc::now().timestamp()),
        }
    }

    /// Charges the request to its address bucket and, if it presents a credential, to
    /// that credential's bucket (keyed by its hash: a client cannot pick another's bucket).
    pub fn check(&self, req: &Request) -> Result<(), ApiError> {
        if !self.options.enabled {
            return Ok(());
        }
        let now = chrono::Utc::now().timestamp();
        self.maybe_prune(now);
        let addr = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        if self.options.exempt_loopback && addr.is_some_and(|a| a.to_canonical().is_loopback()) {
            return Ok(());
        }
        let class = classify(req.method(), req.uri().path(), now, self.settle_margin);
        let limiter = &self.limiters[class.index()];
        if let Some(ip) = addr {
            self.charge(limiter, &addr_key(ip), class, "address")?;
        }
        if let Some(token) = super::access::credentials(req.headers()) {
            let key = Key::Token(sha2::Sha256::digest(token.as_bytes()).into());
            self.charge(limiter, &key, class, "token")?;
        }
        Ok(())
    }

    fn charge(
        &self,
        limiter: &DefaultKeyedRateLimiter<Key>,
        key: &Key,
        class: Class,
        who: &str,
    ) -> Result<(), ApiError> {
        let Err(not_until) = limiter.check_key(key) else { return Ok(()) };
        let wait = not_until.wait_time_from(self.clock.now());
        self.metrics.throttled.with_label_values(&[class.as_str()]).inc();
        Err(ApiError::TooManyRequests {
            message: format!(
                "too many {} requests from this {who}; retry after the time in Retry-After",
                class.as_str()
            ),
            retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
        })
    }

    /// Drops buckets that have refilled completely, on the blocking pool, at most once a
    /// minute: they hold no state a fresh bucket would not.
    fn maybe_prune(&self, now: i64) {
        let last = self.last_prune.load(Ordering::Relaxed);
        if now - last < PRUNE_EVERY_SECS
            || self.last_prune.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_err()
        {
            return;
        }
        let limiters = self.limiters.clone();
        tokio::task::spawn_blocking(move || {
            for l in limiters.iter() {
                l.retain_recent();
                l.shrink_to_fit();
            }
        });
    }
}

/// Middleware: refuses a request over its limits before any work is done for it.
pub async fn limit(State(limiter): State<Arc<RateLimiter>>, req: Request, next: Next) -> Response {
    match limiter.check(&req) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MARGIN: Duration = Duration::from_secs(60);

    fn class(method: Method, path: &str) -> Class {
        // 2024-01-01T00:00:00Z
        classify(&method, path, 1_704_067_200, MARGIN)
    }

    #[test]
    fn classifies_by_method_and_path() {
        assert_eq!(class(Method::PUT, "/api/v1/blobs/ab"), Class::Uploads);
        assert_eq!(class(Method::POST, "/api/v1/blobs/missing"), Class::Uploads);
        assert_eq!(class(Method::GET, "/api/v1/blobs/ab"), Class::Api);
        assert_eq!(class(Method::GET, "/api/v1/archives"), Class::Api);
        assert_eq!(class(Method::GET, "/metrics"), Class::Api);
        assert_eq!(class(Method::GET, "/"), Class::Listings);
        assert_eq!(class(Method::GET, "/debian"), Class::Listings);
        assert_eq!(class(Method::GET, "/debian/20230101T000000Z/"), Class::Listings);
        assert_eq!(class(Method::GET, "/debian/20230101T000000Z"), Class::Listings);
        assert_eq!(class(Method::GET, "/debian/20230101T000000Z/dists/"), Class::Listings);
        assert_eq!(class(Method::GET, "/debian/20230101T000000Z/dists/InRelease"), Class::FilesImmutable);
        assert_eq!(class(Method::GET, "/a/b/20231231T235800Z/pool/x.deb"), Class::FilesImmutable);
        // Within the settle margin, and in the future: may still change.
        assert_eq!(class(Method::GET, "/debian/20231231T235930Z/dists/InRelease"), Class::Files);
        assert_eq!(class(Method::GET, "/debian/20250101T000000Z/dists/InRelease"), Class::Files);
        // ID-shaped but not a date: a 404 listing.
        assert_eq!(class(Method::GET, "/debian/20231399T000000Z/x"), Class::Listings);
        // The ID must follow an archive name.
        assert_eq!(class(Method::GET, "/20230101T000000Z/x"), Class::Listings);
        // The live path: files of the latest snapshot; pages stay listings.
        assert_eq!(class(Method::GET, "/debian/dists/stable/InRelease"), Class::Files);
        assert_eq!(class(Method::GET, "/debian/dists/stable/"), Class::Listings);
        assert_eq!(class(Method::GET, "/debian/-/diff"), Class::Listings);
        // A rollout channel's node URL names a file that can change.
        assert_eq!(class(Method::GET, "/debian/@prod/web-1/dists/stable/InRelease"), Class::Files);
        assert_eq!(class(Method::GET, "/debian/@prod/web-1"), Class::Listings);
    }

    #[test]
    fn ipv6_clients_share_a_bucket_per_64() {
        let a = addr_key("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = addr_key("2001:db8:1:2:bbbb::7".parse().unwrap());
        let c = addr_key("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(addr_key("::ffff:10.0.0.1".parse().unwrap()), Key::Addr("10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn rejects_invalid_rates() {
        assert_eq!(
            Rate::new(0.0, 5).unwrap_err().to_string(),
            "per_second must be a number between 0.000001 and 1000000000, not 0"
        );
        assert_eq!(
            Rate::new(f64::NAN, 5).unwrap_err().to_string(),
            "per_second must be a number between 0.000001 and 1000000000, not NaN"
        );
        assert_eq!(Rate::new(1.0, 0).unwrap_err().to_string(), "burst must be at least 1");
        assert_eq!(Rate::new(0.5, 3).unwrap(), Rate { per_second: 0.5, burst: 3 });
    }
}
