//! One connection of the `/metrics` server, held to the server's time limits.
//!
//! hyper serves the HTTP/1.1 exchange; the socket under it ([`Deadlines`]) knows which phase the
//! connection is in and fails the next read or write once that phase has lasted too long:
//!
//! - **head**: from the accept, or from the first byte of a later request, until the request
//!   head is complete: at most `header_read_timeout` (slow-loris clients end here);
//! - **busy**: from the start of the request until its whole response is handed to the kernel:
//!   at most `request_timeout` (a client that does not read its response ends here);
//! - **idle**: between a response and the first byte of the next request: at most
//!   `idle_timeout`.
//!
//! hyper tells nobody when a request head is complete or a response is written, so the service
//! counts the requests it is handed and each response body counts itself finished when hyper
//! drops it; the socket reads both counters. hyper calls the socket's `poll_flush` only once its
//! own write buffer is empty, so a finished body and a flush mean the response is out.

use std::convert::Infallible;
use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use axum::Router;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{watch, OwnedSemaphorePermit};
use tokio::time::{Instant, Sleep};
use tower_service::Service as _;

/// The time limits of one connection (see the module documentation).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timeouts {
    pub(crate) header_read: Duration,
    pub(crate) idle: Duration,
    pub(crate) request: Duration,
}

/// Serves one connection until the client closes it, a time limit ends it, or the server shuts
/// down (then the request in flight, if any, is answered first). `_slot` is the connection's
/// place under the server's connection cap, given back when it ends.
pub(crate) async fn serve(
    stream: TcpStream,
    router: Router,
    timeouts: Timeouts,
    mut closing: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
) {
    let exchanges = Arc::new(Exchanges::default());
    let io = TokioIo::new(Deadlines::new(stream, timeouts, Arc::clone(&exchanges)));
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        exchanges.started.fetch_add(1, Ordering::Release);
        let finished = Finished(Arc::clone(&exchanges));
        let mut router = router.clone();
        async move {
            let response = router.call(request).await?;
            Ok::<_, Infallible>(response.map(|body| Tracked {
                body,
                _finished: finished,
            }))
        }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(io, service);
    let mut connection = std::pin::pin!(connection);
    let closing = async move {
        // An error means the server is gone: closing as well.
        let _ = closing.wait_for(|closing| *closing).await;
    };
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = closing => {
            // Closes an idle connection now, a busy one after its response.
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(err) = result {
        // A client that went away or ran out of time: nothing the operator can act on.
        tracing::debug!(error = %err, "a /metrics connection ended");
    }
}

/// Requests the service was handed and responses hyper is done with, on one connection.
#[derive(Default)]
struct Exchanges {
    started: AtomicU64,
    finished: AtomicU64,
}

/// Counts a response finished when dropped: hyper drops a body once it has taken its last frame
/// (or, for `HEAD`, without reading it).
struct Finished(Arc<Exchanges>);

impl Drop for Finished {
    fn drop(&mut self) {
        self.0.finished.fetch_add(1, Ordering::Release);
    }
}

/// A response body that counts itself finished when hyper drops it.
struct Tracked {
    body: Body,
    _finished: Finished,
}

impl hyper::body::Body for Tracked {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Head,
    Busy,
    Idle,
}

/// The connection's socket, failing reads and writes once the current phase is over its limit.
struct Deadlines {
    stream: TcpStream,
    timeouts: Timeouts,
    exchanges: Arc<Exchanges>,
    phase: Phase,
    /// Requests started that this socket has seen.
    seen: u64,
    /// When the current request began (its first byte, or the accept for the first one).
    since: Instant,
    deadline: Pin<Box<Sleep>>,
}

impl Deadlines {
    fn new(stream: TcpStream, timeouts: Timeouts, exchanges: Arc<Exchanges>) -> Self {
        let now = Instant::now();
        Self {
            stream,
            timeouts,
            exchanges,
            phase: Phase::Head,
            seen: 0,
            since: now,
            deadline: Box::pin(tokio::time::sleep_until(now + timeouts.header_read)),
        }
    }

    fn enter(&mut self, phase: Phase, deadline: Instant) {
        self.phase = phase;
        self.deadline.as_mut().reset(deadline);
    }

    /// Follows the requests the service reports, then fails if the phase is over its limit.
    fn check(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        let started = self.exchanges.started.load(Ordering::Acquire);
        if started != self.seen {
            self.seen = started;
            if self.phase == Phase::Idle {
                // A pipelined request: its bytes came with the previous one.
                self.since = Instant::now();
            }
            let deadline = self.since + self.timeouts.request;
            self.enter(Phase::Busy, deadline);
        }
        if self.deadline.as_mut().poll(cx).is_pending() {
            return Ok(());
        }
        let (what, limit) = match self.phase {
            Phase::Head => ("no complete request head", self.timeouts.header_read),
            Phase::Busy => ("the response was not taken", self.timeouts.request),
            Phase::Idle => ("no new request", self.timeouts.idle),
        };
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("{what} within {limit:?}"),
        ))
    }
}

impl AsyncRead for Deadlines {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.check(cx)?;
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.stream).poll_read(cx, buf))?;
        if self.phase == Phase::Idle && buf.filled().len() > before {
            let now = Instant::now();
            self.since = now;
            let deadline = now + self.timeouts.header_read;
            self.enter(Phase::Head, deadline);
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Deadlines {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.check(cx)?;
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.check(cx)?;
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check(cx)?;
        ready!(Pin::new(&mut self.stream).poll_flush(cx))?;
        let finished = self.exchanges.finished.load(Ordering::Acquire);
        if self.phase == Phase::Busy && finished >= self.seen {
            // hyper flushes the socket only with its own buffer empty: the response is out.
            let deadline = Instant::now() + self.timeouts.idle;
            self.enter(Phase::Idle, deadline);
        }
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
