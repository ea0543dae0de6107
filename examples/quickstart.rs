//! A small instrumented service with a synthetic workload.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! It serves its metrics on <http://127.0.0.1:9100/metrics> (`METRICS_PORT` and `METRICS_ADDR`
//! override the port and address), prints the first lines of its own scrape, and stops cleanly
//! on Ctrl-C. `QUICKSTART_RUN_SECONDS=N` stops it after N seconds.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use rsky_metrics_runtime::{
    counted, Histogram, IntCounter, IntCounterVec, IntGauge, Metrics, MetricsServer,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

/// Metrics of the demo service.
#[derive(Metrics)]
#[metrics(service = "demo")]
pub struct DemoMetrics {
    /// Requests handled
    pub requests: IntCounter,
    /// Requests that failed
    pub request_errors: IntCounter,
    /// Requests being handled right now
    pub requests_in_flight: IntGauge,
    /// Items waiting in the queue
    pub queue_length: IntGauge,
    /// Time to handle one request
    #[metric(buckets = [0.001, 0.01, 0.1, 1.0])]
    pub handle_seconds: Histogram,
    /// Requests by outcome
    #[metric(labels = ["outcome"])]
    pub outcomes: IntCounterVec,
    /// Kept under an older name
    #[metric(name = "legacy_events")]
    pub legacy: IntCounter,
}

#[derive(Debug, thiserror::Error)]
#[error("request {0} was rejected: every seventh request fails in this demo")]
struct Rejected(u64);

/// One unit of synthetic work: a little waiting, and a failure now and then.
///
/// `#[counted]` counts every call, its failures (an `Err` here, or a panic), the calls in flight
/// and their duration, on every path out of the function.
#[counted(DemoMetrics, events = requests, errors = request_errors,
          in_flight = requests_in_flight, duration = handle_seconds)]
async fn handle_request(id: u64) -> Result<(), Rejected> {
    tokio::time::sleep(Duration::from_millis(2 + id % 7)).await;
    let outcomes = &DemoMetrics::global().outcomes;
    if id % 7 == 6 {
        outcomes.with_label_values(&["error"]).inc();
        return Err(Rejected(id));
    }
    outcomes.with_label_values(&["ok"]).inc();
    Ok(())
}

/// Handles one request after another until `stop` turns true; a request in hand is finished, so
/// the scrape after the workload sees every request with its duration.
async fn workload(mut stop: watch::Receiver<bool>) {
    let metrics = DemoMetrics::global();
    let mut id = 0u64;
    while !*stop.borrow() {
        metrics.queue_length.set((id % 17) as i64);
        if let Err(err) = handle_request(id).await {
            tracing::debug!(%err, "synthetic failure");
        }
        if id.is_multiple_of(10) {
            metrics.legacy.inc();
        }
        id += 1;
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
            _ = stop.changed() => {}
        }
    }
}

/// Scrapes `/metrics` over plain HTTP/1.1, as Prometheus would.
async fn scrape(addr: SocketAddr) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(addr).await?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: quickstart\r\nConnection: close\r\n\r\n")
        .await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    Ok(response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();

    // Registering up front puts every metric on the first scrape, at zero.
    DemoMetrics::global();
    let server = MetricsServer::for_set::<DemoMetrics>()
        .default_ip(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .default_port(9100)
        .version(env!("CARGO_PKG_VERSION"))
        .bind()
        .await?;
    let addr = server.local_addr();
    let server = server.spawn();
    println!("quickstart: serving metrics on http://{addr}/metrics (Ctrl-C to stop)");

    println!("first lines of the first scrape:");
    for line in scrape(addr)
        .await?
        .lines()
        .filter(|l| l.starts_with("demo_"))
    {
        println!("  {line}");
    }

    let (stop, stopped) = watch::channel(false);
    let work = tokio::spawn(workload(stopped));
    let run_for = std::env::var("QUICKSTART_RUN_SECONDS")
        .ok()
        .map(|v| {
            v.parse::<u64>()
                .map_err(|_| format!("QUICKSTART_RUN_SECONDS={v:?} is not a number of seconds"))
        })
        .transpose()?;
    match run_for {
        Some(seconds) => tokio::time::sleep(Duration::from_secs(seconds)).await,
        None => tokio::signal::ctrl_c().await?,
    }
    let _ = stop.send(true);
    work.await?;

    println!("a scrape after the workload ran:");
    for line in scrape(addr)
        .await?
        .lines()
        .filter(|l| l.starts_with("demo_") && !l.contains("_bucket"))
    {
        println!("  {line}");
    }
    server.shutdown().await?;
    println!("quickstart: stopped");
    Ok(())
}
