//! The accept loop of `asof serve`: a cap on concurrent connections, back-off when
//! `accept` fails (EMFILE...), per-connection timeouts, and a bounded drain on shutdown.

mod conn;
mod fds;

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

pub use fds::raise_nofile_limit;

use super::{AppState, router, spawn_sealer};

/// Serves until `shutdown` resolves; then stops accepting, lets in-flight requests finish
/// for at most `drain_timeout`, and returns whatever clients still do.
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    spawn_sealer(state.store.clone(), state.options.settle_margin);
    let options = state.options.clone();
    let cap = options.max_connections.unwrap_or_else(fds::default_max_connections).max(1);
    let timeouts = conn::Timeouts { header: options.header_read_timeout, idle: options.idle_timeout };
    tracing::info!(max_connections = cap, ?timeouts, drain_timeout = ?options.drain_timeout, "connection limits");
    let app = router(state);
    let slots = Arc::new(Semaphore::new(cap));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut conns = JoinSet::new();
    let mut backoff = Backoff::default();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        while conns.try_join_next().is_some() {}
        // At the cap, leave new connections in the listen backlog rather than accept and
        // drop them: they are served as soon as a slot frees.
        let slot = tokio::select! {
            _ = &mut shutdown => break,
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
        };
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((tcp, peer)) => {
                backoff.reset();
                conns.spawn(conn::run(tcp, peer, app.clone(), timeouts, stop_rx.clone(), slot));
            }
            Err(e) => {
                drop(slot);
                let pause = backoff.next(&e);
                tokio::select! {
                    _ = &mut shutdown => break,
                    _ = tokio::time::sleep(pause) => {}
                }
            }
        }
    }
    // New connections are refused from here on.
    drop(listener);
    let _ = stop_tx.send(true);
    drain(conns, options.drain_timeout).await;
    Ok(())
}

/// Waits for the connections to finish their requests, at most `limit`.
async fn drain(mut conns: JoinSet<()>, limit: Duration) {
    tracing::info!(connections = conns.len(), "draining");
    let all_done = async { while conns.join_next().await.is_some() {} };
    if tokio::time::timeout(limit, all_done).await.is_err() {
        tracing::warn!(connections = conns.len(), ?limit, "drain timeout: closing the connections left");
        conns.shutdown().await;
    }
}

/// Pauses after failed accepts: 10 ms doubling to 1 s while they keep failing, so that
/// running out of descriptors (EMFILE: the pending connection stays queued and `accept`
/// fails at once again) never spins a core. Logged at most every 10 s.
#[derive(Default)]
struct Backoff {
    pause: Option<Duration>,
    failures: u64,
    last_log: Option<std::time::Instant>,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(10);
    const MAX: Duration = Duration::from_secs(1);
    const LOG_EVERY: Duration = Duration::from_secs(10);

    fn next(&mut self, e: &std::io::Error) -> Duration {
        self.failures += 1;
        if self.last_log.is_none_or(|t| t.elapsed() >= Self::LOG_EVERY) {
            tracing::warn!(error = %e, failures = self.failures, "accept failed; backing off");
            self.last_log = Some(std::time::Instant::now());
        }
        let pause = self.pause.map_or(Self::FIRST, |p| (p * 2).min(Self::MAX));
        self.pause = Some(pause);
        pause
    }

    fn reset(&mut self) {
        self.pause = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_a_second_and_resets() {
        let mut b = Backoff::default();
        let e = std::io::Error::from_raw_os_error(24);
        let pauses: Vec<u64> = (0..9).map(|_| b.next(&e).as_millis() as u64).collect();
        assert_eq!(pauses, [10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        b.reset();
        assert_eq!(b.next(&e), Duration::from_millis(10));
    }
}
