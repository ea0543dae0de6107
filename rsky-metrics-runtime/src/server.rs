//! The `/metrics` server: the Prometheus text format (or OpenMetrics when the scraper asks for
//! it, gzipped when it accepts gzip), a health check, process metrics and a
//! `{service}_build_info` gauge, on an address taken from the environment.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use std::io::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use flate2::write::GzEncoder;
use flate2::Compression;
use prometheus::{IntGaugeVec, Opts, Registry};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::exposition::{self, Format};
use crate::registry::is_clash;
use crate::{Error, MetricSet};

/// The content type of the Prometheus text format that `/metrics` answers with by default.
pub const CONTENT_TYPE: &str = exposition::TEXT_CONTENT_TYPE;

/// The environment variable read for the port unless [`MetricsServerBuilder::port_env`] says otherwise.
pub const DEFAULT_PORT_ENV: &str = "METRICS_PORT";
/// The environment variable read for the bind address unless [`MetricsServerBuilder::addr_env`] says otherwise.
pub const DEFAULT_ADDR_ENV: &str = "METRICS_ADDR";

/// Serves a registry over HTTP: `GET`/`HEAD /metrics` and `GET`/`HEAD /health`.
///
/// `/metrics` answers in the Prometheus text format 0.0.4, or in OpenMetrics 1.0 text when the
/// request's `Accept` prefers `application/openmetrics-text` (as Prometheus' does), gzipped when
/// `Accept-Encoding` allows gzip. The families of `#[derive(Metrics)]` sets are written straight
/// from their values (see [`exposition::encode`]); other collectors go through `gather()`.
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

    /// Serves until `shutdown` completes, then finishes the requests in flight and returns.
    pub async fn serve_with_shutdown<F>(self, shutdown: F) -> Result<(), Error>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let addr = self.local_addr;
        tracing::info!(%addr, "serving /metrics");
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(|source| Error::Serve { addr, source })?;
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
            .unwrap_or_else(|| prometheus::default_registry().clone());
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
        })
    }
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
                async move { scraper.scrape(&headers) }
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

impl Scraper {
    fn scrape(&self, headers: &HeaderMap) -> Response {
        let accept = headers
            .get(header::ACCEPT)
            .and_then(|value| value.to_str().ok());
        let format = Format::negotiate(accept);
        let gzip = accepts_gzip(
            headers
                .get(header::ACCEPT_ENCODING)
                .and_then(|value| value.to_str().ok()),
        );
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

/// Fast compression (level 1): a scrape body is repetitive, so it still shrinks several times,
/// and the CPU it costs is the service's.
fn gzipped(body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(body.len() / 8), Compression::fast());
    encoder.write_all(body)?;
    encoder.finish()
}

/// Whether `Accept-Encoding` allows gzip: `gzip` (or `x-gzip`, or `*`) with a weight above 0.
pub(crate) fn accepts_gzip(accept_encoding: Option<&str>) -> bool {
    let Some(value) = accept_encoding else {
        return false;
    };
    let mut gzip: Option<bool> = None;
    let mut star = false;
    for coding in value.split(',') {
        let mut parts = coding.split(';').map(str::trim);
        let name = parts.next().unwrap_or("").to_ascii_lowercase();
        let weight = parts
            .filter_map(|param| param.split_once('='))
            .find(|(key, _)| key.trim().eq_ignore_ascii_case("q"))
            .map_or(1.0, |(_, q)| q.trim().parse::<f32>().unwrap_or(0.0));
        match name.as_str() {
            "gzip" | "x-gzip" => gzip = Some(weight > 0.0),
            "*" => star = weight > 0.0,
            _ => {}
        }
    }
    gzip.unwrap_or(star)
}
