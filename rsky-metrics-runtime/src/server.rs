//! The `/metrics` server: the Prometheus text format (or OpenMetrics when the scraper asks for
//! it, gzipped when it accepts gzip), a health check, process metrics and a
//! `{service}_build_info` gauge, on an address taken from the environment.

use std::cell::Cell;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{ready, Context, Poll};

use std::io::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use flate2::write::GzEncoder;
use flate2::Compression;
use hyper::body::Frame;
use prometheus::{IntGaugeVec, Opts};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch, Semaphore};
use tokio::task::{JoinHandle, JoinSet};

use crate::connection::{self, Timeouts};

use crate::exposition::{self, Format};
use crate::registry::is_clash;
use crate::Registry;
use crate::{Error, MetricSet};

/// The content type of the Prometheus text format that `/metrics` answers with by default.
pub const CONTENT_TYPE: &str = exposition::TEXT_CONTENT_TYPE;

/// The environment variable read for the port unless [`MetricsServerBuilder::port_env`] says otherwise.
pub const DEFAULT_PORT_ENV: &str = "METRICS_PORT";
/// The environment variable read for the bind address unless [`MetricsServerBuilder::addr_env`] says otherwise.
pub const DEFAULT_ADDR_ENV: &str = "METRICS_ADDR";

/// How long a client may take to send a complete request head, by default
/// ([`MetricsServerBuilder::header_read_timeout`]).
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a keep-alive connection may wait for its next request, by default
/// ([`MetricsServerBuilder::idle_timeout`]): longer than a 60 s scrape interval, so Prometheus
/// keeps its connection between scrapes.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(75);
/// How long one request may take from its first byte to the last byte of its response, by
/// default ([`MetricsServerBuilder::request_timeout`]).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How many connections the server holds at once, by default
/// ([`MetricsServerBuilder::max_connections`]).
pub const DEFAULT_MAX_CONNECTIONS: usize = 64;

/// How long the accept loop waits after an error that is not about one connection (such as
/// running out of file descriptors) before it accepts again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves a registry over HTTP: `GET`/`HEAD /metrics` and `GET`/`HEAD /health`.
///
/// `/metrics` answers in the Prometheus text format 0.0.4, or in OpenMetrics 1.0 text when the
/// request's `Accept` prefers `application/openmetrics-text` (as Prometheus' does), gzipped when
/// `Accept-Encoding` allows gzip. The families of `#[derive(Metrics)]` sets are written straight
/// from their values (see [`exposition::encode`]); other collectors go through `gather()`.
///
/// Slow or idle clients cannot hold it: a connection must send its request head within
/// [`header_read_timeout`](MetricsServerBuilder::header_read_timeout) (5 s by default, counted
/// from the accept or from the first byte of a later request), take its whole response within
/// [`request_timeout`](MetricsServerBuilder::request_timeout) (30 s) and start its next request
/// within [`idle_timeout`](MetricsServerBuilder::idle_timeout) (75 s), or it is closed; and at
/// most [`max_connections`](MetricsServerBuilder::max_connections) (64) are held at once, a
/// connection beyond them being closed as soon as it is accepted. The server needs a tokio
/// runtime with the time driver (as `#[tokio::main]` builds).
///
/// ```no_run
/// # async fn run() -> Result<(), rsky_metrics_runtime::Error> {
/// use rsky_metrics_runtime::MetricsServer;
///
/// let server = MetricsServer::builder("demo")
///     .default_port(9100)
///     .version(env!("CARGO_PKG_VERSION"))
///     .bind()
///     .await?;
/// println!("metrics on http://{}/metrics", server.local_addr());
/// server.serve_with_shutdown(async { let _ = tokio::signal::ctrl_c().await; }).await
/// # }
/// ```
pub struct MetricsServer {
    listener: TcpListener,
    local_addr: SocketAddr,
    router: Router,
    timeouts: Timeouts,
    max_connections: usize,
}

/// Configuration of a [`MetricsServer`].
#[derive(Clone, Debug)]
#[must_use]
pub struct MetricsServerBuilder {
    service: String,
    version: String,
    default_port: u16,
    default_ip: IpAddr,
    port_env: String,
    addr_env: String,
    listen: Option<SocketAddr>,
    registry: Option<Registry>,
    process_metrics: bool,
    timeouts: Timeouts,
    max_connections: usize,
}

