//! The accept loop of `asof serve`: event threads that each accept and serve connections
//! on their own single-threaded runtime, a cap on concurrent connections, back-off when
//! `accept` fails (EMFILE...), per-connection timeouts, and a bounded drain on shutdown.

mod conn;
mod fds;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};
use tokio::task::JoinSet;

pub use fds::raise_nofile_limit;

use super::{AppState, router, spawn_sealer};

/// Serves until `shutdown` resolves; then stops accepting, lets in-flight requests finish
/// for at most `drain_timeout`, and returns whatever clients still do.
///
/// Connections are served by `event_threads` threads, each with a current-thread runtime
/// of its own (nginx's worker model): a connection lives on the thread it was handed to,
/// so no worker wakes another to steal its tasks. On two cores the work-stealing runtime
/// served no more requests with two workers than with one (docs/benchmarks.md, "Event
/// threads"). This task accepts and hands each connection to the thread serving the fewest,
/// which keeps the threads evenly loaded however the kernel orders the accepts. Catalog and
/// blob work still goes to the blocking pool; the calling runtime keeps the sealer and the
/// scheduled jobs.
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    spawn_sealer(state.store.clone(), state.options.settle_margin);
    let options = state.options.clone();
    let cap = options.max_connections.unwrap_or_else(fds::default_max_connections).max(1);
    let timeouts = conn::Timeouts { header: options.header_read_timeout, idle: options.idle_timeout };
    let count = options.event_threads.unwrap_or_else(default_event_threads).max(1);
    tracing::info!(max_connections = cap, threads = count, ?timeouts, drain_timeout = ?options.drain_timeout, "connection limits");
    let (stop_tx, stop) = watch::channel(false);
    let job = EventJob { app: router(state), timeouts, drain_timeout: options.drain_timeout, stop };
    let (threads, finished) = start_event_threads(count, &job)?;
    let mut finished = std::pin::pin!(futures::future::join_all(finished));
    tokio::select! {
        _ = accept_loop(listener, Arc::new(Semaphore::new(cap)), &threads, shutdown) => {}
        // An event thread only ends before the stop if its runtime could not start.
        results = &mut finished => return results.into_iter().find_map(|r| r.err()).map_or(Ok(()), Err),
    }
    // The listener is closed: new connections are refused from here on.
    let _ = stop_tx.send(true);
    finished.await.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
    Ok(())
}

/// One event thread per core by default.
fn default_event_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// An accepted connection on its way to an event thread.
struct Accepted {
    tcp: std::net::TcpStream,
    peer: SocketAddr,
    slot: OwnedSemaphorePermit,
    /// Counted on its thread from the moment it is handed over, so that connections
    /// accepted in a burst, before the thread has taken the first, are spread too.
    counted: Open,
}

/// The accept loop's handle on an event thread.
struct EventThread {
    queue: mpsc::UnboundedSender<Accepted>,
    /// Connections it serves now.
    open: Arc<AtomicUsize>,
}

/// What each event thread runs its connections with.
#[derive(Clone)]
struct EventJob {
    app: Router,
    timeouts: conn::Timeouts,
    drain_timeout: Duration,
    stop: watch::Receiver<bool>,
}

type Finished = std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<()>> + Send>>;

fn start_event_threads(count: usize, job: &EventJob) -> anyhow::Result<(Vec<EventThread>, Vec<Finished>)> {
    let (mut threads, mut finished) = (Vec::with_capacity(count), Vec::with_capacity(count));
    for index in 0..count {
        let (queue, incoming) = mpsc::unbounded_channel();
        let (done_tx, done_rx) = oneshot::channel();
        let job = job.clone();
        std::thread::Builder::new().name(format!("asof-http-{index}")).spawn(move || {
            let _ = done_tx.send(run_event_thread(incoming, job));
        })?;
        threads.push(EventThread { queue, open: Arc::new(AtomicUsize::new(0)) });
        finished.push(Box::pin(async move {
            done_rx.await.unwrap_or_else(|_| Err(anyhow::anyhow!("an event thread panicked")))
        }) as Finished);
    }
    Ok((threads, finished))
}

fn run_event_thread(incoming: mpsc::UnboundedReceiver<Accepted>, job: EventJob) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(serve_connections(incoming, job));
    // A blocking read stuck on a dead disk must not hold the exit past the drain.
    rt.shutdown_timeout(Duration::from_secs(5));
    Ok(())
}

/// Serves the connections handed to this thread until told to stop, then drains them.
async fn serve_connections(mut incoming: mpsc::UnboundedReceiver<Accepted>, job: EventJob) {
    let EventJob { app, timeouts, drain_timeout, stop } = job;
    let mut stopping = stop.clone();
    let mut conns = JoinSet::new();
    loop {
        while conns.try_join_next().is_some() {}
        let Accepted { tcp, peer, slot, counted } = tokio::select! {
            _ = stopping.wait_for(|stop| *stop) => break,
            accepted = incoming.recv() => match accepted {
                Some(a) => a,
                None => break,
            },
        };
        match TcpStream::from_std(tcp) {
            Ok(tcp) => {
                let conn = conn::run(tcp, peer, app.clone(), timeouts, stop.clone(), slot);
                conns.spawn(async move {
                    conn.await;
                    drop(counted);
                });
            }
            Err(e) => tracing::warn!(error = %e, %peer, "could not register a connection"),
        }
    }
    drain(conns, drain_timeout).await;
}

/// Counts a connection as open on its event thread while it lives.
struct Open(Arc<AtomicUsize>);

impl Open {
    fn new(open: Arc<AtomicUsize>) -> Self {
        open.fetch_add(1, Ordering::Relaxed);
        Self(open)
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Accepts connections until `shutdown`, each to the event thread serving the fewest.
async fn accept_loop(
    listener: TcpListener,
    slots: Arc<Semaphore>,
    threads: &[EventThread],
    shutdown: impl std::future::Future<Output = ()>,
) {
    let mut backoff = Backoff::default();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
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
        match accepted.and_then(|(tcp, peer)| Ok((tcp.into_std()?, peer))) {
            Ok((tcp, peer)) => {
                backoff.reset();
                let least = threads.iter().min_by_key(|t| t.open.load(Ordering::Relaxed)).expect("at least one");
                let counted = Open::new(least.open.clone());
                if least.queue.send(Accepted { tcp, peer, slot, counted }).is_err() {
                    tracing::warn!(%peer, "an event thread is gone: connection dropped");
                }
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
