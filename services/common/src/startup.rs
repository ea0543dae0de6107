//! Start-up shared by the services: logging and the `/metrics` server.

use rsky_metrics_runtime::{MetricSet, MetricsServer, MetricsServerHandle};

/// Logs to stderr, filtered by `RUST_LOG` (default `info`). Calling it twice is harmless.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Registers `S` in the default registry (so every metric is on the first scrape, at zero) and
/// serves it on `METRICS_ADDR`:`METRICS_PORT` (default `0.0.0.0:{default_port}`).
///
/// # Panics
/// When a metric of `S` clashes with one already in the default registry (a programming error
/// that the derive's `global()` reports by name).
pub async fn start_metrics<S: MetricSet>(
    default_port: u16,
    version: &str,
) -> Result<(&'static S, MetricsServerHandle), rsky_metrics_runtime::Error> {
    let metrics = S::global();
    let server = MetricsServer::for_set::<S>()
        .default_port(default_port)
        .version(version)
        .bind()
        .await?;
    tracing::info!(addr = %server.local_addr(), service = S::SERVICE, "serving /metrics");
    Ok((metrics, server.spawn()))
}