impl MetricsServer {
    /// Starts configuring a server for `service` (the prefix of its `_build_info` gauge).
    pub fn builder(service: impl Into<String>) -> MetricsServerBuilder {
        MetricsServerBuilder {
            service: service.into(),
            version: "unknown".to_owned(),
            default_port: 9090,
            default_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port_env: DEFAULT_PORT_ENV.to_owned(),
            addr_env: DEFAULT_ADDR_ENV.to_owned(),
            listen: None,
            registry: None,
            process_metrics: true,
            timeouts: Timeouts {
                header_read: DEFAULT_HEADER_READ_TIMEOUT,
                idle: DEFAULT_IDLE_TIMEOUT,
                request: DEFAULT_REQUEST_TIMEOUT,
            },
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }

    /// Starts configuring a server for the service of metric set `S`.
    pub fn for_set<S: MetricSet>() -> MetricsServerBuilder {
        Self::builder(S::SERVICE)
    }

    /// The address the server listens on (with the real port when port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` completes, then finishes the requests in flight (each within
    /// its time limits) and returns.
    pub async fn serve_with_shutdown<F>(self, shutdown: F) -> Result<(), Error>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let MetricsServer {
            listener,
            local_addr: addr,
            router,
            timeouts,
            max_connections,
        } = self;
        tracing::info!(%addr, "serving /metrics");
        let slots = Arc::new(Semaphore::new(max_connections));
        let (closing, closing_seen) = watch::channel(false);
        let mut connections = JoinSet::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let accepted = tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => accepted,
            };
            while connections.try_join_next().is_some() {}
            let stream = match accepted {
                Ok((stream, _peer)) => stream,
                Err(err) if is_about_one_connection(&err) => continue,
                Err(err) => {
                    tracing::warn!(%addr, error = %err, "cannot accept a /metrics connection; retrying");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            };
            let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                // Closed at once: the file descriptors stay bounded whatever the clients do.
                tracing::debug!(%addr, max_connections, "too many /metrics connections; closing a new one");
                drop(stream);
                continue;
            };
            // A response leaves in as few segments as it takes, without waiting for acks.
            let _ = stream.set_nodelay(true);
            connections.spawn(connection::serve(
                stream,
                router.clone(),
                timeouts,
                closing_seen.clone(),
                slot,
            ));
        }
        drop(listener);
        let _ = closing.send(true);
        // Each connection ends within its own time limits at the latest.
        while connections.join_next().await.is_some() {}
        tracing::info!(%addr, "the /metrics server stopped");
        Ok(())
    }

    /// Serves in a background task; the handle stops it.
    pub fn spawn(self) -> MetricsServerHandle {
        let (stop, stopped) = oneshot::channel::<()>();
        let addr = self.local_addr;
        let task = tokio::spawn(self.serve_with_shutdown(async {
            let _ = stopped.await;
        }));
        MetricsServerHandle { addr, stop, task }
    }
}

/// A server running in the background, from [`MetricsServer::spawn`].
pub struct MetricsServerHandle {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), Error>>,
}

impl MetricsServerHandle {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets requests in flight finish, and waits for the server to end.
    pub async fn shutdown(self) -> Result<(), Error> {
        let _ = self.stop.send(());
        match self.task.await {
            Ok(result) => result,
            Err(join) => Err(Error::Serve {
                addr: self.addr,
                source: std::io::Error::other(join),
            }),
        }
    }
}

impl MetricsServerBuilder {
    /// The port used when the port variable is not set (each service has its own default).
    pub fn default_port(mut self, port: u16) -> Self {
        self.default_port = port;
        self
    }

    /// The address used when the address variable is not set (`0.0.0.0` by default, as containers need).
    pub fn default_ip(mut self, ip: IpAddr) -> Self {
        self.default_ip = ip;
        self
    }

    /// The environment variable that holds the port (`METRICS_PORT` by default).
    pub fn port_env(mut self, var: impl Into<String>) -> Self {
        self.port_env = var.into();
        self
    }

    /// The environment variable that holds the bind address (`METRICS_ADDR` by default).
    pub fn addr_env(mut self, var: impl Into<String>) -> Self {
        self.addr_env = var.into();
        self
    }

