//! The HTTP server's connections: accepted up to a bound, and closed when a client
//! stalls between requests or in the middle of a request head.
//!
//! HTTP/1.1 only (TLS and HTTP/2 end at the proxy in front, see `deploy/`): hyper's
//! HTTP/1 connection is what carries the header-read timer used here.
//!
//! - **Bound**: a connection takes one of `max_connections` slots from accept until its
//!   socket closes (an upgraded WebSocket keeps its slot). With every slot taken the
//!   accept loop waits, so new connections queue in the kernel's listen backlog instead
//!   of failing the process with "Too many open files"; idle ones are closed by the
//!   timeouts below, so the wait is bounded.
//! - **Timeouts**: hyper arms its header-read timer whenever it starts waiting for a
//!   request head — when the connection opens and after each response — and never while
//!   a request is being handled or a response (an SSE stream) is being written. That
//!   timer is given the idle timeout; [`HeadTimer`] shortens it to the header timeout as
//!   soon as the first byte of the head arrives (and from the start on a new connection).
//!   Request bodies have their own deadline (`body_limits`).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::rt::{Sleep, Timer};
use hyper_util::rt::{TokioIo, TokioTimer};
use switchyard_monitoring::Metrics;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tower::ServiceExt;

/// How the server treats its connections.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionSettings {
    /// Most connections open at once.
    pub max_connections: usize,
    /// A request head must be complete this long after its first byte (on a new
    /// connection: after the connection opened).
    pub header_read_timeout: Duration,
    /// A connection waiting for its next request is closed after this long.
    pub idle_timeout: Duration,
}

/// How often the "every connection slot is taken" warning may be logged.
const LIMIT_WARNING_EVERY: Duration = Duration::from_secs(60);

/// Serves `app` on `listener` until `shutdown` resolves, then stops accepting and lets
/// open connections finish their requests.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    settings: ConnectionSettings,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let max = settings.max_connections.max(1);
    let slots = Arc::new(Semaphore::new(max));
    metrics
        .http_max_connections
        .store(i64::try_from(max).unwrap_or(i64::MAX), Relaxed);
    // Every connection task holds a receiver of `done`; all are gone when `closed` resolves.
    let (done_tx, done_rx) = watch::channel(());
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut limit_warning = RateLimitedWarning::default();
    let mut accept_warning = RateLimitedWarning::default();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                metrics.http_connection_limit_reached.fetch_add(1, Relaxed);
                if let Some(times) = limit_warning.due() {
                    tracing::warn!(
                        max_connections = max,
                        times_since_last_warning = times,
                        "all HTTP connection slots are taken (server.max_connections): new \
                         connections wait in the listen backlog until one closes"
                    );
                }
                tokio::select! {
                    slot = slots.clone().acquire_owned() => match slot {
                        Ok(slot) => slot,
                        Err(_) => break,
                    },
                    () = &mut shutdown => break,
                }
            }
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    // Out of file descriptors despite the bound (something else in the
                    // process holds them): wait for some to close, as hyper used to.
                    if let Some(times) = accept_warning.due() {
                        tracing::error!(error = %e, times_since_last_warning = times, "accepting a connection failed; retrying in 1 s");
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Small writes (WebSocket frames: an assignment, an ack, one event) go out at once;
        // with Nagle's algorithm they would wait for the peer's delayed ACK (~40 ms).
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(peer = %peer, error = %e, "could not turn off Nagle's algorithm");
        }
        let io = CountedIo {
            stream,
            bytes_read: Arc::new(AtomicU64::new(0)),
            _slot: ConnectionSlot::new(slot, metrics.clone()),
        };
        tokio::spawn(serve_connection(
            io,
            peer,
            app.clone(),
            settings,
            stop_rx.clone(),
            done_rx.clone(),
        ));
    }
    // Stop accepting: the kernel refuses further connections from here on.
    drop(listener);
    let _ = stop_tx.send(true);
    drop(done_rx);
    done_tx.closed().await;
    Ok(())
}

async fn serve_connection(
    io: CountedIo,
    peer: SocketAddr,
    app: Router,
    settings: ConnectionSettings,
    mut stop: watch::Receiver<bool>,
    _done: watch::Receiver<()>,
) {
    let timer = HeadTimer {
        bytes_read: io.bytes_read.clone(),
        header_timeout: settings.header_read_timeout,
        armed_before: AtomicBool::new(false),
    };
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        app.clone().oneshot(req)
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(timer)
        .header_read_timeout(settings.idle_timeout);
    let conn = builder
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    let mut conn = std::pin::pin!(conn);
    let stopping = async move {
        let _ = stop.wait_for(|stop| *stop).await;
    };
    let result = tokio::select! {
        result = conn.as_mut() => result,
        () = stopping => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(peer = %peer, error = %e, "HTTP connection ended with an error");
    }
}

