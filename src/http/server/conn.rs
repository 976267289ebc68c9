//! One HTTP/1.1 connection: serves the router over it, closes it when a request header
//! is too slow or it sits idle too long, and stops it on shutdown.
//!
//! hyper's own `header_read_timeout` restarts whenever a kept-alive connection goes idle,
//! so it cannot tell "idle between requests" (long) from "sending a header" (short); the
//! socket wrapper `Watched` enforces both instead.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use bytes::Bytes;
use futures::task::AtomicWaker;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, watch};
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// From accept, or from the first byte after an idle spell, to a complete header.
    pub header: Duration,
    /// Between requests on a kept-alive connection; also the longest a response may wait
    /// for the client to take a single byte.
    pub idle: Duration,
}

/// Requests of one connection whose response has not been sent completely.
#[derive(Default)]
struct Activity {
    in_flight: AtomicUsize,
    /// The connection task, when it last found the socket unreadable while busy: hyper
    /// does not read again on its own when it goes idle, so the deadline of the idle
    /// phase would never be armed without this wake-up.
    reader: AtomicWaker,
    /// A write is waiting for the client to read: a response is still going out, even
    /// if its body has been handed over whole.
    write_blocked: AtomicBool,
}

impl Activity {
    fn busy(&self) -> bool {
        self.in_flight.load(Ordering::SeqCst) > 0 || self.write_blocked.load(Ordering::SeqCst)
    }
}

/// Held by a request from the moment its header is parsed until its response body is
/// dropped (sent, or abandoned with the connection).
struct InFlight(Arc<Activity>);

impl InFlight {
    fn begin(activity: &Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::SeqCst);
        Self(activity.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.reader.wake();
        }
    }
}

/// A response body that keeps its request counted as in flight while it is sent.
struct Tracked {
    inner: Body,
    _in_flight: InFlight,
}

impl hyper::body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// A request is being answered: no deadline here (uploads have their own).
    Busy,
    /// Waiting for the next request: `idle` deadline.
    Idle,
    /// A header is on its way: `header` deadline.
    Header,
}

/// The socket, failing reads with `TimedOut` once the deadline of the phase passes.
/// hyper reads whenever it waits for a request, so a deadline is always being polled.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
    timeouts: Timeouts,
    phase: Phase,
    deadline: Pin<Box<Sleep>>,
    /// When a blocked write gives up: a client that reads nothing for the idle timeout
    /// must not hold its slot and an open blob forever. Reading slowly is fine.
    send_deadline: Pin<Box<Sleep>>,
}

impl Watched {
    fn new(inner: TcpStream, activity: Arc<Activity>, timeouts: Timeouts) -> Self {
        // A new connection owes its first header within the header timeout.
        let deadline = Box::pin(tokio::time::sleep(timeouts.header));
        let send_deadline = Box::pin(tokio::time::sleep(timeouts.idle));
        Self { inner, activity, timeouts, phase: Phase::Header, deadline, send_deadline }
    }

    fn enter(&mut self, phase: Phase) {
        self.phase = phase;
        let after = match phase {
            Phase::Busy => return,
            Phase::Idle => self.timeouts.idle,
            Phase::Header => self.timeouts.header,
        };
        self.deadline.as_mut().reset(Instant::now() + after);
    }

    /// Notes whether a write had to wait, failing it once it has waited for the idle
    /// timeout. Once writes go through again, wakes the task so that it reads (and arms
    /// the idle deadline) if the connection went idle meanwhile.
    fn wrote<T>(&mut self, cx: &mut Context<'_>, result: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if result.is_ready() {
            if self.activity.write_blocked.swap(false, Ordering::SeqCst) {
                self.activity.reader.wake();
            }
            return result;
        }
        if !self.activity.write_blocked.swap(true, Ordering::SeqCst) {
            self.send_deadline.as_mut().reset(Instant::now() + self.timeouts.idle);
        }
        ready!(self.send_deadline.as_mut().poll(cx));
        Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "send timeout: the client reads nothing")))
    }
}

impl AsyncRead for Watched {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let read = Pin::new(&mut this.inner).poll_read(cx, buf);
        if this.activity.busy() {
            this.phase = Phase::Busy;
            if read.is_pending() {
                this.activity.reader.register(cx.waker());
            }
            return read;
        }
        if this.phase == Phase::Busy {
            this.enter(Phase::Idle);
        }
        match read {
            Poll::Ready(Ok(())) => {
                if this.phase == Phase::Idle && buf.filled().len() > before {
                    this.enter(Phase::Header);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                ready!(this.deadline.as_mut().poll(cx));
                let what = if this.phase == Phase::Idle { "idle timeout" } else { "header read timeout" };
                Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, what)))
            }
        }
    }
}

impl AsyncWrite for Watched {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.wrote(cx, result)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.wrote(cx, result)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_flush(cx);
        this.wrote(cx, result)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Serves one accepted connection until it closes, times out, or shutdown (`stop`)
/// ends it. `_slot` is its place under the connection cap, freed when this returns.
pub async fn run(
    tcp: TcpStream,
    peer: SocketAddr,
    app: Router,
    timeouts: Timeouts,
    mut stop: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
) {
    // Streamed files go out as a header write, then body writes: with Nagle's algorithm the
    // body waits for the client's delayed ACK (~25-40 ms per small file). Found by the
    // serving benchmark: 61 requests/s on one connection.
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "could not set TCP_NODELAY");
    }
    let activity = Arc::new(Activity::default());
    let io = TokioIo::new(Watched::new(tcp, activity.clone(), timeouts));
    let svc_activity = activity.clone();
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        let in_flight = InFlight::begin(&svc_activity);
        req.extensions_mut().insert(ConnectInfo(peer));
        let app = app.clone();
        async move {
            let resp = app.oneshot(req.map(Body::new)).await?;
            Ok::<_, std::convert::Infallible>(resp.map(|inner| Tracked { inner, _in_flight: in_flight }))
        }
    });
    let conn = hyper::server::conn::http1::Builder::new().header_read_timeout(None).serve_connection(io, service);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = async { drop(stop.wait_for(|stopping| *stopping).await) } => {
            conn.as_mut().graceful_shutdown();
            if !activity.busy() {
                // Idle, or part of a header: there is no response to finish.
                return;
            }
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, %peer, "connection ended with an error");
    }
}