    /// Listens on exactly `addr`, ignoring the environment (tests pass `127.0.0.1:0`).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = Some(addr);
        self
    }

    /// The version shown by `{service}_build_info{version="..."}`; pass `env!("CARGO_PKG_VERSION")`.
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = version.into();
        self
    }

    /// Serves `registry` instead of the default registry (where `global()` sets live).
    pub fn registry(mut self, registry: Registry) -> Self {
        self.registry = Some(registry);
        self
    }

    /// Whether to export `process_*` metrics (CPU, memory, file descriptors, start time); on by default.
    pub fn process_metrics(mut self, enabled: bool) -> Self {
        self.process_metrics = enabled;
        self
    }

    /// How long a client may take to send a complete request head, counted from the accept (or
    /// from the first byte of a later request on a kept-alive connection); the connection is
    /// closed after that. [`DEFAULT_HEADER_READ_TIMEOUT`] (5 s) by default: a scraper sends its
    /// head in one packet, a slow-loris client never finishes it.
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.header_read = timeout;
        self
    }

    /// How long a kept-alive connection may wait for its next request before it is closed.
    /// [`DEFAULT_IDLE_TIMEOUT`] (75 s) by default.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.idle = timeout;
        self
    }

    /// How long one request may take, from its first byte to the last byte of its response
    /// handed to the kernel (a client that does not read its response is closed after that).
    /// [`DEFAULT_REQUEST_TIMEOUT`] (30 s) by default; the header read timeout applies within it.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.request = timeout;
        self
    }

    /// How many connections the server holds at once; a connection accepted beyond them is
    /// closed at once, so slow clients cannot take the file descriptors that the service's
    /// other connections need. [`DEFAULT_MAX_CONNECTIONS`] (64) by default; at least 1.
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max.clamp(1, Semaphore::MAX_PERMITS);
        self
    }

    /// The address to listen on, from the process environment.
    pub fn resolve_addr(&self) -> Result<SocketAddr, Error> {
        self.resolve_addr_with(|var| std::env::var(var).ok())
    }

    /// The address to listen on, reading variables through `lookup`.
    pub fn resolve_addr_with(
        &self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<SocketAddr, Error> {
        if let Some(addr) = self.listen {
            return Ok(addr);
        }
        let port = match lookup(&self.port_env) {
            None => self.default_port,
            Some(value) => parse_port(&self.port_env, &value)?,
        };
        let ip = match lookup(&self.addr_env) {
            None => self.default_ip,
            Some(value) => value
                .trim()
                .parse::<IpAddr>()
                .map_err(|_| Error::InvalidEnv {
                    var: self.addr_env.clone(),
                    value: value.clone(),
                    reason: "expected an IP address such as 0.0.0.0, 127.0.0.1 or ::".to_owned(),
                })?,
        };
        Ok(SocketAddr::new(ip, port))
    }

    /// Registers the build-info gauge (and process metrics) and binds the listener.
    pub async fn bind(self) -> Result<MetricsServer, Error> {
        let addr = self.resolve_addr()?;
        self.bind_to(addr).await
    }

    async fn bind_to(self, addr: SocketAddr) -> Result<MetricsServer, Error> {
        let registry = self
            .registry
            .clone()
            .unwrap_or_else(|| crate::default_registry().clone());
        register_build_info(&registry, &self.service, &self.version)?;
        if self.process_metrics {
            register_process_metrics(&registry)?;
        }
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind { addr, source })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| Error::Bind { addr, source })?;
        Ok(MetricsServer {
            listener,
            local_addr,
            router: router(registry),
            timeouts: self.timeouts,
            max_connections: self.max_connections,
        })
    }
}

/// Accept errors that concern one connection only (it was reset before we took it): the next
/// accept is fine.
fn is_about_one_connection(err: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        err.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted | WouldBlock
    )
}

fn parse_port(var: &str, value: &str) -> Result<u16, Error> {
    let invalid = |reason: &str| Error::InvalidEnv {
        var: var.to_owned(),
        value: value.to_owned(),
        reason: reason.to_owned(),
    };
    let number: u64 = value
        .trim()
        .parse()
        .map_err(|_| invalid("expected a port number from 1 to 65535"))?;
    match number {
        0 => Err(invalid(
            "port 0 is not a fixed port; choose one from 1 to 65535",
        )),
        1..=65535 => Ok(number as u16),
        _ => Err(invalid("a port is at most 65535")),
    }
}

fn register_build_info(registry: &Registry, service: &str, version: &str) -> Result<(), Error> {
    let name = format!("{service}_build_info");
    let declared_by = "MetricsServer (build info)".to_owned();
    let gauge = IntGaugeVec::new(
        Opts::new(
            name.clone(),
            format!("Build information of {service}: always 1, labeled with its version"),
        ),
        &["version"],
    )
    .map_err(|source| Error::Metric {
        metric: name.clone(),
        declared_by: declared_by.clone(),
        source,
    })?;
    gauge.with_label_values(&[version]).set(1);
    match registry.register(Box::new(gauge)) {
        // A second server on the same registry shares the first one's gauge.
        Err(err) if is_clash(&err) => Ok(()),
        Err(source) => Err(Error::Metric {
            metric: name,
            declared_by,
            source,
        }),
        Ok(()) => Ok(()),
    }
}