/// Accept errors that concern one connection only (it was gone before being accepted).
fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

/// At most one log line per [`LIMIT_WARNING_EVERY`], saying how often it happened.
#[derive(Default)]
struct RateLimitedWarning {
    last: Option<Instant>,
    times: u64,
}

impl RateLimitedWarning {
    /// Counts one occurrence; `Some(occurrences since the last line)` when a line is due.
    fn due(&mut self) -> Option<u64> {
        self.times += 1;
        let now = Instant::now();
        match self.last {
            Some(last) if now.duration_since(last) < LIMIT_WARNING_EVERY => None,
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.times))
            }
        }
    }
}

/// One of the `max_connections` slots, held for as long as the socket is open, and the
/// open-connections gauge.
struct ConnectionSlot {
    _permit: OwnedSemaphorePermit,
    metrics: Arc<Metrics>,
}

impl ConnectionSlot {
    fn new(permit: OwnedSemaphorePermit, metrics: Arc<Metrics>) -> Self {
        metrics.http_connections.fetch_add(1, Relaxed);
        ConnectionSlot {
            _permit: permit,
            metrics,
        }
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.metrics.http_connections.fetch_sub(1, Relaxed);
    }
}

/// The client's socket, counting the bytes read from it (so [`HeadTimer`] can tell an
/// idle connection from one that has begun a request) and holding the connection's slot
/// until it closes — through a WebSocket upgrade too.
struct CountedIo {
    stream: TcpStream,
    bytes_read: Arc<AtomicU64>,
    _slot: ConnectionSlot,
}

impl AsyncRead for CountedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.stream).poll_read(cx, buf);
        let read = buf.filled().len() - before;
        if read > 0 {
            self.bytes_read.fetch_add(read as u64, Relaxed);
        }
        result
    }
}

impl AsyncWrite for CountedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// The timer of one connection's header-read timeouts (hyper uses an HTTP/1 server
/// connection's timer for nothing else). hyper asks it for a deadline each time it starts
/// waiting for a request head, configured as the idle timeout; the head must then be
/// complete within the header timeout of its first byte. A new connection has the header
/// timeout from the start: it has not been idle, it has yet to say anything.
struct HeadTimer {
    bytes_read: Arc<AtomicU64>,
    header_timeout: Duration,
    armed_before: AtomicBool,
}

impl Timer for HeadTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        TokioTimer::new().sleep(duration)
    }

    fn sleep_until(&self, idle_deadline: Instant) -> Pin<Box<dyn Sleep>> {
        let new_connection = !self.armed_before.swap(true, Relaxed);
        let deadline = if new_connection {
            idle_deadline.min(Instant::now() + self.header_timeout)
        } else {
            idle_deadline
        };
        Box::pin(HeadDeadline {
            sleep: tokio::time::sleep_until(deadline.into()),
            bytes_read: self.bytes_read.clone(),
            bytes_when_armed: self.bytes_read.load(Relaxed),
            header_timeout: self.header_timeout,
            head_begun: new_connection,
        })
    }
}

pin_project_lite::pin_project! {
    /// Idle until a byte arrives, then the header timeout from that moment.
    struct HeadDeadline {
        #[pin]
        sleep: tokio::time::Sleep,
        bytes_read: Arc<AtomicU64>,
        bytes_when_armed: u64,
        header_timeout: Duration,
        head_begun: bool,
    }
}

impl Future for HeadDeadline {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        // hyper polls this whenever the head it is reading is still incomplete, so the
        // first poll after bytes arrived is within moments of the first byte.
        if !*this.head_begun && this.bytes_read.load(Relaxed) != *this.bytes_when_armed {
            *this.head_begun = true;
            this.sleep
                .as_mut()
                .reset(tokio::time::Instant::now() + *this.header_timeout);
        }
        this.sleep.poll(cx)
    }
}

impl Sleep for HeadDeadline {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_warning_is_rate_limited_and_counts_what_it_skipped() {
        let mut w = RateLimitedWarning::default();
        assert_eq!(w.due(), Some(1));
        assert_eq!(w.due(), None);
        assert_eq!(w.due(), None);
        w.last = Some(Instant::now() - LIMIT_WARNING_EVERY);
        assert_eq!(w.due(), Some(3), "the two skipped and this one");
    }
}