fn register_process_metrics(registry: &Registry) -> Result<(), Error> {
    #[cfg(target_os = "linux")]
    {
        let collector = prometheus::process_collector::ProcessCollector::for_self();
        match registry.register(Box::new(collector)) {
            // The default registry registers one of its own.
            Err(err) if is_clash(&err) => Ok(()),
            Err(source) => Err(Error::Metric {
                metric: "process_*".to_owned(),
                declared_by: "MetricsServer (process metrics)".to_owned(),
                source,
            }),
            Ok(()) => Ok(()),
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = registry;
        Ok(())
    }
}

fn router(registry: Registry) -> Router {
    let scraper = Arc::new(Scraper {
        registry,
        last_len: AtomicUsize::new(16 * 1024),
    });
    Router::new()
        .route(
            "/metrics",
            get(move |headers: HeaderMap| {
                let scraper = Arc::clone(&scraper);
                scraper.scrape(headers)
            }),
        )
        .route("/health", get(|| async { "ok\n" }))
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                "not found: try /metrics or /health\n",
            )
        })
}

struct Scraper {
    registry: Registry,
    /// The size of the last body, so the next one is allocated once.
    last_len: AtomicUsize,
}

/// Why the response depends on the request: caches must key on both.
const VARY: &str = "Accept, Accept-Encoding";

/// A plain body of at least this size is encoded on a blocking thread and leaves in chunks of
/// this size, each sent while the next is encoded (`Transfer-Encoding: chunked`); a smaller one
/// is encoded at once and sent with its `Content-Length`.
const CHUNK: usize = 64 * 1024;

impl Scraper {
    async fn scrape(self: Arc<Self>, headers: HeaderMap) -> Response {
        let accept = headers
            .get(header::ACCEPT)
            .and_then(|value| value.to_str().ok());
        let format = Format::negotiate(accept);
        let gzip = exposition::accepts_gzip(
            headers
                .get(header::ACCEPT_ENCODING)
                .and_then(|value| value.to_str().ok()),
        );
        if gzip || self.last_len.load(Ordering::Relaxed) < CHUNK {
            return self.whole(format, gzip);
        }
        self.streamed(format).await
    }

    /// Encodes on a blocking thread and answers as soon as the first chunk is there.
    async fn streamed(self: Arc<Self>, format: Format) -> Response {
        let (chunks, mut received) = mpsc::unbounded_channel();
        let scraper = Arc::clone(&self);
        // Unbounded: the encode never waits for the client while it holds the families' locks;
        // what it buffers is at most one body, as a whole encode does.
        let encode = move || {
            let more = chunks.clone();
            let sent = Rc::new(Cell::new(0));
            let counted = Rc::clone(&sent);
            let last = exposition::encode_chunked(&scraper.registry, format, CHUNK, move |chunk| {
                counted.set(counted.get() + chunk.len());
                let _ = more.send(Chunk::More(Bytes::from(chunk)));
            });
            scraper
                .last_len
                .store(sent.get() + last.len(), Ordering::Relaxed);
            let _ = chunks.send(Chunk::Last(Bytes::from(last)));
        };
        // A runtime shutting down drops `encode` unrun: the channel closes and we answer 500.
        drop(tokio::task::spawn_blocking(encode));
        let headers = [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(format.content_type()),
            ),
            (header::VARY, HeaderValue::from_static(VARY)),
        ];
        match received.recv().await {
            Some(Chunk::Last(body)) => (headers, body).into_response(),
            Some(Chunk::More(first)) => {
                let body = Chunked {
                    first: Some(first),
                    received,
                    ended: false,
                };
                (headers, Body::new(body)).into_response()
            }
            None => {
                tracing::warn!("the /metrics encode ended without a body");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "cannot encode /metrics\n",
                )
                    .into_response()
            }
        }
    }

    /// Encodes the whole body here, then answers with it (gzipped if asked).
    fn whole(&self, format: Format, gzip: bool) -> Response {
        let mut body = Vec::with_capacity(self.last_len.load(Ordering::Relaxed) + 1024);
        exposition::encode_into(&self.registry, format, &mut body);
        self.last_len.store(body.len(), Ordering::Relaxed);
        let content_type = HeaderValue::from_static(format.content_type());
        let vary = HeaderValue::from_static(VARY);
        if gzip {
            match gzipped(&body) {
                Ok(compressed) => {
                    return (
                        [
                            (header::CONTENT_TYPE, content_type),
                            (header::CONTENT_ENCODING, HeaderValue::from_static("gzip")),
                            (header::VARY, vary),
                        ],
                        compressed,
                    )
                        .into_response();
                }
                Err(err) => {
                    // Compressing into memory does not fail in practice; the plain body still serves.
                    tracing::warn!(error = %err, "cannot gzip /metrics, answering uncompressed");
                }
            }
        }
        (
            [(header::CONTENT_TYPE, content_type), (header::VARY, vary)],
            body,
        )
            .into_response()
    }
}

/// A piece of a body encoded on a blocking thread.
enum Chunk {
    More(Bytes),
    Last(Bytes),
}

/// A body whose chunks come from an encode on another thread. It ends with an error (hyper
/// then closes the connection without the terminating chunk, so the client sees a truncated
/// body, not a short one) if the encode stopped before its last chunk.
struct Chunked {
    first: Option<Bytes>,
    received: mpsc::UnboundedReceiver<Chunk>,
    /// The last chunk was taken.
    ended: bool,
}

impl hyper::body::Body for Chunked {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(first))));
        }
        if self.ended {
            return Poll::Ready(None);
        }
        let frame = match ready!(self.received.poll_recv(cx)) {
            Some(Chunk::More(chunk)) => Ok(Frame::data(chunk)),
            Some(Chunk::Last(chunk)) => {
                self.ended = true;
                Ok(Frame::data(chunk))
            }
            None => Err(std::io::Error::other(
                "the /metrics encode stopped before its end",
            )),
        };
        Poll::Ready(Some(frame))
    }

    fn is_end_stream(&self) -> bool {
        self.ended
    }
}

/// Fast compression (level 1): a scrape body is repetitive, so it still shrinks several times,
/// and the CPU it costs is the service's.
fn gzipped(body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(body.len() / 8), Compression::fast());
    encoder.write_all(body)?;
    encoder.finish()
}

#[cfg(test)]
mod tests {
    use std::task::Waker;

    use hyper::body::Body as _;

    use super::*;

    fn next(body: &mut Chunked) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        Pin::new(body).poll_frame(&mut Context::from_waker(Waker::noop()))
    }

    fn data(polled: Poll<Option<Result<Frame<Bytes>, std::io::Error>>>) -> Bytes {
        match polled {
            Poll::Ready(Some(Ok(frame))) => frame.into_data().expect("a data frame"),
            _ => panic!("expected a data frame"),
        }
    }

    fn chunked(first: &'static [u8]) -> (mpsc::UnboundedSender<Chunk>, Chunked) {
        let (chunks, received) = mpsc::unbounded_channel();
        let body = Chunked {
            first: Some(Bytes::from_static(first)),
            received,
            ended: false,
        };
        (chunks, body)
    }

    #[test]
    fn a_streamed_body_ends_after_its_last_chunk() {
        let (chunks, mut body) = chunked(b"a 1\n");
        assert_eq!(data(next(&mut body)), "a 1\n");
        assert!(next(&mut body).is_pending(), "waits for the encode");
        chunks
            .send(Chunk::More(Bytes::from_static(b"b 2\n")))
            .unwrap();
        chunks
            .send(Chunk::Last(Bytes::from_static(b"c 3\n")))
            .unwrap();
        assert_eq!(data(next(&mut body)), "b 2\n");
        assert_eq!(data(next(&mut body)), "c 3\n");
        assert!(body.is_end_stream());
        assert!(matches!(next(&mut body), Poll::Ready(None)));
    }

    #[test]
    fn a_streamed_body_whose_encode_stops_early_ends_with_an_error() {
        let (chunks, mut body) = chunked(b"a 1\n");
        chunks
            .send(Chunk::More(Bytes::from_static(b"b 2\n")))
            .unwrap();
        // The encode panicked: its sender is gone without a last chunk.
        drop(chunks);
        assert_eq!(data(next(&mut body)), "a 1\n");
        assert_eq!(data(next(&mut body)), "b 2\n");
        assert!(!body.is_end_stream());
        assert!(
            matches!(next(&mut body), Poll::Ready(Some(Err(_)))),
            "an error, so that hyper does not send the terminating chunk"
        );
    }
}
